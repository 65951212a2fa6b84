//! [`ContextVar`]: a key into the current context.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::context::{Entry, Value};
use crate::hamt::Garbage;
use crate::token::{Old, Token};
use crate::{Context, ResetError, current};

/// Ids handed to variables the first time they are set; 0 means "never set anywhere".
static NEXT_VAR_ID: AtomicU64 = AtomicU64::new(1);

/// A context variable: a key whose value depends on the context it is read in.
///
/// Declare it once, usually in a `static`; each thread, each task wrapped in
/// [`WithContext`](crate::WithContext) and each [`Context::run`] then sees its own value.
/// Values must be `Send + Sync` because contexts move between threads.
///
/// # Examples
///
/// ```
/// use contextvars::ContextVar;
///
/// static REQUEST_ID: ContextVar<u64> = ContextVar::new("request_id");
///
/// assert_eq!(REQUEST_ID.get(), None);
/// let token = REQUEST_ID.set(7);
/// assert_eq!(REQUEST_ID.get(), Some(7));
/// REQUEST_ID.reset(token).unwrap();
/// assert_eq!(REQUEST_ID.get(), None);
/// ```
pub struct ContextVar<T> {
    name: &'static str,
    default: Option<T>,
    /// Drawn from `NEXT_VAR_ID` on the first `set`; 0 until then.
    id: AtomicU64,
}

