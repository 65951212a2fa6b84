//! [`task_contexts`]: tokio's task hooks, giving every task a context of its own with no
//! wrapper (built with `--cfg tokio_unstable`).
//!
//! Where a task's context lives between its polls: in one of [`SHARDS`] maps keyed by the
//! task's `Id`, each behind its own lock, so polls of different tasks rarely touch the same
//! lock and no lock is global. A poll takes the context out of its slot (leaving
//! [`Slot::Polling`]), enters it on the polling thread with [`current::exchange_detached`], and
//! the after-poll hook leaves it and puts it back.
//!
//! Two orderings of tokio's hooks shape the code:
//! - A task woken during its poll can be stolen and polled by another worker before the
//!   first worker has run the after-poll hook of the previous poll. The second poll waits for
//!   the context to be put back ([`take_for_poll`]): it must see the sets of the first.
//! - A task that completes during a poll is terminated inside that poll: the terminate hook
//!   removes the slot, and the after-poll hook then drops the context it leaves.
//!
//! tokio calls the after-poll hook even when the future panics (the poll catches the panic).
//! Only a panicking hook skips it; then the thread's stack of entered polls, [`ENTERED`],
//! still holds the abandoned poll, and the next before-poll on the thread leaves it first
//! ([`leave_abandoned_polls`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::{Mutex, MutexGuard, PoisonError};

use ::tokio::runtime::{Builder, TaskMeta};
use ::tokio::task::Id;

use crate::Context;
use crate::current;

/// How many maps the task contexts are spread over (a power of two).
const SHARDS: usize = 64;

/// A task's entry in its shard.
enum Slot {
    /// Between polls: the task's context.
    Parked(Context),
    /// A poll has taken the context out and not put it back yet.
    Polling,
}

type Shard = Mutex<HashMap<Id, Slot, BuildHasherDefault<IdHasher>>>;

/// The contexts of the tasks spawned with the hooks and not yet terminated.
static TASKS: [Shard; SHARDS] =
    [const { Mutex::new(HashMap::with_hasher(BuildHasherDefault::new())) }; SHARDS];

/// A poll entered on this thread and not yet left.
struct Entered {
    task: Id,
    /// The context that was current before the poll, to be restored after it.
    saved: Context,
}

thread_local! {
    /// The polls entered on this thread, innermost last. More than one only when a task
    /// drives another runtime's tasks in `block_in_place`.
    static ENTERED: RefCell<Vec<Entered>> = const { RefCell::new(Vec::new()) };
}

/// Hashes a task `Id` (a `u64` counter) with one multiplication.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(self.0.rotate_left(8) ^ u64::from(byte));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// The shard holding `task`'s entry, locked.
fn lock(task: Id) -> MutexGuard<'static, HashMap<Id, Slot, BuildHasherDefault<IdHasher>>> {
    let mut hasher = IdHasher::default();
    task.hash(&mut hasher);
    // The high bits of the product depend on all bits of the id.
    let shard = &TASKS[(hasher.finish() >> (64 - SHARDS.trailing_zeros())) as usize];
    // Nothing panics while a shard is locked but an allocation failure; its map stays whole.
    shard.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Gives every task spawned on runtimes built from `builder` its own context: a snapshot of
