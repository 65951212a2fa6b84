//! Server-side `tower` middleware (feature `tower-trace`): [`TraceContextServerLayer`] runs
//! each request in a context of its own holding its trace; [`TraceContextServer`] is the
//! service it builds, [`ResponseFuture`] its response future and [`ResponseBody`] its
//! response body. The layout is tower-http's; the layer is named so that it cannot clash with
//! `tower_http::trace::TraceLayer`. The client side is `contextvars::trace::client`.
//!
//! For each request the layer extracts the trace ([`TraceContext::extract`]), runs the inner
//! service's call, every poll of its response future and every poll of the response body's
//! frames (a streamed or server-sent body logs with its request's ID to the last frame) in a
//! context of the request's own holding it, and echoes the correlation ID in the response's
//! `X-Trace-ID`, replacing one the handler set. Handlers may `set` freely: nothing leaks out
//! of the request's context, and nothing is reset by hand.
//!
//! It must be the **outermost** layer: a middleware outside it runs before the request's
//! context exists, so its lines (access logs included) show `no-trace`. Its settings are in
//! [`TraceContextServerLayer`]'s table: `.id_header(HeaderName::from_static("x-request-id"))`
//! (what nginx, Envoy and Heroku send), `.trust_incoming(false)` (for a service that clients
//! reach without a trusted proxy in front), `.trust_baggage(false)`, `.echo(false)`,
//! `.baggage_vars(..)`.
//!
//! # A forgotten layer, on tokio
//!
//! Without the layer, a handler that sets the request's ID (with
//! `TraceContext::extract(&headers).set()`, say) sets it in whatever context its task has.
//! Served by tokio with nothing giving tasks their own context, that is a worker thread's own
//! context, shared by every task the thread polls. The guarantee that a request never sees
//! another request's ID there, so that no log line and no outgoing call carries a foreign ID,
//! **needs the `tokio` feature**: with it, such a `set` stays the task's own on that thread,
//! every other request reads as if it had not been made (its lines say `no-trace`), and
//! debug builds report the `set`'s file and line (see `contextvars::tokio`). Without the
//! feature, the next request polled on that thread logs with the ID it finds there. The
//! layer remains the fix.
//!
//! # axum on tokio
//!
//! ```toml
//! [dependencies]
//! contextvars = { version = "0.1", features = ["tower-trace", "tokio"] }
//! axum = "0.8"
//! tokio = { version = "1", features = ["macros", "rt-multi-thread"] }
//! tower = { version = "0.5", features = ["util"] }
//! ```
//!
//! `tower`'s `util` feature brings `oneshot`, which calls the app once here, in place of
//! `axum::serve`. The handler spawns a task with `.in_current_context()`, which
//! `contextvars::tokio::spawn` does for you with the `tokio` feature:
//!
//! ```
//! use axum::body::Body;
//! use axum::http::Request;
//! use axum::{Router, routing::get};
//! use contextvars::FutureExt;
//! use contextvars::trace::TraceContext;
//! use contextvars::trace::server::TraceContextServerLayer;
//! use tower::ServiceExt;
//!
//! async fn checkout() -> String {
//!     let trace = TraceContext::current().expect("inside a request");
//!     // A task spawned in the request's context keeps its trace.
//!     let task = tokio::spawn(async { TraceContext::current() }.in_current_context());
//!     assert_eq!(task.await.unwrap().as_ref(), Some(&trace));
//!     format!("handled in {}", trace.correlation_id())
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let app = Router::new().route("/checkout", get(checkout)).layer(TraceContextServerLayer::new());
//! // To serve it: axum::serve(tokio::net::TcpListener::bind("0.0.0.0:3000").await?, app).await
//! let request = Request::get("/checkout").header("x-trace-id", "order-42").body(Body::empty()).unwrap();
//! let response = app.oneshot(request).await.unwrap();
//! assert_eq!(response.headers()["x-trace-id"], "order-42");
//! let body = axum::body::to_bytes(response.into_body(), 1024).await.unwrap();
//! assert_eq!(body, "handled in order-42");
//! # });
//! ```
//!
//! # hyper on smol, or any executor
//!
//! ```toml
//! [dependencies]
//! contextvars = { version = "0.1", features = ["tower-trace"] }
//! http-body-util = "0.1"
//! hyper = { version = "1", features = ["http1", "server"] }
//! hyper-util = { version = "0.1", features = ["service"] }
//! smol = "2"
//! smol-hyper = "0.1"
//! tower = { version = "0.5", features = ["util"] }
//! ```
//!
//! ```
//! use std::convert::Infallible;
//!
//! use contextvars::trace::TraceContext;
//! use contextvars::trace::server::TraceContextServerLayer;
//! use http_body_util::Full;
//! use hyper::body::{Bytes, Incoming};
//! use hyper::{Request, Response};
//! use hyper_util::service::TowerToHyperService;
//! use smol::io::{AsyncReadExt, AsyncWriteExt};
//! use tower::Layer;
//!
//! async fn handler(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
//!     let id = TraceContext::current().expect("inside a request").correlation_id().to_string();
//!     Ok(Response::new(Full::new(Bytes::from(id))))
//! }
//!
//! async fn serve(listener: smol::net::TcpListener) -> std::io::Result<()> {
//!     loop {
//!         let (stream, _) = listener.accept().await?;
//!         let service = TowerToHyperService::new(TraceContextServerLayer::new().layer(tower::service_fn(handler)));
//!         let connection = hyper::server::conn::http1::Builder::new()
//!             .serve_connection(smol_hyper::rt::FuturesIo::new(stream), service);
//!         smol::spawn(async move { connection.await }).detach();
//!     }
//! }
//!
//! smol::block_on(async {
//!     let listener = smol::net::TcpListener::bind("127.0.0.1:0").await?;
//!     let address = listener.local_addr()?;
//!     let _server = smol::spawn(serve(listener));
//!     // One request with a pinned ID, over a plain TCP connection.
//!     let mut stream = smol::net::TcpStream::connect(address).await?;
//!     stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Trace-ID: job-7\r\nConnection: close\r\n\r\n").await?;
//!     let mut response = String::new();
//!     stream.read_to_string(&mut response).await?;
//!     assert!(response.to_ascii_lowercase().contains("\r\nx-trace-id: job-7\r\n"));
//!     assert!(response.ends_with("\r\n\r\njob-7"));
//!     Ok::<_, std::io::Error>(())
//! })?;
//! # Ok::<_, std::io::Error>(())
//! ```
//!
//! # Context variables that travel between services
//!
//! A [`BaggageVar`](super::BaggageVar) declares a context variable that travels in W3C
//! baggage: the server layer sets it from the request's baggage, and the client layer sends
//! its current value, with no code at either boundary.
//!
//! ```
//! use std::convert::Infallible;
//!
//! use contextvars::ContextVar;
//! use contextvars::trace::client::TraceContextClientLayer;
//! use contextvars::trace::server::TraceContextServerLayer;
//! use contextvars::trace::{BaggageVar, TravellingVar};
//! use http::{Request, Response};
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! static TENANT: ContextVar<String> = ContextVar::new("tenant");
//! static TRAVELLING: [&dyn TravellingVar; 1] = [&BaggageVar::string("tenant", &TENANT)];
//!
//! futures::executor::block_on(async {
//!     // Server: the handler runs with TENANT set from the request's baggage.
//!     let handler = service_fn(|_: Request<()>| async { Ok::<_, Infallible>(Response::new(TENANT.get())) });
//!     let server = TraceContextServerLayer::new().baggage_vars(&TRAVELLING).layer(handler);
//!     let request = Request::builder().header("baggage", "tenant=acme").body(()).unwrap();
//!     let response = server.oneshot(request).await.unwrap();
//!     assert_eq!(response.headers()["x-trace-id"].len(), 32); // a new trace
//!     assert_eq!(response.into_body().into_inner().as_deref(), Some("acme"));
//!     assert_eq!(TENANT.get(), None); // nothing leaked out of the request
//!
//!     // Client (hyper's, or any tower client): sends TENANT's current value.
//!     // A stand-in for the client here: it answers with the headers it was sent.
//!     let echo = service_fn(|request: Request<()>| async move {
//!         Ok::<_, Infallible>(Response::new(request.headers().clone()))
//!     });
//!     let client = TraceContextClientLayer::new().baggage_vars(&TRAVELLING).layer(echo);
//!     let call = TENANT.scope("acme".to_string(), client.oneshot(Request::new(())));
//!     assert_eq!(call.await.unwrap().into_body()["baggage"], "tenant=acme");
//! });
//! ```
//!
//! The repository's demo, `cargo run --example request_tracing --all-features`, carries a
//! tenant across its two services this way and counts the lines that lost it or show another
//! request's.

