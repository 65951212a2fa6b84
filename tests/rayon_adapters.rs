//! `contextvars::rayon::{spawn, join, scope}`: each closure runs in its own snapshot of the
//! caller's context, even when the thread that waits in `join` runs other jobs meanwhile.
#![cfg(feature = "rayon")]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use contextvars::{Context, ContextVar};

mod support;
use support::isolated;

static REQUEST: ContextVar<u64> = ContextVar::new("request");
static STEP: ContextVar<u32> = ContextVar::new("step");

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap()
}

fn workers_are_clean(pool: &rayon::ThreadPool) -> bool {
    pool.broadcast(|_| !REQUEST.is_set() && !STEP.is_set()).into_iter().all(|clean| clean)
}

/// On one thread, `join` runs both closures on the thread that called it, one after the other.
/// With rayon's own `join` the second sees what the first set; with ours it does not.
#[test]
fn join_closures_do_not_see_each_others_sets() {
    let leaky = pool(1);
    let seen_by_plain_b = leaky.install(|| {
        rayon::join(
            || {
                STEP.set(1);
            },
            || STEP.get(),
        )
        .1
    });
    assert_eq!(seen_by_plain_b, Some(1), "the control: rayon's join shares the thread's context");

    let pool = pool(1);
    let seen = pool.install(|| {
        Context::new().with_value(&REQUEST, 7).run(|| {
            contextvars::rayon::join(
                || {
                    STEP.set(1);
                    REQUEST.get()
                },
                || (REQUEST.get(), STEP.get()),
            )
        })
    });
    assert_eq!(seen, (Some(7), (Some(7), None)));
    assert!(workers_are_clean(&pool));
}

/// Many requests split their work with nested joins on two threads: a worker waiting in one
/// request's `join` runs jobs of other requests, and each must only see its own.
#[test]
fn nested_joins_of_many_requests_keep_their_values() {
    fn split(depth: u32, id: u64, wrong: &AtomicUsize) -> u64 {
        if REQUEST.get() != Some(id) || STEP.get() != Some(depth) {
            wrong.fetch_add(1, Ordering::Relaxed);
        }
        if depth == 6 {
            return 1;
        }
        STEP.set(depth + 1); // for the halves below
        let (a, b) = contextvars::rayon::join(|| split(depth + 1, id, wrong), || split(depth + 1, id, wrong));
        a + b
    }

    let pool = pool(2);
    let wrong = AtomicUsize::new(0);
    let leaves: Vec<u64> = pool.install(|| {
        use rayon::prelude::*;
        (0..200u64)
            .into_par_iter()
            .map(Context::new().wrap_fn(|id| {
                REQUEST.set(id);
                STEP.set(0);
                split(0, id, &wrong)
            }))
            .collect()
    });
    assert!(leaves.iter().all(|&n| n == 64));
    assert_eq!(wrong.into_inner(), 0);
    assert!(workers_are_clean(&pool));
}

#[test]
fn spawn_inherits_a_snapshot_taken_at_the_call() {
    isolated(|| {
        REQUEST.set(1);
        let (tx, rx) = std::sync::mpsc::channel();
        for step in 0..100 {
            STEP.set(step);
            let tx = tx.clone();
            contextvars::rayon::spawn(move || {
                let seen = (REQUEST.get(), STEP.get());
                STEP.set(u32::MAX); // stays in the job
                tx.send((step, seen)).unwrap();
            });
        }
        drop(tx);
        let wrong = rx.iter().filter(|(step, seen)| *seen != (Some(1), Some(*step))).count();
        assert_eq!(wrong, 0);
        assert_eq!(STEP.get(), Some(99));
    });
}

#[test]
fn scope_spawns_inherit_the_context_current_at_each_spawn() {
    isolated(|| {
        REQUEST.set(1);
        let seen = Mutex::new(Vec::new());
        let returned = contextvars::rayon::scope(|s| {
            assert_eq!(REQUEST.get(), Some(1), "the scope's closure starts in the caller's values");
            let seen = &seen;
            for step in 0..50 {
                STEP.set(step);
                s.spawn(move |s| {
                    let outer = (REQUEST.get(), STEP.get());
                    REQUEST.set(2); // seen by the job spawned below, by nothing else
                    s.spawn(move |_| {
                        let inner = (REQUEST.get(), STEP.get());
                        seen.lock().unwrap().push((step, outer, inner));
                    });
                });
            }
            STEP.set(1000); // the scope's own sets stay in the scope
            "done"
        });
        assert_eq!(returned, "done");
        assert_eq!((REQUEST.get(), STEP.get()), (Some(1), None));
        let mut seen = seen.into_inner().unwrap();
        seen.sort_unstable();
        let expected: Vec<_> =
            (0..50).map(|step| (step, (Some(1), Some(step)), (Some(2), Some(step)))).collect();
        assert_eq!(seen, expected);
    });
}

#[test]
fn a_panic_in_a_closure_restores_the_callers_and_the_workers_context() {
    let pool = pool(2);
    isolated(|| {
        REQUEST.set(1);
        let caught = catch_unwind(AssertUnwindSafe(|| {
            pool.install(|| {
                contextvars::rayon::join(
                    || {
                        STEP.set(1);
                        panic!("a fails");
                    },
                    || STEP.set(2),
                )
            })
        }));
        assert!(caught.is_err());
        let caught = catch_unwind(AssertUnwindSafe(|| {
            pool.install(|| {
                contextvars::rayon::scope(|s| {
                    s.spawn(|_| {
                        REQUEST.set(3);
                        panic!("a job fails");
                    });
                });
            });
        }));
        assert!(caught.is_err());
        assert_eq!((REQUEST.get(), STEP.get()), (Some(1), None));
        assert!(workers_are_clean(&pool));
    });
}

/// The one-line pattern for a pool of one's own: `pool.spawn(Context::current().wrap(job))`
/// and `pool.install(Context::current().wrap(op))`.
#[test]
fn a_pool_of_ones_own_takes_the_one_line_pattern() {
    let pool = pool(2);
    isolated(|| {
        REQUEST.set(1);
        let (tx, rx) = std::sync::mpsc::channel();
        pool.spawn(Context::current().wrap(move || tx.send(REQUEST.get()).unwrap()));
        let installed = pool.install(Context::current().wrap(|| {
            STEP.set(2); // stays in the copy
            REQUEST.get()
        }));
        assert_eq!((rx.recv().unwrap(), installed), (Some(1), Some(1)));
        assert_eq!(STEP.get(), None);
        assert!(workers_are_clean(&pool));
    });
}
