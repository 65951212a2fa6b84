//! A test tool: [`LogCapture`], a `log::Log` that keeps each record with the correlation ID
//! current when it was emitted, and [`LogCapture::check`] (feature `test-util`).

use std::fmt;
use std::hash::Hash;
use std::sync::Mutex;

use ::log::{Level, Log, Metadata, Record};

use crate::trace::capture::{self, Mismatch};
use crate::trace::context::TRACE_CONTEXT;

/// One record seen by [`LogCapture`].
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedRecord {
    /// The record's level.
    pub level: Level,
    /// The record's target.
    pub target: String,
    /// The formatted message.
    pub message: String,
    /// The correlation ID current when the record was emitted; `None` outside any request.
    pub correlation_id: Option<String>,
}

impl CapturedRecord {
    /// A record, for feeding [`LogCapture::check`] by hand.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::trace::log::CapturedRecord;
    ///
    /// let record = CapturedRecord::new(log::Level::Info, "app", "paid", Some("req-1"));
    /// assert_eq!(record.correlation_id.as_deref(), Some("req-1"));
    /// ```
    #[must_use]
    pub fn new(level: Level, target: &str, message: &str, correlation_id: Option<&str>) -> Self {
        Self {
            level,
            target: target.to_owned(),
            message: message.to_owned(),
            correlation_id: correlation_id.map(str::to_owned),
        }
    }
}

/// A `log::Log` that keeps every record with the correlation ID current when it was emitted,
/// for tests that check that no log line loses its request.
///
/// # Examples
///
/// ```
/// use contextvars::trace::log::LogCapture;
/// use contextvars::trace::TraceContext;
///
/// let capture = LogCapture::init();
/// for request in 0..3 {
///     TraceContext::new_root().sync_scope(|| log::info!("request {request}: handled"));
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
    /// # Panics
    ///
    /// When another global logger is already installed; [`try_init`](Self::try_init)
    /// returns the error instead.
    #[track_caller]
    #[allow(clippy::must_use_candidate, reason = "often called for its effect alone, installing the logger")]
    pub fn init() -> &'static LogCapture {
        match Self::try_init() {
            Ok(capture) => capture,
            Err(error) => panic!("LogCapture::init: {error}"),
        }
    }

    /// [`init`](Self::init), unless another global logger is already installed.
    ///
    /// # Errors
    ///
    /// When another global logger is already installed.
    pub fn try_init() -> Result<&'static LogCapture, ::log::SetLoggerError> {
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
    /// emitted outside a trace, and all the records of one request must carry one
    /// correlation ID.
    /// Returns how many records were checked.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::trace::log::{CaptureError, CapturedRecord, LogCapture};
    /// use contextvars::trace::TraceContext;
    ///
    /// let record = |message: &str, id: Option<&str>| CapturedRecord::new(log::Level::Info, "app", message, id);
    /// let request_of = |r: &CapturedRecord| r.message.split(' ').next().map(str::to_owned);
    ///
    /// let good = [record("r1 start", Some("a")), record("r1 done", Some("a")), record("r2 start", Some("b"))];
    /// assert_eq!(LogCapture::check(&good, request_of), Ok(3));
    ///
    /// let lost = [record("r1 start", Some("a")), record("r1 worker", None)];
    /// assert!(matches!(LogCapture::check(&lost, request_of), Err(CaptureError::NoCorrelationId { .. })));
    ///
    /// let mixed = [record("r1 start", Some("a")), record("r1 done", Some("b"))];
    /// assert!(matches!(LogCapture::check(&mixed, request_of), Err(CaptureError::MixedIds { .. })));
    /// ```
    ///
    /// # Errors
    ///
    /// The first record emitted inside a request without a correlation ID, or the first request
    /// whose records carry two different IDs.
    pub fn check<K: Eq + Hash + fmt::Debug>(
        records: &[CapturedRecord],
        request_of: impl Fn(&CapturedRecord) -> Option<K>,
    ) -> Result<usize, CaptureError> {
        capture::check(records, request_of, |r| r.correlation_id.as_deref()).map_err(
            |mismatch| match mismatch {
                Mismatch::NoCorrelationId(index) => {
                    CaptureError::NoCorrelationId { message: records[index].message.clone() }
                }
                Mismatch::MixedIds { index, first, second } => CaptureError::MixedIds {
                    message: records[index].message.clone(),
                    first: first.to_owned(),
                    second: second.to_owned(),
                },
            },
        )
    }
}

impl Log for LogCapture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &Record<'_>) {
        let correlation_id = TRACE_CONTEXT.with(|trace| trace.map(|t| t.correlation_id().to_string()));
        let captured = CapturedRecord {
            level: record.level(),
            target: record.target().to_owned(),
            message: record.args().to_string(),
            correlation_id,
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
/// let error = CaptureError::NoCorrelationId { message: "req=1 worker".into() };
/// assert_eq!(error.to_string(), r#"record emitted inside a request has no correlation id: "req=1 worker""#);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureError {
    /// A record emitted inside a request carried no correlation ID: the request's context was
    /// lost on the way (a thread pool job or a task spawned without the crate's helpers).
    NoCorrelationId {
        /// The record's message.
        message: String,
    },
    /// One request's records carried two different correlation IDs: another request's
    /// context leaked in.
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
            Self::NoCorrelationId { message } => {
                write!(f, "record emitted inside a request has no correlation id: {message:?}")
            }
            Self::MixedIds { message, first, second } => {
                write!(f, "request logged with correlation id {first} and then {second}: {message:?}")
            }
        }
    }
}

impl std::error::Error for CaptureError {}
