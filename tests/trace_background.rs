//! `background` and `sync_background`: a job runs in a fresh context with a new root trace,
//! none of the request's variables, and logs the link to the request's trace exactly once,
//! inside the job (so the line carries the job's own correlation ID).

#![cfg(feature = "test-util")]

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use contextvars::ContextVar;
use contextvars::trace::log::{CapturedRecord, LogCapture};
use contextvars::trace::{CurrentCorrelationId, IdSource, TraceContext, background, sync_background};

static USER: ContextVar<String> = ContextVar::new("user");

/// The records of target `contextvars::trace` logged with the correlation ID `job_id` (the
/// tests share the process's logger).
fn link_records(job_id: &str) -> Vec<CapturedRecord> {
    LogCapture::init()
        .records()
        .into_iter()
        .filter(|r| r.target == "contextvars::trace" && r.correlation_id.as_deref() == Some(job_id))
        .collect()
}

/// A future that is pending `n` times (waking itself) before it reads the current trace.
struct PendingTimes(u32);

impl Future for PendingTimes {
    type Output = (Option<TraceContext>, Option<String>, String);

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        if self.0 > 0 {
            self.0 -= 1;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Poll::Ready((TraceContext::current(), USER.get(), CurrentCorrelationId.to_string()))
    }
}

#[test]
fn a_future_job_gets_a_trace_of_its_own_and_none_of_the_request_s_variables() {
    LogCapture::init();
    let request = TraceContext::extract(&[
        ("x-trace-id", "bg-request-1"),
        ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    ]);
    let job = request.clone().sync_scope(|| USER.sync_scope("alice".into(), || background(PendingTimes(3))));
    let (trace, user, logged_id) = futures::executor::block_on(job);
    let trace = trace.expect("the job has a trace");

    assert_eq!(user, None, "none of the request's variables");
    assert_eq!(trace.source(), IdSource::Generated);
    assert_ne!(trace.trace_id(), request.trace_id());
    assert_ne!(trace.correlation_id(), request.correlation_id());
    assert!(trace.incoming_traceparent().is_none(), "a root trace, not a child of the request's");
    assert_eq!(logged_id, trace.correlation_id().as_str());

    // One line, though the job was polled four times, carrying the job's ID and the link.
    let records = link_records(trace.correlation_id().as_str());
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].level, log::Level::Info);
    assert_eq!(
        records[0].message,
        "background job started, linked to trace-id 4bf92f3577b34da6a3ce929d0e0e4736 (correlation id bg-request-1)"
    );
    // The caller's context is as it was.
    assert_eq!(TraceContext::current(), None);
}

#[test]
fn a_closure_job_gets_a_trace_of_its_own_and_logs_the_link_once() {
    LogCapture::init();
    let request = TraceContext::extract(&[("x-trace-id", "bg-request-2")]);
    let (trace, user) = request.clone().sync_scope(|| {
        USER.sync_scope("bob".into(), || {
            let seen = sync_background(|| {
                USER.set("set inside the job".into());
                (TraceContext::current(), USER.get())
            });
            // What the job set stayed in the job.
            assert_eq!(USER.get().as_deref(), Some("bob"));
            assert_eq!(TraceContext::current().as_ref(), Some(&request));
            seen
        })
    });
    let trace = trace.expect("the job has a trace");
    assert_eq!(user.as_deref(), Some("set inside the job"));
    assert_ne!(trace.trace_id(), request.trace_id());

    let records = link_records(trace.correlation_id().as_str());
    assert_eq!(records.len(), 1, "{records:?}");
    let expected = format!(
        "background job started, linked to trace-id {} (correlation id bg-request-2)",
        request.trace_id()
    );
    assert_eq!(records[0].message, expected);
}

#[test]
fn a_job_started_outside_any_request_says_so() {
    LogCapture::init();
    let trace = sync_background(TraceContext::current).expect("the job has a trace");
    let records = link_records(trace.correlation_id().as_str());
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].message, "background job started outside any request");
}

#[test]
fn each_job_gets_its_own_trace() {
    let request = TraceContext::new_root();
    let ids: std::collections::HashSet<String> = request.sync_scope(|| {
        (0..50)
            .map(|_| {
                let job = background(async { TraceContext::current().unwrap().correlation_id().to_string() });
                futures::executor::block_on(job)
            })
            .collect()
    });
    assert_eq!(ids.len(), 50);
}
