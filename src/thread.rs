//! Threads that start in a snapshot of the spawner's context.
//!
//! A thread started with [`std::thread::spawn`] starts with an empty context. The functions
//! here take a snapshot of the caller's context first, the way a new asyncio task copies it.

use std::thread::{JoinHandle, Scope, ScopedJoinHandle};

use crate::Context;

/// [`std::thread::spawn`], with the new thread starting in a snapshot of the caller's context.
///
/// Changes the thread makes stay in the thread.
///
/// # Examples
///
/// ```
/// use contextvars::ContextVar;
///
/// static USER: ContextVar<&str> = ContextVar::new("user");
///
/// USER.set("alice");
/// let inherited = contextvars::thread::spawn(|| USER.get()).join().unwrap();
/// let plain = std::thread::spawn(|| USER.get()).join().unwrap();
/// assert_eq!((inherited, plain), (Some("alice"), None));
/// ```
///
/// # Panics
///
/// As [`std::thread::spawn`]: if the operating system cannot create a thread.
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    std::thread::spawn(Context::current().wrap(f))
}

/// [`Scope::spawn`], with the new thread starting in a snapshot of the caller's context.
///
/// # Examples
///
/// ```
/// use contextvars::ContextVar;
///
/// static USER: ContextVar<&str> = ContextVar::new("user");
///
/// USER.set("alice");
/// std::thread::scope(|s| {
///     let seen = contextvars::thread::spawn_scoped(s, || USER.get());
///     assert_eq!(seen.join().unwrap(), Some("alice"));
/// });
/// ```
///
/// # Panics
///
/// As [`Scope::spawn`]: if the operating system cannot create a thread.
pub fn spawn_scoped<'scope, F, T>(scope: &'scope Scope<'scope, '_>, f: F) -> ScopedJoinHandle<'scope, T>
where
    F: FnOnce() -> T + Send + 'scope,
    T: Send + 'scope,
{
    scope.spawn(Context::current().wrap(f))
}
