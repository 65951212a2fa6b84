//! `WithContext` as a wrapper: the inner future is dropped inside its context as soon as it
//! completes, a poll after completion is a loud mistake, the accessors, `FusedFuture` and
//! `FusedStream`, and the final context handed back by `and_context`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex};
use std::task::Poll;

use contextvars::{Context, ContextVar, FutureExt};
use futures::future::{FusedFuture, FutureExt as _};
use futures::stream::{self, FusedStream, Stream, StreamExt};

mod support;
use support::{isolated, poll_once, yield_now};

static V: ContextVar<u32> = ContextVar::new("v");

/// Records, when dropped, the value of `V` it saw then.
struct Witness {
    seen: Arc<Mutex<Vec<Option<u32>>>>,
}

impl Drop for Witness {
    fn drop(&mut self) {
        self.seen.lock().unwrap().push(V.get());
    }
}

#[test]
fn the_inner_future_is_dropped_inside_its_context_as_soon_as_it_completes() {
    isolated(|| {
        V.set(1);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let witness = Witness { seen: Arc::clone(&seen) };
        let mut task = pin!(V.scope(2, async move {
            let _witness = witness;
            yield_now().await;
            V.set(7);
            3
        }));
        assert!(poll_once(task.as_mut()).is_pending());
        assert!(seen.lock().unwrap().is_empty());
        assert_eq!(poll_once(task.as_mut()), Poll::Ready(3));
        // dropped on completion, not when the wrapper goes, and inside the task's context
        assert_eq!(*seen.lock().unwrap(), [Some(7)]);
        assert!(task.as_mut().get_pin_mut().is_none());
        assert_eq!(V.get(), Some(1));
    });
}

#[test]
fn a_poll_after_completion_panics_naming_the_mistake() {
    isolated(|| {
        V.set(1);
        let mut task = pin!(
            async {
                V.set(5);
            }
            .in_current_context()
        );
        assert_eq!(poll_once(task.as_mut()), Poll::Ready(()));
        let panic = catch_unwind(AssertUnwindSafe(|| poll_once(task.as_mut()))).unwrap_err();
        let message = panic.downcast_ref::<&str>().copied().unwrap_or_default();
        assert!(message.contains("polled after its future completed"), "{message}");
        assert!(message.contains("fuse"), "{message}");
        assert_eq!(V.get(), Some(1), "the caller's context is intact");
        // `and_context` says the same
        let mut task = pin!(async {}.in_current_context().and_context());
        assert!(poll_once(task.as_mut()).is_ready());
        let panic = catch_unwind(AssertUnwindSafe(|| poll_once(task.as_mut()))).unwrap_err();
        assert!(panic.downcast_ref::<&str>().unwrap().contains("polled after its future completed"));
    });
}

#[test]
fn a_fused_wrapper_is_safe_to_poll_after_completion() {
    let mut task = pin!(async { 1 }.in_current_context().fuse());
    assert_eq!(poll_once(task.as_mut()), Poll::Ready(1));
    assert!(task.is_terminated());
    assert!(poll_once(task.as_mut()).is_pending());
}

#[test]
fn fused_future_and_fused_stream_stay_honest() {
    let mut task = pin!(futures::future::ready(1).fuse().in_current_context());
    assert!(!task.is_terminated());
    assert_eq!(poll_once(task.as_mut()), Poll::Ready(1));
    assert!(task.is_terminated());

    // a future already terminated before the wrap is terminated inside it too
    let mut done = futures::future::ready(1).fuse();
    assert_eq!(futures::executor::block_on(&mut done), 1);
    assert!(done.in_current_context().is_terminated());

    let mut items = pin!(stream::iter([1, 2]).fuse().in_current_context());
    assert!(!items.is_terminated());
    assert_eq!(Stream::size_hint(&*items), (2, Some(2)));
    let collected: Vec<_> = futures::executor::block_on(items.as_mut().collect());
    assert_eq!(collected, [1, 2]);
    assert!(items.is_terminated());
    // a stream is kept after its end (a stream that is also a sink keeps its sink half), so a
    // fused one goes on answering `None`
    assert!(items.as_mut().get_pin_mut().is_some());
    assert_eq!(poll_once(Pin::new(&mut items.next())), Poll::Ready(None));
}

