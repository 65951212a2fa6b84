//! [`ContextVar`]: a key into the current context.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::TryResetError;
use crate::hamt::IdMap;
use crate::raw::Value;
use crate::token::{Old, Token};
use crate::{Context, FutureExt, ResetError, WithContext, current};

/// Ids handed to variables the first time they are set; 0 means "never set anywhere".
static NEXT_VAR_ID: AtomicU64 = AtomicU64::new(1);

/// A context variable: a key whose value depends on the context it is read in.
///
/// Declare it once, in a `static`; each thread, each task wrapped in
/// [`WithContext`](crate::WithContext) and each [`Context::run`](crate::Context::run) then sees its own value.
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
///
/// Variables can also be made at run time, as fields of an object or in a `Vec`: each is a
/// variable of its own, and its values go when the contexts holding them do.
///
/// A `const` instead of a `static` is a mistake: every use of a `const` makes a new variable,
/// so a value set through it can never be read back. Debug builds panic when such a variable
/// is dropped while its value is still set in the current context (clippy's
/// `declare_interior_mutable_const` lint flags the `const` itself).
///
/// `ContextVar<T>` is invariant in `T`: a variable is read at the one type it was declared
/// with, so `&ContextVar<for<'a> fn(&'a str)>` is not a `&ContextVar<fn(&'static str)>`.
/// Reads rely on it: a cached read does no type check (see BENCHMARKS.md, "Sound engine").
///
/// ```compile_fail
/// use contextvars::ContextVar;
///
/// static SUB: ContextVar<for<'a> fn(&'a str)> = ContextVar::new("sub");
/// let sup: &'static ContextVar<fn(&'static str)> = &SUB; // error: one variable, two types
/// ```
///
/// # Panics
///
/// In debug builds, dropping a variable while its value is still set in the current context:
/// nothing can read that value again. A variable set and then reset, or set inside a
/// [`Context::run`](crate::Context::run) that has returned, drops quietly; a `static` is
/// never dropped.
pub struct ContextVar<T> {
    name: &'static str,
    default: Option<T>,
    /// Drawn from `NEXT_VAR_ID` on the first `set`; 0 until then. Carries `hamt::MARK` when
    /// the variable is not inherited.
    id: AtomicU64,
    /// `false` for a variable that tasks, jobs and threads started in a copy of the caller's
    /// context do not take along ([`not_inherited`](Self::not_inherited)).
    inherited: bool,
    /// Invariant in `T`: one variable id, one type (see the type's docs).
    _one_type: PhantomData<fn(T) -> T>,
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
        Self { name, default: None, id: AtomicU64::new(0), inherited: true, _one_type: PhantomData }
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
        Self { name, default: Some(default), id: AtomicU64::new(0), inherited: true, _one_type: PhantomData }
    }

    /// The same variable, not inherited: a task, job or thread started in a copy of the
    /// caller's context starts without it, while snapshots keep it.
    ///
    /// For what must not cross a spawn: a per-task cache, a span, a connection, anything
    /// whose life should end with the task that set it. [`Context::current`] and
    /// [`copy_context`](crate::copy_context) are snapshots and keep every variable, and so does
    /// [`Context::run`]; what starts new work in a copy of the caller's context inherits
    /// instead, without these variables: [`with_context`](crate::with_context),
    /// [`FutureExt::in_current_context`](crate::FutureExt::in_current_context),
    /// [`Context::wrap`], [`Context::wrap_fn`], [`ContextSpawner`](crate::ContextSpawner),
    /// the spawning functions of `contextvars::{tokio, rayon, thread}`, the tokio task hooks,
    /// the tower layers ([`Context::inherited`] makes the same copy). Inheriting costs nothing
    /// more while no such variable is set, and one path copy per such variable set otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::{Context, ContextVar};
    ///
    /// static REQUEST_ID: ContextVar<u64> = ContextVar::new("request_id");
    /// static CACHE: ContextVar<Vec<u8>> = ContextVar::new("cache").not_inherited();
    ///
    /// REQUEST_ID.set(7);
    /// CACHE.set(vec![1, 2, 3]);
    /// let in_thread = contextvars::thread::spawn(|| (REQUEST_ID.get(), CACHE.get())).join().unwrap();
    /// assert_eq!(in_thread, (Some(7), None)); // the cache stays with the code that made it
    /// assert!(Context::current().contains(&CACHE)); // a snapshot keeps it
    /// ```
    #[must_use]
    pub const fn not_inherited(mut self) -> Self {
        self.inherited = false;
        self
    }

    /// The default, for a `static` variable's watchers.
    pub(crate) fn default(&'static self) -> Option<&'static T> {
        self.default.as_ref()
    }

    /// `true` unless the variable was declared [`not_inherited`](Self::not_inherited).
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::ContextVar;
    ///
    /// static SPAN: ContextVar<u32> = ContextVar::new("span").not_inherited();
    /// assert!(!SPAN.is_inherited());
    /// ```
    #[must_use]
    pub fn is_inherited(&self) -> bool {
        self.inherited
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
    /// `T`'s `Clone` may itself read, set and reset context variables, enter contexts and take
    /// snapshots.
    ///
    /// With the `tokio` feature, in a worker thread's own context, a value that another tokio
    /// task set there is not returned: `get` answers as if that task had never set it (the
    /// fail-closed rule of `contextvars::tokio`), and never panics for it.
    /// [`with`](Self::with), [`get_or`](Self::get_or) and [`is_set`](Self::is_set) read the
    /// same way.
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
    #[inline]
    #[must_use]
    pub fn get(&self) -> Option<T>
    where
        T: Clone,
    {
        // Id 0 (never set anywhere) is under no entry of any context: no branch needed for it.
        let id = self.id.load(Ordering::Relaxed);
        current::lend(id, |value: Option<&T>| match value {
            Some(value) => Some(value.clone()),
            None => self.default.clone(),
        })
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
    #[inline]
    #[must_use]
    pub fn get_or(&self, fallback: T) -> T
    where
        T: Clone,
    {
        let Some(id) = self.raw_id() else { return fallback };
        current::lend(id, |value: Option<&T>| value.cloned()).unwrap_or(fallback)
    }

    /// Calls `f` with a reference to the value in the current context, else the default,
    /// else `None`, without cloning the value.
    ///
    /// `f` may freely read and set context variables, this one included: the reference stays
    /// the value `with` found, and a `set` made meanwhile shows after `f` returns.
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
    #[inline]
    pub fn with<R>(&self, f: impl FnOnce(Option<&T>) -> R) -> R {
        match self.raw_id() {
            Some(id) => current::lend(id, |value: Option<&T>| f(value.or(self.default.as_ref()))),
            None => f(self.default.as_ref()),
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
        let Some(id) = self.raw_id() else { return false };
        current::lend(id, |value: Option<&T>| value.is_some())
    }

    /// Sets the variable in the current context and returns a [`Token`] that
    /// [`reset`](Self::reset) takes to restore the previous value.
    ///
    /// Snapshots taken earlier ([`Context::current`](crate::Context::current), clones) keep the
    /// old value. The token may be dropped: the value then simply stays set.
    ///
    /// At thread exit, once the thread's own context has been dropped (a value's destructor,
    /// another thread-local's destructor), a `set` outside an entered context keeps nothing:
    /// the value is dropped and the token's reset fails with [`ResetError::DifferentContext`].
    /// Inside [`Context::run`](crate::Context::run) or a [`WithContext`](crate::WithContext)
    /// poll it works as anywhere else.
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
    /// On a thread marked with [`thread::mark_worker`](crate::thread::mark_worker), outside an
    /// entered context: the value would be seen by every task the thread polls next. The
    /// message names the fix (wrap the task, or use [`scope`](Self::scope)).
    #[inline]
    #[track_caller]
    #[allow(clippy::must_use_candidate, reason = "setting without keeping the token is the common case")]
    pub fn set(&self, value: T) -> Token<T> {
        current::check_root_set(self.name);
        #[cfg(all(feature = "tokio", debug_assertions))]
        current::deliver_reports();
        let at = std::panic::Location::caller();
        if crate::watch::active() {
            return self.set_watched(value, at);
        }
        self.set_at(value, at)
    }

    /// [`set`](Self::set) with watchers registered (`watch.rs`).
    #[cold]
    #[inline(never)]
    fn set_watched(&self, value: T, at: &'static std::panic::Location<'static>) -> Token<T> {
        crate::watch::around(self.id(), || self.set_at(value, at))
    }

    /// [`set`](Self::set) without the worker-thread check (for the benchmarks that measure
    /// it, through `internals`).
    #[cfg(feature = "internals")]
    #[inline]
    #[track_caller]
    pub(crate) fn set_unchecked(&self, value: T) -> Token<T> {
        self.set_at(value, std::panic::Location::caller())
    }

    /// [`set_unchecked`](Self::set_unchecked), made at `at` (the caller's line, which reports
    /// of leaked values name).
    #[inline]
    fn set_at(&self, value: T, at: &'static std::panic::Location<'static>) -> Token<T> {
        let name = self.name;
        let context_id = current::identity();
        // Id 0 (never set) is under no entry, so it goes the long way, which draws the id.
        let var_id = self.id.load(Ordering::Relaxed);
        let (var_id, old, context_id) = match current::replace_in_place(var_id, value) {
            Ok((old, _)) => (var_id, Old::Owned(old), context_id),
            Err(value) => {
                let var_id = self.id();
                let (old, claimed) = set_by_change(var_id, name, value, at);
                (var_id, old, if claimed { context_id | Context::CLAIM } else { context_id })
            }
        };
        Token { var_id, var_name: name, context_id, old }
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
    /// [`Context::run`](crate::Context::run) that has returned, in a copy, on another thread).
    /// A failed reset changes nothing; the token is dropped. [`try_reset`](Self::try_reset)
    /// hands it back instead.
    #[inline]
    pub fn reset(&self, token: Token<T>) -> Result<(), ResetError> {
        #[cfg(all(feature = "tokio", debug_assertions))]
        current::deliver_reports();
        // The checks of `try_reset`, without carrying the token back: a refused token is
        // dropped here, and the result stays one byte.
        if self.raw_id() != Some(token.var_id) {
            return Err(ResetError::DifferentVar);
        }
        let Token { var_id, var_name, context_id, old } = token;
        if current::raw_identity() != context_id || crate::watch::active() {
            return reset_slow(var_id, var_name, context_id, old).map_err(|_| ResetError::DifferentContext);
        }
        restore_now(var_id, var_name, old);
        Ok(())
    }

    /// [`reset`](Self::reset), handing the token back when it is refused, so that it can be
    /// used later in the right context (as Python's token stays usable after the error).
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::{Context, ContextVar, ResetError};
    ///
    /// static N: ContextVar<u32> = ContextVar::new("n");
    ///
    /// let token = N.set(1);
    /// let refused = Context::new().run(|| N.try_reset(token)).unwrap_err();
    /// assert_eq!(refused.error(), ResetError::DifferentContext);
    /// N.try_reset(refused.into_token()).unwrap(); // back in the context it came from
    /// assert_eq!(N.get(), None);
    /// ```
    ///
    /// # Errors
    ///
    /// As [`reset`](Self::reset), with the token.
    #[inline]
    pub fn try_reset(&self, token: Token<T>) -> Result<(), TryResetError<T>> {
        if self.raw_id() != Some(token.var_id) {
            return Err(TryResetError::new(ResetError::DifferentVar, token));
        }
        // Apart at once: the parts travel in registers, not as a struct stored and reloaded.
        let Token { var_id, var_name, context_id, old } = token;
        if current::raw_identity() != context_id || crate::watch::active() {
            return reset_slow(var_id, var_name, context_id, old).map_err(|old| {
                TryResetError::new(ResetError::DifferentContext, Token { var_id, var_name, context_id, old })
            });
        }
        restore_now(var_id, var_name, old);
        Ok(())
    }

    /// Runs `fut` with the variable set to `value`: tokio's `LocalKey::scope`, for any
    /// variable, on any executor.
    ///
    /// The future runs in a snapshot of the current context taken now, with the variable set:
    /// the value holds for every poll of `fut` and for its drop, never shows outside, and what
    /// `fut` sets stays in it. [`sync_scope`](Self::sync_scope) does the same for a closure.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::ContextVar;
    ///
    /// static USER: ContextVar<&str> = ContextVar::new("user");
    /// static DEPTH: ContextVar<u32> = ContextVar::new("depth");
    ///
    /// # futures::executor::block_on(async {
    /// USER.set("alice");
    /// let seen = DEPTH.scope(1, async { (USER.get(), DEPTH.get()) }).await;
    /// assert_eq!(seen, (Some("alice"), Some(1))); // the rest of the context is inherited
    /// assert_eq!(DEPTH.get(), None);
    /// # });
    /// ```
    pub fn scope<F: Future>(&self, value: T, fut: F) -> WithContext<F> {
        fut.in_context(Context::current().with_value(self, value))
    }

    /// Sets the variable to `value` while `f` runs, then restores its previous value, also
    /// when `f` panics: tokio's `LocalKey::sync_scope`.
    ///
    /// Other variables set by `f` stay set afterwards, as they would after any call. Works on
    /// worker threads too ([`thread::mark_worker`](crate::thread::mark_worker)): the value
    /// cannot outlive the call. For a future, [`scope`](Self::scope).
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::ContextVar;
    ///
    /// static DEPTH: ContextVar<u32> = ContextVar::with_default("depth", 0);
    ///
    /// let inner = DEPTH.sync_scope(1, || DEPTH.sync_scope(2, || DEPTH.get()));
    /// assert_eq!(inner, Some(2));
    /// assert_eq!(DEPTH.get(), Some(0));
    /// ```
    #[inline]
    #[track_caller]
    pub fn sync_scope<R>(&self, value: T, f: impl FnOnce() -> R) -> R {
        /// Puts the previous value back the long way if `f` unwinds; on return, `run` takes
        /// it out and puts it back itself (in place when it can).
        struct Restore<'a, T: Send + Sync + 'static> {
            var: &'a ContextVar<T>,
            old: Old<T>,
            /// The value went into a claim of the running tokio task (see `raw/claims.rs`).
            claimed: bool,
        }
        impl<T: Send + Sync + 'static> Drop for Restore<'_, T> {
            /// When `f` unwinds.
            fn drop(&mut self) {
                restore_later(self.var, std::mem::replace(&mut self.old, Old::Missing), self.claimed);
            }
        }

        /// The restore when the value cannot go back in place: kept out of line.
        #[inline(never)]
        fn restore_later<T: Send + Sync + 'static>(var: &ContextVar<T>, old: Old<T>, claimed: bool) {
            if claimed {
                drop(reset_elsewhere(var.id(), var.name, current::raw_identity() | Context::CLAIM, old));
            } else {
                restore_now(var.id(), var.name, old);
            }
        }

        /// Runs `f` with the guard, then puts back: in place where `ticket` says when it
        /// still can.
        #[inline]
        fn run<T: Send + Sync + 'static, R>(
            var: &ContextVar<T>,
            old: Old<T>,
            claimed: bool,
            ticket: Option<current::Ticket<T>>,
            f: impl FnOnce() -> R,
        ) -> R {
            let mut restore = Restore { var, old, claimed };
            let result = f();
            // No token to check: `f` cannot leave another context current (every enter
            // restores on exit, also on unwind), so this is the context `set` changed.
            let old = std::mem::replace(&mut restore.old, Old::Missing);
            std::mem::forget(restore);
            match (ticket, old) {
                (Some(ticket), Old::Owned(value)) => match current::put_back(ticket, value) {
                    Ok(displaced) => drop(displaced),
                    Err(value) => restore_later(var, Old::Owned(value), false),
                },
                (_, old) => restore_later(var, old, claimed),
            }
            result
        }

        /// The set when the value cannot go in place: out of line, with its own call of `f`.
        #[inline(never)]
        #[track_caller]
        fn run_long<T: Send + Sync + 'static, R>(
            var: &ContextVar<T>,
            tried: Result<(T, Option<current::Ticket<T>>), T>,
            f: impl FnOnce() -> R,
        ) -> R {
            let (old, claimed) = match tried {
                Ok((old, _)) => (Old::Owned(old), false),
                Err(value) => {
                    let var_id = var.id();
                    set_by_change(var_id, var.name, value, std::panic::Location::caller())
                }
            };
            run(var, old, claimed, None, f)
        }

        if crate::watch::active() {
            return self.sync_scope_watched(value, f);
        }
        #[cfg(all(feature = "tokio", debug_assertions))]
        current::deliver_reports();
        // Id 0 (never set) is under no entry, so it goes the long way, which draws the id.
        match current::replace_in_place(self.id.load(Ordering::Relaxed), value) {
            Ok((old, Some(ticket))) => run(self, Old::Owned(old), false, Some(ticket), f),
            tried => run_long(self, tried, f),
        }
    }

    /// [`sync_scope`](Self::sync_scope) with watchers registered: a set and its reset, each
    /// reported to the watchers (the reset not while a panic unwinds).
    #[cold]
    #[inline(never)]
    #[track_caller]
    fn sync_scope_watched<R>(&self, value: T, f: impl FnOnce() -> R) -> R {
        /// Puts the previous value back on drop, so unwinding restores it too.
        struct Back<T: Send + Sync + 'static>(Option<Token<T>>);
        impl<T: Send + Sync + 'static> Drop for Back<T> {
            fn drop(&mut self) {
                if let Some(Token { var_id, var_name, context_id, old }) = self.0.take() {
                    // No identity to check: `f` leaves the same context current.
                    crate::watch::around(var_id, || {
                        if context_id & Context::CLAIM == 0 {
                            restore_now(var_id, var_name, old);
                        } else {
                            drop(reset_elsewhere(var_id, var_name, context_id, old));
                        }
                    });
                }
            }
        }
        let at = std::panic::Location::caller();
        let token = crate::watch::around(self.id(), || self.set_at(value, at));
        let _back = Back(Some(token));
        f()
    }

    /// The id, drawn on first use.
    ///
    /// Drawn once per variable from a global counter, so no two variables share one, and
    /// every value stored under it (by this variable's methods and `Context::with_value`) is a
    /// `T`: the read cache of `raw/slot.rs` relies on that to skip the type check on a hit.
    #[inline]
    pub(crate) fn id(&self) -> u64 {
        match self.raw_id() {
            Some(id) => id,
            None => self.draw_id(),
        }
    }

    #[cold]
    fn draw_id(&self) -> u64 {
        let mark = if self.inherited { 0 } else { crate::hamt::MARK };
        let fresh = NEXT_VAR_ID.fetch_add(1, Ordering::Relaxed) | mark;
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

/// A `set` that [`current::replace_in_place`] could not make: through [`current::change`].
/// Kept out of line, so that the in-place path it falls back from stays small enough to
/// inline, and the token with it.
///
/// In the thread's own context inside a tokio task (feature `tokio`) the value becomes the
/// task's claim instead (`raw/claims.rs`); the flag says so.
#[inline(never)]
fn set_by_change<T: Send + Sync + 'static>(
    var_id: u64,
    name: &'static str,
    value: T,
    at: &'static std::panic::Location<'static>,
) -> (Old<T>, bool) {
    #[cfg(feature = "tokio")]
    if let Some(task) = current::claimant() {
        let old = current::claim(var_id, name, value, task, at);
        current::deliver_reports(); // this set may have ended another task's claim
        return (old, true);
    }
    let _ = at; // named only by the reports of claims
    let old = current::change(|map| replace(map, var_id, name, value));
    #[cfg(feature = "tokio")]
    current::base_changed(var_id);
    (old, false)
}

/// A reset that is not the plain case (another identity, or watchers registered): through
/// [`reset_elsewhere`] or [`restore_now`], with the watchers.
#[cold]
#[inline(never)]
fn reset_slow<T: Send + Sync + 'static>(
    var_id: u64,
    var_name: &'static str,
    context_id: u64,
    old: Old<T>,
) -> Result<(), Old<T>> {
    crate::watch::around(var_id, || {
        if current::raw_identity() == context_id {
            restore_now(var_id, var_name, old);
            Ok(())
        } else {
            reset_elsewhere(var_id, var_name, context_id, old)
        }
    })
}

