//! A test tool: [`LogCapture`], a `log::Log` that keeps each record with the trace ID
//! current when it was emitted, and [`LogCapture::check`] (feature `test-util`).

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::Mutex;

use ::log::{Level, Log, Metadata, Record};

use crate::trace::TRACE_CONTEXT;

/// One record seen by [`LogCapture`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedRecord {
    /// The record's level.
    pub level: Level,
    /// The record's target.
    pub target: String,
    /// The formatted message.
    pub message: String,
    /// The trace ID current when the record was emitted; `None` outside any request.
    pub trace_id: Option<String>,
}

/// A `log::Log` that keeps every record with the trace ID current when it was emitted, for
/// tests that check that no log line loses its request.
///
/// # Examples
///
/// ```
/// use contextvars::trace::log::LogCapture;
/// use contextvars::trace::TraceContext;
///
/// let capture = LogCapture::install().unwrap();
/// for request in 0..3 {
///     TraceContext::new_root().scope(|| log::info!("request {request}: handled"));
/// }
/// log::info!("not part of a request");
///
/// let records = capture.take();
/// let request_of = |r: &contextvars::trace::log::CapturedRecord| {
///     r.message.strip_prefix("request ").and_then(|rest| rest.split(':').next()).map(str::to_owned)
/// };
/// assert_eq!(LogCapture::check(&records, request_of), Ok(3));
/// ```
#[derive(Debug, Default)]
pub struct LogCapture {
    records: Mutex<Vec<CapturedRecord>>,
}

impl LogCapture {
    /// A capture that is not installed; feed it with [`Log::log`] or install it.
    #[must_use]
    pub const fn new() -> Self {
        Self { records: Mutex::new(Vec::new()) }
    }

    /// Installs the process-wide capture as the global logger (at level `Trace`) and returns
    /// it; later calls return the same capture. Tests that run in parallel in one process
    /// share it: tag the records each test checks (for example with a per-test prefix in the
    /// request key) and read them with [`records`](Self::records).
    ///
    /// # Errors
    ///
    /// When another global logger is already installed.
    pub fn install() -> Result<&'static LogCapture, ::log::SetLoggerError> {
        static GLOBAL: LogCapture = LogCapture::new();
        static INSTALLED: Mutex<bool> = Mutex::new(false);
        let mut installed = INSTALLED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !*installed {
            ::log::set_logger(&GLOBAL)?;
            ::log::set_max_level(::log::LevelFilter::Trace);
            *installed = true;
        }
        Ok(&GLOBAL)
    }

    /// Takes the records captured so far, leaving none.
    pub fn take(&self) -> Vec<CapturedRecord> {
        std::mem::take(&mut *self.lock())
    }

    /// A copy of the records captured so far.
    pub fn records(&self) -> Vec<CapturedRecord> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<CapturedRecord>> {
        self.records.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Checks the records that `request_of` attributes to a request: none may have been
    /// emitted outside a trace, and all the records of one request must carry one trace ID.
    /// Returns how many records were checked.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::trace::log::{CaptureError, CapturedRecord, LogCapture};
    /// use contextvars::trace::TraceContext;
    ///
    /// let record = |message: &str, trace_id: Option<&str>| CapturedRecord {
    ///     level: log::Level::Info,
    ///     target: "app".into(),
    ///     message: message.into(),
    ///     trace_id: trace_id.map(Into::into),
    /// };
    /// let request_of = |r: &CapturedRecord| r.message.split(' ').next().map(str::to_owned);
    ///
    /// let good = [record("r1 start", Some("a")), record("r1 done", Some("a")), record("r2 start", Some("b"))];
    /// assert_eq!(LogCapture::check(&good, request_of), Ok(3));
    ///
    /// let lost = [record("r1 start", Some("a")), record("r1 worker", None)];
    /// assert!(matches!(LogCapture::check(&lost, request_of), Err(CaptureError::NoTraceId { .. })));
    ///
    /// let mixed = [record("r1 start", Some("a")), record("r1 done", Some("b"))];
    /// assert!(matches!(LogCapture::check(&mixed, request_of), Err(CaptureError::MixedIds { .. })));
    /// ```
    ///
    /// # Errors
    ///
    /// The first record emitted inside a request without a trace ID, or the first request
    /// whose records carry two different IDs.
    pub fn check<K: Eq + Hash + fmt::Debug>(
        records: &[CapturedRecord],
        request_of: impl Fn(&CapturedRecord) -> Option<K>,
    ) -> Result<usize, CaptureError> {
        let mut ids: HashMap<K, &str> = HashMap::new();
        let mut checked = 0;
        for record in records {
            let Some(request) = request_of(record) else { continue };
            checked += 1;
            let Some(id) = record.trace_id.as_deref() else {
                return Err(CaptureError::NoTraceId { message: record.message.clone() });
            };
            let first = *ids.entry(request).or_insert(id);
            if first != id {
                return Err(CaptureError::MixedIds {
                    message: record.message.clone(),
                    first: first.to_owned(),
                    second: id.to_owned(),
                });
            }
        }
        Ok(checked)
    }
}

impl Log for LogCapture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &Record<'_>) {
        let trace_id = TRACE_CONTEXT.with(|trace| trace.map(|t| t.correlation_id().to_string()));
        let captured = CapturedRecord {
            level: record.level(),
            target: record.target().to_owned(),
            message: record.args().to_string(),
            trace_id,
        };
        self.lock().push(captured);
    }

    fn flush(&self) {}
}

/// Why [`LogCapture::check`] failed.
///
/// # Examples
///
/// ```
/// use contextvars::trace::log::CaptureError;
///
/// let error = CaptureError::NoTraceId { message: "req=1 worker".into() };
/// assert_eq!(error.to_string(), r#"record emitted inside a request has no trace id: "req=1 worker""#);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureError {
    /// A record emitted inside a request carried no trace ID: the request's context was lost
    /// on the way (a thread pool job or a task spawned without the crate's helpers).
    NoTraceId {
        /// The record's message.
        message: String,
    },
    /// One request's records carried two different trace IDs: another request's context
    /// leaked in.
    MixedIds {
        /// The message of the record with the second ID.
        message: String,
        /// The ID the request's first record carried.
        first: String,
        /// The other ID.
        second: String,
    },
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoTraceId { message } => {
                write!(f, "record emitted inside a request has no trace id: {message:?}")
            }
            Self::MixedIds { message, first, second } => {
                write!(f, "request logged with trace id {first} and then {second}: {message:?}")
            }
        }
    }
}

impl std::error::Error for CaptureError {}