/// the spawner's context taken at the spawn call, entered around each of the task's polls
/// and dropped when the task ends. `tokio::spawn` then behaves like asyncio's
/// `create_task`, with no wrapper anywhere: `JoinSet::spawn`, `Handle::spawn` and the tasks
/// libraries spawn (hyper's and axum's connection tasks) inherit too, and a `set` inside a
/// task stays in that task across its awaits and never shows in another task.
///
/// Needs tokio's task hooks, which exist only when everything is built with
/// `RUSTFLAGS="--cfg tokio_unstable"` (as tokio-console users already do).
///
/// Installs all four hooks: `on_task_spawn`, `on_before_task_poll`, `on_after_task_poll`
/// and `on_task_terminate`. **Each `Builder::on_*` call replaces the hook of its kind set
/// before it**: calling one of them after `task_contexts` removes part of this machinery,
/// and calling `task_contexts` after them removes yours. To run hooks of your own too, install yours
/// and call [`on_task_spawn`], [`on_before_task_poll`], [`on_after_task_poll`] and
/// [`on_task_terminate`] from them, all four. A task polled by hooks that did not see its
/// spawn starts in an empty context.
///
/// Not covered by tokio's hooks, and so still needing the crate's adapters:
/// - Tasks of a `LocalSet`: tokio runs no task hooks for them. Spawn them with
///   [`spawn_local`](super::spawn_local).
/// - `spawn_blocking` jobs, which are not tasks: use [`spawn_blocking`](super::spawn_blocking).
/// - The future given to `Runtime::block_on`, which is not a task: it runs in the calling
///   thread's context.
/// - Requests on one HTTP/1 keep-alive connection: they are polled inside the same
///   connection task, so with task contexts alone request 2 sees what request 1 set. Add
///   `contextvars::tower::ContextLayer` (feature `tower`) for per-request
///   isolation.
///
/// Futures dropped when the runtime shuts down are dropped outside any poll, in the context
/// of the thread that drops them; a task that completes or is aborted is dropped inside its
/// last poll, in its own context.
///
/// [`spawn`](super::spawn) and [`FutureExt::in_context`](crate::FutureExt::in_context)
/// keep working on such a runtime: the wrapped future's context is entered inside the task's.
/// So does [`thread::mark_worker`](crate::thread::mark_worker) in `on_thread_start`: a `set`
/// in a task lands in the task's context, so the check has nothing to catch there, and still
/// catches a `set` made on a worker outside any task.
///
/// Cost: two short critical sections on one of 64 sharded locks per poll, one at spawn and
/// one at termination, plus the O(1) snapshot: about 40 ns per poll on the project's test
/// machine, against 1 to 2 ns for a task wrapped with `with_context` (BENCHMARKS.md, "tokio
/// task hooks"). A task woken during
/// its poll may be picked up by another worker before tokio has run the after-poll hook of
/// that poll on the first; the second worker's before-poll hook then waits, for that short
/// moment, for the task's context to be put back, so that it sees the first poll's sets.
/// If a hook of your own panics between the two hooks of a poll on a multi-thread runtime,
/// that wait never ends for the task concerned: let no hook panic.
///
/// # Examples
///
/// ```
/// use contextvars::ContextVar;
///
/// static USER: ContextVar<&str> = ContextVar::new("user");
///
/// let rt = contextvars::tokio::task_contexts(&mut tokio::runtime::Builder::new_multi_thread())
///     .build()
///     .unwrap();
/// rt.block_on(async {
///     let parent = tokio::spawn(async {
///         USER.set("alice");
///         let child = tokio::spawn(async {
///             let seen = USER.get();
///             USER.set("bob"); // stays in the child
///             seen
///         });
///         assert_eq!(child.await.unwrap(), Some("alice"));
///         USER.get()
///     });
///     assert_eq!(parent.await.unwrap(), Some("alice"));
/// });
/// ```
pub fn task_contexts(builder: &mut Builder) -> &mut Builder {
    builder
        .on_task_spawn(on_task_spawn)
        .on_before_task_poll(on_before_task_poll)
        .on_after_task_poll(on_after_task_poll)
        .on_task_terminate(on_task_terminate)
}

/// The spawn hook of [`task_contexts`], for hooks of your own: takes a snapshot of the
/// calling thread's current context (tokio calls the hook on the spawning thread, inside the
/// spawner's poll) as the new task's context. O(1) plus one insertion into a sharded map.
///
/// Outside any task (the future of `block_on`), first leaves abandoned polls, as
/// [`on_before_task_poll`] does.
///
/// Call it from your `Builder::on_task_spawn` hook, together with the three other hooks.
///
/// # Examples
///
/// ```
/// use contextvars::ContextVar;
/// use contextvars::tokio::{on_after_task_poll, on_before_task_poll, on_task_spawn, on_task_terminate};
///
/// static USER: ContextVar<&str> = ContextVar::new("user");
///
/// let spawned = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
/// let counter = spawned.clone();
/// let rt = tokio::runtime::Builder::new_current_thread()
///     .on_task_spawn(move |meta| {
///         counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
///         on_task_spawn(meta);
///     })
///     .on_before_task_poll(on_before_task_poll)
///     .on_after_task_poll(on_after_task_poll)
///     .on_task_terminate(on_task_terminate)
///     .build()
///     .unwrap();
/// let seen = rt.block_on(async {
///     tokio::spawn(async {
///         USER.set("alice");
///         tokio::spawn(async { USER.get() }).await.unwrap()
///     })
///     .await
///     .unwrap()
/// });
/// assert_eq!(seen, Some("alice"));
/// assert_eq!(spawned.load(std::sync::atomic::Ordering::Relaxed), 2);
/// ```
pub fn on_task_spawn(meta: &TaskMeta<'_>) {
    let task = meta.id();
    if ENTERED.with_borrow(|entered| !entered.is_empty()) {
        leave_abandoned_polls();
    }
    let snapshot = current::inherit();
    let replaced = lock(task).insert(task, Slot::Parked(snapshot));
    drop(replaced); // outside the lock: a context's values have user destructors
}

