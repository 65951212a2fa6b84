//! Rayon in the caller's context (feature `rayon`): parallel iterators with
//! `.in_current_context()`, and rayon's `spawn`, `join` and `scope`, each closure running in
//! its own snapshot of the caller's context.
//!
//! A rayon job runs on a worker thread in whatever context is current there. Worse, a worker
//! that waits in `join` or `scope` runs other jobs meanwhile, on the same thread: a value a
//! job sets at the thread's root shows in the next job the thread picks up. A parallel
//! iterator called from one of the pool's own threads half works without help, which hides
//! the mistake: the part rayon runs on that thread sees the caller's values (and the sets of
//! the calls before it), the parts other workers take do not. Here every
//! closure runs in a copy of the context current at the call, taken in O(1), and its sets
//! stay in that copy.
//!
//! `use contextvars::rayon::*` brings the functions below and the method
//! [`in_current_context`](crate::FutureExt::in_current_context) (the crate's [`FutureExt`](crate::FutureExt),
//! the same method as on futures, so the two never clash).
//!
//! # Which one to use
//!
//! - **A parallel iterator:** `.in_current_context()` right after the source, once:
//!   `items.par_iter().in_current_context().map(f).filter(g).sum()`. Every closure of the
//!   chain after it runs in the snapshot, each item, each identity and each combine in a copy
//!   of its own, including the last combine on the caller's thread; see
//!   [`WithContext`'s `ParallelIterator`](crate::WithContext#impl-ParallelIterator-for-WithContext%3CI%3E)
//!   for where to put it, and for `flat_map`'s inner iterators, which take their own.
//! - **One closure handed to something that calls it many times** (a callback, or a pipeline
//!   stage whose calls must not even see what earlier stages set for the same item):
//!   [`Context::wrap_fn`], which runs every call in its own copy.
//! - **`spawn`, `join`, `scope`:** [`spawn`], [`join`], [`scope`] here, drop-in replacements
//!   for rayon's. For a pool of your own, the one-line pattern:
//!   `pool.spawn(Context::current().wrap(job))`, and
//!   `pool.install(Context::current().wrap(op))`.
//!
//! # Examples
//!
//! ```
//! use contextvars::{Context, ContextVar};
//! use contextvars::rayon::*;
//! use rayon::prelude::*;
//!
//! static REQUEST: ContextVar<u64> = ContextVar::new("request");
//!
//! # Context::new().run(|| {
//! REQUEST.set(7);
//! let (a, b) = join(
//!     || {
//!         REQUEST.set(8); // stays in this closure
//!         REQUEST.get()
//!     },
//!     || REQUEST.get(),
//! );
//! assert_eq!((a, b, REQUEST.get()), (Some(8), Some(7), Some(7)));
//!
//! let requests: Vec<_> = (0..1000).into_par_iter().in_current_context().map(|_| REQUEST.get()).collect();
//! assert!(requests.iter().all(|&request| request == Some(7)));
//! # });
//! ```
//!
//! # A pool of one's own, and marked workers
//!
//! A `ThreadPool` of one's own takes the one-line pattern: `pool.spawn(Context::current().wrap(job))`,
//! `pool.install(Context::current().wrap(op))`, and inside `install` the parallel iterators
//! as above. Marking the pool's threads with
//! [`mark_worker`](crate::thread::mark_worker) in its `start_handler` makes a job that sets
//! a value in the worker's own context panic, with a message that names these functions,
//! instead of leaking the value into the next job the thread runs.
//!
//! ```
//! use contextvars::{Context, ContextVar};
//! use contextvars::rayon::*;
//! use rayon::prelude::*;
//!
//! static REQUEST: ContextVar<u64> = ContextVar::new("request");
//!
//! let pool = rayon::ThreadPoolBuilder::new()
//!     .num_threads(2)
//!     .start_handler(|_| contextvars::thread::mark_worker())
//!     .build()
//!     .unwrap();
//! # Context::new().run(|| {
//! REQUEST.set(7);
//! let (tx, rx) = std::sync::mpsc::channel();
//! pool.spawn(Context::current().wrap(move || tx.send(REQUEST.get()).unwrap()));
//! let sum: u64 = pool.install(Context::current().wrap(|| {
//!     [1, 2, 3].par_iter().in_current_context().map(|n| n * REQUEST.get().unwrap()).sum()
//! }));
//! assert_eq!((rx.recv().unwrap(), sum), (Some(7), 42));
//! # });
//! ```
//!
//! From an async task, run the pipeline on a blocking thread that starts in the task's
//! context: `contextvars::tokio::spawn_blocking(move || items.par_iter().in_current_context()..)`
//! with the `tokio` feature, or `smol::unblock(Context::current().wrap(..))`.
//!
//! The clippy recipe of [`lints`](crate::lints) flags every call to rayon's `spawn`, `join`,
//! `scope` and their kin, and to `ThreadPool`'s methods, naming what to call instead;
//! parallel iterators are beyond its reach.

mod iter;

use std::fmt;

use crate::Context;
pub use crate::FutureExt as _;

