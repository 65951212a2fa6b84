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

/// Waits until the task runs on a thread for which `wanted` holds. Each try wakes the task
/// from a helper task on the same worker, pushes it out of the worker's LIFO slot into its
/// queue, and keeps that worker busy: the other worker steals the task. Panics after many
/// tries.
async fn move_until(wanted: impl Fn(std::thread::ThreadId) -> bool) {
    for _ in 0..200 {
        if wanted(std::thread::current().id()) {
            return;
        }
        let (wake, woken) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let _ = wake.send(());
            tokio::spawn(async {});
            std::thread::sleep(std::time::Duration::from_millis(20));
        });
        woken.await.unwrap();
    }
    panic!("the task never moved to the other worker");
}

#[test]
fn a_task_that_moved_and_set_again_never_reads_its_older_value_back() {
    let _hook = HOOK.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let _reports = collect_reports();
    let rt = Builder::new_multi_thread().worker_threads(2).build().unwrap();
    let seen = rt.block_on(async {
        tokio::spawn(async {
            ID.set(1);
            let first = std::thread::current().id();
            move_until(|thread| thread != first).await;
            let moved = ID.get(); // no claim of this task here: the thread's own, nothing
            ID.set(2); // from now on the task's latest is 2, on this thread
            move_until(|thread| thread == first).await;
            let back = ID.get(); // the claim of 1 on the first thread is not its latest
            (moved, back)
        })
        .await
        .unwrap()
    });
    contextvars::tokio::reset_leak_hook();
    assert_eq!(seen, (None, None), "after its move the task reads nothing, never its older value");
}

/// One tokio task serving request after request, as hyper serves an HTTP/1 keep-alive
/// connection, each request setting with no context of its own.
async fn serve_one_after_another(requests: u32, line: &Mutex<u32>) -> Vec<Option<u32>> {
    let mut read_first = Vec::new();
    for request in 0..requests {
        read_first.push(ID.get()); // the earlier request's value: the window the report names
        *line.lock().unwrap() = Location::caller().line() + 1;
        ID.set(request);
        tokio::task::yield_now().await;
        assert_eq!(ID.get(), Some(request), "after its own set a request reads its value");
    }
    read_first
}

#[test]
fn a_task_setting_again_from_the_same_line_without_reset_is_reported_there() {
    let _hook = HOOK.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let reports = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&reports);
    contextvars::tokio::set_leak_hook(move |leak| {
        seen.lock().unwrap().push((
            leak.var_name(),
            leak.set_at().line(),
            leak.observer() == Some(leak.setter()),
            leak.to_string(),
        ));
    });
    let rt = Builder::new_current_thread().build().unwrap();
    let line = Mutex::new(0);
    let read_first = rt.block_on(async {
        tokio::spawn(async move {
            let read = serve_one_after_another(3, &line).await;
            (read, *line.lock().unwrap())
        })
        .await
        .unwrap()
    });
    contextvars::tokio::reset_leak_hook();
    let (read_first, line) = read_first;
    assert_eq!(read_first, [None, Some(0), Some(1)], "the limit this report exists for");
    let reports = reports.lock().unwrap();
    if cfg!(debug_assertions) {
        assert_eq!(reports.len(), 2, "one report per later request: {reports:?}");
        for (var, at, by_itself, text) in reports.iter() {
            assert_eq!((*var, *at, *by_itself), ("id", line, true), "{text}");
            assert!(text.contains("keep-alive") && text.contains("contextvars::tokio::spawn"), "{text}");
        }
    } else {
        assert!(reports.is_empty(), "{reports:?}");
    }
}

#[test]
fn nested_set_reset_pairs_over_a_tasks_value_report_nothing() {
    let _hook = HOOK.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let reports = collect_reports();
    let rt = Builder::new_current_thread().build().unwrap();
    let seen = rt.block_on(async {
        tokio::spawn(async {
            let mut seen = Vec::new();
            ID.set(1);
            for n in 2..5 {
                // A library's synchronous pair, from one line, over the task's value.
                let token = ID.set(n);
                seen.push(ID.get());
                ID.reset(token).unwrap();
                seen.push(ID.get());
            }
            seen
        })
        .await
        .unwrap()
    });
    contextvars::tokio::reset_leak_hook();
    assert_eq!(seen, [Some(2), Some(1), Some(3), Some(1), Some(4), Some(1)]);
    assert!(reports.lock().unwrap().is_empty(), "{:?}", reports.lock().unwrap());
}
