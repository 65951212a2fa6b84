//! [`CurrentCorrelationId`]: the current request's correlation ID, read when it is formatted.

use std::fmt;

use super::context::TRACE_CONTEXT;

/// What [`CurrentCorrelationId`] shows outside any request, so that orphaned log lines are
/// easy to find.
///
/// # Examples
///
/// ```
/// use contextvars::trace::{CurrentCorrelationId, NO_TRACE};
///
/// assert_eq!(CurrentCorrelationId.to_string(), NO_TRACE);
/// ```
pub const NO_TRACE: &str = "no-trace";

/// Formats as the correlation ID of the current request, or [`NO_TRACE`] outside any
/// request.
///
/// The ID is read from the current [`TraceContext`](super::TraceContext) each time the
/// value is formatted, never cached, so one `CurrentCorrelationId` in a logger's format
/// serves every record: any output format can use it (`env_logger`'s `format`, a `tracing`
/// event formatter, a hand-written `log::Log`).
///
/// # Examples
///
/// ```
/// use contextvars::trace::{CurrentCorrelationId, TraceContext};
///
/// let line = |msg: &str| format!("correlation_id={CurrentCorrelationId} {msg}");
/// assert_eq!(line("starting"), "correlation_id=no-trace starting");
///
/// let trace = TraceContext::new_root();
/// let inside = trace.clone().sync_scope(|| line("handling"));
/// assert_eq!(inside, format!("correlation_id={} handling", trace.correlation_id()));
///
/// // width and alignment apply, for column-aligned output
/// assert_eq!(format!("[{CurrentCorrelationId:>10}]"), "[  no-trace]");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CurrentCorrelationId;

impl fmt::Display for CurrentCorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        TRACE_CONTEXT.with(|trace| match trace {
            Some(trace) => f.pad(trace.correlation_id().as_str()),
            None => f.pad(NO_TRACE),
        })
    }
}
