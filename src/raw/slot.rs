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
//! Beside the pointer, the thread keeps two hints for the read cache ([`Thread`]). Entering and
//! leaving reset them, and so does every change to the current context's entries.

use std::cell::{Cell, UnsafeCell};
use std::mem::ManuallyDrop;
use std::ptr;

use super::cache::Cache;
use crate::Context;

/// What the engine keeps per thread beside the thread's own context, in one thread-local so
/// that every access shares one base address. No destructor: reaching it is a plain
/// thread-local access, also from other thread-locals' destructors.
pub(super) struct Thread {
    /// The context entered last and not yet left; null when none is entered (then [`OWN`] is
    /// current).
    entered: Cell<*mut Context>,
    /// The read cache's hints: what the thread knows of the current context, 0 for "not
    /// known". Entering and leaving a context reset both, and so do the events named below.
    ///
    /// `read`: 0, or a stamp the current context's layer carried since the context became
    /// current, its entries unchanged since (in-place replacements of values aside). Reset
    /// by every change to the current context's entries.
    pub(super) read_hint: Cell<u64>,
    /// `write`: 0, or the stamp the current context's layer carries, seen with that layer
    /// held once, and held once since: reset by every change to the current context's entries
    /// and by every new handle to its layer (a snapshot, a pin), the only ways another holder
    /// can appear while it is held once.
    pub(super) write_hint: Cell<u64>,
    /// The read cache's entries (`cache.rs`).
    pub(super) cache: Cache,
}

thread_local! {
    /// The thread's own context: current when nothing is entered. `ManuallyDrop`, so the
    /// thread-local has no destructor; `current::ExitGuard` drops its values at thread exit.
    static OWN: UnsafeCell<ManuallyDrop<Context>> =
        const { UnsafeCell::new(ManuallyDrop::new(Context::own())) };
    pub(super) static THREAD: Thread = const {
        Thread {
            entered: Cell::new(ptr::null_mut()),
            read_hint: Cell::new(0),
            write_hint: Cell::new(0),
            cache: Cache::new(),
        }
    };
}

/// Runs `f` on the thread's state.
#[inline]
pub(super) fn thread<R>(f: impl FnOnce(&Thread) -> R) -> R {
    THREAD.with(f)
}

#[inline]
fn reset_hints(thread: &Thread) {
    thread.read_hint.set(0);
    thread.write_hint.set(0);
}

/// The current context: the one entered last, else the thread's own.
#[inline]
fn current() -> *mut Context {
    let entered = thread(|thread| thread.entered.get());
    if entered.is_null() { OWN.with(|own| own.get().cast::<Context>()) } else { entered }
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
    let result = with_current(f);
    thread(reset_hints);
    result
}

/// A snapshot of the current context: another handle to its map, one reference-count
/// increment. The write hint is reset, since the layer now has another holder.
#[inline]
pub(crate) fn share_current() -> Context {
    thread(|thread| thread.write_hint.set(0));
    with_current(|ctx| Context::from_map(ctx.map.clone()))
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
    /// Puts the previous context back on drop, so unwinding restores it too.
    struct Leave(*mut Context);

    impl Drop for Leave {
        #[inline]
        fn drop(&mut self) {
            thread(|thread| {
                thread.entered.set(self.0);
                reset_hints(thread);
            });
        }
    }

    // The pointer is used only until `_leave` puts the previous one back, while `ctx` stays
    // borrowed by this call (see `with_current`).
    let _leave = thread(|thread| {
        reset_hints(thread);
        Leave(thread.entered.replace(ctx))
    });
    f()
}
