//! [`HeaderSource`] and [`HeaderSink`] for the `http` crate's `HeaderMap`, what
//! [`TraceContext::extract`](super::TraceContext::extract) and
//! [`TraceContext::inject`](super::TraceContext::inject) use.

use http::header::{HeaderMap, HeaderName, HeaderValue};

use super::context::{BAGGAGE, TRACEPARENT, TRACESTATE, X_TRACE_ID};
use super::{HeaderSink, HeaderSource};

// The header names, built once: looking a header up by `&str` parses the name every time.
pub(super) static X_TRACE_ID_NAME: HeaderName = HeaderName::from_static(X_TRACE_ID);
pub(super) static TRACEPARENT_NAME: HeaderName = HeaderName::from_static(TRACEPARENT);
pub(super) static TRACESTATE_NAME: HeaderName = HeaderName::from_static(TRACESTATE);
pub(super) static BAGGAGE_NAME: HeaderName = HeaderName::from_static(BAGGAGE);

impl HeaderSource for HeaderMap {
    fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        // The module's names are built once: looking one up by `&str` would parse it.
        let values = match name {
            X_TRACE_ID => self.get_all(&X_TRACE_ID_NAME),
            TRACEPARENT => self.get_all(&TRACEPARENT_NAME),
            TRACESTATE => self.get_all(&TRACESTATE_NAME),
            BAGGAGE => self.get_all(&BAGGAGE_NAME),
            other => self.get_all(other),
        };
        values.into_iter().map(HeaderValue::as_bytes)
    }
}

impl HeaderSink for HeaderMap {
    fn set_header(&mut self, name: &'static str, value: String) {
        // Every value the module writes is printable ASCII; a failure would only drop it.
        let Ok(value) = HeaderValue::try_from(value) else { return };
        match name {
            X_TRACE_ID => self.insert(&X_TRACE_ID_NAME, value),
            TRACEPARENT => self.insert(&TRACEPARENT_NAME, value),
            TRACESTATE => self.insert(&TRACESTATE_NAME, value),
            BAGGAGE => self.insert(&BAGGAGE_NAME, value),
            other => match HeaderName::from_bytes(other.as_bytes()) {
                Ok(name) => self.insert(name, value),
                Err(_) => None,
            },
        };
    }

    fn remove_header(&mut self, name: &'static str) {
        self.remove(name);
    }
}
