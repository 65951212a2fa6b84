//! [`TraceContext`]: what a request knows about the trace it belongs to, and the slot that
//! holds the current one.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use super::correlation_id::check as check_correlation_id;
use super::{
    Baggage, CorrelationId, HeaderSink, HeaderSource, SpanId, TraceFlags, TraceId, TraceParent, TraceState,
    random,
};
use crate::{Context, ContextVar, FutureExt, ResetError, Token, WithContext};

/// The current request's [`TraceContext`]: the one slot that every log integration, the
/// middleware and other libraries share, reached through `TraceContext`'s methods.
pub(crate) static TRACE_CONTEXT: ContextVar<TraceContext> = ContextVar::new("trace_context");

/// Where a request's correlation ID came from.
///
/// # Examples
///
/// ```
/// use contextvars::trace::{IdSource, TraceContext};
///
/// let tp = &b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"[..];
/// let source = |headers: &[(&str, &[u8])]| TraceContext::extract(headers).source();
/// assert_eq!(source(&[("x-trace-id", b"job-7"), ("traceparent", tp)]), IdSource::Header);
/// assert_eq!(source(&[("traceparent", tp)]), IdSource::TraceParent);
/// assert_eq!(source(&[("traceparent", b"garbage")]), IdSource::Generated);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdSource {
    /// A valid `X-Trace-ID` header.
    Header,
    /// The trace-id of a valid W3C `traceparent` header.
    TraceParent,
    /// Generated here: no usable header, or a unit of background work.
    Generated,
}

/// The trace a request belongs to: its correlation ID (what log lines show), the W3C trace it
/// continues, and the vendors' `tracestate`. Cloning is one reference-count increment.
///
/// # Examples
///
/// ```
/// use contextvars::trace::{IdSource, TraceContext};
///
/// let pinned = TraceContext::extract(&[("x-trace-id", &b"checkout-42"[..])]);
/// assert_eq!(pinned.correlation_id().as_str(), "checkout-42");
/// assert_eq!(pinned.source(), IdSource::Header);
///
/// let garbage = TraceContext::extract(&[("x-trace-id", &b"evil\r\nforged line"[..])]);
/// assert_eq!(garbage.source(), IdSource::Generated);
/// assert_eq!(garbage.correlation_id().as_str().len(), 32);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct TraceContext {
    inner: Arc<Inner>,
}

#[derive(Clone, PartialEq, Eq)]
struct Inner {
    id: CorrelationId,
    source: IdSource,
    /// The trace continued: the incoming `traceparent`, or a new one (version 00, a new
    /// trace-id, no parent-id, flags 00) when there was none or it was invalid.
    traceparent: TraceParent,
    /// `true` when `traceparent` came from a valid incoming header.
    continued: bool,
    tracestate: TraceState,
    /// The request's W3C baggage, passed on to the services it calls.
    baggage: Baggage,
}

impl TraceContext {
    /// A new trace with a generated ID, for work that no request started: a scheduler tick,
    /// a queue message, a background job. Each unit of work should get its own.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::trace::{IdSource, TraceContext};
    ///
    /// let a = TraceContext::new_root();
    /// let b = TraceContext::new_root();
    /// assert_ne!(a.correlation_id(), b.correlation_id());
    /// assert_eq!(a.source(), IdSource::Generated);
    /// assert_eq!(a.correlation_id().as_str(), a.trace_id().to_string());
    /// ```
    #[must_use]
    pub fn new_root() -> Self {
        let trace_id = random::trace_id();
        Self::build(None, None, trace_id, TraceState::default())
    }

    /// The trace context of the current request, if there is one.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::trace::TraceContext;
    ///
    /// assert_eq!(TraceContext::current(), None);
    /// let trace = TraceContext::new_root();
    /// assert_eq!(trace.clone().sync_scope(TraceContext::current), Some(trace));
    /// ```
    #[must_use]
    pub fn current() -> Option<Self> {
        TRACE_CONTEXT.get()
    }

