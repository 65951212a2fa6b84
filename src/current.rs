//! The thread's current context: reading it, changing it, and what keeps lent references valid.
//!
//! Which context is current is `raw/slot.rs`'s business: [`enter`] makes a context current
//! while a closure runs (for `Context::run`, every poll of a `WithContext` and its drop) and
//! restores the previous one on return and on unwind. Reads look into the current context
//! where it is ([`lend`]); `set`/`reset` change it in place ([`replace_in_place`],
//! [`change`]).
//!
//! Two rules keep lent references valid and destructors free to use context variables:
//! - While a read lends a reference into the current context to user code (a value's
//!   `Clone`, a `with` closure), nothing is written in place, and a change first pins the
//!   context's map (`raw/lend.rs`).
//! - Nothing is dropped while the map is being changed: [`change`]'s closure returns what
//!   it displaces, and the caller drops it afterwards.
//!
//! At thread exit a guard (a thread-local with a destructor, registered when the thread's
//! own context first changes) drops that context's values. The slot has no destructor, so
//! `Context::run` and `WithContext` keep working in other thread-locals' destructors; only
//! a `set` at the thread's own level after the guard ran keeps nothing (see
//! `ContextVar::set`).

use std::cell::Cell;

use crate::Context;
use crate::hamt::{self, IdMap};
use crate::raw::{self, Value};

#[cfg(feature = "tokio")]
pub(crate) use crate::raw::claims::claimant;
pub(crate) use crate::raw::{enter, in_entered_context};

/// `FLAGS`: the thread is an executor worker (`thread::mark_worker`).
pub(crate) const WORKER: u8 = 1;
/// `FLAGS`: with `WORKER`, a root `set` warns instead of panicking.
pub(crate) const WARN_ONLY: u8 = 1 << 1;
/// `FLAGS`: the exit guard is registered.
const GUARDED: u8 = 1 << 2;
/// `FLAGS`: the exit guard has run; the thread's own context can hold nothing more.
const GONE: u8 = 1 << 3;

// Each a `const` cell without a destructor: every access is a plain thread-local load or store.
thread_local! {
    /// `WORKER`, `WARN_ONLY`, `GUARDED`, `GONE`.
    static FLAGS: Cell<u8> = const { Cell::new(0) };
    /// Drops the thread's own context at thread exit.
    static EXIT_GUARD: ExitGuard = const { ExitGuard };
}

/// Calls `f` with the value stored under the variable id `id` in the current context, if it
/// is a `T`. `f` may run user code: the value stays valid and unchanged while it does (see
/// `raw/lend.rs`).
#[inline]
pub(crate) fn lend<T: 'static, R>(id: u64, f: impl FnOnce(Option<&T>) -> R) -> R {
    raw::lend_value(id, f)
}

/// A snapshot of the current context: one reference-count increment. In the thread's own
/// context inside a tokio task that claimed variables (feature `tokio`), with its claims.
#[inline]
pub(crate) fn snapshot() -> Context {
    #[cfg(feature = "tokio")]
    if let Some(task) = claims_shown_to() {
        let base = raw::share_current();
        return Context::from_map(raw::claims::snapshot(task, base.map));
    }
    raw::share_current()
}

/// The running tokio task, when the current context is the thread's own and holds claims:
/// the task whose claims a read of it shows. The cheap test first: an entered context has
/// none.
#[cfg(feature = "tokio")]
#[inline]
fn claims_shown_to() -> Option<::tokio::task::Id> {
    if in_entered_context() || !raw::claims::any() {
        return None;
    }
    ::tokio::task::try_id()
}

/// The value of the variable `var` visible now, as another handle: the running tokio task's
/// claim in the thread's own context (feature `tokio`), else the current context's value.
pub(crate) fn visible(var: u64) -> Option<Value> {
    #[cfg(feature = "tokio")]
    if let Some(value) = claims_shown_to().and_then(|task| raw::claims::claimed(var, task)) {
        return Some(value);
    }
    raw::with_current(|ctx| ctx.map.get(var).cloned())
}

/// A copy of the current context for new work (a task, a job, a thread): a snapshot without
/// the variables that are not inherited. O(1) when none is set.
#[inline]
pub(crate) fn inherit() -> Context {
    snapshot().into_inherited()
}

/// A `set` in the thread's own context by the running tokio task: the task's claim (see
/// `raw/claims.rs`). Returns the value the task saw before.
#[cfg(feature = "tokio")]
pub(crate) fn claim<T: Send + Sync + 'static>(
    var_id: u64,
    name: &'static str,
    value: T,
    task: ::tokio::task::Id,
    set_at: &'static std::panic::Location<'static>,
) -> crate::token::Old<T> {
    let (old, displaced) = raw::claims::set(var_id, name, value, task, set_at);
    raw::hold(displaced);
    old
}

