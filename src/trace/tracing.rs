//! Correlation IDs, and any context variable, in `tracing-subscriber`'s fmt output (feature
//! `tracing`).
//!
//! [`CorrelationIdFormat`] wraps any event format: text formats get `correlation_id=<id> `
//! in front of each line, and a JSON format (`.json()`) gets `"correlation_id"` as a real
//! member of each line's object, so that every line stays valid JSON. The ID is read from the
//! current context when each event is formatted: one subscriber set up at startup serves
//! every request, and lines outside any request say `no-trace`.
//!
//! ```toml
//! [dependencies]
//! contextvars = { version = "0.1", features = ["tracing"] }
//! tracing = "0.1"
//! tracing-subscriber = "0.3"
//! ```
//!
//! # Setting up the subscriber
//!
//! Call the builder's format methods first (`with_ansi`, `without_time`, `with_target`,
//! `compact`, `json`, ...), then wrap the format they built with
//! `.map_event_format(CorrelationIdFormat::new)`; the writer, the filter and `finish` or
//! `init` may come after it:
//!
//! ```
//! use contextvars::trace::TraceContext;
//! use contextvars::trace::tracing::CorrelationIdFormat;
//! # use std::sync::{Arc, Mutex};
//! # #[derive(Clone, Default)]
//! # struct Buffer(Arc<Mutex<Vec<u8>>>);
//! # impl std::io::Write for Buffer {
//! #     fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> { self.0.lock().unwrap().extend_from_slice(bytes); Ok(bytes.len()) }
//! #     fn flush(&mut self) -> std::io::Result<()> { Ok(()) }
//! # }
//! # let buffer = Buffer::default();
//! # let writer = { let buffer = buffer.clone(); move || buffer.clone() };
//!
//! let subscriber = tracing_subscriber::fmt()
//!     .with_ansi(false)
//!     .without_time()
//!     .with_target(false)
//!     .compact()
//!     .map_event_format(CorrelationIdFormat::new) // last of the format methods
//!     .with_writer(writer)
//!     .finish(); // or `.init()`, to install it for the whole process
//! tracing::subscriber::with_default(subscriber, || {
//!     tracing::info!("ready");
//!     TraceContext::extract(&[("x-trace-id", "req-1")]).sync_scope(|| tracing::info!(user = 5, "paid"));
//! });
//! # let output = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
//! assert_eq!(output, "correlation_id=no-trace  INFO ready\ncorrelation_id=req-1  INFO paid user=5\n");
//! ```
//!
//! The format methods exist only while the builder's format is `tracing-subscriber`'s own:
//! after `map_event_format` (or `event_format`) they are gone, and calling one fails to
//! compile with `error[E0599]: no method named 'with_ansi' found`:
//!
//! ```compile_fail,E0599
//! use contextvars::trace::tracing::CorrelationIdFormat;
//!
//! let subscriber = tracing_subscriber::fmt()
//!     .map_event_format(CorrelationIdFormat::new)
//!     .with_ansi(false) // error[E0599]: the format is no longer `Format`
//!     .finish();
//! ```
//!
//! To add variables of your own or change the key, build the wrapper in the closure:
//! `.map_event_format(|format| CorrelationIdFormat::new(format).key("request_id").var("tenant", &TENANT))`.
//!
//! # JSON lines
//!
//! With `tracing-subscriber`'s `json` feature:
//!
//! ```
//! use contextvars::ContextVar;
//! use contextvars::trace::TraceContext;
//! use contextvars::trace::tracing::CorrelationIdFormat;
//! # use std::sync::{Arc, Mutex};
//! # #[derive(Clone, Default)]
//! # struct Buffer(Arc<Mutex<Vec<u8>>>);
//! # impl std::io::Write for Buffer {
//! #     fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> { self.0.lock().unwrap().extend_from_slice(bytes); Ok(bytes.len()) }
//! #     fn flush(&mut self) -> std::io::Result<()> { Ok(()) }
//! # }
//! # let buffer = Buffer::default();
//! # let writer = { let buffer = buffer.clone(); move || buffer.clone() };
//!
//! static TENANT: ContextVar<String> = ContextVar::new("tenant");
//!
//! let subscriber = tracing_subscriber::fmt()
//!     .json()
//!     .without_time()
//!     .map_event_format(|format| CorrelationIdFormat::new(format).var("tenant", &TENANT))
//!     .with_writer(writer)
//!     .finish();
//! tracing::subscriber::with_default(subscriber, || {
//!     TraceContext::extract(&[("x-trace-id", "req-1")]).sync_scope(|| {
//!         TENANT.sync_scope("acme".into(), || tracing::info!(user = 5, "paid"));
//!     });
//! });
//! # let output = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
//! let line: serde_json::Value = serde_json::from_str(output.trim_end()).unwrap();
//! assert_eq!((line["correlation_id"].as_str(), line["tenant"].as_str()), (Some("req-1"), Some("acme")));
//! assert_eq!(line["fields"]["message"], "paid");
//! ```
//!
//! # A forgotten layer, on tokio
//!
//! The formatter reads whatever context the event is emitted in. A handler that sets the
//! request's trace with no layer in front, served by tokio with nothing giving tasks their
//! own context, sets it in a worker thread's own context, shared by every task the thread
//! polls. The guarantee that no line then carries another request's ID **needs the `tokio`
//! feature**: with it, every other request reads as if that `set` had not been made (its
//! lines say `no-trace`), the formatter never panics and never writes a broken line, and
//! debug builds report the `set`'s file and line (see `contextvars::tokio`). Without the
//! feature, the lines of the next request polled on that thread carry the ID found there. The
//! server layer, `contextvars::trace::server::TraceContextServerLayer` (feature
//! `tower-trace`), is the fix.
//!
//! # Checking it in tests
//!
//! With the `test-util` feature, `TracingCapture` records the events a test emits, with the
//! ID of each, and checks that no request lost or mixed up its ID: the test to write is in
//! [`lints`](crate::lints).