impl<T: Send + Sync + 'static> ContextVar<T> {
    /// A variable with no default: [`get`](Self::get) returns `None` until it is set.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::ContextVar;
    ///
    /// static USER: ContextVar<String> = ContextVar::new("user");
    /// assert_eq!(USER.get(), None);
    /// ```
    #[must_use]
    pub const fn new(name: &'static str) -> Self {
        Self { name, default: None, id: AtomicU64::new(0) }
    }

    /// A variable that reads as `default` wherever it is not set.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::ContextVar;
    ///
    /// static LEVEL: ContextVar<&str> = ContextVar::with_default("level", "info");
    /// assert_eq!(LEVEL.get(), Some("info"));
    /// assert!(!LEVEL.is_set());
    /// ```
    #[must_use]
    pub const fn with_default(name: &'static str, default: T) -> Self {
        Self { name, default: Some(default), id: AtomicU64::new(0) }
    }

    /// The name given at construction, for diagnostics.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::ContextVar;
    ///
    /// static USER: ContextVar<String> = ContextVar::new("user");
    /// assert_eq!(USER.name(), "user");
    /// ```
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The value in the current context, else the default, else `None`.
    ///
    /// A variable never set anywhere answers from its default without touching the context.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::ContextVar;
    ///
    /// static N: ContextVar<u32> = ContextVar::with_default("n", 0);
    ///
    /// assert_eq!(N.get(), Some(0));
    /// N.set(5);
    /// assert_eq!(N.get(), Some(5));
    /// ```
    ///
    /// # Panics
    ///
    /// If `T`'s `Clone` impl sets a context variable, enters a context or takes a snapshot
    /// ([`copy_context`](crate::copy_context)): the value is cloned while the current context
    /// is borrowed. Reading variables there (`get`, `is_set`, `with`) is fine.
    #[inline]
    #[must_use]
    pub fn get(&self) -> Option<T>
    where
        T: Clone,
    {
        // Nested rather than a let chain: let chains need Rust 1.88, the MSRV is 1.85.
        if let Some(id) = self.raw_id() {
            if let Some(value) = current::read(|ctx| ctx.lookup::<T>(id).cloned()).flatten() {
                return Some(value);
            }
        }
        self.default.clone()
    }

    /// The value in the current context, else `fallback`; the default is not consulted
    /// (Python's `var.get(fallback)`).
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::ContextVar;
    ///
    /// static N: ContextVar<u32> = ContextVar::with_default("n", 0);
    ///
    /// assert_eq!(N.get_or(9), 9);
    /// N.set(5);
    /// assert_eq!(N.get_or(9), 5);
    /// ```
    ///
    /// # Panics
    ///
    /// As [`get`](Self::get).
    #[inline]
    #[must_use]
    pub fn get_or(&self, fallback: T) -> T
    where
        T: Clone,
    {
        self.raw_id()
            .and_then(|id| current::read(|ctx| ctx.lookup::<T>(id).cloned()).flatten())
            .unwrap_or(fallback)
    }

    /// Calls `f` with a reference to the value in the current context, else the default,
    /// else `None`, without cloning the value.
    ///
    /// `f` may freely read and set context variables, this one included, except when `with`
    /// is itself called from a value's `Clone` impl run by [`get`](Self::get): then `f` may
    /// only read them.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::ContextVar;
    ///
    /// static USER: ContextVar<String> = ContextVar::new("user");
    ///
    /// USER.set("alice".to_string());
    /// let len = USER.with(|user| user.map_or(0, String::len));
    /// assert_eq!(len, 5);
    /// ```
    pub fn with<R>(&self, f: impl FnOnce(Option<&T>) -> R) -> R {
        let Some(id) = self.raw_id() else { return f(self.default.as_ref()) };
        // Hold our own reference to the value, not a borrow of the context, so `f` can set.
        let Some(value) = current::try_update(|ctx| share_value(ctx, id)) else {
            // The context is borrowed by a `get` cloning a value (this runs inside that value's
            // `Clone` impl), or gone (thread exit): read it as it is.
            return self.with_borrowed(id, f);
        };
        match value.as_deref().and_then(<dyn Any + Send + Sync>::downcast_ref::<T>) {
            Some(value) => f(Some(value)),
            None => f(self.default.as_ref()),
        }
    }

    /// [`with`](Self::with) when the current context cannot be borrowed mutably: lends the value
    /// under a shared borrow, or the default once the context is gone.
    #[cold]
    fn with_borrowed<R>(&self, id: u64, f: impl FnOnce(Option<&T>) -> R) -> R {
        let mut f = Some(f);
        let lent = current::read(|ctx| f.take().map(|f| f(ctx.lookup::<T>(id).or(self.default.as_ref()))));
        match (lent.flatten(), f) {
            (Some(result), _) => result,
            // The thread's context is gone (thread exit): only the default is left.
            (None, Some(f)) => f(self.default.as_ref()),
            (None, None) => unreachable!("`f` runs at most once and returns a value when it does"),
        }
    }

    /// `true` when the variable is set in the current context (a default does not count).
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::ContextVar;
    ///
    /// static N: ContextVar<u32> = ContextVar::with_default("n", 0);
    ///
    /// assert!(!N.is_set());
    /// N.set(0);
    /// assert!(N.is_set());
    /// ```
    #[must_use]
    pub fn is_set(&self) -> bool {
        self.raw_id().is_some_and(|id| current::read(|ctx| ctx.map.contains_key(id)).unwrap_or(false))
    }

    /// Sets the variable in the current context and returns a [`Token`] that
    /// [`reset`](Self::reset) takes to restore the previous value.
    ///
    /// Snapshots taken earlier ([`Context::current`], clones) keep the old value. The token may
    /// be dropped: the value then simply stays set.
    ///
    /// During thread exit, once the thread's context has been destroyed, the value is
    /// dropped and the token's reset fails with [`ResetError::DifferentContext`].
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::{Context, ContextVar};
    ///
    /// static N: ContextVar<u32> = ContextVar::new("n");
    ///
    /// N.set(1);
    /// let before = Context::current();
    /// N.set(2);
    /// assert_eq!((before.get(&N), N.get()), (Some(&1), Some(2)));
    /// ```
    ///
    /// # Panics
    ///
    /// If called from a `Clone` impl run by [`get`](Self::get) on this thread.
    #[inline]
    #[allow(clippy::must_use_candidate, reason = "setting without keeping the token is the common case")]
    pub fn set(&self, value: T) -> Token<T> {
        let var_id = self.id();
        let mut garbage = Garbage::new();
        let (context_id, old) =
            current::update(|ctx| (ctx.identity(), replace(ctx, var_id, self.name, value, &mut garbage)))
                .unwrap_or((0, Old::Missing));
        drop(garbage); // now that the context is no longer borrowed
        Token { var_id, var_name: self.name, context_id, old }
    }

    /// Restores the value the variable had before the `set` that returned `token` (unset if
    /// it had none), whatever was set in between.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::ContextVar;
    ///
    /// static N: ContextVar<u32> = ContextVar::new("n");
    ///
    /// let outer = N.set(1);
    /// let inner = N.set(2);
    /// N.set(3);
    /// N.reset(inner).unwrap();
    /// assert_eq!(N.get(), Some(1));
    /// N.reset(outer).unwrap();
    /// assert_eq!(N.get(), None);
    /// ```
    ///
    /// # Errors
    ///
    /// [`ResetError::DifferentVar`] for a token of another variable;
    /// [`ResetError::DifferentContext`] for a token created in another context (inside a
    /// [`Context::run`] that has returned, in a copy, on another thread). A failed reset
    /// changes nothing.
    ///
    /// # Panics
    ///
    /// If called from a `Clone` impl run by [`get`](Self::get) on this thread.
    #[inline]
    pub fn reset(&self, token: Token<T>) -> Result<(), ResetError> {
        if self.raw_id() != Some(token.var_id) {
            return Err(ResetError::DifferentVar);
        }
        let mut garbage = Garbage::new();
        let outcome = current::update(|ctx| {
            if token.context_id == 0 || ctx.raw_identity() != token.context_id {
                return Err(token);
            }
            Ok(restore(ctx, token.var_id, token.var_name, token.old, &mut garbage))
        });
        // Drop the displaced value (or the refused token) only now that the context is free.
        drop(garbage);
        match outcome {
            Some(Ok(_displaced)) => Ok(()),
            Some(Err(_)) | None => Err(ResetError::DifferentContext),
        }
    }

    /// Sets the variable to `value` while `f` runs, then restores its previous value, also
    /// when `f` panics.
    ///
    /// Other variables set by `f` stay set afterwards, as they would after any call.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::ContextVar;
    ///
    /// static DEPTH: ContextVar<u32> = ContextVar::with_default("depth", 0);
    ///
    /// let inner = DEPTH.scope(1, || DEPTH.scope(2, || DEPTH.get()));
    /// assert_eq!(inner, Some(2));
    /// assert_eq!(DEPTH.get(), Some(0));
    /// ```
    ///
    /// # Panics
    ///
    /// If called from a `Clone` impl run by [`get`](Self::get) on this thread.
    pub fn scope<R>(&self, value: T, f: impl FnOnce() -> R) -> R {
        /// Resets on drop, so unwinding restores the value too.
        struct Reset<'a, T: Send + Sync + 'static> {
            var: &'a ContextVar<T>,
            token: Option<Token<T>>,
        }
        impl<T: Send + Sync + 'static> Drop for Reset<'_, T> {
            fn drop(&mut self) {
                if let Some(token) = self.token.take() {
                    // `f` cannot leave another context current (every enter restores on exit),
                    // so this only fails where `set` had no context to set in: thread exit.
                    let _ = self.var.reset(token);
                }
            }
        }

        let _reset = Reset { var: self, token: Some(self.set(value)) };
        f()
    }

    /// The id, drawn on first use.
    #[inline]
    pub(crate) fn id(&self) -> u64 {
        match self.raw_id() {
            Some(id) => id,
            None => self.draw_id(),
        }
    }

    #[cold]
    fn draw_id(&self) -> u64 {
        let fresh = NEXT_VAR_ID.fetch_add(1, Ordering::Relaxed);
        match self.id.compare_exchange(0, fresh, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => fresh,
            Err(won) => won,
        }
    }

    /// The id, or `None` if the variable was never set anywhere (then no context holds it).
    #[inline]
    pub(crate) fn raw_id(&self) -> Option<u64> {
        match self.id.load(Ordering::Relaxed) {
            0 => None,
            id => Some(id),
        }
    }
}

