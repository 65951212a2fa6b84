//! Fail closed on tokio (feature `tokio`): a tokio task with no context of its own that sets
//! a variable in the worker thread's own context never shows that value to another task or to
//! code outside tasks; and the mistake is reported in debug builds at the next change, naming
//! the `set`, never inside the reader's call. On a current-thread runtime, where the tasks
//! interleave on one thread, every rule of `contextvars::tokio`'s docs is checked in turn.
#![cfg(feature = "tokio")]

use std::panic::Location;
use std::sync::{Arc, Mutex};

use contextvars::{Context, ContextVar, FutureExt};
use tokio::runtime::Builder;
use tokio::sync::Barrier;

static ID: ContextVar<u32> = ContextVar::new("id");
static LEVEL: ContextVar<&str> = ContextVar::with_default("level", "info");

/// Every report made on any thread, as (variable, line of its set).
fn collect_reports() -> Arc<Mutex<Vec<(&'static str, u32)>>> {
    let reports = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&reports);
    contextvars::tokio::set_leak_hook(move |leak| {
        seen.lock().unwrap().push((leak.var_name(), leak.set_at().line()));
    });
    reports
}

/// One test at a time touches the global hook.
static HOOK: Mutex<()> = Mutex::new(());

#[test]
fn a_tasks_value_is_its_own_and_others_read_the_threads() {
    let _hook = HOOK.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let reports = collect_reports();
    let rt = Builder::new_current_thread().build().unwrap();
    let set_line = Mutex::new(0);
    let seen = rt.block_on(async {
        LEVEL.set("warn"); // outside any task: everyone on this thread sees it
        let barrier = Arc::new(Barrier::new(2));
        let a = {
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                let line = Location::caller().line() + 1;
                ID.set(1);
                LEVEL.set("debug");
                barrier.wait().await; // B runs now
                barrier.wait().await;
                (line, ID.get(), LEVEL.get())
            })
        };
        let b = {
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                let seen = (ID.get(), LEVEL.get()); // A's values are A's
                barrier.wait().await;
                seen
            })
        };
        let (line, a_seen_id, a_seen_level) = a.await.unwrap();
        *set_line.lock().unwrap() = line;
        let b_seen = b.await.unwrap();
        (a_seen_id, a_seen_level, b_seen, (ID.get(), LEVEL.get()))
    });
    assert_eq!(seen.0, Some(1), "A reads its own value");
    assert_eq!(seen.1, Some("debug"));
    assert_eq!(seen.2, (None, Some("warn")), "B reads what it would had A never set");
    assert_eq!(seen.3, (None, Some("warn")), "and so does code outside tasks");
    // The leaks are reported at the thread's next change.
    rt.block_on(async { drop(LEVEL.set("error")) });
    contextvars::tokio::reset_leak_hook();
    let reports = reports.lock().unwrap();
    if cfg!(debug_assertions) {
        let line = *set_line.lock().unwrap();
        assert!(reports.contains(&("id", line)), "the report names A's set of `id`: {reports:?}");
        assert!(reports.contains(&("level", line + 1)), "{reports:?}");
    } else {
        assert!(reports.is_empty());
    }
}

#[test]
fn another_tasks_set_ends_a_claim_and_the_value_is_lost_not_foreign() {
    let _hook = HOOK.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let reports = collect_reports();
    let rt = Builder::new_current_thread().build().unwrap();
    let (a_after, b_after) = rt.block_on(async {
        let barrier = Arc::new(Barrier::new(2));
        let a = {
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                ID.set(1);
                barrier.wait().await;
                barrier.wait().await;
                ID.get()
            })
        };
        let b = {
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                ID.set(2); // the latest set of `id` on this thread: A's value is lost
                barrier.wait().await;
                ID.get()
            })
        };
        (a.await.unwrap(), b.await.unwrap())
    });
    contextvars::tokio::reset_leak_hook();
    assert_eq!(a_after, None, "lost, never B's");
    assert_eq!(b_after, Some(2));
    if cfg!(debug_assertions) {
        assert!(!reports.lock().unwrap().is_empty(), "B's set over A's value is reported");
    }
}

/// `TraceContext::set` wraps a variable's `set`: the report names the line that called it,
/// the one to fix, not the wrapper's.
#[cfg(feature = "trace")]
#[test]
fn a_report_of_trace_context_set_names_the_callers_line() {
    use contextvars::trace::TraceContext;
    let _hook = HOOK.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let reports = collect_reports();
    let rt = Builder::new_current_thread().build().unwrap();
    let (line, seen) = rt.block_on(async {
        let line = tokio::spawn(async {
            let line = line!() + 1;
            TraceContext::set(TraceContext::extract(&[("x-trace-id", "req-1")]));
            line
        });
        let line = line.await.unwrap();
        // Another task meets the value, then changes a variable: the report is made there.
        let seen = tokio::spawn(async {
            let seen = TraceContext::current();
            ID.set(2);
            seen
        });
        (line, seen.await.unwrap())
    });
    contextvars::tokio::reset_leak_hook();
    assert_eq!(seen, None, "another task's trace is never shown");
    let reports = reports.lock().unwrap();
    if cfg!(debug_assertions) {
        assert_eq!(*reports, [("trace_context", line)], "the report names the caller's line");
    } else {
        assert!(reports.is_empty());
    }
}

