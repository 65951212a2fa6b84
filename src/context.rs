//! [`Context`]: an immutable snapshot of context variables, and [`copy_context`].

use std::any::Any;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::hamt::IdMap;
use crate::raw::Value;
use crate::{ContextVar, current};

/// A mapping from context variables to values: what [`ContextVar::get`] reads.
///
/// Every thread has a *current* context, empty when the thread starts. [`ContextVar::set`]
/// changes it; [`Context::current`] (or [`copy_context`]) takes a snapshot of it in O(1);
/// [`Context::run`] makes another context current while a closure runs, and
/// [`WithContext`](crate::WithContext) does the same on every poll of a future.
///
/// A `Context` is a value: cloning it gives an *independent* context holding the same
/// values (Python's `ctx.copy()`), and changes made while one is entered never show in the
/// others. The values live in a persistent hash array mapped trie shared between clones.
///
/// | operation | cost |
/// |---|---|
/// | [`clone`](Clone::clone), [`current`](Self::current), [`copy_context`] | O(1), one atomic increment |
/// | [`get`](Self::get), [`contains`](Self::contains), [`ContextVar::get`] | O(log32 n), no allocation |
/// | [`ContextVar::set`], [`ContextVar::reset`] | O(log32 n); in place when the context is not shared |
/// | [`with_value`](Self::with_value), [`without`](Self::without) | O(log32 n), copies one path |
/// | [`run`](Self::run), one poll of [`WithContext`](crate::WithContext) | O(1), two swaps of a thread-local |
/// | [`len`](Self::len), [`is_empty`](Self::is_empty) | O(1) |
///
/// # Examples
///
/// ```
/// use contextvars::{Context, ContextVar};
///
/// static USER: ContextVar<String> = ContextVar::new("user");
///
/// USER.set("alice".to_string());
/// let mut ctx = Context::current(); // a snapshot
/// USER.set("bob".to_string());
///
/// // the snapshot still holds alice; sets made inside `run` stay in `ctx`
/// ctx.run(|| {
///     assert_eq!(USER.get().as_deref(), Some("alice"));
///     USER.set("carol".to_string());
/// });
/// assert_eq!(USER.get().as_deref(), Some("bob"));
/// assert_eq!(ctx.get(&USER).map(String::as_str), Some("carol"));
/// ```
pub struct Context {
    pub(crate) map: IdMap<Value>,
    /// Identity for tokens; 0 until the first `set` in this context. Never copied by `clone`.
    /// [`Context::OWN`] marks the thread's own context: it travels with its contents when
    /// they are exchanged with another context's (tokio's task hooks do so).
    pub(crate) id: u64,
    /// The read cache's hints for this context (`raw/cache.rs`). `read_hint`: 0, or a stamp
    /// this context's layer carried, its entries unchanged since (in-place replacements of
    /// values aside); reset by every change to its entries. `write_hint`: 0, or the stamp its
    /// layer carries, seen with the layer held once, and no other holder made since: reset by
    /// every change to its entries and every new handle to its map (a clone, a snapshot, a
    /// pin, `with_value`, `without`), the only ways another holder can appear.
    pub(crate) read_hint: u64,
    pub(crate) write_hint: AtomicU64,
}

impl Context {
    /// An empty context.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::{Context, ContextVar};
    ///
    /// static N: ContextVar<u32> = ContextVar::with_default("n", 7);
    ///
    /// N.set(1);
    /// let mut empty = Context::new();
    /// assert!(empty.is_empty());
    /// assert_eq!(empty.run(|| N.get()), Some(7)); // only the default is seen
    /// ```
    #[must_use]
    pub const fn new() -> Self {
        Self { map: IdMap::new(), id: 0, read_hint: 0, write_hint: AtomicU64::new(0) }
    }

    /// A snapshot of the current thread's context. O(1), whatever the number of variables.
    ///
    /// Later changes to the current context do not show in the snapshot, nor the other way
    /// round. Same as [`copy_context`].
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::{Context, ContextVar};
    ///
    /// static N: ContextVar<u32> = ContextVar::new("n");
    ///
    /// N.set(1);
    /// let snapshot = Context::current();
    /// N.set(2);
    /// assert_eq!(snapshot.get(&N), Some(&1));
    /// ```
    ///
    #[must_use]
    pub fn current() -> Self {
        current::snapshot()
    }