use std::task::{Context as TaskContext, Poll};

use http::{HeaderName, HeaderValue, Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use super::baggage_var::check_keys;
use super::{Baggage, TraceContext, TravellingVar};
use crate::{Context, FutureExt};

mod body;
mod future;

pub use body::ResponseBody;
pub use future::ResponseFuture;

/// A `tower` layer that gives every request its [`TraceContext`].
///
/// For each request, [`TraceContextServer`] extracts the trace from the headers (as
/// [`TraceContext::extract`] does) and calls the inner service inside a snapshot of the
/// current context with that trace current: the call itself, every poll of the response
/// future, every poll of the response body's frames ([`ResponseBody`]: a streamed or
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
/// | [`trust_baggage`](Self::trust_baggage) | `true` | `false` ignores the request's `baggage` |
/// | [`baggage_vars`](Self::baggage_vars) | none | the variables set from the request's baggage |
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
/// use contextvars::trace::server::TraceContextServerLayer;
/// use tower::ServiceBuilder;
/// # use tower::Layer;
/// # let access_log = tower::layer::util::Identity::new();
/// # let handler = tower::service_fn(|_: http::Request<()>| async { Ok::<_, std::convert::Infallible>(http::Response::new(())) });
///
/// let service = ServiceBuilder::new()
///     .layer(TraceContextServerLayer::new()) // first: outermost
///     .layer(access_log)               // its lines carry the request's ID
///     .service(handler);
/// # drop(service);
/// ```
///
/// # Examples
///
/// ```
/// use contextvars::trace::TraceContext;
/// use contextvars::trace::server::TraceContextServerLayer;
/// use http::{Request, Response};
/// use tower::{service_fn, Layer, Service, ServiceExt};
///
/// # futures::executor::block_on(async {
/// let handler = service_fn(|_req: Request<()>| async {
///     let id = TraceContext::current().unwrap().correlation_id().to_string();
///     Ok::<_, std::convert::Infallible>(Response::new(id))
/// });
/// let mut service = TraceContextServerLayer::new().id_header(http::HeaderName::from_static("x-request-id")).layer(handler);
///
/// let request = Request::builder().header("x-request-id", "abc-123").body(()).unwrap();
/// let response = service.ready().await.unwrap().call(request).await.unwrap();
/// assert_eq!(response.headers()["x-request-id"], "abc-123");
/// assert_eq!(response.into_body().into_inner(), "abc-123");
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct TraceContextServerLayer {
    config: Config,
}

#[derive(Clone)]
struct Config {
    id_header: HeaderName,
    trust_incoming: bool,
    trust_baggage: bool,
    echo: bool,
    baggage_vars: &'static [&'static dyn TravellingVar],
}

