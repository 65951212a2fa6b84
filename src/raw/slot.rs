//! The thread's current context: a pointer to the [`Context`] entered last, or to the thread's
//! own context when none is entered.
//!
//! Entering a context stores a pointer to it and leaving puts the previous pointer back
//! ([`enter`]): one word each way, and nothing moves. A context is entered only through a
//! `&mut Context` that [`enter`] holds for the whole entry, so while the pointer names it, it
//! stays where it is and nothing else reaches it. The thread's own context lives in a
//! thread-local without a destructor (the exit guard of `current.rs` drops what it holds), so
//! it can be reached from other thread-locals' destructors too.
//!
//! Everything else reaches the current context through [`with_current`] (or
//! [`change_current`], which may change its entries), for the length of a closure that
//! neither enters nor leaves a context nor runs user code.
//!
//! The read cache's hints live in each context (`Context::read_hint`, `write_hint`), so that
//! entering and leaving store one word and a task's reads stay cached across its polls.

use std::cell::{Cell, UnsafeCell};
use std::mem::ManuallyDrop;
use std::ptr;
use std::sync::atomic::Ordering;

use super::cache::Cache;
use crate::Context;

/// What the engine keeps per thread beside the thread's own context, in one thread-local so
/// that every access shares one base address. No destructor: reaching it is a plain
/// thread-local access, also from other thread-locals' destructors.
pub(super) struct Thread {
    /// The current context: the one entered last and not yet left, else the thread's own
    /// ([`OWN`]); [`UNREACHED`] until the thread first reaches its own.
    current: Cell<*mut Context>,
    /// The read cache's entries (`cache.rs`).
    pub(super) cache: Cache,
    /// Lending (`lend.rs`): `true` while maps are pinned, to release when the reads end.
    pub(super) pinned: Cell<bool>,
}

/// What [`Thread::current`] names until the thread first reaches its own context: an empty
/// context whose hints are 0 and never change. The read cache's hint reads ([`read_hint`],
/// [`write_hint`]) read it as they read any context, so they need no test for a thread's
/// first access (0 matches no entry, and the miss goes through [`with_current`]); everything
/// that reaches the context itself goes through [`current`], which makes the thread's own
/// current instead. Nothing writes to it.
static UNREACHED: Context = Context::own();

thread_local! {
    /// The thread's own context: current when nothing is entered. `ManuallyDrop`, so the
    /// thread-local has no destructor; `current::ExitGuard` drops its values at thread exit.
    static OWN: UnsafeCell<ManuallyDrop<Context>> =
        const { UnsafeCell::new(ManuallyDrop::new(Context::own())) };
    pub(super) static THREAD: Thread =
        const { Thread { current: Cell::new((&raw const UNREACHED).cast_mut()), cache: Cache::new(), pinned: Cell::new(false) } };
}

/// Runs `f` on the thread's state.
#[inline]
pub(super) fn thread<R>(f: impl FnOnce(&Thread) -> R) -> R {
    THREAD.with(f)
}

/// The current context, to reach it (the thread's own, the first time).
#[inline]
fn current() -> *mut Context {
    let current = thread(|thread| thread.current.get());
    if ptr::eq(current, &raw const UNREACHED) { reach_own() } else { current }
}

/// The current context, or [`UNREACHED`]: only to read its hints.
#[inline]
fn current_or_unreached() -> *const Context {
    thread(|thread| thread.current.get())
}

/// The thread's first access: the thread's own context becomes current.
#[cold]
#[inline(never)]
fn reach_own() -> *mut Context {
    let own = OWN.with(|own| own.get().cast::<Context>());
    thread(|thread| thread.current.set(own));
    own
}

/// The current context's read hint (see `cache.rs`).
#[inline]
pub(super) fn read_hint() -> u64 {
    // SAFETY: `current_or_unreached()` is valid: the current context (see `with_current`) or
    // `UNREACHED`, a static. A plain read of one field, with no mutable reference to the
    // context alive meanwhile (the engine makes one only inside `with_current`, and this is
    // not called from there; none is ever made to `UNREACHED`).
    unsafe { (*current_or_unreached()).read_hint }
}

