//! [`ResponseFuture`]: the response future of [`TraceContextServer`](super::TraceContextServer).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use http::{HeaderName, HeaderValue, Response};
use pin_project_lite::pin_project;

use super::ResponseBody;
use crate::{Context, WithContext};

pin_project! {
    /// Future for [`TraceContextServer::call`](super::TraceContextServer): polls the inner
    /// response future in the request's context, echoes the correlation ID, and wraps the
    /// body so that its frames are polled in the request's context too.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: WithContext<F>,
        context: Option<Context>,
        echo: Option<(HeaderName, HeaderValue)>,
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn new(
        inner: WithContext<F>,
        context: Context,
        echo: Option<(HeaderName, HeaderValue)>,
    ) -> Self {
        Self { inner, context: Some(context), echo }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = std::task::ready!(this.inner.poll(cx))?;
        if let Some((name, value)) = this.echo.take() {
            response.headers_mut().insert(name, value);
        }
        let context = this.context.take().unwrap_or_default();
        Poll::Ready(Ok(response.map(|body| ResponseBody::new(body, context))))
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").field("echo", &self.echo).finish_non_exhaustive()
    }
}
