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
//! A task's claims are kept per thread, yet a task moves between threads: a claim is returned
//! to its task only while it holds the task's latest set of the variable on any thread (the
//! registry [`LATEST`]). A task that set again elsewhere, then came back, reads as if the
//! older claim did not exist, never its older value.
//!
//! Reads that meet another task's claim, and sets that end one, are the mistake: they are
//! recorded (debug builds) and reported by `current.rs` at the thread's next change, never
//! inside the reader's call. So is a task's `set` from a line whose earlier `set` in the same
//! task was never reset: the sign of one task serving request after request (an HTTP/1
//! keep-alive connection), whose later requests read the earlier one's value until they set.
//!
//! While claims exist, the thread's own context keeps no read hint, so that every read of it
//! comes here; and with the `tokio` feature it never keeps a write hint, so that no set of it
//! writes through the read cache.

use std::cell::RefCell;
use std::collections::HashMap;
use std::panic::Location;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

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
    /// `true` while this claim holds its task's latest set of the variable (see [`LATEST`]).
    latest: Arc<AtomicBool>,
}

impl Claim {
    /// The value, when its task reads it: only while the claim is the task's latest.
    fn value_for(&self, task: Id) -> Option<&Value> {
        (self.task == task && self.latest.load(Ordering::Acquire)).then_some(&self.value)
    }
}

/// A thread's claims; on thread exit they leave the registry.
struct Claims(Vec<Claim>);

impl Drop for Claims {
    fn drop(&mut self) {
        for claim in &self.0 {
            unregister(claim);
        }
    }
}

thread_local! {
    static CLAIMS: RefCell<Claims> = const { RefCell::new(Claims(Vec::new())) };
}

/// What the registry knows of a task's latest claim of a variable.
struct Latest {
    /// The claim's flag: cleared when a newer claim of the task takes its place.
    flag: Arc<AtomicBool>,
    /// The lines of the task's sets of the variable not reset yet, oldest first (a few).
    unreset: Vec<&'static Location<'static>>,
}

/// Sets a task made and did not reset that [`Latest`] keeps, the latest ones.
const MAX_UNRESET: usize = 8;

/// The latest claim of each task and variable, on any thread: at most one entry per claim
/// alive, so its size is bounded by [`MAX_CLAIMS`] per thread.
static LATEST: Mutex<Option<HashMap<(Id, u64), Latest>>> = Mutex::new(None);

fn latest_map<R>(f: impl FnOnce(&mut HashMap<(Id, u64), Latest>) -> R) -> R {
    let mut map = LATEST.lock().unwrap_or_else(PoisonError::into_inner);
    f(map.get_or_insert_with(HashMap::new))
}

/// Makes a new claim of `id` by `task`, set at `set_at`, the task's latest: any older one,
/// on any thread, stops being returned. Returns the new claim's flag, and whether the task
/// had set the variable at `set_at` before without resetting it.
fn register(task: Id, id: u64, set_at: &'static Location<'static>) -> (Arc<AtomicBool>, bool) {
    let flag = Arc::new(AtomicBool::new(true));
    let again = latest_map(|map| {
        let mut unreset = Vec::new();
        let mut again = false;
        if let Some(older) = map.remove(&(task, id)) {
            older.flag.store(false, Ordering::Release);
            again = older.unreset.contains(&set_at);
            unreset = older.unreset;
        }
        if unreset.len() == MAX_UNRESET {
            unreset.remove(0);
        }
        unreset.push(set_at);
        map.insert((task, id), Latest { flag: flag.clone(), unreset });
        again
    });
    (flag, again)
}

/// A reset by the claim's task: its latest unreset set is undone.
fn reset_registered(claim: &Claim) {
    latest_map(|map| {
        if let Some(latest) = map.get_mut(&(claim.task, claim.id)) {
            if Arc::ptr_eq(&latest.flag, &claim.latest) {
                latest.unreset.pop();
            }
        }
    });
}

