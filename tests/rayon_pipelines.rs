//! `par_iter().in_current_context()`: every closure of a rayon pipeline runs in the context of
//! the request that built it, each call in its own copy, while 8 requests share one pool.
//!
//! Each closure records what it sees: the request's ID (missing is *lost*, another request's
//! is *foreign*) and a mark that every call sets, which no other call may see (*crossed*),
//! except the closures of one item's own way through the chain, which share its copy.
#![cfg(feature = "rayon")]

use std::ops::Index;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

// `in_current_context` and `in_context`, on parallel iterators and futures alike.
use contextvars::rayon::*;
use contextvars::{Context, ContextVar, WithContext};
use rayon::prelude::*;

static REQUEST: ContextVar<u64> = ContextVar::new("request");
static MARK: ContextVar<u64> = ContextVar::new("mark");

const REQUESTS: u64 = 8;
const ITEMS: u64 = 10_000;
const ITEMS_SUM: u64 = ITEMS * (ITEMS - 1) / 2;

/// The marks of calls that belong to no item: a start of work, a clone, a combine.
const NOT_AN_ITEM: u64 = u64::MAX;

fn mark(request: u64, item: u64) -> u64 {
    (request << 40) | item
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap()
}

fn workers_are_clean(pool: &rayon::ThreadPool) -> bool {
    pool.broadcast(|_| !REQUEST.is_set() && !MARK.is_set()).into_iter().all(|clean| clean)
}

/// Runs `each` on `REQUESTS` threads at once, each in a context of its own holding its ID.
fn requests<T: Send>(each: impl Fn(u64) -> T + Sync) -> Vec<T> {
    std::thread::scope(|s| {
        let each = &each;
        let threads: Vec<_> = (1..=REQUESTS)
            .map(|id| s.spawn(move || Context::new().with_value(&REQUEST, id).run(|| each(id))))
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    })
}

/// What the calls of one kind of closure saw.
#[derive(Default)]
struct Tally {
    calls: AtomicUsize,
    lost: AtomicUsize,
    foreign: AtomicUsize,
    crossed: AtomicUsize,
    saw_own: AtomicUsize,
}

impl Tally {
    /// One call of request `id`'s closure: may see the mark `own` (its item's, set earlier on
    /// its way through the chain) and no other; sets `mark` for no other call to see.
    fn call(&self, id: u64, own: Option<u64>, mark: u64) {
        self.calls.fetch_add(1, Relaxed);
        match REQUEST.get() {
            None => self.lost.fetch_add(1, Relaxed),
            Some(seen) if seen != id => self.foreign.fetch_add(1, Relaxed),
            Some(_) => 0,
        };
        match MARK.get() {
            None => 0,
            seen if seen == own => self.saw_own.fetch_add(1, Relaxed),
            Some(_) => self.crossed.fetch_add(1, Relaxed),
        };
        MARK.set(mark);
    }

    fn get(&self) -> [usize; 5] {
        [&self.calls, &self.lost, &self.foreign, &self.crossed, &self.saw_own].map(|n| n.load(Relaxed))
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Map,
    Filter,
    FilterMap,
    FlatMapIter,
    AfterFlatMapIter,
    FoldIdentity,
    FoldOp,
    ReduceIdentity,
    ReduceOp,
    ForEach,
    MapWith,
    MapWithClone,
    MapInit,
    MapInitInit,
    Any,
    All,
    FindAny,
    Collect,
    Sum,
}

/// How many calls a kind must have had: exactly one per item, or at least some.
enum Expected {
    PerItem(u64),
    AtLeast(u64),
}

const KINDS: [(Kind, Expected); 19] = {
    use Expected::{AtLeast, PerItem};
    [
        (Kind::Map, PerItem(1)),
        (Kind::Filter, PerItem(1)),
        (Kind::FilterMap, PerItem(1)),
        (Kind::FlatMapIter, PerItem(1)),
        (Kind::AfterFlatMapIter, PerItem(2)),
        (Kind::FoldIdentity, AtLeast(REQUESTS)),
        (Kind::FoldOp, PerItem(1)),
        (Kind::ReduceIdentity, AtLeast(REQUESTS)),
        // once per item, and once per combine of two halves
        (Kind::ReduceOp, AtLeast(REQUESTS * ITEMS)),
        (Kind::ForEach, PerItem(1)),
        (Kind::MapWith, PerItem(1)),
        // a clone per split; 10,000 items on 4 threads are split
        (Kind::MapWithClone, AtLeast(REQUESTS)),
        (Kind::MapInit, PerItem(1)),
        (Kind::MapInitInit, AtLeast(REQUESTS)),
        (Kind::Any, PerItem(1)),
        (Kind::All, PerItem(1)),
        (Kind::FindAny, PerItem(1)),
        (Kind::Collect, PerItem(1)),
        // twice per item, once per start of work and once per combine
        (Kind::Sum, AtLeast(2 * REQUESTS * ITEMS)),
    ]
};

#[derive(Default)]
struct Tallies([Tally; KINDS.len()]);

impl Index<Kind> for Tallies {
    type Output = Tally;

