//! Fresh random ids, from the operating system's generator through `uuid`.

use super::{SpanId, TraceId};

/// A new random trace-id: a UUID v4, whose 32 hex digits are also a valid W3C trace-id.
pub(crate) fn trace_id() -> TraceId {
    TraceId::from_bytes(*uuid::Uuid::new_v4().as_bytes())
}

/// A new random, non-zero parent-id (W3C forbids the all-zero one).
pub(crate) fn span_id() -> SpanId {
    loop {
        let (_, low) = uuid::Uuid::new_v4().as_u64_pair();
        if low != 0 {
            return SpanId::from_bytes(low.to_be_bytes());
        }
    }
}
