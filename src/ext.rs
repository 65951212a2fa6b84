//! [`FutureExt`]: `.in_context(ctx)` and `.in_current_context()` on any future or stream.

use crate::{Context, WithContext};

/// Adds [`in_context`](Self::in_context) and [`in_current_context`](Self::in_current_context)
/// to every future and stream: the names tracing's `Instrument` uses for its spans, so that
/// `anyhow::Context` and opentelemetry's `FutureExt` can be in scope beside it.
///
/// With the `rayon` feature they are also the rayon adapter, on any parallel iterator:
/// `items.par_iter().in_current_context().map(f)` runs every closure of the chain in a copy of
/// the caller's context (see the `contextvars::rayon` module, whose `use contextvars::rayon::*`
/// brings this trait).
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
/// let seen = async { USER.get() }.in_context(ctx).await;
/// assert_eq!(seen, Some("alice"));
/// # });
/// ```
pub trait FutureExt: Sized {
    /// Runs `self` in `ctx`: every poll, and the drop, enter it.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::{Context, ContextVar, FutureExt};
    ///
    /// static USER: ContextVar<&str> = ContextVar::new("user");
    ///
    /// # futures::executor::block_on(async {
    /// let task = async { USER.get() }.in_context(Context::new().with_value(&USER, "bob"));
    /// assert_eq!(task.await, Some("bob"));
    /// # });
    /// ```
    fn in_context(self, ctx: Context) -> WithContext<Self> {
        WithContext::new(self, ctx)
    }

    /// Runs `self` in a snapshot of the current context taken now: what
    /// [`with_context`](crate::with_context) does, as a method.
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
    /// let task = async { USER.get() }.in_current_context();
    /// USER.set("bob");
    /// assert_eq!(task.await, Some("alice"));
    /// # });
    /// ```
    fn in_current_context(self) -> WithContext<Self> {
        self.in_context(crate::current::inherit())
    }
}

impl<T: Sized> FutureExt for T {}