use std::fmt;

use tracing_core::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use super::current_value::Fields;
use crate::ContextVar;

#[cfg(feature = "test-util")]
mod capture;
#[cfg(feature = "test-util")]
pub use capture::{CaptureError, CapturedEvent, TracingCapture};

/// Wraps an event format so that every line carries `correlation_id` (the key can be
/// changed with [`key`](Self::key)), and the variables added with [`var`](Self::var), read
/// from the current context when the event is formatted.
///
/// Text formats (`full`, `compact`, `pretty`) get `correlation_id=<id> ` in front of the
/// line. A format that writes a JSON object (`.json()`) gets `"correlation_id":"<id>"` as
/// the object's first member, so that each line stays one valid JSON object with the ID a
/// real field.
///
/// # Examples
///
/// ```
/// use contextvars::trace::TraceContext;
/// use contextvars::trace::tracing::CorrelationIdFormat;
/// # use std::sync::{Arc, Mutex};
/// # #[derive(Clone, Default)]
/// # struct Buffer(Arc<Mutex<Vec<u8>>>);
/// # impl std::io::Write for Buffer {
/// #     fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> { self.0.lock().unwrap().extend_from_slice(bytes); Ok(bytes.len()) }
/// #     fn flush(&mut self) -> std::io::Result<()> { Ok(()) }
/// # }
/// # let buffer = Buffer::default();
/// # let writer = { let buffer = buffer.clone(); move || buffer.clone() };
///
/// let format = tracing_subscriber::fmt::format().without_time().with_target(false).compact();
/// let subscriber = tracing_subscriber::fmt()
///     .event_format(CorrelationIdFormat::new(format))
///     .with_writer(writer)
///     .finish();
/// tracing::subscriber::with_default(subscriber, || {
///     tracing::info!("ready");
///     TraceContext::extract(&[("x-trace-id", "req-1")]).sync_scope(|| tracing::info!(user = 5, "paid"));
/// });
/// let output = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
/// assert_eq!(output, "correlation_id=no-trace  INFO ready\ncorrelation_id=req-1  INFO paid user=5\n");
/// ```
#[derive(Clone)]
pub struct CorrelationIdFormat<F> {
    inner: F,
    fields: Fields,
}

impl<F> CorrelationIdFormat<F> {
    /// Wraps `inner`, with the key `correlation_id`.
    #[must_use]
    pub fn new(inner: F) -> Self {
        Self { inner, fields: Fields::correlation_id() }
    }

    /// Uses `key` instead of `correlation_id`.
    #[must_use]
    pub fn key(mut self, key: &'static str) -> Self {
        self.fields.rename_first(key);
        self
    }

    /// Adds the field `key`, the current value of `var` (`-` when it has none), after the
    /// correlation ID.
    #[must_use]
    pub fn var<T: Send + Sync + fmt::Display + 'static>(
        mut self,
        key: &'static str,
        var: &'static ContextVar<T>,
    ) -> Self {
        self.fields.push(key, var);
        self
    }

    /// The wrapped format.
    #[must_use]
    pub const fn get_ref(&self) -> &F {
        &self.inner
    }

    /// The wrapped format, mutably.
    pub const fn get_mut(&mut self) -> &mut F {
        &mut self.inner
    }

    /// The wrapped format, unwrapped.
    pub fn into_inner(self) -> F {
        self.inner
    }
}

impl<S, N, F> FormatEvent<S, N> for CorrelationIdFormat<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // Formatted aside first, to see whether it is a JSON object.
        let mut line = String::new();
        self.inner.format_event(ctx, Writer::new(&mut line), event)?;
        if let Some(members) = line.strip_prefix('{') {
            let mut out = String::with_capacity(line.len() + 64);
            out.push('{');
            self.fields.write_json_members(&mut out);
            if members.starts_with('}') {
                out.pop(); // the last `,`
            }
            out.push_str(members);
            return writer.write_str(&out);
        }
        self.fields.write_prefix(&mut writer)?;
        if writer.has_ansi_escapes() {
            // The line aside has no colours: format again, in place.
            return self.inner.format_event(ctx, writer, event);
        }
        writer.write_str(&line)
    }
}

impl<F: fmt::Debug> fmt::Debug for CorrelationIdFormat<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CorrelationIdFormat")
            .field("inner", &self.inner)
            .field("keys", &self.fields.keys().collect::<Vec<_>>())
            .finish()
    }
}
