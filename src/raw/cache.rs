//! The read cache: per thread, where recent reads found their values, so that reading a
//! variable again, and replacing a value that only the current context holds, skip the walk
//! through the map.
//!
//! # The invariant
//!
//! An entry `(id, stamp, value, writable)` records that the map whose layer carried `stamp`
//! held `value` (a `T`, or nothing when null) under `id`, and with `writable`, that the layer,
//! every trie node on the way and the value itself had one holder each. It is used only while
//! the current context's layer carries the same stamp, and rests on one rule:
//!
//! > **A layer keeps a stamp only while its entries are those it had when the stamp was
//! > drawn (the values' contents aside) and no node or value below it gained a holder.**
//!
//! Code that upholds it:
//! - stamps are drawn once, never reused (`ids::unique`), by [`hamt::name_content`];
//! - every change to a layer's entries clears its stamp (`hamt::edit`, the one way to change
//!   a layer);
//! - copying a layer (`Layer::clone`, the one way a node or value below a layer gains a holder
//!   from outside it) clears the stamp of the original, and the copy starts without one;
//! - replacing a value's contents in place ([`replace`] and `current::replace_in_place`) keeps
//!   the stamp: the entry points at the allocation, which now holds the new contents.
//!
//! To spare reads and writes the walk to the layer, each context keeps two hints
//! (`Context::read_hint`, `write_hint`): the stamp of its layer for reads, and for writes that
//! stamp only while the layer is known to be held once. They travel with the context's
//! contents (a task's reads stay cached across its polls) and are reset by every change to
//! its entries and, for the write hint, by every new holder of its map. A miss reads the
//! layer again.
//!
//! So a hit reads what the map holds now. A write through an entry also checks that the
//! layer still has one holder (this context) and that the value itself still has one (a
//! handle taken out of the map, by a watcher or a claim, is a holder the stamp does not
//! see), so the value is this context's alone; a layer
//! shared when an entry is recorded is never recorded writable, since another thread could
//! copy it meanwhile. Debug builds check every hit against the map.

use std::cell::Cell;
use std::marker::PhantomData;
use std::ptr::NonNull;

use super::slot::{self, Thread, thread, with_current};
use super::value::{Header, Value};
use crate::hamt;

/// Entries in the cache: direct-mapped by the low bits of the variable id.
const SLOTS: usize = 32;

/// The entries (see the module docs), as parallel arrays, so that the slot of an id is its
/// low bits, used as an index with no multiplication.
pub(super) struct Cache {
    ids: [Cell<u64>; SLOTS],
    stamps: [Cell<u64>; SLOTS],
    values: [Cell<*const Header>; SLOTS],
    /// The entry's stamp again when it is writable, else [`NOT_WRITABLE`], which no stamp
    /// nor write hint equals: a write compares it with the write hint, one test for both.
    write_stamps: [Cell<u64>; SLOTS],
}

/// `Cache::write_stamps` of an entry that is not writable: stamps are drawn counting up
/// from 1 and never reach it.
const NOT_WRITABLE: u64 = u64::MAX;

impl Cache {
    /// No entry: id 0 is no variable's.
    pub(super) const fn new() -> Self {
        Self {
            ids: [const { Cell::new(0) }; SLOTS],
            stamps: [const { Cell::new(0) }; SLOTS],
            values: [const { Cell::new(std::ptr::null()) }; SLOTS],
            write_stamps: [const { Cell::new(NOT_WRITABLE) }; SLOTS],
        }
    }

    #[inline]
    fn record(&self, id: u64, stamp: u64, value: *const Header, writable: bool) {
        let slot = slot_of(id);
        self.ids[slot].set(id);
        self.stamps[slot].set(stamp);
        self.values[slot].set(value);
        self.write_stamps[slot].set(if writable { stamp } else { NOT_WRITABLE });
    }

    /// The value recorded for `id` under `stamp`, if that is what the entry holds.
    #[inline]
    fn hit(&self, id: u64, stamp: u64) -> Option<*const Header> {
        let slot = slot_of(id);
        (self.ids[slot].get() == id && self.stamps[slot].get() == stamp).then(|| self.values[slot].get())
    }
}

#[inline]
fn slot_of(id: u64) -> usize {
    (id as usize) % SLOTS
}

