//! Counters of the engine's rare states, for the crate's own tests: with the `internals`
//! feature, [`crate::internals::counters`] reads them; without it, counting compiles to
//! nothing.

/// A state worth reaching in tests: each is a path that safe code can take and that only
/// some programs reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(feature = "internals"), allow(dead_code, reason = "counted with `internals` only"))]
pub(crate) enum Event {
    /// A change made while a read lent a reference pinned the map.
    Pinned,
    /// The reads ended and released a pinned map that nothing else held: what it held was
    /// freed right then, after the lent reference was gone.
    PinnedMapFreed,
    /// A change to a map whose trie was shared went into the layer's `top`: the new value is
    /// held there alone.
    WroteOnTop,
    /// A change copied a shared node (a path through the trie, or a layer).
    CopiedNode,
    /// Values shadowed by the layer's `top` were released when it was folded into the trie.
    FoldedTop,
    /// A value was replaced in place through the read cache.
    WroteThroughCache,
}

#[cfg(feature = "internals")]
mod counting {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::Event;

    pub(super) const EVENTS: [Event; 6] = [
        Event::Pinned,
        Event::PinnedMapFreed,
        Event::WroteOnTop,
        Event::CopiedNode,
        Event::FoldedTop,
        Event::WroteThroughCache,
    ];

    pub(super) static COUNTS: [AtomicU64; EVENTS.len()] = [const { AtomicU64::new(0) }; EVENTS.len()];

    pub(super) fn count(event: Event) {
        COUNTS[event as usize].fetch_add(1, Ordering::Relaxed);
    }
}

/// Counts `event` (with the `internals` feature; nothing otherwise).
#[inline]
pub(crate) fn count(event: Event) {
    #[cfg(feature = "internals")]
    counting::count(event);
    let _ = event;
}

/// The counts so far, by event name, in the order of [`Event`].
#[cfg(feature = "internals")]
pub(crate) fn counters() -> Vec<(&'static str, u64)> {
    use std::sync::atomic::Ordering;
    counting::EVENTS
        .iter()
        .map(|&event| {
            let name = match event {
                Event::Pinned => "pinned",
                Event::PinnedMapFreed => "pinned_map_freed",
                Event::WroteOnTop => "wrote_on_top",
                Event::CopiedNode => "copied_node",
                Event::FoldedTop => "folded_top",
                Event::WroteThroughCache => "wrote_through_cache",
            };
            (name, counting::COUNTS[event as usize].load(Ordering::Relaxed))
        })
        .collect()
}