impl Config {
    const DEFAULT: Self = Self {
        id_header: HeaderName::from_static(super::context::X_TRACE_ID),
        trust_incoming: true,
        trust_baggage: true,
        echo: true,
        baggage_vars: &[],
    };
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("id_header", &self.id_header)
            .field("trust_incoming", &self.trust_incoming)
            .field("trust_baggage", &self.trust_baggage)
            .field("echo", &self.echo)
            .field("baggage_vars", &self.baggage_vars.iter().map(|v| v.key()).collect::<Vec<_>>())
            .finish()
    }
}

impl TraceContextServerLayer {
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
    /// use contextvars::trace::{IdSource, TraceContext};
    /// use contextvars::trace::server::TraceContextServerLayer;
    /// use http::{Request, Response};
    /// use tower::{service_fn, Layer, ServiceExt};
    ///
    /// # futures::executor::block_on(async {
    /// let handler = service_fn(|_: Request<()>| async {
    ///     Ok::<_, std::convert::Infallible>(Response::new(TraceContext::current().unwrap().source()))
    /// });
    /// let edge = TraceContextServerLayer::new().trust_incoming(false).layer(handler);
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

    /// Whether to read the request's `baggage` (default `true`; `false` also when
    /// [`trust_incoming`](Self::trust_incoming) is). Baggage is whatever the client sent:
    /// read it only behind a trusted proxy or from your own services.
    #[must_use]
    pub const fn trust_baggage(mut self, trust: bool) -> Self {
        self.config.trust_baggage = trust;
        self
    }

