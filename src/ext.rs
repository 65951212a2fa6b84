//! [`FutureExt`]: `.with_context(ctx)` and `.with_current_context()` on any future or stream.

use crate::{Context, WithContext};

/// Adds [`with_context`](Self::with_context) and
/// [`with_current_context`](Self::with_current_context) to every future and stream.
///
/// # Examples
///
/// ```
/// use contextvars::{Context, ContextVar, FutureExt};
///
/// static USER: ContextVar<&str> = ContextVar::new("user");
///
/// # futures::executor::block_on(async {
/// let ctx = Context::new().with_value(&USER, "alice");
/// let seen = async { USER.get() }.with_context(ctx).await;
/// assert_eq!(seen, Some("alice"));
/// # });
/// ```
pub trait FutureExt: Sized {
    /// Runs `self` in `ctx`: every poll, and the drop, enter it.
    fn with_context(self, ctx: Context) -> WithContext<Self> {
        WithContext::new(self, ctx)
    }

    /// Runs `self` in a snapshot of the current context taken now.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::{ContextVar, FutureExt};
    ///
    /// static USER: ContextVar<&str> = ContextVar::new("user");
    ///
    /// # futures::executor::block_on(async {
    /// USER.set("alice");
    /// let task = async { USER.get() }.with_current_context();
    /// USER.set("bob");
    /// assert_eq!(task.await, Some("alice"));
    /// # });
    /// ```
    fn with_current_context(self) -> WithContext<Self> {
        self.with_context(Context::current())
    }
}

impl<T: Sized> FutureExt for T {}