/// The reset of a [`claim`].
#[cfg(feature = "tokio")]
pub(crate) fn unclaim<T: Send + Sync + 'static>(
    var_id: u64,
    name: &'static str,
    old: crate::token::Old<T>,
    task: ::tokio::task::Id,
) {
    raw::hold(raw::claims::reset(var_id, name, old, task));
}

/// A change of `var_id` made in the current context outside claims: in the thread's own
/// context, ends any claim on the variable.
#[cfg(feature = "tokio")]
#[inline]
pub(crate) fn base_changed(var_id: u64) {
    // The cheap test first: an entered context has no claims to end.
    if !in_entered_context() && raw::claims::any() {
        raw::hold(raw::claims::end_claim(var_id));
    }
}

/// Hands pending reports of leaked values to their hook, outside any read.
#[cfg(feature = "tokio")]
#[inline]
pub(crate) fn deliver_reports() {
    if !raw::is_lending() {
        crate::tokio::leak::deliver();
    }
}

/// The current context's identity for tokens, drawn on first use.
#[inline]
pub(crate) fn identity() -> u64 {
    raw::with_current(|ctx| {
        if ctx.id & !Context::OWN == 0 {
            ctx.id |= crate::ids::unique();
        }
        ctx.id
    })
}

/// `true` when the current context holds a value under the variable id `id`.
pub(crate) fn holds(id: u64) -> bool {
    raw::with_current(|ctx| ctx.map.contains_key(id))
}

/// The current context's identity; 0 or [`Context::OWN`] (which no token holds) before the
/// first token.
#[inline]
pub(crate) fn raw_identity() -> u64 {
    raw::with_current(|ctx| ctx.id)
}

/// Replaces the `T` under `var_id` in the current context with `value` in place, when only
/// this context holds it and no read is lending a reference: the cheap `set` and `reset`,
/// which keep the read cache. Returns the old value, and a ticket when [`put_back`] can write
/// there again; gives `value` back otherwise (then [`change`] does the work).
#[inline]
pub(crate) fn replace_in_place<T: 'static>(var_id: u64, value: T) -> Result<(T, Option<raw::Ticket<T>>), T> {
    if raw::is_lending() {
        return Err(value);
    }
    match raw::replace(var_id, value) {
        Ok((old, ticket)) => Ok((old, Some(ticket))),
        Err(value) => replace_by_search(var_id, value).map(|old| (old, None)),
    }
}

pub(crate) use crate::raw::{Ticket, put_back};

/// [`replace_in_place`] when the read cache cannot prove the value this context's alone:
/// walks the map, and records the value for the next time when it could write.
#[inline(never)]
fn replace_by_search<T: 'static>(var_id: u64, value: T) -> Result<T, T> {
    if !raw::with_current(|ctx| ctx.map.may_hold(var_id)) {
        return Err(value); // not there: a new entry, the long way
    }
    #[cfg(feature = "tokio")]
    if claimant().is_some() {
        return Err(value); // a claim, not a change of the thread's own context
    }
    let replaced = raw::with_current(move |ctx| {
        let slot = ctx.map.root_mut().as_mut().and_then(|root| hamt::get_mut_in_place(root, var_id));
        match slot.and_then(Value::get_mut::<T>) {
            Some(slot) => Ok(std::mem::replace(slot, value)),
            None => Err(value),
        }
    });
    if replaced.is_ok() {
        raw::record_writable(var_id);
        #[cfg(feature = "tokio")]
        base_changed(var_id);
    }
    replaced
}

/// Runs `f` on the current context's map, changed in place where nothing else holds it.
///
/// `f` must not run user code nor drop user values: it returns what it displaces, and the
/// caller drops that after this returns.
#[inline]
pub(crate) fn change<R>(f: impl FnOnce(&mut IdMap<Value>) -> R) -> R {
    if raw::is_lending() {
        raw::pin();
    }
    let (result, released) = raw::change_current(|ctx| {
        let result = f(&mut ctx.map);
        (result, ctx.map.can_fold_top().then(|| ctx.map.fold_top()))
    });
    if FLAGS.get() & GUARDED == 0 {
        guard_own_context();
    }
    drop(released);
    result
}

