//! The enter and leave path of tokio's task hooks, under Miri: a current-thread runtime with
//! the four hooks of `contextvars::tokio::task_contexts`, tasks that set, read, yield, spawn,
//! panic and are aborted, and hooks of one's own that read a variable around the crate's
//! hooks (a read lending a reference while a hook moves the map it lends from).
#![cfg(tokio_unstable)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use contextvars::tokio::{
    on_after_task_poll, on_before_task_poll, on_task_spawn, on_task_terminate, task_contexts,
};
use contextvars::{Context, ContextVar};
use tokio::runtime::Builder;

static USER: ContextVar<String> = ContextVar::new("user");
static DEPTH: ContextVar<u32> = ContextVar::new("depth");

#[test]
fn tasks_inherit_keep_their_sets_and_leave_the_thread_clean() {
    let rt = task_contexts(&mut Builder::new_current_thread()).build().unwrap();
    let seen = rt.block_on(async {
        USER.set("root".to_string());
        let parent = tokio::spawn(async {
            let inherited = USER.get();
            USER.set("parent".to_string());
            tokio::task::yield_now().await;
            let child = tokio::spawn(async {
                let seen = USER.get();
                USER.set("child".to_string());
                tokio::task::yield_now().await;
                (seen, USER.get())
            });
            let child = child.await.unwrap();
            (inherited, USER.get(), child)
        });
        let seen = parent.await.unwrap();
        (seen, USER.get())
    });
    assert_eq!(
        seen,
        (
            (
                Some("root".to_string()),
                Some("parent".to_string()),
                (Some("parent".to_string()), Some("child".to_string()))
            ),
            Some("root".to_string())
        )
    );
    drop(rt);
    // The future of `block_on` is no task: its set stays in the thread's own context, which
    // no task's set reached.
    assert_eq!(USER.get().as_deref(), Some("root"));
}

#[test]
fn a_panicking_task_and_an_aborted_one_leave_the_next_task_clean() {
    let rt = task_contexts(&mut Builder::new_current_thread()).build().unwrap();
    rt.block_on(async {
        let panicked = tokio::spawn(async {
            USER.set("doomed".to_string());
            panic!("injected");
        });
        assert!(panicked.await.unwrap_err().is_panic());
        let aborted = tokio::spawn(async {
            USER.set("aborted".to_string());
            std::future::pending::<()>().await;
        });
        tokio::task::yield_now().await;
        aborted.abort();
        assert!(aborted.await.unwrap_err().is_cancelled());
        let next = tokio::spawn(async { USER.get() }).await.unwrap();
        assert_eq!(next, None);
    });
}

/// Hooks of one's own that call the crate's from inside a read: the read lends a reference
/// into the map that the before-poll hook moves out of the current context, and the
/// after-poll hook moves back; the lent value must stay valid and unchanged throughout.
#[test]
fn hooks_called_from_inside_a_read_keep_the_lent_value_valid() {
    let polls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&polls);
    let rt = Builder::new_current_thread()
        .on_task_spawn(on_task_spawn)
        .on_before_task_poll(move |meta| {
            counter.fetch_add(1, Ordering::Relaxed);
            USER.with(|lent| {
                let before = lent.cloned();
                on_before_task_poll(meta);
                // Inside the task's context now: change it while the read still lends.
                DEPTH.set(DEPTH.get().unwrap_or(0) + 1);
                assert_eq!(lent.cloned(), before);
            });
        })
        .on_after_task_poll(|meta| {
            USER.with(|lent| {
                let before = lent.cloned();
                on_after_task_poll(meta);
                USER.set("after".to_string());
                assert_eq!(lent.cloned(), before);
            });
        })
        .on_task_terminate(on_task_terminate)
        .build()
        .unwrap();
    let mut outer = Context::new();
    outer.run(|| USER.set("outer".to_string()));
    let depth = outer.run(|| {
        rt.block_on(async {
            tokio::spawn(async {
                USER.set("task".to_string());
                tokio::task::yield_now().await;
                tokio::task::yield_now().await;
                DEPTH.get()
            })
            .await
            .unwrap()
        })
    });
    assert!(depth.is_some_and(|depth| depth >= 3), "every poll's hook counted, got {depth:?}");
    assert!(polls.load(Ordering::Relaxed) >= 3);
}
