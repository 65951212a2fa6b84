//! Watchers: callbacks run on a thread whenever the value of a variable visible there changes,
//! to mirror it into something bound to the thread (a C library's per-thread state, a
//! profiler's label, the thread's name).
//!
//! While no watcher is registered, every hook below is one load of a global counter.
//! Otherwise the engine takes another handle to each watched value before a change and
//! compares after it: a set, a reset, a `sync_scope` (both ways), entering and leaving a
//! context (`Context::run`, every poll of a `WithContext` whose context holds another value),
//! and the detached exchanges of tokio's task hooks. Watchers run once the change is
//! complete, never while a panic unwinds, and may use context variables themselves.

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use crate::raw::Value;
use crate::{ContextVar, current};

/// A type-erased watcher: old and new value (before defaults).
type Callback = Arc<dyn Fn(Option<&(dyn Any + Send + Sync)>, Option<&(dyn Any + Send + Sync)>) + Send + Sync>;

/// One registration.
struct Entry {
    key: u64,
    var: u64,
    callback: Callback,
}

/// Registered watchers, counted apart so that the hooks cost one load while there are none.
static COUNT: AtomicUsize = AtomicUsize::new(0);
static REGISTRY: RwLock<Vec<Entry>> = RwLock::new(Vec::new());
static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

/// `true` when some watcher is registered.
#[inline]
pub(crate) fn active() -> bool {
    COUNT.load(Ordering::Relaxed) != 0
}

/// The watchers of one variable, or of all.
fn watchers(var: Option<u64>) -> Vec<(u64, Callback)> {
    let registry = REGISTRY.read().unwrap_or_else(PoisonError::into_inner);
    registry
        .iter()
        .filter(|entry| var.is_none_or(|var| entry.var == var))
        .map(|entry| (entry.var, Arc::clone(&entry.callback)))
        .collect()
}

/// The values of the watched variables visible now, as handles.
fn visible_now(watched: &[(u64, Callback)]) -> Vec<Option<Value>> {
    watched.iter().map(|(var, _)| current::visible(*var)).collect()
}

/// Calls the watchers whose variable's handle changed between `before` and now.
fn notify_changed(watched: &[(u64, Callback)], before: &[Option<Value>]) {
    if std::thread::panicking() {
        return;
    }
    for ((var, callback), old) in watched.iter().zip(before) {
        let new = current::visible(*var);
        let same = match (old, &new) {
            (None, None) => true,
            (Some(old), Some(new)) => old.ptr_eq(new),
            _ => false,
        };
        if !same {
            callback(old.as_ref().map(Value::as_any), new.as_ref().map(Value::as_any));
        }
    }
}

/// Runs `change` (a set, reset or restore of the variable `var`) and calls its watchers after
/// it, with the value before and after.
#[inline]
pub(crate) fn around<R>(var: u64, change: impl FnOnce() -> R) -> R {
    if !active() {
        return change();
    }
    around_now(Some(var), change)
}

/// [`around`] while watchers are registered: those of `var`, or of every variable (`None`).
#[cold]
#[inline(never)]
fn around_now<R>(var: Option<u64>, change: impl FnOnce() -> R) -> R {
    let watched = watchers(var);
    // The handle kept here also keeps the old value: the change cannot write over it in place.
    let before = visible_now(&watched);
    let result = change();
    notify_changed(&watched, &before);
    result
}

/// The watched values around a switch of the current context (entering or leaving one).
struct Switch {
    watched: Vec<(u64, Callback)>,
    before: Vec<Option<Value>>,
}

thread_local! {
    /// The switches of the contexts entered on this thread while watchers were registered,
    /// innermost last: entering is scoped, so they end in the reverse order.
    static SWITCHES: RefCell<Vec<Switch>> = const { RefCell::new(Vec::new()) };
}

/// Entering a context while watchers are registered, before the exchange: records the
/// watched values visible now. `false` when there is nothing to tell at the end.
#[cold]
#[inline(never)]
pub(crate) fn entering() -> bool {
    let watched = watchers(None);
    if watched.is_empty() {
        return false;
    }
    let before = visible_now(&watched);
    SWITCHES.try_with(|switches| switches.borrow_mut().push(Switch { watched, before })).is_ok()
}

/// After the exchange of an [`entering`] that returned `true`: calls the watchers whose value
/// changed. A watcher may enter contexts itself, so none runs while the stack is borrowed.
#[cold]
#[inline(never)]
pub(crate) fn entered() {
    let top = SWITCHES.try_with(|switches| {
        switches.borrow().last().map(|switch| (switch.watched.clone(), switch.before.clone()))
    });
    if let Ok(Some((watched, before))) = top {
        notify_changed(&watched, &before);
    }
}

