//! Threads: starting them in the caller's context, and marking executor workers.
//!
//! # Threads
//!
//! A thread started with [`std::thread::spawn`] starts with an empty context; [`spawn`] and
//! [`spawn_scoped`] start it in a snapshot of the caller's, the way a new asyncio task copies
//! it. A thread pool of any kind takes the same snapshot by hand:
//! [`Context::current().wrap(job)`](Context::wrap) for a job run once,
//! [`Context::current().wrap_fn(f)`](Context::wrap_fn) for a callback called many times,
//! each call in its own copy.
//!
//! ```
//! use contextvars::{Context, ContextVar};
//!
//! static USER: ContextVar<&str> = ContextVar::new("user");
//!
//! USER.set("alice");
//! let inherited = contextvars::thread::spawn(|| USER.get());
//! let wrapped = std::thread::spawn(Context::current().wrap(|| USER.get()));
//! let plain = std::thread::spawn(|| USER.get());
//! assert_eq!(inherited.join().unwrap(), Some("alice"));
//! assert_eq!(wrapped.join().unwrap(), Some("alice"));
//! assert_eq!(plain.join().unwrap(), None);
//! ```
//!
//! # Marking executor workers
//!
//! An executor's worker thread polls many tasks. A task that nobody wrapped in a context of
//! its own runs in the *thread's* context, so a `set` there leaks into every task the thread
//! polls next: the `threading.local()` bug context variables exist to remove. Call
//! [`mark_worker`] at the start of every worker thread, and such a `set` panics with a
//! message naming the fix instead of leaking. [`ContextVar::sync_scope`],
//! [`ContextVar::scope`], [`Context::run`] and wrapped tasks keep working on a marked thread.
//!
//! | executor | where to call it |
//! |---|---|
//! | tokio | `Builder::on_thread_start(contextvars::thread::mark_worker)` |
//! | rayon | `ThreadPoolBuilder::start_handler(\|_\| contextvars::thread::mark_worker())` |
//! | futures' `ThreadPool` | `ThreadPool::builder().after_start(\|_\| contextvars::thread::mark_worker())` |
//! | smol, async-executor, a hand-made executor | first thing in each thread you start to run it |
//!
//! ```
//! use contextvars::{Context, ContextVar};
//!
//! static JOB: ContextVar<u32> = ContextVar::new("job");
//!
//! let pool = rayon::ThreadPoolBuilder::new()
//!     .num_threads(2)
//!     .start_handler(|_| contextvars::thread::mark_worker())
//!     .build()
//!     .unwrap();
//! // A job that sets in the worker's own context panics, naming the fix.
//! assert!(pool.install(|| std::panic::catch_unwind(|| JOB.set(1))).is_err());
//! // Wrapped, the job has a context of its own.
//! assert_eq!(pool.install(Context::new().wrap(|| { JOB.set(2); JOB.get() })), Some(2));
//! ```
//!
//! On tokio, the `tokio` feature already keeps such a value from every other task (see
//! `contextvars::tokio`); marking the workers there turns the mistake into a panic at the
//! `set`, which suits development and tests. [`mark_worker_warn_only`] prints a warning with
//! the caller's location instead of panicking, to migrate a code base one call site at a
//! time; [`unmark_worker`], [`is_worker`] and [`in_context`] complete the set.
//!
//! The clippy recipe of [`lints`](crate::lints) flags every call to `std::thread::spawn`,
//! `Builder::spawn` and `Scope::spawn`, naming what to call instead.
//!
//! [`ContextVar::sync_scope`]: crate::ContextVar::sync_scope
//! [`ContextVar::scope`]: crate::ContextVar::scope

use std::thread::{JoinHandle, Scope, ScopedJoinHandle};

use crate::Context;
use crate::current::{self, WARN_ONLY, WORKER};

/// Marks the calling thread as an executor worker: from now on, [`ContextVar::set`] on it
/// outside an entered context (no [`Context::run`], no [`WithContext`] poll) panics with a
/// message naming the fix, because the value would leak into every task the thread polls
/// next. [`ContextVar::scope`] and everything inside an entered context keep working.
///
/// For `tokio::runtime::Builder::on_thread_start`, rayon's `start_handler`, and the threads a
/// user starts for smol, async-executor or a hand-made executor.
///
/// [`ContextVar::set`]: crate::ContextVar::set
/// [`ContextVar::scope`]: crate::ContextVar::scope
/// [`Context::run`]: crate::Context::run
/// [`WithContext`]: crate::WithContext
///
/// # Examples
///
/// ```
/// use contextvars::{Context, ContextVar};
///
/// static TENANT: ContextVar<u32> = ContextVar::new("tenant");
///
/// std::thread::spawn(|| {
///     contextvars::thread::mark_worker();
///     assert!(std::panic::catch_unwind(|| TENANT.set(1)).is_err()); // would leak
///     assert_eq!(TENANT.sync_scope(2, || TENANT.get()), Some(2)); // cannot leak
///     Context::new().run(|| TENANT.set(3)); // a task's own context
///     assert_eq!(TENANT.get(), None);
/// })
/// .join()
/// .unwrap();
/// ```
pub fn mark_worker() {
    current::set_flag(WORKER, true);
    current::set_flag(WARN_ONLY, false);
}

/// Like [`mark_worker`], but a leaking `set` prints a warning to standard error (with the
/// caller's location) instead of panicking: for migrating a code base one call site at a
/// time.
///
/// # Examples
///
/// ```
/// contextvars::thread::mark_worker_warn_only();
/// assert!(contextvars::thread::is_worker());
/// # contextvars::thread::unmark_worker();
/// ```
pub fn mark_worker_warn_only() {
    current::set_flag(WORKER, true);
    current::set_flag(WARN_ONLY, true);
}

/// Undoes [`mark_worker`] on the calling thread (for tests, and for threads that stop
/// serving an executor).
///
/// # Examples
///
/// ```
/// contextvars::thread::mark_worker();
/// contextvars::thread::unmark_worker();
/// assert!(!contextvars::thread::is_worker());
/// ```
pub fn unmark_worker() {
    current::set_flag(WORKER | WARN_ONLY, false);
}

/// `true` when the calling thread is marked as a worker ([`mark_worker`] or
/// [`mark_worker_warn_only`]).
///
/// # Examples
///
/// ```
/// assert!(!contextvars::thread::is_worker());
/// ```
#[must_use]
pub fn is_worker() -> bool {
    current::flags() & WORKER != 0
}

/// `true` when the calling thread is inside an entered context: a [`Context::run`] or a poll
/// of a [`WithContext`], where a `set` stays in that context.
///
/// [`Context::run`]: crate::Context::run
/// [`WithContext`]: crate::WithContext
///
/// # Examples
///
/// ```
/// use contextvars::Context;
///
/// assert!(!contextvars::thread::in_context());
/// assert!(Context::new().run(contextvars::thread::in_context));
/// ```
#[must_use]
pub fn in_context() -> bool {
    current::in_entered_context()
}

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
#[track_caller]
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
#[track_caller]
pub fn spawn_scoped<'scope, F, T>(scope: &'scope Scope<'scope, '_>, f: F) -> ScopedJoinHandle<'scope, T>
where
    F: FnOnce() -> T + Send + 'scope,
    T: Send + 'scope,
{
    scope.spawn(Context::current().wrap(f))
}
