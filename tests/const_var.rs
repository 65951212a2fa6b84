//! A `const` `ContextVar` is a new variable at every use, so its values can never be read back:
//! the mistake must be loud, not a silent `None`.

use std::panic::catch_unwind;

use contextvars::ContextVar;

#[allow(clippy::declare_interior_mutable_const, reason = "the mistake under test")]
const NOT_STATIC: ContextVar<u32> = ContextVar::new("not_static");

#[cfg(debug_assertions)]
#[test]
fn setting_a_const_context_var_panics_in_debug_builds() {
    #[allow(clippy::borrow_interior_mutable_const, reason = "the mistake under test")]
    let err = catch_unwind(|| {
        NOT_STATIC.set(1);
    })
    .unwrap_err();
    let message = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("`not_static`") && message.contains("declare it `static`"), "{message}");
}

#[test]
fn reading_a_const_that_was_never_set_is_quiet() {
    #[allow(clippy::borrow_interior_mutable_const, reason = "reads only")]
    let seen = NOT_STATIC.get();
    assert_eq!(seen, None);
}

#[test]
fn a_static_is_never_dropped_and_a_local_never_set_is_dropped_quietly() {
    static FINE: ContextVar<u32> = ContextVar::new("fine");
    FINE.set(1);
    assert_eq!(FINE.get(), Some(1));
    let local: ContextVar<u32> = ContextVar::new("local");
    assert_eq!(local.get(), None);
    drop(local);
}
