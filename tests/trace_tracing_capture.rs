//! `TracingCapture`, the `tracing` twin of `LogCapture`: what it keeps of each event, and the
//! check users run in CI over real requests (a multi-thread tokio runtime, tasks, blocking
//! jobs, rayon), which passes when every line keeps its request's ID and names the line that
//! lost it otherwise.

#![cfg(all(feature = "test-util", feature = "tracing", feature = "tokio", feature = "rayon"))]

use std::fmt;

use contextvars::trace::TraceContext;
use contextvars::trace::tracing::{CaptureError, CapturedEvent, TracingCapture};
use tracing::Level;
use tracing_subscriber::layer::SubscriberExt;

/// Runs `f` with a subscriber whose only layer is a clone of `capture`, on this thread.
fn with_capture<R>(capture: &TracingCapture, f: impl FnOnce() -> R) -> R {
    tracing::subscriber::with_default(tracing_subscriber::registry().with(capture.clone()), f)
}

struct Shown;

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("as displayed")
    }
}

#[test]
fn keeps_level_target_message_fields_and_the_current_id() {
    let capture = TracingCapture::new();
    with_capture(&capture, || {
        tracing::warn!(target: "billing", order = 7, customer = "acme", tags = ?["a", "b"], note = %Shown, "paid {}", 12);
        TraceContext::extract(&[("x-trace-id", "cap-1")]).sync_scope(|| tracing::debug!(ok = true, "inside"));
        tracing::trace!(alone = 1);
    });
    let expected = [
        CapturedEvent::new(Level::WARN, "billing", "paid 12", None)
            .with_field("order", "7")
            .with_field("customer", "acme")
            .with_field("tags", r#"["a", "b"]"#)
            .with_field("note", "as displayed"),
        CapturedEvent::new(Level::DEBUG, module_path!(), "inside", Some("cap-1")).with_field("ok", "true"),
        CapturedEvent::new(Level::TRACE, module_path!(), "", None).with_field("alone", "1"),
    ];
    assert_eq!(capture.events(), expected);
    assert_eq!(capture.take(), expected, "events() copies, take() takes");
    assert!(capture.events().is_empty());
}

#[test]
fn clones_share_their_events() {
    let capture = TracingCapture::new();
    let other = capture.clone();
    with_capture(&other, || tracing::info!("once"));
    assert_eq!(capture.take().len(), 1);
    assert!(other.events().is_empty());
}

/// Attributes an event to the request in its `request` field.
fn request_of(event: &CapturedEvent) -> Option<String> {
    event.field("request").map(str::to_owned)
}

#[test]
fn check_names_the_line_that_lost_its_request() {
    let capture = TracingCapture::new();
    let trace = TraceContext::extract(&[("x-trace-id", "lost-1")]);
    with_capture(&capture, || {
        trace.sync_scope(|| {
            tracing::info!(request = "a", "start");
            // A plain thread, given the subscriber but not the context.
            let dispatch = tracing::dispatcher::get_default(Clone::clone);
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    tracing::info!(request = "a", step = 2, "offloaded");
                });
            })
            .join()
            .unwrap();
            tracing::info!(request = "a", "done");
        });
    });
    let events = capture.take();
    assert_eq!(events.len(), 3);
    assert_eq!(
        TracingCapture::check(&events, request_of),
        Err(CaptureError::NoCorrelationId { line: "offloaded request=a step=2".into() })
    );
}

#[test]
fn check_catches_a_request_logging_two_ids() {
    let capture = TracingCapture::new();
    let (first, second) = (TraceContext::new_root(), TraceContext::new_root());
    with_capture(&capture, || {
        first.clone().sync_scope(|| tracing::info!(request = "b", "start"));
        // Another request's context leaks into this one's second event.
        second.clone().sync_scope(|| tracing::info!(request = "b", "done"));
    });
    let error = TracingCapture::check(&capture.take(), request_of).unwrap_err();
    assert_eq!(
        error,
        CaptureError::MixedIds {
            line: "done request=b".into(),
            first: first.correlation_id().to_string(),
            second: second.correlation_id().to_string(),
        }
    );
    assert_eq!(
        error.to_string(),
        format!(
            r#"request logged with correlation id {} and then {}: "done request=b""#,
            first.correlation_id(),
            second.correlation_id()
        )
    );
}

