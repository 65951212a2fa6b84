//! OpenTelemetry interop (feature `opentelemetry_0_33`, for `opentelemetry` 0.33): a
//! [`TraceContext`] to and from a remote `SpanContext` ([`to_span_context`],
//! [`to_otel_context`], [`from_span_context`]), and [`W3cPropagator`], a `TextMapPropagator`
//! built on the crate's strict parsers.
//!
//! A service that exports spans through OpenTelemetry then has one ID per request: its spans
//! continue the trace the request came with, and its log lines show the trace-id its spans
//! carry.
//!
//! - Continue our trace in OpenTelemetry: start the request's span with
//!   [`to_otel_context`] of the request's trace as the parent context.
//! - Show OpenTelemetry's trace-id in our logs: enter [`from_span_context`] of the span (for
//!   example a root span the tracer started), whose correlation ID is the span's trace-id.
//! - Or let OpenTelemetry read and write the headers with [`W3cPropagator`] (register it
//!   with `opentelemetry::global::set_text_map_propagator`): it injects the current span,
//!   or, when there is none, the current [`TraceContext`].
//!
//! The crate's tests check all three against the real OpenTelemetry SDK.
//!
//! ```toml
//! [dependencies]
//! contextvars = { version = "0.1", features = ["opentelemetry_0_33"] }
//! opentelemetry = "0.33"
//! ```
//!
//! The types of `opentelemetry` are 0.x: the feature's name carries the one minor release it
//! follows (0.33). Support for the next one comes as a new feature beside it, so that
//! moving to it is the application's choice and never breaks a build that uses this one.
//!
//! # Examples
//!
//! ```
//! use contextvars::trace::TraceContext;
//! use contextvars::trace::opentelemetry::{from_span_context, to_otel_context};
//! use opentelemetry::trace::TraceContextExt;
//!
//! let incoming = TraceContext::extract(&[("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")]);
//! let parent = to_otel_context(&incoming);
//! let remote = parent.span().span_context().clone();
//! assert_eq!(remote.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
//! assert_eq!(remote.span_id().to_string(), "00f067aa0ba902b7");
//! assert!(remote.is_remote() && remote.is_sampled());
//!
//! let back = from_span_context(&remote);
//! assert_eq!(back.correlation_id().as_str(), "4bf92f3577b34da6a3ce929d0e0e4736");
//! ```

use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{self as otel, TraceContextExt};

use super::context::{TRACEPARENT, TRACESTATE};
use super::{SpanId, TraceContext, TraceFlags, TraceId, TraceParent, TraceState};

/// The remote `SpanContext` this request continues: the trace-id, the caller's span as
/// its span-id, the flags and the `tracestate` (but for members whose keys
/// OpenTelemetry's stricter rule refuses, such as `foo@@bar`, which level 2 allows).
///
/// A trace that started here (no valid incoming `traceparent`) has no caller's span: the
/// span-id is then invalid, and so is the `SpanContext`, so that a tracer given it as a
/// parent starts a root span of its own. Enter
/// [`from_span_context`] of that span for the logs to show its
/// trace-id.
#[must_use]
pub fn to_span_context(trace: &TraceContext) -> otel::SpanContext {
    let parent = trace.incoming_traceparent();
    let span_id = parent.map_or(otel::SpanId::INVALID, |p| otel::SpanId::from_bytes(p.parent_id.to_bytes()));
    let state = otel_state(trace.tracestate());
    otel::SpanContext::new(
        otel::TraceId::from_bytes(trace.trace_id().to_bytes()),
        span_id,
        otel::TraceFlags::new(trace.flags().bits()),
        true,
        state,
    )
}

/// An OpenTelemetry context whose remote parent is [`to_span_context`]:
/// the parent to start the request's span with. For a trace that started here, an empty
/// context, so that the tracer starts a root span (an invalid remote parent would make
/// a parent-based sampler drop the span).
///
/// # Examples
///
/// ```
/// use contextvars::trace::TraceContext;
/// use contextvars::trace::opentelemetry::to_otel_context;
/// use opentelemetry::trace::{Span, Tracer, TracerProvider};
///
/// let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
/// let tracer = provider.tracer("checkout");
///
/// let trace = TraceContext::extract(&[("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")]);
/// let span = tracer.start_with_context("checkout", &to_otel_context(&trace));
/// assert_eq!(span.span_context().trace_id().to_string(), trace.trace_id().to_string());
/// ```
#[must_use]
pub fn to_otel_context(trace: &TraceContext) -> opentelemetry::Context {
    if trace.incoming_traceparent().is_none() {
        return opentelemetry::Context::new();
    }
    opentelemetry::Context::new().with_remote_span_context(to_span_context(trace))
}