/// The current context's write hint (see `cache.rs`).
#[inline]
pub(super) fn write_hint() -> u64 {
    // SAFETY: as in `read_hint`; the field is an atomic, read through a shared reference.
    unsafe { (*current_or_unreached()).write_hint.load(Ordering::Relaxed) }
}

/// Runs `f` on the current context.
///
/// `f` must not enter or leave a context, nor run user code (a value's `Clone` or `Drop`, a
/// closure of the caller's), which could: the reference would then alias the one made for
/// that code. Values it displaces are returned to the caller, who drops them afterwards.
#[inline]
pub(crate) fn with_current<R>(f: impl FnOnce(&mut Context) -> R) -> R {
    // SAFETY: `current()` points at the thread's own context, a thread-local that lives as
    // long as the thread and is never moved, or at the context of the innermost `enter` still
    // running on this thread, which holds that context's `&mut` until it has put the previous
    // pointer back (also on unwind), so it is alive and reached only through this pointer.
    // No other reference to it exists while `f` runs: the engine makes one only here, for
    // the length of `f`, and `f` neither runs user code nor enters a context, so no other call
    // of this function (or `enter`) runs meanwhile.
    f(unsafe { &mut *current() })
}

/// [`with_current`] for a closure that may change the current context's entries (or swap
/// the context's contents): the read cache's hints are reset after it.
#[inline]
pub(crate) fn change_current<R>(f: impl FnOnce(&mut Context) -> R) -> R {
    with_current(|ctx| {
        let result = f(ctx);
        ctx.read_hint = 0;
        *ctx.write_hint.get_mut() = 0;
        result
    })
}

/// A snapshot of the current context: another handle to its map, one reference-count
/// increment. The write hint is reset, since the layer now has another holder.
#[inline]
pub(crate) fn share_current() -> Context {
    with_current(|ctx| {
        *ctx.write_hint.get_mut() = 0;
        let mut snapshot = Context::from_map(ctx.map.clone());
        snapshot.read_hint = ctx.read_hint; // the same content
        snapshot
    })
}

/// Exchanges the current context's contents with `ctx`, for hooks that enter a context
/// without a closure around it (see `current::exchange_detached`).
#[inline]
pub(crate) fn swap_current(ctx: &mut Context) {
    change_current(|current| std::mem::swap(current, ctx));
}

/// `true` when a context is entered on this thread: the thread's own is not current, neither
/// by pointer nor by contents (the mark in its identity travels with them).
#[inline]
pub(crate) fn in_entered_context() -> bool {
    with_current(|ctx| ctx.id & Context::OWN == 0)
}

/// Makes `ctx` the current context while `f` runs, then makes the previous one current again,
/// also when `f` panics: the routine behind `Context::run`, every poll of a `WithContext` and
/// its drop.
#[inline]
pub(crate) fn enter<R>(ctx: &mut Context, f: impl FnOnce() -> R) -> R {
    // With watchers registered (`watch.rs`), the watched values are compared around each
    // switch; their state waits on a stack of the thread's, so the guard stays two words.
    let watched = crate::watch::active() && crate::watch::entering();
    // The pointer is used only until `_leave` puts the previous one back, while `ctx` stays
    // borrowed by this call (see `with_current`). The read cache's hints live in each context,
    // so nothing else changes. Built before the watchers run: if one panics, it switches back.
    let _leave = Leave { outer: thread(|thread| thread.current.replace(ctx)), watched };
    if watched {
        crate::watch::entered();
    }
    f()
}

/// Puts the previous context back on drop, so unwinding restores it too.
struct Leave {
    outer: *mut Context,
    /// `watch::entering` recorded the switch.
    watched: bool,
}

impl Drop for Leave {
    #[inline]
    fn drop(&mut self) {
        if self.watched {
            leave_watched(self.outer);
        } else {
            thread(|thread| thread.current.set(self.outer));
        }
    }
}

/// [`Leave`] when `watch::entering` recorded the switch: out of line.
#[cold]
#[inline(never)]
fn leave_watched(outer: *mut Context) {
    crate::watch::leaving(&mut || thread(|thread| thread.current.set(outer)));
}
