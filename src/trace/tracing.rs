//! Correlation IDs, and any context variable, in `tracing-subscriber`'s fmt output.
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