/// The trace of a request handled under `span`: its trace-id becomes both the W3C
/// trace-id and the correlation ID that logs show, the span is the parent of outgoing
/// calls, and its flags and `tracestate` are passed on. An invalid `SpanContext` gives a
/// new trace ([`TraceContext::new_root`]).
///
/// # Examples
///
/// ```
/// use contextvars::trace::CurrentCorrelationId;
/// use contextvars::trace::opentelemetry::from_span_context;
/// use opentelemetry::trace::{Span, Tracer, TracerProvider};
///
/// let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
/// let span = provider.tracer("jobs").start("nightly");
/// let trace_id = span.span_context().trace_id().to_string();
///
/// from_span_context(span.span_context()).sync_scope(|| {
///     assert_eq!(CurrentCorrelationId.to_string(), trace_id);
/// });
/// ```
#[must_use]
pub fn from_span_context(span: &otel::SpanContext) -> TraceContext {
    if !span.is_valid() {
        return TraceContext::new_root();
    }
    let parent = TraceParent::new(
        TraceId::from_bytes(span.trace_id().to_bytes()),
        SpanId::from_bytes(span.span_id().to_bytes()),
        TraceFlags::from_bits(span.trace_flags().to_u8()),
    );
    let header = span.trace_state().header();
    let state = TraceState::extract([header.as_bytes()]);
    TraceContext::continued(parent, state)
}

/// The trace to send when the current OpenTelemetry context has a valid span: that
/// span as the parent; else the current [`TraceContext`], if any.
fn outgoing_for(cx: &opentelemetry::Context) -> Option<(TraceParent, String)> {
    let span = cx.span();
    let span = span.span_context();
    if span.is_valid() {
        let parent = TraceParent::new(
            TraceId::from_bytes(span.trace_id().to_bytes()),
            SpanId::from_bytes(span.span_id().to_bytes()),
            TraceFlags::from_bits(span.trace_flags().to_u8()).known(),
        );
        return Some((parent, span.trace_state().header()));
    }
    TraceContext::current().map(|trace| (trace.outgoing_traceparent(), trace.tracestate().to_string()))
}

/// The members of `state` that OpenTelemetry accepts (its key rule allows one `@` only).
fn otel_state(state: &TraceState) -> otel::TraceState {
    let accepted = state.iter().filter(|member| otel::TraceState::from_key_value([*member]).is_ok());
    otel::TraceState::from_key_value(accepted).unwrap_or_default()
}

/// A `TextMapPropagator` for W3C Trace Context built on this module's strict parsers: it
/// reads `traceparent` and `tracestate` exactly as [`TraceContext::extract`] does (one
/// `traceparent`, level 2 `tracestate` keys, a bad `tracestate` discarded whole), and writes
/// the current span, or when there is none the current [`TraceContext`], so that a client
/// instrumented with OpenTelemetry carries the request's trace either way.
///
/// # Examples
///
/// ```
/// use std::collections::HashMap;
///
/// use contextvars::trace::opentelemetry::W3cPropagator;
/// use opentelemetry::propagation::TextMapPropagator;
/// use opentelemetry::trace::TraceContextExt;
///
/// let mut incoming = HashMap::new();
/// incoming.insert("traceparent".to_string(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_string());
/// let cx = W3cPropagator::new().extract(&incoming);
/// assert_eq!(cx.span().span_context().trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
///
/// let mut outgoing = HashMap::new();
/// W3cPropagator::new().inject_context(&cx, &mut outgoing);
/// assert_eq!(outgoing["traceparent"], "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
///
/// // Strict: uppercase hex is not a trace-id.
/// incoming.insert("traceparent".to_string(), "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01".to_string());
/// assert!(!W3cPropagator::new().extract(&incoming).span().span_context().is_valid());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct W3cPropagator {
    _private: (),
}

impl W3cPropagator {
    /// The propagator.
    #[must_use]
    pub const fn new() -> Self {
        Self { _private: () }
    }
}

/// The values of `name`, all of them when the extractor can list them.
fn values<'a>(extractor: &'a dyn Extractor, name: &str) -> Vec<&'a str> {
    extractor.get_all(name).or_else(|| extractor.get(name).map(|v| vec![v])).unwrap_or_default()
}

impl TextMapPropagator for W3cPropagator {
    fn inject_context(&self, cx: &opentelemetry::Context, injector: &mut dyn Injector) {
        if let Some((parent, state)) = outgoing_for(cx) {
            injector.set(TRACEPARENT, parent.to_string());
            if !state.is_empty() {
                injector.set(TRACESTATE, state);
            }
        }
    }

    fn extract_with_context(
        &self,
        cx: &opentelemetry::Context,
        extractor: &dyn Extractor,
    ) -> opentelemetry::Context {
        let parents = values(extractor, TRACEPARENT);
        let Some(parent) = TraceParent::extract(parents.iter().map(|v| v.as_bytes())) else {
            return cx.clone();
        };
        let states = values(extractor, TRACESTATE);
        let state = TraceState::extract(states.iter().map(|v| v.as_bytes()));
        let span = otel::SpanContext::new(
            otel::TraceId::from_bytes(parent.trace_id.to_bytes()),
            otel::SpanId::from_bytes(parent.parent_id.to_bytes()),
            otel::TraceFlags::new(parent.flags.known().bits()),
            true,
            otel_state(&state),
        );
        cx.with_remote_span_context(span)
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(NAMES.as_slice())
    }
}

/// The header names, as `FieldIter` wants them.
static NAMES: std::sync::LazyLock<[String; 2]> =
    std::sync::LazyLock::new(|| [TRACEPARENT.to_string(), TRACESTATE.to_string()]);
