//! Fail closed on tokio (feature `tokio`): what unwrapped tokio tasks set in a worker thread's
//! own context.
//!
//! A tokio task that nobody gave a context of its own (no `WithContext`, no
//! `contextvars::tokio::spawn`, no layer, no task hooks) runs in the thread's own context,
//! which every task the thread polls next reads. So that a request never sees another
//! request's value, a `set` made there inside a task does not change the thread's own context:
//! it *claims* the variable for that task, on this thread. A read returns a claim only to the
//! task that made it, and only while that claim is the latest for the variable on the thread;
//! every other task, and code outside any task, reads the thread's own context as if the claim
//! did not exist. A set outside any task replaces the variable for everyone and ends its
//! claim. A claim that cannot be kept (the table is full) is dropped at once: nobody sees its
//! value.
//!
//! Reads that meet another task's claim, and sets that end one, are the mistake: they are
//! recorded (debug builds) and reported by `current.rs` at the thread's next change, never
//! inside the reader's call.
//!
//! While claims exist, the thread's own context keeps no read hint, so that every read of it
//! comes here; and with the `tokio` feature it never keeps a write hint, so that no set of it
//! writes through the read cache.

use std::cell::RefCell;
use std::panic::Location;
use std::ptr::NonNull;

use ::tokio::task::{Id, try_id};

use super::Value;
use super::slot::with_current;
use super::value::Header;
use crate::Context;
use crate::hamt::IdMap;
use crate::token::Old;

/// Claims a thread keeps at most; a further claim is dropped (its value hidden).
const MAX_CLAIMS: usize = 64;

/// A variable claimed by a task.
struct Claim {
    id: u64,
    task: Id,
    value: Value,
    /// The `set` that made it, for the report.
    set_at: &'static Location<'static>,
}

thread_local! {
    static CLAIMS: RefCell<Vec<Claim>> = const { RefCell::new(Vec::new()) };
}

/// The running tokio task, when the current context is the thread's own: the task whose
/// sets become claims. `None` in an entered context and outside tasks.
#[inline]
pub(crate) fn claimant() -> Option<Id> {
    if with_current(|ctx| ctx.id & Context::OWN == 0) {
        return None;
    }
    try_id()
}

/// `true` when the thread has claims.
pub(crate) fn any() -> bool {
    CLAIMS.try_with(|claims| !claims.borrow().is_empty()).unwrap_or(false)
}

/// A read of `id` in the thread's own context while claims exist: the running task's claim,
/// or else the thread's own value. Records the mistake when another task's claim is passed
/// over. Runs no user code.
pub(super) fn find(id: u64, ctx: &Context) -> Option<NonNull<Header>> {
    let reader = try_id();
    let claimed = CLAIMS.try_with(|claims| {
        let claims = claims.borrow();
        let claim = claims.iter().find(|claim| claim.id == id)?;
        if Some(claim.task) == reader {
            return Some(Some(claim.value.as_ptr()));
        }
        crate::tokio::leak::record(claim.value.name(), claim.set_at, claim.task, reader);
        Some(None)
    });
    match claimed {
        Ok(Some(Some(value))) => Some(value),
        _ => ctx.map.get(id).map(Value::as_ptr),
    }
}

/// The value `task` claimed for `id`, as another handle.
pub(crate) fn claimed(id: u64, task: Id) -> Option<Value> {
    CLAIMS
        .try_with(|claims| {
            claims
                .borrow()
                .iter()
                .find(|claim| claim.id == id && claim.task == task)
                .map(|claim| claim.value.clone())
        })
        .ok()
        .flatten()
}

/// What a claim change displaced, for the caller to drop (or hold, see `lend.rs`) once it is
/// done.
pub(crate) type Displaced = Vec<Value>;

/// A `set` of `id` in the thread's own context by `task`: claims the variable. Returns the
/// value the task saw before (its claim, else the thread's own value) and what it displaced.
pub(crate) fn set<T: Send + Sync + 'static>(
    id: u64,
    name: &'static str,
    value: T,
    task: Id,
    set_at: &'static Location<'static>,
) -> (Old<T>, Displaced) {
    let base = with_current(|ctx| {
        ctx.read_hint = 0; // reads of the thread's own context now look at the claims
        ctx.map.get(id).cloned()
    });
    let new = Value::new(name, value);
    let mut displaced = Vec::new();
    let mut old = None;
    let _ = CLAIMS.try_with(|claims| {
        let mut claims = claims.borrow_mut();
        match claims.iter().position(|claim| claim.id == id) {
            Some(i) if claims[i].task == task => {
                old = Some(std::mem::replace(&mut claims[i].value, new));
                claims[i].set_at = set_at;
                return;
            }
            Some(i) => {
                // Another task's value for this variable is lost, never shown.
                let lost = claims.swap_remove(i);
                crate::tokio::leak::record(lost.value.name(), lost.set_at, lost.task, Some(task));
                displaced.push(lost.value);
            }
            None => {}
        }
        if claims.len() < MAX_CLAIMS {
            claims.push(Claim { id, task, value: new, set_at });
        } else {
            displaced.push(new); // the bookkeeping is full: hidden from everyone
        }
    });
    let old = match old.or(base) {
        Some(value) => Old::Shared(value),
        None => Old::Missing,
    };
    (old, displaced)
}

/// A `reset` in the thread's own context by `task` of a token from [`set`]: puts `old` back
/// as what the task sees, while the claim is still the task's (else the value was lost,
/// and nothing changes). Returns what it displaced.
pub(crate) fn reset<T: Send + Sync + 'static>(
    id: u64,
    name: &'static str,
    old: Old<T>,
    task: Id,
) -> Displaced {
    let base = with_current(|ctx| ctx.map.get(id).cloned());
    let mut displaced = Vec::new();
    let old = match old {
        Old::Missing => None,
        Old::Shared(value) => Some(value),
        Old::Owned(value) => Some(Value::new(name, value)),
    };
    let _ = CLAIMS.try_with(|claims| {
        let mut claims = claims.borrow_mut();
        let Some(i) = claims.iter().position(|claim| claim.id == id && claim.task == task) else {
            displaced.extend(old);
            return;
        };
        // Back to what the thread's own context holds: the claim ends.
        let back_to_own = match (&old, &base) {
            (None, None) => true,
            (Some(old), Some(base)) => old.ptr_eq(base),
            _ => false,
        };
        match old {
            Some(old) if !back_to_own => displaced.push(std::mem::replace(&mut claims[i].value, old)),
            old => {
                displaced.extend(old);
                displaced.push(claims.swap_remove(i).value);
            }
        }
    });
    displaced.extend(base);
    displaced
}

/// A change of `id` in the thread's own context outside any task: ends any claim on it.
pub(crate) fn end_claim(id: u64) -> Displaced {
    CLAIMS
        .try_with(|claims| {
            let mut claims = claims.borrow_mut();
            let i = claims.iter().position(|claim| claim.id == id)?;
            Some(claims.swap_remove(i).value)
        })
        .ok()
        .flatten()
        .into_iter()
        .collect()
}

/// A snapshot of the thread's own context as `task` sees it: with the task's claims.
pub(crate) fn snapshot(task: Id, mut base: IdMap<Value>) -> IdMap<Value> {
    let mut displaced = Vec::new();
    let _ = CLAIMS.try_with(|claims| {
        for claim in claims.borrow().iter().filter(|claim| claim.task == task) {
            displaced.extend(base.insert(claim.id, claim.value.clone()));
        }
    });
    drop(displaced); // still held by the thread's own context: no destructor runs
    base
}
