//! A test tool: [`TracingCapture`], a `tracing-subscriber` layer that keeps each event with the
//! correlation ID current when it was emitted, and [`TracingCapture::check`] (features
//! `test-util` and `tracing`).

use std::fmt;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use tracing_core::dispatcher::{self, Dispatch, SetGlobalDefaultError};
use tracing_core::field::{Field, Visit};
use tracing_core::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

use crate::trace::capture::{self, Mismatch};
use crate::trace::context::TRACE_CONTEXT;

/// One event seen by [`TracingCapture`].
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedEvent {
    /// The event's level.
    pub level: Level,
    /// The event's target.
    pub target: String,
    /// The formatted message (the `message` field); empty when the event has none.
    pub message: String,
    /// The event's other fields, in order: strings as they are, other values as `Debug`
    /// formats them.
    pub fields: Vec<(String, String)>,
    /// The correlation ID current when the event was emitted; `None` outside any request.
    pub correlation_id: Option<String>,
}

impl CapturedEvent {
    /// An event with no fields besides its message, for feeding [`TracingCapture::check`] by
    /// hand; add fields with [`with_field`](Self::with_field).
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::trace::tracing::CapturedEvent;
    ///
    /// let event = CapturedEvent::new(tracing::Level::INFO, "app", "paid", Some("req-1")).with_field("order", "7");
    /// assert_eq!(event.correlation_id.as_deref(), Some("req-1"));
    /// assert_eq!(event.field("order"), Some("7"));
    /// ```
    #[must_use]
    pub fn new(level: Level, target: &str, message: &str, correlation_id: Option<&str>) -> Self {
        Self {
            level,
            target: target.to_owned(),
            message: message.to_owned(),
            fields: Vec::new(),
            correlation_id: correlation_id.map(str::to_owned),
        }
    }

    /// Adds the field `name` with `value`.
    #[must_use]
    pub fn with_field(mut self, name: &str, value: &str) -> Self {
        self.fields.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The value of the field `name` (the first, if the event has it twice).
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::trace::tracing::TracingCapture;
    /// use tracing_subscriber::layer::SubscriberExt;
    ///
    /// let capture = TracingCapture::new();
    /// tracing::subscriber::with_default(tracing_subscriber::registry().with(capture.clone()), || {
    ///     tracing::info!(order = 7, customer = "acme", "paid");
    /// });
    /// let event = &capture.take()[0];
    /// assert_eq!((event.field("order"), event.field("customer")), (Some("7"), Some("acme")));
    /// assert_eq!(event.field("message"), None); // it is `event.message`
    /// ```
    #[must_use]
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }
}

/// A `tracing-subscriber` [`Layer`] that keeps every event with the correlation ID current
/// when it was emitted, for tests that check that no log line loses its request: the
/// `tracing` twin of [`LogCapture`](crate::trace::log::LogCapture).
///
/// Clones share what they captured: keep one, give the other to the subscriber.
///
/// # Examples
///
/// ```
/// use contextvars::trace::TraceContext;
/// use contextvars::trace::tracing::{CapturedEvent, TracingCapture};
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let capture = TracingCapture::new();
/// let subscriber = tracing_subscriber::registry().with(capture.clone());
/// tracing::subscriber::with_default(subscriber, || {
///     for request in 0..3 {
///         TraceContext::new_root().sync_scope(|| tracing::info!(request, "handled"));
///     }
///     tracing::info!("not part of a request");
/// });
///
/// let events = capture.take();
/// let request_of = |e: &CapturedEvent| e.field("request").map(str::to_owned);
/// assert_eq!(TracingCapture::check(&events, request_of), Ok(3));
/// ```
#[derive(Debug, Clone, Default)]
pub struct TracingCapture {
    events: Arc<Mutex<Vec<CapturedEvent>>>,
}