/// [`rayon::spawn`], with the job running in a snapshot of the caller's
/// context.
///
/// # Examples
///
/// ```
/// use contextvars::ContextVar;
///
/// static USER: ContextVar<&str> = ContextVar::new("user");
///
/// # contextvars::Context::new().run(|| {
/// USER.set("alice");
/// let (tx, rx) = std::sync::mpsc::channel();
/// contextvars::rayon::spawn(move || tx.send(USER.get()).unwrap());
/// assert_eq!(rx.recv().unwrap(), Some("alice"));
/// # });
/// ```
pub fn spawn<F>(f: F)
where
    F: FnOnce() + Send + 'static,
{
    ::rayon::spawn(Context::current().wrap(f));
}

/// [`rayon::join`], with each closure running in its own snapshot of the
/// caller's context, taken at the call.
///
/// Neither closure sees the other's sets, whichever thread runs it and whatever other jobs
/// that thread runs while it waits.
///
/// # Examples
///
/// ```
/// use contextvars::ContextVar;
///
/// static DEPTH: ContextVar<u32> = ContextVar::with_default("depth", 0);
///
/// fn sum(items: &[u64]) -> u64 {
///     let depth = DEPTH.get().unwrap();
///     DEPTH.set(depth + 1); // seen by the halves below, not by a sibling
///     match items {
///         [] => 0,
///         [one] => *one + u64::from(depth),
///         _ => {
///             let (left, right) = items.split_at(items.len() / 2);
///             let (a, b) = contextvars::rayon::join(|| sum(left), || sum(right));
///             a + b
///         }
///     }
/// }
///
/// # contextvars::Context::new().run(|| {
/// // four leaves, each at depth 2
/// assert_eq!(sum(&[1, 2, 3, 4]), 10 + 4 * 2);
/// # });
/// ```
pub fn join<A, B, RA, RB>(a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    let context = crate::current::inherit();
    ::rayon::join(context.clone().wrap(a), context.wrap(b))
}

/// [`rayon::scope`], with `f` and every job spawned through the [`Scope`]
/// it is handed running in a snapshot of the context current where they were spawned.
///
/// # Examples
///
/// ```
/// use std::sync::Mutex;
/// use contextvars::ContextVar;
///
/// static USER: ContextVar<&str> = ContextVar::new("user");
///
/// # contextvars::Context::new().run(|| {
/// USER.set("alice");
/// let seen = Mutex::new(Vec::new());
/// contextvars::rayon::scope(|s| {
///     s.spawn(|s| {
///         seen.lock().unwrap().push(USER.get());
///         USER.set("bob");
///         s.spawn(|_| seen.lock().unwrap().push(USER.get())); // spawned where bob was set
///     });
///     s.spawn(|_| seen.lock().unwrap().push(USER.get()));
/// });
/// let mut seen = seen.into_inner().unwrap();
/// seen.sort();
/// assert_eq!(seen, [Some("alice"), Some("alice"), Some("bob")]);
/// assert_eq!(USER.get(), Some("alice"));
/// # });
/// ```
pub fn scope<'scope, F, R>(f: F) -> R
where
    F: for<'s> FnOnce(&Scope<'s, 'scope>) -> R + Send,
    R: Send,
{
    let mut context = crate::current::inherit();
    ::rayon::scope(move |inner| context.run(|| f(&Scope { inner })))
}

/// The scope of [`scope`]: its [`spawn`](Self::spawn) runs each job in a snapshot of the
/// context current at the spawn.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use contextvars::ContextVar;
///
/// static STEP: ContextVar<u32> = ContextVar::new("step");
///
/// # contextvars::Context::new().run(|| {
/// let total = AtomicU32::new(0);
/// contextvars::rayon::scope(|s| {
///     for step in 1..=3 {
///         STEP.sync_scope(step, || {
///             s.spawn(|_| {
///                 total.fetch_add(STEP.get().unwrap(), Ordering::Relaxed);
///             });
///         });
///     }
/// });
/// assert_eq!(total.into_inner(), 6);
/// # });
/// ```
pub struct Scope<'s, 'scope> {
    inner: &'s ::rayon::Scope<'scope>,
}

impl<'scope> Scope<'_, 'scope> {
    /// [`rayon::Scope::spawn`], with the job running in a snapshot of
    /// the context current at this call.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::ContextVar;
    ///
    /// static USER: ContextVar<&str> = ContextVar::new("user");
    ///
    /// # contextvars::Context::new().run(|| {
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// contextvars::rayon::scope(|s| {
    ///     USER.set("alice"); // in the scope's own snapshot
    ///     s.spawn(move |_| tx.send(USER.get()).unwrap());
    /// });
    /// assert_eq!(rx.recv().unwrap(), Some("alice"));
    /// assert_eq!(USER.get(), None);
    /// # });
    /// ```
    pub fn spawn<B>(&self, body: B)
    where
        B: for<'s> FnOnce(&Scope<'s, 'scope>) + Send + 'scope,
    {
        let mut context = crate::current::inherit();
        self.inner.spawn(move |inner| context.run(|| body(&Scope { inner })));
    }

    /// The rayon scope underneath, for what this type does not wrap (its jobs start in the
    /// worker's context).
    ///
    /// # Examples
    ///
    /// ```
    /// contextvars::rayon::scope(|s| {
    ///     let _rayon: &rayon::Scope<'_> = s.get_ref();
    /// });
    /// ```
    #[must_use]
    pub fn get_ref(&self) -> &::rayon::Scope<'scope> {
        self.inner
    }
}

impl fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope").finish_non_exhaustive()
    }
}