/// A claim that ends: out of the registry, when it was its task's latest.
fn unregister(claim: &Claim) {
    if !claim.latest.load(Ordering::Acquire) {
        return;
    }
    claim.latest.store(false, Ordering::Release);
    latest_map(|map| {
        if map.get(&(claim.task, claim.id)).is_some_and(|latest| Arc::ptr_eq(&latest.flag, &claim.latest)) {
            map.remove(&(claim.task, claim.id));
        }
    });
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
    CLAIMS.try_with(|claims| !claims.borrow().0.is_empty()).unwrap_or(false)
}

/// A read of `id` in the thread's own context while claims exist: the running task's claim,
/// or else the thread's own value. Records the mistake when another task's claim is passed
/// over. Runs no user code.
pub(super) fn find(id: u64, ctx: &Context) -> Option<NonNull<Header>> {
    let reader = try_id();
    let claimed = CLAIMS.try_with(|claims| {
        let claims = claims.borrow();
        let claim = claims.0.iter().find(|claim| claim.id == id)?;
        match reader {
            Some(task) if claim.task == task => Some(claim.value_for(task).map(Value::as_ptr)),
            _ => {
                crate::tokio::leak::record(claim.value.name(), claim.set_at, claim.task, reader);
                Some(None)
            }
        }
    });
    match claimed {
        Ok(Some(Some(value))) => Some(value),
        _ => ctx.map.get(id).map(Value::as_ptr),
    }
}

/// The value `task` claimed for `id`, as another handle, while it is the task's latest.
pub(crate) fn claimed(id: u64, task: Id) -> Option<Value> {
    // A thread holds at most one claim per variable (`set` replaces it).
    CLAIMS
        .try_with(|claims| {
            let claims = claims.borrow();
            claims.0.iter().find(|claim| claim.id == id).and_then(|claim| claim.value_for(task).cloned())
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
        let claims = &mut claims.borrow_mut().0;
        if let Some(i) = claims.iter().position(|claim| claim.id == id) {
            let lost = claims.swap_remove(i);
            match lost.value_for(task) {
                Some(_) => old = Some(lost.value.clone()),
                // Another task's value for this variable is lost, never shown.
                None if lost.task != task => {
                    crate::tokio::leak::record(lost.value.name(), lost.set_at, lost.task, Some(task));
                }
                None => {} // the task's own, older than its latest: forgotten
            }
            if lost.task != task {
                unregister(&lost);
            } // else the registry's entry is the task's: `register` takes it over
            displaced.push(lost.value);
        }
        if claims.len() < MAX_CLAIMS {
            let (latest, again) = register(task, id, set_at);
            if again {
                // The same line set the variable before in this task, and no reset came.
                crate::tokio::leak::record(name, set_at, task, Some(task));
            }
            claims.push(Claim { id, task, value: new, set_at, latest });
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
/// as what the task sees, while the claim is still the task's latest (else the value was
/// lost, and nothing changes). Returns what it displaced.
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
        let claims = &mut claims.borrow_mut().0;
        let Some(i) = claims.iter().position(|claim| claim.id == id && claim.value_for(task).is_some())
        else {
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
            Some(old) if !back_to_own => {
                reset_registered(&claims[i]);
                displaced.push(std::mem::replace(&mut claims[i].value, old));
            }
            old => {
                displaced.extend(old);
                let ended = claims.swap_remove(i);
                unregister(&ended);
                displaced.push(ended.value);
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
            let claims = &mut claims.borrow_mut().0;
            let i = claims.iter().position(|claim| claim.id == id)?;
            let ended = claims.swap_remove(i);
            unregister(&ended);
            Some(ended.value)
        })
        .ok()
        .flatten()
        .into_iter()
        .collect()
}

/// A snapshot of the thread's own context as `task` sees it: with the task's latest claims.
pub(crate) fn snapshot(task: Id, mut base: IdMap<Value>) -> IdMap<Value> {
    let mut displaced = Vec::new();
    let _ = CLAIMS.try_with(|claims| {
        for claim in &claims.borrow().0 {
            if let Some(value) = claim.value_for(task) {
                displaced.extend(base.insert(claim.id, value.clone()));
            }
        }
    });
    drop(displaced); // still held by the thread's own context: no destructor runs
    base
}
