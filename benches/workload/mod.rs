//! The workloads that `benches/ratios.rs` and `benches/context.rs` time and `benches/insns.rs`
//! counts: one copy, so that the timings and the instruction counts measure the same code.

#![allow(dead_code, reason = "each bench that includes this module uses a part of it")]

use std::future::Future;
use std::hint::black_box;
use std::pin::{Pin, pin};
use std::task::{Context as TaskContext, Poll, Waker};

use contextvars::{Context, ContextVar, FutureExt as _};

pub(crate) static VALUE: ContextVar<u64> = ContextVar::new("value");
pub(crate) static FILLER: [ContextVar<u64>; 3] = [const { ContextVar::new("filler") }; 3];
pub(crate) static REQUEST_ID: ContextVar<u64> = ContextVar::new("request_id");
pub(crate) static USER_ID: ContextVar<u64> = ContextVar::new("user_id");
pub(crate) static DEADLINE: ContextVar<u64> = ContextVar::new("deadline");

tokio::task_local! {
    pub(crate) static TASK_VALUE: u64;
    pub(crate) static TASK_REQUEST_ID: u64;
    pub(crate) static TASK_USER_ID: u64;
    pub(crate) static TASK_DEADLINE: u64;
}

#[derive(Clone, Copy)]
struct OtelRequestId(u64);
#[derive(Clone, Copy)]
struct OtelUserId(u64);
#[derive(Clone, Copy)]
struct OtelDeadline(u64);

/// A context of 4 variables, `VALUE` among them: where the micro benchmarks run.
pub(crate) fn filled() -> Context {
    let mut ctx = Context::new();
    ctx.run(|| {
        for var in &FILLER {
            var.set(0);
        }
        VALUE.set(1);
    });
    ctx
}

/// Scope: set `VALUE`, read it in the closure, restore; behind a call never inlined.
#[inline(never)]
pub(crate) fn contextvars_scope(value: u64) -> u64 {
    VALUE.sync_scope(value, || VALUE.get().unwrap_or(0))
}

/// The same with tokio's task-local.
#[inline(never)]
pub(crate) fn tokio_scope(value: u64) -> u64 {
    TASK_VALUE.sync_scope(value, || TASK_VALUE.with(|v| *v))
}

/// How many times each future of the poll rows is polled: `Pending` `POLLS - 1` times, then
/// `Ready`. `scripts/bench_table.py` divides by the same number.
pub(crate) const POLLS: u32 = 100;

/// A trivial future: `Pending` until it has been polled `left + 1` times, then `Ready`. It
/// never wakes anyone; the benchmarks poll it by hand.
pub(crate) struct Countdown {
    left: u32,
}

impl Countdown {
    /// Polled [`POLLS`] times in all.
    pub(crate) fn new() -> Self {
        Self::pending(POLLS - 1)
    }

    /// `Pending` `times` times, then `Ready`.
    pub(crate) fn pending(times: u32) -> Self {
        Countdown { left: times }
    }
}

impl Future for Countdown {
    type Output = u32;

    fn poll(mut self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<u32> {
        // `black_box` keeps the compiler from folding the polling loop into one step.
        let left = black_box(self.left);
        if left == 0 {
            Poll::Ready(left)
        } else {
            self.left = left - 1;
            Poll::Pending
        }
    }
}

/// `Pending` once, then `Ready`: one suspension point of a request handler.
pub(crate) struct YieldOnce(pub(crate) bool);

impl Future for YieldOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            Poll::Pending
        }
    }
}

/// Suspension points of one request: with the final poll, 11 polls in all.
pub(crate) const REQUEST_YIELDS: u64 = 10;

/// What every request returns: the sum of its 20 reads (each round reads `REQUEST_ID` (1),
/// then `USER_ID` (2) or `DEADLINE` (3) in turn).
pub(crate) const REQUEST_SUM: u64 = REQUEST_YIELDS + (REQUEST_YIELDS / 2) * 2 + (REQUEST_YIELDS / 2) * 3;

/// 3 sets, 10 rounds of (2 gets, one suspension), the resets: in its own context.
async fn contextvars_request() -> u64 {
    let request = REQUEST_ID.set(black_box(1));
    let user = USER_ID.set(black_box(2));
    let deadline = DEADLINE.set(black_box(3));
    let mut sum = 0;
    for round in 0..REQUEST_YIELDS {
        sum += REQUEST_ID.get().unwrap_or(0);
        let other = if round % 2 == 0 { &USER_ID } else { &DEADLINE };
        sum += other.get().unwrap_or(0);
        YieldOnce(false).await;
    }
    let reset = DEADLINE.reset(deadline).and(USER_ID.reset(user)).and(REQUEST_ID.reset(request));
    assert!(reset.is_ok());
    sum
}

/// The same reads with tokio: the values were put in place by three nested `scope`s.
async fn tokio_request() -> u64 {
    let mut sum = 0;
    for round in 0..REQUEST_YIELDS {
        sum += TASK_REQUEST_ID.with(|v| *v);
        sum += if round % 2 == 0 { TASK_USER_ID.with(|v| *v) } else { TASK_DEADLINE.with(|v| *v) };
        YieldOnce(false).await;
    }
    sum
}

/// The same reads with opentelemetry: the values are in the context the future runs in.
async fn otel_request() -> u64 {
    let mut sum = 0;
    for round in 0..REQUEST_YIELDS {
        sum += opentelemetry::Context::map_current(|cx| cx.get::<OtelRequestId>().map_or(0, |v| v.0));
        sum += opentelemetry::Context::map_current(|cx| {
            if round % 2 == 0 {
                cx.get::<OtelUserId>().map_or(0, |v| v.0)
            } else {
                cx.get::<OtelDeadline>().map_or(0, |v| v.0)
            }
        });
        YieldOnce(false).await;
    }
    sum
}

/// The request as spawned with `contextvars`: in a snapshot of the spawner's context, where
/// its 3 sets go (the first copies the snapshot's path).
pub(crate) fn contextvars_spawned() -> impl Future<Output = u64> {
    contextvars_request().in_context(contextvars::copy_context())
}

/// The request as spawned with tokio: three nested `scope`s give the values (standing for the
/// sets; leaving them at the end stands for the resets). Task-locals are not inherited, so
/// there is no snapshot.
pub(crate) fn tokio_spawned() -> impl Future<Output = u64> {
    TASK_REQUEST_ID.scope(
        black_box(1),
        TASK_USER_ID.scope(black_box(2), TASK_DEADLINE.scope(black_box(3), tokio_request())),
    )
}

/// The request as spawned with opentelemetry: the spawner's context (the snapshot), three
/// `with_value`s (the sets, each deriving a new context), and `with_context`.
pub(crate) fn otel_spawned() -> impl Future<Output = u64> {
    let cx = opentelemetry::Context::current()
        .with_value(OtelRequestId(black_box(1)))
        .with_value(OtelUserId(black_box(2)))
        .with_value(OtelDeadline(black_box(3)));
    opentelemetry::context::FutureExt::with_context(otel_request(), cx)
}

/// Polls a request to its end on the stack, type-erased as an executor polls a task;
/// building and dropping it are part of the work.
pub(crate) fn run_request<F: Future<Output = u64>>(fut: F) -> u64 {
    let mut fut = pin!(fut);
    let mut fut: Pin<&mut dyn Future<Output = u64>> = fut.as_mut();
    let mut cx = TaskContext::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(sum) = fut.as_mut().poll(&mut cx) {
            return sum;
        }
    }
}
