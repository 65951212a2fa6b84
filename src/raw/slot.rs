//! The thread's current context: its map as one raw pointer in a `const` thread-local without
//! a destructor, and the read cache beside it.
//!
//! The read cache remembers, per variable, where its value sits in the map of a given
//! *stamp*: a number naming a map's content, kept in the map's layer (see `hamt.rs`). Copies of
//! a map share its layer and so its stamp; every change clears it (0 names nothing), except
//! [`replace_in_place`], which changes no node and no handle, only the contents of one
//! unshared value, which an entry then reads as the new value. Stamps are handed out once (by
//! `ids::unique`), so an entry recorded under stamp `s` is valid exactly while the current
//! map's layer carries `s`: across entering and leaving contexts, such as the polls of one
//! task, reads stay cached, and entering a context moves one word.

use std::cell::Cell;

use super::Shared;
use super::value::{Header, Value};
use crate::hamt::{self, IdMap, Layer};

/// The layer of a context's map, as the thread's current context holds it.
pub(crate) type Root = Shared<Layer<Value>>;

thread_local! {
    /// The layer of the thread's current context's map, as a raw [`Root`] the slot owns (null
    /// for the empty context). No destructor and `const`: reaching it is a plain thread-local
    /// load. The thread's own context is released at thread exit by a guard in `current.rs`.
    static ROOT: Cell<*const ()> = const { Cell::new(std::ptr::null()) };
    /// Recent reads of the current context: variable id -> its value (null when not set) in
    /// the map of the recorded stamp. Direct-mapped by the low bits of the id.
    static CACHE: [Cell<CacheEntry>; CACHE_SLOTS] =
        const { [const { Cell::new(CacheEntry { id: 0, stamp: 0, value: std::ptr::null() }) }; CACHE_SLOTS] };
}

/// Entries in the read cache.
const CACHE_SLOTS: usize = 32;

/// One read cache entry: `value` is what the map stamped `stamp` holds under `id`.
#[derive(Clone, Copy)]
struct CacheEntry {
    id: u64,
    stamp: u64,
    value: *const Header,
}

/// The value under the variable id `id` in the current context, if it is a `T`: from the read
/// cache when the current map carries the stamp the entry was recorded under, else from the
/// map (and then cached). `f` gets it; the caller keeps the map unchanged while `f` runs
/// user code, as for [`peek_root`].
#[inline]
pub(crate) fn lend_value<T: 'static, R>(id: u64, f: impl FnOnce(Option<&T>) -> R) -> R {
    let entry = CACHE.with(|cache| cache[cache_slot(id)].get());
    // Entries are recorded with non-zero stamps and ids, so an unstamped map (or none, the
    // empty context) never matches.
    if entry.id == id && entry.stamp == peek_root(|root| root.map_or(0, hamt::stamp_of)) {
        if entry.value.is_null() {
            return f(None);
        }
        // SAFETY: the entry was recorded (in `lend_value_slow`) from a `Value` held by the map
        // whose layer carried `entry.stamp`, and the current map's layer carries it. A stamp is
        // drawn once, for one layer, which keeps it only while its content does not change:
        // every change clears it (`hamt::edit`; in-place replacements change no handle), and a
        // copy of a layer starts without one. So the current layer is that one, unchanged, and
        // holds that value's handle: alive, unwritten. The caller keeps it so while `f` runs
        // (see `peek_root`).
        // The value is a `T`: `lend_value_slow::<U>` records only values it checked to be a
        // `U`, under the id it was asked for; an id is drawn once by one `ContextVar<T>`
        // (`ContextVar::id`), and only that variable reads under it, so `U` is this `T`.
        return f(Some(unsafe { Value::get_raw::<T>(entry.value) }));
    }
    lend_value_slow(id, f)
}

/// [`lend_value`] on a cache miss: reads the map and records the entry.
#[inline(never)]
fn lend_value_slow<T: 'static, R>(id: u64, f: impl FnOnce(Option<&T>) -> R) -> R {
    peek_root(|root| {
        let Some(root) = root else { return f(None) };
        let value = hamt::get_in(root, id);
        let stamp = hamt::name_content(root);
        let found = value.and_then(Value::downcast_ref::<T>);
        // Recorded when absent or a `T`: a hit then needs no type check (see `lend_value`).
        if value.is_none() || found.is_some() {
            let raw = value.map_or(std::ptr::null(), |value| value.0.as_ptr().cast_const());
            CACHE.with(|cache| cache[cache_slot(id)].set(CacheEntry { id, stamp, value: raw }));
        }
        f(found)
    })
}

