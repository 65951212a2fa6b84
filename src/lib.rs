// The crate documentation, the same with every feature set: the model, getting started, which
// integration for which executor, recipes, semantics, policies, implementation notes and FAQ.
// Its examples use the core only; each integration's guide is on its own module.
#![doc = include_str!("guide.md")]
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

// The README's examples, run as doctests. They use the optional integrations, so they run
// when those features are on (`cargo test --doc --all-features`).
#[cfg(all(doctest, feature = "tokio", feature = "rayon", feature = "tower-trace"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
