//! A `const` `ContextVar` is a new variable at every use, so its values can never be read back:
//! the mistake must be loud, not a silent `None`.

use std::panic::catch_unwind;

use contextvars::{Context, ContextVar};

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

/// A variable made at run time, as a field of an object (Python's `asgiref.Local` makes one
/// per object).
struct PerObject {
    value: ContextVar<String>,
}

#[test]
fn a_variable_set_inside_a_run_that_returned_drops_quietly() {
    let var = ContextVar::new("per_test");
    let mut ctx = Context::new();
    ctx.run(|| var.set(7));
    assert_eq!(ctx.get(&var), Some(&7));
    drop(var); // its value sits in `ctx`, not in the context current here
}

#[test]
fn a_variable_set_then_reset_drops_quietly() {
    let var = ContextVar::new("set_then_reset");
    let token = var.set(1);
    var.reset(token).unwrap();
    drop(var);
}

#[test]
fn a_field_of_an_object_drops_quietly_with_its_object() {
    let object = PerObject { value: ContextVar::new("field") };
    Context::new().run(|| {
        object.value.set("inside".to_string());
        assert_eq!(object.value.get().as_deref(), Some("inside"));
    });
    drop(object);
}

#[test]
fn thousands_of_variables_made_at_run_time_drop_quietly() {
    let vars: Vec<ContextVar<usize>> = (0..3_000).map(|_| ContextVar::new("many")).collect();
    let mut ctx = Context::new();
    ctx.run(|| {
        for (i, var) in vars.iter().enumerate() {
            var.set(i);
        }
        assert!(vars.iter().enumerate().all(|(i, var)| var.get() == Some(i)));
    });
    assert_eq!(ctx.len(), 3_000);
    drop(vars);
    drop(ctx); // the values go with the context
}

#[cfg(debug_assertions)]
#[test]
fn a_variable_dropped_while_its_value_is_set_in_the_current_context_panics() {
    let outcome = std::thread::spawn(|| {
        let var = ContextVar::new("left_behind");
        var.set(1);
        catch_unwind(std::panic::AssertUnwindSafe(|| drop(var)))
    })
    .join()
    .unwrap();
    let err = outcome.unwrap_err();
    let message = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("`left_behind`") && message.contains("declare it `static`"), "{message}");
}