    fn index(&self, kind: Kind) -> &Tally {
        &self.0[kind as usize]
    }
}

/// A value whose `Clone` is a closure call too (`map_with` clones its value at each split).
struct Probe<'t> {
    id: u64,
    tallies: &'t Tallies,
}

impl Clone for Probe<'_> {
    fn clone(&self) -> Self {
        self.tallies[Kind::MapWithClone].call(self.id, None, NOT_AN_ITEM);
        Probe { id: self.id, tallies: self.tallies }
    }
}

/// A sum whose `Sum` impl, which `sum` calls twice for each item (to make it a sum, then to
/// add it), at each start and at each combine, records what it sees in the value itself (it
/// has no other way out).
#[derive(Default)]
struct Checked {
    total: u64,
    /// The mark of the one item this value is, if it is one.
    item: Option<u64>,
    calls: usize,
    lost: usize,
    crossed: usize,
    saw_own: usize,
    /// A bit for each request ID seen.
    requests: u64,
}

impl std::iter::Sum for Checked {
    fn sum<I: Iterator<Item = Checked>>(iter: I) -> Checked {
        let parts: Vec<Checked> = iter.collect();
        // Adding an item to a sum may see what making it a sum set, in its item's copy.
        let own = parts.last().and_then(|part| part.item);
        let mut sum = Checked { calls: 1, ..Checked::default() };
        match REQUEST.get() {
            Some(id) => sum.requests |= 1 << id,
            None => sum.lost += 1,
        }
        match MARK.get() {
            None => {}
            seen if seen == own => sum.saw_own += 1,
            Some(_) => sum.crossed += 1,
        }
        MARK.set(own.unwrap_or(NOT_AN_ITEM));
        if let [one] = &parts[..] {
            sum.item = one.item;
        }
        for part in parts {
            sum.total += part.total;
            sum.calls += part.calls;
            sum.lost += part.lost;
            sum.crossed += part.crossed;
            sum.saw_own += part.saw_own;
            sum.requests |= part.requests;
        }
        sum
    }
}

type Source<'a> = WithContext<rayon::slice::Iter<'a, u64>>;

/// A pipeline: the closures of one or more kinds, each recording into `t`; true if the
/// pipeline's result is right.
type Pipeline = for<'a> fn(Source<'a>, u64, &'a Tallies) -> bool;

