//! The crate's only `unsafe` code, in three small pieces the rest of the engine builds on:
//!
//! - [`Shared`]: a reference-counted node that is changed in place when its handle is the
//!   only one (one load of the count, no read-modify-write) and copied otherwise.
//! - [`Value`]: a type-erased, reference-counted value whose type is checked against a
//!   `TypeId` stored beside it, a plain comparison instead of `dyn Any`'s virtual call.
//! - The thread's current context as one raw pointer in a `const` thread-local without a
//!   destructor, so reaching it is a plain thread-local access, and a read cache beside it.
//! - With the `trace` feature on Unix, [`fork_generation`]: an at-fork handler, so that trace
//!   IDs drawn from a buffer of randomness never repeat in a forked child without a system
//!   call per ID.
//!
//! Each piece exists because a benchmark in `benches/context.rs` showed the safe version
//! costing a multiple of the whole operation (BENCHMARKS.md, "Core v2"). Every block states
//! the invariant it relies on; Miri checks them under Stacked and Tree Borrows.

use std::any::{Any, TypeId};
use std::cell::{Cell, UnsafeCell};
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering, fence};

use crate::hamt::Node;

/// The root of a context's trie, as the thread's [`Slot`] holds it.
pub(crate) type Root = Shared<Node<Value>>;

/// A reference-counted `T` that is mutable through a handle that is provably the only one.
///
/// Built on `Arc<UnsafeCell<T>>`: `Arc::get_mut` would check uniqueness with a
/// compare-and-swap on the weak count (no `Weak` is ever made here), where a load of the strong
/// count is enough.
pub(crate) struct Shared<T>(Arc<SharedCell<T>>);

/// The cell behind [`Shared`]: `Sync` because it is only written through a unique handle.
struct SharedCell<T>(UnsafeCell<T>);

// SAFETY: `SharedCell` is written only through `Shared::make_mut`, which requires `&mut` on the
// only handle (strong count 1, and no `Weak` exists): no other thread can read it meanwhile.
// Reads through `&Shared` on several threads are reads of a `T: Sync`.
unsafe impl<T: Send + Sync> Sync for SharedCell<T> {}

impl<T> Shared<T> {
    #[inline]
    pub(crate) fn new(value: T) -> Self {
        Self(Arc::new(SharedCell(UnsafeCell::new(value))))
    }

    #[inline]
    pub(crate) fn get(&self) -> &T {
        // SAFETY: writes happen only through `make_mut`, which needs `&mut self` on the only
        // handle; while this `&self` lives, that handle (this one or another) cannot be in
        // `make_mut` unless it is unique, and this one exists, so it is not.
        unsafe { &*self.0.0.get() }
    }

    /// `&mut T`, copying `T` into a handle of its own first when it is shared.
    #[inline]
    pub(crate) fn make_mut(&mut self) -> &mut T
    where
        T: Clone,
    {
        if Arc::strong_count(&self.0) != 1 {
            self.copy();
        }
        // Pairs with the release decrement of the handle dropped last on another thread, so
        // its reads happen before the writes made through the `&mut` below.
        fence(Ordering::Acquire);
        // SAFETY: the count is 1 (checked, or a fresh handle) and no `Weak` is ever created, so
        // this handle is the only one; `&mut self` excludes every other use of it, `get`
        // borrows included.
        unsafe { &mut *self.0.0.get() }
    }

    /// Replaces this handle with one to a copy of the value.
    #[cold]
    #[inline(never)]
    fn copy(&mut self)
    where
        T: Clone,
    {
        *self = Self::new(self.get().clone());
    }

    #[inline]
    pub(crate) fn ptr_eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Gives up the handle for a pointer that [`from_raw`](Self::from_raw) takes back.
    #[inline]
    pub(crate) fn into_raw(self) -> *const () {
        Arc::into_raw(self.0).cast()
    }

