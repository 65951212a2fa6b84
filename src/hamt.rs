//! The persistent map behind every [`Context`](crate::Context).
//!
//! A hash array mapped trie keyed by `u64` ids that are unique by construction (every
//! [`ContextVar`](crate::ContextVar) draws one from a global counter), so the key *is* the
//! hash: no hashing, no collision lists. Five bits of the key choose the slot at each level,
//! lowest bits first, so the sequential ids handed out by the counter fill the root before
//! anything nests: up to 32 live variables are one level deep, 1,024 two, 32,768 three.
//!
//! ```text
//!  Node { bitmap: 0b..1011, slots: [s0, s1, s3] }       bit i set <=> chunk value i present
//!                              |
//!          +-------------------+-------------------+
//!      Leaf(key, value)   Leaf(key, value)    Branch(Ptr)   next 5 bits of the key
//! ```
//!
//! # Owned and shared nodes
//!
//! A node is either `Ptr::Owned` (held inline: this map is its only owner, so it is changed in
//! place with no atomic operation at all) or `Ptr::Shared` (an `Arc`, possibly reachable
//! from other maps, so changing it first copies it into a new owned node). Values follow the
//! same split through [`Freeze`]. [`IdMap::freeze`] turns every owned node and value into a
//! shared one; after that, [`IdMap::share`] is one reference-count increment. The thread's
//! current context stays owned while it is being set and reset, and is frozen only when a
//! snapshot is taken or when it stops being current.
//!
//! # Invariants
//!
//! Kept by every operation and checked by [`IdMap::check_invariants`]:
//! - `slots.len() == bitmap.count_ones()`; slot `i` belongs to the chunk value whose bit is the
//!   `i`-th set bit of `bitmap` (`(bitmap & (bit - 1)).count_ones()`).
//! - A branch below the root never holds a single leaf: such a branch is folded into its
//!   parent, so the shape of the trie depends only on the set of keys, not on the order of
//!   operations. No node is empty; the empty map has no root.
//! - A shared node holds only shared children and frozen values.
//!
//! Nodes displaced by a copy are handed to the caller in a [`Garbage`] list instead of being
//! dropped on the spot: were other owners to let go meanwhile, dropping the last reference
//! would drop user values, whose destructors may use context variables while the caller still
//! holds the thread's context borrowed.

use std::fmt;
use std::sync::Arc;

const BITS: u32 = 5;
const MASK: u64 = (1 << BITS) - 1;

/// Values stored in an [`IdMap`]: owned values must be frozen before their node is shared.
pub trait Freeze {
    /// Makes the value shareable, so that [`clone_frozen`](Self::clone_frozen) works on it.
    fn freeze(&mut self);
    /// `true` when [`freeze`](Self::freeze) has nothing left to do.
    fn is_frozen(&self) -> bool;
    /// A copy of a frozen value (for values of shared nodes, which are always frozen).
    #[must_use]
    fn clone_frozen(&self) -> Self;
}

impl Freeze for u64 {
    fn freeze(&mut self) {}
    fn is_frozen(&self) -> bool {
        true
    }
    fn clone_frozen(&self) -> Self {
        *self
    }
}

/// A persistent map from unique `u64` keys to values.
pub struct IdMap<V> {
    root: Option<Ptr<V>>,
    len: usize,
}

/// A link to a node: owned by this map alone, or shared with other maps.
enum Ptr<V> {
    /// Only this map reaches the node: changed in place.
    Owned(Node<V>),
    /// Other maps may reach the node: copied before a change.
    Shared(Arc<Node<V>>),
}

/// A trie node: a bitmap of the chunk values present and one slot for each.
struct Node<V> {
    bitmap: u32,
    slots: Vec<Slot<V>>,
}

enum Slot<V> {
    Leaf(u64, V),
    Branch(Ptr<V>),
}

/// Nodes displaced by an update, to be dropped once the caller has released its borrows.
pub struct Garbage<V>(Vec<Arc<Node<V>>>);

impl<V> Garbage<V> {
    /// An empty list; does not allocate.
    #[must_use]
    pub const fn new() -> Self {
        Self(Vec::new())
    }

    /// `true` when nothing was displaced.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<V> Default for Garbage<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V> fmt::Debug for Garbage<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Garbage").field("nodes", &self.0.len()).finish()
    }
}

