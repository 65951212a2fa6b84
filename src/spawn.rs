//! [`ContextSpawner`]: a `futures` spawner whose tasks start in the spawner's context.

use futures_task::{FutureObj, LocalFutureObj, LocalSpawn, Spawn, SpawnError};

use crate::with_context;

/// Wraps any [`Spawn`] or [`LocalSpawn`] (a `futures` thread pool, a `LocalPool`'s spawner,
/// …) so that every task it spawns runs in a snapshot of the context current at the spawn
/// call, the way asyncio tasks copy the context when they are created.
///
/// # Examples
///
/// ```
/// use contextvars::{ContextSpawner, ContextVar};
/// use futures::executor::LocalPool;
/// use futures::task::LocalSpawnExt;
///
/// static USER: ContextVar<&str> = ContextVar::new("user");
///
/// let mut pool = LocalPool::new();
/// let spawner = ContextSpawner::new(pool.spawner());
///
/// USER.set("alice");
/// let seen = spawner.spawn_local_with_handle(async { USER.get() }).unwrap();
/// USER.set("bob");
/// assert_eq!(pool.run_until(seen), Some("alice"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct ContextSpawner<S> {
    inner: S,
}

impl<S> ContextSpawner<S> {
    /// Wraps `inner`.
    #[must_use]
    pub const fn new(inner: S) -> Self {
        Self { inner }
    }

    /// The wrapped spawner.
    #[must_use]
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Unwraps the spawner.
    #[must_use]
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Spawn> Spawn for ContextSpawner<S> {
    fn spawn_obj(&self, future: FutureObj<'static, ()>) -> Result<(), SpawnError> {
        self.inner.spawn_obj(FutureObj::new(Box::new(with_context(future))))
    }

    fn status(&self) -> Result<(), SpawnError> {
        self.inner.status()
    }
}

impl<S: LocalSpawn> LocalSpawn for ContextSpawner<S> {
    fn spawn_local_obj(&self, future: LocalFutureObj<'static, ()>) -> Result<(), SpawnError> {
        self.inner.spawn_local_obj(LocalFutureObj::new(Box::new(with_context(future))))
    }

    fn status_local(&self) -> Result<(), SpawnError> {
        self.inner.status_local()
    }
}
