//! The costs a user pays per call, side by side with the alternatives they would use instead:
//! a plain `thread_local!`, tokio's `task_local!` and opentelemetry's `Context`.
//!
//! Every group puts our rows and the peers' rows in the same criterion group, so the ratios
//! that `scripts/bench_table.py` prints come from one run. Only the public API is used.
//!
//! | group | what one iteration does |
//! |---|---|
//! | `get` | read a `u64` (context of 4 or 10,000 vars; tokio inside `sync_scope`; otel `current().get()`) |
//! | `scope` | set, run a closure that reads, restore, behind a call that is never inlined |
//! | `set_reset` | `set` + `reset` (also right after a `copy_context`); otel `attach` + drop |
//! | `poll` | poll a boxed future, built beforehand, to completion: [`POLLS`] polls, the last `Ready` |
//! | `copy_context` | take a snapshot and drop it, at 1 to 10,000 vars; otel `Context::current()` |
//! | `request` | snapshot at spawn, 3 sets, 20 gets, 11 polls, the resets (see [`request`]) |
//!
//! Results and their reading live in BENCHMARKS.md; `scripts/bench.sh` regenerates them.

use std::cell::Cell;
use std::future::Future;
use std::hint::black_box;
use std::pin::{Pin, pin};
use std::task::{Context as TaskContext, Poll, Waker};

use contextvars::{Context, ContextVar, FutureExt as _};
use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};

mod workload;

use workload::{
    Countdown, POLLS, REQUEST_SUM, TASK_DEADLINE, TASK_REQUEST_ID, TASK_USER_ID, TASK_VALUE, VALUE,
    contextvars_scope, contextvars_spawned, otel_spawned, tokio_scope, tokio_spawned,
};

/// Enough variables to fill a context of 10,000 (they are never read).
static FILLER: [ContextVar<u64>; 10_000] = [const { ContextVar::new("filler") }; 10_000];

thread_local! {
    static PLAIN: Cell<u64> = const { Cell::new(0) };
}

#[derive(Clone, Copy)]
struct OtelValue(u64);

/// Makes a context holding `VALUE` plus `n - 1` other variables.
fn filled(n: usize) -> Context {
    let mut ctx = Context::new();
    ctx.run(|| {
        for var in &FILLER[..n.saturating_sub(1)] {
            var.set(0);
        }
        VALUE.set(1);
    });
    ctx
}

fn otel_current(value: u64) -> opentelemetry::ContextGuard {
    opentelemetry::Context::current_with_value(OtelValue(value)).attach()
}

fn get(c: &mut Criterion) {
    let mut group = c.benchmark_group("get");
    for n in [4, 10_000] {
        group.bench_with_input(BenchmarkId::new("contextvars", n), &n, |b, &n| {
            filled(n).run(|| b.iter(|| black_box(VALUE.get().unwrap_or(0))));
        });
    }
    group.bench_function("contextvars/unset-var", |b| {
        static NEVER_SET: ContextVar<u64> = ContextVar::new("never");
        filled(4).run(|| b.iter(|| black_box(NEVER_SET.get().unwrap_or(0))));
    });
    group.bench_function("thread_local", |b| {
        PLAIN.set(1);
        b.iter(|| black_box(PLAIN.get()));
    });
    group.bench_function("tokio/task_local", |b| {
        TASK_VALUE.sync_scope(1, || b.iter(|| black_box(TASK_VALUE.with(|v| *v))));
    });
    group.bench_function("otel/current().get()", |b| {
        let _guard = otel_current(1);
        b.iter(|| black_box(opentelemetry::Context::current().get::<OtelValue>().map_or(0, |v| v.0)));
    });
    group.bench_function("otel/map_current", |b| {
        let _guard = otel_current(1);
        b.iter(|| {
            black_box(opentelemetry::Context::map_current(|cx| cx.get::<OtelValue>().map_or(0, |v| v.0)))
        });
    });
    group.finish();
}

/// The scope of `workload::contextvars_scope` with opentelemetry: attach a derived context, read, drop the guard.
#[inline(never)]
fn otel_scope(value: u64) -> u64 {
    let _guard = otel_current(value);
    opentelemetry::Context::map_current(|cx| cx.get::<OtelValue>().map_or(0, |v| v.0))
}

/// The same with a plain thread-local: replace, read, put back.
#[inline(never)]
fn thread_local_scope(value: u64) -> u64 {
    let old = PLAIN.replace(value);
    let read = PLAIN.get();
    PLAIN.set(old);
    read
}

fn scope(c: &mut Criterion) {
    let mut group = c.benchmark_group("scope");
    group.bench_function("contextvars/scope", |b| {
        filled(4).run(|| b.iter(|| contextvars_scope(black_box(2))));
    });
    group.bench_function("tokio/sync_scope", |b| {
        b.iter(|| tokio_scope(black_box(2)));
    });
    group.bench_function("otel/attach+get+drop", |b| {
        let _guard = otel_current(1);
        b.iter(|| otel_scope(black_box(2)));
    });
    group.bench_function("thread_local/replace+get+set", |b| {
        b.iter(|| thread_local_scope(black_box(2)));
    });
    group.finish();
}

