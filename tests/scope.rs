//! `ContextVar::scope`: a value for the length of a future, on any executor, as tokio's
//! `LocalKey::scope`; and `ContextVar::sync_scope`, its twin for a closure.

use contextvars::{Context, ContextVar, FutureExt, with_context};

mod support;
use support::{isolated, yield_now};

static V: ContextVar<u32> = ContextVar::new("v");
static OTHER: ContextVar<&str> = ContextVar::new("other");

#[test]
fn context_with_value_is_not_taken_over_by_the_extension_trait() {
    // `FutureExt` is in scope (imported above) and implemented for every type, `Context`
    // included: an owned `Context` must still get `Context::with_value`.
    let owned: Context = Context::current().with_value(&V, 1);
    assert_eq!(owned.get(&V), Some(&1));
    let base = Context::new();
    let borrowed: Context = base.with_value(&V, 2);
    assert_eq!((base.get(&V), borrowed.get(&V)), (None, Some(&2)));
    let chained: Context = Context::new().with_value(&V, 3).with_value(&OTHER, "x");
    assert_eq!((chained.get(&V), chained.get(&OTHER)), (Some(&3), Some(&"x")));
    let wrapped = async { V.get() }.in_context(chained);
    assert_eq!(futures::executor::block_on(wrapped), Some(3));
}

#[test]
fn the_value_holds_across_awaits_and_stays_inside() {
    isolated(|| {
        OTHER.set("outer");
        V.set(1);
        let fut = V.scope(5, async {
            let first = V.get();
            yield_now().await;
            V.set(V.get().unwrap() + 10); // stays inside
            yield_now().await;
            (first, V.get(), OTHER.get())
        });
        V.set(2); // after the snapshot: not seen
        let seen = futures::executor::block_on(fut);
        assert_eq!(seen, (Some(5), Some(15), Some("outer")));
        assert_eq!(V.get(), Some(2));
    });
}

#[test]
fn sync_scope_holds_for_the_closure_and_scope_for_the_future() {
    isolated(|| {
        assert_eq!(V.sync_scope(5, || V.get()), Some(5));
        let kept = futures::executor::block_on(V.scope(5, async { V.get() }));
        assert_eq!(kept, Some(5));
        assert_eq!(V.get(), None);
    });
}

#[test]
fn nested_scopes() {
    isolated(|| {
        let fut = V.scope(1, async {
            let outer = V.get();
            let inner = V.scope(2, async { V.get() }).await;
            (outer, inner, V.get())
        });
        assert_eq!(futures::executor::block_on(fut), (Some(1), Some(2), Some(1)));
        // a future already wrapped keeps its own snapshot: taken at its wrap, before the value
        let wrapped_first = V.scope(3, with_context(async { V.get() }));
        assert_eq!(futures::executor::block_on(wrapped_first), None);
    });
}

#[test]
fn tokio_tasks_each_see_their_own_value() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    let wrong = rt.block_on(async {
        let tasks: Vec<_> = (0..500u32)
            .map(|i| {
                tokio::spawn(V.scope(i, async move {
                    let mut wrong = 0;
                    for _ in 0..3 {
                        tokio::task::yield_now().await;
                        wrong += usize::from(V.get() != Some(i));
                    }
                    wrong
                }))
            })
            .collect();
        let mut wrong = 0;
        for task in tasks {
            wrong += task.await.unwrap();
        }
        wrong
    });
    assert_eq!(wrong, 0);
}
