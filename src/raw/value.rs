//! [`Value`]: a context variable's value, type-erased behind a thin reference-counted pointer.

use std::any::{Any, TypeId};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::shared::{release, retain};

/// A context variable's value, type-erased, with the variable's name: what a trie leaf holds.
///
/// A thin reference-counted pointer (one word) to a [`Stored`]: its header says the value's
/// type, so a read checks the type with one comparison and finds the value at a fixed offset,
/// with no virtual call and no alignment lookup (what `Arc<dyn Any>` costs on every read).
pub(crate) struct Value(pub(super) NonNull<Header>);

/// The start of every [`Stored`], whatever its value's type.
#[repr(C)]
pub(super) struct Header {
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

    /// `header`, when the value behind it is a `T`.
    ///
    /// # Safety
    ///
    /// `header` is the pointer of a live `Value`.
    #[cfg(feature = "tokio")]
    pub(in crate::raw) unsafe fn downcast_ptr<T: 'static>(
        header: NonNull<Header>,
    ) -> Option<NonNull<Header>> {
        // SAFETY: a live allocation from `Value::new` (the caller's contract); its header is
        // never written but through its atomic count.
        (unsafe { header.as_ref() }.type_id == TypeId::of::<T>()).then_some(header)
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

    /// `true` when both are handles to the same value.
    #[inline]
    pub(crate) fn ptr_eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }

    /// `true` when this is the only handle to the value.
    #[inline]
    pub(crate) fn is_unique(&self) -> bool {
        self.header().count.load(Ordering::Acquire) == 1
    }

    /// `true` when the value behind `header` has one handle.
    ///
    /// # Safety
    ///
    /// `header` is the pointer of a live `Value`.
    #[inline]
    pub(in crate::raw) unsafe fn is_unique_raw(header: *const Header) -> bool {
        // SAFETY: a live allocation (the caller's contract); the count is atomic.
        unsafe { (*header).count.load(Ordering::Acquire) == 1 }
    }

    /// The allocation, for the read cache to find again without a handle.
    #[inline]
    pub(super) fn as_ptr(&self) -> NonNull<Header> {
        self.0
    }

    /// The value behind `header`, which is a `T`: no type check, for the read cache, which
    /// only records values it has checked.
    ///
    /// # Safety
    ///
    /// `header` is the pointer of a live `Value` made by `Value::new::<T>`, whose value is not
    /// written for `'a`.
    #[inline]
    pub(super) unsafe fn get_raw<'a, T: 'static>(header: *const Header) -> &'a T {
        // SAFETY: the caller's contract: a live allocation from `Value::new`.
        debug_assert!(unsafe { (*header).type_id } == TypeId::of::<T>(), "a cached value of another type");
        // SAFETY: a `Stored<T>` (the caller's contract), alive and unwritten for `'a`.
        unsafe { &(*header.cast::<Stored<T>>()).value }
    }

    /// The value behind `header`, which is a `T`, mutably: for an in-place write through the
    /// read cache.
    ///
    /// # Safety
    ///
    /// `header` is the pointer of a live `Value` made by `Value::new::<T>`, with one handle,
    /// and nothing else reads or writes the value for `'a`.
    #[inline]
    pub(super) unsafe fn get_raw_mut<'a, T: 'static>(header: *const Header) -> &'a mut T {
        // SAFETY: the caller's contract: a live allocation from `Value::new`.
        debug_assert!(unsafe { (*header).type_id } == TypeId::of::<T>(), "a cached value of another type");
        // SAFETY: a `Stored<T>` (the caller's contract), alive, and reached by nothing else for
        // `'a`. The pointer came from `Box::leak` and carries write permission.
        unsafe { &mut (*header.cast::<Stored<T>>().cast_mut()).value }
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
        retain(&self.header().count);
        Self(self.0)
    }
}

impl Drop for Value {
    #[inline]
    fn drop(&mut self) {
        let header = self.0.as_ptr();
        // SAFETY: this handle keeps the allocation alive until the decrement below.
        let (count, drop_fn) = unsafe { (&(*header).count, (*header).drop) };
        if !release(count) {
            return;
        }
        // SAFETY: that was the last handle; `drop_fn` was made for this allocation's type.
        unsafe { drop_fn(self.0) }
    }
}