/// The before-poll hook of [`task_contexts`], for hooks of your own: enters the task's
/// context on the polling thread until [`on_after_task_poll`].
///
/// If an after-poll hook was skipped on this thread (a hook panicked: tokio catches the
/// panics of futures and still runs it), first leaves the abandoned poll's context, so the
/// thread's own context is current again. Until then (until the next spawn or poll on the
/// thread), code outside tasks on that thread, such as the future of `block_on`, still
/// sees the abandoned task's context.
///
/// See [`on_task_spawn`] for an example.
pub fn on_before_task_poll(meta: &TaskMeta<'_>) {
    let task = meta.id();
    // One access to the thread-local: what runs inside does not hold its borrow.
    ENTERED.with(|entered| {
        if !entered.borrow().is_empty() {
            leave_abandoned_polls();
        }
        let mut context = take_for_poll(task);
        current::exchange_detached(&mut context);
        entered.borrow_mut().push(Entered { task, saved: context });
    });
}

/// The after-poll hook of [`task_contexts`], for hooks of your own: leaves the task's
/// context, restoring the one that was current before the poll, and keeps the task's
/// context, with the poll's changes, for its next poll.
///
/// See [`on_task_spawn`] for an example.
pub fn on_after_task_poll(meta: &TaskMeta<'_>) {
    let task = meta.id();
    let innermost = ENTERED.with_borrow_mut(|entered| match entered.last() {
        Some(last) if last.task == task => entered.pop(),
        _ => None,
    });
    match innermost {
        Some(Entered { task, mut saved }) => {
            current::exchange_detached(&mut saved);
            park(task, saved);
        }
        None => leave_through(task),
    }
}

/// After-poll for a poll that is not the innermost one entered: leaves the abandoned polls
/// entered after it, then it. Does nothing when its before-poll hook did not run.
#[cold]
#[inline(never)]
fn leave_through(task: Id) {
    let entered = ENTERED.with_borrow(|entered| entered.iter().rposition(|e| e.task == task));
    let Some(position) = entered else {
        return;
    };
    while let Some(Entered { task, mut saved }) =
        ENTERED.with_borrow_mut(|entered| (entered.len() > position).then(|| entered.pop()).flatten())
    {
        current::exchange_detached(&mut saved);
        park(task, saved);
    }
}

/// The terminate hook of [`task_contexts`], for hooks of your own: drops the task's context
/// (when the task ends inside a poll, the after-poll hook drops it as it leaves).
///
/// See [`on_task_spawn`] for an example.
pub fn on_task_terminate(meta: &TaskMeta<'_>) {
    let task = meta.id();
    let removed = lock(task).remove(&task);
    drop(removed); // outside the lock
}

/// Takes `task`'s context out of its slot for a poll, waiting while a poll on another thread
/// has not put it back yet.
fn take_for_poll(task: Id) -> Context {
    loop {
        let mut shard = lock(task);
        match shard.get_mut(&task) {
            Some(slot @ Slot::Parked(_)) => {
                if let Slot::Parked(context) = std::mem::replace(slot, Slot::Polling) {
                    return context;
                }
            }
            // Polled on another worker an instant ago, which has not run its after-poll hook.
            Some(Slot::Polling) => {
                drop(shard);
                std::thread::yield_now();
            }
            None => {
                shard.insert(task, Slot::Polling);
                return Context::new();
            }
        }
    }
}

/// Puts `task`'s context back after a poll, or drops it when the task has terminated.
fn park(task: Id, context: Context) {
    let orphan = {
        let mut shard = lock(task);
        match shard.get_mut(&task) {
            Some(slot) => std::mem::replace(slot, Slot::Parked(context)),
            None => Slot::Parked(context), // the task has terminated
        }
    };
    drop(orphan); // outside the lock
}

/// Leaves the polls entered on this thread whose after-poll hook was skipped, when no task
/// is running on the thread (the top level of a worker, or the future of `block_on`).
///
/// While a task runs, the entries are the polls enclosing it, not abandoned ones: another
/// runtime's task, or a `LocalSet`'s, polled inside a task's poll (in `block_in_place`).
/// Abandoned entries are left by the next before-poll hook, which runs outside any task.
#[cold]
#[inline(never)]
fn leave_abandoned_polls() {
    if ::tokio::task::try_id().is_some() {
        return;
    }
    while let Some(Entered { task, mut saved }) = ENTERED.with_borrow_mut(Vec::pop) {
        current::exchange_detached(&mut saved);
        park(task, saved);
    }
}
