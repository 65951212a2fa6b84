//! [`WithContext`]: a future or stream that runs in its own context.

use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use futures_core::{FusedFuture, FusedStream, Stream};
use pin_project_lite::pin_project;

use crate::Context;
use crate::current;

pin_project! {
    /// Future for [`with_context`] and [`FutureExt::with_context`](crate::FutureExt::with_context).
    ///
    /// Every poll enters the wrapped [`Context`] and leaves it again before returning, so the
    /// future is an independent task context (an asyncio `Task`): its sets persist across polls
    /// and never leak into the polling thread, and values set outside after the wrap are not
    /// seen. The inner future is dropped inside the context too, so its destructors see its
    /// values. Also a [`Stream`] when the inner value is one.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct WithContext<F> {
        context: Context,
        // `None` only while dropping: the inner future is dropped inside `context`.
        #[pin]
        inner: Option<F>,
    }

    impl<F> PinnedDrop for WithContext<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            let mut inner = this.inner;
            if inner.is_some() {
                current::enter(this.context, || inner.set(None));
            }
        }
    }
}

impl<F> WithContext<F> {
    /// Wraps `inner` so that it runs in `context`.
    pub fn new(inner: F, context: Context) -> Self {
        Self { context, inner: Some(inner) }
    }

    /// The context the inner future runs in, with the changes it has made so far; for
    /// example to set a value in it with [`Context::run`] before the first poll, or to take
    /// a snapshot with `clone`.
    #[must_use]
    pub fn context_mut(self: Pin<&mut Self>) -> &mut Context {
        self.project().context
    }

    /// The wrapped future.
    #[must_use]
    pub fn inner(&self) -> &F {
        match &self.inner {
            Some(inner) => inner,
            None => unreachable!("the inner future is only taken while dropping"),
        }
    }
}

impl<F> std::fmt::Debug for WithContext<F> {
    /// Shows the context (its variables' names), not the inner future.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WithContext").field("context", &self.context).finish_non_exhaustive()
    }
}

impl<F: std::future::Future> std::future::Future for WithContext<F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        let this = self.project();
        let inner = this.inner.as_pin_mut();
        current::enter(this.context, || inner.map_or(Poll::Pending, |inner| inner.poll(cx)))
    }
}

impl<F: FusedFuture> FusedFuture for WithContext<F> {
    fn is_terminated(&self) -> bool {
        self.inner.as_ref().is_none_or(FusedFuture::is_terminated)
    }
}

impl<S: Stream> Stream for WithContext<S> {
    type Item = S::Item;

    #[inline]
    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<S::Item>> {
        let this = self.project();
        let inner = this.inner.as_pin_mut();
        current::enter(this.context, || inner.map_or(Poll::Ready(None), |inner| inner.poll_next(cx)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.as_ref().map_or((0, Some(0)), Stream::size_hint)
    }
}

impl<S: FusedStream> FusedStream for WithContext<S> {
    fn is_terminated(&self) -> bool {
        self.inner.as_ref().is_none_or(FusedStream::is_terminated)
    }
}

/// Wraps `fut` so that it runs in a snapshot of the current context taken now.
///
/// The usual way to hand a request's values to a spawned task on any executor:
/// `spawn(with_context(task))`.
///
/// # Examples
///
/// ```
/// use contextvars::{with_context, ContextVar};
///
/// static REQUEST: ContextVar<u64> = ContextVar::new("request");
///
/// # futures::executor::block_on(async {
/// REQUEST.set(1);
/// let task = with_context(async {
///     let seen = REQUEST.get();
///     REQUEST.set(2); // stays inside the task
///     seen
/// });
/// REQUEST.set(3); // after the snapshot: not seen by the task
/// assert_eq!(task.await, Some(1));
/// assert_eq!(REQUEST.get(), Some(3));
/// # });
/// ```
pub fn with_context<F: std::future::Future>(fut: F) -> WithContext<F> {
    WithContext::new(fut, Context::current())
}