    /// Makes this context the current one while `f` runs, then restores the caller's.
    ///
    /// Variables set inside `f` stay set in `self` afterwards and never show in the caller's
    /// context. The caller's context is restored when `f` returns and when it panics.
    /// Taking `&mut self` means a context cannot be entered twice at once.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::{Context, ContextVar};
    ///
    /// static N: ContextVar<u32> = ContextVar::new("n");
    ///
    /// let mut ctx = Context::new();
    /// let seen = ctx.run(|| {
    ///     N.set(5);
    ///     N.get()
    /// });
    /// assert_eq!(seen, Some(5));
    /// assert_eq!(N.get(), None); // the caller's context never changed
    /// assert_eq!(ctx.get(&N), Some(&5)); // the value stayed in `ctx`
    /// ```
    ///
    /// Entering a context that is already entered (Python's "is already entered" error) does
    /// not compile:
    ///
    /// ```compile_fail
    /// let mut ctx = contextvars::Context::new();
    /// ctx.run(|| ctx.run(|| ())); // error: `ctx` is already borrowed mutably
    /// ```
    ///
    /// # Panics
    ///
    /// Whatever `f` panics with, after the caller's context is restored.
    pub fn run<R>(&mut self, f: impl FnOnce() -> R) -> R {
        current::enter(self, f)
    }

