//! [`TraceContext::extract`] and [`TraceContext::inject`] on the `http` crate's `HeaderMap`.

use http::header::{HeaderMap, HeaderName, HeaderValue};

use super::TraceContext;
use super::context::{TRACEPARENT, TRACESTATE, X_TRACE_ID};

// The header names, built once: looking a header up by `&str` parses the name every time.
pub(super) static X_TRACE_ID_NAME: HeaderName = HeaderName::from_static(X_TRACE_ID);
pub(super) static TRACEPARENT_NAME: HeaderName = HeaderName::from_static(TRACEPARENT);
pub(super) static TRACESTATE_NAME: HeaderName = HeaderName::from_static(TRACESTATE);

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
    /// assert_eq!((trace.correlation_id().as_str(), trace.source()), ("checkout-42", IdSource::Header));
    /// ```
    #[must_use]
    pub fn extract(headers: &HeaderMap) -> Self {
        let values = |name: &'static HeaderName| headers.get_all(name).into_iter().map(HeaderValue::as_bytes);
        Self::from_parts(values(&X_TRACE_ID_NAME), values(&TRACEPARENT_NAME), values(&TRACESTATE_NAME))
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
    /// assert_eq!(outgoing["x-trace-id"], trace.correlation_id().as_str());
    /// assert_eq!(TraceContext::extract(&outgoing).trace_id(), trace.trace_id());
    /// ```
    pub fn inject(&self, headers: &mut HeaderMap) {
        headers.remove(&TRACESTATE_NAME);
        for (name, value) in self.outgoing_headers() {
            let name = match name {
                TRACEPARENT => &TRACEPARENT_NAME,
                TRACESTATE => &TRACESTATE_NAME,
                _ => &X_TRACE_ID_NAME,
            };
            // Every value is printable ASCII by construction; a failure would only drop a header.
            if let Ok(value) = HeaderValue::try_from(value) {
                headers.insert(name.clone(), value);
            }
        }
    }
}
