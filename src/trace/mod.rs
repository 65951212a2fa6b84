//! Request tracing on top of context variables: one correlation ID per request, in every log
//! line the request produces, and its W3C trace in every call it makes to other services.
//!
//! Headers are read with one verb and written with one, on any header collection (an
//! `http::HeaderMap`, `(name, value)` pairs, or a [`HeaderSource`] / [`HeaderSink`] of your
//! own): at the request boundary, [`TraceContext::extract`] picks the request's correlation
//! ID, in this order:
//!
//! 1. an `X-Trace-ID` header, which lets a proxy or a test pin the value: used as it is when
//!    it is 1 to 128 bytes of visible ASCII without spaces and not [`NO_TRACE`], ignored
//!    otherwise (a CR, LF or any control byte could forge log lines, `no-trace` would hide
//!    the request's lines among those outside any request);
//! 2. else the trace-id of a valid W3C `traceparent` header;
//! 3. else a new random UUID v4, as 32 lowercase hex digits (so also a valid W3C trace-id).
//!
//! The context is stored in one shared slot that log integrations and other libraries
//! read, reached through [`TraceContext`]'s methods: [`TraceContext::current`] reads it,
//! [`TraceContext::scope`] (a future) and [`TraceContext::sync_scope`] (a closure) run code
//! with a trace in it, and [`CurrentCorrelationId`] formats its ID for log formatters.
//! Outgoing calls carry it on with [`TraceContext::inject`]: a `traceparent` with the same
//! trace-id, a new parent-id and the incoming flags, the incoming `tracestate`, and the
//! `X-Trace-ID`.
//!
//! Two IDs, two names: the **correlation ID** ([`CorrelationId`]) is what log lines carry and
//! what `X-Trace-ID` pins; the **trace ID** ([`TraceId`]) is the W3C trace-id that
//! `traceparent` carries and a tracing backend shows. They are the same value unless an
//! `X-Trace-ID` pinned something else ([`TraceContext::ids_differ`]).
//!
//! Parsers follow one rule: `parse` reads one header value and returns a `Result`;
//! `extract` reads all the values a request has for a header and never fails (it returns
//! what can be used, or nothing); `try_extract` is `extract` saying why it found nothing.
//!
//! The service continues traces but records no spans: it never changes the sampled flag and
//! never adds its own `tracestate` member.
//!
//! Work that a request starts but does not await gets a trace of its own, linked to the
//! request's in one log line: [`background`]. With the `sqlcommenter` feature, SQL
//! statements carry the current trace in a comment (`sqlcommenter`).
//!
//! # Message queues
//!
//! A message carries its trace in its headers, as a request does: the producer injects the
//! current trace into the message's headers, the consumer extracts it and handles the
//! message inside it, so that the consumer's log lines carry the producer's correlation ID
//! and its W3C trace continues the producer's. Kafka clients hold record headers as
//! `(String, Option<Vec<u8>>)` pairs (a header may have no value: it is skipped), other
//! clients as `(String, Vec<u8>)`: a `Vec` of either is a [`HeaderSink`] to publish with
//! and a [`HeaderSource`] to consume from. The example runs in process, with no broker: a
//! `Vec` stands in for the topic.
//!
//! ```
//! use contextvars::trace::{CurrentCorrelationId, TraceContext};
//!
//! type Headers = Vec<(String, Option<Vec<u8>>)>;
//! let mut topic: Vec<(Headers, &str)> = Vec::new();
//!
//! // Publishing, in a request: the message carries the request's trace and baggage.
//! let request = TraceContext::extract(&[("x-trace-id", "order-42"), ("baggage", "tenant=acme")]);
//! request.clone().sync_scope(|| {
//!     let mut headers = Headers::new();
//!     if let Some(trace) = TraceContext::current() {
//!         trace.inject(&mut headers);
//!     }
//!     topic.push((headers, "ship order 42"));
//! });
//!
//! // Consuming: each message is handled in the trace it carries.
//! # futures::executor::block_on(async {
//! for (headers, payload) in &topic {
//!     let trace = TraceContext::extract(headers);
//!     assert_eq!(trace.trace_id(), request.trace_id()); // the producer's trace, continued
//!     let handled = trace.scope(async {
//!         let tenant = TraceContext::current().unwrap().baggage().get("tenant").map(str::to_owned);
//!         (format!("{CurrentCorrelationId}: {payload}"), tenant)
//!     });
//!     assert_eq!(handled.await, ("order-42: ship order 42".to_string(), Some("acme".to_string())));
//! }
//! # });
//! ```
//!
//! # Conformance
//!
//! W3C Trace Context level 1, with the `tracestate` key grammar (`@` anywhere after the first
//! character) and the `random` trace flag of level 2; the key grammar is the one W3C's test
//! suite checks at its default strictness. The crate's tests run the suite's 41 cases
//! against a relay built on [`TraceContext::extract`] and [`TraceContext::inject`]; see
//! [`TraceState`] for how `tracestate` is read and when it is discarded.
//!
//! W3C Baggage travels the same way: [`Baggage`] is read by `extract` and written by
//! `inject`, and a [`BaggageVar`] declares a context variable that travels in it, so that a
//! value set in one service is what `get` returns in the services it calls.
//!
//! # Examples
//!
//! ```
//! use contextvars::trace::{CurrentCorrelationId, TraceContext};
//!
//! let incoming = [("traceparent", &b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"[..])];
//! let trace = TraceContext::extract(&incoming);
//! assert_eq!(trace.correlation_id().as_str(), "4bf92f3577b34da6a3ce929d0e0e4736");
//!
//! trace.sync_scope(|| {
//!     // what a log formatter prints, without anyone passing the ID along
//!     assert_eq!(CurrentCorrelationId.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
//! });
//! assert_eq!(CurrentCorrelationId.to_string(), "no-trace");
//! ```

mod background;
mod baggage;
mod baggage_var;
#[cfg(feature = "test-util")]
mod capture;
mod context;
mod correlation_id;
mod current_id;
mod current_value;
mod headers;
mod random;
mod traceparent;
mod tracestate;

#[cfg(feature = "tower-trace")]
pub mod client;
#[cfg(feature = "http")]
mod http;
#[cfg(feature = "log")]
pub mod log;
#[cfg(feature = "opentelemetry_0_33")]
pub mod opentelemetry;
#[cfg(feature = "tower-trace")]
pub mod server;
#[cfg(feature = "sqlcommenter")]
pub mod sqlcommenter;
#[cfg(feature = "tracing")]
pub mod tracing;

pub use background::{Background, background, sync_background};
pub use baggage::{Baggage, BaggageError, MAX_BAGGAGE_LEN, MAX_BAGGAGE_MEMBERS};
pub use baggage_var::{BaggageVar, TravellingVar};
pub use context::{IdSource, TraceContext};
pub use correlation_id::{CorrelationId, CorrelationIdError, MAX_CORRELATION_ID_LEN};
pub use current_id::{CurrentCorrelationId, NO_TRACE};
pub use current_value::CurrentValue;
pub use headers::{HeaderBytes, HeaderSink, HeaderSource};
pub use traceparent::{ParseIdError, SpanId, TraceFlags, TraceId, TraceParent, TraceParentError};
pub use tracestate::{MAX_TRACESTATE_LEN, MAX_TRACESTATE_MEMBERS, TraceState, TraceStateError};