/// A shared reference to the value under `var_id`, freezing it first if it is owned.
fn share_value(ctx: &mut Context, var_id: u64) -> Option<Arc<dyn Any + Send + Sync>> {
    let mut garbage = Garbage::new();
    // An owned value sits on a path of owned nodes: `get_mut` copies nothing to reach it.
    let entry = match ctx.map.get(var_id)?.value {
        Value::Shared(ref value) => return Some(Arc::clone(value)),
        Value::Owned(_) => ctx.map.get_mut(var_id, &mut garbage)?,
    };
    entry.value.freeze();
    debug_assert!(garbage.is_empty());
    match &entry.value {
        Value::Shared(value) => Some(Arc::clone(value)),
        Value::Owned(_) => None,
    }
}

/// Stores `value` under `var_id` in `ctx` and returns what was there.
///
/// An owned value is replaced in place: no allocation, no atomic operation.
#[inline]
fn replace<T: Send + Sync + 'static>(
    ctx: &mut Context,
    var_id: u64,
    name: &'static str,
    value: T,
    garbage: &mut Garbage<Entry>,
) -> Old<T> {
    let Some(entry) = ctx.map.get_mut(var_id, garbage) else {
        ctx.map.insert(var_id, Entry { name, value: Value::Owned(Box::new(value)) }, garbage);
        return Old::Missing;
    };
    if let Value::Owned(slot) = &mut entry.value {
        return match slot.downcast_mut::<T>() {
            Some(slot) => Old::Owned(std::mem::replace(slot, value)),
            None => unreachable!("a variable's id only ever stores values of its own type"),
        };
    }
    match std::mem::replace(&mut entry.value, Value::Owned(Box::new(value))) {
        Value::Shared(previous) => match previous.downcast::<T>() {
            Ok(previous) => Old::Shared(previous),
            Err(_) => unreachable!("a variable's id only ever stores values of its own type"),
        },
        Value::Owned(_) => unreachable!("handled above"),
    }
}

/// What a reset displaced: dropped by the caller once the context is no longer borrowed.
type Displaced<T> = (Option<T>, Option<Value>);

/// Puts `old` back under `var_id` in `ctx`, removing the variable if it was missing.
#[inline]
fn restore<T: Send + Sync + 'static>(
    ctx: &mut Context,
    var_id: u64,
    name: &'static str,
    old: Old<T>,
    garbage: &mut Garbage<Entry>,
) -> Displaced<T> {
    let value = match old {
        Old::Missing => return (None, ctx.map.remove(var_id, garbage).map(|entry| entry.value)),
        Old::Shared(value) => Value::Shared(value),
        Old::Owned(value) => {
            if let Some(Value::Owned(slot)) = ctx.map.get_mut(var_id, garbage).map(|entry| &mut entry.value) {
                if let Some(slot) = slot.downcast_mut::<T>() {
                    return (Some(std::mem::replace(slot, value)), None);
                }
            }
            Value::Owned(Box::new(value))
        }
    };
    let displaced = ctx.map.insert(var_id, Entry { name, value }, garbage);
    (None, displaced.map(|entry| entry.value))
}

impl<T> fmt::Debug for ContextVar<T> {
    /// Shows the name, and whether there is a default; not the value (`T` need not be `Debug`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContextVar")
            .field("name", &self.name)
            .field("has_default", &self.default.is_some())
            .finish_non_exhaustive()
    }
}
