//! Trace IDs in `tracing-subscriber`'s fmt output.

use tracing_core::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use super::CurrentTraceId;

/// Wraps an event format so that every line starts with `trace_id=<id> ` (the key can be
/// changed), the ID being read from the current context when the event is formatted.
///
/// # Examples
///
/// ```
/// use contextvars::trace::tracing::TraceIdFormat;
///
/// let subscriber = tracing_subscriber::fmt()
///     .event_format(TraceIdFormat::new(tracing_subscriber::fmt::format().compact()))
///     .finish();
/// tracing::subscriber::with_default(subscriber, || tracing::info!("ready"));
/// ```
#[derive(Debug, Clone)]
pub struct TraceIdFormat<F> {
    inner: F,
    key: &'static str,
}

impl<F> TraceIdFormat<F> {
    /// Wraps `inner`, with the key `trace_id`.
    pub const fn new(inner: F) -> Self {
        Self { inner, key: "trace_id" }
    }

    /// Uses `key` instead of `trace_id`.
    #[must_use]
    pub const fn with_key(mut self, key: &'static str) -> Self {
        self.key = key;
        self
    }
}

impl<S, N, F> FormatEvent<S, N> for TraceIdFormat<F>
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
    ) -> std::fmt::Result {
        write!(writer, "{}={} ", self.key, CurrentTraceId)?;
        self.inner.format_event(ctx, writer, event)
    }
}
