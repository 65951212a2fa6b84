//! The programs of two undefined behaviours that safe code once reached, kept as regression
//! tests (they run under Miri in CI). The third, one variable read at two types through a
//! covariant upcast, no longer compiles: see the `compile_fail` example in `ContextVar`'s
//! docs.

use contextvars::{Context, ContextVar};

static OTHER: ContextVar<u32> = ContextVar::new("other");
static VAR: ContextVar<String> = ContextVar::new("var");

/// A value lent by `with` and held only by the layer's top: the `set` inside `with` pins the
/// map, and the pin is released only after the closure that holds the reference returned.
#[test]
fn a_lent_value_outlives_the_set_that_replaces_it() {
    Context::new().run(|| {
        OTHER.set(1);
        let _snapshot = Context::current(); // the trie is shared
        VAR.set("old".to_string()); // goes into the layer's top
        VAR.with(|old| {
            drop(VAR.set("new".to_string())); // pins and copies; the token drops "old"
            assert_eq!(old.map(String::as_str), Some("old")); // still readable
        });
        assert_eq!(VAR.get().as_deref(), Some("new"));
    });
}

/// The same, with the value in the trie and the set made in place had nothing been lent.
#[test]
fn a_lent_value_in_an_unshared_trie_outlives_the_set_that_replaces_it() {
    Context::new().run(|| {
        VAR.set("old".to_string());
        VAR.with(|old| {
            VAR.set("new".to_string());
            VAR.set("newer".to_string());
            assert_eq!(old.map(String::as_str), Some("old"));
        });
        assert_eq!(VAR.get().as_deref(), Some("newer"));
    });
}

/// A value lent from one context while the closure enters another and sets there.
#[test]
fn a_lent_value_survives_entering_other_contexts() {
    Context::new().run(|| {
        VAR.set("outer".to_string());
        VAR.with(|outer| {
            let mut inner = Context::current();
            inner.run(|| {
                VAR.set("inner".to_string());
                VAR.with(|inner| assert_eq!(inner.map(String::as_str), Some("inner")));
            });
            drop(inner);
            VAR.set("replaced".to_string());
            assert_eq!(outer.map(String::as_str), Some("outer"));
        });
    });
}
