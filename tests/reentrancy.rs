//! Context variables used from inside a value's `Clone`, which `ContextVar::get` runs while
//! it reads the current context.
//!
//! `get` documents that a `Clone` impl must not *set* a variable or *enter* a context. Reading
//! is another matter: a `Clone` that reads another variable (to log, say) is ordinary code.

use std::panic::{AssertUnwindSafe, catch_unwind};

use contextvars::{Context, ContextVar};

static OTHER: ContextVar<u32> = ContextVar::new("other");

/// A value whose `Clone` reads `OTHER` in the way `read` says.
#[derive(Debug)]
struct ReadsOnClone(fn() -> Option<u32>);

impl Clone for ReadsOnClone {
    fn clone(&self) -> Self {
        assert_eq!((self.0)(), Some(1), "the clone read the current value of OTHER");
        ReadsOnClone(self.0)
    }
}

#[allow(
    clippy::redundant_closure_for_method_calls,
    reason = "`Option::copied` as a path does not meet `with`'s higher-ranked bound"
)]
fn other_with() -> Option<u32> {
    OTHER.with(|value| value.copied())
}

static BY_GET: ContextVar<ReadsOnClone> = ContextVar::new("by_get");
static BY_WITH: ContextVar<ReadsOnClone> = ContextVar::new("by_with");

#[test]
fn get_and_is_set_inside_a_clone_run_by_get() {
    Context::new().run(|| {
        OTHER.set(1);
        BY_GET.set(ReadsOnClone(|| if OTHER.is_set() { OTHER.get() } else { None }));
        assert!(BY_GET.get().is_some());
    });
}

/// `with` only reads, but it takes the current context mutably (to freeze the value it hands
/// out), so inside a `Clone` run by `get` it panics with "a value's `Clone` impl ... tried to
/// change the current context". Nothing in `with`'s documentation warns of it.
#[test]
#[ignore = "core bug: ContextVar::with panics when called from a Clone run by ContextVar::get"]
fn with_inside_a_clone_run_by_get() {
    Context::new().run(|| {
        OTHER.set(1);
        BY_WITH.set(ReadsOnClone(other_with));
        let result = catch_unwind(AssertUnwindSafe(|| BY_WITH.get().is_some()));
        assert!(matches!(result, Ok(true)), "get panicked: `with` inside `Clone` is a read");
    });
}

static BY_COPY: ContextVar<ReadsOnClone> = ContextVar::new("by_copy");

/// The same for a snapshot: `copy_context` freezes the current context in place first.
#[test]
#[ignore = "core bug: copy_context panics when called from a Clone run by ContextVar::get"]
fn copy_context_inside_a_clone_run_by_get() {
    Context::new().run(|| {
        OTHER.set(1);
        BY_COPY.set(ReadsOnClone(|| contextvars::copy_context().get(&OTHER).copied()));
        let result = catch_unwind(AssertUnwindSafe(|| BY_COPY.get().is_some()));
        assert!(matches!(result, Ok(true)), "get panicked: a snapshot inside `Clone` is a read");
    });
}
