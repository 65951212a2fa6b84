//! The `X-Trace-ID` parser (`CorrelationId::parse`), and a whole extraction, on arbitrary bytes: never panics; a
//! correlation ID is 1 to 128 bytes of visible ASCII (no CR, LF or control byte can reach a
//! log line); every outgoing header is printable ASCII and carries the same IDs on.

#![no_main]

use contextvars::trace::{CorrelationId, TraceContext};
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;

fn is_visible(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

fuzz_target!(|data: &[u8]| {
    if let Ok(id) = CorrelationId::parse(data) {
        assert!(is_visible(id.as_str()), "{id:?}");
        assert_eq!(CorrelationId::parse(id.as_str().as_bytes()), Ok(id));
    }

    // The bytes as the three headers, split at 0xff bytes.
    let mut parts = data.split(|&b| b == 0xff);
    let (x_trace_id, traceparent, tracestate) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let trace = TraceContext::extract(&[
        ("x-trace-id", x_trace_id),
        ("traceparent", traceparent),
        ("tracestate", tracestate),
    ]);
    assert!(is_visible(trace.correlation_id().as_str()), "{trace:?}");
    let mut outgoing: Vec<(&str, String)> = Vec::new();
    trace.inject(&mut outgoing);
    for (name, value) in outgoing {
        assert!(value.bytes().all(|b| (0x20..=0x7e).contains(&b)), "{name}: {value:?}");
    }

    // Through the `http` crate: what it accepts as header values, extracted then injected.
    let mut incoming = HeaderMap::new();
    for (name, value) in
        [("x-trace-id", x_trace_id), ("traceparent", traceparent), ("tracestate", tracestate)]
    {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            incoming.append(name, value);
        }
    }
    let extracted = TraceContext::extract(&incoming);
    let mut outgoing = HeaderMap::new();
    extracted.inject(&mut outgoing);
    assert_eq!(outgoing["x-trace-id"], extracted.correlation_id().as_str());
    let next = TraceContext::extract(&outgoing);
    assert_eq!(next.correlation_id(), extracted.correlation_id());
    assert_eq!(next.trace_id(), extracted.trace_id());
    assert_eq!(next.tracestate(), extracted.tracestate());
});
