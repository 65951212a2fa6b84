//! The persistent map against `BTreeMap` copies: shared by `tests/hamt_model.rs` and the
//! `hamt_model` fuzz target.
//!
//! Several maps are alive at once; `Share` makes a new one from an existing one (a clone,
//! sharing the trie), after which both are changed independently. After every step each map must hold
//! exactly what its own `BTreeMap` holds (so a change to one never shows in a snapshot), and
//! pass `check_invariants`: the map the step changed is checked and compared entry by entry,
//! every other one by length and an order-independent digest of its entries, and all of them
//! in full at the end. Values count their constructions and drops, so that a leak or a double
//! drop of a value shows once everything has been dropped.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::Arc;

use arbitrary::{Arbitrary, Unstructured};
use contextvars::internals::IdMap;

/// Most maps alive at once.
const MAX_MAPS: usize = 8;

thread_local! {
    /// Values constructed minus values dropped, on this thread.
    static LIVE: Cell<i64> = const { Cell::new(0) };
}

/// A counted payload.
#[derive(Debug)]
pub(crate) struct Counted(u32);

impl Counted {
    fn new(value: u32) -> Self {
        LIVE.with(|live| live.set(live.get() + 1));
        Self(value)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        LIVE.with(|live| {
            assert!(live.get() > 0, "a value was dropped more often than it was made");
            live.set(live.get() - 1);
        });
    }
}

/// A value as the crate stores them: reference-counted, cloned when its node is copied.
pub(crate) type Val = Arc<Counted>;

fn val(value: u32) -> Val {
    Arc::new(Counted::new(value))
}

fn get(v: &Val) -> u32 {
    v.0
}

/// A key: mostly built from a few small 5-bit chunk values, so that keys collide in their
/// low chunks and nest several levels deep; sometimes any `u64`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Key(pub(crate) u64);

impl<'a> Arbitrary<'a> for Key {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let kind: u8 = u.arbitrary()?;
        if kind < 32 {
            return Ok(Key(u.arbitrary()?));
        }
        // Chunk values 0..4 in the three lowest chunks, and a top part that is either zero
        // or one of a few values that only differ in the high bits.
        let chunks: [u8; 3] = u.arbitrary()?;
        let low = chunks.iter().enumerate().fold(0u64, |k, (i, c)| k | (u64::from(c % 4) << (5 * i)));
        let top = match kind % 4 {
            0 | 1 => 0,
            2 => 1 << 63,
            _ => u64::from(kind) << 55,
        };
        Ok(Key(low | top))
    }
}

/// One step of a program over the maps. `map` picks one of the live maps (modulo their number).
#[derive(Debug, Clone, Arbitrary)]
pub(crate) enum HamtAction {
    /// `insert` and compare the value it displaced.
    Insert { map: u8, key: Key, value: u32 },
    /// `remove` and compare the value it returned.
    Remove { map: u8, key: Key },
    /// `get` and `contains_key`.
    Get { map: u8, key: Key },
    /// `upsert`: overwrite in place when present, insert otherwise.
    Upsert { map: u8, key: Key, value: u32 },
    /// A new map sharing the trie of another one (a clone, as a context snapshot is).
    Share { map: u8 },
    /// Drops a map (never the last one).
    Drop { map: u8 },
    /// `fold_top`: what the layer keeps on top moves into the trie when the map alone holds
    /// both, releasing the values it shadowed; nothing changes otherwise.
    Fold { map: u8 },
    /// A new map: a copy without the marked keys (`without_marked`, what a spawn inherits).
    WithoutMarked { map: u8 },
}

/// A map under test and the `BTreeMap` it must equal.
struct Pair {
    map: IdMap<Val>,
    model: BTreeMap<u64, u32>,
}

/// Turns bytes into a program: as many actions as the bytes make.
pub(crate) fn decode(bytes: &[u8]) -> Vec<HamtAction> {
    let mut u = Unstructured::new(bytes);
    std::iter::from_fn(|| if u.is_empty() { None } else { u.arbitrary().ok() }).collect()
}

/// A digest of a map's entries that does not depend on their order.
fn digest<'a>(entries: impl Iterator<Item = (u64, u32)> + 'a) -> u64 {
    entries
        .map(|(k, v)| {
            // splitmix64 of the pair
            let mut z = k.wrapping_add(u64::from(v).rotate_left(32)).wrapping_add(0x9e37_79b9_7f4a_7c15);
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        })
        .fold(0, u64::wrapping_add)
}

/// Cheap check of a map the step did not change: length and a digest of the entries.
fn check_summary(pair: &Pair) {
    assert_eq!(pair.map.len(), pair.model.len());
    assert_eq!(
        digest(pair.map.iter().map(|(k, v)| (k, get(v)))),
        digest(pair.model.iter().map(|(k, v)| (*k, *v))),
        "entries differ from the model"
    );
}

