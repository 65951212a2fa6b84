//! OpenTelemetry interop against the real SDK: its tracer continues our trace, our logs show
//! its trace-id, and `W3cPropagator` agrees with the SDK's own propagator on valid headers
//! while refusing what the specification forbids.

#![cfg(feature = "opentelemetry_0_33")]

use std::collections::HashMap;

use contextvars::trace::opentelemetry::{W3cPropagator, from_span_context, to_otel_context, to_span_context};
use contextvars::trace::{CurrentCorrelationId, TraceContext, TraceParent};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{Span, TraceContextExt, Tracer, TracerProvider};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

fn provider() -> (SdkTracerProvider, InMemorySpanExporter) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
    (provider, exporter)
}

fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect()
}

#[test]
fn the_sdk_tracer_continues_our_trace() {
    let (provider, exporter) = provider();
    let tracer = provider.tracer("test");
    let trace = TraceContext::extract(&[
        ("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-01").as_str()),
        ("tracestate", "congo=t61rcWkgMzE"),
    ]);
    let mut span = tracer.start_with_context("checkout", &to_otel_context(&trace));
    let span_id = span.span_context().span_id();
    span.end();

    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].span_context.trace_id().to_string(), TRACE_ID);
    assert_eq!(spans[0].parent_span_id.to_string(), PARENT_ID, "the caller's span is the parent");
    assert_eq!(spans[0].span_context.trace_state().get("congo"), Some("t61rcWkgMzE"));
    assert_ne!(span_id.to_string(), PARENT_ID);
    // The logs and the exported span show one ID.
    assert_eq!(trace.correlation_id().as_str(), spans[0].span_context.trace_id().to_string());
}

#[test]
fn our_logs_show_the_trace_id_of_an_sdk_root_span() {
    let (provider, _) = provider();
    let span = provider.tracer("jobs").start("nightly");
    let context = span.span_context().clone();

    let trace = from_span_context(&context);
    assert_eq!(trace.correlation_id().as_str(), context.trace_id().to_string());
    trace.clone().sync_scope(|| assert_eq!(CurrentCorrelationId.to_string(), context.trace_id().to_string()));
    // An outgoing call made under it has the span as its parent.
    let mut outgoing: Vec<(&str, String)> = Vec::new();
    trace.inject(&mut outgoing);
    let sent =
        TraceParent::extract(outgoing.iter().filter(|(n, _)| *n == "traceparent").map(|(_, v)| v.as_bytes()));
    let sent = sent.unwrap();
    assert_eq!(sent.trace_id.to_string(), context.trace_id().to_string());
    assert_eq!(trace.incoming_traceparent().unwrap().parent_id.to_string(), context.span_id().to_string());
    assert_eq!(sent.flags.is_sampled(), context.is_sampled());

    // An invalid span context starts a new trace.
    let none = from_span_context(&opentelemetry::trace::SpanContext::empty_context());
    assert!(none.incoming_traceparent().is_none());
}

#[test]
fn tracestate_members_opentelemetry_refuses_are_left_out_alone() {
    let trace = TraceContext::extract(&[
        ("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-01").as_str()),
        ("tracestate", "foo@@bar=1,rojo=2,t@v=3"),
    ]);
    assert_eq!(trace.tracestate().len(), 3);
    assert_eq!(to_span_context(&trace).trace_state().header(), "rojo=2,t@v=3");
    let headers = map(&[
        ("traceparent", &format!("00-{TRACE_ID}-{PARENT_ID}-01")),
        ("tracestate", "foo@@bar=1,rojo=2"),
    ]);
    let cx = W3cPropagator::new().extract(&headers);
    assert_eq!(cx.span().span_context().trace_state().header(), "rojo=2");
}

