//! [`WithContext`]: a future, stream, sink or I/O object that runs in its own context.

mod and_context;
#[cfg(feature = "futures-io")]
mod io;
#[cfg(feature = "futures-sink")]
mod sink;

use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, ready};

use futures_core::{FusedFuture, FusedStream, Stream};
use pin_project_lite::pin_project;

pub use self::and_context::AndContext;
use crate::Context;
use crate::current;

pin_project! {
    /// Future for [`with_context`], [`FutureExt::in_context`](crate::FutureExt::in_context)
    /// and its siblings.
    ///
    /// Every poll enters the wrapped [`Context`] and leaves it again before returning, so the
    /// future is an independent task context (an asyncio `Task`): its sets persist across polls
    /// and never leak into the polling thread, and values set outside after the wrap are not
    /// seen.
    ///
    /// The inner future is dropped inside the context, so its destructors see its values, and
    /// as soon as it completes, so what it holds is released then rather than when the wrapper
    /// goes. [`and_context`](Self::and_context) hands the context back with the output.
    ///
    /// Also a [`Stream`] when the inner value is one, a `Sink` with the `futures-sink` feature,
    /// and an `AsyncRead`, `AsyncWrite` or `AsyncBufRead` with the `futures-io` feature: every
    /// call enters the context the same way. A stream is kept after its end, so that a type
    /// that is both a stream and a sink keeps its sink half.
    ///
    /// With the `rayon` feature, a rayon `ParallelIterator` when the inner value is one
    /// (`items.par_iter().in_current_context()`): there the calls run concurrently, so each
    /// call of the chain after it runs in its own copy of the context instead (see the
    /// `contextvars::rayon` module).
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::{Context, ContextVar, WithContext};
    ///
    /// static USER: ContextVar<&str> = ContextVar::new("user");
    ///
    /// # futures::executor::block_on(async {
    /// let task = WithContext::new(async { USER.get() }, Context::new().with_value(&USER, "alice"));
    /// assert_eq!(task.await, Some("alice"));
    /// # });
    /// ```
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct WithContext<F> {
        context: Context,
        // `None` once the inner future has completed (it is dropped inside `context` right
        // then), after `into_inner`, and while dropping.
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
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::{Context, ContextVar, WithContext};
    ///
    /// static N: ContextVar<u32> = ContextVar::new("n");
    ///
    /// # futures::executor::block_on(async {
    /// let task = WithContext::new(async { N.get() }, Context::new().with_value(&N, 1));
    /// assert_eq!(task.await, Some(1));
    /// # });
    /// ```
    pub fn new(inner: F, context: Context) -> Self {
        Self { context, inner: Some(inner) }
    }

    /// The context the inner future runs in, with the changes it has made so far; for
    /// example to set a value in it with [`Context::run`] before the first poll, or to take
    /// a snapshot with `clone`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::pin::pin;
    /// use contextvars::{ContextVar, FutureExt};
    ///
    /// static N: ContextVar<u32> = ContextVar::new("n");
    ///
    /// # futures::executor::block_on(async {
    /// let mut task = pin!(async { N.get() }.in_current_context());
    /// task.as_mut().context_mut().run(|| N.set(3));
    /// assert_eq!(task.await, Some(3));
    /// assert_eq!(N.get(), None);
    /// # });
    /// ```
    #[must_use]
    pub fn context_mut(self: Pin<&mut Self>) -> &mut Context {
        self.project().context
    }

    /// The wrapped future; `None` once it has completed (it is dropped then).
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::FutureExt;
    ///
    /// let task = std::future::ready(1).in_current_context();
    /// assert!(task.get_ref().is_some());
    /// ```
    #[must_use]
    pub fn get_ref(&self) -> Option<&F> {
        self.inner.as_ref()
    }

    /// The wrapped future, mutably; `None` once it has completed.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::FutureExt;
    ///
    /// let mut task = futures::future::ready(1).in_current_context();
    /// assert!(task.get_mut().is_some());
    /// ```
    #[must_use]
    pub fn get_mut(&mut self) -> Option<&mut F> {
        self.inner.as_mut()
    }

    /// The wrapped future, pinned; `None` once it has completed.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::pin::pin;
    /// use contextvars::FutureExt;
    ///
    /// # futures::executor::block_on(async {
    /// let mut task = pin!(async { 1 }.in_current_context());
    /// assert!(task.as_mut().get_pin_mut().is_some());
    /// assert_eq!(task.as_mut().await, 1);
    /// assert!(task.as_mut().get_pin_mut().is_none());
    /// # });
    /// ```
    #[must_use]
    pub fn get_pin_mut(self: Pin<&mut Self>) -> Option<Pin<&mut F>> {
        self.project().inner.as_pin_mut()
    }

    /// Unwraps the future, without its context; `None` once it has completed.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::{ContextVar, FutureExt};
    ///
    /// static N: ContextVar<u32> = ContextVar::new("n");
    ///
    /// # futures::executor::block_on(async {
    /// let task = N.scope(1, async { N.get() });
    /// let unwrapped = task.into_inner().unwrap();
    /// assert_eq!(unwrapped.await, None); // it now runs in the caller's context
    /// # });
    /// ```
    #[must_use]
    pub fn into_inner(mut self) -> Option<F> {
        self.inner.take()
    }

    /// Unwraps the future and its context, with the changes the future has made so far; the
    /// future is `None` once it has completed.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::{Context, ContextVar, FutureExt};
    ///
    /// static N: ContextVar<u32> = ContextVar::new("n");
    ///
    /// let task = N.scope(1, async { N.get() });
    /// let (future, context) = task.into_parts();
    /// assert!(future.is_some());
    /// assert_eq!(context.get(&N), Some(&1));
    /// ```
    #[must_use]
    pub fn into_parts(mut self) -> (Option<F>, Context) {
        (self.inner.take(), std::mem::take(&mut self.context))
    }

    /// A future that completes with the output of this one and its context as the future
    /// left it: Python's `create_task(coro, context=ctx)`, after which `ctx` holds what the
    /// task set.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::{Context, ContextVar, FutureExt};
    ///
    /// static STATUS: ContextVar<u16> = ContextVar::new("status");
    ///
    /// # futures::executor::block_on(async {
    /// let task = async {
    ///     STATUS.set(404);
    ///     "not found"
    /// };
    /// let (body, ctx) = task.in_context(Context::new()).and_context().await;
    /// assert_eq!((body, ctx.get(&STATUS)), ("not found", Some(&404)));
    /// assert_eq!(STATUS.get(), None);
    /// # });
    /// ```
    pub fn and_context(self) -> AndContext<F> {
        AndContext::new(self)
    }

    /// Takes the context out, for [`AndContext`] once the future has completed.
    fn take_context(self: Pin<&mut Self>) -> Context {
        std::mem::take(self.project().context)
    }

    /// Runs `f` on the inner value inside the context: one call of a stream, sink or I/O
    /// method.
    ///
    /// # Panics
    ///
    /// If the inner value is a future that has completed.
    #[inline]
    fn enter<'a, R>(self: Pin<&'a mut Self>, f: impl FnOnce(Pin<&'a mut F>) -> R) -> R {
        let this = self.project();
        let inner = this.inner.as_pin_mut();
        current::enter(this.context, || f(inner.unwrap_or_else(|| polled_after_completion())))
    }
}

#[cold]
#[inline(never)]
fn polled_after_completion() -> ! {
    panic!(
        "`WithContext` polled after its future completed: a future must not be polled again once \
         it has returned `Poll::Ready` (`futures::FutureExt::fuse` makes further polls return \
         `Poll::Pending`)"
    )
}

impl<F> std::fmt::Debug for WithContext<F> {
    /// Shows the context (its variables' names), not the inner future.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WithContext")
            .field("context", &self.context)
            .field("completed", &self.inner.is_none())
            .finish_non_exhaustive()
    }
}

impl<F: std::future::Future> std::future::Future for WithContext<F> {
    type Output = F::Output;

    /// Polls the inner future inside the context; drops it there once it completes.
    ///
    /// # Panics
    ///
    /// If called again after returning `Poll::Ready`.
    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        let this = self.project();
        let mut inner = this.inner;
        current::enter(this.context, || {
            let future = inner.as_mut().as_pin_mut().unwrap_or_else(|| polled_after_completion());
            let output = ready!(future.poll(cx));
            inner.set(None);
            Poll::Ready(output)
        })
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
        self.enter(|stream| stream.poll_next(cx))
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
    WithContext::new(fut, crate::current::inherit())
}