#[test]
fn select_skips_a_completed_wrapper() {
    let outcome = futures::executor::block_on(async {
        let mut a = pin!(async { 1 }.in_current_context().fuse());
        let mut b = pin!(async { 2 }.in_current_context().fuse());
        let mut total = 0;
        loop {
            futures::select! {
                x = a => total += x,
                y = b => total += y * 10,
                complete => break total,
            }
        }
    });
    assert_eq!(outcome, 21);
}

#[test]
fn accessors_return_the_future_until_it_completes() {
    isolated(|| {
        let mut task = V.scope(1, async { V.get() });
        assert!(task.get_ref().is_some());
        assert!(task.get_mut().is_some());
        assert!(format!("{task:?}").contains("completed: false"));
        let inner = task.into_inner().unwrap();
        assert_eq!(futures::executor::block_on(inner), None, "unwrapped, it runs in the caller's context");

        // `lazy` of a closure is `Unpin`, so the wrapper can be polled without pinning it
        let mut task = V.scope(1, futures::future::lazy(|_| V.get()));
        assert_eq!(poll_once(Pin::new(&mut task)), Poll::Ready(Some(1)));
        assert!(task.get_ref().is_none());
        assert!(format!("{task:?}").contains("completed: true"));
        let (inner, ctx) = task.into_parts();
        assert!(inner.is_none());
        assert_eq!(ctx.get(&V), Some(&1));
    });
}

#[test]
fn into_parts_hands_back_a_context_that_can_be_copied_and_entered() {
    isolated(|| {
        let mut task = Box::pin(async {
            V.set(4);
            yield_now().await;
        })
        .in_context(Context::new());
        assert!(poll_once(Pin::new(&mut task)).is_pending());
        let (inner, mut ctx) = task.into_parts();
        assert!(inner.is_some());
        let copy = ctx.clone();
        assert_eq!((copy.get(&V), ctx.run(|| V.get())), (Some(&4), Some(4)));
    });
}

/// Python's `create_task(coro, context=ctx)`: the task's sets end up in the context.
#[test]
fn and_context_returns_the_final_context() {
    isolated(|| {
        V.set(1);
        let task = async {
            let before = V.get();
            V.set(2);
            yield_now().await;
            V.set(V.get().unwrap() * 10);
            before
        };
        let (before, ctx) = futures::executor::block_on(task.in_current_context().and_context());
        assert_eq!((before, ctx.get(&V)), (Some(1), Some(&20)));
        assert_eq!(V.get(), Some(1));
        // the final context is an ordinary context: copy it, enter it, build on it
        let mut again = ctx.clone();
        assert_eq!(again.run(|| V.get()), Some(20));
        let next = futures::executor::block_on(async { V.get() }.in_context(ctx).and_context());
        assert_eq!(next.0, Some(20));
    });
}

#[test]
fn and_context_on_real_executors() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    let wrong = rt.block_on(async {
        let tasks: Vec<_> = (0..200u32)
            .map(|i| {
                tokio::spawn(
                    V.scope(i, async move {
                        tokio::task::yield_now().await;
                        V.set(V.get().unwrap() + 1000);
                    })
                    .and_context(),
                )
            })
            .collect();
        let mut wrong = 0;
        for (i, task) in (0..).zip(tasks) {
            let ((), ctx) = task.await.unwrap();
            wrong += usize::from(ctx.get(&V) != Some(&(i + 1000)));
        }
        wrong
    });
    assert_eq!(wrong, 0);
}

/// Panics when dropped.
struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        V.set(99);
        panic!("dropped");
    }
}

#[test]
fn a_destructor_panicking_at_completion_restores_the_callers_context() {
    isolated(|| {
        V.set(1);
        let guard = PanicOnDrop;
        let mut task = pin!(V.scope(2, async move {
            let _guard = guard;
            yield_now().await;
        }));
        assert!(poll_once(task.as_mut()).is_pending());
        assert!(catch_unwind(AssertUnwindSafe(|| poll_once(task.as_mut()))).is_err());
        assert_eq!(V.get(), Some(1));
    });
}