    /// Takes back a handle given up by [`into_raw`](Self::into_raw).
    ///
    /// # Safety
    ///
    /// `raw` comes from `into_raw` on a `Shared<T>` of the same `T`, and is taken back once.
    #[inline]
    unsafe fn from_raw(raw: *const ()) -> Self {
        // SAFETY: the caller hands over a pointer from `Arc::into_raw` of this type, once.
        Self(unsafe { Arc::from_raw(raw.cast::<SharedCell<T>>()) })
    }
}

impl<T> Clone for Shared<T> {
    #[inline]
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

/// A context variable's value, type-erased, with the variable's name: what a trie leaf holds.
///
/// A thin reference-counted pointer (one word) to a [`Stored`]: its header says the value's
/// type, so a read checks the type with one comparison and finds the value at a fixed offset,
/// with no virtual call and no alignment lookup (what `Arc<dyn Any>` costs on every read).
pub(crate) struct Value(NonNull<Header>);

/// The start of every [`Stored`], whatever its value's type.
#[repr(C)]
struct Header {
    count: AtomicUsize,
    type_id: TypeId,
    name: &'static str,
    /// Frees the whole `Stored<T>`, value included.
    drop: unsafe fn(NonNull<Header>),
    /// The value as `dyn Any`.
    as_any: unsafe fn(NonNull<Header>) -> *const (dyn Any + Send + Sync),
}

/// The allocation behind a [`Value`]: a header, then the value.
#[repr(C)]
struct Stored<T> {
    header: Header,
    value: T,
}

// SAFETY: a `Value` is made only from a `T: Send + Sync` (`Value::new`); the value is written
// only through `get_mut` on the only handle, and otherwise read, so handles may move to and be
// shared between threads as an `Arc<T>` can. The count is atomic.
unsafe impl Send for Value {}
// SAFETY: as above.
unsafe impl Sync for Value {}

/// Frees a `Stored<T>` made by `Value::new::<T>`.
///
/// # Safety
///
/// `header` points at a `Stored<T>` from `Value::new::<T>` that no handle uses any more.
unsafe fn drop_stored<T>(header: NonNull<Header>) {
    // SAFETY: the allocation came from `Box::into_raw` of a `Stored<T>` (the caller's contract).
    drop(unsafe { Box::from_raw(header.cast::<Stored<T>>().as_ptr()) });
}

/// The value of a `Stored<T>` as `dyn Any`.
///
/// # Safety
///
/// `header` points at a live `Stored<T>` from `Value::new::<T>`.
unsafe fn stored_as_any<T: Any + Send + Sync>(header: NonNull<Header>) -> *const (dyn Any + Send + Sync) {
    // SAFETY: the caller's contract; `&raw const` reads nothing.
    unsafe { &raw const (*header.cast::<Stored<T>>().as_ptr()).value }
}

impl Value {
    #[inline]
    pub(crate) fn new<T: Send + Sync + 'static>(name: &'static str, value: T) -> Self {
        let stored = Box::new(Stored {
            header: Header {
                count: AtomicUsize::new(1),
                type_id: TypeId::of::<T>(),
                name,
                drop: drop_stored::<T>,
                as_any: stored_as_any::<T>,
            },
            value,
        });
        // `Stored` is `repr(C)` with the header first: a pointer to it is a pointer to the
        // header, with provenance over the whole allocation.
        Self(NonNull::from(Box::leak(stored)).cast())
    }

    /// The header, shared: valid while this handle lives.
    #[inline]
    fn header(&self) -> &Header {
        // SAFETY: the allocation lives while a handle does; the header is never written but
        // through its atomic count.
        unsafe { self.0.as_ref() }
    }

