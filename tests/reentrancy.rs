//! Context variables used from inside a value's `Clone`, which `ContextVar::get` runs while
//! it reads the current context.
//!
//! `get` documents that a `Clone` impl may read variables but not set them, enter a context or
//! take a snapshot: a `Clone` that reads another variable (to log, say) is ordinary code.

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

/// `with` only reads: when `get` holds the context borrowed, it lends the value under the
/// same borrow instead of freezing it.
#[test]
fn with_inside_a_clone_run_by_get() {
    Context::new().run(|| {
        OTHER.set(1);
        BY_WITH.set(ReadsOnClone(other_with));
        let result = catch_unwind(AssertUnwindSafe(|| BY_WITH.get().is_some()));
        assert!(matches!(result, Ok(true)), "get panicked: `with` inside `Clone` is a read");
    });
}

static BY_COPY: ContextVar<ReadsOnClone> = ContextVar::new("by_copy");

/// A snapshot needs the context frozen in place, which cannot happen while `get` holds it
/// borrowed: `copy_context` there panics, with a message that says what went wrong, and the
/// context is left usable (the documented limitation of `Clone` impls run by `get`).
#[test]
fn copy_context_inside_a_clone_run_by_get_panics_with_a_clear_message() {
    Context::new().run(|| {
        OTHER.set(1);
        BY_COPY.set(ReadsOnClone(|| contextvars::copy_context().get(&OTHER).copied()));
        let err = catch_unwind(AssertUnwindSafe(|| BY_COPY.get().is_some())).unwrap_err();
        let message =
            err.downcast_ref::<&str>().copied().or(err.downcast_ref::<String>().map(String::as_str));
        assert!(message.is_some_and(|m| m.contains("`copy_context`")), "{message:?}");
        assert_eq!(OTHER.get(), Some(1), "the context still works after the panic");
        OTHER.set(2);
        assert_eq!(OTHER.get(), Some(2));
    });
}
