#![doc = include_str!("../README.md")]
#![deny(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod context;
mod current;
mod error;
mod ext;
mod future;
#[doc(hidden)]
pub mod hamt;
#[allow(unsafe_code, reason = "the crate's only unsafe code, each block with its invariant")]
mod raw;
#[cfg(feature = "rayon")]
pub mod rayon;
mod spawn;
pub mod thread;
mod token;
#[cfg(feature = "tokio")]
pub mod tokio;
#[cfg(feature = "tower")]
pub mod tower;
#[cfg(feature = "trace")]
pub mod trace;
mod var;
mod wrap;

pub use context::{Context, Iter, copy_context};
pub use error::{ResetError, TryResetError};
pub use ext::FutureExt;
pub use future::{AndContext, WithContext, with_context};
pub use spawn::ContextSpawner;
pub use token::Token;
pub use var::ContextVar;
