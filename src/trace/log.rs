//! Correlation IDs, and any context variable, in the records of the `log` facade.
//!
//! Two ways in, both reading the values when each record is emitted:
//! - format with [`CurrentCorrelationId`](super::CurrentCorrelationId) (or
//!   [`CurrentValue`](super::CurrentValue) for a variable of your own) in any logger that
//!   takes a format, e.g. `env_logger`:
//!
//! ```
//! use std::io::Write;
//! use contextvars::trace::CurrentCorrelationId;
//!
//! let logger = env_logger::Builder::new()
//!     .format(|buf, record| {
//!         writeln!(buf, "{} correlation_id={} {}", record.level(), CurrentCorrelationId, record.args())
//!     })
//!     .build();
//! # drop(logger);
//! ```
//!
//! - or wrap any `log::Log` in [`CorrelationIdLogger`], which puts `correlation_id=<id> `
//!   (the key can be changed with `.key("request_id")`, and `key=value` follows for each
//!   variable added with `.var("tenant", &TENANT)`) in front of every message and keeps the
//!   record's key-values. `.init(LevelFilter::Info)` installs it and sets `log`'s maximum
//!   level; it panics when a logger is already installed, as `env_logger`'s `init` does,
//!   and `try_init` returns the error instead.
//!
//! With the `test-util` feature, `LogCapture` records what a test logs, with the ID of
//! each record, and checks that no request lost or mixed up its ID: the test to write is in
//! [`lints`](crate::lints).

use std::fmt;

use ::log::{LevelFilter, Log, Metadata, Record, SetLoggerError};

use super::current_value::Fields;
use crate::ContextVar;

#[cfg(feature = "test-util")]
mod capture;
#[cfg(feature = "test-util")]
pub use capture::{CaptureError, CapturedRecord, LogCapture};

/// Wraps a `log::Log` so that every message starts with `correlation_id=<id> ` (the key can
/// be changed with [`key`](Self::key)), the ID being the current request's, or
/// [`NO_TRACE`](super::NO_TRACE), followed by `key=value ` for each variable added with
/// [`var`](Self::var). The record's level, target, location and key-values are passed on
/// unchanged.
///
/// # Examples
///
/// Installed with [`init`](Self::init), which also sets the maximum level (without it,
/// `log` drops every record before any logger sees it):
///
/// ```
/// use contextvars::ContextVar;
/// use contextvars::trace::TraceContext;
/// use contextvars::trace::log::CorrelationIdLogger;
/// # use std::sync::{Arc, Mutex};
/// # struct Lines(Arc<Mutex<Vec<String>>>);
/// # impl log::Log for Lines {
/// #     fn enabled(&self, _: &log::Metadata<'_>) -> bool { true }
/// #     fn log(&self, record: &log::Record<'_>) { self.0.lock().unwrap().push(format!("{} {}", record.level(), record.args())); }
/// #     fn flush(&self) {}
/// # }
/// # let lines = Arc::new(Mutex::new(Vec::new()));
/// # let inner = Lines(Arc::clone(&lines));
///
/// static TENANT: ContextVar<String> = ContextVar::new("tenant");
///
/// // `inner` is any logger: env_logger, simplelog, your own
/// CorrelationIdLogger::new(inner).var("tenant", &TENANT).init(log::LevelFilter::Info);
///
/// TraceContext::extract(&[("x-trace-id", "req-1")]).sync_scope(|| {
///     TENANT.sync_scope("acme".into(), || log::info!("paid"));
/// });
/// log::warn!("idle");
/// assert_eq!(*lines.lock().unwrap(), [
///     "INFO correlation_id=req-1 tenant=acme paid",
///     "WARN correlation_id=no-trace tenant=- idle",
/// ]);
/// ```
pub struct CorrelationIdLogger<L> {
    inner: L,
    fields: Fields,
}

impl<L: Log> CorrelationIdLogger<L> {
    /// Wraps `inner`, with the key `correlation_id`.
    #[must_use]
    pub fn new(inner: L) -> Self {
        Self { inner, fields: Fields::correlation_id() }
    }

    /// Uses `key` instead of `correlation_id`.
    #[must_use]
    pub fn key(mut self, key: &'static str) -> Self {
        self.fields.rename_first(key);
        self
    }

    /// Adds `key=<value of var>` after the correlation ID (`-` when it has no value).
    #[must_use]
    pub fn var<T: Send + Sync + fmt::Display + 'static>(
        mut self,
        key: &'static str,
        var: &'static ContextVar<T>,
    ) -> Self {
        self.fields.push(key, var);
        self
    }

    /// Installs the logger as the global one and sets `log`'s maximum level to `level`.
    ///
    /// # Panics
    ///
    /// When a global logger is already installed; [`try_init`](Self::try_init) returns the
    /// error instead.
    #[track_caller]
    pub fn init(self, level: LevelFilter)
    where
        L: Send + Sync + 'static,
    {
        if let Err(error) = self.try_init(level) {
            panic!("CorrelationIdLogger::init: {error}");
        }
    }

    /// Installs the logger as the global one and sets `log`'s maximum level to `level`,
    /// unless a global logger is already installed.
    ///
    /// # Errors
    ///
    /// When a global logger is already installed.
    pub fn try_init(self, level: LevelFilter) -> Result<(), SetLoggerError>
    where
        L: Send + Sync + 'static,
    {
        ::log::set_boxed_logger(Box::new(self))?;
        ::log::set_max_level(level);
        Ok(())
    }

    /// The wrapped logger.
    #[must_use]
    pub const fn get_ref(&self) -> &L {
        &self.inner
    }

    /// The wrapped logger, mutably.
    pub const fn get_mut(&mut self) -> &mut L {
        &mut self.inner
    }

    /// The wrapped logger, unwrapped.
    pub fn into_inner(self) -> L {
        self.inner
    }
}

/// The fields, then the message.
struct Prefixed<'a> {
    fields: &'a Fields,
    args: &'a fmt::Arguments<'a>,
}

impl fmt::Display for Prefixed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fields.write_prefix(f)?;
        fmt::Display::fmt(self.args, f)
    }
}

impl<L: Log> Log for CorrelationIdLogger<L> {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.inner.enabled(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        let prefixed = Prefixed { fields: &self.fields, args: record.args() };
        self.inner.log(
            &Record::builder()
                .args(format_args!("{prefixed}"))
                .metadata(record.metadata().clone())
                .module_path(record.module_path())
                .file(record.file())
                .line(record.line())
                .key_values(record.key_values())
                .build(),
        );
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

impl<L: fmt::Debug> fmt::Debug for CorrelationIdLogger<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CorrelationIdLogger")
            .field("inner", &self.inner)
            .field("keys", &self.fields.keys().collect::<Vec<_>>())
            .finish()
    }
}
