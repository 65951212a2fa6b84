//! [`Shared`]: a reference-counted node, changed in place when its handle is the only one.

use std::cell::UnsafeCell;
use std::sync::Arc;
use std::sync::atomic::{Ordering, fence};

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

    /// `&mut T` when this is the only handle; nothing is copied.
    #[inline]
    pub(crate) fn get_mut(&mut self) -> Option<&mut T> {
        if Arc::strong_count(&self.0) != 1 {
            return None;
        }
        // As in `make_mut`.
        fence(Ordering::Acquire);
        // SAFETY: the count is 1 and no `Weak` is ever created, so this handle is the only
        // one; `&mut self` excludes every other use of it, `get` borrows included.
        Some(unsafe { &mut *self.0.0.get() })
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
    pub(super) unsafe fn from_raw(raw: *const ()) -> Self {
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
