//! [`Shared`]: a reference-counted node, changed in place when its handle is the only one.

use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering, fence};

/// A reference-counted `T` that is mutable through a handle that is provably the only one.
///
/// Like `Arc<T>` without weak handles, which lets it check uniqueness with one load (where
/// `Arc::get_mut` needs a compare-and-swap on the weak count) and lets the last handle free
/// the value without a read-modify-write of the count: a handle that sees a count of 1 is the
/// only one, and no other can appear, since a clone needs a handle.
pub(crate) struct Shared<T> {
    inner: NonNull<Inner<T>>,
    /// Owns an `Inner<T>`, for the drop check and auto traits.
    _owns: PhantomData<Inner<T>>,
}

/// The allocation behind [`Shared`].
struct Inner<T> {
    count: AtomicUsize,
    value: UnsafeCell<T>,
}

// SAFETY: a `Shared<T>` gives out `&T` on any thread holding a handle and `&mut T` only to the
// only handle (`get_mut`, `make_mut`), as `Arc<T>` would with `get_mut`; the last handle drops
// the `T`, on whatever thread it is. So `T: Send + Sync` suffices, as for `Arc<T>`. The count is
// atomic.
unsafe impl<T: Send + Sync> Send for Shared<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Sync for Shared<T> {}

impl<T> Shared<T> {
    #[inline]
    pub(crate) fn new(value: T) -> Self {
        let inner = Box::new(Inner { count: AtomicUsize::new(1), value: UnsafeCell::new(value) });
        Self { inner: NonNull::from(Box::leak(inner)), _owns: PhantomData }
    }

    #[inline]
    fn inner(&self) -> &Inner<T> {
        // SAFETY: the allocation lives while a handle does; `Inner` is only read through `&`,
        // its `value` behind an `UnsafeCell`.
        unsafe { self.inner.as_ref() }
    }

    #[inline]
    pub(crate) fn get(&self) -> &T {
        // SAFETY: the value is written only through `get_mut`/`make_mut`, which need `&mut` on
        // the only handle; while this `&self` lives, no handle (this one or another) can be
        // there: this one is borrowed, and another would make this one not the only one.
        unsafe { &*self.inner().value.get() }
    }

    /// `true` when this is the only handle: a change through [`make_mut`](Self::make_mut)
    /// would then copy nothing.
    #[inline]
    pub(crate) fn is_unique(&self) -> bool {
        // Acquire: pairs with the release decrements of handles dropped on other threads, so
        // their reads happen before the writes a caller makes after seeing 1.
        self.inner().count.load(Ordering::Acquire) == 1
    }

    /// `&mut T` when this is the only handle; nothing is copied.
    #[inline]
    pub(crate) fn get_mut(&mut self) -> Option<&mut T> {
        if !self.is_unique() {
            return None;
        }
        // SAFETY: the count is 1, so this handle is the only one and no other can be made but
        // from it; `&mut self` excludes every other use of it, `get` borrows included.
        Some(unsafe { &mut *self.inner().value.get() })
    }

    /// `&mut T`, copying `T` into a handle of its own first when it is shared.
    #[inline]
    pub(crate) fn make_mut(&mut self) -> &mut T
    where
        T: Clone,
    {
        if !self.is_unique() {
            self.copy();
        }
        // SAFETY: the count is 1 (checked, or a fresh handle): as in `get_mut`.
        unsafe { &mut *self.inner().value.get() }
    }

    /// Replaces this handle with one to a copy of the value.
    #[cold]
    #[inline(never)]
    fn copy(&mut self)
    where
        T: Clone,
    {
        crate::stats::count(crate::stats::Event::CopiedNode);
        *self = Self::new(self.get().clone());
    }

    #[inline]
    pub(crate) fn ptr_eq(&self, other: &Self) -> bool {
        self.inner == other.inner
    }
}

impl<T> Clone for Shared<T> {
    #[inline]
    fn clone(&self) -> Self {
        retain(&self.inner().count);
        Self { inner: self.inner, _owns: PhantomData }
    }
}

impl<T> Drop for Shared<T> {
    #[inline]
    fn drop(&mut self) {
        if !release(&self.inner().count) {
            return;
        }
        // SAFETY: this was the last handle, so nothing else uses the allocation, which came
        // from `Box::leak` in `new`.
        drop(unsafe { Box::from_raw(self.inner.as_ptr()) });
    }
}

/// Counts one more handle on `count`, the handle count of a [`Shared`] or a
/// [`Value`](super::Value): a relaxed increment, as `Arc` does, since a new handle is made
/// from an existing one.
#[inline]
pub(super) fn retain(count: &AtomicUsize) {
    if count.fetch_add(1, Ordering::Relaxed) > isize::MAX as usize {
        std::process::abort(); // handles leaked past any sane count
    }
}

/// Counts one handle less on `count`; `true` when it was the last, and the caller frees the
/// allocation. The only handle needs no decrement: the acquire load sees every other handle's
/// release decrement, and no other can appear, since a clone needs a handle. That saves a
/// read-modify-write on the common drop of what no snapshot shares.
#[inline]
pub(super) fn release(count: &AtomicUsize) -> bool {
    if count.load(Ordering::Acquire) != 1 && count.fetch_sub(1, Ordering::Release) != 1 {
        return false;
    }
    // Pairs with the release decrements of the other handles: their uses happen first.
    fence(Ordering::Acquire);
    true
}
