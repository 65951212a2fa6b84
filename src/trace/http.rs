//! [`TraceContext::extract`] and [`TraceContext::inject`] on the `http` crate's `HeaderMap`.

use http::header::{HeaderMap, HeaderName, HeaderValue};

use super::TraceContext;
use super::context::{TRACEPARENT, TRACESTATE, X_TRACE_ID};

impl TraceContext {
    /// Builds the context of an incoming request from its headers. Never fails: unusable
    /// headers are ignored (see [`from_header_values`](Self::from_header_values) for the rules).
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::trace::{IdSource, TraceContext};
    /// use http::HeaderMap;
    ///
    /// let mut headers = HeaderMap::new();
    /// headers.insert("x-trace-id", "checkout-42".parse().unwrap());
    /// let trace = TraceContext::extract(&headers);
    /// assert_eq!((trace.trace_id().as_str(), trace.source()), ("checkout-42", IdSource::Header));
    /// ```
    #[must_use]
    pub fn extract(headers: &HeaderMap) -> Self {
        let values = |name: &'static str| headers.get_all(name).into_iter().map(HeaderValue::as_bytes);
        Self::from_parts(values(X_TRACE_ID), values(TRACEPARENT), values(TRACESTATE))
    }

    /// Writes the headers of one outgoing call into `headers`, replacing any already there:
    /// `traceparent` (same trace-id and flags, new parent-id), `tracestate` (when not empty)
    /// and `x-trace-id`.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::trace::TraceContext;
    /// use http::HeaderMap;
    ///
    /// let trace = TraceContext::new_root();
    /// let mut outgoing = HeaderMap::new();
    /// trace.inject(&mut outgoing);
    /// assert_eq!(outgoing["x-trace-id"], trace.trace_id().as_str());
    /// assert_eq!(TraceContext::extract(&outgoing).w3c_trace_id(), trace.w3c_trace_id());
    /// ```
    pub fn inject(&self, headers: &mut HeaderMap) {
        headers.remove(TRACESTATE);
        for (name, value) in self.outgoing_headers() {
            // Every value is printable ASCII by construction; a failure would only drop a header.
            if let Ok(value) = HeaderValue::try_from(value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        }
    }
}
