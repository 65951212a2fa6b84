//! Request tracing on top of context variables (feature `trace`): one correlation ID per
//! request, in every log line the request produces, across `.await`s, spawned tasks and
//! thread pools, and its W3C trace in every call it makes to other services.
//!
//! `cargo run --example request_tracing --all-features` runs this module at work: a hyper
//! service on smol under load, every log line checked for its request's ID, against the same
//! load with the ID in a plain `thread_local!`.
//!
//! # Where each part is
//!
//! This module needs the feature `trace`, which each feature below turns on:
//!
//! | feature | module | what it brings |
//! |---|---|---|
//! | `trace` | here | [`TraceContext`], the parsers, [`Baggage`] and [`BaggageVar`], [`CurrentCorrelationId`] and [`CurrentValue`] for any logger, [`background`] |
//! | `http` | here | `extract` and `inject` on an `http::HeaderMap` |
//! | `tower-trace` | `trace::server`, `trace::client` | the `tower` middleware: each request in a context of its own holding its trace, and the trace on every outgoing call |
//! | `log` | `trace::log` | `CorrelationIdLogger`, around any `log::Log` |
//! | `tracing` | `trace::tracing` | `CorrelationIdFormat`, around any `tracing-subscriber` event format |
//! | `test-util` | `trace::log`, `trace::tracing` | `LogCapture` and `TracingCapture`: the test that no line of a request lost its ID ([`lints`](crate::lints)) |
//! | `opentelemetry_0_33` | `trace::opentelemetry` | one ID per request in a service that exports spans |
//! | `sqlcommenter` | `trace::sqlcommenter` | the current trace in SQL comments |
//!
//! # Which ID a request gets
//!
//! Two IDs, two names, used the same way everywhere in the API: the **correlation ID**
//! ([`CorrelationId`], [`TraceContext::correlation_id`], [`CurrentCorrelationId`], the
//! `correlation_id` key of the log integrations) is what log lines carry and what an
//! `X-Trace-ID` header pins; the **trace ID** ([`TraceId`], [`TraceContext::trace_id`]) is
//! the W3C trace-id that `traceparent` carries and a tracing backend shows.
//!
//! Headers are read with one verb and written with one, on any header collection (an
//! `http::HeaderMap` with the `http` feature, `(name, value)` pairs, or a [`HeaderSource`] /
//! [`HeaderSink`] of your own): at the request boundary, [`TraceContext::extract`] never
//! fails, and picks the request's correlation ID in this order:
//!
//! 1. an `X-Trace-ID` header, which lets a proxy or a test pin the value: used as it is when
//!    it is exactly one header of 1 to 128 bytes of visible ASCII (`0x21..=0x7e`) and not
//!    [`NO_TRACE`], ignored otherwise (a space, CR, LF or any control byte could forge log
//!    lines, `no-trace` would hide the request's lines among those outside any request);
//! 2. else the trace-id of a valid W3C `traceparent` header;
//! 3. else a new random UUID v4, as 32 lowercase hex digits (so also a valid W3C trace-id).
//!
//! That ID is what log lines show, what the response echoes and what the next service
//! receives in `X-Trace-ID`. The W3C trace-id is what the outgoing `traceparent` carries: the
//! trace-id of a valid incoming `traceparent` (with a new parent-id per call), else the pinned
//! `X-Trace-ID` when it is itself a valid trace-id, else a generated one. The two are the
//! same unless an `X-Trace-ID` pinned something else ([`TraceContext::ids_differ`] says so):
//! log both once per request then, to join logs and traces.
//!
//! # The current trace
//!
//! The trace lives in one context variable that the middleware, the log integrations and
//! other libraries share, reached through [`TraceContext`]'s methods:
//! [`TraceContext::current`] reads it anywhere in the request; [`TraceContext::scope`] runs a
//! future and [`TraceContext::sync_scope`] a closure in a context holding a trace (tokio's
//! meanings of `scope` and `sync_scope`); [`TraceContext::set`] / [`TraceContext::reset`]
//! suit callback-based frameworks; [`TraceContext::set_in`] builds a context holding it; and
//! [`TraceContext::new_root`] gives each unit of work that no request started (a scheduler
//! tick) its own ID. Outgoing calls carry it on with [`TraceContext::inject`]: a
//! `traceparent` with the same trace-id, a new parent-id and the incoming flags, the
//! incoming `tracestate`, the `baggage` and the `X-Trace-ID`.
//!
//! Inside a request, the trace follows the request's context: `contextvars::tokio::spawn(fut)`
//! or `fut.in_current_context()` carries it into spawned tasks, `Context::current().wrap(f)`
//! into thread pools (`smol::unblock`, `tokio::task::spawn_blocking`, rayon), and the client
//! layer (or `trace.inject(request.headers_mut())`) into calls to other services.
//!
//! The service continues traces but records no spans: it never changes the sampled flag and
//! never adds its own `tracestate` member.
//!
//! # Logs
//!
//! [`CurrentCorrelationId`] formats as the current request's correlation ID, or as the
//! sentinel [`NO_TRACE`] (`no-trace`) outside any request, so that orphaned lines are easy to
//! find. It reads the context each time it is formatted, never caching, so one logger built
//! at startup serves every request, and any output format can use it. [`CurrentValue`] does
//! the same for a [`ContextVar`](crate::ContextVar) of your own whose type is `Display` (a
//! tenant, a user id), with a placeholder of your choice when it has no value; both honour
//! width and alignment (`{:>36}`). With `env_logger`, the feature `trace` is enough (the
//! `log` macros come from your own `log` dependency):
//!
//! ```toml
//! [dependencies]
//! contextvars = { version = "0.1", features = ["trace"] }
//! env_logger = "0.11"
//! log = "0.4"
//! ```
//!
//! ```
//! use std::io::Write;
//!
//! use contextvars::trace::{CurrentCorrelationId, TraceContext};
//! # use std::sync::{Arc, Mutex};
//! # #[derive(Clone, Default)]
//! # struct Buffer(Arc<Mutex<Vec<u8>>>);
//! # impl Write for Buffer {
//! #     fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> { self.0.lock().unwrap().extend_from_slice(bytes); Ok(bytes.len()) }
//! #     fn flush(&mut self) -> std::io::Result<()> { Ok(()) }
//! # }
//! # let buffer = Buffer::default();
//!
//! env_logger::Builder::new()
//!     .format(|buf, record| writeln!(buf, "{} correlation_id={} {}", record.level(), CurrentCorrelationId, record.args()))
//!     .filter_level(log::LevelFilter::Info)
//! #   .target(env_logger::Target::Pipe(Box::new(buffer.clone())))
//!     .init();
//! log::info!("starting");
//! TraceContext::extract(&[("x-trace-id", "job-7")]).sync_scope(|| log::info!("one job"));
//! # let output = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
//! assert_eq!(output, "INFO correlation_id=no-trace starting\nINFO correlation_id=job-7 one job\n");
//! ```
//!
//! The `log` and `tracing` features add ready-made wrappers, `trace::log::CorrelationIdLogger`
//! and `trace::tracing::CorrelationIdFormat`, which also keep JSON lines valid with the ID as
//! a field.
//!
//! # Baggage: context variables that cross services
//!
//! [`Baggage`] reads and writes the W3C `baggage` header (members with properties, optional
//! whitespace, percent-encoded values; bad members dropped, the good ones kept; at most the
//! 64 members and 8,192 bytes every platform must propagate, and nothing past them is
//! parsed). [`TraceContext::extract`] reads it with `traceparent`, and
//! [`TraceContext::inject`] passes it on.
//!
//! A [`ContextVar`](crate::ContextVar) declared as travelling ([`BaggageVar`], with a key and
//! a codec) is set in the called service from the caller's value, with no code at either
//! boundary beyond the server layer and the client layer (`trace::server` has the example).
//! Only declared variables ever leave the process, and a variable whose value would break
//! the limits is not sent. Baggage is client-controlled: the server layer's
//! `trust_baggage(false)` (or `trust_incoming(false)`) ignores it. As the specification's
//! privacy section warns, baggage reaches every service the request calls, third parties
//! included: keep secrets and personal data out of it.
//!
//! # Background jobs
//!
//! Work a request starts but does not wait for should not borrow its trace, nor its
//! variables. [`background(job)`](background) runs a future ([`sync_background(f)`](sync_background)
//! a closure) in a fresh, empty context with a new root trace, and logs once, when the job
//! starts and with the job's own ID, the link to the request: `background job started,
//! linked to trace-id <the request's trace-id> (correlation id <its ID>)` (through the `log`
//! facade, with the `log` feature; as key-values too).
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
//! `traceparent` and `tracestate` are processed as W3C Trace Context says for a service
//! that continues traces without recording spans: level 1, with the `tracestate` key grammar
//! (`@` anywhere after the first character) and the `random` trace flag of level 2; the key
//! grammar is the one W3C's test suite checks at its default strictness. The crate's tests
//! run the suite's 41 cases against a relay built on [`TraceContext::extract`] and
//! [`TraceContext::inject`]; the suite itself, run by hand against the repository's
//! `examples/w3c_relay.rs`, passes 41 of 41 with `SPEC_LEVEL=2`, and 40 with the level 2 case
//! skipped at its defaults.
//!
//! `traceparent` is parsed strictly: version `ff` is invalid, lowercase hex only, exact
//! lengths, all-zero ids invalid, and higher versions are parsed by their version-00 prefix.
//! Spaces and tabs around the value are skipped, and more than one `traceparent` header
//! restarts the trace. `tracestate` is only read with a valid `traceparent`: headers are
//! combined in order, a repeated key keeps its first member, and one invalid member, more
//! than 32 members or more than 32 KiB of header discard the whole `tracestate` (parsing
//! stops there, so a client cannot make it do more work); see [`TraceState`]. Keys follow
//! level 2: a lowercase letter or a digit, then up to 255 of `a-z0-9_-*/@` (`tenant@vendor`,
//! `foo@`).
//!
//! The parsers are public ([`TraceParent`], [`TraceId`], [`SpanId`], [`TraceFlags`],
//! [`TraceState`], [`Baggage`], [`CorrelationId`]), with errors that say what is wrong, and
//! follow one rule: `parse` reads one header value and returns a `Result`; `extract` reads
//! every value a request has for the header and never fails (it returns what can be used,
//! or nothing); `try_extract` is `extract` saying why it found nothing.
//!
//! # OpenTelemetry and SQL comments
//!
//! With the `opentelemetry_0_33` feature, a service that exports spans keeps one ID per
//! request: `trace::opentelemetry` converts a [`TraceContext`] to and from a `SpanContext`,
//! and its `W3cPropagator` is a `TextMapPropagator` built on the strict parsers above. With
//! the `sqlcommenter` feature, `trace::sqlcommenter` puts the current trace into each SQL
//! statement, as the [sqlcommenter](https://google.github.io/sqlcommenter/spec/)
//! specification describes, so that the database's own logs name the request.
//!
//! Measured costs (parse and format, extract and inject, the server layer against the same
//! hyper service without it) are in the repository's BENCHMARKS.md, "Request tracing".
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