#[inline]
fn chunk(key: u64, shift: u32) -> u32 {
    ((key >> shift) & MASK) as u32
}

impl<V> Node<V> {
    #[inline]
    fn position(&self, bit: u32) -> usize {
        (self.bitmap & (bit - 1)).count_ones() as usize
    }

    /// An owned node holding two leaves whose keys agree on every chunk below `shift`.
    fn pair(shift: u32, a: (u64, V), b: (u64, V)) -> Self {
        debug_assert_ne!(a.0, b.0, "keys are unique");
        let (ca, cb) = (chunk(a.0, shift), chunk(b.0, shift));
        if ca == cb {
            let child = Self::pair(shift + BITS, a, b);
            Self { bitmap: 1 << ca, slots: vec![Slot::Branch(Ptr::Owned(child))] }
        } else {
            let (first, second) = if ca < cb { (a, b) } else { (b, a) };
            Self {
                bitmap: (1 << ca) | (1 << cb),
                slots: vec![Slot::Leaf(first.0, first.1), Slot::Leaf(second.0, second.1)],
            }
        }
    }
}

impl<V: Freeze> Node<V> {
    /// A copy of this node whose owned children are copied too. Every value must be frozen
    /// (always true of shared nodes).
    fn copy(&self) -> Self {
        // Room for one more slot: a copy is usually made to insert into.
        let mut slots = Vec::with_capacity(self.slots.len() + 1);
        slots.extend(self.slots.iter().map(|slot| match slot {
            Slot::Leaf(k, v) => Slot::Leaf(*k, v.clone_frozen()),
            Slot::Branch(child) => Slot::Branch(child.share()),
        }));
        Self { bitmap: self.bitmap, slots }
    }

    /// Freezes every owned value and child of this node.
    fn freeze_slots(&mut self) {
        for slot in &mut self.slots {
            match slot {
                Slot::Leaf(_, v) => v.freeze(),
                Slot::Branch(child) => child.freeze(),
            }
        }
    }
}

impl<V> std::ops::Deref for Ptr<V> {
    type Target = Node<V>;

    #[inline]
    fn deref(&self) -> &Node<V> {
        match self {
            Ptr::Owned(node) => node,
            Ptr::Shared(node) => node,
        }
    }
}

impl<V: Freeze> Ptr<V> {
    /// `&mut` access to the node, copying it into an owned node first when it is shared. The
    /// shared reference it replaces goes to `garbage`.
    #[inline]
    fn make_mut(&mut self, garbage: &mut Garbage<V>) -> &mut Node<V> {
        if let Ptr::Shared(shared) = self {
            let copy = Ptr::Owned(shared.copy());
            if let Ptr::Shared(old) = std::mem::replace(self, copy) {
                garbage.0.push(old);
            }
        }
        match self {
            Ptr::Owned(node) => node,
            Ptr::Shared(_) => unreachable!("copied into an owned node above"),
        }
    }

    /// Turns this link, and everything below it, into shared links and frozen values.
    fn freeze(&mut self) {
        if let Ptr::Owned(node) = self {
            node.freeze_slots();
            let slots = std::mem::take(&mut node.slots);
            *self = Ptr::Shared(Arc::new(Node { bitmap: node.bitmap, slots }));
        }
    }

    /// Another link to the same node. Shared links cost one increment; owned ones (reachable
    /// only through [`IdMap::share`] on a map that was not frozen) are copied.
    fn share(&self) -> Self {
        match self {
            Ptr::Shared(node) => Ptr::Shared(Arc::clone(node)),
            Ptr::Owned(node) => {
                let mut copy = Ptr::Owned(node.copy());
                copy.freeze();
                copy
            }
        }
    }
}

impl<V> IdMap<V> {
    /// The empty map.
    #[must_use]
    pub const fn new() -> Self {
        Self { root: None, len: 0 }
    }