/// Checks one map against its model, entry by entry.
fn check_pair(pair: &Pair) {
    pair.map.check_invariants().unwrap_or_else(|e| panic!("invariant broken: {e}"));
    assert_eq!(pair.map.len(), pair.model.len());
    assert_eq!(pair.map.is_empty(), pair.model.is_empty());
    let mut entries: Vec<(u64, u32)> = pair.map.iter().map(|(k, v)| (k, get(v))).collect();
    assert_eq!(entries.len(), pair.map.iter().len());
    entries.sort_unstable();
    let expected: Vec<(u64, u32)> = pair.model.iter().map(|(k, v)| (*k, *v)).collect();
    assert_eq!(entries, expected);
    for (k, v) in &pair.model {
        assert_eq!(pair.map.get(*k).map(get), Some(*v), "key {k:#x}");
    }
}

/// Runs `actions` against the model, panicking on the first difference.
///
/// # Panics
///
/// On any difference between the map and the model, a broken invariant, or a leaked or
/// doubly dropped value.
pub(crate) fn run_hamt(actions: &[HamtAction]) {
    let live_before = LIVE.with(Cell::get);
    {
        let mut pairs = vec![Pair { map: IdMap::new(), model: BTreeMap::new() }];
        for action in actions {
            let touched = step(&mut pairs, action);
            for (index, pair) in pairs.iter().enumerate() {
                if Some(index) == touched {
                    check_pair(pair);
                } else {
                    // Every other map, snapshots included, must still hold what it held.
                    check_summary(pair);
                }
            }
        }
        for pair in &pairs {
            check_pair(pair);
        }
    }
    assert_eq!(LIVE.with(Cell::get), live_before, "values leaked or dropped twice");
}

/// Runs one action; returns the index of the map it changed, if any.
fn step(pairs: &mut Vec<Pair>, action: &HamtAction) -> Option<usize> {
    let len = pairs.len();
    let pick = |map: u8| usize::from(map) % len;
    match *action {
        HamtAction::Insert { map, key: Key(key), value } => {
            let pair = &mut pairs[pick(map)];
            let old = pair.map.insert(key, val(value));
            assert_eq!(old.as_ref().map(get), pair.model.insert(key, value));
            Some(pick(map))
        }
        HamtAction::Remove { map, key: Key(key) } => {
            let pair = &mut pairs[pick(map)];
            let before = pair.map.clone();
            let old = pair.map.remove(key);
            let expected = pair.model.remove(&key);
            assert_eq!(old.as_ref().map(get), expected);
            if expected.is_none() {
                assert!(pair.map.ptr_eq(&before), "a miss changed a shared trie");
            }
            Some(pick(map))
        }
        HamtAction::Get { map, key: Key(key) } => {
            let pair = &pairs[pick(map)];
            assert_eq!(pair.map.get(key).map(get), pair.model.get(&key).copied());
            assert_eq!(pair.map.contains_key(key), pair.model.contains_key(&key));
            None
        }
        HamtAction::Upsert { map, key: Key(key), value } => {
            let pair = &mut pairs[pick(map)];
            let was = pair.map.upsert(
                key,
                value,
                |v, value| {
                    let was = v.0;
                    // In place when no other map holds the value, as a context's `set` does.
                    match Arc::get_mut(v) {
                        Some(counted) => counted.0 = value,
                        None => *v = val(value),
                    }
                    Some(was)
                },
                |value| (val(value), None),
            );
            assert_eq!(was, pair.model.insert(key, value));
            Some(pick(map))
        }
        HamtAction::Share { map } => {
            let pair = &pairs[pick(map)];
            let copy = Pair { map: pair.map.clone(), model: pair.model.clone() };
            assert!(copy.map.ptr_eq(&pair.map));
            check_pair(&copy);
            if len < MAX_MAPS {
                pairs.push(copy);
            } else {
                pairs[pick(map.wrapping_add(1))] = copy;
            }
            Some(pick(map))
        }
        HamtAction::WithoutMarked { map } => {
            let pair = &pairs[pick(map)];
            let model: BTreeMap<u64, u32> = pair
                .model
                .iter()
                .filter(|(key, _)| *key & contextvars::internals::MARK == 0)
                .map(|(k, v)| (*k, *v))
                .collect();
            let copy = Pair { map: pair.map.without_marked(), model };
            check_pair(&copy);
            assert!(copy.map.marked().is_empty());
            if len < MAX_MAPS {
                pairs.push(copy);
            } else {
                pairs[pick(map.wrapping_add(1))] = copy;
            }
            Some(pick(map))
        }
        HamtAction::Fold { map } => {
            let pair = &mut pairs[pick(map)];
            let could = pair.map.can_fold_top();
            let released = pair.map.fold_top();
            if could {
                assert!(!pair.map.can_fold_top(), "folding left something to fold");
            } else {
                assert!(released.is_empty(), "a fold with nothing to do released values");
            }
            drop(released);
            Some(pick(map))
        }
        HamtAction::Drop { map } => {
            if len > 1 {
                pairs.swap_remove(pick(map));
            }
            None
        }
    }
}