fn set_reset(c: &mut Criterion) {
    let mut group = c.benchmark_group("set_reset");
    for n in [4, 10_000] {
        // The steady state: the variable already holds a value this context owns.
        group.bench_with_input(BenchmarkId::new("contextvars", n), &n, |b, &n| {
            filled(n).run(|| {
                VALUE.set(1);
                b.iter(|| {
                    let token = VALUE.set(black_box(2));
                    VALUE.reset(token)
                });
            });
        });
    }
    group.bench_function("contextvars/4-unset", |b| {
        // The variable was not set: set inserts it, reset removes it.
        static UNSET: ContextVar<u64> = ContextVar::new("unset");
        filled(4).run(|| {
            b.iter(|| {
                let token = UNSET.set(black_box(2));
                UNSET.reset(token)
            });
        });
    });
    group.bench_function("contextvars/4-inherited", |b| {
        // The value was set before the context was entered again (no set in this run).
        filled(4).run(|| {
            b.iter(|| {
                let token = VALUE.set(black_box(2));
                VALUE.reset(token)
            });
        });
    });
    group.bench_function("contextvars/4-after-snapshot", |b| {
        // Every set follows a snapshot, so it cannot write in place; the snapshot is
        // dropped after the reset.
        filled(4).run(|| {
            b.iter(|| {
                let snapshot = contextvars::copy_context();
                let token = VALUE.set(black_box(2));
                let result = VALUE.reset(token);
                drop(snapshot);
                result
            });
        });
    });
    group.bench_function("otel/attach+drop", |b| {
        let _guard = otel_current(1);
        b.iter(|| drop(otel_current(black_box(2))));
    });
    group.bench_function("thread_local/replace+set", |b| {
        b.iter(|| {
            let old = PLAIN.replace(black_box(2));
            PLAIN.set(old);
        });
    });
    group.finish();
}

/// Polls `fut` until it is ready and returns how many polls that took.
fn poll_to_end<F: Future>(mut fut: Pin<&mut F>) -> u32 {
    let mut cx = TaskContext::from_waker(Waker::noop());
    let mut polls = 1;
    while fut.as_mut().poll(&mut cx).is_pending() {
        polls += 1;
    }
    polls
}

/// Measures only the polls: the future is built and boxed before, and dropped after, the
/// timed part.
fn bench_polls<F: Future>(b: &mut criterion::Bencher<'_>, mut make: impl FnMut() -> F) {
    b.iter_batched_ref(
        || Box::pin(make()),
        |fut| {
            let polls = poll_to_end(fut.as_mut());
            assert_eq!(polls, POLLS);
            black_box(polls)
        },
        BatchSize::SmallInput,
    );
}

fn poll(c: &mut Criterion) {
    let mut group = c.benchmark_group("poll");
    group.bench_function("bare", |b| bench_polls(b, Countdown::new));
    for n in [4, 10_000] {
        group.bench_with_input(BenchmarkId::new("contextvars/WithContext", n), &n, |b, &n| {
            let ctx = filled(n);
            bench_polls(b, || Countdown::new().in_context(ctx.clone()));
        });
    }
    group.bench_function("tokio/scope-1", |b| {
        bench_polls(b, || TASK_VALUE.scope(1, Countdown::new()));
    });
    group.bench_function("tokio/scope-3-nested", |b| {
        bench_polls(b, || {
            TASK_REQUEST_ID.scope(1, TASK_USER_ID.scope(2, TASK_DEADLINE.scope(3, Countdown::new())))
        });
    });
    group.bench_function("otel/WithContext", |b| {
        let cx = opentelemetry::Context::new().with_value(OtelValue(1));
        bench_polls(b, || opentelemetry::context::FutureExt::with_context(Countdown::new(), cx.clone()));
    });
    group.finish();
}

fn copy(c: &mut Criterion) {
    static SCRATCH: [ContextVar<u64>; 2] = [const { ContextVar::new("scratch").not_inherited() }; 2];
    let mut group = c.benchmark_group("copy_context");
    for n in [1, 4, 64, 1_000, 10_000] {
        group.bench_with_input(BenchmarkId::new("contextvars", n), &n, |b, &n| {
            filled(n).run(|| b.iter(|| black_box(contextvars::copy_context())));
        });
    }
    group.bench_function("otel/current", |b| {
        let _guard = otel_current(1);
        b.iter(|| black_box(opentelemetry::Context::current()));
    });
    // What a spawn takes: `with_context` copies the context without the variables that are
    // not inherited; against wrapping in a snapshot. None set: the same O(1) copy; two set:
    // one path copy each.
    group.bench_function("contextvars/wrap-snapshot/4", |b| {
        filled(4).run(|| b.iter(|| black_box(std::future::ready(()).in_context(Context::current()))));
    });
    group.bench_function("contextvars/wrap-inherited/4", |b| {
        filled(4).run(|| b.iter(|| black_box(contextvars::with_context(std::future::ready(())))));
    });
    group.bench_function("contextvars/wrap-inherited/4+2-not-inherited", |b| {
        filled(4).run(|| {
            for var in &SCRATCH {
                var.set(1);
            }
            b.iter(|| black_box(contextvars::with_context(std::future::ready(()))));
        });
    });
    group.finish();
}