    /// The value `var` has in this context, if it was set here. Defaults are not consulted.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::{Context, ContextVar};
    ///
    /// static N: ContextVar<u32> = ContextVar::with_default("n", 0);
    ///
    /// let ctx = Context::new().with_value(&N, 3);
    /// assert_eq!(ctx.get(&N), Some(&3));
    /// assert_eq!(Context::new().get(&N), None);
    /// ```
    #[must_use]
    pub fn get<T: Send + Sync + 'static>(&self, var: &ContextVar<T>) -> Option<&T> {
        self.map.get(var.raw_id()?).and_then(Value::downcast_ref::<T>)
    }

    /// `true` when `var` is set in this context (a default does not count).
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::{Context, ContextVar};
    ///
    /// static N: ContextVar<u32> = ContextVar::with_default("n", 0);
    ///
    /// assert!(!Context::new().contains(&N));
    /// assert!(Context::new().with_value(&N, 1).contains(&N));
    /// ```
    #[must_use]
    pub fn contains<T: Send + Sync + 'static>(&self, var: &ContextVar<T>) -> bool {
        var.raw_id().is_some_and(|id| self.map.contains_key(id))
    }

    /// Number of variables set in this context.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::{Context, ContextVar};
    ///
    /// static A: ContextVar<u8> = ContextVar::new("a");
    /// static B: ContextVar<u8> = ContextVar::new("b");
    ///
    /// let ctx = Context::new().with_value(&A, 1).with_value(&B, 2).with_value(&A, 3);
    /// assert_eq!(ctx.len(), 2);
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// `true` when no variable is set in this context.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(contextvars::Context::new().is_empty());
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The variables set in this context, in no particular order: each an [`Entry`] with the
    /// variable's name and its value, readable at its type.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::{Context, ContextVar};
    ///
    /// static USER: ContextVar<&str> = ContextVar::new("user");
    /// static TENANT: ContextVar<u32> = ContextVar::new("tenant");
    ///
    /// let ctx = Context::new().with_value(&USER, "alice");
    /// for entry in ctx.iter() {
    ///     assert_eq!(entry.name(), "user");
    ///     assert!(entry.is(&USER) && !entry.is(&TENANT));
    ///     assert_eq!(entry.get(&USER), Some(&"alice"));
    ///     assert_eq!(entry.downcast_ref::<&str>(), Some(&"alice"));
    /// }
    /// ```
    #[must_use]
    pub fn iter(&self) -> Iter<'_> {
        Iter { inner: self.map.iter() }
    }

    /// A new context holding the same values as this one, with `var` set to `value`.
    ///
    /// `self` is not changed. Copies one path of the trie: O(log32 n).
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::{Context, ContextVar};
    ///
    /// static N: ContextVar<u32> = ContextVar::new("n");
    ///
    /// let base = Context::new();
    /// let with = base.with_value(&N, 1);
    /// assert_eq!((base.get(&N), with.get(&N)), (None, Some(&1)));
    /// ```
    #[must_use]
    pub fn with_value<T: Send + Sync + 'static>(&self, var: &ContextVar<T>, value: T) -> Context {
        self.write_hint.store(0, Ordering::Relaxed); // another holder of the map
        let mut map = self.map.clone();
        // What this displaces is still held by `self`: dropping it here runs no destructor.
        drop(map.insert(var.id(), Value::new(var.name(), value)));
        Context { map, id: 0, read_hint: 0, write_hint: AtomicU64::new(0) }
    }

    /// A new context holding the same values as this one, without `var`.
    ///
    /// `self` is not changed. Copies one path of the trie: O(log32 n).
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::{Context, ContextVar};
    ///
    /// static N: ContextVar<u32> = ContextVar::new("n");
    ///
    /// let with = Context::new().with_value(&N, 1);
    /// assert!(!with.without(&N).contains(&N));
    /// assert!(with.contains(&N));
    /// ```
    #[must_use]
    pub fn without<T: Send + Sync + 'static>(&self, var: &ContextVar<T>) -> Context {
        self.write_hint.store(0, Ordering::Relaxed); // another holder of the map
        let mut map = self.map.clone();
        if let Some(id) = var.raw_id() {
            drop(map.remove(id)); // still held by `self`, as in `with_value`
        }
        Context { map, id: 0, read_hint: 0, write_hint: AtomicU64::new(0) }
    }

    /// A copy of this context without its variables that are not inherited
    /// ([`ContextVar::not_inherited`]): what a task, job or thread started from it gets.
    ///
    /// A snapshot ([`Context::current`], [`clone`](Clone::clone)) keeps every variable; a
    /// copy made to start new work in leaves out those declared not inherited. O(1) when none
    /// is set; otherwise one path copy per such variable set.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::{Context, ContextVar};
    ///
    /// static USER: ContextVar<&str> = ContextVar::new("user");
    /// static SCRATCH: ContextVar<u32> = ContextVar::new("scratch").not_inherited();
    ///
    /// let ctx = Context::new().with_value(&USER, "alice").with_value(&SCRATCH, 1);
    /// let inherited = ctx.inherited();
    /// assert_eq!((inherited.get(&USER), inherited.get(&SCRATCH)), (Some(&"alice"), None));
    /// assert_eq!(ctx.get(&SCRATCH), Some(&1));
    /// ```
    #[must_use]
    pub fn inherited(&self) -> Context {
        if self.map.marked().is_empty() {
            return self.clone();
        }
        self.write_hint.store(0, Ordering::Relaxed); // another holder of the map
        Context::from_map(self.map.without_marked())
    }

    /// [`inherited`](Self::inherited), taking the context: no copy when nothing is left out.
    pub(crate) fn into_inherited(self) -> Context {
        if self.map.marked().is_empty() { self } else { self.inherited() }
    }

    /// Wraps `f` so that it runs in this context, wherever it is called: the way to hand the
    /// caller's values to a thread pool.
    ///
    /// It starts new work, so it runs in the [`inherited`](Self::inherited) copy: variables
    /// declared [not inherited](ContextVar::not_inherited) are left out. To run in the context
    /// itself, all of it, call [`run`](Self::run).
    ///
    /// The closure returned is `Send` when `f` is.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::{Context, ContextVar};
    ///
    /// static REQUEST: ContextVar<u64> = ContextVar::new("request");
    ///
    /// REQUEST.set(42);
    /// let job = Context::current().wrap(|| REQUEST.get());
    /// let seen = std::thread::spawn(job).join().unwrap();
    /// assert_eq!(seen, Some(42));
    /// ```
    #[must_use = "the closure runs nothing until it is called"]
    pub fn wrap<R>(self, f: impl FnOnce() -> R) -> impl FnOnce() -> R {
        let mut ctx = self.into_inherited();
        move || ctx.run(f)
    }

    /// The bit of [`id`](Self::id) that marks the thread's own context; never drawn by
    /// `ids::unique`.
    pub(crate) const OWN: u64 = 1 << 63;

    /// The bit of a token's context identity that marks a `set` the running tokio task made
    /// as a claim in the thread's own context (`raw/claims.rs`).
    pub(crate) const CLAIM: u64 = 1 << 62;

    /// The thread's own context, empty.
    pub(crate) const fn own() -> Self {
        Self { map: IdMap::new(), id: Self::OWN, read_hint: 0, write_hint: AtomicU64::new(0) }
    }

    /// A context holding `map`, with no identity yet.
    pub(crate) fn from_map(map: IdMap<Value>) -> Self {
        Self { map, id: 0, read_hint: 0, write_hint: AtomicU64::new(0) }
    }
}

impl Clone for Context {
    /// An independent context holding the same values. O(1).
    fn clone(&self) -> Self {
        self.write_hint.store(0, Ordering::Relaxed); // another holder of the map
        Self { map: self.map.clone(), id: 0, read_hint: self.read_hint, write_hint: AtomicU64::new(0) }
    }
}

// A context is a map of values that are only ever replaced, never mutated in place through
// a shared reference, and every path that changes the current context restores it on unwind:
// observing one after a caught panic shows a consistent state. (Without these impls the
// type-erased values would make every `Context` `!UnwindSafe`.)
impl std::panic::UnwindSafe for Context {}
impl std::panic::RefUnwindSafe for Context {}

