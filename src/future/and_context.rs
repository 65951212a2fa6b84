//! [`AndContext`]: a [`WithContext`] that hands its context back with the output.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, ready};

use futures_core::FusedFuture;
use pin_project_lite::pin_project;

use super::WithContext;
use crate::Context;

pin_project! {
    /// Future for [`WithContext::and_context`].
    ///
    /// Completes with the inner future's output and the context it ran in, as it left it.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::{AndContext, ContextVar, FutureExt};
    ///
    /// static N: ContextVar<u32> = ContextVar::new("n");
    ///
    /// # futures::executor::block_on(async {
    /// let task: AndContext<_> = async {
    ///     N.set(2);
    /// }
    /// .in_current_context()
    /// .and_context();
    /// let ((), ctx) = task.await;
    /// assert_eq!(ctx.get(&N), Some(&2));
    /// # });
    /// ```
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct AndContext<F> {
        #[pin]
        inner: WithContext<F>,
    }
}

impl<F> AndContext<F> {
    pub(super) fn new(inner: WithContext<F>) -> Self {
        Self { inner }
    }
}

impl<F> std::fmt::Debug for AndContext<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AndContext").field("inner", &self.inner).finish()
    }
}

impl<F: Future> Future for AndContext<F> {
    type Output = (F::Output, Context);

    /// # Panics
    ///
    /// If called again after returning `Poll::Ready`.
    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let mut inner = self.project().inner;
        let output = ready!(inner.as_mut().poll(cx));
        Poll::Ready((output, inner.take_context()))
    }
}

impl<F: FusedFuture> FusedFuture for AndContext<F> {
    fn is_terminated(&self) -> bool {
        self.inner.is_terminated()
    }
}
