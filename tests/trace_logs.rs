//! The correlation ID in log output: `env_logger` through the `log` facade, `tracing-subscriber`'s
//! fmt output, and the capture that users' tests run to catch lost or mixed IDs.

#![cfg(all(feature = "test-util", feature = "tracing"))]

use std::io::Write;
use std::sync::{Arc, Mutex};

use contextvars::trace::log::{CaptureError, CapturedRecord, CorrelationIdLogger, LogCapture};
use contextvars::trace::tracing::CorrelationIdFormat;
use contextvars::trace::{CurrentCorrelationId, NO_TRACE, TraceContext};
use contextvars::{Context, FutureExt};
use log::Log;

/// A writer whose output the test reads back.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Buffer {
    fn lines(&self) -> Vec<String> {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap().lines().map(str::to_owned).collect()
    }
}

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn emit(logger: &dyn Log, message: &str) {
    logger.log(
        &log::Record::builder().level(log::Level::Info).target("app").args(format_args!("{message}")).build(),
    );
}

#[test]
fn env_logger_format_reads_the_id_at_each_record() {
    let buffer = Buffer::default();
    // Built once, before any request: the ID is read when each record is formatted.
    let logger = env_logger::Builder::new()
        .format(|buf, record| writeln!(buf, "correlation_id={} {}", CurrentCorrelationId, record.args()))
        .target(env_logger::Target::Pipe(Box::new(buffer.clone())))
        .filter_level(log::LevelFilter::Info)
        .build();
    let (first, second) = (TraceContext::new_root(), TraceContext::new_root());

    emit(&logger, "starting");
    first.clone().sync_scope(|| emit(&logger, "handling"));
    second.clone().sync_scope(|| emit(&logger, "handling"));
    emit(&logger, "idle");

    assert_eq!(
        buffer.lines(),
        [
            format!("correlation_id={NO_TRACE} starting"),
            format!("correlation_id={} handling", first.correlation_id()),
            format!("correlation_id={} handling", second.correlation_id()),
            format!("correlation_id={NO_TRACE} idle"),
        ]
    );
}

#[test]
fn correlation_id_logger_prefixes_any_logger() {
    let buffer = Buffer::default();
    let inner = env_logger::Builder::new()
        .format(|buf, record| writeln!(buf, "{} {}", record.level(), record.args()))
        .target(env_logger::Target::Pipe(Box::new(buffer.clone())))
        .filter_level(log::LevelFilter::Info)
        .build();
    let logger = CorrelationIdLogger::new(inner);
    let keyed = CorrelationIdLogger::new(env_logger::Builder::new().build()).key("request");
    assert!(format!("{keyed:?}").contains("request"));

    let trace = TraceContext::extract(&[("x-trace-id", &b"abc-1"[..])]);
    trace.sync_scope(|| emit(&logger, "inside"));
    emit(&logger, "outside");
    assert_eq!(buffer.lines(), ["INFO correlation_id=abc-1 inside", "INFO correlation_id=no-trace outside"]);
}

#[test]
fn tracing_subscriber_fmt_shows_the_id() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .event_format(CorrelationIdFormat::new(
            tracing_subscriber::fmt::format().without_time().with_target(false),
        ))
        .with_writer(move || writer.clone())
        .finish();
    let trace = TraceContext::extract(&[("x-trace-id", &b"abc-2"[..])]);
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!("outside");
        trace.clone().sync_scope(|| tracing::info!(items = 3, "inside"));
        // In a future polled in the request's context.
        let task =
            async { tracing::info!("in a task") }.in_context(trace.clone().set_in(&Context::current()));
        futures::executor::block_on(task);
    });
    let lines = buffer.lines();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[0].starts_with("correlation_id=no-trace ") && lines[0].ends_with("outside"), "{lines:?}");
    assert!(
        lines[1].starts_with("correlation_id=abc-2 ") && lines[1].ends_with("inside items=3"),
        "{lines:?}"
    );
    assert!(lines[2].starts_with("correlation_id=abc-2 ") && lines[2].ends_with("in a task"), "{lines:?}");

    let keyed = CorrelationIdFormat::new(tracing_subscriber::fmt::format()).key("req");
    assert!(format!("{keyed:?}").contains("req"));
}

/// Attributes a record to the request named in its message: `req=<name> ...`.
fn request_of(record: &CapturedRecord) -> Option<String> {
    record.message.strip_prefix("req=")?.split(' ').next().map(str::to_owned)
}

#[test]
fn capture_passes_when_every_request_keeps_its_id() {
    let capture = LogCapture::new();
    for n in 0..3 {
        TraceContext::new_root().sync_scope(|| {
            emit(&capture, &format!("req={n} start"));
            // A thread that carries the context along.
            std::thread::scope(|s| {
                s.spawn(Context::current().wrap(|| emit(&capture, &format!("req={n} worker"))));
            });
            emit(&capture, &format!("req={n} done"));
        });
    }
    emit(&capture, "background tick");
    let records = capture.take();
    assert_eq!(records.len(), 10);
    assert_eq!(records[9].correlation_id, None);
    assert_eq!(LogCapture::check(&records, request_of), Ok(9));
    assert!(capture.take().is_empty());
}

#[test]
fn capture_catches_a_record_that_lost_its_request() {
    let capture = LogCapture::new();
    let records = TraceContext::new_root().sync_scope(|| {
        emit(&capture, "req=a start");
        // A plain thread does not inherit the context: the record carries the sentinel.
        std::thread::scope(|s| {
            s.spawn(|| emit(&capture, "req=a offloaded work"));
        });
        emit(&capture, "req=a done");
        capture.take()
    });
    assert_eq!(records[1].correlation_id, None);
    assert_eq!(
        LogCapture::check(&records, request_of),
        Err(CaptureError::NoCorrelationId { message: "req=a offloaded work".into() })
    );
}