/// A reset with a token whose context identity is not the current context's: accepted only
/// for a claim token of the running tokio task (see `raw/claims.rs`); `old` back otherwise.
fn reset_elsewhere<T: Send + Sync + 'static>(
    var_id: u64,
    var_name: &'static str,
    context_id: u64,
    old: Old<T>,
) -> Result<(), Old<T>> {
    #[cfg(feature = "tokio")]
    if context_id == current::raw_identity() | Context::CLAIM {
        if let Some(task) = current::claimant() {
            current::unclaim(var_id, var_name, old, task);
            return Ok(());
        }
    }
    let _ = (var_id, var_name, context_id);
    Err(old)
}

/// Stores `value` under `var_id` and returns what was there: in place, with no allocation
/// and no atomic operation, when the stored value is not shared with another context.
#[inline]
fn replace<T: Send + Sync + 'static>(
    map: &mut IdMap<Value>,
    var_id: u64,
    name: &'static str,
    value: T,
) -> Old<T> {
    map.upsert(
        var_id,
        value,
        |slot, value| match slot.get_mut::<T>() {
            Some(current) => Old::Owned(std::mem::replace(current, value)),
            None => Old::Shared(std::mem::replace(slot, Value::new(name, value))),
        },
        |value| (Value::new(name, value), Old::Missing),
    )
}

