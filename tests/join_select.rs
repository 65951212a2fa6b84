//! `join!` and `select!` poll their branches inside one task, so the branches share the
//! task's context (unlike `asyncio.gather`, which makes each a task): one branch sees the
//! other's sets, and interleaved `set`/`reset` pairs leave a stale value. Wrapping each branch
//! (`in_current_context()`) gives each its own copy, as asyncio does.

use std::pin::pin;

use contextvars::{ContextVar, FutureExt};
use futures::future::{Either, select};

mod support;
use support::{isolated, yield_now};

static V: ContextVar<u32> = ContextVar::new("v");

async fn set_then_read(value: u32) -> Option<u32> {
    V.set(value);
    yield_now().await;
    V.get()
}

async fn set_then_reset(value: u32) {
    let token = V.set(value);
    yield_now().await;
    V.reset(token).unwrap();
}

#[test]
fn join_branches_share_the_tasks_context() {
    isolated(|| {
        let (a, b) =
            futures::executor::block_on(async { futures::join!(set_then_read(1), set_then_read(2)) });
        assert_eq!((a, b), (Some(2), Some(2)), "branch a reads branch b's value");
        assert_eq!(V.get(), Some(2), "and the last set stays in the task");
    });
}

#[test]
fn wrapped_join_branches_each_have_their_own_copy() {
    isolated(|| {
        let (a, b) = futures::executor::block_on(async {
            futures::join!(set_then_read(1).in_current_context(), set_then_read(2).in_current_context())
        });
        assert_eq!((a, b), (Some(1), Some(2)));
        assert_eq!(V.get(), None, "the branches' sets stay in them");
    });
}

#[test]
fn interleaved_set_reset_pairs_leave_a_stale_value_unless_wrapped() {
    isolated(|| {
        // a sets 1 (was unset), b sets 2 (was 1), a resets to unset, b resets to 1
        futures::executor::block_on(async { futures::join!(set_then_reset(1), set_then_reset(2)) });
        assert_eq!(V.get(), Some(1), "a stale value stays after both resets");
    });
    isolated(|| {
        futures::executor::block_on(async {
            futures::join!(set_then_reset(1).in_current_context(), set_then_reset(2).in_current_context())
        });
        assert_eq!(V.get(), None);
    });
}

/// Sets a value and never completes.
async fn set_and_wait() {
    V.set(1);
    futures::future::pending::<()>().await;
}

/// Reads after the other branch had a poll.
async fn read_later() -> Option<u32> {
    yield_now().await;
    V.get()
}

#[test]
fn select_branches_share_the_tasks_context_unless_wrapped() {
    isolated(|| {
        let shared = futures::executor::block_on(async {
            match select(pin!(set_and_wait()), pin!(read_later())).await {
                Either::Right((seen, _)) => seen,
                Either::Left(_) => unreachable!("the first branch never completes"),
            }
        });
        assert_eq!(shared, Some(1), "the reading branch sees the other branch's set");
    });
    isolated(|| {
        let own = futures::executor::block_on(async {
            let waiting = pin!(set_and_wait().in_current_context());
            let reading = pin!(read_later().in_current_context());
            match select(waiting, reading).await {
                Either::Right((seen, _)) => seen,
                Either::Left(_) => unreachable!("the first branch never completes"),
            }
        });
        assert_eq!(own, None);
        assert_eq!(V.get(), None);
    });
}

#[test]
fn the_select_macro_behaves_the_same() {
    use futures::FutureExt as _;

    isolated(|| {
        let shared = futures::executor::block_on(async {
            futures::select! {
                () = set_and_wait().fuse() => unreachable!("never completes"),
                seen = read_later().fuse() => seen,
            }
        });
        assert_eq!(shared, Some(1));
    });
    isolated(|| {
        let own = futures::executor::block_on(async {
            futures::select! {
                () = set_and_wait().in_current_context().fuse() => unreachable!("never completes"),
                seen = read_later().in_current_context().fuse() => seen,
            }
        });
        assert_eq!(own, None);
    });
}