#[test]
fn capture_catches_a_request_logging_two_ids() {
    let capture = LogCapture::new();
    let (first, second) = (TraceContext::new_root(), TraceContext::new_root());
    first.clone().sync_scope(|| emit(&capture, "req=b start"));
    // Another request's context leaks into this one's second record.
    second.clone().sync_scope(|| emit(&capture, "req=b done"));
    let error = LogCapture::check(&capture.take(), request_of).unwrap_err();
    assert_eq!(
        error,
        CaptureError::MixedIds {
            message: "req=b done".into(),
            first: first.correlation_id().to_string(),
            second: second.correlation_id().to_string(),
        }
    );
    assert!(error.to_string().starts_with("request logged with correlation id "));
}

#[test]
fn installed_capture_sees_the_log_macros() {
    let capture = LogCapture::init();
    assert!(std::ptr::eq(capture, LogCapture::init()), "installing twice returns the same capture");
    assert!(std::ptr::eq(capture, LogCapture::try_init().unwrap()));
    let trace = TraceContext::extract(&[("x-trace-id", &b"macro-test"[..])]);
    trace.sync_scope(|| log::warn!("req=macro-test via the facade"));
    let mine: Vec<CapturedRecord> =
        capture.records().into_iter().filter(|r| r.message.starts_with("req=macro-test")).collect();
    assert_eq!(mine.len(), 1);
    assert_eq!((mine[0].level, mine[0].correlation_id.as_deref()), (log::Level::Warn, Some("macro-test")));
}

/// A record's message and key-values.
type Seen = (String, Vec<(String, String)>);

/// A logger that keeps each record's message and key-values.
#[derive(Default)]
struct KeyValues(std::sync::Mutex<Vec<Seen>>);

impl Log for KeyValues {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        struct Collect(Vec<(String, String)>);
        impl<'kvs> log::kv::VisitSource<'kvs> for Collect {
            fn visit_pair(
                &mut self,
                key: log::kv::Key<'kvs>,
                value: log::kv::Value<'kvs>,
            ) -> Result<(), log::kv::Error> {
                self.0.push((key.to_string(), value.to_string()));
                Ok(())
            }
        }
        let mut pairs = Collect(Vec::new());
        record.key_values().visit(&mut pairs).unwrap();
        self.0.lock().unwrap().push((record.args().to_string(), pairs.0));
    }

    fn flush(&self) {}
}

static TENANT: contextvars::ContextVar<String> = contextvars::ContextVar::new("tenant");

#[test]
fn correlation_id_logger_keeps_key_values_and_shows_any_variable() {
    let logger = CorrelationIdLogger::new(KeyValues::default()).var("tenant", &TENANT);
    let trace = TraceContext::extract(&[("x-trace-id", "kv-1")]);
    trace.sync_scope(|| {
        TENANT.sync_scope("acme".to_string(), || {
            logger.log(&log::Record::builder().args(format_args!("paid")).key_values(&[("user", 5)]).build());
        });
    });
    logger.log(&log::Record::builder().args(format_args!("idle")).build());
    let seen = logger.get_ref().0.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            ("correlation_id=kv-1 tenant=acme paid".to_string(), vec![("user".to_string(), "5".to_string())]),
            ("correlation_id=no-trace tenant=- idle".to_string(), vec![]),
        ]
    );
}

#[test]
fn json_lines_stay_valid_json_with_the_id_as_a_field() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let format = tracing_subscriber::fmt::format().json().without_time();
    let subscriber = tracing_subscriber::fmt()
        .event_format(CorrelationIdFormat::new(format).var("tenant", &TENANT))
        .with_writer(move || writer.clone())
        .finish();
    let trace = TraceContext::extract(&[("x-trace-id", "json\"1\\")]);
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!("outside");
        trace.sync_scope(|| TENANT.sync_scope("acme".into(), || tracing::info!(user = 5, "inside")));
    });
    let lines = buffer.lines();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let parsed: Vec<serde_json::Value> = lines
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    assert_eq!(parsed[0]["correlation_id"], "no-trace");
    assert_eq!(parsed[0]["tenant"], "-");
    assert_eq!(parsed[0]["fields"]["message"], "outside");
    assert_eq!(parsed[1]["correlation_id"], "json\"1\\");
    assert_eq!(parsed[1]["tenant"], "acme");
    assert_eq!(parsed[1]["fields"]["user"], 5);
    assert_eq!(parsed[1]["level"], "INFO");
}

#[test]
fn ids_honour_width_and_alignment() {
    use contextvars::trace::{CurrentCorrelationId, CurrentValue};
    let trace = TraceContext::extract(&[("x-trace-id", "w-1")]);
    assert_eq!(format!("[{CurrentCorrelationId:>10}]"), "[  no-trace]");
    assert_eq!(format!("[{:<6}]", trace.correlation_id()), "[w-1   ]");
    trace.sync_scope(|| assert_eq!(format!("[{CurrentCorrelationId:^7}]"), "[  w-1  ]"));
    let tenant = CurrentValue::new(&TENANT);
    TENANT.sync_scope("acme".into(), || assert_eq!(format!("[{tenant:>6}]"), "[  acme]"));
    assert_eq!(format!("[{tenant:>3}]"), "[  -]");
}
