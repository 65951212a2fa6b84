//! The crate's only `unsafe` code, in a few small pieces the rest of the engine builds on:
//!
//! - [`Shared`]: a reference-counted node that is changed in place when its handle is the
//!   only one (one load of the count, no read-modify-write) and copied otherwise; the last
//!   handle frees it without a read-modify-write either.
//! - [`Value`]: a type-erased, reference-counted value whose type is checked against a
//!   `TypeId` stored beside it, a plain comparison instead of `dyn Any`'s virtual call.
//! - The thread's current context as one raw pointer in a `const` thread-local without a
//!   destructor, so reaching it is a plain thread-local access, and a read cache beside it.
//! - With the `trace` feature on Unix, [`fork_generation`]: an at-fork handler, so that trace
//!   IDs drawn from a buffer of randomness never repeat in a forked child without a system
//!   call per ID.
//!
//! Each piece exists because a benchmark in `benches/context.rs` showed the safe version
//! costing a multiple of the whole operation (BENCHMARKS.md, "Core v2"; the fork handler: "Request tracing"). Every block states
//! the invariant it relies on; Miri checks them under Stacked and Tree Borrows (the fork
//! handler excepted: `trace_fork` tests it with a real `fork`), and the `context_model` and
//! `hamt_model` fuzz targets drive them under the address sanitizer.
//!
//! One file per piece: `shared.rs`, `value.rs`, `slot.rs` (the thread's current context and
//! the read cache) and `fork.rs`.

#[cfg(all(unix, feature = "trace"))]
mod fork;
mod shared;
mod slot;
mod value;

#[cfg(all(unix, feature = "trace"))]
pub(crate) use fork::fork_generation;
pub(crate) use shared::Shared;
pub(crate) use slot::{
    Root, another_root, exchange, lend_value, replace_in_place, root_is_empty, snapshot, update_root,
};
pub(crate) use value::Value;
