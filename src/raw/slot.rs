//! The thread's current context: its trie as one raw pointer in a `const` thread-local without
//! a destructor, and the read cache beside it.

use std::cell::Cell;

use super::Shared;
use super::value::{Header, Value};
use crate::hamt::Node;

/// The root of a context's trie, as the thread's current context holds it.
pub(crate) type Root = Shared<Node<Value>>;

thread_local! {
    /// The root of the thread's current context's trie, as a raw [`Root`] the slot owns (null
    /// for the empty context). No destructor and `const`: reaching it is a plain thread-local
    /// load. The thread's own context is released at thread exit by a guard in `current.rs`.
    static ROOT: Cell<*const ()> = const { Cell::new(std::ptr::null()) };
    /// Bumped by every change of what `ROOT` holds ([`exchange_root`], [`update_root`]): the
    /// only two ways to change it. The read cache trusts entries of the current version.
    static VERSION: Cell<u64> = const { Cell::new(1) };
    /// Recent reads of the current context: variable id -> its value (null when not set),
    /// valid while `VERSION` is the one recorded. Direct-mapped by the low bits of the id.
    static CACHE: [Cell<CacheEntry>; CACHE_SLOTS] =
        const { [const { Cell::new(CacheEntry { id: 0, version: 0, value: std::ptr::null() }) }; CACHE_SLOTS] };
}

/// Entries in the read cache.
const CACHE_SLOTS: usize = 32;

/// One read cache entry: `value` is what the trie of `VERSION == version` holds under `id`.
#[derive(Clone, Copy)]
struct CacheEntry {
    id: u64,
    version: u64,
    value: *const Header,
}

/// The value under the variable id `id` in the current context, if it is a `T`: from the read
/// cache when the context is unchanged since the last read of `id`, else from the trie (and
/// then cached). `f` gets it; the caller keeps the trie unchanged while `f` runs user code, as
/// for [`peek_root`].
#[inline]
pub(crate) fn lend_value<T: 'static, R>(id: u64, f: impl FnOnce(Option<&T>) -> R) -> R {
    let slot = (id as usize) % CACHE_SLOTS;
    let entry = CACHE.with(|cache| cache[slot].get());
    if entry.id == id && entry.version == VERSION.get() {
        if entry.value.is_null() {
            return f(None);
        }
        // SAFETY: the entry was recorded (below) from a `Value` in the trie `ROOT` held at
        // `version`, and `VERSION` still equals it, so `ROOT` has not changed since: the trie,
        // and with it that value's handle, is alive and unchanged (values are written only
        // through `update_root`, which bumps `VERSION`). The caller keeps it so while `f`
        // runs (see `peek_root`). `downcast_raw` checks the type.
        return f(unsafe { Value::downcast_raw::<T>(entry.value) });
    }
    peek_root(|root| {
        let value = root.and_then(|root| crate::hamt::get_in(root, id));
        let raw = value.map_or(std::ptr::null(), |value| value.0.as_ptr().cast_const());
        CACHE.with(|cache| cache[slot].set(CacheEntry { id, version: VERSION.get(), value: raw }));
        f(value.and_then(Value::downcast_ref::<T>))
    })
}

/// Exchanges the current context's trie with `root`; ownership moves both ways.
#[inline]
pub(crate) fn exchange_root(root: &mut Option<Root>) {
    let incoming = root.take().map_or(std::ptr::null(), Root::into_raw);
    let outgoing = ROOT.replace(incoming);
    VERSION.set(VERSION.get() + 1);
    if !outgoing.is_null() {
        // SAFETY: every pointer stored in `ROOT` comes from `Root::into_raw` (here and in
        // `update_root`), and leaves it once: here, or in `update_root`, which writes back.
        *root = Some(unsafe { Root::from_raw(outgoing) });
    }
}

/// `true` when the current context is empty.
#[inline]
pub(crate) fn root_is_empty() -> bool {
    ROOT.get().is_null()
}

/// Runs `f` on the current context's trie, borrowed in place.
///
/// The caller keeps the trie alive and unchanged while `f` runs user code: it raises the
/// reading count of `current.rs` first, and every change made meanwhile pins the trie and
/// copies rather than writing in place or dropping it.
#[inline]
pub(crate) fn peek_root<R>(f: impl FnOnce(Option<&Root>) -> R) -> R {
    let raw = ROOT.get();
    if raw.is_null() {
        return f(None);
    }
    // SAFETY: `raw` came from `Root::into_raw` and `ROOT` still owns it. The handle rebuilt here
    // is never dropped (`ManuallyDrop`), so the count is untouched. While `f` runs, the trie can
    // leave `ROOT` only through `exchange_root` or `update_root`; the engine calls those with the
    // reading count raised, and then pins the trie (one more handle) and copies it instead of
    // changing or dropping it (see `current.rs`), so the node stays valid and unchanged.
    let handle = std::mem::ManuallyDrop::new(unsafe { Root::from_raw(raw) });
    f(Some(&handle))
}

/// Runs `f` on the current context's trie, mutably, in place. `f` must not touch the current
/// context (it is not valid there while `f` runs) nor drop user values.
#[inline]
pub(crate) fn update_root<R>(f: impl FnOnce(&mut Option<Root>) -> R) -> R {
    /// Writes the trie back, also if `f` unwinds.
    struct WriteBack(Option<Root>);

    impl Drop for WriteBack {
        #[inline]
        fn drop(&mut self) {
            ROOT.set(self.0.take().map_or(std::ptr::null(), Root::into_raw));
            VERSION.set(VERSION.get() + 1);
        }
    }

    let raw = ROOT.get();
    let mut root = WriteBack(if raw.is_null() {
        None
    } else {
        // SAFETY: as in `exchange_root`: `raw` is owned by `ROOT`; ownership moves into the
        // guard, which stores the (possibly new) trie back into `ROOT` when it is dropped, and
        // nothing reads `ROOT` in between (`f` may not touch the current context).
        Some(unsafe { Root::from_raw(raw) })
    });
    f(&mut root.0)
}
