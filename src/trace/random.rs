//! Fresh random ids from the operating system's generator, drawn in batches.
//!
//! Asking the OS for 24 bytes per request (a trace-id and a parent-id) costs a system call
//! each time, which is most of what generating a trace costs; so each thread keeps a small
//! buffer of OS randomness and refills it when it runs out. Used bytes are wiped. If the OS
//! generator fails (it practically never does), ids come from a keyed hash of a counter, the
//! time and the thread instead, so that generating an id never fails or panics.
//!
//! A process created by `fork()` inherits the buffer: parent and child would then hand out
//! the same ids (a daemon forking workers, a Python extension under a pre-forking server).
//! On Unix an at-fork handler counts forks (`fork_generation`, one atomic load per id); each
//! buffer remembers the generation that filled it and is thrown away in a child. Where the
//! handler cannot be registered, the buffer remembers the process id instead (one `getpid`
//! per id).

use std::cell::RefCell;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{SpanId, TraceId};

const POOL: usize = 4096;

struct Pool {
    bytes: [u8; POOL],
    used: usize,
    /// The process that filled `bytes`: a forked child must not use them.
    filled_by: u64,
}

thread_local! {
    static RANDOM: RefCell<Pool> = const { RefCell::new(Pool { bytes: [0; POOL], used: POOL, filled_by: u64::MAX }) };
}

/// Which process this is, as far as a buffer filled in another one must not be used here: the
/// fork generation, else the process id (with the high bit set, apart from generations).
fn process() -> u64 {
    #[cfg(unix)]
    if let Some(generation) = crate::raw::fork_generation() {
        return generation;
    }
    u64::from(std::process::id()) | 1 << 63
}

/// Fills `out` (at most `POOL` bytes) with random bytes.
fn fill(out: &mut [u8]) {
    let from_pool = RANDOM.try_with(|pool| {
        let Ok(mut pool) = pool.try_borrow_mut() else { return false };
        let process = process();
        if pool.used + out.len() > POOL || pool.filled_by != process {
            if getrandom::fill(&mut pool.bytes).is_err() {
                return false;
            }
            pool.used = 0;
            pool.filled_by = process;
        }
        let range = pool.used..pool.used + out.len();
        out.copy_from_slice(&pool.bytes[range.clone()]);
        pool.bytes[range].fill(0);
        pool.used += out.len();
        true
    });
    if from_pool != Ok(true) {
        fallback(out);
    }
}

/// Bytes from a hash keyed by the standard library's per-process random keys, over a
/// process-wide counter, the time and the thread: unique, though not from the OS generator.
fn fallback(out: &mut [u8]) {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    for chunk in out.chunks_mut(8) {
        let mut hasher = std::hash::RandomState::new().build_hasher();
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        hasher.write_u128(nanos);
        std::hash::Hash::hash(&std::thread::current().id(), &mut hasher);
        let word = hasher.finish().to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
}

/// A new random trace-id: a UUID v4 (122 random bits), whose 32 hex digits are also a valid
/// W3C trace-id (never all zeros: the version bits are set).
pub(crate) fn trace_id() -> TraceId {
    let mut bytes = [0; 16];
    fill(&mut bytes);
    TraceId::from_bytes(uuid::Builder::from_random_bytes(bytes).into_uuid().into_bytes())
}

/// A new random, non-zero parent-id (W3C forbids the all-zero one).
pub(crate) fn span_id() -> SpanId {
    let mut bytes = [0; 8];
    fill(&mut bytes);
    if bytes == [0; 8] {
        bytes[7] = 1;
    }
    SpanId::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_across_refills() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..2 * POOL {
            assert!(seen.insert(trace_id()));
            assert!(span_id().is_valid());
        }
    }

    #[test]
    fn fallback_bytes_differ_from_call_to_call() {
        let (mut a, mut b) = ([0; 16], [0; 16]);
        fallback(&mut a);
        fallback(&mut b);
        assert_ne!(a, b);
        assert_ne!(a, [0; 16]);
    }

    #[test]
    fn generated_trace_ids_are_uuid_v4() {
        let id = uuid::Uuid::from_bytes(trace_id().to_bytes());
        assert_eq!(id.get_version_num(), 4);
        assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
    }
}
