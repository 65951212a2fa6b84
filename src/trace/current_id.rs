//! [`CurrentTraceId`]: the current request's trace ID, read when it is formatted.

use std::fmt;

use super::TRACE_CONTEXT;

/// What [`CurrentTraceId`] shows outside any request, so that orphaned log lines are easy
/// to find.
///
/// # Examples
///
/// ```
/// use contextvars::trace::{CurrentTraceId, NO_TRACE};
///
/// assert_eq!(CurrentTraceId.to_string(), NO_TRACE);
/// ```
pub const NO_TRACE: &str = "no-trace";

/// Formats as the trace ID of the current request, or [`NO_TRACE`] outside any request.
///
/// The ID is read from [`TRACE_CONTEXT`] each time the value is formatted, never cached, so
/// one `CurrentTraceId` in a logger's format serves every record: any output format can use
/// it (`env_logger`'s `format`, a `tracing` event formatter, a hand-written `log::Log`).
///
/// # Examples
///
/// ```
/// use contextvars::trace::{CurrentTraceId, TraceContext};
///
/// let line = |msg: &str| format!("trace_id={CurrentTraceId} {msg}");
/// assert_eq!(line("starting"), "trace_id=no-trace starting");
///
/// let trace = TraceContext::new_root();
/// let inside = trace.clone().scope(|| line("handling"));
/// assert_eq!(inside, format!("trace_id={} handling", trace.correlation_id()));
///
/// // width and alignment apply, for column-aligned output
/// assert_eq!(format!("[{CurrentTraceId:>10}]"), "[  no-trace]");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CurrentTraceId;

impl fmt::Display for CurrentTraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        TRACE_CONTEXT.with(|trace| match trace {
            Some(trace) => f.pad(trace.correlation_id().as_str()),
            None => f.pad(NO_TRACE),
        })
    }
}
