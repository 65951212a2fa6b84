//! The error returned by [`ContextVar::reset`](crate::ContextVar::reset).

use std::fmt;

/// Why [`ContextVar::reset`](crate::ContextVar::reset) refused a token.
///
/// A failed reset changes nothing: the variable keeps its current value.
///
/// # Examples
///
/// ```
/// use contextvars::{ContextVar, ResetError};
///
/// static A: ContextVar<u32> = ContextVar::new("a");
/// static B: ContextVar<u32> = ContextVar::new("b");
///
/// let token = A.set(1);
/// assert_eq!(B.reset(token), Err(ResetError::DifferentVar));
/// assert_eq!(A.get(), Some(1));
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResetError {
    /// The token was returned by `set` on another variable.
    DifferentVar,
    /// The token was created in another context: inside a [`Context::run`](crate::Context::run)
    /// that has returned, in a copy of the current context, or on another thread.
    DifferentContext,
}

impl fmt::Display for ResetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::DifferentVar => "token was created by a different context variable",
            Self::DifferentContext => "token was created in a different context",
        })
    }
}

impl std::error::Error for ResetError {}
