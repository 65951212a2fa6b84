//! 500 requests at once, each spawning subtasks and blocking jobs through the one-call ways
//! this crate documents, on real executors and real threads: tokio (`contextvars::tokio`),
//! smol and async-executor (`spawn(fut.in_current_context())`, `unblock(ctx.wrap(f))`) and
//! rayon (`contextvars::rayon` and `wrap_fn` over `par_iter`). Every read is checked and
//! counted: none may see another request's values, or lose its own.

use std::sync::atomic::{AtomicUsize, Ordering};

use contextvars::{Context, ContextVar, FutureExt, with_context};
use futures::future::BoxFuture;

mod support;
use support::yield_now;

static REQUEST: ContextVar<u64> = ContextVar::new("request");
static STEP: ContextVar<u32> = ContextVar::new("step");
static SUB: ContextVar<u32> = ContextVar::new("sub");

const REQUESTS: u64 = 500;
const SUBTASKS: u32 = 3;
const JOBS: u32 = 2;
/// One check at the start and one at the end of a request, two per subtask, one per job.
const CHECKS_PER_REQUEST: usize = 2 + 2 * SUBTASKS as usize + JOBS as usize;

#[derive(Default)]
struct Stats {
    checks: AtomicUsize,
    wrong: AtomicUsize,
}

impl Stats {
    fn check(&self, ok: bool) {
        self.checks.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.wrong.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Every check ran, and how many failed.
    fn wrong(&self, requests: u64) -> usize {
        assert_eq!(self.checks.load(Ordering::Relaxed), requests as usize * CHECKS_PER_REQUEST);
        self.wrong.load(Ordering::Relaxed)
    }
}

/// One executor, through the spawning calls a user would write for it.
trait Executor: Sync {
    /// Spawns a task that inherits the caller's context (for the control: that does not).
    fn spawn(&'static self, fut: BoxFuture<'static, ()>) -> BoxFuture<'static, ()>;
    /// Runs a blocking job on the executor's pool, in the caller's context.
    fn spawn_blocking(&'static self, job: Box<dyn FnOnce() + Send>) -> BoxFuture<'static, ()>;
    /// Drives `fut` to completion from the test thread.
    fn block_on(&'static self, fut: BoxFuture<'static, ()>);
}

/// A request: started with its ID in the context it inherited from the spawn, it spawns
/// subtasks and blocking jobs, each after setting a step they must see, and checks that
/// their sets never come back.
fn request(exec: &'static dyn Executor, id: u64, stats: &'static Stats) -> BoxFuture<'static, ()> {
    Box::pin(async move {
        stats.check(REQUEST.get() == Some(id));
        let mut children = Vec::new();
        for k in 0..SUBTASKS {
            STEP.set(k);
            children.push(exec.spawn(Box::pin(async move {
                stats.check(REQUEST.get() == Some(id) && STEP.get() == Some(k) && !SUB.is_set());
                SUB.set(k);
                yield_now().await;
                stats.check(REQUEST.get() == Some(id) && SUB.get() == Some(k));
            })));
            yield_now().await;
        }
        for j in 0..JOBS {
            STEP.set(100 + j);
            children.push(exec.spawn_blocking(Box::new(move || {
                stats.check(REQUEST.get() == Some(id) && STEP.get() == Some(100 + j) && !SUB.is_set());
                SUB.set(j);
            })));
        }
        for child in children {
            child.await;
        }
        stats.check(REQUEST.get() == Some(id) && STEP.get() == Some(100 + JOBS - 1) && !SUB.is_set());
    })
}

/// Starts `REQUESTS` requests at once, each spawned right after setting its ID, and returns
/// how many checks failed.
fn load(exec: &'static dyn Executor) -> usize {
    let stats: &'static Stats = Box::leak(Box::default());
    exec.block_on(Box::pin(with_context(async move {
        let mut requests = Vec::new();
        for id in 0..REQUESTS {
            REQUEST.set(id);
            requests.push(exec.spawn(request(exec, id, stats)));
        }
        for request in requests {
            request.await;
        }
    })));
    assert_eq!((REQUEST.get(), STEP.get(), SUB.get()), (None, None, None), "nothing leaked out");
    stats.wrong(REQUESTS)
}

#[cfg(feature = "tokio")]
mod on_tokio {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap()
    }

    struct Adapters(tokio::runtime::Runtime);

    impl Executor for Adapters {
        fn spawn(&'static self, fut: BoxFuture<'static, ()>) -> BoxFuture<'static, ()> {
            let task = contextvars::tokio::spawn(fut);
            Box::pin(async { task.await.unwrap() })
        }
        fn spawn_blocking(&'static self, job: Box<dyn FnOnce() + Send>) -> BoxFuture<'static, ()> {
            let job = contextvars::tokio::spawn_blocking(job);
            Box::pin(async { job.await.unwrap() })
        }
        fn block_on(&'static self, fut: BoxFuture<'static, ()>) {
            self.0.block_on(fut);
        }
    }

    /// The control: requests start through the adapter, children as tokio's own calls start
    /// them, without the caller's values (in an empty context rather than in none, so that
    /// the children's own sets stay in them and only the loss is measured).
    struct Plain(tokio::runtime::Runtime);

    impl Executor for Plain {
        fn spawn(&'static self, fut: BoxFuture<'static, ()>) -> BoxFuture<'static, ()> {
            // requests (spawned by the driver, which sets no step) inherit; their children not
            let task = if STEP.is_set() {
                tokio::spawn(fut.in_context(Context::new()))
            } else {
                contextvars::tokio::spawn(fut)
            };
            Box::pin(async { task.await.unwrap() })
        }
        fn spawn_blocking(&'static self, job: Box<dyn FnOnce() + Send>) -> BoxFuture<'static, ()> {
            let job = tokio::task::spawn_blocking(Context::new().wrap(job));
            Box::pin(async { job.await.unwrap() })
        }
        fn block_on(&'static self, fut: BoxFuture<'static, ()>) {
            self.0.block_on(fut);
        }
    }