    /// Number of entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// `true` when the map holds no entry.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `true` when both maps are the same shared trie (one shared from the other, unchanged).
    #[must_use]
    pub fn ptr_eq(&self, other: &Self) -> bool {
        match (&self.root, &other.root) {
            (Some(Ptr::Shared(a)), Some(Ptr::Shared(b))) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }

    /// The value stored under `key`.
    #[inline]
    #[must_use]
    pub fn get(&self, key: u64) -> Option<&V> {
        let mut node: &Node<V> = self.root.as_ref()?;
        let mut shift = 0;
        loop {
            let bit = 1 << chunk(key, shift);
            if node.bitmap & bit == 0 {
                return None;
            }
            match &node.slots[node.position(bit)] {
                Slot::Leaf(k, v) => return (*k == key).then_some(v),
                Slot::Branch(child) => node = child,
            }
            shift += BITS;
        }
    }

    /// `true` when `key` is present.
    #[must_use]
    pub fn contains_key(&self, key: u64) -> bool {
        self.get(key).is_some()
    }

    /// Iterates over the entries in key-chunk order (not insertion order).
    #[must_use]
    pub fn iter(&self) -> Iter<'_, V> {
        let mut stack = Vec::new();
        if let Some(root) = &self.root {
            stack.push(root.slots.iter());
        }
        Iter { stack, remaining: self.len }
    }
}

impl<V: Freeze> IdMap<V> {
    /// Another map holding the same entries, sharing the trie: O(1) once the map is frozen
    /// ([`freeze`](Self::freeze)); otherwise the owned part is copied.
    ///
    /// Owned values must be frozen first: [`Freeze::clone_frozen`] is called on them.
    #[must_use]
    pub fn share(&self) -> Self {
        Self { root: self.root.as_ref().map(Ptr::share), len: self.len }
    }

    /// Makes every node shared and every value frozen, so [`share`](Self::share) is O(1).
    /// Costs nothing when the map is already frozen.
    #[inline]
    pub fn freeze(&mut self) {
        if let Some(root @ Ptr::Owned(_)) = &mut self.root {
            root.freeze();
        }
    }

    /// `true` when [`share`](Self::share) is O(1).
    #[must_use]
    pub fn is_frozen(&self) -> bool {
        !matches!(self.root, Some(Ptr::Owned(_)))
    }

    /// `&mut` access to the value under `key`, copying the path to it when it is shared.
    #[inline]
    pub fn get_mut(&mut self, key: u64, garbage: &mut Garbage<V>) -> Option<&mut V> {
        // Walk read-only first: a miss must not copy anything.
        self.get(key)?;
        let mut node = self.root.as_mut()?.make_mut(garbage);
        let mut shift = 0;
        loop {
            let pos = node.position(1 << chunk(key, shift));
            match &mut node.slots[pos] {
                Slot::Leaf(_, v) => return Some(v),
                Slot::Branch(child) => node = child.make_mut(garbage),
            }
            shift += BITS;
        }
    }

    /// Inserts `value` under `key` and returns the value it replaced.
    pub fn insert(&mut self, key: u64, value: V, garbage: &mut Garbage<V>) -> Option<V> {
        let Some(root) = self.root.as_mut() else {
            let node = Node { bitmap: 1 << chunk(key, 0), slots: vec![Slot::Leaf(key, value)] };
            self.root = Some(Ptr::Owned(node));
            self.len = 1;
            return None;
        };
        let mut node = root.make_mut(garbage);
        let mut shift = 0;
        loop {
            let bit = 1 << chunk(key, shift);
            let pos = node.position(bit);
            if node.bitmap & bit == 0 {
                node.bitmap |= bit;
                node.slots.insert(pos, Slot::Leaf(key, value));
                self.len += 1;
                return None;
            }
            if matches!(node.slots[pos], Slot::Leaf(k, _) if k != key) {
                // Another key owns this chunk: push both one level down.
                let Slot::Leaf(old_key, old_value) = node.slots.remove(pos) else {
                    unreachable!("matched a leaf")
                };
                let pair = Node::pair(shift + BITS, (old_key, old_value), (key, value));
                node.slots.insert(pos, Slot::Branch(Ptr::Owned(pair)));
                self.len += 1;
                return None;
            }
            match &mut node.slots[pos] {
                Slot::Leaf(_, v) => return Some(std::mem::replace(v, value)),
                Slot::Branch(child) => node = child.make_mut(garbage),
            }
            shift += BITS;
        }
    }