const PIPELINES: [Pipeline; 13] = [
    |source, id, t| {
        let total: u64 = source
            .map(|&x| {
                t[Kind::Map].call(id, None, mark(id, x));
                x
            })
            .filter(|&x: &u64| {
                // the same item's way: may see what `map` set for it
                t[Kind::Filter].call(id, Some(mark(id, x)), mark(id, x));
                true
            })
            .sum();
        total == ITEMS_SUM
    },
    |source, id, t| {
        let even = source.filter_map(|&x| {
            t[Kind::FilterMap].call(id, None, mark(id, x));
            (x % 2 == 0).then_some(x)
        });
        even.count() == (ITEMS / 2) as usize
    },
    |source, id, t| {
        let total: u64 = source
            .flat_map_iter(|&x| {
                t[Kind::FlatMapIter].call(id, None, mark(id, x));
                [x, x]
            })
            .map(|x| {
                // both halves of one item share its copy
                t[Kind::AfterFlatMapIter].call(id, Some(mark(id, x)), mark(id, x));
                x
            })
            .sum();
        total == 2 * ITEMS_SUM
    },
    |source, id, t| {
        let total: u64 = source
            .fold(
                || {
                    t[Kind::FoldIdentity].call(id, None, NOT_AN_ITEM);
                    0
                },
                |acc, &x| {
                    t[Kind::FoldOp].call(id, None, mark(id, x));
                    acc + x
                },
            )
            .sum();
        total == ITEMS_SUM
    },
    |source, id, t| {
        let total = source.copied().reduce(
            || {
                t[Kind::ReduceIdentity].call(id, None, NOT_AN_ITEM);
                0
            },
            |a, b| {
                t[Kind::ReduceOp].call(id, None, NOT_AN_ITEM);
                a + b
            },
        );
        total == ITEMS_SUM
    },
    |source, id, t| {
        let total = AtomicU64::new(0);
        source.for_each(|&x| {
            t[Kind::ForEach].call(id, None, mark(id, x));
            total.fetch_add(x, Relaxed);
        });
        total.into_inner() == ITEMS_SUM
    },
    |source, id, t| {
        let total: u64 = source
            .map_with(Probe { id, tallies: t }, |probe, &x| {
                probe.tallies[Kind::MapWith].call(probe.id, None, mark(id, x));
                x
            })
            .sum();
        total == ITEMS_SUM
    },
    |source, id, t| {
        let init = || t[Kind::MapInitInit].call(id, None, NOT_AN_ITEM);
        let total: u64 = source
            .map_init(init, |(), &x| {
                t[Kind::MapInit].call(id, None, mark(id, x));
                x
            })
            .sum();
        total == ITEMS_SUM
    },
    |source, id, t| {
        !source.any(|&x| {
            t[Kind::Any].call(id, None, mark(id, x));
            false
        })
    },
    |source, id, t| {
        source.all(|&x| {
            t[Kind::All].call(id, None, mark(id, x));
            true
        })
    },
    |source, id, t| {
        let found = source.find_any(|&&x| {
            t[Kind::FindAny].call(id, None, mark(id, x));
            false
        });
        found.is_none()
    },
    |source, id, t| {
        let seen: Vec<(Option<u64>, u64)> = source
            .map(|&x| {
                t[Kind::Collect].call(id, None, mark(id, x));
                (REQUEST.get(), x)
            })
            .collect();
        seen.len() == ITEMS as usize && seen.iter().zip(0..).all(|(&seen, x)| seen == (Some(id), x))
    },
    |source, id, t| {
        let sum: Checked =
            source.map(|&x| Checked { total: x, item: Some(mark(id, x)), ..Checked::default() }).sum();
        let tally = &t[Kind::Sum];
        tally.calls.fetch_add(sum.calls, Relaxed);
        tally.lost.fetch_add(sum.lost, Relaxed);
        tally.crossed.fetch_add(sum.crossed, Relaxed);
        tally.saw_own.fetch_add(sum.saw_own, Relaxed);
        tally.foreign.fetch_add((sum.requests & !(1 << id)).count_ones() as usize, Relaxed);
        sum.total == ITEMS_SUM && sum.requests & (1 << id) != 0
    },
];

