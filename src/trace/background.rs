//! [`background`] and [`sync_background`]: work that outlives the request that started it,
//! in a trace of its own.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use pin_project_lite::pin_project;

use super::{CorrelationId, TraceContext, TraceId};
use crate::{Context, FutureExt, WithContext};

/// Runs `job` as background work: in a fresh, empty context (none of the caller's context
/// variables), with a new root trace of its own ([`TraceContext::new_root`]), and logs once,
/// when the job is first polled, the link to the trace of the request that started it.
///
/// A request that hands work to a queue, a pool or `spawn` and answers before the work is
/// done should not lend it its trace: the work's log lines would then be counted as the
/// request's, and its values (a user, a tenant, a deadline) would follow it where they no
/// longer apply. The job gets an ID of its own instead, and one log line joins the two:
/// `background job started, linked to trace-id <the request's trace-id> (correlation id
/// <the request's ID>)`, emitted inside the job, so that it carries the job's own ID. The
/// line goes through the `log` facade, at level `INFO` with target `contextvars::trace`,
/// with the key-values `linked_trace_id` and `linked_correlation_id`, when the `log`
/// feature is on (a `tracing` subscriber sees it through `tracing-log`); without that
/// feature nothing is logged. Outside any request, the line says so instead.
///
/// The job runs in its own context as a [`WithContext`] does: what it sets stays in it.
/// [`sync_background`] does the same for a closure. To continue the request's trace instead
/// (work the request awaits), use [`TraceContext::scope`].
///
/// # Examples
///
/// ```
/// use contextvars::ContextVar;
/// use contextvars::trace::{TraceContext, background};
///
/// static USER: ContextVar<&str> = ContextVar::new("user");
///
/// # futures::executor::block_on(async {
/// let request = TraceContext::extract(&[("x-trace-id", "order-42")]);
/// let job = request.clone().scope(async {
///     USER.set("alice");
///     // e.g. `contextvars::tokio::spawn(background(...))`: started here, run later
///     background(async { (TraceContext::current().unwrap(), USER.get()) })
/// });
/// let (trace, user) = job.await.await;
/// assert_ne!(trace.correlation_id(), request.correlation_id()); // an ID of its own
/// assert_ne!(trace.trace_id(), request.trace_id()); // a new trace
/// assert_eq!(user, None); // none of the request's variables
/// # });
/// ```
pub fn background<F: Future>(job: F) -> Background<F> {
    let started = Started { job, link: Some(Link::current()) };
    Background { inner: started.in_context(fresh_context()) }
}

/// Runs the closure `f` as background work, as [`background`] runs a future: in a fresh,
/// empty context with a new root trace, after logging once the link to the trace of the
/// request that called it. For a job handed to a thread pool; the closure runs on the
/// calling thread, so call this from the pool's thread.
///
/// # Examples
///
/// ```
/// use contextvars::ContextVar;
/// use contextvars::trace::{TraceContext, sync_background};
///
/// static USER: ContextVar<&str> = ContextVar::new("user");
///
/// let request = TraceContext::new_root();
/// request.clone().sync_scope(|| {
///     USER.sync_scope("alice", || {
///         let (trace, user) = sync_background(|| (TraceContext::current().unwrap(), USER.get()));
///         assert_ne!(trace.trace_id(), request.trace_id());
///         assert_eq!(user, None);
///     });
/// });
/// ```
pub fn sync_background<R>(f: impl FnOnce() -> R) -> R {
    let link = Link::current();
    fresh_context().run(|| {
        link.log();
        f()
    })
}

/// An empty context holding a new root trace.
fn fresh_context() -> Context {
    TraceContext::new_root().set_in(&Context::new())
}

pin_project! {
    /// Future for [`background`].
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct Background<F> {
        #[pin]
        inner: WithContext<Started<F>>,
    }
}

impl<F: Future> Future for Background<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        self.project().inner.poll(cx)
    }
}

impl<F> std::fmt::Debug for Background<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Background").finish_non_exhaustive()
    }
}

pin_project! {
    /// The job, which logs its link when it is first polled (inside its own context).
    struct Started<F> {
        #[pin]
        job: F,
        link: Option<Link>,
    }
}

impl<F: Future> Future for Started<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        let this = self.project();
        if let Some(link) = this.link.take() {
            link.log();
        }
        this.job.poll(cx)
    }
}

/// The trace of the request that started a job, if any.
#[cfg_attr(not(feature = "log"), allow(dead_code, reason = "only logged, with the `log` feature"))]
struct Link(Option<(TraceId, CorrelationId)>);

impl Link {
    fn current() -> Self {
        Self(TraceContext::current().map(|trace| (trace.trace_id(), trace.correlation_id().clone())))
    }

    #[cfg_attr(not(feature = "log"), allow(clippy::unused_self, reason = "nothing to log without `log`"))]
    fn log(&self) {
        #[cfg(feature = "log")]
        match &self.0 {
            Some((trace_id, correlation_id)) => ::log::info!(
                target: "contextvars::trace",
                linked_trace_id:% = trace_id, linked_correlation_id:% = correlation_id;
                "background job started, linked to trace-id {trace_id} (correlation id {correlation_id})"
            ),
            None => ::log::info!(target: "contextvars::trace", "background job started outside any request"),
        }
    }
}