/// A request as production runs it: a blocking job that hands work to rayon, a task.
async fn handle(test: &'static str, request: u32, plain: bool) {
    let tag = format!("{test}-{request}");
    tracing::info!(request = tag.as_str(), "received");
    let (priced, stocked, notified) = (tag.clone(), tag.clone(), tag.clone());
    let job = move || {
        contextvars::rayon::join(
            || tracing::info!(request = priced.as_str(), "priced"),
            || tracing::info!(request = stocked.as_str(), "stocked"),
        );
    };
    let task = async move { tracing::info!(request = notified.as_str(), "notified") };
    if plain {
        // What the clippy recipe flags: both start in an empty context.
        tokio::task::spawn_blocking(job).await.unwrap();
        tokio::spawn(task).await.unwrap();
    } else {
        contextvars::tokio::spawn_blocking(job).await.unwrap();
        contextvars::tokio::spawn(task).await.unwrap();
    }
    tracing::info!(request = tag.as_str(), "answered");
}

/// Runs eight concurrent requests of `test` on a multi-thread runtime and returns the events
/// attributed to them.
fn run_requests(capture: &TracingCapture, test: &'static str, plain: bool) -> Vec<CapturedEvent> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(4).build().unwrap();
    runtime.block_on(async {
        let requests: Vec<_> = (0..8)
            .map(|request| {
                contextvars::tokio::spawn(TraceContext::new_root().scope(handle(test, request, plain)))
            })
            .collect();
        for request in requests {
            request.await.unwrap();
        }
    });
    // The global capture is shared with the other tests of this binary: keep this test's.
    let prefix = format!("{test}-");
    capture
        .events()
        .into_iter()
        .filter(|e| e.field("request").is_some_and(|r| r.starts_with(&prefix)))
        .collect()
}

#[test]
fn requests_on_every_executor_keep_their_ids() {
    let capture = TracingCapture::init();
    let events = run_requests(capture, "kept", false);
    assert_eq!(events.len(), 8 * 5);
    assert_eq!(TracingCapture::check(&events, request_of), Ok(8 * 5));
    assert!(events.iter().all(|e| e.correlation_id.is_some()), "no line says no-trace");
}

#[test]
fn the_check_fails_on_plain_tokio_spawns() {
    let capture = TracingCapture::init();
    let events = run_requests(capture, "plain", true);
    assert_eq!(events.len(), 8 * 5, "every event reaches the global capture, whatever its thread");
    // The blocking job's two lines and the task's line of each request say no-trace.
    let lost: Vec<_> =
        events.iter().filter(|e| e.correlation_id.is_none()).map(|e| e.message.as_str()).collect();
    assert_eq!(lost.len(), 8 * 3, "{lost:?}");
    assert!(lost.iter().all(|m| ["priced", "stocked", "notified"].contains(m)), "{lost:?}");
    assert!(matches!(TracingCapture::check(&events, request_of), Err(CaptureError::NoCorrelationId { .. })));
}

#[test]
fn init_returns_one_capture() {
    let capture = TracingCapture::init();
    assert!(std::ptr::eq(capture, TracingCapture::init()));
    assert!(std::ptr::eq(capture, TracingCapture::try_init().unwrap()));
    // From another thread, which has no subscriber of its own: the global one.
    std::thread::spawn(|| tracing::error!(request = "global-1", "from a thread")).join().unwrap();
    let mine: Vec<_> =
        capture.events().into_iter().filter(|e| e.field("request") == Some("global-1")).collect();
    assert_eq!(mine.len(), 1);
    assert_eq!((mine[0].level, mine[0].correlation_id.as_deref()), (Level::ERROR, None));
}
