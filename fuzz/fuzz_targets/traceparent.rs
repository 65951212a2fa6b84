//! `TraceParent::parse` on arbitrary bytes: never panics; whatever parses is valid, formats
//! as 55 characters of lowercase hex and dashes, and parses back to the same value; the
//! `traceparent` of an outgoing call does too.

#![no_main]

use contextvars::trace::{SpanId, TraceParent};
use libfuzzer_sys::fuzz_target;

fn check_formatted(parent: &TraceParent) {
    let text = parent.to_string();
    assert_eq!(text.len(), 55);
    assert!(text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f' | b'-')), "{text:?}");
    assert_eq!(TraceParent::parse(text.as_bytes()), Ok(*parent));
}

fuzz_target!(|data: &[u8]| {
    if let Ok(parent) = TraceParent::parse(data) {
        assert!(parent.is_valid());
        check_formatted(&parent);
        let child = parent.child(SpanId::from_bytes([0x5a; 8]));
        assert_eq!((child.version, child.trace_id), (0, parent.trace_id));
        check_formatted(&child);
    }
    // The same bytes as two headers: never accepted.
    let middle = data.len() / 2;
    assert_eq!(TraceParent::extract([&data[..middle], &data[middle..]]), None);
    assert!(TraceParent::try_extract([&data[..middle], &data[middle..]]).is_err());
});
