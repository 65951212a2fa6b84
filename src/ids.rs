//! [`unique`]: numbers no other call on any thread returns, mostly without an atomic operation.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// Numbers a thread takes from the shared counter at a time.
const BLOCK: u64 = 1 << 16;

/// The start of the next block, shared by all threads. Starts at 1: 0 is never handed out.
static BLOCKS: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The next number this thread hands out, and the end of its block.
    static NEXT: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// A non-zero number no call has returned before: from this thread's block, taking a new
/// block from the shared counter when it runs out (one atomic add per 65,536 numbers).
///
/// Names the contexts that tokens are checked against, and the content of tries for the read
/// cache. A `u64` does not run out: at one number per nanosecond it lasts 584 years.
#[inline]
pub(crate) fn unique() -> u64 {
    let (next, end) = NEXT.get();
    if next < end {
        NEXT.set((next + 1, end));
        return next;
    }
    new_block()
}

#[cold]
#[inline(never)]
fn new_block() -> u64 {
    let start = BLOCKS.fetch_add(BLOCK, Ordering::Relaxed);
    NEXT.set((start + 1, start + BLOCK));
    start
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(miri, ignore = "200,000 numbers: safe code, too slow to interpret")]
    fn numbers_are_unique_across_threads_and_blocks() {
        let take = || (0..3 * BLOCK as usize / 2).map(|_| unique()).collect::<Vec<_>>();
        let other = std::thread::spawn(take).join().unwrap();
        let mut all = take();
        all.extend(other);
        let count = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), count);
        assert!(all[0] > 0);
    }
}