/// Polls a request future on the stack to completion; building and dropping it are timed.
/// As a concrete type, where the ratio harness's `workload::run_request` polls it type-erased:
/// the figures recorded from this bench were measured this way.
fn run_request<F: Future<Output = u64>>(fut: F) -> u64 {
    let mut fut = pin!(fut);
    let mut cx = TaskContext::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(sum) = fut.as_mut().poll(&mut cx) {
            return sum;
        }
    }
}

/// A request-shaped workload: what each row does in one iteration (all of it timed).
///
/// - `contextvars`: the spawning code runs in a context of 4 vars. Spawn: `copy_context()` and
///   `with_context`. In the task: 3 `set`s (the first copies the snapshot's path), 20 `get`s
///   over 11 polls (each poll enters and leaves the task's context), 3 `reset`s; then the
///   future and its context are dropped.
/// - `tokio`: spawn: three nested `task_local` `scope`s (the values are given there, which
///   stands for the 3 sets). 20 reads with `with` over 11 polls, each poll swapping the
///   three values in and out; leaving the scopes at the end stands for the resets. tokio
///   task-locals are not inherited, so there is no snapshot.
/// - `otel`: the spawning code runs with an attached context of one value. Spawn:
///   `Context::current()` (the snapshot), 3 `with_value`s (each derives a new context: the
///   sets) and `with_context`. 20 reads with `map_current` over 11 polls, each poll attaching
///   and detaching the context; dropping the future drops the derived contexts (the resets).
fn request(c: &mut Criterion) {
    let mut group = c.benchmark_group("request");
    group.bench_function("contextvars", |b| {
        filled(4).run(|| {
            assert_eq!(contextvars_spawn_request(), REQUEST_SUM);
            b.iter(contextvars_spawn_request);
        });
    });
    group.bench_function("tokio/3-scopes", |b| {
        assert_eq!(tokio_spawn_request(), REQUEST_SUM);
        b.iter(tokio_spawn_request);
    });
    group.bench_function("otel", |b| {
        let _guard = otel_current(1);
        assert_eq!(otel_spawn_request(), REQUEST_SUM);
        b.iter(otel_spawn_request);
    });
    group.finish();
}

fn contextvars_spawn_request() -> u64 {
    run_request(contextvars_spawned())
}

fn tokio_spawn_request() -> u64 {
    run_request(tokio_spawned())
}

fn otel_spawn_request() -> u64 {
    run_request(otel_spawned())
}

/// What the safe-by-default checks cost: `set` (which refuses a root set on a worker thread)
/// against the same set without the check, inside an entered context and in the thread's own
/// context; and `get` on a thread marked as a worker against an unmarked one (`get` has no
/// check in release builds: the leak bookkeeping is for debug builds with `tokio`).
fn checks(c: &mut Criterion) {
    let mut group = c.benchmark_group("checks");
    group.bench_function("set+reset/entered/checked", |b| {
        filled(4).run(|| b.iter(|| VALUE.reset(VALUE.set(black_box(2)))));
    });
    group.bench_function("set+reset/entered/unchecked", |b| {
        filled(4).run(|| b.iter(|| VALUE.reset(contextvars::internals::set_unchecked(&VALUE, black_box(2)))));
    });
    group.bench_function("set+reset/own/checked", |b| {
        let token = VALUE.set(1);
        b.iter(|| VALUE.reset(VALUE.set(black_box(2))));
        VALUE.reset(token).unwrap();
    });
    group.bench_function("set+reset/own/unchecked", |b| {
        let token = VALUE.set(1);
        b.iter(|| VALUE.reset(contextvars::internals::set_unchecked(&VALUE, black_box(2))));
        VALUE.reset(token).unwrap();
    });
    group.bench_function("get/unmarked", |b| {
        filled(4).run(|| b.iter(|| black_box(VALUE.get().unwrap_or(0))));
    });
    group.bench_function("get/worker", |b| {
        contextvars::thread::mark_worker();
        filled(4).run(|| b.iter(|| black_box(VALUE.get().unwrap_or(0))));
        contextvars::thread::unmark_worker();
    });
    group.finish();
}

criterion_group!(benches, get, scope, set_reset, poll, copy, request, checks);
criterion_main!(benches);
