//! Variables declared `not_inherited()`: everything that starts a task, job or thread in a copy
//! of the caller's context starts without them, while snapshots and `run` keep them.

use contextvars::{Context, ContextSpawner, ContextVar, FutureExt, with_context};
use futures::executor::LocalPool;
use futures::task::LocalSpawnExt;

mod support;
use support::isolated;

static REQUEST: ContextVar<u32> = ContextVar::new("request");
static CACHE: ContextVar<&str> = ContextVar::new("cache").not_inherited();
static SPAN: ContextVar<u32> = ContextVar::with_default("span", 0).not_inherited();

/// What new work sees: the inherited variable, the two that are not.
fn seen() -> (Option<u32>, Option<&'static str>, Option<u32>) {
    (REQUEST.get(), CACHE.get(), SPAN.get())
}

const INHERITED: (Option<u32>, Option<&str>, Option<u32>) = (Some(1), None, Some(0));
const SNAPSHOT: (Option<u32>, Option<&str>, Option<u32>) = (Some(1), Some("warm"), Some(9));

fn set_all() {
    REQUEST.set(1);
    CACHE.set("warm");
    SPAN.set(9);
}

#[test]
fn snapshots_and_run_keep_them() {
    isolated(|| {
        set_all();
        assert_eq!(seen(), SNAPSHOT);
        let mut snapshot = Context::current();
        assert_eq!(snapshot.run(seen), SNAPSHOT);
        assert_eq!(contextvars::copy_context().run(seen), SNAPSHOT);
        assert_eq!(snapshot.clone().run(seen), SNAPSHOT);
        assert!(!CACHE.is_inherited() && REQUEST.is_inherited());
    });
}

#[test]
fn futures_wrapped_in_the_current_context_start_without_them() {
    isolated(|| {
        set_all();
        assert_eq!(futures::executor::block_on(with_context(async { seen() })), INHERITED);
        assert_eq!(futures::executor::block_on(async { seen() }.in_current_context()), INHERITED);
        // An explicit context is taken as it is, and a scope keeps the snapshot.
        assert_eq!(futures::executor::block_on(async { seen() }.in_context(Context::current())), SNAPSHOT);
        assert_eq!(futures::executor::block_on(REQUEST.scope(1, async { seen() })), SNAPSHOT);
        let mut pool = LocalPool::new();
        let spawner = ContextSpawner::new(pool.spawner());
        let task = spawner.spawn_local_with_handle(async { seen() }).unwrap();
        assert_eq!(pool.run_until(task), INHERITED);
    });
}

#[test]
fn wrapped_closures_and_threads_start_without_them() {
    isolated(|| {
        set_all();
        assert_eq!(Context::current().wrap(seen)(), INHERITED);
        let callback = Context::current().wrap_fn(|()| seen());
        assert_eq!((callback(()), callback(())), (INHERITED, INHERITED));
        assert_eq!(contextvars::thread::spawn(seen).join().unwrap(), INHERITED);
        std::thread::scope(|s| {
            assert_eq!(contextvars::thread::spawn_scoped(s, seen).join().unwrap(), INHERITED);
        });
        let inherited = Context::current().inherited();
        assert_eq!((inherited.len(), inherited.get(&CACHE)), (1, None));
    });
}

#[test]
fn contexts_built_by_hand_leave_them_out_when_inherited() {
    let ctx = Context::new().with_value(&REQUEST, 2).with_value(&CACHE, "x").with_value(&SPAN, 3);
    let inherited = ctx.inherited();
    assert_eq!(
        (inherited.get(&REQUEST), inherited.get(&CACHE), inherited.get(&SPAN)),
        (Some(&2), None, None)
    );
    assert_eq!((ctx.get(&CACHE), ctx.get(&SPAN)), (Some(&"x"), Some(&3)));
    // Nothing to leave out: the same map, shared.
    let plain = Context::new().with_value(&REQUEST, 2);
    assert_eq!(plain.inherited().get(&REQUEST), Some(&2));
}

#[cfg(feature = "tokio")]
#[test]
fn tokio_spawns_start_without_them() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    let (task, job) = rt.block_on(
        async {
            set_all();
            let task = contextvars::tokio::spawn(async { seen() });
            let job = contextvars::tokio::spawn_blocking(seen);
            (task.await.unwrap(), job.await.unwrap())
        }
        .in_context(Context::new()),
    );
    assert_eq!((task, job), (INHERITED, INHERITED));
    let local = tokio::task::LocalSet::new();
    let current = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let seen_locally = local.block_on(&current, async {
        Context::new().run(set_all);
        let mut ctx = Context::new();
        ctx.run(set_all);
        async { contextvars::tokio::spawn_local(async { seen() }).await.unwrap() }.in_context(ctx).await
    });
    assert_eq!(seen_locally, INHERITED);
}

#[cfg(feature = "rayon")]
#[test]
fn rayon_jobs_and_pipelines_start_without_them() {
    use contextvars::rayon::*;
    use rayon::prelude::*;
    isolated(|| {
        set_all();
        let (a, b) = contextvars::rayon::join(seen, seen);
        assert_eq!((a, b), (INHERITED, INHERITED));
        let from_scope = std::sync::Mutex::new(Vec::new());
        contextvars::rayon::scope(|s| {
            from_scope.lock().unwrap().push(seen());
            s.spawn(|_| from_scope.lock().unwrap().push(seen()));
        });
        assert_eq!(from_scope.into_inner().unwrap(), [INHERITED, INHERITED]);
        let all: Vec<_> = (0..100).into_par_iter().in_current_context().map(|_| seen()).collect();
        assert!(all.iter().all(|seen| *seen == INHERITED));
        let (tx, rx) = std::sync::mpsc::channel();
        contextvars::rayon::spawn(move || tx.send(seen()).unwrap());
        assert_eq!(rx.recv().unwrap(), INHERITED);
    });
}

#[cfg(feature = "tower")]
#[test]
fn the_tower_layer_starts_each_request_without_them() {
    use tower::{Layer, Service, ServiceExt};
    isolated(|| {
        set_all();
        let service = tower::service_fn(|()| async { Ok::<_, std::convert::Infallible>(seen()) });
        let mut service = contextvars::tower::ContextLayer::new().layer(service);
        let seen =
            futures::executor::block_on(async { service.ready().await.unwrap().call(()).await.unwrap() });
        assert_eq!(seen, INHERITED);
    });
}
