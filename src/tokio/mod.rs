//! Tokio's spawning functions, each task or job starting in a snapshot of the caller's context
//! (feature `tokio`).
//!
//! `tokio::spawn` starts a task with nothing: the task reads whatever context is current on
//! the worker thread that polls it. These functions take a snapshot of the caller's context
//! at the call, O(1), and run the task (every poll, and its drop) or the blocking job in it,
//! the way asyncio copies the context into a new task. Sets made by the task stay in the task.
//!
//! Built with `RUSTFLAGS="--cfg tokio_unstable"`, `task_contexts` does the same for every
//! task of a runtime with no wrapper at all, through tokio's task hooks: `tokio::spawn`,
//! `JoinSet::spawn`, `Handle::spawn` and the tasks libraries spawn all inherit. `LocalSet`
//! tasks and `spawn_blocking` jobs are not covered by those hooks: [`spawn_local`] and
//! [`spawn_blocking`] remain the way to start them in the caller's context.
//!
//! Other ways to spawn take the one-line pattern these functions are made of:
//! `set.spawn(future.in_current_context())` for a `JoinSet`,
//! `handle.spawn(future.in_current_context())` for a runtime `Handle`,
//! `Context::current().wrap(job)` for a blocking job.
//!
//! The clippy recipe of [`lints`](crate::lints) flags every call to tokio's spawning
//! functions and methods, naming what to call instead.
//!
//! # Examples
//!
//! ```
//! use contextvars::ContextVar;
//!
//! static REQUEST: ContextVar<u64> = ContextVar::new("request");
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(contextvars::with_context(async {
//! REQUEST.set(7);
//! let task = contextvars::tokio::spawn(async { REQUEST.get() });
//! let job = contextvars::tokio::spawn_blocking(|| REQUEST.get());
//! assert_eq!((task.await.unwrap(), job.await.unwrap()), (Some(7), Some(7)));
//! # }));
//! ```

pub(crate) mod leak;
#[cfg(tokio_unstable)]
mod task_contexts;

use std::future::Future;

use ::tokio::task::JoinHandle;

pub use self::leak::{Leak, reset_leak_hook, set_leak_hook};
#[cfg(tokio_unstable)]
pub use self::task_contexts::{
    on_after_task_poll, on_before_task_poll, on_task_spawn, on_task_terminate, task_contexts,
};
use crate::{Context, FutureExt};

/// [`tokio::spawn`], with the task running in a snapshot of the caller's
/// context.
///
/// # Examples
///
/// ```
/// use contextvars::ContextVar;
///
/// static USER: ContextVar<&str> = ContextVar::new("user");
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(contextvars::with_context(async {
/// USER.set("alice");
/// let task = contextvars::tokio::spawn(async {
///     let seen = USER.get();
///     USER.set("bob"); // stays in the task
///     seen
/// });
/// assert_eq!(task.await.unwrap(), Some("alice"));
/// assert_eq!(USER.get(), Some("alice"));
/// # }));
/// ```
///
/// # Panics
///
/// As [`tokio::spawn`]: when called outside a Tokio runtime.
#[track_caller]
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    ::tokio::task::spawn(future.in_current_context())
}

/// [`tokio::task::spawn_local`], with the task running in a
/// snapshot of the caller's context.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use contextvars::ContextVar;
///
/// static USER: ContextVar<&str> = ContextVar::new("user");
///
/// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// let local = tokio::task::LocalSet::new();
/// local.block_on(&rt, contextvars::with_context(async {
///     USER.set("alice");
///     let not_send = Rc::new(1);
///     let task = contextvars::tokio::spawn_local(async move { (USER.get(), *not_send) });
///     assert_eq!(task.await.unwrap(), (Some("alice"), 1));
/// }));
/// ```
///
/// # Panics
///
/// As [`tokio::task::spawn_local`]: when called outside a
/// `LocalSet` or a local runtime.
#[track_caller]
pub fn spawn_local<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    ::tokio::task::spawn_local(future.in_current_context())
}

/// [`tokio::task::spawn_blocking`], with the job running in a
/// snapshot of the caller's context.
///
/// # Examples
///
/// ```
/// use contextvars::ContextVar;
///
/// static USER: ContextVar<&str> = ContextVar::new("user");
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(contextvars::with_context(async {
/// USER.set("alice");
/// let job = contextvars::tokio::spawn_blocking(|| USER.get());
/// assert_eq!(job.await.unwrap(), Some("alice"));
/// # }));
/// ```
///
/// # Panics
///
/// As [`tokio::task::spawn_blocking`]: when called outside a
/// Tokio runtime.
#[track_caller]
pub fn spawn_blocking<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    ::tokio::task::spawn_blocking(Context::current().wrap(f))
}
