//! Watchers: a watcher mirrors `REQUEST_ID` into a plain `thread_local!` "profiler label";
//! wherever task code runs, the label equals `REQUEST_ID.get()`.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::task::{Context as TaskContext, Poll};

use contextvars::{Context, ContextVar, FutureExt};

static REQUEST_ID: ContextVar<u64> = ContextVar::new("request_id");
static OTHER: ContextVar<u64> = ContextVar::new("other");

thread_local! {
    /// What a profiler bound to the thread would read.
    static LABEL: Cell<u64> = const { Cell::new(0) };
}

/// Registers the mirror once for the whole test binary.
fn mirror() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        REQUEST_ID.watch(|_old, new| LABEL.with(|label| label.set(new.copied().unwrap_or(0)))).keep();
    });
}

/// Counts the points where the label and the variable disagree.
static MISMATCHES: AtomicUsize = AtomicUsize::new(0);
static CHECKS: AtomicUsize = AtomicUsize::new(0);

fn check() {
    CHECKS.fetch_add(1, Ordering::Relaxed);
    if LABEL.with(Cell::get) != REQUEST_ID.get().unwrap_or(0) {
        MISMATCHES.fetch_add(1, Ordering::Relaxed);
    }
}

/// Yields `n` times, waking itself: the executor may move the task to another thread.
struct YieldTimes(u32);

impl Future for YieldTimes {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        if self.0 == 0 {
            return Poll::Ready(());
        }
        self.0 -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// A small deterministic generator per task.
fn next(seed: &mut u64) -> u64 {
    *seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
    *seed >> 33
}

async fn task(id: u64) {
    let mut seed = id;
    check();
    for _ in 0..4 {
        YieldTimes(u32::try_from(next(&mut seed) % 3).unwrap()).await;
        check();
        match next(&mut seed) % 4 {
            0 => {
                REQUEST_ID.set(id + 10_000); // a change inside the task
                check();
                REQUEST_ID.set(id);
            }
            1 => REQUEST_ID.sync_scope(id + 20_000, check),
            2 => Context::new().with_value(&REQUEST_ID, id + 30_000).run(|| {
                check();
                Context::current().run(check); // nested
            }),
            _ => drop(OTHER.set(id)), // another variable: no call, the label stays right
        }
        check();
        assert_eq!(REQUEST_ID.get(), Some(id));
    }
}

#[test]
fn the_label_follows_the_request_across_a_thread_pool_rayon_and_nested_runs() {
    mirror();
    let before = (MISMATCHES.load(Ordering::Relaxed), CHECKS.load(Ordering::Relaxed));
    let pool = futures::executor::ThreadPool::builder().pool_size(4).create().unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = std::sync::mpsc::channel();
    for id in 1..=1_000u64 {
        let tx = tx.clone();
        let done = Arc::clone(&done);
        pool.spawn_ok(REQUEST_ID.scope(id, async move {
            task(id).await;
            done.fetch_add(1, Ordering::Relaxed);
            tx.send(()).unwrap();
        }));
    }
    for _ in 0..1_000 {
        rx.recv().unwrap();
    }
    // rayon jobs, each in a context of its own, with nested runs inside.
    #[cfg(feature = "rayon")]
    rayon_jobs();
    check(); // back in the test thread's own context
    let (mismatches, checks) =
        (MISMATCHES.load(Ordering::Relaxed) - before.0, CHECKS.load(Ordering::Relaxed) - before.1);
    eprintln!("watch: {checks} checks, {mismatches} mismatches");
    assert_eq!(done.load(Ordering::Relaxed), 1_000);
    assert!(checks > 10_000, "{checks}");
    assert_eq!(mismatches, 0);
}

#[cfg(feature = "rayon")]
fn rayon_jobs() {
    let rayon_pool = rayon::ThreadPoolBuilder::new().num_threads(4).build().unwrap();
    rayon_pool.install(|| {
        Context::new().with_value(&REQUEST_ID, 5).run(|| {
            check();
            let (a, b) = contextvars::rayon::join(
                || {
                    check();
                    REQUEST_ID.sync_scope(6, check);
                    check();
                },
                || Context::new().with_value(&REQUEST_ID, 7).run(check),
            );
            assert_eq!((a, b), ((), ()));
            check();
        });
    });
}

#[test]
fn a_watcher_sees_old_and_new_values_and_defaults() {
    static LEVEL: ContextVar<&str> = ContextVar::with_default("level", "info");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let watch = LEVEL.watch(move |old, new| record.lock().unwrap().push((old.copied(), new.copied())));
    Context::new().run(|| {
        let token = LEVEL.set("debug");
        LEVEL.sync_scope("trace", || ());
        LEVEL.reset(token).unwrap();
    });
    drop(watch);
    Context::new().run(|| drop(LEVEL.set("unwatched")));
    assert_eq!(
        *seen.lock().unwrap(),
        [
            (Some("info"), Some("debug")),
            (Some("debug"), Some("trace")),
            (Some("trace"), Some("debug")),
            (Some("debug"), Some("info")),
        ]
    );
}

#[test]
fn a_panicking_watcher_leaves_the_context_as_the_change_made_it() {
    static FLAG: ContextVar<u8> = ContextVar::new("flag");
    let watch = FLAG.watch(|_, new| assert_ne!(new, Some(&13), "unlucky"));
    let mut ctx = Context::new();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ctx.run(|| drop(FLAG.set(13)))));
    drop(watch);
    assert!(outcome.is_err());
    assert_eq!(ctx.get(&FLAG), Some(&13), "the set was made; the watcher's panic came after");
    assert_eq!(FLAG.get(), None, "the caller's context is back");
}

