//! Catches the leak that unwrapped tokio tasks cause: a value set in a worker thread's own
//! context by one task and read there by another. Debug builds with the `tokio` feature only.
//!
//! A task that nobody gave a context of its own (no [`WithContext`](crate::WithContext), no
//! `contextvars::tokio::spawn`, no task contexts) sets into the *thread's* context, which every
//! task the thread polls next reads. This remembers, per thread and variable, which tasks set
//! the variable there (a stack: sets by several tasks nest, their resets unwind them), and a
//! read by a different task panics. A `set` undone by its `reset` before the task yields, and
//! `scope`, never trigger it: nothing is left for another task to read.
//!
//! Release builds skip the bookkeeping (a map per thread, a task-id lookup per read) to keep
//! `get` at its cost; the leak then goes unnoticed, so test in debug builds.

use std::cell::RefCell;
use std::collections::HashMap;

use ::tokio::task::{Id, try_id};

thread_local! {
    /// Variable id -> the tasks whose sets are stacked in the thread's own context.
    static OWNERS: RefCell<HashMap<u64, Vec<Id>>> = RefCell::new(HashMap::new());
}

/// A `set` in the thread's own context.
pub(crate) fn record_set(var_id: u64) {
    /// Sets never reset (the leak itself) would grow a stack without end: the oldest go.
    const MAX_STACKED: usize = 64;
    if let Some(task) = try_id() {
        let _ = OWNERS.try_with(|owners| {
            let mut owners = owners.borrow_mut();
            let stack = owners.entry(var_id).or_default();
            if stack.len() == MAX_STACKED {
                stack.remove(0);
            }
            stack.push(task);
        });
    }
}

/// A successful `reset` in the thread's own context.
pub(crate) fn record_reset(var_id: u64) {
    let _ = OWNERS.try_with(|owners| {
        let mut owners = owners.borrow_mut();
        if let Some(stack) = owners.get_mut(&var_id) {
            stack.pop();
            if stack.is_empty() {
                owners.remove(&var_id);
            }
        }
    });
}

/// A read in the thread's own context: panics when another task set the value.
#[track_caller]
pub(crate) fn check_read(var_id: u64, name: &'static str) {
    let Some(reader) = try_id() else { return };
    let owner =
        OWNERS.try_with(|owners| owners.borrow().get(&var_id).and_then(|stack| stack.last().copied()));
    if let Ok(Some(owner)) = owner {
        if owner != reader {
            leaked(name, owner, reader);
        }
    }
}

#[cold]
#[inline(never)]
#[track_caller]
fn leaked(name: &str, owner: Id, reader: Id) -> ! {
    panic!(
        "contextvars: `{name}` was set by tokio task {owner} in the worker thread's own context, and \
         task {reader} is reading it: without a context of its own a task's values leak into every \
         task the thread polls. Spawn with `contextvars::tokio::spawn`, wrap the task with \
         `with_context(fut)` / `.in_current_context()`, or serve requests through a layer that \
         gives each request its own context (checked in debug builds with the `tokio` feature)"
    )
}