    /// Makes this trace the current one in the current context, until the returned token
    /// is given to [`reset`](Self::reset): for code that cannot wrap the work in
    /// [`scope`](Self::scope) or [`sync_scope`](Self::sync_scope) (a callback-based
    /// framework's "request started" and "request finished" hooks).
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::trace::TraceContext;
    ///
    /// # contextvars::Context::new().run(|| {
    /// let trace = TraceContext::new_root();
    /// let token = trace.clone().set();
    /// assert_eq!(TraceContext::current(), Some(trace));
    /// TraceContext::reset(token).unwrap();
    /// assert_eq!(TraceContext::current(), None);
    /// # });
    /// ```
    #[track_caller]
    pub fn set(self) -> Token<TraceContext> {
        TRACE_CONTEXT.set(self)
    }

    /// Restores the trace that was current before the [`set`](Self::set) that returned
    /// `token`.
    ///
    /// # Errors
    ///
    /// As `ContextVar::reset`: the token was made in another context.
    pub fn reset(token: Token<TraceContext>) -> Result<(), ResetError> {
        TRACE_CONTEXT.reset(token)
    }

    /// A copy of `context` with this trace as its current one: the context a server gives a
    /// request, or a message consumer a message, before running its work in it.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::Context;
    /// use contextvars::trace::TraceContext;
    ///
    /// let trace = TraceContext::new_root();
    /// let mut context = trace.clone().set_in(&Context::new());
    /// assert_eq!(context.run(TraceContext::current), Some(trace));
    /// ```
    #[must_use]
    pub fn set_in(self, context: &Context) -> Context {
        context.with_value(&TRACE_CONTEXT, self)
    }

    /// Builds the context of an incoming request from its headers: an `http::HeaderMap`
    /// (feature `http`), `(name, value)` pairs in the order received, or any
    /// [`HeaderSource`]. Names are matched case-insensitively and other headers are
    /// skipped. Never fails: unusable headers are ignored.
    ///
    /// - `X-Trace-ID` is used when exactly one is present and it is valid.
    /// - `traceparent` is parsed strictly (W3C Trace Context); more than one
    ///   `traceparent` header, or an invalid one, restarts the trace with a new trace-id.
    /// - `tracestate` headers are combined in order, and kept only when the `traceparent`
    ///   was valid, as the W3C processing model requires.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::trace::{IdSource, TraceContext};
    ///
    /// let trace = TraceContext::extract(&[
    ///     ("TraceParent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
    ///     ("tracestate", "congo=t61rcWkgMzE"),
    ///     ("tracestate", "rojo=00f067aa0ba902b7"),
    /// ]);
    /// assert_eq!(trace.source(), IdSource::TraceParent);
    /// assert_eq!(trace.tracestate().to_string(), "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
    /// ```
    #[must_use]
    pub fn extract<H: HeaderSource + ?Sized>(headers: &H) -> Self {
        Self::from_parts(
            headers.header_values(X_TRACE_ID),
            headers.header_values(TRACEPARENT),
            headers.header_values(TRACESTATE),
        )
        .with_baggage(Baggage::extract(headers.header_values(BAGGAGE)))
    }

