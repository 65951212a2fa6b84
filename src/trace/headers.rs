//! [`HeaderSource`] and [`HeaderSink`]: where [`TraceContext::extract`](super::TraceContext::extract)
//! reads headers and [`TraceContext::inject`](super::TraceContext::inject) writes them.
//!
//! The module reads request headers with one verb, `extract`, and writes them with one,
//! `inject`, on any header collection: the `http` crate's `HeaderMap` (feature `http`), a
//! slice, array or `Vec` of `(name, value)` pairs (values as text, bytes, or bytes that may
//! be absent, as message queue clients hold them), or a type of your own (a gRPC metadata
//! map, a message queue's properties) that implements these traits.

use std::borrow::Cow;
use std::sync::Arc;

/// Header values to read, by name: what [`TraceContext::extract`](super::TraceContext::extract)
/// reads from.
///
/// Names are looked up in lowercase and must match case-insensitively, as HTTP names do.
///
/// # Examples
///
/// ```
/// use contextvars::trace::{HeaderSource, TraceContext};
///
/// // Pairs as received: names in any case, values as text or bytes.
/// let pairs = [("TraceParent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"), ("accept", "*/*")];
/// assert_eq!(pairs.header_values("traceparent").count(), 1);
/// let trace = TraceContext::extract(&pairs);
/// assert_eq!(trace.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// ```
pub trait HeaderSource {
    /// The values of the header `name` (given in lowercase), in the order received.
    fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a;
}

/// The value of a `(name, value)` pair that [`HeaderSource`] reads: text, bytes, or either
/// one in an `Option` (a header without a value, as Kafka clients hold them, is skipped).
///
/// Implemented for `str`, `String`, `[u8]`, `[u8; N]`, `Vec<u8>`, their `Cow`, `Box` and
/// `Arc`, references to any of these, and `Option` of any of these; implement it for a byte
/// buffer type of your own.
///
/// # Examples
///
/// ```
/// use contextvars::trace::{HeaderBytes, TraceContext};
///
/// let kafka_like: Vec<(String, Option<Vec<u8>>)> = vec![
///     ("x-trace-id".into(), Some(b"job-7".to_vec())),
///     ("tracestate".into(), None), // a header with no value
/// ];
/// assert_eq!(TraceContext::extract(&kafka_like).correlation_id().as_str(), "job-7");
/// assert_eq!("text".header_bytes(), Some(&b"text"[..]));
/// assert_eq!(None::<Vec<u8>>.header_bytes(), None);
/// ```
pub trait HeaderBytes {
    /// The value's bytes, or `None` when the header has no value.
    fn header_bytes(&self) -> Option<&[u8]>;
}

impl HeaderBytes for str {
    fn header_bytes(&self) -> Option<&[u8]> {
        Some(self.as_bytes())
    }
}

impl HeaderBytes for [u8] {
    fn header_bytes(&self) -> Option<&[u8]> {
        Some(self)
    }
}

/// Owning and shared forms of `str` and `[u8]`: their contents.
macro_rules! header_bytes_through_deref {
    ($($ty:ty),* $(,)?) => {
        $(
            impl HeaderBytes for $ty {
                fn header_bytes(&self) -> Option<&[u8]> {
                    (**self).header_bytes()
                }
            }
        )*
    };
}

header_bytes_through_deref!(
    String,
    Vec<u8>,
    Cow<'_, str>,
    Cow<'_, [u8]>,
    Box<str>,
    Box<[u8]>,
    Arc<str>,
    Arc<[u8]>
);

impl<const LEN: usize> HeaderBytes for [u8; LEN] {
    fn header_bytes(&self) -> Option<&[u8]> {
        Some(self)
    }
}

impl<T: HeaderBytes + ?Sized> HeaderBytes for &T {
    fn header_bytes(&self) -> Option<&[u8]> {
        (**self).header_bytes()
    }
}

impl<T: HeaderBytes> HeaderBytes for Option<T> {
    fn header_bytes(&self) -> Option<&[u8]> {
        self.as_ref().and_then(HeaderBytes::header_bytes)
    }
}

