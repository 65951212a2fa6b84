//! [`TraceContextLayer`]: `tower` middleware that runs each request in a context holding its
//! trace, and [`TraceContextService`], the service it builds.

use std::task::{Context as TaskContext, Poll};

use http::{HeaderName, HeaderValue, Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use super::{TRACE_CONTEXT, TraceContext, TraceContextBody, TraceContextFuture};
use crate::{Context, FutureExt};

/// A `tower` layer that gives every request its [`TraceContext`].
///
/// For each request, [`TraceContextService`] extracts the trace from the headers (as
/// [`TraceContext::extract`] does) and calls the inner service inside a snapshot of the
/// current context with [`TRACE_CONTEXT`] set: the call itself, every poll of the response
/// future, every poll of the response body's frames ([`TraceContextBody`]: a streamed or
/// server-sent body keeps its ID to the last frame), and every task spawned from them with
/// the crate's helpers see it, through [`TraceContext::current`]. The response carries the
/// correlation ID back in the ID header. Nothing is reset by hand: nothing leaks out of the
/// request's own context.
///
/// # Configuration
///
/// | method | default | what it changes |
/// |---|---|---|
/// | [`id_header`](Self::id_header) | `x-trace-id` | the header that pins the correlation ID and echoes it (nginx, Envoy and Heroku use `x-request-id`) |
/// | [`trust_incoming`](Self::trust_incoming) | `true` | `false` ignores every incoming trace header (ID header, `traceparent`, `tracestate`): each request starts a new trace. For a service that clients reach directly rather than through a trusted proxy |
/// | [`echo`](Self::echo) | `true` | `false` leaves the response's headers alone |
///
/// When echoing, the layer's value replaces an ID header the handler set itself: the
/// response always names the ID that the request's log lines carry.
///
/// # Ordering
///
/// Make it the **outermost** layer (the last `.layer()` call on an axum `Router`, the first
/// in a `tower::ServiceBuilder`). A middleware outside it runs before the request's context
/// exists and after it is gone: its lines, access logs included, show `no-trace`.
///
/// ```
/// use contextvars::trace::TraceContextLayer;
/// use tower::ServiceBuilder;
/// # use tower::Layer;
/// # let access_log = tower::layer::util::Identity::new();
/// # let handler = tower::service_fn(|_: http::Request<()>| async { Ok::<_, std::convert::Infallible>(http::Response::new(())) });
///
/// let service = ServiceBuilder::new()
///     .layer(TraceContextLayer::new()) // first: outermost
///     .layer(access_log)               // its lines carry the request's ID
///     .service(handler);
/// # drop(service);
/// ```
///
/// # Examples
///
/// ```
/// use contextvars::trace::{TraceContext, TraceContextLayer};
/// use http::{Request, Response};
/// use tower::{service_fn, Layer, Service, ServiceExt};
///
/// # futures::executor::block_on(async {
/// let handler = service_fn(|_req: Request<()>| async {
///     let id = TraceContext::current().unwrap().correlation_id().to_string();
///     Ok::<_, std::convert::Infallible>(Response::new(id))
/// });
/// let mut service = TraceContextLayer::new().id_header(http::HeaderName::from_static("x-request-id")).layer(handler);
///
/// let request = Request::builder().header("x-request-id", "abc-123").body(()).unwrap();
/// let response = service.ready().await.unwrap().call(request).await.unwrap();
/// assert_eq!(response.headers()["x-request-id"], "abc-123");
/// assert_eq!(response.into_body().into_inner(), "abc-123");
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct TraceContextLayer {
    config: Config,
}

#[derive(Debug, Clone)]
struct Config {
    id_header: HeaderName,
    trust_incoming: bool,
    echo: bool,
}

impl Config {
    const DEFAULT: Self = Self {
        id_header: HeaderName::from_static(super::context::X_TRACE_ID),
        trust_incoming: true,
        echo: true,
    };
}

impl TraceContextLayer {
    /// The layer with its defaults: `x-trace-id`, incoming headers trusted, the ID echoed.
    #[must_use]
    pub const fn new() -> Self {
        Self { config: Config::DEFAULT }
    }

    /// Reads the pinned correlation ID from `name`, and echoes it there, instead of
    /// `x-trace-id`.
    #[must_use]
    pub fn id_header(mut self, name: HeaderName) -> Self {
        self.config.id_header = name;
        self
    }

    /// Whether to use the trace headers a request carries (default `true`). With `false`,
    /// every request starts a new trace with a generated ID, whatever the client sent.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::trace::{IdSource, TraceContext, TraceContextLayer};
    /// use http::{Request, Response};
    /// use tower::{service_fn, Layer, ServiceExt};
    ///
    /// # futures::executor::block_on(async {
    /// let handler = service_fn(|_: Request<()>| async {
    ///     Ok::<_, std::convert::Infallible>(Response::new(TraceContext::current().unwrap().source()))
    /// });
    /// let edge = TraceContextLayer::new().trust_incoming(false).layer(handler);
    /// let request = Request::builder().header("x-trace-id", "from-a-client").body(()).unwrap();
    /// let response = edge.oneshot(request).await.unwrap();
    /// assert_eq!(*response.body().get_ref(), IdSource::Generated);
    /// assert_ne!(response.headers()["x-trace-id"], "from-a-client");
    /// # });
    /// ```
    #[must_use]
    pub const fn trust_incoming(mut self, trust: bool) -> Self {
        self.config.trust_incoming = trust;
        self
    }

    /// Whether the response carries the correlation ID in the ID header (default `true`).
    #[must_use]
    pub const fn echo(mut self, echo: bool) -> Self {
        self.config.echo = echo;
        self
    }
}

impl Default for TraceContextLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> Layer<S> for TraceContextLayer {
    type Service = TraceContextService<S>;

    fn layer(&self, inner: S) -> TraceContextService<S> {
        TraceContextService { inner, config: self.config.clone() }
    }
}

/// The service built by [`TraceContextLayer`]; see there for what it does.
///
/// # Examples
///
/// ```
/// use contextvars::trace::{TraceContext, TraceContextService};
/// use http::{Request, Response};
/// use tower::{service_fn, ServiceExt};
///
/// # futures::executor::block_on(async {
/// let handler = service_fn(|_req: Request<()>| async {
///     Ok::<_, std::convert::Infallible>(Response::new(TraceContext::current().is_some()))
/// });
/// let service = TraceContextService::new(handler);
/// let response = service.oneshot(Request::new(())).await.unwrap();
/// assert!(*response.body().get_ref());
/// assert_eq!(response.headers()["x-trace-id"].len(), 32); // a generated ID
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct TraceContextService<S> {
    inner: S,
    config: Config,
}

impl<S> TraceContextService<S> {
    /// Wraps `inner` with the default configuration; the same as
    /// `TraceContextLayer::new().layer(inner)`.
    pub const fn new(inner: S) -> Self {
        Self { inner, config: Config::DEFAULT }
    }

    /// The wrapped service.
    pub const fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub const fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The trace of a request with these headers, as configured.
    fn trace_of(&self, headers: &http::HeaderMap) -> TraceContext {
        if !self.config.trust_incoming {
            return TraceContext::new_root();
        }
        let values = |name: &HeaderName| headers.get_all(name).into_iter().map(HeaderValue::as_bytes);
        TraceContext::from_parts(
            values(&self.config.id_header),
            values(&super::http::TRACEPARENT_NAME),
            values(&super::http::TRACESTATE_NAME),
        )
    }
}

impl<S, B, RB> Service<Request<B>> for TraceContextService<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
{
    type Response = Response<TraceContextBody<RB>>;
    type Error = S::Error;
    type Future = TraceContextFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let trace = self.trace_of(request.headers());
        let echo = if self.config.echo {
            HeaderValue::from_str(trace.correlation_id().as_str())
                .ok()
                .map(|value| (self.config.id_header.clone(), value))
        } else {
            None
        };
        let mut context = Context::current().with_value(&TRACE_CONTEXT, trace);
        let inner = &mut self.inner;
        let future = context.run(|| inner.call(request));
        TraceContextFuture::new(future.with_context(context.clone()), context, echo)
    }
}