#[inline]
fn cache_slot(id: u64) -> usize {
    (id as usize) % CACHE_SLOTS
}

/// Exchanges the current context's map with `map`; ownership moves both ways.
#[inline]
pub(crate) fn exchange(map: &mut IdMap<Value>) {
    let root = map.root_mut();
    let incoming = Root::option_into_raw(root.take());
    // SAFETY: every pointer stored in `ROOT` comes from `Root::option_into_raw` (here and in
    // `update_root`), and leaves it once: here, or in `update_root`, which writes one back.
    *root = unsafe { Root::option_from_raw(ROOT.replace(incoming)) };
}

/// A copy of the current map, sharing its layer (and so its stamp): one reference-count
/// increment.
#[inline]
pub(crate) fn snapshot() -> IdMap<Value> {
    IdMap::from_root(another_root())
}

/// Another handle to the current map's layer: one reference-count increment.
#[inline]
pub(crate) fn another_root() -> Option<Root> {
    /// Named: `Option::cloned` as a path is not general enough over the borrow's lifetime.
    fn cloned(root: Option<&Root>) -> Option<Root> {
        root.cloned()
    }
    peek_root(cloned)
}

/// `true` when the current context is empty.
#[inline]
pub(crate) fn root_is_empty() -> bool {
    ROOT.get().is_null()
}

/// Runs `f` on the current context's map (its layer), borrowed in place.
///
/// The caller keeps the trie alive and unchanged while `f` runs user code: it raises the
/// reading count of `current.rs` first, and every change made meanwhile pins the trie and
/// copies rather than writing in place or dropping it.
#[inline]
fn peek_root<R>(f: impl FnOnce(Option<&Root>) -> R) -> R {
    let raw = ROOT.get();
    if raw.is_null() {
        return f(None);
    }
    // SAFETY: `raw` came from `Root::into_raw` and `ROOT` still owns it. The handle rebuilt here
    // is never dropped (`ManuallyDrop`), so the count is untouched. While `f` runs, the trie can
    // leave `ROOT` only through `exchange` or `update_root`; the engine calls those with the
    // reading count raised, and then pins the trie (one more handle) and copies it instead of
    // changing or dropping it (see `current.rs`), so the node stays valid and unchanged.
    let handle = std::mem::ManuallyDrop::new(unsafe { Root::from_raw(raw) });
    f(Some(&handle))
}

/// Runs `f` on the current context's values, mutably, in place (a change clears the stamp).
/// `f` must not touch the current context (it is not valid there while `f` runs) nor drop
/// user values.
#[inline]
pub(crate) fn update_root<R>(f: impl FnOnce(&mut IdMap<Value>) -> R) -> R {
    /// Writes the trie back, also if `f` unwinds.
    struct WriteBack(IdMap<Value>);

    impl Drop for WriteBack {
        #[inline]
        fn drop(&mut self) {
            ROOT.set(Root::option_into_raw(self.0.root_mut().take()));
        }
    }

    // SAFETY: as in `exchange`: the pointer is owned by `ROOT`; ownership moves into the guard,
    // which stores the (possibly new) trie back into `ROOT` when it is dropped, and nothing
    // reads `ROOT` in between (`f` may not touch the current context).
    let mut map = WriteBack(IdMap::from_root(unsafe { Root::option_from_raw(ROOT.get()) }));
    f(&mut map.0)
}

/// Replaces the `T` stored under the variable id `id` in the current context with `value`, in
/// place, when its layer, the path to it and the value are not shared: no node or handle changes,
/// so the map keeps its stamp and the read cache stays valid (an entry for `id` points at the
/// same allocation, which now holds `value`). Gives `value` back when it cannot.
///
/// As for [`update_root`], the caller makes sure no read lends a reference into the trie.
#[inline]
pub(crate) fn replace_in_place<T: 'static>(id: u64, value: T) -> Result<T, T> {
    let raw = ROOT.get();
    if raw.is_null() {
        return Err(value);
    }
    // SAFETY: `raw` is owned by `ROOT`. The handle rebuilt here is never dropped
    // (`ManuallyDrop`) and stays the one `ROOT` holds: nothing here replaces it, so `ROOT` needs
    // no write back, also on unwind. The caller makes sure that no read lends a reference into
    // the trie meanwhile, so the `&mut` below is the only access.
    let mut root = std::mem::ManuallyDrop::new(unsafe { Root::from_raw(raw) });
    match hamt::get_mut_in_place(&mut root, id).and_then(Value::get_mut::<T>) {
        Some(slot) => Ok(std::mem::replace(slot, value)),
        None => Err(value),
    }
}