/// Finds the `T` under the variable id `id` in the current context: from the cache, else from
/// the map (then recorded). Runs no user code.
#[inline]
pub(super) fn find<T: 'static>(id: u64) -> Option<NonNull<Header>> {
    // Entries carry non-zero ids and stamps, so an unknown stamp (0) and an unused entry
    // never match; id 0 (a variable never set) matches only an unused entry, which holds
    // nothing, rightly.
    let hint = slot::read_hint();
    match thread(|thread| thread.cache.hit(id, hint)) {
        Some(value) => {
            debug_check(id, value);
            // By the invariant (module docs) the current map holds this value under `id`
            // now. It is a `T`: recorded only after `downcast_ref::<T>` said so, under the id
            // of a `ContextVar<T>`, which is invariant in `T` and alone reads under its id.
            NonNull::new(value.cast_mut())
        }
        None => find_slow::<T>(id),
    }
}

/// [`find`] on a miss: reads the layer's stamp, then, if the entry does not match it either,
/// the map, and records what it found.
#[inline(never)]
fn find_slow<T: 'static>(id: u64) -> Option<NonNull<Header>> {
    with_current(|ctx| {
        #[cfg(feature = "tokio")]
        if ctx.id & crate::Context::OWN != 0 && super::claims::any() {
            // Claims first, nothing recorded: see `claims.rs`.
            let found = super::claims::find(id, ctx)?;
            // SAFETY: `claims::find` found it, so it is a live `Value` there or in the map.
            return unsafe { Value::downcast_ptr::<T>(found) };
        }
        let root = ctx.map.root()?;
        let stamp = hamt::name_content(root);
        let layer_alone = root.is_unique();
        ctx.read_hint = stamp;
        if layer_alone && may_write_through(ctx) {
            *ctx.write_hint.get_mut() = stamp;
        }
        if let Some(value) = thread(|thread| thread.cache.hit(id, stamp)) {
            debug_check_in(ctx, id, value);
            return NonNull::new(value.cast_mut());
        }
        let (value, alone) =
            hamt::find(root, id).map_or((None, false), |(value, alone)| (Some(value), alone));
        if value.is_some_and(|value| value.downcast_ref::<T>().is_none()) {
            return None; // another type under this id: unreachable (see `find`), never recorded
        }
        // Absent, or a `T`: a hit then needs no type check.
        let writable = alone && layer_alone && value.is_some_and(Value::is_unique);
        let raw = value.map_or(std::ptr::null(), |value| value.as_ptr().as_ptr().cast_const());
        thread(|thread| thread.cache.record(id, stamp, raw, writable));
        value.map(Value::as_ptr)
    })
}

/// Replaces the `T` under `id` with `value` in place when the cache proves it this context's
/// alone (see the module docs), returning the old value and a [`Ticket`] to put one back the
/// same way; gives `value` back otherwise. The caller makes sure no read lends a reference
/// meanwhile.
#[inline]
pub(crate) fn replace<T: 'static>(id: u64, value: T) -> Result<(T, Ticket<T>), T> {
    let Some((target, stamp)) = thread(|thread| writable(thread, id)) else { return Err(value) };
    debug_check(id, target);
    crate::stats::count(crate::stats::Event::WroteThroughCache);
    // SAFETY: the current layer carries the entry's stamp and has one holder, this context
    // (the write hint says so, or `confirm_writable` just saw it); by the invariant the value
    // under `id` is this allocation, a `T` (as in `find`), held once, below nodes held once:
    // no other context reaches it. No read lends a reference into it (the caller's contract),
    // and nothing else runs meanwhile.
    let old = std::mem::replace(unsafe { Value::get_raw_mut::<T>(target) }, value);
    Ok((
        old,
        Ticket {
            target: NonNull::new(target.cast_mut()).expect("a cached value"),
            stamp,
            _type: PhantomData,
        },
    ))
}

/// Where [`replace`] wrote, to write there again: `ContextVar::scope` puts its value back with
/// it. Valid while the write hint names the same stamp.
pub(crate) struct Ticket<T> {
    target: NonNull<Header>,
    stamp: u64,
    _type: PhantomData<fn(T) -> T>,
}