/// The thread's first change: registers the exit guard that drops the thread's own context
/// (registered whatever context is current, so that later changes check one flag). Once the
/// guard has run (thread exit), a change to the thread's own context drops its values at
/// once instead.
#[cold]
#[inline(never)]
fn guard_own_context() {
    if FLAGS.get() & GONE == 0 && EXIT_GUARD.try_with(|_| ()).is_ok() {
        FLAGS.set(FLAGS.get() | GUARDED);
        return;
    }
    FLAGS.set(FLAGS.get() | GONE);
    if in_entered_context() {
        return; // an entered context goes back to its owner
    }
    // A new identity for what follows, so tokens made for the dropped values fail to reset.
    let orphan = raw::change_current(|own| std::mem::replace(own, Context::own()));
    drop(orphan);
}

/// Drops the thread's own context at thread exit.
struct ExitGuard;

impl Drop for ExitGuard {
    fn drop(&mut self) {
        // Thread-local destructors run after the thread's code, outside any entered context,
        // so the current context is the thread's own.
        debug_assert!(!in_entered_context(), "the exit guard runs inside an entered context");
        // Its values' destructors run first in a thread that works as usual: what they set
        // lands in a fresh context of the thread's own, and their resets succeed.
        drop(raw::change_current(|own| std::mem::replace(own, Context::own())));
        // From now on a set at the thread's own level keeps nothing, so this ends.
        FLAGS.set((FLAGS.get() | GONE) & !GUARDED);
        loop {
            let own = raw::change_current(|own| std::mem::replace(own, Context::own()));
            // An empty map may still hold values that changes over a shared trie shadowed.
            let holds_values = own.map.root().is_some();
            drop(own);
            if !holds_values {
                break;
            }
        }
    }
}

/// Exchanges `ctx` with the current context's contents, for hooks that run before and after
/// a poll rather than around it (the tokio task hooks): called once to enter `ctx`, which
/// then holds what was current, and once more with that to leave it. The caller restores the
/// thread's context when the code between the two unwinds.
///
/// Unlike [`enter`], this moves a map out of the current context while reads may be lending
/// references into it, and nothing makes the two calls nest: the map leaving is pinned first
/// when a read is in progress, so it outlives the read whatever happens to `ctx`.
#[allow(dead_code, reason = "used by the tokio task hooks, built with --cfg tokio_unstable")]
pub(crate) fn exchange_detached(ctx: &mut Context) {
    if raw::is_lending() {
        raw::pin();
    }
    crate::watch::swap(|| raw::swap_current(ctx));
}

/// The thread's flags.
#[inline]
pub(crate) fn flags() -> u8 {
    FLAGS.get()
}

/// Sets or clears `flag` in the thread's flags.
pub(crate) fn set_flag(flag: u8, on: bool) {
    let flags = FLAGS.get();
    FLAGS.set(if on { flags | flag } else { flags & !flag });
}

/// How to give the work running on this worker thread a context of its own, for the thread's
/// kind: a tokio worker, a rayon worker, or another pool's.
fn worker_fix() -> String {
    #[cfg(feature = "tokio")]
    if ::tokio::runtime::Handle::try_current().is_ok() {
        let layers = if cfg!(feature = "tower") {
            ", or serve requests through `contextvars::tower::ContextLayer` or \
             `contextvars::trace::server::TraceContextServerLayer`"
        } else {
            ""
        };
        return format!(
            "give the tokio task a context of its own: spawn it with `contextvars::tokio::spawn` \
             or wrap it with `.in_current_context()`{layers}"
        );
    }
    #[cfg(feature = "rayon")]
    if ::rayon::current_thread_index().is_some() {
        return "give the rayon job a context of its own: run it through `contextvars::rayon::*` \
                (spawn, join, scope, `par_iter().in_current_context()`) or wrap it with \
                `Context::current().wrap(..)`"
            .to_string();
    }
    "give each task a context of its own: wrap a closure with `Context::current().wrap(..)`, a \
     future with `.in_current_context()`, or spawn through `ContextSpawner`"
        .to_string()
}

/// Panics (or warns, in warn-only mode) when a `set` on a worker thread would change the
/// thread's own context, which every task the thread polls next would see.
#[inline]
#[track_caller]
pub(crate) fn check_root_set(name: &'static str) {
    if FLAGS.get() & WORKER != 0 && !in_entered_context() {
        root_set_on_worker(name);
    }
}

#[cold]
#[inline(never)]
#[track_caller]
fn root_set_on_worker(name: &'static str) {
    let message = format!(
        "contextvars: `{name}` was set on an executor worker thread outside any task context, so \
         every task this thread runs next would see the value; {}, or set the value for one call \
         with `sync_scope` or for one future with `scope`",
        worker_fix()
    );
    assert!(flags() & WARN_ONLY != 0, "{message}");
    let location = std::panic::Location::caller();
    eprintln!("warning: {message} (at {location})");
}
