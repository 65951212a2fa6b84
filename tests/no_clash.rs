//! The extension trait's names clash with none of the traits an application has in scope
//! beside it: `anyhow::Context` (`context` and `with_context` on results and options) and
//! opentelemetry's `FutureExt` (`with_context` and `with_current_context` on any value).
//!
//! Each method of all three is called with all three in scope. One call needs its trait
//! named: `anyhow::Context::with_context` on a `Result`, because opentelemetry's `FutureExt`,
//! implemented for every type, has a `with_context` too. That clash is between those two;
//! with this crate's trait beside either one alone, every call is a plain method call, as the
//! second test shows.

use anyhow::Context as _;
use contextvars::{Context, ContextVar, FutureExt as _};
use opentelemetry::trace::FutureExt as _;

static USER: ContextVar<&str> = ContextVar::new("user");

/// This crate's two methods on futures.
fn this_crate() {
    let ctx = Context::new().with_value(&USER, "alice");
    assert_eq!(futures::executor::block_on(async { USER.get() }.in_context(ctx)), Some("alice"));
    let mut inner = Context::new();
    inner.run(|| {
        USER.set("bob");
        let task = async { USER.get() }.in_current_context();
        USER.set("carol");
        assert_eq!(futures::executor::block_on(task), Some("bob"));
    });
}

#[test]
fn anyhow_opentelemetry_and_this_crate_in_scope_together() {
    let failed: Result<u32, std::num::ParseIntError> = "x".parse::<u32>();
    let err = anyhow::Context::with_context(failed, || "parsing the port").unwrap_err();
    assert_eq!(err.to_string(), "parsing the port");
    let missing = None::<u32>.context("no port").unwrap_err();
    assert_eq!(missing.to_string(), "no port");

    let otel = opentelemetry::Context::new();
    assert_eq!(futures::executor::block_on(async { 1 }.with_context(otel)), 1);
    assert_eq!(futures::executor::block_on(async { 2 }.with_current_context()), 2);

    this_crate();
}

mod beside_anyhow_alone {
    use anyhow::Context as _;
    use contextvars::FutureExt as _;

    #[test]
    fn every_call_is_a_method_call() {
        let failed: Result<u32, std::num::ParseIntError> = "x".parse::<u32>();
        let err = failed.with_context(|| "parsing the port").unwrap_err();
        assert_eq!(err.to_string(), "parsing the port");
        assert_eq!(None::<u32>.context("no port").unwrap_err().to_string(), "no port");
        assert_eq!(futures::executor::block_on(async { 3 }.in_current_context()), 3);
    }
}