/// Every kind of closure, 10,000 items for each of 8 concurrent requests on a pool of 4:
/// each call sees its own request's ID, taken when `in_current_context` was called, and no
/// other call's set; nothing stays in the requests' contexts or on the workers.
#[test]
fn every_closure_of_8_concurrent_pipelines_sees_its_own_request() {
    let pool = pool(4);
    let items: Vec<u64> = (0..ITEMS).collect();
    let tallies = Tallies::default();
    let results = requests(|id| {
        PIPELINES.map(|pipeline| {
            let source = items.par_iter().in_current_context();
            // set after the snapshot: not seen by the pipeline
            let later = REQUEST.set(id + 100);
            let right = pool.install(|| pipeline(source, id, &tallies));
            let clean = !MARK.is_set() && REQUEST.get() == Some(id + 100);
            REQUEST.reset(later).unwrap();
            right && clean
        })
    });
    assert!(results.iter().flatten().all(|&right| right), "{results:?}");
    assert!(workers_are_clean(&pool));

    for (kind, expected) in KINDS {
        let [calls, lost, foreign, crossed, saw_own] = tallies[kind].get();
        println!(
            "{kind:?}: {calls} calls, {lost} lost, {foreign} foreign, {crossed} crossed, {saw_own} saw their item's"
        );
        assert_eq!((lost, foreign, crossed), (0, 0, 0), "{kind:?}");
        match expected {
            Expected::PerItem(per_item) => {
                assert_eq!(calls as u64, per_item * REQUESTS * ITEMS, "{kind:?}");
            }
            Expected::AtLeast(least) => assert!(calls as u64 >= least, "{kind:?}: {calls}"),
        }
    }
}

/// The control: without the adapter, the same closures run on the pool's workers in their
/// own (empty) contexts, and every call is lost.
#[test]
fn without_the_adapter_every_call_on_the_pool_is_lost() {
    let pool = pool(4);
    let items: Vec<u64> = (0..ITEMS).collect();
    let tally = Tally::default();
    requests(|id| {
        pool.install(|| items.par_iter().for_each(|&x| tally.call(id, None, mark(id, x))));
    });
    let [calls, lost, foreign, ..] = tally.get();
    assert_eq!((calls, lost, foreign), (8 * 10_000, 8 * 10_000, 0));
}

/// `flat_map` with a parallel inner iterator of 64 items, which rayon drives on its own: the
/// inner one takes its own `.in_current_context()`, made in the outer call, so its calls see
/// what that call set, and nothing of their siblings'.
#[test]
fn inner_parallel_iterators_of_flat_map_take_their_own_adapter() {
    const OUTER: u64 = 160;
    const INNER: u64 = 64;
    let pool = pool(4);
    let outer: Vec<u64> = (0..OUTER).collect();
    let (outer_calls, inner_calls) = (Tally::default(), Tally::default());
    let threads = std::sync::Mutex::new(std::collections::HashSet::new());
    let totals = requests(|id| {
        let source = outer.par_iter().in_current_context();
        pool.install(|| {
            source
                .flat_map(|&x| {
                    outer_calls.call(id, None, mark(id, x));
                    let (inner_calls, threads) = (&inner_calls, &threads);
                    (0..INNER).into_par_iter().in_current_context().map(move |y| {
                        inner_calls.call(id, Some(mark(id, x)), mark(id, OUTER + x * INNER + y));
                        threads.lock().unwrap().insert(std::thread::current().id());
                        x * INNER + y
                    })
                })
                .sum::<u64>()
        })
    });
    let all = OUTER * INNER;
    assert!(totals.iter().all(|&total| total == all * (all - 1) / 2), "{totals:?}");

    let [calls, lost, foreign, crossed, _] = outer_calls.get();
    assert_eq!((calls, lost, foreign, crossed), (8 * 160, 0, 0, 0));
    let [calls, lost, foreign, crossed, saw_outer] = inner_calls.get();
    println!("inner: {calls} calls on {} threads", threads.lock().unwrap().len());
    assert_eq!((calls, lost, foreign, crossed), (8 * 10_240, 0, 0, 0));
    assert_eq!(saw_outer, calls, "each inner call sees what its outer call set");
    assert!(workers_are_clean(&pool));
}