    #[inline]
    pub(crate) fn name(&self) -> &'static str {
        self.header().name
    }

    /// The value, when it is a `T`.
    #[inline]
    pub(crate) fn downcast_ref<T: 'static>(&self) -> Option<&T> {
        if self.header().type_id != TypeId::of::<T>() {
            return None;
        }
        // SAFETY: the allocation is a `Stored<T>` (its `type_id` says so, and only `new::<T>`
        // writes one) and lives while `self` does. The value is written only through
        // `get_mut`, which needs `&mut` on the only handle: not while `&self` is borrowed.
        Some(unsafe { &(*self.0.cast::<Stored<T>>().as_ptr()).value })
    }

    /// The value, mutably, when it is a `T` and this is the only handle.
    #[inline]
    pub(crate) fn get_mut<T: 'static>(&mut self) -> Option<&mut T> {
        let header = self.header();
        if header.type_id != TypeId::of::<T>() || header.count.load(Ordering::Acquire) != 1 {
            return None;
        }
        // SAFETY: a `Stored<T>` (checked above) with one handle, this one, borrowed mutably:
        // nothing else reads or writes the value while the `&mut` lives. The acquire load
        // orders this after the last use through handles dropped on other threads.
        Some(unsafe { &mut (*self.0.cast::<Stored<T>>().as_ptr()).value })
    }

    /// The value behind `header`, when it is a `T`.
    ///
    /// # Safety
    ///
    /// `header` is the pointer of a live `Value` whose value is not written for `'a`.
    #[inline]
    unsafe fn downcast_raw<'a, T: 'static>(header: *const Header) -> Option<&'a T> {
        // SAFETY: the caller's contract: a live allocation from `Value::new`.
        if unsafe { (*header).type_id } != TypeId::of::<T>() {
            return None;
        }
        // SAFETY: a `Stored<T>` (its `type_id` says so), alive and unwritten for `'a`.
        Some(unsafe { &(*header.cast::<Stored<T>>()).value })
    }

    /// The value as `dyn Any`, for iteration.
    #[inline]
    pub(crate) fn as_any(&self) -> &(dyn Any + Send + Sync) {
        // SAFETY: `as_any` was made for this allocation's type by `new`; the value lives while
        // `self` does and is only read while `&self` is borrowed (see `downcast_ref`).
        unsafe { &*(self.header().as_any)(self.0) }
    }
}

impl Clone for Value {
    #[inline]
    fn clone(&self) -> Self {
        // As `Arc`: a relaxed increment, since a new handle is made from an existing one.
        if self.header().count.fetch_add(1, Ordering::Relaxed) > isize::MAX as usize {
            std::process::abort(); // handles leaked past any sane count
        }
        Self(self.0)
    }
}

impl Drop for Value {
    #[inline]
    fn drop(&mut self) {
        let header = self.0.as_ptr();
        // SAFETY: this handle keeps the allocation alive until the decrement below.
        let (count, drop_fn) = unsafe { (&(*header).count, (*header).drop) };
        if count.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        // Pairs with the release decrements of the other handles: their uses happen first.
        fence(Ordering::Acquire);
        // SAFETY: that was the last handle; `drop_fn` was made for this allocation's type.
        unsafe { drop_fn(self.0) }
    }
}

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

/// How many times this process is a `fork()` away from the one that first asked: 0 in the
/// original process, incremented in each child by an at-fork handler registered on first use.
/// `None` where no handler could be registered (then callers fall back to the process id).
#[cfg(all(unix, feature = "trace"))]
pub(crate) fn fork_generation() -> Option<u64> {
    use std::sync::Once;
    use std::sync::atomic::{AtomicBool, AtomicU64};

    static GENERATION: AtomicU64 = AtomicU64::new(0);
    static REGISTERED: AtomicBool = AtomicBool::new(false);
    static REGISTER: Once = Once::new();

    extern "C" fn in_child() {
        // Async-signal-safe: one atomic increment, nothing else, in the new child.
        GENERATION.fetch_add(1, Ordering::Relaxed);
    }

    REGISTER.call_once(|| {
        // SAFETY: `pthread_atfork` only records the handler; `in_child` is an `extern "C"` fn
        // with no arguments that lives for the whole program and does only an atomic
        // increment, which is safe in a forked child.
        let failed = unsafe { libc::pthread_atfork(None, None, Some(in_child)) };
        REGISTERED.store(failed == 0, Ordering::Release);
    });
    REGISTERED.load(Ordering::Acquire).then(|| GENERATION.load(Ordering::Relaxed))
}
