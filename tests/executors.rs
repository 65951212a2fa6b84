//! The same programs on four executors: futures' `LocalPool` and `ThreadPool`, tokio's
//! multi-threaded runtime and smol. Nothing in the crate knows about any of them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

mod support;
use support::yield_now;

use contextvars::{Context, ContextVar, FutureExt, copy_context};
use futures::future::BoxFuture;

static REQUEST: ContextVar<u64> = ContextVar::new("request");
static STEP: ContextVar<u32> = ContextVar::with_default("step", 0);

/// Spawns a `Send` future on the executor under test and returns a future of its output.
trait Executor: Sync {
    fn spawn(&self, fut: BoxFuture<'static, u64>) -> BoxFuture<'static, u64>;
    /// Runs `fut` to completion on the executor, blocking the calling thread.
    fn block_on(&self, fut: BoxFuture<'static, ()>);
}

/// One request: sets its ID, awaits, spawns a child that inherits the ID and sets its own
/// values, offloads work to a plain thread through `Context::wrap`, and checks at every
/// step that it only ever sees its own values.
fn request(exec: &'static dyn Executor, id: u64, mismatches: Arc<AtomicUsize>) -> BoxFuture<'static, ()> {
    Box::pin(
        async move {
            let check = |seen: Option<u64>| {
                if seen != Some(id) {
                    mismatches.fetch_add(1, Ordering::Relaxed);
                }
            };
            REQUEST.set(id);
            for step in 1..=5 {
                STEP.set(step);
                yield_now().await;
                check(REQUEST.get());
                if STEP.get() != Some(step) {
                    mismatches.fetch_add(1, Ordering::Relaxed);
                }
            }
            let child = exec.spawn(Box::pin(
                async move {
                    let seen = REQUEST.get().unwrap_or(u64::MAX);
                    REQUEST.set(seen + 1_000_000); // stays in the child
                    yield_now().await;
                    seen
                }
                .in_current_context(),
            ));
            check(Some(child.await));
            check(REQUEST.get());
            let job = copy_context().wrap(|| REQUEST.get());
            check(std::thread::spawn(job).join().unwrap());
        }
        .in_context(Context::new()),
    )
}

fn requests_keep_their_values(exec: &'static dyn Executor, count: u64) {
    let mismatches = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..count)
        .map(|id| {
            let fut = request(exec, id, Arc::clone(&mismatches));
            exec.spawn(Box::pin(async move {
                fut.await;
                id
            }))
        })
        .collect();
    let done = Arc::new(AtomicUsize::new(0));
    let done_in_task = Arc::clone(&done);
    exec.block_on(Box::pin(async move {
        for (expected, handle) in (0..).zip(handles) {
            assert_eq!(handle.await, expected);
            done_in_task.fetch_add(1, Ordering::Relaxed);
        }
    }));
    assert_eq!(done.load(Ordering::Relaxed), count as usize);
    assert_eq!(mismatches.load(Ordering::Relaxed), 0, "a task saw another task's value");
    assert_eq!(REQUEST.get(), None, "nothing leaked into the thread that drove the executor");
}

/// The asyncio case: a task wrapped before a set does not see it, nor leaks its own sets.
fn independent_task_context(exec: &'static dyn Executor) {
    exec.block_on(Box::pin(
        async move {
            REQUEST.set(1);
            let child = exec.spawn(Box::pin(
                async {
                    yield_now().await;
                    let seen = REQUEST.get().unwrap_or(0);
                    REQUEST.set(99);
                    seen
                }
                .in_current_context(),
            ));
            REQUEST.set(2);
            assert_eq!(child.await, 1);
            assert_eq!(REQUEST.get(), Some(2));
        }
        .in_context(Context::new()),
    ));
}

struct Futures(futures::executor::ThreadPool);

impl Executor for Futures {
    fn spawn(&self, fut: BoxFuture<'static, u64>) -> BoxFuture<'static, u64> {
        use futures::task::SpawnExt;
        Box::pin(self.0.spawn_with_handle(fut).unwrap())
    }
    fn block_on(&self, fut: BoxFuture<'static, ()>) {
        futures::executor::block_on(fut);
    }
}

struct Tokio(tokio::runtime::Runtime);

impl Executor for Tokio {
    fn spawn(&self, fut: BoxFuture<'static, u64>) -> BoxFuture<'static, u64> {
        let handle = self.0.spawn(fut);
        Box::pin(async move { handle.await.unwrap() })
    }
    fn block_on(&self, fut: BoxFuture<'static, ()>) {
        self.0.block_on(fut);
    }
}

struct Smol(smol::Executor<'static>);

impl Executor for Smol {
    fn spawn(&self, fut: BoxFuture<'static, u64>) -> BoxFuture<'static, u64> {
        Box::pin(self.0.spawn(fut))
    }
    fn block_on(&self, fut: BoxFuture<'static, ()>) {
        // Two threads run the executor, as a multi-threaded smol application would.
        let (stop, stopped) = smol::channel::unbounded::<()>();
        std::thread::scope(|s| {
            for _ in 0..2 {
                let stopped = stopped.clone();
                s.spawn(|| smol::block_on(self.0.run(async move { stopped.recv().await.ok() })));
            }
            smol::block_on(self.0.run(fut));
            drop(stop);
        });
    }
}

fn futures_pool() -> &'static Futures {
    static POOL: std::sync::OnceLock<Futures> = std::sync::OnceLock::new();
    POOL.get_or_init(|| Futures(futures::executor::ThreadPool::builder().pool_size(2).create().unwrap()))
}

fn tokio_rt() -> &'static Tokio {
    static RT: std::sync::OnceLock<Tokio> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        Tokio(tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap())
    })
}

fn smol_ex() -> &'static Smol {
    static EX: std::sync::OnceLock<Smol> = std::sync::OnceLock::new();
    EX.get_or_init(|| Smol(smol::Executor::new()))
}

const REQUESTS: u64 = 2_000;

#[test]
fn futures_thread_pool_keeps_each_request_apart() {
    requests_keep_their_values(futures_pool(), REQUESTS);
}

#[test]
fn tokio_multi_thread_keeps_each_request_apart() {
    requests_keep_their_values(tokio_rt(), REQUESTS);
}

#[test]
fn smol_keeps_each_request_apart() {
    requests_keep_their_values(smol_ex(), REQUESTS);
}

#[test]
fn futures_thread_pool_task_contexts_are_independent() {
    independent_task_context(futures_pool());
}

#[test]
fn tokio_task_contexts_are_independent() {
    independent_task_context(tokio_rt());
}

#[test]
fn smol_task_contexts_are_independent() {
    independent_task_context(smol_ex());
}

/// The single-threaded `LocalPool` takes `!Send` futures, so it gets its own program.
#[test]
fn local_pool_keeps_each_task_apart() {
    use futures::task::LocalSpawnExt;
    let mut pool = futures::executor::LocalPool::new();
    let spawner = contextvars::ContextSpawner::new(pool.spawner());
    let mismatches = std::rc::Rc::new(std::cell::Cell::new(0));
    let mut handles = Vec::new();
    for id in 0..500u64 {
        let mismatches = std::rc::Rc::clone(&mismatches);
        let spawner_in_task = spawner.clone();
        let task = async move {
            REQUEST.set(id);
            yield_now().await;
            // a child spawned through the ContextSpawner starts with this task's values
            let child = spawner_in_task
                .spawn_local_with_handle(async {
                    let seen = REQUEST.get();
                    REQUEST.set(u64::MAX);
                    seen
                })
                .unwrap();
            yield_now().await;
            if child.await != Some(id) || REQUEST.get() != Some(id) {
                mismatches.set(mismatches.get() + 1);
            }
            id
        };
        // each task starts in the context current at the spawn: set a different one each time
        let handle = Context::new().with_value(&STEP, 1).run(|| spawner.spawn_local_with_handle(task));
        handles.push(handle.unwrap());
    }
    let ids = pool.run_until(futures::future::join_all(handles));
    assert_eq!(ids, (0..500).collect::<Vec<_>>());
    assert_eq!(mismatches.get(), 0);
    assert_eq!(REQUEST.get(), None);
}

/// A hand-written executor: one poll at a time of a boxed future, with a no-op waker.
#[test]
fn a_hand_polled_future_keeps_its_context_between_polls() {
    let mut fut: Pin<Box<dyn Future<Output = Option<u64>>>> = Box::pin(
        async {
            REQUEST.set(5);
            yield_now().await;
            REQUEST.get()
        }
        .in_context(Context::new()),
    );
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(fut.as_mut().poll(&mut cx).is_pending());
    let outside = REQUEST.set(6);
    assert_eq!(fut.as_mut().poll(&mut cx), std::task::Poll::Ready(Some(5)));
    assert_eq!(REQUEST.get(), Some(6));
    REQUEST.reset(outside).unwrap();
}
