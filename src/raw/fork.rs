//! Fork detection for trace IDs drawn from a buffer of randomness (feature `trace`, Unix).

use std::sync::atomic::Ordering;

/// How many times this process is a `fork()` away from the one that first asked: 0 in the
/// original process, incremented in each child by an at-fork handler registered on first use.
/// `None` where no handler could be registered (then callers fall back to the process id).
#[cfg(all(unix, feature = "trace"))]
pub(crate) fn fork_generation() -> Option<u64> {
    use std::sync::Once;
    use std::sync::atomic::{AtomicBool, AtomicU64};

    static GENERATION: AtomicU64 = AtomicU64::new(0);
    static REGISTERED: AtomicBool = AtomicBool::new(false);
    static REGISTER: Once = Once::new();

    extern "C" fn in_child() {
        // Async-signal-safe: one atomic increment, nothing else, in the new child.
        GENERATION.fetch_add(1, Ordering::Relaxed);
    }

    REGISTER.call_once(|| {
        // SAFETY: `pthread_atfork` only records the handler; `in_child` is an `extern "C"` fn
        // with no arguments that lives for the whole program and does only an atomic
        // increment, which is safe in a forked child.
        let failed = unsafe { libc::pthread_atfork(None, None, Some(in_child)) };
        REGISTERED.store(failed == 0, Ordering::Release);
    });
    REGISTERED.load(Ordering::Acquire).then(|| GENERATION.load(Ordering::Relaxed))
}
