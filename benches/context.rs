//! The costs a user pays per call, side by side with the alternatives they would use instead:
//! a plain `thread_local!`, tokio's `task_local!` and opentelemetry's `Context`.
//!
//! Results and their reading live in BENCHMARKS.md; `scripts/bench.sh` regenerates them.

use std::cell::Cell;
use std::future::Future;
use std::hint::black_box;
use std::pin::{Pin, pin};
use std::task::{Context as TaskContext, Poll, Waker};

use contextvars::{Context, ContextVar, FutureExt as _};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

/// The variable every benchmark reads: a `u64` in a context that holds `FILLER_VARS` others.
static VALUE: ContextVar<u64> = ContextVar::new("value");

/// Enough variables to fill a context of 10,000 (they are never read).
static FILLER: [ContextVar<u64>; 10_000] = [const { ContextVar::new("filler") }; 10_000];

thread_local! {
    static PLAIN: Cell<u64> = const { Cell::new(0) };
}

tokio::task_local! {
    static TASK_VALUE: u64;
}

#[derive(Clone, Copy)]
struct OtelValue(u64);

/// Makes the current context hold `VALUE` plus `n - 1` other variables.
fn fill_current(n: usize) -> Context {
    let mut ctx = Context::new();
    ctx.run(|| {
        for var in &FILLER[..n.saturating_sub(1)] {
            var.set(0);
        }
        VALUE.set(1);
    });
    ctx
}

fn get(c: &mut Criterion) {
    let mut group = c.benchmark_group("get");
    group.bench_function("contextvars/4", |b| {
        fill_current(4).run(|| b.iter(|| black_box(VALUE.get().unwrap_or(0))));
    });
    group.bench_function("contextvars/10000", |b| {
        fill_current(10_000).run(|| b.iter(|| black_box(VALUE.get().unwrap_or(0))));
    });
    group.bench_function("contextvars/unset-var", |b| {
        static NEVER_SET: ContextVar<u64> = ContextVar::new("never");
        fill_current(4).run(|| b.iter(|| black_box(NEVER_SET.get().unwrap_or(0))));
    });
    group.bench_function("thread_local", |b| {
        PLAIN.set(1);
        b.iter(|| black_box(PLAIN.get()));
    });
    group.bench_function("tokio_task_local", |b| {
        TASK_VALUE.sync_scope(1, || b.iter(|| black_box(TASK_VALUE.with(|v| *v))));
    });
    group.bench_function("opentelemetry/current().get()", |b| {
        let _guard = opentelemetry::Context::current_with_value(OtelValue(1)).attach();
        b.iter(|| black_box(opentelemetry::Context::current().get::<OtelValue>().map_or(0, |v| v.0)));
    });
    group.bench_function("opentelemetry/map_current", |b| {
        let _guard = opentelemetry::Context::current_with_value(OtelValue(1)).attach();
        b.iter(|| {
            black_box(opentelemetry::Context::map_current(|cx| cx.get::<OtelValue>().map_or(0, |v| v.0)))
        });
    });
    group.finish();
}

fn copy(c: &mut Criterion) {
    let mut group = c.benchmark_group("copy_context");
    for n in [1, 4, 64, 1_000, 10_000] {
        group.bench_with_input(BenchmarkId::new("contextvars", n), &n, |b, &n| {
            fill_current(n).run(|| b.iter(|| black_box(contextvars::copy_context())));
        });
    }
    group.bench_function("opentelemetry/current", |b| {
        let _guard = opentelemetry::Context::current_with_value(OtelValue(1)).attach();
        b.iter(|| black_box(opentelemetry::Context::current()));
    });
    group.finish();
}

fn set_reset(c: &mut Criterion) {
    let mut group = c.benchmark_group("set_reset");
    for n in [4, 10_000] {
        // The steady state: the variable already holds a value this context owns.
        group.bench_with_input(BenchmarkId::new("contextvars", n), &n, |b, &n| {
            fill_current(n).run(|| {
                VALUE.set(1);
                b.iter(|| {
                    let token = VALUE.set(black_box(2));
                    VALUE.reset(token)
                });
            });
        });
    }
    group.bench_function("contextvars/4-unset", |b| {
        // The variable was not set: set inserts it (one allocation), reset removes it.
        static UNSET: ContextVar<u64> = ContextVar::new("unset");
        fill_current(4).run(|| {
            b.iter(|| {
                let token = UNSET.set(black_box(2));
                UNSET.reset(token)
            });
        });
    });
    group.bench_function("contextvars/4-inherited", |b| {
        // The value came with a snapshot (shared): set boxes the new value, reset puts the
        // shared one back.
        fill_current(4).run(|| {
            b.iter(|| {
                let token = VALUE.set(black_box(2));
                VALUE.reset(token)
            });
        });
    });
    group.bench_function("contextvars/4-after-snapshot", |b| {
        // Every set follows a snapshot, so it copies the path instead of writing in place.
        fill_current(4).run(|| {
            b.iter(|| {
                let snapshot = contextvars::copy_context();
                let token = VALUE.set(black_box(2));
                let result = VALUE.reset(token);
                drop(snapshot);
                result
            });
        });
    });
    group.bench_function("contextvars/scope", |b| {
        fill_current(4).run(|| {
            VALUE.set(1);
            b.iter(|| VALUE.scope(black_box(2), || black_box(3)));
        });
    });
    group.bench_function("thread_local/replace", |b| {
        b.iter(|| {
            let old = PLAIN.replace(black_box(2));
            PLAIN.set(old);
        });
    });
    group.bench_function("tokio_task_local/sync_scope", |b| {
        b.iter(|| TASK_VALUE.sync_scope(black_box(2), || black_box(3)));
    });
    group.bench_function("opentelemetry/attach+drop", |b| {
        let _guard = opentelemetry::Context::current_with_value(OtelValue(1)).attach();
        b.iter(|| drop(opentelemetry::Context::current_with_value(OtelValue(black_box(2))).attach()));
    });
    group.finish();
}

/// A future that never completes, so it can be polled over and over (tokio's wrapper panics
/// when polled after completion): what is left is the wrapper's own cost.
struct Counter(u64);

impl Future for Counter {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<()> {
        self.0 = black_box(self.0 + 1);
        Poll::Pending
    }
}

fn poll_loop<F: Future>(b: &mut criterion::Bencher<'_>, fut: F) {
    let mut fut = pin!(fut);
    let mut cx = TaskContext::from_waker(Waker::noop());
    b.iter(|| black_box(fut.as_mut().poll(&mut cx)));
}

fn poll(c: &mut Criterion) {
    let mut group = c.benchmark_group("poll");
    group.bench_function("bare", |b| poll_loop(b, Counter(0)));
    group.bench_function("contextvars/WithContext/4", |b| {
        poll_loop(b, Counter(0).with_context(fill_current(4)));
    });
    group.bench_function("contextvars/WithContext/10000", |b| {
        poll_loop(b, Counter(0).with_context(fill_current(10_000)));
    });
    group.bench_function("tokio_task_local/TaskLocalFuture", |b| {
        poll_loop(b, TASK_VALUE.scope(1, Counter(0)));
    });
    group.bench_function("opentelemetry/WithContext", |b| {
        let cx = opentelemetry::Context::new().with_value(OtelValue(1));
        poll_loop(b, opentelemetry::context::FutureExt::with_context(Counter(0), cx));
    });
    group.finish();
}

criterion_group!(benches, get, copy, set_reset, poll);
criterion_main!(benches);