impl TracingCapture {
    /// A capture that is not installed: add it to a subscriber
    /// (`tracing_subscriber::registry().with(capture.clone())`), or install the process-wide
    /// one with [`init`](Self::init).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Installs the process-wide capture as `tracing`'s global default subscriber (a
    /// `tracing_subscriber::Registry` with the capture as its only layer, so every event of
    /// every level reaches it) and returns it; later calls return the same capture. Events
    /// from any thread reach it, which a subscriber set with `with_default` (one thread's)
    /// does not: tasks on a runtime's workers, blocking jobs, rayon's threads. Tests that run
    /// in parallel in one process share it: tag the events each test checks (for example
    /// with a per-test prefix in the request field) and read them with
    /// [`events`](Self::events).
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::trace::tracing::TracingCapture;
    ///
    /// let capture = TracingCapture::init();
    /// std::thread::spawn(|| tracing::info!(request = "r1", "from any thread")).join().unwrap();
    /// assert_eq!(capture.events()[0].field("request"), Some("r1"));
    /// ```
    ///
    /// # Panics
    ///
    /// When another global default subscriber is already installed;
    /// [`try_init`](Self::try_init) returns the error instead.
    #[track_caller]
    #[allow(
        clippy::must_use_candidate,
        reason = "often called for its effect alone, installing the subscriber"
    )]
    pub fn init() -> &'static TracingCapture {
        match Self::try_init() {
            Ok(capture) => capture,
            Err(error) => panic!("TracingCapture::init: {error}"),
        }
    }

    /// [`init`](Self::init), unless another global default subscriber is already installed.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::trace::tracing::TracingCapture;
    ///
    /// tracing::subscriber::set_global_default(tracing_subscriber::registry()).unwrap();
    /// assert!(TracingCapture::try_init().is_err()); // another subscriber came first
    /// ```
    ///
    /// # Errors
    ///
    /// When another global default subscriber is already installed.
    pub fn try_init() -> Result<&'static TracingCapture, SetGlobalDefaultError> {
        static GLOBAL: OnceLock<TracingCapture> = OnceLock::new();
        static INSTALLED: Mutex<bool> = Mutex::new(false);
        let global = GLOBAL.get_or_init(TracingCapture::new);
        let mut installed = INSTALLED.lock().unwrap_or_else(PoisonError::into_inner);
        if !*installed {
            let subscriber = tracing_subscriber::registry().with(global.clone());
            dispatcher::set_global_default(Dispatch::new(subscriber))?;
            *installed = true;
        }
        Ok(global)
    }

    /// Takes the events captured so far, leaving none.
    #[allow(clippy::must_use_candidate, reason = "also called to clear the capture")]
    pub fn take(&self) -> Vec<CapturedEvent> {
        std::mem::take(&mut *self.lock())
    }

    /// A copy of the events captured so far.
    #[must_use]
    pub fn events(&self) -> Vec<CapturedEvent> {
        self.lock().clone()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<CapturedEvent>> {
        self.events.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Checks the events that `request_of` attributes to a request: none may have been
    /// emitted outside a trace (a line that would say `no-trace`), and all the events of one
    /// request must carry one correlation ID. Returns how many events were checked.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::trace::tracing::{CaptureError, CapturedEvent, TracingCapture};
    ///
    /// let event = |request: &str, id: Option<&str>| {
    ///     CapturedEvent::new(tracing::Level::INFO, "app", "step", id).with_field("request", request)
    /// };
    /// let request_of = |e: &CapturedEvent| e.field("request").map(str::to_owned);
    ///
    /// let good = [event("r1", Some("a")), event("r1", Some("a")), event("r2", Some("b"))];
    /// assert_eq!(TracingCapture::check(&good, request_of), Ok(3));
    ///
    /// let lost = [event("r1", Some("a")), event("r1", None)];
    /// assert!(matches!(TracingCapture::check(&lost, request_of), Err(CaptureError::NoCorrelationId { .. })));
    ///
    /// let mixed = [event("r1", Some("a")), event("r1", Some("b"))];
    /// assert!(matches!(TracingCapture::check(&mixed, request_of), Err(CaptureError::MixedIds { .. })));
    /// ```
    ///
    /// # Errors
    ///
    /// The first event emitted inside a request without a correlation ID, or the first event
    /// of a request that carries another ID than the request's first event.
    pub fn check<K: Eq + Hash + fmt::Debug>(
        events: &[CapturedEvent],
        request_of: impl Fn(&CapturedEvent) -> Option<K>,
    ) -> Result<usize, CaptureError> {
        capture::check(events, request_of, |e| e.correlation_id.as_deref()).map_err(|mismatch| match mismatch
        {
            Mismatch::NoCorrelationId(index) => {
                CaptureError::NoCorrelationId { line: Line(&events[index]).to_string() }
            }
            Mismatch::MixedIds { index, first, second } => CaptureError::MixedIds {
                line: Line(&events[index]).to_string(),
                first: first.to_owned(),
                second: second.to_owned(),
            },
        })
    }
}

/// An event as a line: its message, then each field as `key=value`.
struct Line<'a>(&'a CapturedEvent);

impl fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.message)?;
        for (key, value) in &self.0.fields {
            write!(f, " {key}={value}")?;
        }
        Ok(())
    }
}

impl<S: Subscriber> Layer<S> for TracingCapture {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let correlation_id = TRACE_CONTEXT.with(|trace| trace.map(|t| t.correlation_id().to_string()));
        let metadata = event.metadata();
        let mut captured = CapturedEvent {
            level: *metadata.level(),
            target: metadata.target().to_owned(),
            message: String::new(),
            fields: Vec::new(),
            correlation_id,
        };
        event.record(&mut Fields(&mut captured));
        self.lock().push(captured);
    }
}

/// Records an event's fields into a [`CapturedEvent`].
struct Fields<'a>(&'a mut CapturedEvent);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            value.clone_into(&mut self.0.message);
        } else {
            self.0.fields.push((field.name().to_owned(), value.to_owned()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // The message is `format_args!`, whose `Debug` is its text.
        let value = format!("{value:?}");
        if field.name() == "message" {
            self.0.message = value;
        } else {
            self.0.fields.push((field.name().to_owned(), value));
        }
    }
}

/// Why [`TracingCapture::check`] failed.
///
/// # Examples
///
/// ```
/// use contextvars::trace::tracing::{CaptureError, CapturedEvent};
///
/// let error = CaptureError::NoCorrelationId { line: "priced order=7".into() };
/// assert_eq!(error.to_string(), r#"event emitted inside a request has no correlation id: "priced order=7""#);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureError {
    /// An event emitted inside a request carried no correlation ID (its line would say
    /// `no-trace`): the request's context was lost on the way (a thread pool job or a task
    /// spawned without the crate's helpers).
    NoCorrelationId {
        /// The event as a line: its message, then each field as `key=value`.
        line: String,
    },
    /// One request's events carried two different correlation IDs: another request's
    /// context leaked in.
    MixedIds {
        /// The event with the second ID, as a line: its message, then each field as
        /// `key=value`.
        line: String,
        /// The ID the request's first event carried.
        first: String,
        /// The other ID.
        second: String,
    },
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoCorrelationId { line } => {
                write!(f, "event emitted inside a request has no correlation id: {line:?}")
            }
            Self::MixedIds { line, first, second } => {
                write!(f, "request logged with correlation id {first} and then {second}: {line:?}")
            }
        }
    }
}

impl std::error::Error for CaptureError {}
