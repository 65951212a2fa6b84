//! Context variables used from inside a value's `Clone`, which `ContextVar::get` runs while
//! it reads the current context.
//!
//! A `Clone` impl may read variables (to log, say), and also set and reset them, enter contexts
//! and take snapshots: `get` lends the value it found and keeps it valid meanwhile, while the
//! changes land in the current context as usual.

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

/// A snapshot taken inside a `Clone` run by `get` sees the context `get` reads.
#[test]
fn copy_context_inside_a_clone_run_by_get() {
    Context::new().run(|| {
        OTHER.set(1);
        BY_COPY.set(ReadsOnClone(|| contextvars::copy_context().get(&OTHER).copied()));
        assert_eq!(BY_COPY.get().map(|_| ()), Some(()));
        assert_eq!(BY_COPY.with(|v| v.map(|v| (v.0)())), Some(Some(1)));
        OTHER.set(2);
        assert_eq!(OTHER.get(), Some(2));
    });
}

/// A value whose `Clone` changes the context `get` is reading from: it sets the variable
/// being cloned (whose storage `get` is lending), another one, enters a context and resets.
/// `get` returns the value it found; every change shows afterwards; nothing is lost.
#[test]
fn a_clone_impl_may_set_reset_and_enter_while_get_reads() {
    #[derive(Debug, PartialEq)]
    struct SetsOnClone(String);
    static SELF_SETTING: ContextVar<SetsOnClone> = ContextVar::new("self_setting");
    impl Clone for SetsOnClone {
        fn clone(&self) -> Self {
            let copy = SetsOnClone(self.0.clone());
            // overwrite the value being cloned, then read our own storage again
            SELF_SETTING.set(SetsOnClone(format!("{}+", self.0)));
            let token = OTHER.set(7);
            assert_eq!(
                Context::new().run(|| {
                    OTHER.set(8);
                    OTHER.get()
                }),
                Some(8)
            );
            assert_eq!(OTHER.get(), Some(7));
            OTHER.reset(token).unwrap();
            OTHER.set(9);
            assert_eq!(copy.0, self.0, "the value being cloned changed under the clone");
            copy
        }
    }
    Context::new().run(|| {
        SELF_SETTING.set(SetsOnClone("a".to_string()));
        let _snapshot = contextvars::copy_context();
        assert_eq!(SELF_SETTING.get(), Some(SetsOnClone("a".to_string())));
        assert_eq!(OTHER.get(), Some(9));
        assert_eq!(SELF_SETTING.with(|v| v.map(|v| v.0.clone())).as_deref(), Some("a+"));
        // and once more without a snapshot, so the value is stored unshared
        Context::new().run(|| {
            SELF_SETTING.set(SetsOnClone("b".to_string()));
            assert_eq!(SELF_SETTING.get(), Some(SetsOnClone("b".to_string())));
            assert_eq!(SELF_SETTING.with(|v| v.map(|v| v.0.len())), Some(2));
        });
    });
}
