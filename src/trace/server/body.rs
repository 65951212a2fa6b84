//! [`ResponseBody`]: a response body whose frames are polled in the request's context.

use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::Context;

pin_project! {
    /// The response body of [`TraceContextServer`](super::TraceContextServer): the
    /// handler's body, each frame polled in the request's context, so that a streamed body
    /// (server-sent events, a chunked download) that logs while it produces frames logs with
    /// the request's ID, to the last frame. The body is dropped in that context too.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::trace::{CurrentCorrelationId, TraceContext};
    /// use contextvars::trace::server::ResponseBody;
    /// use http_body_util::{BodyExt, StreamBody};
    /// use hyper::body::{Bytes, Frame};
    ///
    /// # futures::executor::block_on(async {
    /// let frames = futures::stream::iter(0..2).map(|i| {
    ///     // a frame logs while it is produced
    ///     Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(format!("{i}:{CurrentCorrelationId} "))))
    /// });
    /// # use futures::StreamExt;
    /// let trace = TraceContext::extract(&[("x-trace-id", &b"sse-1"[..])]);
    /// let context = trace.set_in(&contextvars::Context::new());
    /// let body = ResponseBody::new(StreamBody::new(frames), context);
    /// let bytes = body.collect().await.unwrap().to_bytes();
    /// assert_eq!(bytes, "0:sse-1 1:sse-1 ");
    /// # });
    /// ```
    #[must_use = "a body does nothing unless polled"]
    pub struct ResponseBody<B> {
        #[pin]
        inner: Option<B>,
        context: Context,
    }

    impl<B> PinnedDrop for ResponseBody<B> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            let mut inner = this.inner;
            this.context.run(|| inner.set(None));
        }
    }
}

impl<B> ResponseBody<B> {
    /// Wraps `inner`, to be polled in `context`.
    #[must_use = "a body does nothing unless polled"]
    pub fn new(inner: B, context: Context) -> Self {
        Self { inner: Some(inner), context }
    }

    /// The wrapped body.
    ///
    /// # Panics
    ///
    /// Never: the body is only taken out when `self` is dropped.
    #[must_use]
    pub fn get_ref(&self) -> &B {
        self.inner.as_ref().expect("present until drop")
    }

    /// The wrapped body, mutably.
    ///
    /// # Panics
    ///
    /// Never: the body is only taken out when `self` is dropped.
    pub fn get_mut(&mut self) -> &mut B {
        self.inner.as_mut().expect("present until drop")
    }

    /// The wrapped body, unwrapped (it is then no longer polled in the request's context).
    ///
    /// # Panics
    ///
    /// Never: the body is only taken out here or when `self` is dropped.
    pub fn into_inner(mut self) -> B {
        self.inner.take().expect("present until drop")
    }
}

impl<B: Body> Body for ResponseBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.project();
        let inner = this.inner;
        this.context.run(|| match inner.as_pin_mut() {
            Some(body) => body.poll_frame(cx),
            None => Poll::Ready(None),
        })
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.as_ref().map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

impl<B> std::fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody").finish_non_exhaustive()
    }
}
