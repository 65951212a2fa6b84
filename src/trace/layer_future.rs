//! [`TraceContextFuture`]: the response future of
//! [`TraceContextService`](super::TraceContextService).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use http::{HeaderName, HeaderValue, Response};
use pin_project_lite::pin_project;

use super::TraceContextBody;
use crate::{Context, WithContext};

pin_project! {
    /// Future for [`TraceContextService::call`](super::TraceContextService): polls the inner
    /// response future in the request's context, echoes the correlation ID, and wraps the
    /// body so that its frames are polled in the request's context too.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct TraceContextFuture<F> {
        #[pin]
        inner: WithContext<F>,
        context: Option<Context>,
        echo: Option<(HeaderName, HeaderValue)>,
    }
}

impl<F> TraceContextFuture<F> {
    pub(super) fn new(
        inner: WithContext<F>,
        context: Context,
        echo: Option<(HeaderName, HeaderValue)>,
    ) -> Self {
        Self { inner, context: Some(context), echo }
    }
}

impl<F, B, E> Future for TraceContextFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<TraceContextBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = std::task::ready!(this.inner.poll(cx))?;
        if let Some((name, value)) = this.echo.take() {
            response.headers_mut().insert(name, value);
        }
        let context = this.context.take().unwrap_or_default();
        Poll::Ready(Ok(response.map(|body| TraceContextBody::new(body, context))))
    }
}

impl<F> std::fmt::Debug for TraceContextFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceContextFuture").field("echo", &self.echo).finish_non_exhaustive()
    }
}
