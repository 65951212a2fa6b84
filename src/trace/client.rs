//! Client-side `tower` middleware (feature `tower-trace`): [`TraceContextClientLayer`]
//! carries the current trace and the travelling variables on every outgoing request;
//! [`TraceContextClient`] is the service it builds. The server side is
//! `contextvars::trace::server`, whose guide shows both layers carrying a variable between
//! services.
//!
//! Without a `tower` client, [`TraceContext::inject`] writes the same headers on an
//! `http::HeaderMap` (feature `http`, which this one turns on) or on any
//! [`HeaderSink`](super::HeaderSink):
//!
//! ```
//! use contextvars::trace::{IdSource, TraceContext};
//! use http::HeaderMap;
//!
//! let mut incoming = HeaderMap::new();
//! incoming.insert("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap());
//! incoming.insert("tracestate", "congo=t61rcWkgMzE".parse().unwrap());
//! let trace = TraceContext::extract(&incoming);
//! assert_eq!(trace.correlation_id().as_str(), "4bf92f3577b34da6a3ce929d0e0e4736");
//! assert_eq!(trace.source(), IdSource::TraceParent);
//!
//! // An outgoing call: same trace-id and flags, a new parent-id, the tracestate, the X-Trace-ID.
//! let mut outgoing = HeaderMap::new();
//! trace.inject(&mut outgoing);
//! assert!(outgoing["traceparent"].to_str().unwrap().starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
//! assert_ne!(outgoing["traceparent"], incoming["traceparent"]); // a new parent-id
//! assert_eq!(outgoing["tracestate"], "congo=t61rcWkgMzE");
//! assert_eq!(outgoing["x-trace-id"], "4bf92f3577b34da6a3ce929d0e0e4736");
//! ```

use std::task::{Context as TaskContext, Poll};

use http::Request;
use http::header::{HeaderMap, HeaderValue};
use tower_layer::Layer;
use tower_service::Service;

use super::baggage_var::check_keys;
use super::http::BAGGAGE_NAME;
use super::{Baggage, TraceContext, TravellingVar};

/// A `tower` layer for a client (hyper's `Client`, a `service_fn` around a connection, any
/// `Service<http::Request<B>>`): each outgoing request gets the headers of the current
/// [`TraceContext`] ([`TraceContext::inject`]: `traceparent`, `tracestate`, `x-trace-id`)
/// and a `baggage` header: the request's own baggage, with the current values of the
/// [`baggage_vars`](Self::baggage_vars) set in it (a variable without a value is removed).
///
/// The headers are written when the request is passed to the client, so call the client
/// inside the request's context (in a handler, or a task spawned with the crate's helpers).
/// Outside any request, only the variables' baggage is sent. A variable whose value would
/// push the baggage past its limits (64 members, 8,192 bytes) is not sent.
///
/// # Examples
///
/// ```
/// use contextvars::ContextVar;
/// use contextvars::trace::{BaggageVar, TraceContext, TravellingVar};
/// use contextvars::trace::client::TraceContextClientLayer;
/// use http::{Request, Response};
/// use tower::{service_fn, Layer, ServiceExt};
///
/// static TENANT: ContextVar<String> = ContextVar::new("tenant");
/// static TRAVELLING: [&dyn TravellingVar; 1] = [&BaggageVar::string("tenant", &TENANT)];
///
/// // A stand-in for an HTTP client: answers with the headers it was sent.
/// let client = service_fn(|request: Request<()>| async move {
///     Ok::<_, std::convert::Infallible>(Response::new(request.headers().clone()))
/// });
/// let client = TraceContextClientLayer::new().baggage_vars(&TRAVELLING).layer(client);
///
/// # futures::executor::block_on(async {
/// let trace = TraceContext::extract(&[("x-trace-id", "job-7")]);
/// let request = async {
///     let _tenant = TENANT.set("acme".to_string()); // in this request's context only
///     client.oneshot(Request::new(())).await
/// };
/// let sent = trace.scope(request).await.unwrap().into_body();
/// assert_eq!(sent["x-trace-id"], "job-7");
/// assert_eq!(sent["baggage"], "tenant=acme");
/// # });
/// ```
#[derive(Clone)]
pub struct TraceContextClientLayer {
    vars: &'static [&'static dyn TravellingVar],
}

