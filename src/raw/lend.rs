//! Lending: a read hands user code a reference into the current context, and the context
//! keeps it valid until that code returns.
//!
//! A read finds the value ([`cache::find`](super::cache)), raises `READING`, calls the user's
//! closure with the reference, and lowers `READING` only after the closure has returned: the
//! reference is gone by then. While `READING` is raised:
//! - nothing is written in place (`cache::replace` and the in-place search refuse, see
//!   [`is_lending`]);
//! - a change to the current context, and a detached exchange that moves a map out of it,
//!   first *pin* its map ([`pin`]): one more handle, kept until `READING` returns to 0, so
//!   the change copies what it touches and whatever it releases stays alive;
//! - entering another context moves nothing (`slot::enter`): the lent map stays in its
//!   context, which is not current and so not changed, until the entry ends.
//!
//! So a lent reference stays valid and unchanged whatever the user's closure does, a `set`
//! of the very variable included.

use std::cell::{Cell, RefCell};

use super::Shared;
use super::cache;
use super::slot::{share_current, thread};
use super::value::Value;
use crate::hamt::Layer;
use crate::stats;

thread_local! {
    /// Reads in progress that lend a reference into the current context to user code. A
    /// thread-local of its own, whose address is never taken: the compiler then knows that
    /// no value pointer reaches it, and folds its raise and drop around a read that runs no
    /// user code.
    static READING: Cell<u32> = const { Cell::new(0) };
    /// Maps pinned by changes made while a read lent a reference.
    static PINS: RefCell<Vec<Shared<Layer<Value>>>> = const { RefCell::new(Vec::new()) };
    /// Values let go of while a read may lend a reference into them (see `hold`).
    static HELD: RefCell<Vec<Value>> = const { RefCell::new(Vec::new()) };
}

/// Calls `f` with the `T` under the variable id `id` in the current context, keeping it
/// valid and unchanged while `f` runs user code.
#[inline]
pub(crate) fn lend_value<T: 'static, R>(id: u64, f: impl FnOnce(Option<&T>) -> R) -> R {
    let found = cache::find::<T>(id);
    // Lowered at the end of this function, once `f` has returned and the reference it got is
    // gone: lowering it may release pinned maps, the one lent from among them.
    let _reading = Reading::start();
    // SAFETY: `find` found this value in the current context just now (or the cache proved
    // it there), and it is a `T`. Nothing ran since. From here until `_reading` drops after
    // `f` has returned, the rules of the module docs keep it alive and unwritten.
    f(found.map(|header| unsafe { Value::get_raw::<T>(header.as_ptr()) }))
}

/// `true` while a read lends a reference into the current context: nothing may be written in
/// place, and changes must [`pin`] first.
#[inline]
pub(crate) fn is_lending() -> bool {
    READING.get() != 0
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
        READING.set(READING.get() - 1);
        if thread(|thread| thread.pinned.get()) {
            unpin();
        }
    }
}

/// Releases the pinned maps once no read lends into them (when the outermost read ends).
#[cold]
#[inline(never)]
fn unpin() {
    if READING.get() != 0 {
        return;
    }
    thread(|thread| thread.pinned.set(false));
    let pins = PINS.try_with(|pins| std::mem::take(&mut *pins.borrow_mut())).unwrap_or_default();
    if pins.iter().any(Shared::is_unique) {
        stats::count(stats::Event::PinnedMapFreed);
    }
    let held = HELD.try_with(|held| std::mem::take(&mut *held.borrow_mut())).unwrap_or_default();
    // Outside the borrows: dropping a map or a value may run values' destructors.
    drop(pins);
    drop(held);
}

/// Drops `values`, which the engine let go of outside the current context's map (the claims
/// of `claims.rs`): at once when no read lends a reference, else once the reads end, since
/// one of them may lend a reference into them.
#[cfg(feature = "tokio")]
pub(crate) fn hold(values: Vec<Value>) {
    if values.is_empty() {
        return;
    }
    if !is_lending() {
        drop(values);
        return;
    }
    let mut values = Some(values);
    if HELD.try_with(|held| held.borrow_mut().extend(values.take().into_iter().flatten())).is_ok() {
        thread(|thread| thread.pinned.set(true));
    }
    // `HELD` is gone only in a destructor at thread exit: leaked rather than freed under a read.
    std::mem::forget(values);
}

/// Keeps another handle to the current context's map until the reads in progress end: for a
/// change (or a detached exchange) made while [`is_lending`].
#[cold]
#[inline(never)]
pub(crate) fn pin() {
    let mut snapshot = share_current();
    if let Some(root) = snapshot.map.root_mut().take() {
        stats::count(stats::Event::Pinned);
        let mut root = Some(root);
        if PINS.try_with(|pins| pins.borrow_mut().extend(root.take())).is_ok() {
            thread(|thread| thread.pinned.set(true));
        }
        // `PINS` is gone only in a destructor running at thread exit: the map must still
        // outlive the read, so it is leaked rather than released early.
        std::mem::forget(root);
    }
}
