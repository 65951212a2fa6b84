//! [`TraceLayer`]: `tower` middleware that runs each request in a context holding its trace.

use std::task::{Context as TaskContext, Poll};

use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use super::{ResponseFuture, TRACE_CONTEXT, TraceContext};
use crate::{Context, FutureExt};

/// A `tower` layer that gives every request its [`TraceContext`].
///
/// For each request, [`TraceService`] extracts the trace from the headers
/// ([`TraceContext::extract`]) and calls the inner service inside a snapshot of the current
/// context with [`TRACE_CONTEXT`] set: the call itself, every poll of the response future,
/// and every task spawned from it with the crate's helpers see it, through
/// [`TraceContext::current`]. The response carries the correlation ID back in `X-Trace-ID`.
/// Nothing is reset by hand: nothing leaks out of the request's own context.
///
/// # Examples
///
/// ```
/// use contextvars::trace::{TraceContext, TraceLayer};
/// use http::{Request, Response};
/// use tower::{service_fn, Layer, Service, ServiceExt};
///
/// # futures::executor::block_on(async {
/// let handler = service_fn(|_req: Request<()>| async {
///     let id = TraceContext::current().unwrap().correlation_id().to_string();
///     Ok::<_, std::convert::Infallible>(Response::new(id))
/// });
/// let mut service = TraceLayer::new().layer(handler);
///
/// let request = Request::builder().header("x-trace-id", "abc-123").body(()).unwrap();
/// let response = service.ready().await.unwrap().call(request).await.unwrap();
/// assert_eq!(response.body(), "abc-123");
/// assert_eq!(response.headers()["x-trace-id"], "abc-123");
/// # });
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceLayer {
    _private: (),
}

impl TraceLayer {
    /// The layer.
    #[must_use]
    pub const fn new() -> Self {
        Self { _private: () }
    }
}

impl<S> Layer<S> for TraceLayer {
    type Service = TraceService<S>;

    fn layer(&self, inner: S) -> TraceService<S> {
        TraceService { inner }
    }
}

/// The service built by [`TraceLayer`]; see there for what it does.
///
/// # Examples
///
/// ```
/// use contextvars::trace::{TraceContext, TraceService};
/// use http::{Request, Response};
/// use tower::{service_fn, ServiceExt};
///
/// # futures::executor::block_on(async {
/// let handler = service_fn(|_req: Request<()>| async {
///     Ok::<_, std::convert::Infallible>(Response::new(TraceContext::current().is_some()))
/// });
/// let service = TraceService::new(handler);
/// let response = service.oneshot(Request::new(())).await.unwrap();
/// assert!(*response.body());
/// assert_eq!(response.headers()["x-trace-id"].len(), 32); // a generated ID
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct TraceService<S> {
    inner: S,
}

impl<S> TraceService<S> {
    /// Wraps `inner`; the same as `TraceLayer::new().layer(inner)`.
    pub const fn new(inner: S) -> Self {
        Self { inner }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, B, RB> Service<Request<B>> for TraceService<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
{
    type Response = Response<RB>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let trace = TraceContext::extract(request.headers());
        let echo = http::HeaderValue::from_str(trace.correlation_id().as_str()).ok();
        let mut context = Context::current().with_value(&TRACE_CONTEXT, trace);
        let inner = &mut self.inner;
        let future = context.run(|| inner.call(request));
        ResponseFuture::new(future.with_context(context), echo)
    }
}