#[test]
fn a_new_trace_has_no_remote_parent() {
    let trace = TraceContext::new_root();
    assert!(!to_span_context(&trace).is_valid());
    let (provider, exporter) = provider();
    let mut span = provider.tracer("test").start_with_context("root", &to_otel_context(&trace));
    span.end();
    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(spans.len(), 1, "a root span, recorded");
    assert_eq!(spans[0].parent_span_id, opentelemetry::trace::SpanId::INVALID);
}

#[test]
fn the_propagator_agrees_with_the_sdk_on_valid_headers() {
    let ours = W3cPropagator::new();
    let sdk = TraceContextPropagator::new();
    for headers in [
        map(&[("traceparent", &format!("00-{TRACE_ID}-{PARENT_ID}-01"))]),
        map(&[("traceparent", &format!("00-{TRACE_ID}-{PARENT_ID}-00")), ("tracestate", "rojo=1,congo=2")]),
        map(&[("traceparent", &format!("cc-{TRACE_ID}-{PARENT_ID}-01-future"))]),
    ] {
        let a = ours.extract(&headers);
        let b = sdk.extract(&headers);
        assert_eq!(a.span().span_context(), b.span().span_context(), "{headers:?}");
        let (mut sent_a, mut sent_b) = (HashMap::new(), HashMap::<String, String>::new());
        ours.inject_context(&a, &mut sent_a);
        sdk.inject_context(&b, &mut sent_b);
        // The SDK sends an empty `tracestate`, which the specification asks not to.
        sent_b.retain(|_, value| !value.is_empty());
        assert_eq!(sent_a, sent_b, "{headers:?}");
    }
    assert_eq!(ours.fields().collect::<Vec<_>>(), ["traceparent", "tracestate"]);
}

#[test]
fn the_propagator_refuses_what_the_strict_parsers_refuse() {
    let ours = W3cPropagator::new();
    for traceparent in [
        format!("00-{}-{PARENT_ID}-01", TRACE_ID.to_uppercase()),
        format!("00-{TRACE_ID}-{PARENT_ID}-01-extra"),
        format!("ff-{TRACE_ID}-{PARENT_ID}-01"),
        format!("00-{}-{PARENT_ID}-01", "0".repeat(32)),
    ] {
        let cx = ours.extract(&map(&[("traceparent", &traceparent)]));
        assert!(!cx.span().span_context().is_valid(), "{traceparent}");
    }
    // A bad tracestate member discards the whole tracestate, the trace is still continued.
    let cx = ours.extract(&map(&[
        ("traceparent", &format!("00-{TRACE_ID}-{PARENT_ID}-01")),
        ("tracestate", "a=1,B=2"),
    ]));
    assert_eq!(cx.span().span_context().trace_id().to_string(), TRACE_ID);
    assert_eq!(cx.span().span_context().trace_state().header(), "");
}

#[test]
fn without_an_sdk_span_the_propagator_sends_the_current_trace() {
    let ours = W3cPropagator::new();
    let mut sent = HashMap::new();
    ours.inject_context(&opentelemetry::Context::new(), &mut sent);
    assert!(sent.is_empty(), "outside any request nothing is sent");

    let trace = TraceContext::extract(&[("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-01").as_str())]);
    trace.clone().sync_scope(|| ours.inject_context(&opentelemetry::Context::new(), &mut sent));
    let parent: TraceParent = sent["traceparent"].parse().unwrap();
    assert_eq!(parent.trace_id.to_string(), TRACE_ID);
    assert_ne!(parent.parent_id.to_string(), PARENT_ID);

    // With a span, the span is the parent.
    let (provider, _) = provider();
    let span = provider.tracer("test").start_with_context("call", &to_otel_context(&trace));
    let span_id = span.span_context().span_id().to_string();
    let cx = opentelemetry::Context::new().with_span(span);
    let mut sent = HashMap::new();
    ours.inject_context(&cx, &mut sent);
    let parent: TraceParent = sent["traceparent"].parse().unwrap();
    assert_eq!((parent.trace_id.to_string(), parent.parent_id.to_string()), (TRACE_ID.to_string(), span_id));
}