/// Headers to write: what [`TraceContext::inject`](super::TraceContext::inject) writes into.
///
/// # Examples
///
/// ```
/// use contextvars::trace::{HeaderSink, TraceContext};
///
/// let mut outgoing: Vec<(&'static str, String)> = vec![("tracestate", "stale=1".into())];
/// TraceContext::extract(&[("x-trace-id", "job-7")]).inject(&mut outgoing);
/// assert_eq!(outgoing.iter().map(|(name, _)| *name).collect::<Vec<_>>(), ["traceparent", "x-trace-id"]);
/// assert_eq!(outgoing[1].1, "job-7");
/// ```
pub trait HeaderSink {
    /// Sets the header `name` (lowercase) to `value`, replacing every value it had.
    fn set_header(&mut self, name: &'static str, value: String);

    /// Removes every value of the header `name` (lowercase).
    fn remove_header(&mut self, name: &'static str);
}

impl<N: AsRef<str>, V: HeaderBytes> HeaderSource for [(N, V)] {
    fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.iter()
            .filter(move |(n, _)| n.as_ref().eq_ignore_ascii_case(name))
            .filter_map(|(_, v)| v.header_bytes())
    }
}

impl<N: AsRef<str>, V: HeaderBytes, const LEN: usize> HeaderSource for [(N, V); LEN] {
    fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.as_slice().header_values(name)
    }
}

impl<N: AsRef<str>, V: HeaderBytes> HeaderSource for Vec<(N, V)> {
    fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.as_slice().header_values(name)
    }
}

impl HeaderSink for Vec<(&'static str, String)> {
    fn set_header(&mut self, name: &'static str, value: String) {
        self.remove_header(name);
        self.push((name, value));
    }

    fn remove_header(&mut self, name: &'static str) {
        self.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }
}

/// Owned pairs with byte values, as a message's headers are built for publishing.
impl HeaderSink for Vec<(String, Vec<u8>)> {
    fn set_header(&mut self, name: &'static str, value: String) {
        self.remove_header(name);
        self.push((name.to_owned(), value.into_bytes()));
    }

    fn remove_header(&mut self, name: &'static str) {
        self.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }
}

/// Owned pairs whose value may be absent, the shape Kafka clients use for record headers.
impl HeaderSink for Vec<(String, Option<Vec<u8>>)> {
    fn set_header(&mut self, name: &'static str, value: String) {
        self.remove_header(name);
        self.push((name.to_owned(), Some(value.into_bytes())));
    }

    fn remove_header(&mut self, name: &'static str) {
        self.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_byte_pairs_are_written_and_read_back() {
        let mut headers: Vec<(String, Vec<u8>)> = vec![("TraceState".into(), b"stale=1".to_vec())];
        headers.set_header("tracestate", "a=1".into());
        headers.set_header("x-trace-id", "job-7".into());
        assert_eq!(
            headers,
            [("tracestate".to_string(), b"a=1".to_vec()), ("x-trace-id".into(), b"job-7".to_vec())]
        );
        assert_eq!(headers.header_values("x-trace-id").collect::<Vec<_>>(), [b"job-7"]);
        headers.remove_header("tracestate");
        assert_eq!(headers.len(), 1);
    }

    #[test]
    fn absent_values_are_skipped_and_never_written() {
        let mut headers: Vec<(String, Option<Vec<u8>>)> =
            vec![("baggage".into(), None), ("Baggage".into(), Some(b"a=1".to_vec()))];
        assert_eq!(headers.header_values("baggage").collect::<Vec<_>>(), [b"a=1"]);
        headers.set_header("baggage", "b=2".into());
        assert_eq!(headers, [("baggage".to_string(), Some(b"b=2".to_vec()))]);
        headers.remove_header("baggage");
        assert!(headers.is_empty());
        let borrowed: [(&str, Option<&[u8]>); 2] = [("k", None), ("k", Some(b"v"))];
        assert_eq!(borrowed.header_values("k").collect::<Vec<_>>(), [b"v"]);
    }
}
