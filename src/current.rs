//! The thread's current context, and the one routine that swaps another one in.
//!
//! Every thread has a current context: its trie, in `raw/slot.rs`, and the cells below. Reads look
//! into it where it is ([`lend`]); `set`/`reset` change it in place ([`change`]); [`enter`]
//! swaps a caller's context in for the length of a closure and back out, also on unwind.
//! `Context::run`, `WithContext::poll`, `WithContext`'s drop and so everything else that
//! enters a context goes through [`enter`].
//!
//! Two rules keep lent references valid and destructors free to use context variables:
//! - While a read lends a reference into the current trie to user code (a value's `Clone`, a
//!   `with` closure), `READING` is raised; a change made meanwhile first *pins* the trie (one
//!   more reference, released when the reads end), so the change copies the path instead of
//!   writing in place, and the lent reference stays valid.
//! - Nothing is dropped while the trie is being changed: [`change`]'s closure returns what
//!   it displaces, and the caller drops it afterwards.
//!
//! At thread exit a guard (a thread-local with a destructor, registered when the thread's own
//! context first holds a value) drops that context. The cells themselves have no destructor,
//! so `Context::run` and `WithContext` keep working in other thread-locals' destructors; only
//! a `set` at the thread's own level after the guard ran keeps nothing (see
//! `ContextVar::set`).

use std::cell::{Cell, RefCell};

use crate::Context;
use crate::hamt::IdMap;
use crate::raw::{self, Root, Value};

/// `FLAGS`: the thread is an executor worker (`thread::mark_worker`).
pub(crate) const WORKER: u8 = 1;
/// `FLAGS`: with `WORKER`, a root `set` warns instead of panicking.
pub(crate) const WARN_ONLY: u8 = 1 << 1;
/// `FLAGS`: the exit guard is registered.
const GUARDED: u8 = 1 << 2;
/// `FLAGS`: the exit guard has run; the thread's own context can hold nothing more.
const GONE: u8 = 1 << 3;

/// `ID`: the current context is the thread's own, no context is entered. Travels with the
/// identity when another context is entered, so entering and leaving swap one word less.
/// `ids::unique` never reaches it.
const OWN: u64 = 1 << 63;

/// `READING`: tries are pinned until the reads in progress end.
const PINNED: u32 = 1 << 31;

// The thread's current context is its trie (`raw/slot.rs`) and these; each is a `const` cell
// without a destructor, so every access is a plain thread-local load or store.
thread_local! {
    /// The current context's identity for tokens (0 until a token is created in it), with
    /// `OWN` set while it is the thread's own context.
    static ID: Cell<u64> = const { Cell::new(OWN) };
    /// Reads in progress that lend a reference into the current trie to user code, plus
    /// `PINNED`. While non-zero, changes pin the trie and copy instead of writing in place.
    static READING: Cell<u32> = const { Cell::new(0) };
    /// `WORKER`, `WARN_ONLY`, `GUARDED`, `GONE`.
    static FLAGS: Cell<u8> = const { Cell::new(0) };
    /// Tries pinned by changes made while a read lent a reference into them.
    static PINS: RefCell<Vec<Root>> = const { RefCell::new(Vec::new()) };
    /// Drops the thread's own context at thread exit.
    static EXIT_GUARD: ExitGuard = const { ExitGuard };
}

/// Calls `f` with the value stored under the variable id `id` in the current context, if it
/// is a `T`. `f` may run user code: the trie stays valid while it does.
#[inline]
pub(crate) fn lend<T: 'static, R>(id: u64, f: impl FnOnce(Option<&T>) -> R) -> R {
    // Finding the value runs no user code; `f` may. So the count is raised just around `f`,
    // and lowered only once the reference is gone: lowering it may release pinned tries, the
    // one lent from among them.
    raw::lend_value(id, |value| {
        let _reading = Reading::start();
        f(value)
    })
}

/// Raises the reading count for its lifetime.
struct Reading;

impl Reading {
    #[inline]
    fn start() -> Self {
        READING.set(READING.get() + 1);
        Self
    }
}

impl Drop for Reading {
    #[inline]
    fn drop(&mut self) {
        let reading = READING.get() - 1;
        READING.set(reading);
        if reading == PINNED {
            unpin();
        }
    }
}

/// Releases the pinned tries once no read lends into them.
#[cold]
#[inline(never)]
fn unpin() {
    READING.set(0);
    let pins = PINS.try_with(|pins| std::mem::take(&mut *pins.borrow_mut())).unwrap_or_default();
    drop(pins); // outside the borrow: dropping a trie may run values' destructors
}

/// Keeps a reference to the current trie until the reads in progress end.
#[cold]
#[inline(never)]
fn pin() {
    let root = raw::another_root();
    if let Some(root) = root {
        let mut root = Some(root);
        if PINS.try_with(|pins| pins.borrow_mut().extend(root.take())).is_ok() {
            READING.set(READING.get() | PINNED);
        }
        // `PINS` is gone only in a destructor running at thread exit: the trie must still
        // outlive the read, so it is leaked rather than released early.
        std::mem::forget(root);
    }
}

/// A snapshot of the current context: one reference-count increment.
#[inline]
pub(crate) fn snapshot() -> Context {
    Context::from_map(raw::snapshot())
}

/// The current context's identity for tokens, drawn on first use.
#[inline]
pub(crate) fn identity() -> u64 {
    let id = ID.get();
    if id & !OWN == 0 { draw_identity(id) } else { id }
}

#[cold]
fn draw_identity(own: u64) -> u64 {
    let id = crate::ids::unique() | own;
    ID.set(id);
    id
}