impl TraceContextClientLayer {
    /// The layer, with no travelling variables.
    #[must_use]
    pub const fn new() -> Self {
        Self { vars: &[] }
    }

    /// The context variables whose current values travel in the outgoing baggage.
    ///
    /// # Panics
    ///
    /// When a key is not an HTTP token: that variable could never travel.
    #[must_use]
    #[track_caller]
    pub fn baggage_vars(mut self, vars: &'static [&'static dyn TravellingVar]) -> Self {
        check_keys(vars);
        self.vars = vars;
        self
    }
}

impl Default for TraceContextClientLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for TraceContextClientLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<&str> = self.vars.iter().map(|v| v.key()).collect();
        f.debug_struct("TraceContextClientLayer").field("baggage_vars", &keys).finish()
    }
}

impl<S> Layer<S> for TraceContextClientLayer {
    type Service = TraceContextClient<S>;

    fn layer(&self, inner: S) -> TraceContextClient<S> {
        TraceContextClient { inner, vars: self.vars }
    }
}

/// The client service built by [`TraceContextClientLayer`]; see there for what it does.
#[derive(Clone)]
pub struct TraceContextClient<S> {
    inner: S,
    vars: &'static [&'static dyn TravellingVar],
}

impl<S> TraceContextClient<S> {
    /// Wraps `inner`, with no travelling variables; the same as
    /// `TraceContextClientLayer::new().layer(inner)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::trace::TraceContext;
    /// use contextvars::trace::client::TraceContextClient;
    /// use http::{Request, Response};
    /// use tower::{service_fn, ServiceExt};
    ///
    /// # futures::executor::block_on(async {
    /// let echo = service_fn(|request: Request<()>| async move {
    ///     Ok::<_, std::convert::Infallible>(Response::new(request.headers().clone()))
    /// });
    /// let trace = TraceContext::extract(&[("x-trace-id", "job-7")]);
    /// let sent = trace.scope(TraceContextClient::new(echo).oneshot(Request::new(()))).await.unwrap();
    /// assert_eq!(sent.body()["x-trace-id"], "job-7");
    /// # });
    /// ```
    #[must_use]
    pub const fn new(inner: S) -> Self {
        Self { inner, vars: &[] }
    }

    /// The wrapped client.
    #[must_use]
    pub const fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped client, mutably.
    pub const fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped client, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The baggage to send: the current request's, with the variables' current values.
    fn outgoing_baggage(&self, trace: Option<&TraceContext>) -> Baggage {
        let mut baggage = trace.map(|t| t.baggage().clone()).unwrap_or_default();
        for var in self.vars {
            baggage = match var.encode_current() {
                Some(value) => baggage.with(var.key(), &value).unwrap_or_else(|_| baggage.without(var.key())),
                None => baggage.without(var.key()),
            };
        }
        baggage
    }

    fn write_headers(&self, headers: &mut HeaderMap) {
        let trace = TraceContext::current();
        let baggage = self.outgoing_baggage(trace.as_ref());
        match trace {
            Some(trace) => trace.with_baggage(baggage).inject(headers),
            None if baggage.is_empty() => {}
            None => {
                if let Ok(value) = HeaderValue::try_from(baggage.to_string()) {
                    headers.insert(&BAGGAGE_NAME, value);
                }
            }
        }
    }
}

impl<S: std::fmt::Debug> std::fmt::Debug for TraceContextClient<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<&str> = self.vars.iter().map(|v| v.key()).collect();
        f.debug_struct("TraceContextClient").field("inner", &self.inner).field("baggage_vars", &keys).finish()
    }
}

impl<S, B> Service<Request<B>> for TraceContextClient<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> S::Future {
        self.write_headers(request.headers_mut());
        self.inner.call(request)
    }
}
