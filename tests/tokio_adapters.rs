//! `contextvars::tokio::{spawn, spawn_local, spawn_blocking}`: each task or job starts in a
//! snapshot of the caller's context taken at the call, keeps its sets to itself, and a panic
//! in one leaves the worker threads clean.
#![cfg(feature = "tokio")]

use std::rc::Rc;

use contextvars::{Context, ContextVar, FutureExt, with_context};

static USER: ContextVar<&str> = ContextVar::new("user");
static STEP: ContextVar<u32> = ContextVar::new("step");

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap()
}

/// Runs `fut` on `rt` inside a context of its own, as a request handler would.
fn run<F: Future>(rt: &tokio::runtime::Runtime, fut: F) -> F::Output {
    rt.block_on(fut.in_context(Context::new()))
}

#[test]
fn spawn_inherits_a_snapshot_taken_at_the_call() {
    let rt = runtime();
    run(&rt, async {
        USER.set("alice");
        let task = contextvars::tokio::spawn(async {
            let seen = USER.get();
            tokio::task::yield_now().await;
            USER.set("carol"); // stays in the task
            (seen, USER.get())
        });
        USER.set("bob"); // after the snapshot: not seen
        assert_eq!(task.await.unwrap(), (Some("alice"), Some("carol")));
        assert_eq!(USER.get(), Some("bob"));
        // the control: tokio's own spawn starts with whatever the worker has, here nothing
        let plain = tokio::spawn(async { USER.get() });
        assert_eq!(plain.await.unwrap(), None);
    });
}

#[test]
fn spawn_blocking_inherits_a_snapshot_taken_at_the_call() {
    let rt = runtime();
    run(&rt, async {
        USER.set("alice");
        let job = contextvars::tokio::spawn_blocking(|| {
            let seen = USER.get();
            USER.set("carol");
            seen
        });
        USER.set("bob");
        assert_eq!(job.await.unwrap(), Some("alice"));
        // the blocking thread kept nothing: a plain job on the pool sees no user
        let plain = tokio::task::spawn_blocking(|| USER.get());
        assert_eq!(plain.await.unwrap(), None);
    });
}

#[test]
fn spawn_local_inherits_a_snapshot_taken_at_the_call() {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(
        &rt,
        with_context(async {
            USER.set("alice");
            let not_send = Rc::new(5);
            let task = contextvars::tokio::spawn_local(async move {
                tokio::task::yield_now().await;
                STEP.set(*not_send);
                (USER.get(), STEP.get())
            });
            USER.set("bob");
            assert_eq!(task.await.unwrap(), (Some("alice"), Some(5)));
            assert_eq!((USER.get(), STEP.get()), (Some("bob"), None));
        }),
    );
}

#[test]
fn a_panicking_task_leaves_the_workers_clean() {
    let rt = runtime();
    run(&rt, async {
        USER.set("alice");
        let failed = contextvars::tokio::spawn(async {
            USER.set("mallory");
            STEP.set(1);
            panic!("the task fails");
        });
        assert!(failed.await.unwrap_err().is_panic());
        let failed = contextvars::tokio::spawn_blocking(|| {
            STEP.set(2);
            panic!("the job fails");
        });
        assert!(failed.await.unwrap_err().is_panic());
        // plain tasks on every worker see nothing of what the failed ones set
        let mut leaked = 0;
        for _ in 0..20 {
            let probe = tokio::spawn(async { USER.get().is_some() || STEP.get().is_some() });
            leaked += usize::from(probe.await.unwrap());
        }
        assert_eq!(leaked, 0);
        assert_eq!((USER.get(), STEP.get()), (Some("alice"), None));
    });
}

/// The one-line pattern for tokio's other ways to spawn: a `JoinSet`, a runtime `Handle`.
#[test]
fn join_set_and_handle_spawns_take_the_one_line_pattern() {
    let rt = runtime();
    let handle = rt.handle().clone();
    run(&rt, async move {
        USER.set("alice");
        let mut set = tokio::task::JoinSet::new();
        set.spawn(async { USER.get() }.in_current_context());
        let task = handle.spawn(async { USER.get() }.in_current_context());
        let job = handle.spawn_blocking(Context::current().wrap(|| USER.get()));
        USER.set("bob");
        assert_eq!(set.join_next().await.unwrap().unwrap(), Some("alice"));
        assert_eq!((task.await.unwrap(), job.await.unwrap()), (Some("alice"), Some("alice")));
    });
}