#[test]
fn a_watcher_panicking_as_a_context_is_entered_leaves_the_caller_s_context_current() {
    static LEVEL: ContextVar<u8> = ContextVar::new("level");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let watch = LEVEL.watch(move |old, new| {
        assert_ne!(new, Some(&13), "unlucky");
        log.lock().unwrap().push((old.copied(), new.copied()));
    });
    let entered = std::panic::catch_unwind(|| Context::new().with_value(&LEVEL, 13).run(|| LEVEL.get()));
    assert!(entered.is_err());
    assert_eq!(LEVEL.get(), None, "the caller's context is back");
    // The watchers' record of the switches stayed balanced: later ones are seen as they are.
    Context::new().with_value(&LEVEL, 1).run(|| Context::new().with_value(&LEVEL, 2).run(|| ()));
    drop(watch);
    assert_eq!(
        *seen.lock().unwrap(),
        [(None, Some(1)), (Some(1), Some(2)), (Some(2), Some(1)), (Some(1), None)]
    );
}

#[test]
fn watchers_never_run_while_a_panic_unwinds() {
    static DEPTH: ContextVar<u8> = ContextVar::new("depth");
    let calls = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&calls);
    let watch = DEPTH.watch(move |_, _| {
        assert!(!std::thread::panicking());
        count.fetch_add(1, Ordering::Relaxed);
    });
    let outcome = std::panic::catch_unwind(|| {
        Context::new().with_value(&DEPTH, 1).run(|| DEPTH.sync_scope(2, || panic!("inside")))
    });
    drop(watch);
    assert!(outcome.is_err());
    // Entering, and the scope's set: the scope's restore and the leave came while unwinding.
    assert_eq!(calls.load(Ordering::Relaxed), 2);
}

#[test]
fn polls_of_wrapped_futures_enter_and_leave_in_view_of_the_watcher() {
    mirror();
    let label_in_poll = futures::executor::block_on(
        async { LABEL.with(Cell::get) }.in_context(Context::new().with_value(&REQUEST_ID, 77)),
    );
    assert_eq!((label_in_poll, LABEL.with(Cell::get)), (77, REQUEST_ID.get().unwrap_or(0)));
}
