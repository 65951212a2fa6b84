// The README is the crate documentation. Its examples are complete programs that use the
// optional integrations, so it is included (and its examples run as doctests) only when every
// feature they need is on: `cargo test --all-features`, and docs.rs, which builds with all
// features.
#![cfg_attr(
    all(
        feature = "trace",
        feature = "tower-trace",
        feature = "log",
        feature = "tracing",
        feature = "test-util",
        feature = "tokio",
        feature = "rayon"
    ),
    doc = include_str!("../README.md")
)]
#![cfg_attr(
    not(all(
        feature = "trace",
        feature = "tower-trace",
        feature = "log",
        feature = "tracing",
        feature = "test-util",
        feature = "tokio",
        feature = "rayon"
    )),
    doc = "Context variables (Python's PEP 567) for Rust: values that follow a request across \
           `.await`, spawned tasks and thread pools, on any executor.\n\n\
           The guide (the model, recipes for each executor and integration, semantics, MSRV and \
           semver policy) is the crate's README.md. It is the front page of these docs when they \
           are built with every feature, as docs.rs builds them: \
           `cargo doc --all-features --open`."
)]
#![deny(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod context;
mod current;
mod error;
mod ext;
mod future;
#[cfg_attr(not(feature = "internals"), allow(unreachable_pub, reason = "public to `internals` only"))]
mod hamt;
mod ids;
pub mod lints;
#[allow(unsafe_code, reason = "the crate's only unsafe code, each block with its invariant")]
mod raw;
#[cfg(feature = "rayon")]
pub mod rayon;
mod spawn;
mod stats;
pub mod thread;
mod token;
#[cfg(feature = "tokio")]
pub mod tokio;
#[cfg(feature = "tower")]
pub mod tower;
#[cfg(feature = "trace")]
pub mod trace;
mod var;
mod watch;
mod wrap;

/// The engine's internals, for the crate's own tests, benchmarks and fuzz targets: not part of
/// the API, and changed in any release. Built only with the `internals` feature.
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod internals {
    pub use crate::hamt::{IdMap, Iter, MARK};
    use crate::{ContextVar, Token};

    /// `ContextVar::set` without the worker-thread check and the leak bookkeeping: what the
    /// benchmarks compare `set` with, to measure those.
    pub fn set_unchecked<T: Send + Sync + 'static>(var: &ContextVar<T>, value: T) -> Token<T> {
        var.set_unchecked(value)
    }

    /// How often each of the engine's rare states was reached so far, by name.
    #[must_use]
    pub fn counters() -> Vec<(&'static str, u64)> {
        crate::stats::counters()
    }
}

pub use context::{Context, Entry, Iter, copy_context};
pub use error::{ResetError, TryResetError};
pub use ext::FutureExt;
pub use future::{AndContext, WithContext, with_context};
pub use spawn::ContextSpawner;
pub use token::Token;
pub use var::ContextVar;
pub use watch::Watch;
