//! The crate's only `unsafe` code, in a few small pieces the rest of the engine builds on:
//!
//! - [`Shared`]: a reference-counted node that is changed in place when its handle is the
//!   only one (one load of the count, no read-modify-write) and copied otherwise; the last
//!   handle frees it without a read-modify-write either.
//! - [`Value`]: a type-erased, reference-counted value whose type is checked against a
//!   `TypeId` stored beside it, a plain comparison instead of `dyn Any`'s virtual call.
//! - The thread's current context as a pointer to the `Context` entered last (`slot.rs`), so
//!   entering one stores a word and reaching it is a plain thread-local access.
//! - The read cache (`cache.rs`): where recent reads found their values, so that a read, and
//!   an in-place replacement of a value only this context holds, skip the walk through the map.
//! - Lending (`lend.rs`): a read hands user code a reference into the current context without
//!   a reference-count increment; what keeps it valid meanwhile.
//! - With the `trace` feature on Unix, [`fork_generation`]: an at-fork handler, so that trace
//!   IDs drawn from a buffer of randomness never repeat in a forked child without a system
//!   call per ID.
//!
//! Each piece is kept because a benchmark showed the safe version costing a multiple of the
//! whole operation (BENCHMARKS.md, "Sound engine: what each unsafe piece earns"; the fork
//! handler: "Request tracing"). Every block states the invariant it relies on; Miri checks
//! them under Stacked and Tree Borrows (the fork handler excepted: `trace_fork` tests it with
//! a real `fork`), and the `context_model` and `hamt_model` fuzz targets drive them under the
//! address sanitizer.

mod cache;
#[cfg(feature = "tokio")]
pub(crate) mod claims;
#[cfg(all(unix, feature = "trace"))]
mod fork;
mod lend;
mod shared;
mod slot;
mod value;

pub(crate) use cache::{Ticket, put_back, record_writable, replace};
#[cfg(all(unix, feature = "trace"))]
pub(crate) use fork::fork_generation;
#[cfg(feature = "tokio")]
pub(crate) use lend::hold;
pub(crate) use lend::{is_lending, lend_value, pin};
pub(crate) use shared::Shared;
pub(crate) use slot::{change_current, enter, in_entered_context, share_current, swap_current, with_current};
pub(crate) use value::Value;