    #[test]
    fn tokio_adapters_keep_every_request_apart() {
        let exec: &'static Adapters = Box::leak(Box::new(Adapters(runtime())));
        assert_eq!(load(exec), 0);
    }

    #[test]
    fn tokio_plain_spawns_lose_the_request() {
        let exec: &'static Plain = Box::leak(Box::new(Plain(runtime())));
        // every subtask and job reads no request: all their checks fail
        let children = REQUESTS as usize * (2 * SUBTASKS as usize + JOBS as usize);
        assert_eq!(load(exec), children);
    }
}

/// smol's global executor: `smol::spawn(fut.in_current_context())` and
/// `smol::unblock(Context::current().wrap(job))`.
struct Smol;

impl Executor for Smol {
    fn spawn(&'static self, fut: BoxFuture<'static, ()>) -> BoxFuture<'static, ()> {
        Box::pin(smol::spawn(fut.in_current_context()))
    }
    fn spawn_blocking(&'static self, job: Box<dyn FnOnce() + Send>) -> BoxFuture<'static, ()> {
        Box::pin(smol::unblock(Context::current().wrap(job)))
    }
    fn block_on(&'static self, fut: BoxFuture<'static, ()>) {
        smol::block_on(fut);
    }
}

#[test]
fn smol_keeps_every_request_apart() {
    assert_eq!(load(&Smol), 0);
}

/// An `async_executor::Executor` of our own, run by two threads and the test thread.
struct AsyncExecutor(async_executor::Executor<'static>);

impl Executor for AsyncExecutor {
    fn spawn(&'static self, fut: BoxFuture<'static, ()>) -> BoxFuture<'static, ()> {
        Box::pin(self.0.spawn(fut.in_current_context()))
    }
    fn spawn_blocking(&'static self, job: Box<dyn FnOnce() + Send>) -> BoxFuture<'static, ()> {
        Box::pin(smol::unblock(Context::current().wrap(job)))
    }
    fn block_on(&'static self, fut: BoxFuture<'static, ()>) {
        let (stop, stopped) = smol::channel::unbounded::<()>();
        std::thread::scope(|s| {
            for _ in 0..2 {
                let stopped = stopped.clone();
                s.spawn(|| futures::executor::block_on(self.0.run(async move { stopped.recv().await.ok() })));
            }
            futures::executor::block_on(self.0.run(fut));
            drop(stop);
        });
    }
}

#[test]
fn async_executor_keeps_every_request_apart() {
    let exec: &'static AsyncExecutor = Box::leak(Box::new(AsyncExecutor(async_executor::Executor::new())));
    assert_eq!(load(exec), 0);
}

/// rayon: each request is one item of a `par_iter` (through `wrap_fn`), and uses `join`,
/// `scope`, `spawn` and a `par_iter` of its own: 500 requests of 20 items, 10,000 items in all.
#[cfg(feature = "rayon")]
#[test]
fn rayon_adapters_keep_every_request_apart() {
    use rayon::prelude::*;

    const ITEMS: u32 = 20;
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    let wrong = AtomicUsize::new(0);
    let checks = AtomicUsize::new(0);
    let check = |ok: bool| {
        checks.fetch_add(1, Ordering::Relaxed);
        if !ok {
            wrong.fetch_add(1, Ordering::Relaxed);
        }
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = Context::new().wrap_fn(|id: u64| {
        REQUEST.set(id);
        // join: each half in its own copy
        let (a, b) = contextvars::rayon::join(
            || {
                STEP.set(1);
                REQUEST.get() == Some(id)
            },
            || REQUEST.get() == Some(id) && !STEP.is_set(),
        );
        check(a && b);
        // scope: every job sees the step set before its spawn
        contextvars::rayon::scope(|s| {
            for k in 0..3 {
                STEP.set(k);
                s.spawn(move |_| {
                    check(REQUEST.get() == Some(id) && STEP.get() == Some(k) && !SUB.is_set());
                    SUB.set(k);
                });
            }
        });
        // spawn: fire and forget, checked by the test thread once all requests are done
        STEP.set(7);
        let tx = tx.clone();
        contextvars::rayon::spawn(move || tx.send((id, REQUEST.get(), STEP.get())).unwrap());
        // par_iter: every item in its own copy of the request's context
        let items: Vec<u32> = (0..ITEMS).collect();
        let per_item = Context::current().wrap_fn(|item: &u32| {
            let ok = REQUEST.get() == Some(id) && STEP.get() == Some(7) && !SUB.is_set();
            SUB.set(*item);
            ok
        });
        let all_ok = items.par_iter().map(per_item).filter(|ok| *ok).count();
        check(all_ok == ITEMS as usize);
        check(REQUEST.get() == Some(id) && STEP.get() == Some(7) && !SUB.is_set());
    });
    pool.install(|| (0..REQUESTS).into_par_iter().for_each(handle));
    drop(tx);
    let spawned: Vec<_> = rx.iter().collect();
    assert_eq!(spawned.len(), REQUESTS as usize);
    let spawned_wrong =
        spawned.iter().filter(|(id, request, step)| (*request, *step) != (Some(*id), Some(7))).count();
    assert_eq!(spawned_wrong, 0);
    assert_eq!(checks.into_inner(), REQUESTS as usize * (1 + 3 + 2));
    assert_eq!(wrong.into_inner(), 0);
    let clean = pool.broadcast(|_| !REQUEST.is_set() && !STEP.is_set() && !SUB.is_set());
    assert_eq!(clean, [true, true]);
}