    /// Removes `key` and returns its value.
    pub fn remove(&mut self, key: u64, garbage: &mut Garbage<V>) -> Option<V> {
        // A miss must leave the map (and its sharing) untouched.
        self.get(key)?;
        let root = self.root.as_mut()?.make_mut(garbage);
        let removed = remove_in(root, key, 0, garbage);
        if root.slots.is_empty() {
            self.root = None;
        }
        self.len -= 1;
        Some(removed)
    }
}

/// Removes `key` (known to be present) below `node`, folding branches left with one leaf.
fn remove_in<V: Freeze>(node: &mut Node<V>, key: u64, shift: u32, garbage: &mut Garbage<V>) -> V {
    let bit = 1 << chunk(key, shift);
    let pos = node.position(bit);
    let Slot::Branch(child) = &mut node.slots[pos] else {
        node.bitmap &= !bit;
        let Slot::Leaf(_, v) = node.slots.remove(pos) else { unreachable!("matched a leaf") };
        return v;
    };
    let child_node = child.make_mut(garbage);
    let removed = remove_in(child_node, key, shift + BITS, garbage);
    if child_node.slots.len() == 1 && matches!(child_node.slots[0], Slot::Leaf(..)) {
        // Fold the lone leaf into this level; the emptied child is owned, so dropping it
        // drops nothing but its empty slot vector.
        if let Some(leaf) = child_node.slots.pop() {
            node.slots[pos] = leaf;
        }
    }
    removed
}

/// Iterator over the entries of an [`IdMap`].
pub struct Iter<'a, V> {
    stack: Vec<std::slice::Iter<'a, Slot<V>>>,
    remaining: usize,
}