    /// The context variables set from the request's baggage: for each whose key the
    /// baggage holds, the handler runs with the decoded value (see [`BaggageVar`](super::BaggageVar)).
    ///
    /// # Panics
    ///
    /// When a key is not an HTTP token: that variable could never travel.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::ContextVar;
    /// use contextvars::trace::{BaggageVar, TravellingVar};
    /// use contextvars::trace::server::TraceContextServerLayer;
    /// use http::{Request, Response};
    /// use tower::{service_fn, Layer, ServiceExt};
    ///
    /// static TENANT: ContextVar<String> = ContextVar::new("tenant");
    /// static TRAVELLING: [&dyn TravellingVar; 1] = [&BaggageVar::string("tenant", &TENANT)];
    ///
    /// # futures::executor::block_on(async {
    /// let handler = service_fn(|_: Request<()>| async { Ok::<_, std::convert::Infallible>(Response::new(TENANT.get())) });
    /// let service = TraceContextServerLayer::new().baggage_vars(&TRAVELLING).layer(handler);
    /// let request = Request::builder().header("baggage", "tenant=acme,other=1").body(()).unwrap();
    /// let response = service.oneshot(request).await.unwrap();
    /// assert_eq!(response.into_body().into_inner().as_deref(), Some("acme"));
    /// # });
    /// ```
    #[must_use]
    #[track_caller]
    pub fn baggage_vars(mut self, vars: &'static [&'static dyn TravellingVar]) -> Self {
        check_keys(vars);
        self.config.baggage_vars = vars;
        self
    }

    /// Whether the response carries the correlation ID in the ID header (default `true`).
    #[must_use]
    pub const fn echo(mut self, echo: bool) -> Self {
        self.config.echo = echo;
        self
    }
}

impl Default for TraceContextServerLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> Layer<S> for TraceContextServerLayer {
    type Service = TraceContextServer<S>;

    fn layer(&self, inner: S) -> TraceContextServer<S> {
        TraceContextServer { inner, config: self.config.clone() }
    }
}

/// The service built by [`TraceContextServerLayer`]; see there for what it does.
///
/// # Examples
///
/// ```
/// use contextvars::trace::TraceContext;
/// use contextvars::trace::server::TraceContextServer;
/// use http::{Request, Response};
/// use tower::{service_fn, ServiceExt};
///
/// # futures::executor::block_on(async {
/// let handler = service_fn(|_req: Request<()>| async {
///     Ok::<_, std::convert::Infallible>(Response::new(TraceContext::current().is_some()))
/// });
/// let service = TraceContextServer::new(handler);
/// let response = service.oneshot(Request::new(())).await.unwrap();
/// assert!(*response.body().get_ref());
/// assert_eq!(response.headers()["x-trace-id"].len(), 32); // a generated ID
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct TraceContextServer<S> {
    inner: S,
    config: Config,
}

impl<S> TraceContextServer<S> {
    /// Wraps `inner` with the default configuration; the same as
    /// `TraceContextServerLayer::new().layer(inner)`.
    #[must_use]
    pub const fn new(inner: S) -> Self {
        Self { inner, config: Config::DEFAULT }
    }

    /// The wrapped service.
    #[must_use]
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
        let trace = TraceContext::from_parts(
            values(&self.config.id_header),
            values(&super::http::TRACEPARENT_NAME),
            values(&super::http::TRACESTATE_NAME),
        );
        if self.config.trust_baggage {
            trace.with_baggage(Baggage::extract(values(&super::http::BAGGAGE_NAME)))
        } else {
            trace
        }
    }

    /// The request's context: its trace, and the variables its baggage sets.
    fn context_of(&self, trace: TraceContext) -> Context {
        let mut context = Context::current().inherited();
        for var in self.config.baggage_vars {
            if let Some(value) = trace.baggage().get(var.key()) {
                if let Some(with_var) = var.decode_into(value, &context) {
                    context = with_var;
                }
            }
        }
        trace.set_in(&context)
    }
}

impl<S, B, RB> Service<Request<B>> for TraceContextServer<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
{
    type Response = Response<ResponseBody<RB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

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
        let mut context = self.context_of(trace);
        let inner = &mut self.inner;
        let future = context.run(|| inner.call(request));
        ResponseFuture::new(future.in_context(context.clone()), context, echo)
    }
}
