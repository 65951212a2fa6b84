//! Every log line a request produces carries that request's ID: across `.await`s, spawned
//! subtasks and a blocking thread pool, without passing the ID to any function.
//!
//! The same handlers run twice on a two-thread `futures` executor: once reading the ID from
//! a `ContextVar`, once from a plain `thread_local!`. The second run shows why the crate
//! exists: tasks that move between worker threads, subtasks and pool jobs read whatever ID
//! the thread last held.
//!
//! Run with `cargo run --example request_ids`. Exits non-zero if any line logged through
//! the context variable carries the wrong ID.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::thread;

use contextvars::{Context, ContextSpawner, ContextVar};
use futures::channel::oneshot;
use futures::executor::{ThreadPool, block_on};
use futures::future::join_all;
use futures::task::SpawnExt;

const REQUESTS: usize = 300;
const NO_REQUEST: &str = "no-request";

static REQUEST_ID: ContextVar<Arc<str>> = ContextVar::new("request_id");

thread_local! {
    static LEAKY_ID: RefCell<Option<Arc<str>>> = const { RefCell::new(None) };
}

/// Where a handler reads "its" request ID from.
#[derive(Clone, Copy, PartialEq)]
enum Source {
    ContextVar,
    ThreadLocal,
}

impl Source {
    fn current_id(self) -> Arc<str> {
        let id = match self {
            Source::ContextVar => REQUEST_ID.get(),
            Source::ThreadLocal => LEAKY_ID.with(|id| id.borrow().clone()),
        };
        id.unwrap_or_else(|| NO_REQUEST.into())
    }

    fn enter_request(self, id: Arc<str>) {
        match self {
            Source::ContextVar => drop(REQUEST_ID.set(id)),
            Source::ThreadLocal => LEAKY_ID.with(|slot| *slot.borrow_mut() = Some(id)),
        }
    }
}

/// One log line: the ID it was logged with, and (for checking only) the request it belongs to.
struct Line {
    request: usize,
    logged_id: Arc<str>,
    message: &'static str,
}

#[derive(Clone)]
struct Logger(Arc<Mutex<Vec<Line>>>);

impl Logger {
    /// What a logging integration does: read the ID when the record is emitted.
    fn log(&self, source: Source, request: usize, message: &'static str) {
        let line = Line { request, logged_id: source.current_id(), message };
        self.0.lock().expect("logger lock").push(line);
    }
}

/// Yields once to the executor, so tasks interleave and migrate between worker threads.
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// A blocking thread pool, as used for CPU-heavy or blocking work.
struct BlockingPool {
    jobs: mpsc::Sender<Job>,
}

impl BlockingPool {
    fn new(threads: usize) -> Self {
        let (jobs, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..threads {
            let receiver = Arc::clone(&receiver);
            thread::spawn(move || {
                loop {
                    let job = receiver.lock().expect("pool lock").recv();
                    match job {
                        Ok(job) => job(),
                        Err(_) => break,
                    }
                }
            });
        }
        Self { jobs }
    }

    /// Runs `f` on the pool. With `Source::ContextVar` the job is wrapped in the caller's
    /// context (`Context::wrap`); a thread-local has no such thing to hand over.
    fn run<R: Send + 'static>(
        &self,
        source: Source,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> oneshot::Receiver<R> {
        let (tx, rx) = oneshot::channel();
        let job: Job = match source {
            Source::ContextVar => {
                let f = Context::current().wrap(f);
                Box::new(move || drop(tx.send(f())))
            }
            Source::ThreadLocal => Box::new(move || drop(tx.send(f()))),
        };
        self.jobs.send(job).expect("pool is running");
        rx
    }
}

async fn handle(
    request: usize,
    source: Source,
    logger: Logger,
    spawner: ContextSpawner<ThreadPool>,
    blocking: Arc<BlockingPool>,
) {
    logger.log(source, request, "request started");
    YieldNow(false).await;
    logger.log(source, request, "after an await");

    // A subtask: `ContextSpawner` starts it in a snapshot of this request's context.
    let sub_logger = logger.clone();
    let subtask = spawner
        .spawn_with_handle(async move {
            YieldNow(false).await;
            sub_logger.log(source, request, "inside a spawned subtask");
        })
        .expect("executor is running");

    // Blocking work on another pool.
    let pool_logger = logger.clone();
    let offloaded = blocking.run(source, move || pool_logger.log(source, request, "on the blocking pool"));

    subtask.await;
    offloaded.await.expect("pool job ran");
    YieldNow(false).await;
    logger.log(source, request, "request finished");
}

struct Summary {
    lines: usize,
    wrong_id: usize,
    no_id: usize,
}

fn serve(source: Source, executor: &ThreadPool, blocking: &Arc<BlockingPool>) -> (Summary, Vec<Line>) {
    let logger = Logger(Arc::new(Mutex::new(Vec::new())));
    let spawner = ContextSpawner::new(executor.clone());
    let handles: Vec<_> = (0..REQUESTS)
        .map(|request| {
            // The server's accept loop: enter a fresh context per request, set the ID there,
            // and spawn the handler in it.
            let (logger, spawner2, blocking) = (logger.clone(), spawner.clone(), Arc::clone(blocking));
            let mut ctx = Context::new();
            ctx.run(|| {
                source.enter_request(format!("req-{request:04}").into());
                spawner
                    .spawn_with_handle(async move {
                        if source == Source::ThreadLocal {
                            // The best a thread-local can do: set it when the task starts.
                            source.enter_request(format!("req-{request:04}").into());
                        }
                        handle(request, source, logger, spawner2, blocking).await;
                    })
                    .expect("executor is running")
            })
        })
        .collect();
    block_on(join_all(handles));

    let lines = std::mem::take(&mut *logger.0.lock().expect("logger lock"));
    let mut summary = Summary { lines: lines.len(), wrong_id: 0, no_id: 0 };
    for line in &lines {
        if &*line.logged_id == NO_REQUEST {
            summary.no_id += 1;
        } else if *line.logged_id != *format!("req-{:04}", line.request) {
            summary.wrong_id += 1;
        }
    }
    (summary, lines)
}

fn main() {
    let executor = ThreadPool::builder().pool_size(2).create().expect("thread pool");
    let blocking = Arc::new(BlockingPool::new(2));

    let (good, lines) = serve(Source::ContextVar, &executor, &blocking);
    println!("with contextvars (the lines of request 7 out of {}):", lines.len());
    for line in lines.iter().filter(|line| line.request == 7) {
        println!("  request_id={:<10} {}", line.logged_id, line.message);
    }

    let (leaky, lines) = serve(Source::ThreadLocal, &executor, &blocking);
    println!("\nwith a plain thread_local! (lines of request 7):");
    for line in lines.iter().filter(|line| line.request == 7) {
        println!("  request_id={:<10} {}", line.logged_id, line.message);
    }

    println!("\n{REQUESTS} concurrent requests, 2 executor threads, 2 blocking-pool threads");
    println!("{:<18} {:>10} {:>22} {:>16}", "", "log lines", "another request's ID", "no ID at all");
    for (name, s) in [("contextvars", &good), ("thread_local!", &leaky)] {
        println!("{name:<18} {:>10} {:>22} {:>16}", s.lines, s.wrong_id, s.no_id);
    }

    if good.wrong_id + good.no_id > 0 || good.lines != REQUESTS * 5 {
        eprintln!("error: a line logged through the context variable carried the wrong ID");
        std::process::exit(1);
    }
}
