//! The errors returned by [`ContextVar::reset`](crate::ContextVar::reset) and
//! [`ContextVar::try_reset`](crate::ContextVar::try_reset).

use std::fmt;

use crate::Token;

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

/// Why [`ContextVar::try_reset`](crate::ContextVar::try_reset) refused a token, with the token,
/// which stays usable in the context it came from.
///
/// # Examples
///
/// ```
/// use contextvars::{ContextVar, ResetError};
///
/// static A: ContextVar<u32> = ContextVar::new("a");
/// static B: ContextVar<u32> = ContextVar::new("b");
///
/// let refused = B.try_reset(A.set(1)).unwrap_err();
/// assert_eq!(refused.error(), ResetError::DifferentVar);
/// assert_eq!(refused.to_string(), "token was created by a different context variable");
/// A.reset(refused.into_token()).unwrap();
/// assert_eq!(A.get(), None);
/// ```
pub struct TryResetError<T> {
    error: ResetError,
    token: Token<T>,
}

impl<T> TryResetError<T> {
    pub(crate) fn new(error: ResetError, token: Token<T>) -> Self {
        Self { error, token }
    }

    /// Why the token was refused.
    #[must_use]
    pub fn error(&self) -> ResetError {
        self.error
    }

    /// The token, as it was before the attempt.
    #[must_use]
    pub fn token(&self) -> &Token<T> {
        &self.token
    }

    /// Gives the token back.
    #[must_use]
    pub fn into_token(self) -> Token<T> {
        self.token
    }
}

impl<T> fmt::Debug for TryResetError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TryResetError").field("error", &self.error).field("token", &self.token).finish()
    }
}

impl<T> fmt::Display for TryResetError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl<T> std::error::Error for TryResetError<T> {}
