//! `Context::wrap_fn` on rayon: every call of a `par_iter` closure runs in its own copy of
//! the caller's context, whichever worker runs it and whatever other requests' items that
//! worker ran before.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};

use contextvars::{Context, ContextVar};
use rayon::prelude::*;

mod support;
use support::isolated;

static REQUEST: ContextVar<u64> = ContextVar::new("request");
static ITEM: ContextVar<u32> = ContextVar::new("item");

const ITEMS: u32 = 10_000;

fn pool() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap()
}

/// One request's `par_iter` over `ITEMS` items; returns how many items saw a value that was
/// not theirs (another request's ID, no ID, or an earlier item's value).
fn request(pool: &rayon::ThreadPool, id: u64) -> usize {
    isolated(|| {
        REQUEST.set(id);
        let wrong = AtomicUsize::new(0);
        let items: Vec<u32> = (0..ITEMS).collect();
        let handle = Context::current().wrap_fn(|item: &u32| {
            if REQUEST.get() != Some(id) || ITEM.is_set() {
                wrong.fetch_add(1, Ordering::Relaxed);
            }
            ITEM.set(*item); // stays in this call
            REQUEST.set(u64::MAX); // likewise
            u64::from(*item)
        });
        let sum: u64 = pool.install(|| items.par_iter().map(handle).sum());
        assert_eq!(sum, u64::from(ITEMS) * u64::from(ITEMS - 1) / 2);
        assert_eq!((REQUEST.get(), ITEM.get()), (Some(id), None), "nothing leaked into the caller");
        wrong.into_inner()
    })
}

#[test]
fn par_iter_items_see_their_request_and_nothing_else() {
    let pool = pool();
    // Requests run at once from several threads, so each worker alternates between the
    // items of different requests.
    let wrong: usize = std::thread::scope(|s| {
        let pool = &pool;
        let requests: Vec<_> = (1..=4).map(|id| s.spawn(move || request(pool, id))).collect();
        requests.into_iter().map(|r| r.join().unwrap()).sum()
    });
    assert_eq!(wrong, 0);
    // the workers themselves were never changed by the items they ran
    let leaked = pool.broadcast(|_| REQUEST.is_set() || ITEM.is_set());
    assert_eq!(leaked, [false, false]);
}

/// The control: the same closure without `wrap_fn` sees no request at all on the workers.
#[test]
fn a_plain_par_iter_closure_loses_the_request() {
    let pool = pool();
    isolated(|| {
        REQUEST.set(1);
        let lost = AtomicUsize::new(0);
        pool.install(|| {
            (0..ITEMS).into_par_iter().for_each(|_| {
                if REQUEST.get().is_none() {
                    lost.fetch_add(1, Ordering::Relaxed);
                }
            });
        });
        assert_eq!(lost.into_inner(), ITEMS as usize);
    });
}

#[test]
fn several_arguments_travel_as_a_tuple() {
    isolated(|| {
        REQUEST.set(3);
        let handle = Context::current().wrap_fn(|(i, item): (usize, &u32)| {
            REQUEST.get().unwrap() * 1000 + i as u64 * 10 + u64::from(*item)
        });
        let items = [5, 6, 7];
        let out: Vec<u64> = items.par_iter().enumerate().map(handle).collect();
        assert_eq!(out, [3005, 3016, 3027]);
    });
}

#[test]
fn every_call_starts_from_the_wrapped_context() {
    isolated(|| {
        REQUEST.set(1);
        let handle = Context::current().wrap_fn(|()| {
            let seen = (REQUEST.get(), ITEM.get());
            ITEM.set(9);
            seen
        });
        REQUEST.set(2); // after the wrap: not seen
        assert_eq!(handle(()), (Some(1), None));
        assert_eq!(handle(()), (Some(1), None));
        assert_eq!((REQUEST.get(), ITEM.get()), (Some(2), None));
    });
}

#[test]
fn a_panicking_call_restores_the_callers_context() {
    isolated(|| {
        REQUEST.set(1);
        let handle = Context::new().with_value(&REQUEST, 2).wrap_fn(|fail: bool| {
            ITEM.set(1);
            assert!(!fail, "the call fails");
            REQUEST.get()
        });
        assert!(catch_unwind(AssertUnwindSafe(|| handle(true))).is_err());
        assert_eq!((REQUEST.get(), ITEM.get()), (Some(1), None));
        assert_eq!(handle(false), Some(2), "the wrapped closure still works after a panic");
        // inside rayon: the panic reaches the caller, whose context is intact
        let pool = pool();
        let caught = catch_unwind(AssertUnwindSafe(|| {
            pool.install(|| {
                (0..100).into_par_iter().map(|i| i == 50).for_each(|fail| {
                    let _ = handle(fail);
                });
            });
        }));
        assert!(caught.is_err());
        assert_eq!((REQUEST.get(), ITEM.get()), (Some(1), None));
        assert_eq!(pool.broadcast(|_| REQUEST.is_set() || ITEM.is_set()), [false, false]);
    });
}