/// On a pool of one thread the caller's thread runs everything, the last combine included.
/// rayon alone then runs every call in the caller's context, one call's set showing in the
/// next and staying after; with the adapter, none does.
#[test]
fn on_the_callers_thread_no_set_reaches_the_next_call_or_the_caller() {
    let pool = pool(1);
    pool.install(|| {
        Context::new().with_value(&REQUEST, 1).run(|| {
            let saw_previous = (0..100u64)
                .into_par_iter()
                .map(|x| MARK.set(x).old_value().is_some())
                .filter(|&saw| saw)
                .count();
            assert_eq!((saw_previous, MARK.is_set()), (99, true), "the control: rayon alone");
        });

        Context::new().with_value(&REQUEST, 1).run(|| {
            let (items, combines) = (Tally::default(), Tally::default());
            let total = (0..100u64)
                .into_par_iter()
                .in_current_context()
                .map(|x| {
                    items.call(1, None, mark(1, x));
                    x
                })
                .reduce(
                    || 0,
                    |a, b| {
                        // adding item `b` may see what `map` set for it, in its copy
                        combines.call(1, Some(mark(1, b)), NOT_AN_ITEM);
                        a + b
                    },
                );
            assert_eq!(total, 4950);
            let [calls, lost, foreign, crossed, _] = items.get();
            assert_eq!((calls, lost, foreign, crossed), (100, 0, 0, 0));
            let [calls, lost, foreign, crossed, saw_own] = combines.get();
            assert!(calls >= 100);
            assert_eq!((lost, foreign, crossed, saw_own), (0, 0, 0, 100));
            assert!(!MARK.is_set());
        });
    });
    assert!(workers_are_clean(&pool));
}

/// The adapter goes after the adapters that build the source out of several (`zip`,
/// `enumerate`, `chain`): it covers both sides, and `collect` keeps the order.
#[test]
fn after_zip_enumerate_and_chain_it_covers_every_item() {
    let pool = pool(4);
    let (a, b): (Vec<u64>, Vec<u64>) = ((0..ITEMS).collect(), (ITEMS..2 * ITEMS).collect());
    let seen = requests(|id| {
        let zipped = a.par_iter().zip(&b).enumerate().in_current_context();
        let chained = a.par_iter().chain(&b).in_current_context();
        pool.install(|| {
            let zipped: Vec<_> = zipped.map(|(i, (&x, &y))| (REQUEST.get(), i as u64, x, y)).collect();
            let chained: Vec<_> = chained.map(|&x| (REQUEST.get(), x)).collect();
            let zipped_right = zipped.iter().zip(0..).all(|(&seen, i)| seen == (Some(id), i, i, ITEMS + i));
            let chained_right = chained.iter().zip(0..).all(|(&seen, x)| seen == (Some(id), x));
            (zipped.len(), zipped_right, chained.len(), chained_right)
        })
    });
    assert!(seen.iter().all(|&seen| seen == (10_000, true, 20_000, true)), "{seen:?}");
}

/// A closure that panics: the panic reaches the caller, and neither the caller's context nor
/// a worker's keeps anything the calls set.
#[test]
fn a_panic_in_a_closure_leaves_no_value_behind() {
    let pool = pool(4);
    let items: Vec<u64> = (0..ITEMS).collect();
    Context::new().with_value(&REQUEST, 1).run(|| {
        let source = items.par_iter().in_current_context();
        let caught = catch_unwind(AssertUnwindSafe(|| {
            pool.install(|| {
                source.for_each(|&x| {
                    MARK.set(x);
                    assert_ne!(x, ITEMS / 2, "item {x} fails");
                });
            });
        }));
        assert!(caught.is_err());
        assert_eq!((REQUEST.get(), MARK.get()), (Some(1), None));
    });
    assert!(workers_are_clean(&pool));
}

/// `in_context(ctx)` runs the chain in a context of one's own, and the future method of the
/// same trait still works beside it.
#[test]
fn in_context_takes_a_context_of_ones_own() {
    let ctx = Context::new().with_value(&REQUEST, 5);
    let seen: Vec<_> = (0..1000).into_par_iter().in_context(ctx.clone()).map(|_| REQUEST.get()).collect();
    assert!(seen.iter().all(|&seen| seen == Some(5)));
    assert_eq!(REQUEST.get(), None);
    assert_eq!(futures::executor::block_on(async { REQUEST.get() }.in_context(ctx)), Some(5));
}