/// The accepted reset of `reset` and `try_reset`: puts `old` back in the current context.
#[inline]
fn restore_now<T: Send + Sync + 'static>(var_id: u64, var_name: &'static str, old: Old<T>) {
    // What it displaces is dropped only now that the context is back in place.
    let left = match old {
        Old::Owned(value) => match current::replace_in_place(var_id, value) {
            Ok((displaced, _)) => {
                drop(displaced);
                None
            }
            Err(value) => Some(Old::Owned(value)),
        },
        old => Some(old),
    };
    if let Some(old) = left {
        restore_by_change(var_id, var_name, old);
    }
}

/// A reset that [`current::replace_in_place`] could not make: through [`current::change`],
/// out of line (see [`set_by_change`]).
#[inline(never)]
fn restore_by_change<T: Send + Sync + 'static>(var_id: u64, var_name: &'static str, old: Old<T>) {
    drop(current::change(|map| restore(map, var_id, var_name, old)));
    #[cfg(feature = "tokio")]
    current::base_changed(var_id);
}

/// What a reset displaced: dropped by the caller once the context is back in its slot.
type Displaced<T> = (Option<T>, Option<Value>);

/// Puts `old` back under `var_id`, removing the variable if it was missing.
#[inline]
fn restore<T: Send + Sync + 'static>(
    map: &mut IdMap<Value>,
    var_id: u64,
    name: &'static str,
    old: Old<T>,
) -> Displaced<T> {
    let displaced = match old {
        Old::Missing => map.remove(var_id),
        Old::Shared(value) => map.insert(var_id, value),
        Old::Owned(value) => {
            return map.upsert(
                var_id,
                value,
                |slot, value| match slot.get_mut::<T>() {
                    Some(current) => (Some(std::mem::replace(current, value)), None),
                    None => (None, Some(std::mem::replace(slot, Value::new(name, value)))),
                },
                |value| (Value::new(name, value), (None, None)),
            );
        }
    };
    (None, displaced)
}

impl<T> Drop for ContextVar<T> {
    /// In debug builds, panics when the variable's value is still set in the current context:
    /// nothing can read it again. That is what a `const` `ContextVar` does at every use.
    fn drop(&mut self) {
        let id = *self.id.get_mut();
        if cfg!(debug_assertions) && id != 0 && !std::thread::panicking() && current::holds(id) {
            dropped_while_set(self.name);
        }
    }
}

#[cold]
#[inline(never)]
fn dropped_while_set(name: &str) -> ! {
    panic!(
        "contextvars: the ContextVar `{name}` was dropped after a `set`, so the values it set can \
         never be read again; a `const` ContextVar is a new variable at every use: declare it \
         `static` (clippy's `declare_interior_mutable_const` lint flags such a `const`)"
    )
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