    /// [`extract`](Self::extract) with the three headers' values already looked up.
    pub(crate) fn from_parts<'a>(
        mut x_trace_ids: impl Iterator<Item = &'a [u8]>,
        traceparents: impl Iterator<Item = &'a [u8]>,
        tracestates: impl Iterator<Item = &'a [u8]>,
    ) -> Self {
        // Several `X-Trace-ID` headers are ambiguous: all are ignored.
        let pinned = match (x_trace_ids.next(), x_trace_ids.next()) {
            (Some(one), None) => check_correlation_id(one).ok(),
            _ => None,
        };
        if let Some(traceparent) = TraceParent::extract(traceparents) {
            // `tracestate` is only looked at when the `traceparent` is valid.
            let tracestate = TraceState::extract(tracestates);
            Self::build(pinned, Some(traceparent), traceparent.trace_id, tracestate)
        } else {
            // A new trace (none, several or an invalid `traceparent`): reuse a pinned ID as
            // the trace-id when it is a valid one (32 lowercase hex digits, not all zeros).
            let trace_id = pinned.and_then(|id| id.parse::<TraceId>().ok()).unwrap_or_else(random::trace_id);
            Self::build(pinned, None, trace_id, TraceState::default())
        }
    }

    /// The trace of a request that continues `parent`, with no pinned ID.
    #[cfg(feature = "opentelemetry_0_33")]
    pub(super) fn continued(parent: TraceParent, tracestate: TraceState) -> Self {
        Self::build(None, Some(parent), parent.trace_id, tracestate)
    }

    fn build(
        pinned: Option<&str>,
        incoming: Option<TraceParent>,
        trace_id: TraceId,
        tracestate: TraceState,
    ) -> Self {
        let (id, source) = match (pinned, &incoming) {
            (Some(id), _) => (CorrelationId::from_str_checked(id), IdSource::Header),
            (None, Some(_)) => (CorrelationId::from_trace_id(trace_id), IdSource::TraceParent),
            (None, None) => (CorrelationId::from_trace_id(trace_id), IdSource::Generated),
        };
        let continued = incoming.is_some();
        // A new trace has no parent: the parent-id is never shown nor sent (every outgoing
        // call gets a fresh one), so no randomness is spent on it.
        let traceparent =
            incoming.unwrap_or_else(|| TraceParent::new(trace_id, SpanId::INVALID, TraceFlags::default()));
        let baggage = Baggage::new();
        let inner = Inner { id, source, traceparent, continued, tracestate, baggage };
        Self { inner: Arc::new(inner) }
    }

    /// The correlation ID that log lines show ([`CurrentCorrelationId`](super::CurrentCorrelationId)),
    /// the response echoes and the next service receives in `X-Trace-ID`: a valid
    /// `X-Trace-ID`, else the trace-id of a valid `traceparent`, else a generated one.
    ///
    /// It equals [`trace_id`](Self::trace_id) except when an `X-Trace-ID` pinned a value that
    /// is not the W3C trace-id: see [`ids_differ`](Self::ids_differ).
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::trace::TraceContext;
    ///
    /// let trace = TraceContext::extract(&[("x-trace-id", &b"pinned-123"[..])]);
    /// assert_eq!(trace.correlation_id().as_str(), "pinned-123");
    /// ```
    #[must_use]
    pub fn correlation_id(&self) -> &CorrelationId {
        &self.inner.id
    }

    /// Where [`correlation_id`](Self::correlation_id) came from.
    #[must_use]
    pub fn source(&self) -> IdSource {
        self.inner.source
    }

    /// The W3C trace-id: what the outgoing `traceparent` carries and what a tracing backend
    /// (OpenTelemetry, Jaeger, Zipkin) shows for this request.
    ///
    /// It continues a valid incoming `traceparent` (same trace-id, a new parent-id per
    /// outgoing call). Without one, it is the pinned `X-Trace-ID` when that is itself a
    /// valid trace-id (32 lowercase hex digits, not all zeros), else a generated one, which
    /// the correlation ID then shares unless something else was pinned.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::trace::TraceContext;
    ///
    /// let tp = &b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"[..];
    /// // logs keep the pinned ID, the backend sees the trace continued
    /// let both = TraceContext::extract(&[("x-trace-id", &b"pinned-123"[..]), ("traceparent", tp)]);
    /// assert_eq!(both.correlation_id().as_str(), "pinned-123");
    /// assert_eq!(both.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
    ///
    /// // a pinned ID that is a valid trace-id is used for both
    /// let hex = TraceContext::extract(&[("x-trace-id", &b"0af7651916cd43dd8448eb211c80319c"[..])]);
    /// assert_eq!(hex.trace_id().to_string(), hex.correlation_id().as_str());
    /// ```
    #[must_use]
    pub fn trace_id(&self) -> TraceId {
        self.inner.traceparent.trace_id
    }

    /// Whether the correlation ID in logs differs from the W3C trace-id a tracing backend
    /// shows: only when an `X-Trace-ID` pinned a value that is not this trace-id. Log both
    /// then (for example once per request, at its start) to join the two.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::trace::TraceContext;
    ///
    /// assert!(!TraceContext::new_root().ids_differ());
    /// assert!(TraceContext::extract(&[("x-trace-id", &b"job-7"[..])]).ids_differ());
    /// ```
    #[must_use]
    pub fn ids_differ(&self) -> bool {
        let mut hex = [0; 32];
        self.inner.traceparent.trace_id.write_hex(&mut hex);
        self.inner.id.as_str().as_bytes() != hex
    }

    /// The incoming `traceparent`, if the request had a valid one.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::trace::{TraceContext, TraceFlags};
    ///
    /// let trace = TraceContext::extract(&[
    ///     ("traceparent", &b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"[..]),
    ///     ("tracestate", &b"rojo=00f067aa0ba902b7"[..]),
    /// ]);
    /// assert_eq!(trace.incoming_traceparent().unwrap().parent_id.to_string(), "00f067aa0ba902b7");
    /// assert_eq!(trace.flags(), TraceFlags::SAMPLED);
    /// assert_eq!(trace.tracestate().get("rojo"), Some("00f067aa0ba902b7"));
    ///
    /// let new = TraceContext::new_root();
    /// assert!(new.incoming_traceparent().is_none() && new.tracestate().is_empty());
    /// ```
    #[must_use]
    pub fn incoming_traceparent(&self) -> Option<&TraceParent> {
        self.inner.continued.then_some(&self.inner.traceparent)
    }

    /// The trace flags received (or `00` for a new trace), passed on unchanged.
    #[must_use]
    pub fn flags(&self) -> TraceFlags {
        self.inner.traceparent.flags
    }

    /// The request's W3C baggage, as received (see [`Baggage`] for what is kept), passed on
    /// by [`inject`](Self::inject).
    #[must_use]
    pub fn baggage(&self) -> &Baggage {
        &self.inner.baggage
    }

    /// A copy of this trace carrying `baggage` instead.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::trace::{Baggage, TraceContext};
    ///
    /// let trace = TraceContext::new_root().with_baggage(Baggage::new().with("tenant", "acme").unwrap());
    /// let mut headers: Vec<(&str, String)> = Vec::new();
    /// trace.inject(&mut headers);
    /// assert_eq!(headers.iter().find(|(name, _)| *name == "baggage").unwrap().1, "tenant=acme");
    /// assert_eq!(TraceContext::extract(&headers).baggage().get("tenant"), Some("acme"));
    /// ```
    #[must_use]
    pub fn with_baggage(&self, baggage: Baggage) -> Self {
        if baggage == self.inner.baggage {
            return self.clone();
        }
        let mut inner = (*self.inner).clone();
        inner.baggage = baggage;
        Self { inner: Arc::new(inner) }
    }

    /// The vendors' `tracestate`, as received (invalid members dropped).
    #[must_use]
    pub fn tracestate(&self) -> &TraceState {
        &self.inner.tracestate
    }

    /// The `traceparent` for one outgoing call: the same trace-id and flags, a new random
    /// parent-id, version 00.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::trace::TraceContext;
    ///
    /// let trace = TraceContext::new_root();
    /// let (a, b) = (trace.outgoing_traceparent(), trace.outgoing_traceparent());
    /// assert_eq!((a.trace_id, b.trace_id), (trace.trace_id(), trace.trace_id()));
    /// assert_ne!(a.parent_id, b.parent_id);
    /// ```
    #[must_use]
    pub fn outgoing_traceparent(&self) -> TraceParent {
        self.inner.traceparent.child(random::span_id())
    }

    /// Writes the headers of one outgoing call into `headers` (an `http::HeaderMap` with
    /// feature `http`, a `Vec<(&'static str, String)>`, or any [`HeaderSink`]), replacing
    /// any already there: `traceparent` (same trace-id and flags, a new parent-id),
    /// `tracestate` and `baggage` (each removed when empty) and `x-trace-id`.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::trace::TraceContext;
    ///
    /// let trace = TraceContext::extract(&[("x-trace-id", "job-7")]);
    /// let mut headers: Vec<(&str, String)> = Vec::new();
    /// trace.inject(&mut headers);
    /// assert_eq!(headers[0].0, "traceparent");
    /// assert_eq!(headers.last().unwrap(), &("x-trace-id", "job-7".to_string()));
    ///
    /// // the next service picks the same correlation ID and continues the trace
    /// let next = TraceContext::extract(&headers);
    /// assert_eq!(next.correlation_id(), trace.correlation_id());
    /// assert_eq!(next.trace_id(), trace.trace_id());
    /// ```
    pub fn inject<H: HeaderSink + ?Sized>(&self, headers: &mut H) {
        headers.set_header(TRACEPARENT, self.outgoing_traceparent().to_string());
        if self.inner.tracestate.is_empty() {
            headers.remove_header(TRACESTATE);
        } else {
            headers.set_header(TRACESTATE, self.inner.tracestate.to_string());
        }
        headers.set_header(X_TRACE_ID, self.inner.id.to_string());
        if self.inner.baggage.is_empty() {
            headers.remove_header(BAGGAGE);
        } else {
            headers.set_header(BAGGAGE, self.inner.baggage.to_string());
        }
    }

    /// Wraps `fut` so that it runs in a snapshot of the current context with this trace in
    /// it: every poll, and every task it spawns with the crate's helpers, sees this trace.
    /// The future's own changes to context variables stay in it.
    ///
    /// For a closure, [`sync_scope`](Self::sync_scope); for a background job, which should
    /// not carry the request's variables along, [`background`](super::background).
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::trace::TraceContext;
    ///
    /// # futures::executor::block_on(async {
    /// let trace = TraceContext::new_root();
    /// let seen = trace.clone().scope(async { TraceContext::current() }).await;
    /// assert_eq!(seen, Some(trace));
    /// assert_eq!(TraceContext::current(), None);
    /// # });
    /// ```
    pub fn scope<F: Future>(self, fut: F) -> WithContext<F> {
        fut.in_context(self.set_in(&Context::current()))
    }

    /// Runs `f` with this trace as the current one, restoring the previous one afterwards,
    /// also when `f` panics.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::trace::{CurrentCorrelationId, TraceContext};
    ///
    /// // A queue consumer: each message is its own unit of work, with its own ID.
    /// for message in ["a", "b"] {
    ///     TraceContext::new_root().sync_scope(|| {
    ///         let id = TraceContext::current().unwrap().correlation_id().to_string();
    ///         assert_eq!(CurrentCorrelationId.to_string(), id, "handling {message}");
    ///     });
    /// }
    /// assert_eq!(TraceContext::current(), None);
    /// ```
    pub fn sync_scope<R>(self, f: impl FnOnce() -> R) -> R {
        TRACE_CONTEXT.sync_scope(self, f)
    }
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceContext")
            .field("correlation_id", &self.inner.id)
            .field("source", &self.inner.source)
            .field("traceparent", &self.inner.traceparent)
            .field("tracestate", &self.inner.tracestate)
            .field("baggage", &self.inner.baggage)
            .finish_non_exhaustive()
    }
}

/// Header names, lowercase as HTTP/2 and the `http` crate spell them.
pub(crate) const X_TRACE_ID: &str = "x-trace-id";
pub(crate) const TRACEPARENT: &str = "traceparent";
pub(crate) const TRACESTATE: &str = "tracestate";
pub(crate) const BAGGAGE: &str = "baggage";
