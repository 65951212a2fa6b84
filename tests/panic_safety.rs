//! Every path that enters a context restores the previous one when a panic unwinds through
//! it: `Context::run`, `ContextVar::scope`, `WithContext::poll` (futures and streams) and the
//! drop of a `WithContext`. And values whose destructors use context variables are dropped
//! safely from each of those paths.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context as TaskContext, Poll, Waker};

mod support;
use support::{isolated, poll_once};

use contextvars::{Context, ContextVar, FutureExt, copy_context};
use futures::stream::Stream;

static V: ContextVar<u32> = ContextVar::new("v");
static OTHER: ContextVar<u32> = ContextVar::new("other");

fn panics(f: impl FnOnce()) -> bool {
    catch_unwind(AssertUnwindSafe(f)).is_err()
}

#[test]
fn run_restores_on_panic() {
    isolated(|| {
        V.set(1);
        let mut ctx = Context::new().with_value(&V, 10);
        assert!(panics(|| ctx.run(|| {
            V.set(11);
            OTHER.set(12);
            panic!("inside run");
        })));
        assert_eq!((V.get(), OTHER.get()), (Some(1), None));
        // the context kept what was set before the panic, and can be entered again
        assert_eq!((ctx.get(&V), ctx.get(&OTHER)), (Some(&11), Some(&12)));
        assert_eq!(ctx.run(|| V.get()), Some(11));
    });
}

#[test]
fn nested_runs_unwind_level_by_level() {
    isolated(|| {
        V.set(1);
        let mut outer = Context::new().with_value(&V, 2);
        let mut inner = Context::new().with_value(&V, 3);
        let seen_in_outer = outer.run(|| {
            assert!(panics(|| inner.run(|| panic!("inner"))));
            V.get()
        });
        assert_eq!(seen_in_outer, Some(2));
        assert_eq!(V.get(), Some(1));
    });
}

#[test]
fn scope_restores_on_panic() {
    isolated(|| {
        V.set(1);
        assert!(panics(|| V.sync_scope(2, || {
            assert_eq!(V.get(), Some(2));
            panic!("inside scope");
        })));
        assert_eq!(V.get(), Some(1));
        assert!(panics(|| OTHER.sync_scope(5, || panic!("unset before"))));
        assert!(!OTHER.is_set(), "a variable unset before the scope is unset after it");
    });
}

/// Sets a value, then panics on its second poll.
struct PanicOnSecondPoll {
    polls: u32,
}

impl Future for PanicOnSecondPoll {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<()> {
        self.polls += 1;
        V.set(100 + self.polls);
        assert!(self.polls < 2, "second poll");
        Poll::Pending
    }
}

impl Stream for PanicOnSecondPoll {
    type Item = u32;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<u32>> {
        self.poll(cx).map(|()| None)
    }
}

#[test]
fn poll_restores_on_panic() {
    isolated(|| {
        V.set(1);
        let mut fut = pin!(PanicOnSecondPoll { polls: 0 }.in_context(Context::new()));
        assert!(poll_once(fut.as_mut()).is_pending());
        assert_eq!(V.get(), Some(1), "the first poll's set stayed in the task");
        assert!(panics(|| {
            let _ = poll_once(fut.as_mut());
        }));
        assert_eq!(V.get(), Some(1), "the panicking poll's set did not leak either");
    });
}

#[test]
fn stream_poll_restores_on_panic() {
    isolated(|| {
        V.set(1);
        let mut stream = pin!(PanicOnSecondPoll { polls: 0 }.in_context(Context::new()));
        let mut cx = TaskContext::from_waker(Waker::noop());
        assert!(stream.as_mut().poll_next(&mut cx).is_pending());
        assert!(panics(|| {
            let _ = stream.as_mut().poll_next(&mut cx);
        }));
        assert_eq!(V.get(), Some(1));
    });
}

/// Panics in its destructor, after checking it runs inside its task's context.
struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        assert_eq!(V.get(), Some(7), "dropped inside the task's context");
        V.set(8);
        panic!("inside drop");
    }
}

#[test]
fn drop_restores_on_panic() {
    isolated(|| {
        V.set(1);
        let guard = PanicOnDrop;
        let fut = async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        };
        let wrapped = fut.in_context(Context::new().with_value(&V, 7));
        let mut boxed = Box::pin(wrapped);
        assert!(poll_once(boxed.as_mut()).is_pending());
        assert!(panics(move || drop(boxed)));
        assert_eq!(V.get(), Some(1));
    });
}

