//! The thread's current context, and the one routine that swaps another one in.
//!
//! Every thread owns a [`Context`] in a thread-local slot, empty at first. Reads borrow it;
//! `set`/`reset` change its map in place; [`enter`] swaps a caller's context into the slot
//! for the length of a closure. `Context::run`, `WithContext::poll`, `WithContext`'s drop and
//! therefore everything else that enters a context goes through [`enter`].
//!
//! Nothing here drops a user value while the slot is borrowed: closures passed to [`update`]
//! hand whatever they displace back to their caller, who drops it after the borrow ends, so a
//! destructor that reads or sets context variables finds the slot free.

use std::cell::RefCell;

use crate::Context;

thread_local! {
    static CURRENT: RefCell<Context> = const { RefCell::new(Context::new()) };
}

/// Runs `f` on the current context. `None` once the thread-local has been destroyed (a
/// destructor running at thread exit).
///
/// The slot is never mutably borrowed while user code runs (see [`update`]), so the shared
/// borrow cannot fail; were it to, the caller sees no context rather than a panic.
#[inline]
pub(crate) fn read<R>(f: impl FnOnce(&Context) -> R) -> Option<R> {
    CURRENT.try_with(|slot| slot.try_borrow().ok().map(|ctx| f(&ctx))).ok().flatten()
}

/// Runs `f` on the current context, mutably. `None` once the thread-local has been destroyed.
///
/// `f` must not drop user values: it returns them instead.
///
/// # Panics
///
/// When called while the context is borrowed by [`read`], which only happens if a value's
/// `Clone` impl, run by `ContextVar::get`, itself sets a variable or enters a context.
#[inline]
pub(crate) fn update<R>(f: impl FnOnce(&mut Context) -> R) -> Option<R> {
    CURRENT
        .try_with(|slot| match slot.try_borrow_mut() {
            Ok(mut ctx) => f(&mut ctx),
            Err(_) => reentrant_update(),
        })
        .ok()
}

/// Runs `f` on the current context, mutably, unless the context is borrowed (a value's
/// `Clone` impl run by `ContextVar::get`) or destroyed (thread exit): then `None`.
///
/// `f` must not drop user values: it returns them instead.
pub(crate) fn try_update<R>(f: impl FnOnce(&mut Context) -> R) -> Option<R> {
    CURRENT.try_with(|slot| slot.try_borrow_mut().ok().map(|mut ctx| f(&mut ctx))).ok().flatten()
}

#[cold]
#[inline(never)]
fn reentrant_update() -> ! {
    panic!(
        "contextvars: a value's `Clone` impl, run by `ContextVar::get`, tried to change the current \
         context or take a snapshot of it; such an impl may read context variables, but not set \
         them, enter a context or call `copy_context`"
    )
}

/// What [`enter`] does with the context it entered once `f` is done.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnLeave {
    /// Freeze it, so that the caller may clone it in O(1): for contexts handed back to users.
    Freeze,
    /// Leave it as it is: for a context that is entered again later (a future between
    /// polls), or dropped.
    Keep,
}

/// Makes `ctx` the current context while `f` runs, then puts the previous one back, also
/// when `f` panics. Changes made by `f` end up in `ctx`.
///
/// Once the thread-local has been destroyed (thread exit), `f` runs without entering.
#[inline]
pub(crate) fn enter<R>(ctx: &mut Context, on_leave: OnLeave, f: impl FnOnce() -> R) -> R {
    /// Swaps back on drop, so unwinding restores the caller's context too.
    struct Restore<'a> {
        ctx: &'a mut Context,
        entered: bool,
        on_leave: OnLeave,
    }
    impl Drop for Restore<'_> {
        #[inline]
        fn drop(&mut self) {
            if self.entered {
                swap(self.ctx);
                if self.on_leave == OnLeave::Freeze {
                    self.ctx.map.freeze();
                }
            }
        }
    }

    let entered = swap(ctx);
    let _restore = Restore { ctx, entered, on_leave };
    f()
}

/// Exchanges `ctx` with the current context. Nothing is dropped.
#[inline]
fn swap(ctx: &mut Context) -> bool {
    update(|current| current.swap(ctx)).is_some()
}
