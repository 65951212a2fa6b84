//! [`Token`]: what [`ContextVar::set`](crate::ContextVar::set) returns, to undo it.

use std::fmt;

use crate::raw::Value;

/// The value a variable had before a [`set`](crate::ContextVar::set), and where that set
/// happened: pass it to [`reset`](crate::ContextVar::reset) to restore the variable.
///
/// A token can be used once ([`reset`](crate::ContextVar::reset) consumes it), and only in
/// the context it was created in.
///
/// # Examples
///
/// ```
/// use contextvars::ContextVar;
///
/// static N: ContextVar<u32> = ContextVar::new("n");
///
/// let first = N.set(1);
/// assert_eq!(first.old_value(), None); // N was not set
/// let second = N.set(2);
/// assert_eq!(second.old_value(), Some(&1));
/// assert_eq!(second.var_name(), "n");
///
/// N.reset(second).unwrap();
/// assert_eq!(N.get(), Some(1));
/// N.reset(first).unwrap();
/// assert_eq!(N.get(), None);
/// ```
///
/// Using a token twice does not compile:
///
/// ```compile_fail
/// use contextvars::ContextVar;
///
/// static N: ContextVar<u32> = ContextVar::new("n");
///
/// let token = N.set(1);
/// N.reset(token).unwrap();
/// N.reset(token).unwrap(); // error: use of moved value
/// ```
pub struct Token<T> {
    pub(crate) var_id: u64,
    pub(crate) var_name: &'static str,
    /// Identity of the context the `set` happened in; 0 when there was none (thread exit).
    pub(crate) context_id: u64,
    pub(crate) old: Old<T>,
}

/// The previous value, as `set` found it.
pub(crate) enum Old<T> {
    /// The variable was not set (Python's `Token.MISSING`).
    Missing,
    /// Taken out of a value nobody else shared, so it could be moved out without a copy.
    Owned(T),
    /// Still shared with another context, so kept as it is stored.
    Shared(Value),
}

impl<T> Token<T> {
    /// Name of the variable whose `set` produced this token.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::ContextVar;
    ///
    /// static N: ContextVar<u32> = ContextVar::new("n");
    /// assert_eq!(N.set(1).var_name(), "n");
    /// ```
    #[must_use]
    pub fn var_name(&self) -> &'static str {
        self.var_name
    }
}

impl<T: 'static> Token<T> {
    /// The value the variable had before the `set`; `None` when it was not set (a default
    /// does not count), Python's `Token.MISSING`.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::ContextVar;
    ///
    /// static N: ContextVar<u32> = ContextVar::with_default("n", 9);
    ///
    /// assert_eq!(N.set(1).old_value(), None);
    /// assert_eq!(N.set(2).old_value(), Some(&1));
    /// ```
    #[must_use]
    pub fn old_value(&self) -> Option<&T> {
        match &self.old {
            Old::Missing => None,
            Old::Owned(value) => Some(value),
            Old::Shared(value) => value.downcast_ref(),
        }
    }
}

impl<T> fmt::Debug for Token<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("var", &self.var_name)
            .field("had_old_value", &!matches!(self.old, Old::Missing))
            .finish_non_exhaustive()
    }
}
