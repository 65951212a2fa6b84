//! The check of the clippy recipe, `examples/clippy.toml` (run by `scripts/clippy_recipe.sh`,
//! with the recipe as this crate's clippy.toml): [`listed`] calls every method the recipe
//! lists, once, each call on a line that ends with `// flagged: <the path in the recipe>`;
//! clippy must flag each of them. [`replacements`] does the same things the way the recipe's
//! reasons say, and clippy must say nothing about it: the crate's functions pass, and each
//! `#[expect]` is met (a recipe line that stopped matching leaves its expectation unmet).

use contextvars::{Context, FutureExt};

/// Every method of the recipe, called once.
pub fn listed(
    runtime: &tokio::runtime::Runtime,
    handle: &tokio::runtime::Handle,
    set: &mut tokio::task::JoinSet<()>,
    local: &tokio::task::LocalSet,
    pool: &rayon::ThreadPool,
) {
    // tokio
    tokio::spawn(async {}); // flagged: tokio::spawn
    tokio::task::spawn_blocking(|| {}); // flagged: tokio::task::spawn_blocking
    tokio::task::spawn_local(async {}); // flagged: tokio::task::spawn_local
    handle.spawn(async {}); // flagged: tokio::runtime::Handle::spawn
    handle.spawn_blocking(|| {}); // flagged: tokio::runtime::Handle::spawn_blocking
    runtime.spawn(async {}); // flagged: tokio::runtime::Runtime::spawn
    runtime.spawn_blocking(|| {}); // flagged: tokio::runtime::Runtime::spawn_blocking
    set.spawn(async {}); // flagged: tokio::task::JoinSet::spawn
    set.spawn_blocking(|| {}); // flagged: tokio::task::JoinSet::spawn_blocking
    set.spawn_local(async {}); // flagged: tokio::task::JoinSet::spawn_local
    local.spawn_local(async {}); // flagged: tokio::task::LocalSet::spawn_local

    // std
    std::thread::spawn(|| {}); // flagged: std::thread::spawn
    let _ = std::thread::Builder::new().spawn(|| {}); // flagged: std::thread::Builder::spawn
    std::thread::scope(|s| {
        s.spawn(|| {}); // flagged: std::thread::Scope::spawn
    });

    // rayon
    rayon::spawn(|| {}); // flagged: rayon::spawn
    rayon::spawn_fifo(|| {}); // flagged: rayon::spawn_fifo
    rayon::join(|| {}, || {}); // flagged: rayon::join
    rayon::join_context(|_| {}, |_| {}); // flagged: rayon::join_context
    rayon::scope(|_| {}); // flagged: rayon::scope
    rayon::scope_fifo(|_| {}); // flagged: rayon::scope_fifo
    rayon::in_place_scope(|_| {}); // flagged: rayon::in_place_scope
    pool.spawn(|| {}); // flagged: rayon::ThreadPool::spawn
    pool.install(|| {}); // flagged: rayon::ThreadPool::install
    pool.join(|| {}, || {}); // flagged: rayon::ThreadPool::join
    pool.scope(|_| {}); // flagged: rayon::ThreadPool::scope
}

/// The same, as the recipe's reasons say: clippy must report nothing here.
pub fn replacements(
    runtime: &tokio::runtime::Runtime,
    handle: &tokio::runtime::Handle,
    set: &mut tokio::task::JoinSet<()>,
    local: &tokio::task::LocalSet,
    pool: &rayon::ThreadPool,
) {
    // tokio
    contextvars::tokio::spawn(async {});
    contextvars::tokio::spawn_blocking(|| {});
    contextvars::tokio::spawn_local(async {});
    #[expect(clippy::disallowed_methods, reason = "runs in the caller's context")]
    handle.spawn(async {}.in_current_context());
    #[expect(clippy::disallowed_methods, reason = "runs in the caller's context")]
    handle.spawn_blocking(Context::current().wrap(|| {}));
    #[expect(clippy::disallowed_methods, reason = "runs in the caller's context")]
    runtime.spawn(async {}.in_current_context());
    #[expect(clippy::disallowed_methods, reason = "runs in the caller's context")]
    runtime.spawn_blocking(Context::current().wrap(|| {}));
    #[expect(clippy::disallowed_methods, reason = "runs in the caller's context")]
    set.spawn(async {}.in_current_context());
    #[expect(clippy::disallowed_methods, reason = "runs in the caller's context")]
    set.spawn_blocking(Context::current().wrap(|| {}));
    #[expect(clippy::disallowed_methods, reason = "runs in the caller's context")]
    set.spawn_local(async {}.in_current_context());
    #[expect(clippy::disallowed_methods, reason = "runs in the caller's context")]
    local.spawn_local(async {}.in_current_context());

    // std
    contextvars::thread::spawn(|| {});
    #[expect(clippy::disallowed_methods, reason = "runs in the caller's context")]
    let _ = std::thread::Builder::new().spawn(Context::current().wrap(|| {}));
    std::thread::scope(|s| {
        contextvars::thread::spawn_scoped(s, || {});
    });

    // rayon
    contextvars::rayon::spawn(|| {});
    #[expect(clippy::disallowed_methods, reason = "runs in the caller's context")]
    rayon::spawn_fifo(Context::current().wrap(|| {}));
    contextvars::rayon::join(|| {}, || {});
    let (mut a, mut b) = (Context::current(), Context::current());
    #[expect(clippy::disallowed_methods, reason = "runs in the caller's context")]
    rayon::join_context(move |_| a.run(|| {}), move |_| b.run(|| {}));
    contextvars::rayon::scope(|s| s.spawn(|_| {}));
    let mut context = Context::current();
    #[expect(clippy::disallowed_methods, reason = "runs in the caller's context")]
    rayon::scope_fifo(move |s| {
        context.run(|| {
            let mut job = Context::current();
            s.spawn_fifo(move |_| job.run(|| {}));
        });
    });
    #[expect(clippy::disallowed_methods, reason = "runs in the caller's context")]
    rayon::in_place_scope(|s| {
        let mut job = Context::current();
        s.spawn(move |_| job.run(|| {}));
    });
    #[expect(clippy::disallowed_methods, reason = "runs in the caller's context")]
    pool.spawn(Context::current().wrap(|| {}));
    #[expect(clippy::disallowed_methods, reason = "runs in the caller's context")]
    pool.install(Context::current().wrap(|| {}));
    #[expect(clippy::disallowed_methods, reason = "runs in the caller's context")]
    pool.install(Context::current().wrap(|| contextvars::rayon::join(|| {}, || {})));
    #[expect(clippy::disallowed_methods, reason = "runs in the caller's context")]
    pool.install(Context::current().wrap(|| contextvars::rayon::scope(|s| s.spawn(|_| {}))));
}