/// Leaving a context entered with an [`entering`] that returned `true`: records the watched
/// values in the context being left, runs `switch_back`, then tells the watchers (never while
/// unwinding).
#[cold]
#[inline(never)]
pub(crate) fn leaving(switch_back: &mut dyn FnMut()) {
    let Some(mut switch) = SWITCHES.try_with(|switches| switches.borrow_mut().pop()).ok().flatten() else {
        return switch_back();
    };
    switch.before = visible_now(&switch.watched);
    switch_back();
    notify_changed(&switch.watched, &switch.before);
}

/// A swap of the current context's contents (tokio's task hooks), with its watchers.
pub(crate) fn swap(swap: impl FnOnce()) {
    if !active() {
        return swap();
    }
    around_now(None, swap);
}

/// The value as a `T`.
fn typed<T: 'static>(value: Option<&(dyn Any + Send + Sync)>) -> Option<&T> {
    value.and_then(|value| value.downcast_ref::<T>())
}

/// A registration made by [`ContextVar::watch`]: the watcher runs until this is dropped, or
/// for the life of the program after [`keep`](Self::keep).
#[must_use = "the watcher is removed when this is dropped: keep it, or call `keep`"]
pub struct Watch {
    key: u64,
}

impl Watch {
    /// Keeps the watcher for the life of the program.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::ContextVar;
    ///
    /// static LEVEL: ContextVar<u8> = ContextVar::new("level");
    /// LEVEL.watch(|_old, _new| ()).keep();
    /// ```
    pub fn keep(self) {
        std::mem::forget(self);
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut registry = REGISTRY.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(i) = registry.iter().position(|entry| entry.key == self.key) {
            let removed = registry.swap_remove(i);
            COUNT.fetch_sub(1, Ordering::Relaxed);
            drop(registry);
            drop(removed); // outside the lock: the callback's captures have destructors
        }
    }
}

impl fmt::Debug for Watch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watch").finish_non_exhaustive()
    }
}

impl<T: Send + Sync + 'static> ContextVar<T> {
    /// Calls `watcher` on a thread whenever the value of this variable visible there changes,
    /// with the value before and after (its default when not set): at a `set`, a `reset`, a
    /// [`sync_scope`](Self::sync_scope) (entering and leaving it), and when a context with
    /// another value for it is entered or left ([`Context::run`](crate::Context::run), every poll of a
    /// [`WithContext`](crate::WithContext), tokio's task hooks).
    ///
    /// For mirroring the value into something bound to the thread: a C library's per-thread
    /// state, a profiler's labels, the thread's name. Watchers run on the thread where the
    /// value changed, after the change is complete, never while a panic unwinds; a watcher
    /// that panics leaves the context as the change made it, and the panic goes to the code
    /// that made the change. They may read and set context variables.
    ///
    /// While no watcher is registered in the process, the engine's hooks cost one load of a
    /// global counter; with watchers, changes and context switches take another handle to
    /// each watched value and compare, and sets go through the map rather than in place.
    ///
    /// The watcher stays registered until the returned [`Watch`] is dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cell::Cell;
    /// use contextvars::{Context, ContextVar};
    ///
    /// static REQUEST_ID: ContextVar<u64> = ContextVar::new("request_id");
    ///
    /// thread_local! {
    ///     // What a profiler reads on this thread.
    ///     static LABEL: Cell<u64> = const { Cell::new(0) };
    /// }
    ///
    /// let _watch = REQUEST_ID.watch(|_old, new| LABEL.with(|label| label.set(new.copied().unwrap_or(0))));
    /// let mut request = Context::new().with_value(&REQUEST_ID, 7);
    /// request.run(|| {
    ///     assert_eq!(LABEL.with(Cell::get), 7); // entering the request's context
    ///     REQUEST_ID.set(8);
    ///     assert_eq!(LABEL.with(Cell::get), 8);
    /// });
    /// assert_eq!(LABEL.with(Cell::get), 0); // back outside
    /// ```
    pub fn watch(&'static self, watcher: impl Fn(Option<&T>, Option<&T>) + Send + Sync + 'static) -> Watch {
        let var = self.id();
        let default = self.default();
        let callback: Callback = Arc::new(move |old, new| {
            watcher(typed(old).or(default), typed(new).or(default));
        });
        let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
        REGISTRY.write().unwrap_or_else(PoisonError::into_inner).push(Entry { key, var, callback });
        COUNT.fetch_add(1, Ordering::Relaxed);
        Watch { key }
    }
}
