//! Thousands of tasks on multi-threaded executors, each setting, awaiting (with random
//! yields, so tasks move between worker threads), spawning children and resetting; every read
//! is checked against what that task must see.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use contextvars::{Context, ContextVar, FutureExt};
use futures::channel::oneshot;

mod support;
use support::yield_now;

/// Which task a value belongs to.
static TASK: ContextVar<u64> = ContextVar::new("task");
/// Which round of its loop the task is in.
static ROUND: ContextVar<u32> = ContextVar::new("round");
/// How deep in the spawn tree the task is.
static DEPTH: ContextVar<u32> = ContextVar::with_default("depth", 0);

const TASKS: u64 = 10_000;
const ROUNDS: u32 = 4;
const MAX_DEPTH: u32 = 2;

type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;
/// Starts a task on the executor under test.
type Spawn = Arc<dyn Fn(BoxFuture) + Send + Sync>;

#[derive(Default)]
struct Stats {
    reads: AtomicU64,
    mismatches: AtomicU64,
    tasks: AtomicU64,
}

impl Stats {
    fn check<T: PartialEq + std::fmt::Debug>(&self, what: &str, seen: T, expected: T) {
        self.reads.fetch_add(1, Ordering::Relaxed);
        if seen != expected {
            let n = self.mismatches.fetch_add(1, Ordering::Relaxed);
            if n < 10 {
                eprintln!("mismatch in {what}: saw {seen:?}, expected {expected:?}");
            }
        }
    }
}

/// A small deterministic generator, one per task.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

async fn yield_some(rng: &mut Rng) {
    for _ in 0..rng.below(4) {
        yield_now().await;
    }
}

/// Ids of tasks spawned as children, above those of the top-level tasks.
static NEXT_CHILD: AtomicU64 = AtomicU64::new(TASKS);

/// One task: `parent` is what it inherited (task id and round), `None` at the top level.
fn task(id: u64, parent: Option<(u64, u32)>, spawn: Spawn, stats: Arc<Stats>) -> BoxFuture {
    Box::pin(async move {
        stats.tasks.fetch_add(1, Ordering::Relaxed);
        let mut rng = Rng(id.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let depth = DEPTH.get().unwrap_or_default();
        stats.check("inherited task", TASK.get(), parent.map(|(task, _)| task));
        stats.check("inherited round", ROUND.get(), parent.map(|(_, round)| round));

        let task_token = TASK.set(id);
        let depth_token = DEPTH.set(depth + 1);
        yield_some(&mut rng).await;
        for round in 0..ROUNDS {
            let round_token = ROUND.set(round);
            let snapshot = Context::current();
            yield_some(&mut rng).await;
            stats.check("task", TASK.get(), Some(id));
            stats.check("round", ROUND.get(), Some(round));

            if depth < MAX_DEPTH && rng.below(3) == 0 {
                let child_id = NEXT_CHILD.fetch_add(1, Ordering::Relaxed);
                let (done, finished) = oneshot::channel();
                let child = task(child_id, Some((id, round)), Arc::clone(&spawn), Arc::clone(&stats));
                spawn(Box::pin(
                    async move {
                        child.await;
                        let _ = done.send(());
                    }
                    .in_current_context(),
                ));
                // Sets made now are after the snapshot the child took.
                let later = TASK.set(id + 1_000_000);
                yield_some(&mut rng).await;
                TASK.reset(later).expect("reset in the task that set");
                finished.await.expect("the child ran to completion");
                stats.check("task after child", TASK.get(), Some(id));
                stats.check("round after child", ROUND.get(), Some(round));
            }

            ROUND.reset(round_token).expect("reset in the task that set");
            stats.check("round after reset", ROUND.get(), parent.map(|(_, round)| round));
            stats.check("snapshot", snapshot.get(&ROUND).copied(), Some(round));
            yield_some(&mut rng).await;
        }
        DEPTH.reset(depth_token).expect("reset in the task that set");
        TASK.reset(task_token).expect("reset in the task that set");
        stats.check("task after reset", TASK.get(), parent.map(|(task, _)| task));
        stats.check("depth after reset", DEPTH.get(), Some(depth));
    })
}

/// Runs `TASKS` top-level tasks, each in an empty context, and waits for all of them.
async fn run_all(spawn: &Spawn) -> Arc<Stats> {
    let stats = Arc::new(Stats::default());
    let mut waiting = Vec::new();
    for id in 0..TASKS {
        let (done, finished) = oneshot::channel();
        let body = task(id, None, Arc::clone(spawn), Arc::clone(&stats));
        spawn(Box::pin(
            async move {
                body.await;
                let _ = done.send(());
            }
            .in_context(Context::new()),
        ));
        waiting.push(finished);
    }
    for finished in waiting {
        finished.await.expect("every task ran to completion");
    }
    stats
}

fn assert_clean(executor: &str, stats: &Stats) {
    let (reads, mismatches, tasks) = (
        stats.reads.load(Ordering::Relaxed),
        stats.mismatches.load(Ordering::Relaxed),
        stats.tasks.load(Ordering::Relaxed),
    );
    eprintln!("{executor}: {tasks} tasks, {reads} checked reads, {mismatches} mismatches");
    assert!(tasks > TASKS, "children were spawned");
    // Every task checks at least 4 values per round and 4 outside its loop.
    assert!(reads >= tasks * (u64::from(ROUNDS) * 4 + 4));
    assert_eq!(mismatches, 0);
}

#[test]
fn tokio_multi_thread() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    let handle = runtime.handle().clone();
    let spawn: Spawn = Arc::new(move |future| {
        handle.spawn(future);
    });
    let stats = runtime.block_on(async {
        // Started from a worker thread, so that spawns interleave with running tasks.
        tokio::spawn(async move { run_all(&spawn).await }).await.unwrap()
    });
    assert_clean("tokio, 2 workers", &stats);
}

#[test]
fn futures_thread_pool() {
    let pool = futures::executor::ThreadPool::builder().pool_size(2).create().unwrap();
    let for_spawn = pool.clone();
    let spawn: Spawn = Arc::new(move |future| for_spawn.spawn_ok(future));
    let stats = futures::executor::block_on(run_all(&spawn));
    assert_clean("futures ThreadPool, 2 threads", &stats);
}