impl Default for Context {
    /// An empty context.
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Context {
    /// Lists the names of the variables set, not their values (which need not be `Debug`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Names<'a>(&'a Context);
        impl fmt::Debug for Names<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list().entries(self.0.iter().map(|entry| entry.name())).finish()
            }
        }
        f.debug_struct("Context").field("vars", &Names(self)).finish()
    }
}

impl<'a> IntoIterator for &'a Context {
    type Item = Entry<'a>;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// Iterator for [`Context::iter`].
pub struct Iter<'a> {
    inner: crate::hamt::Iter<'a, Value>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = Entry<'a>;

    fn next(&mut self) -> Option<Entry<'a>> {
        self.inner.next().map(|(id, value)| Entry { id, value })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl ExactSizeIterator for Iter<'_> {}
impl std::iter::FusedIterator for Iter<'_> {}

impl fmt::Debug for Iter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter").field("remaining", &self.len()).finish_non_exhaustive()
    }
}

/// One variable set in a [`Context`], as [`Context::iter`] yields it.
#[derive(Clone, Copy)]
pub struct Entry<'a> {
    id: u64,
    value: &'a Value,
}

impl<'a> Entry<'a> {
    /// The variable's name, as given to [`ContextVar::new`].
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::{Context, ContextVar};
    ///
    /// static USER: ContextVar<&str> = ContextVar::new("user");
    ///
    /// let ctx = Context::new().with_value(&USER, "alice");
    /// assert_eq!(ctx.iter().map(|entry| entry.name()).collect::<Vec<_>>(), ["user"]);
    /// ```
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.value.name()
    }

    /// `true` when this is the value of `var`.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::{Context, ContextVar};
    ///
    /// static A: ContextVar<u8> = ContextVar::new("same name");
    /// static B: ContextVar<u8> = ContextVar::new("same name");
    ///
    /// let ctx = Context::new().with_value(&A, 1);
    /// let entry = ctx.iter().next().unwrap();
    /// assert!(entry.is(&A) && !entry.is(&B)); // names need not be unique; variables are
    /// ```
    #[must_use]
    pub fn is<T: Send + Sync + 'static>(&self, var: &ContextVar<T>) -> bool {
        var.raw_id() == Some(self.id)
    }

    /// The value, when this is the value of `var`.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::{Context, ContextVar};
    ///
    /// static N: ContextVar<u32> = ContextVar::new("n");
    ///
    /// let ctx = Context::new().with_value(&N, 7);
    /// let values: Vec<u32> = ctx.iter().filter_map(|entry| entry.get(&N).copied()).collect();
    /// assert_eq!(values, [7]);
    /// ```
    #[must_use]
    pub fn get<T: Send + Sync + 'static>(&self, var: &ContextVar<T>) -> Option<&'a T> {
        if self.is(var) { self.value.downcast_ref() } else { None }
    }

    /// The value, when it is a `T`, whichever variable holds it.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::{Context, ContextVar};
    ///
    /// static USER: ContextVar<String> = ContextVar::new("user");
    ///
    /// let ctx = Context::new().with_value(&USER, "alice".to_string());
    /// let strings: Vec<&String> = ctx.iter().filter_map(|entry| entry.downcast_ref::<String>()).collect();
    /// assert_eq!(strings, ["alice"]);
    /// ```
    #[must_use]
    pub fn downcast_ref<T: 'static>(&self) -> Option<&'a T> {
        self.value.downcast_ref()
    }

    /// The value as `dyn Any`, for code that handles several types.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::{Context, ContextVar};
    ///
    /// static N: ContextVar<u32> = ContextVar::new("n");
    ///
    /// let ctx = Context::new().with_value(&N, 7);
    /// let any = ctx.iter().next().unwrap().as_any();
    /// assert_eq!(any.downcast_ref::<u32>(), Some(&7));
    /// ```
    #[must_use]
    pub fn as_any(&self) -> &'a (dyn Any + Send + Sync) {
        self.value.as_any()
    }
}

impl fmt::Debug for Entry<'_> {
    /// The variable's name, not its value (which need not be `Debug`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry").field("name", &self.name()).finish_non_exhaustive()
    }
}

/// A snapshot of the current thread's context; the same as [`Context::current`].
///
/// # Examples
///
/// ```
/// use contextvars::{copy_context, ContextVar};
///
/// static N: ContextVar<u32> = ContextVar::new("n");
///
/// N.set(1);
/// let mut ctx = copy_context();
/// ctx.run(|| N.set(2));
/// assert_eq!(N.get(), Some(1));
/// assert_eq!(ctx.get(&N), Some(&2));
/// ```
///
#[must_use]
pub fn copy_context() -> Context {
    Context::current()
}
