//! [`HeaderSource`] and [`HeaderSink`]: where [`TraceContext::extract`](super::TraceContext::extract)
//! reads headers and [`TraceContext::inject`](super::TraceContext::inject) writes them.
//!
//! The module reads request headers with one verb, `extract`, and writes them with one,
//! `inject`, on any header collection: the `http` crate's `HeaderMap` (feature `http`), a
//! slice, array or `Vec` of `(name, value)` pairs, or a type of your own (a gRPC metadata
//! map, a message queue's properties) that implements these traits.

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

impl<N: AsRef<str>, V: AsRef<[u8]>> HeaderSource for [(N, V)] {
    fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.iter().filter(move |(n, _)| n.as_ref().eq_ignore_ascii_case(name)).map(|(_, v)| v.as_ref())
    }
}

impl<N: AsRef<str>, V: AsRef<[u8]>, const LEN: usize> HeaderSource for [(N, V); LEN] {
    fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.as_slice().header_values(name)
    }
}

impl<N: AsRef<str>, V: AsRef<[u8]>> HeaderSource for Vec<(N, V)> {
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