#[test]
fn a_synchronous_set_reset_pair_and_a_scope_leave_nothing_and_report_nothing() {
    let _hook = HOOK.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let reports = collect_reports();
    let rt = Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for n in 0..100 {
            tasks.push(tokio::spawn(async move {
                let token = ID.set(n);
                let inside = ID.get();
                ID.reset(token).unwrap();
                let scoped = ID.sync_scope(n + 1, || ID.get());
                tokio::task::yield_now().await;
                (inside, scoped, ID.get())
            }));
        }
        for (n, task) in (0..100).zip(tasks) {
            assert_eq!(task.await.unwrap(), (Some(n), Some(n + 1), None));
        }
        drop(LEVEL.set("flush")); // a change, which would deliver any report
    });
    contextvars::tokio::reset_leak_hook();
    assert!(reports.lock().unwrap().is_empty(), "{:?}", reports.lock().unwrap());
}

#[test]
fn a_task_and_its_children_see_its_values_through_snapshots() {
    let rt = Builder::new_current_thread().build().unwrap();
    let seen = rt.block_on(async {
        tokio::spawn(async {
            ID.set(7);
            let snapshot = Context::current();
            let child = contextvars::tokio::spawn(async { ID.get() });
            let wrapped = async { ID.get() }.in_current_context().await;
            (snapshot.get(&ID).copied(), child.await.unwrap(), wrapped)
        })
        .await
        .unwrap()
    });
    assert_eq!(seen, (Some(7), Some(7), Some(7)));
}

#[test]
fn entered_contexts_behave_as_before() {
    let rt = Builder::new_current_thread().build().unwrap();
    let seen = rt.block_on(async {
        let a = tokio::spawn(
            async {
                ID.set(3);
                tokio::task::yield_now().await;
                ID.get()
            }
            .in_context(Context::new()),
        );
        let b = tokio::spawn(async { ID.get() }.in_context(Context::new()));
        (a.await.unwrap(), b.await.unwrap())
    });
    assert_eq!(seen, (Some(3), None));
}

#[test]
fn values_beyond_the_bookkeeping_are_hidden_from_everyone() {
    static MANY: [ContextVar<u32>; 80] = [const { ContextVar::new("many") }; 80];
    let rt = Builder::new_current_thread().build().unwrap();
    let seen = rt.block_on(async {
        tokio::spawn(async {
            for (n, var) in MANY.iter().enumerate() {
                var.set(n as u32);
            }
            MANY.iter().map(|var| var.get().is_some()).filter(|&set| set).count()
        })
        .await
        .unwrap()
    });
    // 64 claims a thread: the rest are hidden, even from the task that set them.
    assert_eq!(seen, 64);
}

#[test]
fn a_panicking_hook_panics_at_the_next_change_never_in_the_reader() {
    let _hook = HOOK.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if !cfg!(debug_assertions) {
        return; // release builds make no report
    }
    contextvars::tokio::set_leak_hook(|leak| panic!("{leak}"));
    let rt = Builder::new_current_thread().build().unwrap();
    let outcome = rt.block_on(async {
        let a = tokio::spawn(async {
            ID.set(1);
            std::future::pending::<()>().await;
        });
        tokio::task::yield_now().await;
        // Code outside tasks meets A's value: the read itself returns, with no panic.
        let read = std::panic::catch_unwind(|| ID.get());
        // The next change delivers the report to the hook, which panics there.
        let change = std::panic::catch_unwind(|| drop(LEVEL.set("x")));
        a.abort();
        (read, change.is_err())
    });
    contextvars::tokio::reset_leak_hook();
    assert_eq!(outcome.0.ok(), Some(None), "the reader got the fail-closed value, no panic");
    assert!(outcome.1, "the report panicked at the next set");
}

#[test]
fn marked_workers_still_refuse_root_sets_and_name_the_fix() {
    let rt = Builder::new_multi_thread()
        .worker_threads(1)
        .on_thread_start(contextvars::thread::mark_worker)
        .build()
        .unwrap();
    let message = rt.block_on(async {
        tokio::spawn(async { ID.set(1) }).await.unwrap_err().into_panic().downcast::<String>().unwrap()
    });
    assert!(
        message.contains("contextvars::tokio::spawn") && message.contains(".in_current_context()"),
        "{message}"
    );
    if cfg!(feature = "tower") {
        assert!(message.contains("contextvars::tower::ContextLayer"), "{message}");
    }
}

#[cfg(feature = "rayon")]
#[test]
fn a_marked_rayon_thread_names_the_rayon_adapters() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .start_handler(|_| contextvars::thread::mark_worker())
        .build()
        .unwrap();
    let message = pool.install(|| std::panic::catch_unwind(|| drop(ID.set(1)))).unwrap_err();
    let message = message.downcast::<String>().unwrap();
    assert!(
        message.contains("contextvars::rayon::") && message.contains("Context::current().wrap"),
        "{message}"
    );
}

#[test]
fn another_marked_pool_names_wrap_and_the_spawner() {
    let message = std::thread::spawn(|| {
        contextvars::thread::mark_worker();
        std::panic::catch_unwind(|| drop(ID.set(1))).unwrap_err().downcast::<String>().unwrap()
    })
    .join()
    .unwrap();
    assert!(message.contains("Context::current().wrap") && message.contains("ContextSpawner"), "{message}");
}