#[test]
fn a_future_is_dropped_inside_its_context() {
    static SEEN_IN_DROP: AtomicUsize = AtomicUsize::new(0);
    struct Probe;
    impl Drop for Probe {
        fn drop(&mut self) {
            SEEN_IN_DROP.store(V.get().unwrap_or(0) as usize, Ordering::SeqCst);
        }
    }
    isolated(|| {
        V.set(1);
        // dropped before ever being polled
        let probe = Probe;
        drop(async move { drop(probe) }.in_context(Context::new().with_value(&V, 5)));
        assert_eq!(SEEN_IN_DROP.load(Ordering::SeqCst), 5);
        // dropped after a poll that set a value of its own
        let probe = Probe;
        let mut fut = Box::pin(
            async move {
                let _probe = probe;
                V.set(6);
                std::future::pending::<()>().await;
            }
            .in_context(Context::new()),
        );
        assert!(poll_once(fut.as_mut()).is_pending());
        drop(fut);
        assert_eq!(SEEN_IN_DROP.load(Ordering::SeqCst), 6);
        assert_eq!(V.get(), Some(1));
    });
}

/// Counts its drops, and reads and sets context variables while being dropped.
struct Reentrant<'a>(&'a AtomicUsize);

impl Drop for Reentrant<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
        let before = OTHER.get();
        let token = OTHER.set(before.unwrap_or(0) + 1);
        let _ = copy_context();
        let _ = OTHER.reset(token);
        let mut ctx = Context::new();
        ctx.run(|| OTHER.set(1));
    }
}

static REENTRANT: ContextVar<Reentrant<'static>> = ContextVar::new("reentrant");

#[test]
fn destructors_may_use_context_variables_on_every_path() {
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    let value = || Reentrant(&DROPS);
    isolated(|| {
        // overwritten by a set: the old value goes to the token, dropped with it
        let t = REENTRANT.set(value());
        REENTRANT.set(value());
        assert_eq!(DROPS.load(Ordering::SeqCst), 1);
        // removed by a reset
        REENTRANT.reset(t).unwrap();
        assert_eq!(DROPS.load(Ordering::SeqCst), 2);
        drop(REENTRANT.set(value()));
        assert_eq!(DROPS.load(Ordering::SeqCst), 2, "the token of a first set holds no value");

        // a context dropped after run
        let mut ctx = Context::new();
        ctx.run(|| REENTRANT.set(value()));
        drop(ctx);
        assert_eq!(DROPS.load(Ordering::SeqCst), 3);

        // a scope's value, displaced when a panic unwinds through it
        assert!(panics(|| REENTRANT.sync_scope(value(), || panic!("unwind"))));
        assert_eq!(DROPS.load(Ordering::SeqCst), 4);

        // a wrapped future that set a value and is dropped
        let mut fut = Box::pin(
            async {
                REENTRANT.set(value());
                std::future::pending::<()>().await;
            }
            .in_context(Context::new()),
        );
        assert!(poll_once(fut.as_mut()).is_pending());
        drop(fut);
        assert_eq!(DROPS.load(Ordering::SeqCst), 5);
    });
    // leaving `isolated` drops its context, and the value still set in it
    assert_eq!(DROPS.load(Ordering::SeqCst), 6);
    assert_eq!(OTHER.get(), None);
}

#[test]
fn a_clone_impl_that_sets_then_panics_leaves_the_context_usable() {
    struct SetsOnClone;
    impl Clone for SetsOnClone {
        fn clone(&self) -> Self {
            OTHER.set(1);
            panic!("clone failed");
        }
    }
    static BAD: ContextVar<SetsOnClone> = ContextVar::new("bad");
    isolated(|| {
        BAD.set(SetsOnClone);
        let err = catch_unwind(|| BAD.get().map(|_| ())).unwrap_err();
        assert_eq!(err.downcast_ref::<&str>().copied(), Some("clone failed"));
        // the set made before the panic stays, and the context still works
        assert_eq!(OTHER.get(), Some(1));
        assert!(BAD.with(|v| v.is_some()));
        V.set(3);
        assert_eq!(V.get(), Some(3));
    });
}

#[test]
fn a_clone_impl_may_read_with_with_while_get_clones_it() {
    #[derive(Debug, PartialEq)]
    struct ReadsOnClone(Option<u32>);
    impl Clone for ReadsOnClone {
        #[allow(
            clippy::redundant_closure_for_method_calls,
            reason = "`Option::copied` as a path does not meet `with`'s higher-ranked bound"
        )]
        fn clone(&self) -> Self {
            // what a log line emitted from a `Clone` impl does to show the current trace
            ReadsOnClone(V.with(|v| v.copied()))
        }
    }
    static READER: ContextVar<ReadsOnClone> = ContextVar::new("reader");
    isolated(|| {
        V.set(4); // unshared: `with` reads it in place while `get` is lending another value
        READER.set(ReadsOnClone(None));
        assert_eq!(READER.get(), Some(ReadsOnClone(Some(4))));
        let mut ctx = copy_context(); // shared with the snapshot: read the same way
        assert_eq!(ctx.run(|| READER.get()), Some(ReadsOnClone(Some(4))));
    });
}
