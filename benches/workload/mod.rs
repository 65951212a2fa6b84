//! The workloads that `benches/ratios.rs` times and `benches/insns.rs` counts: one copy, so
//! that the timings and the instruction counts measure the same code.

use std::future::Future;
use std::hint::black_box;
use std::pin::{Pin, pin};
use std::task::{Context as TaskContext, Poll, Waker};

use contextvars::{Context, ContextVar};

pub(crate) static VALUE: ContextVar<u64> = ContextVar::new("value");
pub(crate) static FILLER: [ContextVar<u64>; 3] = [const { ContextVar::new("filler") }; 3];
pub(crate) static REQUEST_ID: ContextVar<u64> = ContextVar::new("request_id");
pub(crate) static USER_ID: ContextVar<u64> = ContextVar::new("user_id");
pub(crate) static DEADLINE: ContextVar<u64> = ContextVar::new("deadline");

tokio::task_local! {
    pub(crate) static TASK_VALUE: u64;
}

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

/// 3 sets, 10 rounds of (2 gets, one suspension), the resets: in its own context.
pub(crate) async fn contextvars_request() -> u64 {
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
