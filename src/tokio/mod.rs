//! Tokio in the caller's context (feature `tokio`): tokio's spawning functions with each task
//! or job starting in a snapshot of the caller's context, the fail-closed rule for tasks that
//! have no context of their own, and, built with `--cfg tokio_unstable`, a context for every
//! task with no wrapper.
//!
//! # Getting started
//!
//! ```toml
//! [dependencies]
//! contextvars = { version = "0.1", features = ["tokio"] }
//! tokio = { version = "1", features = ["rt-multi-thread"] }
//! ```
//!
//! `tokio::spawn` starts a task with nothing: the task reads whatever context is current on
//! the worker thread that polls it. [`spawn`], [`spawn_local`] and [`spawn_blocking`] take a
//! snapshot of the caller's context at the call, O(1), and run the task (every poll, and its
//! drop) or the blocking job in it, the way asyncio copies the context into a new task. Sets
//! made by the task stay in the task.
//!
//! ```
//! use contextvars::ContextVar;
//!
//! static REQUEST_ID: ContextVar<u64> = ContextVar::new("request_id");
//!
//! async fn handle() -> Option<u64> {
//!     tokio::task::yield_now().await; // the task may resume on another worker thread
//!     REQUEST_ID.get()
//! }
//!
//! let runtime = tokio::runtime::Builder::new_multi_thread()
//!     .on_thread_start(contextvars::thread::mark_worker)
//!     .build()
//!     .unwrap();
//! runtime.block_on(async {
//!     let tasks: Vec<_> = (1..=100)
//!         .map(|id| {
//!             contextvars::tokio::spawn(async move {
//!                 REQUEST_ID.set(id); // the task's own context: no other task sees it
//!                 handle().await
//!             })
//!         })
//!         .collect();
//!     for (id, task) in (1..=100).zip(tasks) {
//!         assert_eq!(task.await.unwrap(), Some(id));
//!     }
//! });
//! ```
//!
//! [`thread::mark_worker`](crate::thread::mark_worker) in `on_thread_start` is optional: it
//! turns a `set` made by a task without a context of its own into a panic at that `set`,
//! naming the fix, which suits development and tests. Unmarked, such a `set` fails closed
//! (below).
//!
//! Other ways to spawn take the one-line pattern these functions are made of:
//! `set.spawn(future.in_current_context())` for a `JoinSet`,
//! `handle.spawn(future.in_current_context())` for a runtime `Handle`,
//! `handle.spawn_blocking(Context::current().wrap(job))` for a blocking job.
//!
//! ```
//! use contextvars::{Context, ContextVar, FutureExt};
//!
//! static REQUEST: ContextVar<u64> = ContextVar::new("request");
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(contextvars::with_context(async {
//! REQUEST.set(7);
//! let mut set = tokio::task::JoinSet::new();
//! set.spawn(async { REQUEST.get() }.in_current_context());
//! let handle = tokio::runtime::Handle::current();
//! let job = handle.spawn_blocking(Context::current().wrap(|| REQUEST.get()));
//! assert_eq!(set.join_next().await.unwrap().unwrap(), Some(7));
//! assert_eq!(job.await.unwrap(), Some(7));
//! # }));
//! ```
//!
//! The clippy recipe of [`lints`](crate::lints) flags every call to tokio's spawning
//! functions and methods, naming what to call instead.
//!
//! # Fail closed: a task with no context of its own
//!
//! A task that nobody gave a context of its own (no [`spawn`] here, no
//! `.in_current_context()`, no layer, no task hooks) runs in the worker thread's own
//! context, which every task the thread polls reads. With this feature, a request never sees
//! another request's value there, in every build. In a worker thread's own context (no
//! context entered):
//!
//! - a value set while tokio task A runs is returned to A only; any other task, and code
//!   outside a task, reads what it would read had A never set: the value set there outside
//!   any task if there is one, else the variable's default, else `None`;
//! - a task reads its own value only while its `set` is the latest for that variable on
//!   that thread; once another task has set it, the first reads as above: its value is lost,
//!   never replaced by a foreign one. So is a task's value when the task resumes on another
//!   worker thread: the value stayed on the first; and once the task has set the variable
//!   again elsewhere, the value it left on the first thread is never returned to it there;
//! - a value the thread has no room to keep for its task (it keeps at most 64 such values)
//!   is dropped at once: hidden, never shown;
//! - a snapshot the task takes ([`Context::current`](crate::Context::current), [`spawn`]
//!   inside it) holds the task's values.
//!
//! What the rule leaves alone: a library's synchronous `set` / `reset` pair inside an unwrapped task leaves
//! nothing behind and is never reported; a value set outside any task (before the runtime
//! starts, in the future given to `block_on`) stays visible to everyone on that thread;
//! inside an entered context (a wrapped task, [`Context::run`](crate::Context::run), a
//! layer) everything behaves as anywhere else; on a thread marked with
//! [`mark_worker`](crate::thread::mark_worker), a `set` outside an entered context still
//! panics.
//!
//! What the rule cannot tell: it knows tasks, not requests. hyper serves the requests of an
//! HTTP/1 keep-alive connection one after another in one task, so without a layer a request
//! reads the value the connection's previous request set, until its own `set` (its lines
//! after that are right). Debug builds report it at that `set`, named as the same line
//! setting again with no reset in between (see [`Leak`]); the fix is the one every report
//! names, a context per request (`ContextLayer`, `TraceContextServerLayer`, feature `tower`).
//!
//! Cargo unifies features: when any crate of a build turns `tokio` on, the rule holds for
//! every crate in it. The guarantee is tokio's only: on other executors, mark the worker
//! threads.
//!
//! ```
//! use contextvars::ContextVar;
//!
//! static REQUEST_ID: ContextVar<u32> = ContextVar::new("request_id");
//!
//! # contextvars::tokio::set_leak_hook(|_| ());
//! let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! let (a, b) = rt.block_on(async {
//!     let (tx, rx) = tokio::sync::oneshot::channel();
//!     // A handler that sets with no wrapper and no layer: the mistake.
//!     let a = tokio::spawn(async move {
//!         REQUEST_ID.set(1);
//!         rx.await.unwrap(); // B runs meanwhile, on the same thread
//!         REQUEST_ID.get()
//!     });
//!     let b = tokio::spawn(async move {
//!         let seen = REQUEST_ID.get(); // never A's value
//!         tx.send(()).unwrap();
//!         seen
//!     });
//!     (a.await.unwrap(), b.await.unwrap())
//! });
//! assert_eq!((a, b), (Some(1), None));
//! assert_eq!(REQUEST_ID.get(), None); // nor does code outside the tasks
//! # contextvars::tokio::reset_leak_hook();
//! ```
//!
//! ## Reports in debug builds
//!
//! The mistake is reported in debug builds, never inside the read that met the value (a log
//! formatter calling `get` gets the fail-closed value and writes its line whole): a [`Leak`]
//! names the variable, the file and line of the `set`, and the fix. A task that sets a
//! variable from the same line again, with no `reset` of the earlier `set` in between, is
//! reported too, at that line: the sign of one task serving request after request. It reaches the hook set
//! with [`set_leak_hook`] at the thread's next `set`, `reset` or `sync_scope`; without a
//! hook, one line per variable and `set` goes to standard error, once per thread. Requests
//! do not fail because of it, unless a hook of yours panics: then the panic comes at that
//! next change, in whatever code makes it. Release builds make no report and only fail
//! closed.
//!
//! A test that fails on any leak:
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use contextvars::ContextVar;
//!
//! static REQUEST_ID: ContextVar<u32> = ContextVar::new("request_id");
//!
//! let reports = Arc::new(Mutex::new(Vec::new()));
//! let seen = Arc::clone(&reports);
//! contextvars::tokio::set_leak_hook(move |leak| {
//!     seen.lock().unwrap().push((leak.var_name(), leak.set_at().line()));
//! });
//!
//! let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! let line = rt.block_on(async {
//!     let leaky = tokio::spawn(async {
//!         let line = line!() + 1;
//!         REQUEST_ID.set(1); // no context of its own
//!         tokio::task::yield_now().await;
//!         line
//!     });
//!     let other = tokio::spawn(async { REQUEST_ID.get() });
//!     assert_eq!(other.await.unwrap(), None);
//!     leaky.await.unwrap()
//! });
//! REQUEST_ID.sync_scope(0, || ()); // the thread's next change hands the report over
//! contextvars::tokio::reset_leak_hook();
//! if cfg!(debug_assertions) {
//!     assert!(reports.lock().unwrap().contains(&("request_id", line)));
//! }
//! ```
//!
//! # Every task with no wrapper: `task_contexts` (`--cfg tokio_unstable`)
//!
//! tokio's task hooks make the call at the spawn unnecessary: on a runtime built with
//! `contextvars::tokio::task_contexts(&mut builder)`, every task gets a snapshot of its
//! spawner's context at the spawn, entered around each of its polls and dropped when it
//! ends, the way asyncio treats every task. Plain `tokio::spawn`, `JoinSet::spawn`,
//! `Handle::spawn` and the tasks libraries spawn (hyper's and axum's connection tasks) all
//! inherit. The hooks exist only when everything is built with
//! `RUSTFLAGS="--cfg tokio_unstable"`, as tokio-console users already do, and so do
//! `task_contexts` and its four hooks in this module. What to know:
//!
//! - Each `Builder::on_*` call replaces the hook before it: to add hooks of your own, call
//!   `contextvars::tokio::{on_task_spawn, on_before_task_poll, on_after_task_poll,
//!   on_task_terminate}` from yours, all four.
//! - `LocalSet` tasks run no hooks: keep [`spawn_local`]. `spawn_blocking` jobs are not
//!   tasks: keep [`spawn_blocking`].
//! - The requests of one HTTP/1 keep-alive connection run inside the same connection task,
//!   so with task contexts alone request 2 sees what request 1 set: add
//!   `contextvars::tower::ContextLayer` (feature `tower`), which runs each request in its own
//!   snapshot (`TraceContextServerLayer` does the same and adds the trace).
//! - Cost: about 40 ns per poll on the project's test machine, where wrapping a task with
//!   `with_context` adds 1 to 2 ns per poll and tokio's calls to four empty hooks 2 to 6 ns
//!   (BENCHMARKS.md, "tokio task hooks"). On hot paths with many short polls, the explicit
//!   wrappers stay the cheaper way.
//!
//! `task_contexts`'s own documentation has an example, run by CI with that cfg.

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