/// Puts `value` back where `ticket` says, in place, when nothing changed the current context's
/// entries nor gave its layer another holder since; gives `value` back otherwise.
///
/// No read lends a reference now: the ticket was taken outside any read (the caller of
/// [`replace`] checks), on this thread (a `Ticket` is neither `Send` nor `Sync`), and reads
/// nest, each ending before the code around it goes on, also on unwind; `sync_scope`, the one
/// caller, puts back after its closure has returned (after an unwind it restores the long way).
/// Debug builds check it.
#[inline]
pub(crate) fn put_back<T: 'static>(ticket: Ticket<T>, value: T) -> Result<T, T> {
    debug_assert!(!super::is_lending(), "a ticket is used inside a read it was taken outside of");
    if ticket.stamp != slot::write_hint()
        // SAFETY: the layer still carries the stamp, so it holds this value: alive.
        || !unsafe { Value::is_unique_raw(ticket.target.as_ptr()) }
    {
        return Err(value);
    }
    crate::stats::count(crate::stats::Event::WroteThroughCache);
    // SAFETY: the write hint still names the stamp it named when `replace` wrote here: the
    // current layer carries that stamp with one holder, so (by the invariant) its entries
    // are unchanged, the value under the id `replace` wrote is still this allocation, a `T`
    // (the ticket's type), held once, below nodes held once. No read lends a reference
    // (see above).
    Ok(std::mem::replace(unsafe { Value::get_raw_mut::<T>(ticket.target.as_ptr()) }, value))
}

/// The value under `id` when its entry is writable and the current layer still carries the
/// entry's stamp with one holder.
#[inline]
fn writable(thread: &Thread, id: u64) -> Option<(*const Header, u64)> {
    let slot = slot_of(id);
    let cache = &thread.cache;
    if cache.ids[slot].get() != id {
        return None;
    }
    let stamp = cache.write_stamps[slot].get();
    let value = cache.values[slot].get();
    // The layer (its stamp and holder count), then the value's own count: a handle to the
    // value taken out of the map (a watcher's, a claim's) gives it another holder.
    // A stamp the read hint does not name either is not worth the look (`confirm_writable`):
    // it belongs to another layer nearly always (an entry left from earlier work), and when
    // not, the write goes the long way, which records the entry again.
    ((stamp == slot::write_hint() || (stamp == slot::read_hint() && confirm_writable(stamp)))
        // SAFETY: the current layer carries the entry's stamp, so (by the invariant) it holds
        // this value: alive.
        && unsafe { Value::is_unique_raw(value) })
    .then_some((value, stamp))
}

/// `true` when the current context's layer carries `stamp` and is held once; then records
/// that as the write hint.
#[inline(never)]
fn confirm_writable(stamp: u64) -> bool {
    if stamp == NOT_WRITABLE {
        return false;
    }
    // Holder count first (acquire), then the stamp: a copy made on another thread cleared the
    // stamp before it released its handle, so a layer held once shows that.
    with_current(|ctx| {
        let confirmed = may_write_through(ctx)
            && ctx.map.root().is_some_and(|root| root.is_unique() && hamt::stamp_of(root) == stamp);
        if confirmed {
            *ctx.write_hint.get_mut() = stamp;
        }
        confirmed
    })
}

/// Records that the value under `id` in the current context was just replaced in place, the
/// path to it being this context's alone: the next `set` of `id` writes through the cache.
#[inline]
pub(crate) fn record_writable(id: u64) {
    with_current(|ctx| {
        let Some(root) = ctx.map.root() else { return };
        if !may_write_through(ctx) {
            return;
        }
        if let Some((value, true)) = hamt::find(root, id) {
            if root.is_unique() && value.is_unique() {
                let stamp = hamt::name_content(root);
                let entry = value.as_ptr().as_ptr();
                *ctx.write_hint.get_mut() = stamp;
                thread(|thread| thread.cache.record(id, stamp, entry, true));
            }
        }
    });
}

/// `false` for the thread's own context with the `tokio` feature: every set there decides
/// whether it is a task's claim (`claims.rs`), so none writes through the cache.
#[inline]
fn may_write_through(ctx: &crate::Context) -> bool {
    !cfg!(feature = "tokio") || ctx.id & crate::Context::OWN == 0
}

/// Debug builds: checks a hit against the map (the invariant of the module docs).
#[inline]
fn debug_check(id: u64, value: *const Header) {
    if cfg!(debug_assertions) {
        with_current(|ctx| debug_check_in(ctx, id, value));
    }
}

/// [`debug_check`] inside [`with_current`], on the current context `ctx` (a nested
/// `with_current` would make a second `&mut` to it).
fn debug_check_in(ctx: &crate::Context, id: u64, value: *const Header) {
    if cfg!(debug_assertions) {
        let found = ctx.map.root().and_then(|root| hamt::find(root, id));
        let raw = found.map_or(std::ptr::null(), |(value, _)| value.as_ptr().as_ptr().cast_const());
        assert!(raw == value, "contextvars: a read cache entry names a value the map does not hold");
    }
}