/// The current context's identity; 0 or `OWN` (which no token holds) before the first token.
#[inline]
pub(crate) fn raw_identity() -> u64 {
    ID.get()
}

/// Replaces the `T` under `var_id` in the current context with `value` in place, when nothing
/// on the way is shared and no read is lending a reference: the cheap `set` and `reset`,
/// which keep the read cache. Gives `value` back otherwise (then [`change`] does the work).
#[inline]
pub(crate) fn replace_in_place<T: 'static>(var_id: u64, value: T) -> Result<T, T> {
    if READING.get() != 0 {
        return Err(value);
    }
    raw::replace_in_place(var_id, value)
}

/// Runs `f` on the current context's values, changed in place where they are not shared.
///
/// `f` must not run user code nor drop user values: it returns what it displaces, and the
/// caller drops that after this returns.
#[inline]
pub(crate) fn change<R>(f: impl FnOnce(&mut IdMap<Value>) -> R) -> R {
    if READING.get() != 0 {
        pin();
    }
    let (result, released) = raw::update_root(|map| {
        let result = f(map);
        (result, map.fold_top())
    });
    if FLAGS.get() & GUARDED == 0 {
        guard_own_context();
    }
    drop(released);
    result
}

/// The thread's first change: registers the exit guard that drops the thread's own context
/// (registered whatever the depth, so that later changes check one flag). Once the guard has
/// run (thread exit), a change to the thread's own context drops its values at once instead.
#[cold]
#[inline(never)]
fn guard_own_context() {
    if FLAGS.get() & GONE == 0 && EXIT_GUARD.try_with(|_| ()).is_ok() {
        FLAGS.set(FLAGS.get() | GUARDED);
        return;
    }
    FLAGS.set(FLAGS.get() | GONE);
    if in_entered_context() || raw::root_is_empty() {
        return; // a context entered here goes back to its owner; an empty one holds nothing
    }
    let mut orphan = IdMap::new();
    raw::exchange(&mut orphan);
    // A new identity for what follows, so tokens made for the dropped values fail to reset.
    ID.set(OWN);
    drop(orphan);
}

/// Drops the thread's own context at thread exit.
struct ExitGuard;

impl Drop for ExitGuard {
    fn drop(&mut self) {
        FLAGS.set((FLAGS.get() | GONE) & !GUARDED);
        // A value's destructor may set variables again; those sets keep nothing from now on.
        loop {
            let mut map = IdMap::new();
            raw::exchange(&mut map);
            if map.is_empty() {
                break;
            }
            drop(map);
        }
    }
}

/// Makes `ctx` the current context while `f` runs, then puts the previous one back, also
/// when `f` panics. Changes made by `f` end up in `ctx`.
#[inline]
pub(crate) fn enter<R>(ctx: &mut Context, f: impl FnOnce() -> R) -> R {
    /// Swaps back on drop, so unwinding restores the caller's context too.
    struct Leave<'a>(&'a mut Context);

    impl Drop for Leave<'_> {
        #[inline]
        fn drop(&mut self) {
            exchange(self.0);
        }
    }

    exchange(ctx);
    let _leave = Leave(ctx);
    f()
}

/// Enters `ctx` without a closure, for hooks that run before and after a poll rather than
/// around it: afterwards `ctx` holds the context that was current, to be handed to
/// [`leave_detached`], which swaps them back. The caller restores the thread's context when
/// the code between the two unwinds.
#[allow(dead_code, reason = "used by the tokio task hooks, built with --cfg tokio_unstable")]
pub(crate) fn enter_detached(ctx: &mut Context) {
    exchange(ctx);
}

/// Undoes [`enter_detached`]: `ctx` (what it left there) becomes current again, and gets back
/// the context that was entered, with the changes made in it.
#[allow(dead_code, reason = "used by the tokio task hooks, built with --cfg tokio_unstable")]
pub(crate) fn leave_detached(ctx: &mut Context) {
    exchange(ctx);
}

/// Exchanges `ctx` with the current context. Drops nothing.
#[inline]
fn exchange(ctx: &mut Context) {
    let (map, id) = ctx.parts_mut();
    raw::exchange(map);
    *id = ID.replace(*id);
}

/// `true` when the calling thread is inside an entered context.
#[inline]
pub(crate) fn in_entered_context() -> bool {
    ID.get() & OWN == 0
}

/// The thread's flags.
#[inline]
pub(crate) fn flags() -> u8 {
    FLAGS.get()
}

/// Sets or clears `flag` in the thread's flags.
pub(crate) fn set_flag(flag: u8, on: bool) {
    let flags = FLAGS.get();
    FLAGS.set(if on { flags | flag } else { flags & !flag });
}

/// Panics (or warns, in warn-only mode) when a `set` on a worker thread would change the
/// thread's own context, which every task the thread polls next would see.
#[inline]
#[track_caller]
pub(crate) fn check_root_set(name: &'static str) {
    if !in_entered_context() && FLAGS.get() & WORKER != 0 {
        root_set_on_worker(name);
    }
}
#[cold]
#[inline(never)]
#[track_caller]
fn root_set_on_worker(name: &'static str) {
    let message = format!(
        "contextvars: `{name}` was set on an executor worker thread outside any task context, so \
         every task this thread polls next would see the value; run the task in a context of its \
         own (spawn it with `contextvars::tokio::spawn` or wrap it with `with_context(fut)` / \
         `.with_current_context()`), or set the value for one call with `scope` or for one future \
         with `FutureExt::with_var`"
    );
    assert!(flags() & WARN_ONLY != 0, "{message}");
    let location = std::panic::Location::caller();
    eprintln!("warning: {message} (at {location})");
}
