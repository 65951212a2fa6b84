//! [`ResponseFuture`]: the response future of [`TraceService`](super::TraceService).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use http::{HeaderValue, Response};
use pin_project_lite::pin_project;

use super::http::X_TRACE_ID_NAME;
use crate::WithContext;

pin_project! {
    /// Future for [`TraceService::call`](super::TraceService): polls the inner response future
    /// in the request's context and echoes the correlation ID in `X-Trace-ID`.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: WithContext<F>,
        echo: Option<HeaderValue>,
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn new(inner: WithContext<F>, echo: Option<HeaderValue>) -> Self {
        Self { inner, echo }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = std::task::ready!(this.inner.poll(cx))?;
        if let Some(echo) = this.echo.take() {
            response.headers_mut().insert(X_TRACE_ID_NAME.clone(), echo);
        }
        Poll::Ready(Ok(response))
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").field("echo", &self.echo).finish_non_exhaustive()
    }
}
