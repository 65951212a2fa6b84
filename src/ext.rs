//! [`FutureExt`]: `.with_context(ctx)`, `.with_current_context()` and `.with_var(var, value)`
//! on any future or stream.

use crate::{Context, ContextVar, WithContext};

/// Adds [`with_context`](Self::with_context),
/// [`with_current_context`](Self::with_current_context) and [`with_var`](Self::with_var) to
/// every future and stream.
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

    /// Runs `self` in a snapshot of the current context with `var` set to `value`: tokio's
    /// `LocalKey::scope`, for any variable, on any executor.
    ///
    /// The value holds for every poll of `self` and for its drop, and never shows outside.
    /// This is the future-scoped twin of [`ContextVar::scope`], which is synchronous: its
    /// closure's *call* runs with the value, but a future returned by that closure runs
    /// later, after the value was restored. `VAR.scope(5, || async { VAR.get() }).await`
    /// compiles and yields the value of `VAR` outside the scope; write
    /// `async { VAR.get() }.with_var(&VAR, 5).await` instead.
    ///
    /// (Not named `with_value`: [`Context::with_value`] keeps working on a `Context` with
    /// this trait in scope.)
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::{ContextVar, FutureExt};
    ///
    /// static USER: ContextVar<&str> = ContextVar::new("user");
    /// static DEPTH: ContextVar<u32> = ContextVar::new("depth");
    ///
    /// # futures::executor::block_on(async {
    /// USER.set("alice");
    /// let seen = async { (USER.get(), DEPTH.get()) }.with_var(&DEPTH, 1).await;
    /// assert_eq!(seen, (Some("alice"), Some(1))); // the rest of the context is inherited
    /// assert_eq!(DEPTH.get(), None);
    ///
    /// // the synchronous scope does not reach into the future it returns
    /// let lost = DEPTH.scope(2, || async { DEPTH.get() }).await;
    /// assert_eq!(lost, None);
    /// # });
    /// ```
    fn with_var<T: Send + Sync + 'static>(self, var: &ContextVar<T>, value: T) -> WithContext<Self> {
        self.with_context(Context::current().with_value(var, value))
    }
}

impl<T: Sized> FutureExt for T {}