impl<'a, V> Iterator for Iter<'a, V> {
    type Item = (u64, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let top = self.stack.last_mut()?;
            match top.next() {
                None => {
                    self.stack.pop();
                }
                Some(Slot::Leaf(k, v)) => {
                    self.remaining -= 1;
                    return Some((*k, v));
                }
                Some(Slot::Branch(child)) => self.stack.push(child.slots.iter()),
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<V> ExactSizeIterator for Iter<'_, V> {}
impl<V> std::iter::FusedIterator for Iter<'_, V> {}

impl<V> fmt::Debug for Iter<'_, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter").field("remaining", &self.remaining).finish_non_exhaustive()
    }
}

impl<'a, V> IntoIterator for &'a IdMap<V> {
    type Item = (u64, &'a V);
    type IntoIter = Iter<'a, V>;

    fn into_iter(self) -> Iter<'a, V> {
        self.iter()
    }
}

impl<V: fmt::Debug> fmt::Debug for IdMap<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<V> Default for IdMap<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V: Freeze> IdMap<V> {
    /// Checks the structural invariants listed in the module docs; for tests and fuzzing.
    ///
    /// # Errors
    ///
    /// Describes the first broken invariant.
    pub fn check_invariants(&self) -> Result<(), String> {
        let count = match &self.root {
            None => 0,
            Some(root) => check_node(root, 0, 0, true)?,
        };
        if count == self.len {
            Ok(())
        } else {
            Err(format!("len is {} but the trie holds {count}", self.len))
        }
    }
}

/// Checks the node behind `ptr` (whose keys all end in `prefix` below `shift`) and counts its
/// leaves.
fn check_node<V: Freeze>(ptr: &Ptr<V>, shift: u32, prefix: u64, is_root: bool) -> Result<usize, String> {
    let shared = matches!(ptr, Ptr::Shared(_));
    let node: &Node<V> = ptr;
    if node.slots.len() != node.bitmap.count_ones() as usize {
        return Err(format!("bitmap {:#b} has {} slots", node.bitmap, node.slots.len()));
    }
    if node.slots.is_empty() {
        return Err("empty node".into());
    }
    if !is_root && node.slots.len() == 1 && matches!(node.slots[0], Slot::Leaf(..)) {
        return Err("inner node holding a single leaf".into());
    }
    let low = if shift + BITS >= 64 { u64::MAX } else { (1u64 << (shift + BITS)) - 1 };
    let mut count = 0;
    let mut bits = node.bitmap;
    for slot in &node.slots {
        let c = u64::from(bits.trailing_zeros());
        bits &= bits - 1;
        match slot {
            Slot::Leaf(k, v) => {
                if k & low != prefix | (c << shift) {
                    return Err(format!("key {k} in the wrong slot"));
                }
                if shared && !v.is_frozen() {
                    return Err(format!("shared node holds the unfrozen value of key {k}"));
                }
                count += 1;
            }
            Slot::Branch(child) => {
                if shared && matches!(child, Ptr::Owned(_)) {
                    return Err("shared node holds an owned child".into());
                }
                count += check_node(child, shift + BITS, prefix | (c << shift), false)?;
            }
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map_of(keys: &[u64]) -> IdMap<u64> {
        let mut m = IdMap::new();
        let mut g = Garbage::new();
        for &k in keys {
            m.insert(k, k.wrapping_mul(10), &mut g);
        }
        m
    }

    #[test]
    fn colliding_low_chunks_nest_and_fold_back() {
        // 1, 33 and 1 + 32*32 share their low chunk: they nest two levels deep.
        let keys = [1, 33, 1 + 1024, 2];
        let mut m = map_of(&keys);
        m.check_invariants().unwrap();
        for k in keys {
            assert_eq!(m.get(k), Some(&(k * 10)));
        }
        assert_eq!(m.get(65), None);
        let mut g = Garbage::new();
        assert_eq!(m.remove(33, &mut g), Some(330));
        m.check_invariants().unwrap();
        assert_eq!(m.remove(1025, &mut g), Some(10250));
        m.check_invariants().unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m.get(1), Some(&10));
    }

    #[test]
    fn keys_differing_only_in_the_top_bits() {
        let keys = [u64::MAX, u64::MAX >> 1, 1 << 63, 0];
        let m = map_of(&keys);
        m.check_invariants().unwrap();
        for k in keys {
            assert_eq!(m.get(k), Some(&k.wrapping_mul(10)));
        }
    }

    #[test]
    fn updates_do_not_touch_shared_copies() {
        let mut a = map_of(&(1..100).collect::<Vec<_>>());
        a.freeze();
        let b = a.share();
        assert!(a.ptr_eq(&b));
        let mut g = Garbage::new();
        a.insert(5, 0, &mut g);
        a.remove(6, &mut g);
        *a.get_mut(7, &mut g).unwrap() = 1;
        assert!(!a.ptr_eq(&b));
        assert_eq!(b.get(5), Some(&50));
        assert_eq!(b.get(6), Some(&60));
        assert_eq!(b.get(7), Some(&70));
        assert_eq!((a.get(5), a.get(6), a.get(7)), (Some(&0), None, Some(&1)));
        a.check_invariants().unwrap();
        b.check_invariants().unwrap();
        assert!(!g.0.is_empty(), "the shared nodes that were copied went to the garbage");
    }

    #[test]
    fn sharing_an_unfrozen_map_copies_it() {
        let a = map_of(&[1, 2, 33]);
        assert!(!a.is_frozen());
        let b = a.share();
        assert!(b.is_frozen());
        b.check_invariants().unwrap();
        assert_eq!(b.iter().count(), 3);
    }

    #[test]
    fn misses_keep_sharing() {
        let mut a = map_of(&[1, 2, 3]);
        a.freeze();
        let b = a.share();
        let mut g = Garbage::new();
        assert_eq!(a.remove(4, &mut g), None);
        assert_eq!(a.get_mut(4, &mut g), None);
        assert!(a.ptr_eq(&b));
        assert!(g.0.is_empty());
    }

    #[test]
    fn removing_everything_leaves_no_root() {
        let mut m = map_of(&[3, 35, 67]);
        let mut g = Garbage::new();
        for k in [35, 3, 67] {
            m.remove(k, &mut g);
            m.check_invariants().unwrap();
        }
        assert!(m.is_empty());
        assert!(m.root.is_none());
        assert_eq!(m.iter().count(), 0);
    }

    #[test]
    fn iter_yields_every_entry_once() {
        let keys: Vec<u64> = (0..2000).map(|i| i * 37 + 1).collect();
        let m = map_of(&keys);
        let mut seen: Vec<u64> = m
            .iter()
            .map(|(k, v)| {
                assert_eq!(*v, k * 10);
                k
            })
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, keys);
        assert_eq!(m.iter().len(), keys.len());
    }
}
