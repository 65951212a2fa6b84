//! Helpers shared by the integration tests.
#![allow(dead_code, reason = "each test file uses its own subset")]

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, Waker};

use contextvars::Context;

/// Runs `f` in a fresh, empty context (Python's `@isolated_context` in its own tests), so a test does not
/// depend on what earlier tests left in the thread that runs it.
pub(crate) fn isolated<R>(f: impl FnOnce() -> R) -> R {
    Context::new().run(f)
}

/// Polls `fut` once with a waker that does nothing, as a hand-written executor would.
pub(crate) fn poll_once<F: Future>(fut: Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut TaskContext::from_waker(Waker::noop()))
}

/// Yields once to the executor: `Pending` the first time, after waking itself, so the
/// executor polls other tasks before this one again.
pub(crate) fn yield_now() -> impl Future<Output = ()> {
    let mut yielded = false;
    std::future::poll_fn(move |cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
}

/// Fewer, shorter proptest programs under Miri, which runs them several hundred times
/// slower. Elsewhere the number of cases is proptest's (256, or `PROPTEST_CASES`).
pub(crate) fn proptest_config(miri_cases: u32) -> proptest::prelude::ProptestConfig {
    if cfg!(miri) {
        proptest::prelude::ProptestConfig {
            cases: miri_cases,
            failure_persistence: None,
            ..proptest::prelude::ProptestConfig::default()
        }
    } else {
        proptest::prelude::ProptestConfig::default()
    }
}

/// The longest program, in bytes, that the model tests decode.
pub(crate) const MAX_PROGRAM_BYTES: usize = if cfg!(miri) { 256 } else { 4096 };
