//! The persistent map behind every [`Context`](crate::Context).
//!
//! A map is a small *layer* over a hash array mapped trie. The trie is keyed by `u64` ids
//! that are unique by construction (every [`ContextVar`](crate::ContextVar) draws one from a
//! global counter), so the key *is* the hash: no hashing, no collision lists. Five bits of
//! the key choose the slot at each level, lowest bits first, so the sequential ids handed out
//! by the counter fill the trie's root before anything nests: up to 32 live variables are one
//! level deep, 1,024 two, 32,768 three.
//!
//! ```text
//!  Layer { len, top: [(key, Some(value)), (key, None)], base }    changes made while base was shared
//!                                                         |
//!  Node { index: [0, 1, 3, 0, 2, 0, ..], slots: [a, b, c] }   index[chunk] = 1 + position
//!                              |
//!          +-------------------+-------------------+
//!      Leaf(key, value)   Leaf(key, value)    Branch(node)   next 5 bits of the key
//! ```
//!
//! Layers and nodes are reference-counted (`Shared`): a change copies what is shared on its
//! way and changes in place what this map alone holds, so a copy of the map is one increment.
//! The layer is what makes the first changes after a copy cheap. While the trie below it is
//! shared, a change goes into the layer's `top`, a few entries that shadow the trie (`None`
//! marks a removed key): the copy then costs one small allocation and no count changes on
//! the values the trie holds. The trie itself is changed only while this map alone holds it,
//! in place, or when `top` is full, by copying the path to the key. A value shadowed in `top`
//! stays alive in the trie until the trie is released or changed.
//!
//! A node finds a chunk's slot through a 32-byte index, one load, rather than a bitmap and a
//! population count (which the default x86-64 target computes in software). Slots are kept
//! dense in any order; removing one moves the last slot into its place.
//!
//! A layer also carries a *stamp* for the thread read caches of `raw/slot.rs`: a number
//! naming its content, drawn by the first cached read, cleared by every change except the
//! in-place replacement of an unshared value, and not carried over to a copy of the layer.
//!
//! Values are cloned only when the layer or a node holding them is copied (for a context's
//! values that is a reference-count increment). Nothing here drops a displaced value: it is
//! returned to the caller, who drops it once it holds no borrow (a value's destructor may use
//! context variables).
//!
//! # Invariants
//!
//! Kept by every operation and checked by [`IdMap::check_invariants`]:
//! - `top` holds each key at most once; a `None` there shadows a key the trie holds. The
//!   trie changes only under keys `top` does not hold.
//! - `len` is the number of keys with a value: those `top` holds with `Some`, and those the
//!   trie holds that `top` does not.
//! - `index[c] == i + 1` exactly when slot `i` of a node holds the entries whose chunk at this
//!   level is `c`; every other index byte is 0; `slots` holds no gaps.
//! - A branch holds at least two leaves: one that would hold a single leaf is folded into its
//!   parent, so the trie's shape depends only on its keys. An empty trie has no root node, and
//!   an empty map no layer, unless its trie still holds values that `top` removed.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::raw::Shared;

const BITS: u32 = 5;
const MASK: u64 = (1 << BITS) - 1;
/// Slots per node.
const WIDTH: usize = 1 << BITS;
/// Entries a layer keeps on top of a shared trie; when they are used up, a change copies the
/// trie's path instead.
const TOP: usize = 4;

/// Keys with this bit are *marked*: a map lists the marked keys it holds
/// ([`IdMap::marked`]), so that a copy without them costs their number, not the map's size.
/// The keys of variables that are not inherited carry it.
pub const MARK: u64 = 1 << 61;

/// A persistent map from unique `u64` keys to values.
pub struct IdMap<V> {
    root: Option<Shared<Layer<V>>>,
}

/// A map's entry point: its length, and its changes on top of a trie that was shared.
pub(crate) struct Layer<V> {
    /// 0, or a number naming this layer's content for the thread read caches (`raw/slot.rs`):
    /// set by the first cached read, cleared by every change but the in-place replacement of
    /// a value. A copy starts without one.
    stamp: AtomicU64,
    len: usize,
    /// Bit `key % 64` of every key ever added (never cleared): a key whose bit is clear is
    /// not held, which spares a search for it ([`IdMap::may_hold`]). A hint only: nothing's
    /// correctness rests on it, and a set bit says nothing.
    seen: u64,
    /// How many entries of `top` are in use (the first ones); the others hold `(0, None)`.
    top_len: usize,
    /// Keys changed while the trie was shared: their value, or `None` when removed.
    top: [(u64, Option<V>); TOP],
    base: Option<Shared<Node<V>>>,
    /// The marked keys held (see [`MARK`]); empty, with no allocation, for most maps.
    marked: Vec<u64>,
}

/// A trie node: the slot of each chunk value present.
pub(crate) struct Node<V> {
    index: [u8; WIDTH],
    slots: Vec<Slot<V>>,
}

#[derive(Clone)]
enum Slot<V> {
    Leaf(u64, V),
    Branch(Shared<Node<V>>),
}

impl<V: Clone> Clone for Layer<V> {
    /// A copy without a stamp; the original loses its stamp too: the nodes and values below
    /// it now have another holder, which the read cache's writable entries must learn (see
    /// `raw/cache.rs`).
    fn clone(&self) -> Self {
        self.stamp.store(0, Ordering::Relaxed);
        Self {
            stamp: AtomicU64::new(0),
            len: self.len,
            seen: self.seen,
            top_len: self.top_len,
            top: self.top.clone(),
            base: self.base.clone(),
            marked: self.marked.clone(),
        }
    }
}

impl<V: Clone> Clone for Node<V> {
    fn clone(&self) -> Self {
        // Room for a few more slots: a copy is made to change, often to insert, and a
        // reallocation costs more.
        let mut slots = Vec::with_capacity((self.slots.len() + 4).min(WIDTH));
        slots.extend(self.slots.iter().cloned());
        Self { index: self.index, slots }
    }
}

impl<V> Layer<V> {
    fn new() -> Self {
        Self {
            stamp: AtomicU64::new(0),
            len: 0,
            seen: 0,
            top_len: 0,
            top: std::array::from_fn(|_| (0, None)),
            base: None,
            marked: Vec::new(),
        }
    }

    /// The entries of `top` in use.
    #[inline]
    fn top(&self) -> &[(u64, Option<V>)] {
        &self.top[..self.top_len]
    }

    /// Where `top` holds `key`.
    #[inline]
    fn find(&self, key: u64) -> Option<usize> {
        self.top().iter().position(|(k, _)| *k == key)
    }

    /// The value under `key`: `top` first, then the trie.
    #[inline]
    fn get(&self, key: u64) -> Option<&V> {
        match self.find(key) {
            Some(i) => self.top[i].1.as_ref(),
            None => self.base_get(key),
        }
    }

    /// The trie's value under `key`, shadowed or not.
    fn base_get(&self, key: u64) -> Option<&V> {
        get_in_trie(self.base.as_ref()?, key)
    }

    /// `true` when `top` holds changes and the trie is not shared (by this layer's map alone,
    /// when the layer is not shared either): folding `top` into the trie would then release
    /// the values it shadows.
    #[inline]
    fn top_can_fold(&self) -> bool {
        self.top_len != 0 && self.base.as_ref().is_some_and(Shared::is_unique)
    }

    /// `true` when a change to a key `top` does not hold goes into the trie: this map alone
    /// holds the trie (or there is none yet), or `top` is full.
    #[inline]
    fn writes_trie(&self) -> bool {
        self.top_len == TOP || self.base.as_ref().is_none_or(Shared::is_unique)
    }

    /// Counts a key the map did not hold.
    #[inline]
    fn added(&mut self, key: u64) {
        self.len += 1;
        self.seen |= seen_bit(key);
        if key & MARK != 0 {
            self.marked.push(key);
        }
    }

    /// Adds an entry to `top`, which has room.
    fn push_top(&mut self, key: u64, value: Option<V>) -> &mut Option<V> {
        crate::stats::count(crate::stats::Event::WroteOnTop);
        let i = self.top_len;
        self.top[i] = (key, value);
        self.top_len += 1;
        &mut self.top[i].1
    }
}

#[inline]
fn chunk(key: u64, shift: u32) -> usize {
    ((key >> shift) & MASK) as usize
}

impl<V> Node<V> {
    /// A node holding one leaf.
    fn leaf(key: u64, value: V) -> Self {
        let mut node = Self { index: [0; WIDTH], slots: Vec::with_capacity(4) };
        push(&mut node.index, &mut node.slots, chunk(key, 0), Slot::Leaf(key, value));
        node
    }

    /// A node below the root holding two leaves whose keys agree on every chunk below `shift`.
    fn pair(shift: u32, a: (u64, V), b: (u64, V)) -> Self {
        debug_assert_ne!(a.0, b.0, "keys are unique");
        let mut node = Self { index: [0; WIDTH], slots: Vec::with_capacity(2) };
        let (ca, cb) = (chunk(a.0, shift), chunk(b.0, shift));
        if ca == cb {
            push(
                &mut node.index,
                &mut node.slots,
                ca,
                Slot::Branch(Shared::new(Self::pair(shift + BITS, a, b))),
            );
        } else {
            push(&mut node.index, &mut node.slots, ca, Slot::Leaf(a.0, a.1));
            push(&mut node.index, &mut node.slots, cb, Slot::Leaf(b.0, b.1));
        }
        node
    }
}

/// Adds `slot` as the slot of `chunk`.
#[inline]
fn push<V>(index: &mut [u8; WIDTH], slots: &mut Vec<Slot<V>>, chunk: usize, slot: Slot<V>) {
    slots.push(slot);
    index[chunk] = slots.len() as u8;
}

/// Takes out the slot of `chunk` in a node at `shift`, moving the last slot into its place.
fn take<V>(index: &mut [u8; WIDTH], slots: &mut Vec<Slot<V>>, chunk: usize, shift: u32) -> Slot<V> {
    let position = usize::from(index[chunk]) - 1;
    index[chunk] = 0;
    let taken = slots.swap_remove(position);
    if let Some(moved) = slots.get(position) {
        index[self::chunk(any_key(moved), shift)] = position as u8 + 1;
    }
    taken
}

/// A key stored in or below `slot`: every key there has the slot's chunk.
fn any_key<V>(mut slot: &Slot<V>) -> u64 {
    loop {
        match slot {
            Slot::Leaf(key, _) => return *key,
            Slot::Branch(child) => slot = &child.get().slots[0],
        }
    }
}

impl<V> IdMap<V> {
    /// The empty map.
    #[must_use]
    pub const fn new() -> Self {
        Self { root: None }
    }

    /// Number of entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.root.as_ref().map_or(0, |root| root.get().len)
    }

    /// `true` when the map holds no entry.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `true` when both maps are the same layer (one cloned from the other, both unchanged).
    #[must_use]
    pub fn ptr_eq(&self, other: &Self) -> bool {
        match (&self.root, &other.root) {
            (Some(a), Some(b)) => a.ptr_eq(b),
            (None, None) => true,
            _ => false,
        }
    }

    /// The value stored under `key`.
    #[inline]
    #[must_use]
    pub fn get(&self, key: u64) -> Option<&V> {
        let found = get_in(self.root.as_ref()?, key);
        debug_assert!(found.is_none() || self.may_hold(key), "a held key whose `seen` bit is clear");
        found
    }

    /// The marked keys held (see [`MARK`]), in no particular order.
    #[inline]
    #[must_use]
    pub fn marked(&self) -> &[u64] {
        self.root.as_ref().map_or(&[], |root| &root.get().marked)
    }

    /// `true` when `key` is present.
    #[must_use]
    pub fn contains_key(&self, key: u64) -> bool {
        self.may_hold(key) && self.get(key).is_some()
    }

    /// Iterates over the entries, in no particular order.
    #[must_use]
    pub fn iter(&self) -> Iter<'_, V> {
        let Some(root) = &self.root else {
            return Iter { top: &[], next_top: 0, stack: Vec::new(), remaining: 0 };
        };
        let layer = root.get();
        let stack = layer.base.iter().map(|node| node.get().slots.iter()).collect();
        Iter { top: layer.top(), next_top: 0, stack, remaining: layer.len }
    }

    /// The map's layer; `None` for the empty map.
    #[inline]
    pub(crate) fn root(&self) -> Option<&Shared<Layer<V>>> {
        self.root.as_ref()
    }

    /// The map's layer, mutably.
    #[inline]
    pub(crate) fn root_mut(&mut self) -> &mut Option<Shared<Layer<V>>> {
        &mut self.root
    }
}

/// The layer `root`, to change: copied first if it is shared, and without a stamp (its content
/// is about to change).
#[inline]
fn edit<V: Clone>(root: &mut Shared<Layer<V>>) -> &mut Layer<V> {
    let layer = root.make_mut();
    *layer.stamp.get_mut() = 0;
    layer
}

/// The stamp of the map whose layer is `root` (see `raw/cache.rs`); 0 for none.
#[inline]
pub(crate) fn stamp_of<V>(root: &Shared<Layer<V>>) -> u64 {
    root.get().stamp.load(Ordering::Relaxed)
}

/// The stamp of the map whose layer is `root`, drawn now if it has none. The layer may be
/// shared: its content does not change while it is, so whichever thread stamps it names the
/// same content.
pub(crate) fn name_content<V>(root: &Shared<Layer<V>>) -> u64 {
    let stamp = &root.get().stamp;
    match stamp.load(Ordering::Relaxed) {
        0 => {
            let fresh = crate::ids::unique();
            stamp.store(fresh, Ordering::Relaxed);
            fresh
        }
        named => named,
    }
}

/// The value under `key` in the map whose layer is `root`: what a read of the current context
/// calls.
#[inline]
pub(crate) fn get_in<V>(root: &Shared<Layer<V>>, key: u64) -> Option<&V> {
    root.get().get(key)
}

/// The value under `key` in the map whose layer is `root`, and whether it is held there
/// alone: `true` when it sits in the layer's `top`, or in the trie on a path of nodes that
/// each have one holder. What the read cache records (`raw/cache.rs`).
pub(crate) fn find<V>(root: &Shared<Layer<V>>, key: u64) -> Option<(&V, bool)> {
    let layer = root.get();
    if let Some(i) = layer.find(key) {
        return layer.top[i].1.as_ref().map(|value| (value, true));
    }
    let mut node = layer.base.as_ref()?;
    let mut alone = node.is_unique();
    let mut shift = 0;
    loop {
        let position = node.get().index[chunk(key, shift)];
        if position == 0 {
            return None;
        }
        match &node.get().slots[usize::from(position) - 1] {
            Slot::Leaf(k, v) => return (*k == key).then_some((v, alone)),
            Slot::Branch(child) => {
                alone &= child.is_unique();
                node = child;
            }
        }
        shift += BITS;
    }
}

/// The value under `key` in the trie below `node`.
#[inline]
fn get_in_trie<V>(node: &Shared<Node<V>>, key: u64) -> Option<&V> {
    let mut node = node.get();
    let mut shift = 0;
    loop {
        let position = node.index[chunk(key, shift)];
        if position == 0 {
            return None;
        }
        match &node.slots[usize::from(position) - 1] {
            Slot::Leaf(k, v) => return (*k == key).then_some(v),
            Slot::Branch(child) => node = child.get(),
        }
        shift += BITS;
    }
}

/// The value under `key` in the map whose layer is `root`, mutably, when the layer and every
/// node on the way are unique: found in place, with nothing copied and nothing else touched.
/// `None` otherwise.
#[inline]
pub(crate) fn get_mut_in_place<V>(root: &mut Shared<Layer<V>>, key: u64) -> Option<&mut V> {
    let layer = root.get_mut()?;
    if layer.top_len != 0 {
        return top_get_mut_in_place(layer, key);
    }
    trie_get_mut_in_place(layer.base.as_mut()?, key)
}

/// [`get_mut_in_place`] on a layer with changes on top.
#[inline]
fn top_get_mut_in_place<V>(layer: &mut Layer<V>, key: u64) -> Option<&mut V> {
    if layer.top_can_fold() {
        return None; // `fold_top` can release shadowed values: the change goes the long way
    }
    match layer.find(key) {
        Some(i) => layer.top[i].1.as_mut(),
        None => trie_get_mut_in_place(layer.base.as_mut()?, key),
    }
}

/// The value under `key` in the trie below `node`, mutably, when every node on its path is
/// unique.
#[inline]
fn trie_get_mut_in_place<V>(node: &mut Shared<Node<V>>, key: u64) -> Option<&mut V> {
    let mut node = node.get_mut()?;
    let mut shift = 0;
    loop {
        let position = usize::from(node.index[chunk(key, shift)]);
        if position == 0 {
            return None;
        }
        match &mut node.slots[position - 1] {
            Slot::Leaf(k, v) => return (*k == key).then_some(v),
            Slot::Branch(child) => node = child.get_mut()?,
        }
        shift += BITS;
    }
}

/// The bit of `key` in `Layer::seen`.
#[inline]
fn seen_bit(key: u64) -> u64 {
    1 << (key % 64)
}

impl<V> IdMap<V> {
    /// `false` when the map surely does not hold `key`; `true` when it may. One load, no walk.
    #[inline]
    pub(crate) fn may_hold(&self, key: u64) -> bool {
        self.root.as_ref().is_some_and(|root| root.get().seen & seen_bit(key) != 0)
    }
}

impl<V: Clone> IdMap<V> {
    /// Stores `value` under `key`, returning the value it replaces.
    pub fn insert(&mut self, key: u64, value: V) -> Option<V> {
        self.upsert(key, value, |slot, value| Some(std::mem::replace(slot, value)), |value| (value, None))
    }

    /// Finds `key` and calls `occupied` with its value, or stores the value `vacant` makes;
    /// `arg` goes to whichever runs. Copies what is shared on the way.
    #[inline]
    pub fn upsert<A, R>(
        &mut self,
        key: u64,
        arg: A,
        occupied: impl FnOnce(&mut V, A) -> R,
        vacant: impl FnOnce(A) -> (V, R),
    ) -> R {
        let layer = edit(self.root.get_or_insert_with(|| Shared::new(Layer::new())));
        if let Some(i) = layer.find(key) {
            let entry = &mut layer.top[i].1;
            if let Some(value) = entry {
                return occupied(value, arg);
            }
            let (value, result) = vacant(arg);
            *entry = Some(value);
            layer.added(key);
            return result;
        }
        if layer.writes_trie() {
            let (result, added) = upsert_in_trie(&mut layer.base, key, arg, occupied, vacant);
            if added {
                layer.added(key);
            }
            return result;
        }
        // The trie is shared: the change goes on top.
        let (value, result, added) = if let Some(mut value) = layer.base_get(key).cloned() {
            let result = occupied(&mut value, arg);
            (value, result, false)
        } else {
            let (value, result) = vacant(arg);
            (value, result, true)
        };
        layer.push_top(key, Some(value));
        if added {
            layer.added(key);
        }
        result
    }

    /// Removes `key`, returning its value. A miss copies nothing.
    pub fn remove(&mut self, key: u64) -> Option<V> {
        if !self.contains_key(key) {
            return None;
        }
        let layer = edit(self.root.as_mut()?);
        let value = if let Some(i) = layer.find(key) {
            if layer.base_get(key).is_some() {
                layer.top[i].1.take() // still shadows the trie's value
            } else {
                layer.top_len -= 1;
                layer.top.swap(i, layer.top_len);
                std::mem::take(&mut layer.top[layer.top_len]).1
            }
        } else if layer.writes_trie() {
            remove_in_trie(&mut layer.base, key)
        } else {
            let value = layer.base_get(key).cloned();
            layer.push_top(key, None);
            value
        };
        layer.len -= 1;
        if key & MARK != 0 {
            layer.marked.retain(|&marked| marked != key);
        }
        self.drop_empty_layer();
        value
    }

    /// A copy without the marked keys (see [`MARK`]): one increment when there are none, else
    /// a copy of one path per marked key.
    #[must_use]
    pub fn without_marked(&self) -> Self {
        let mut copy = self.clone();
        for &key in self.marked() {
            copy.remove(key);
        }
        copy
    }
}

impl<V> IdMap<V> {
    /// Drops the layer of a map left with no entry and no trie: it holds no value then
    /// (`top` can only remove what the trie holds), and the empty map has no layer.
    fn drop_empty_layer(&mut self) {
        if self.root.as_ref().is_some_and(|root| root.get().len == 0 && root.get().base.is_none()) {
            self.root = None;
        }
    }

    /// `true` when [`fold_top`](Self::fold_top) has something to do: this map alone holds
    /// its layer and its trie, and the layer keeps changes on top.
    #[inline]
    #[must_use]
    pub fn can_fold_top(&self) -> bool {
        self.root.as_ref().is_some_and(|root| root.is_unique() && root.get().top_can_fold())
    }
}

impl<V: Clone> IdMap<V> {
    /// Moves the changes kept on top into the trie when this map alone holds its layer and
    /// its trie, so that the values they shadowed are released: returns those, for the caller
    /// to drop. Changes nothing otherwise (and allocates nothing).
    #[inline]
    pub fn fold_top(&mut self) -> Vec<V> {
        if self.can_fold_top() { self.fold_top_now() } else { Vec::new() }
    }

    /// [`fold_top`](Self::fold_top) once [`can_fold_top`](Self::can_fold_top) said yes.
    #[cold]
    #[inline(never)]
    fn fold_top_now(&mut self) -> Vec<V> {
        let Some(layer) = self.root.as_mut().map(edit) else { return Vec::new() };
        let mut released = Vec::with_capacity(layer.top_len);
        for i in 0..std::mem::take(&mut layer.top_len) {
            let (key, value) = std::mem::take(&mut layer.top[i]);
            let old = match value {
                Some(value) => {
                    let replace = |slot: &mut V, value| Some(std::mem::replace(slot, value));
                    upsert_in_trie(&mut layer.base, key, value, replace, |value| (value, None)).0
                }
                None => remove_in_trie(&mut layer.base, key),
            };
            released.extend(old);
        }
        self.drop_empty_layer();
        if !released.is_empty() {
            crate::stats::count(crate::stats::Event::FoldedTop);
        }
        released
    }
}

/// [`IdMap::upsert`] in the trie below `root`, copying the path to `key` where it is shared;
/// also says whether an entry was added.
#[inline]
fn upsert_in_trie<V: Clone, A, R>(
    root: &mut Option<Shared<Node<V>>>,
    key: u64,
    arg: A,
    occupied: impl FnOnce(&mut V, A) -> R,
    vacant: impl FnOnce(A) -> (V, R),
) -> (R, bool) {
    let Some(root) = root else {
        let (value, result) = vacant(arg);
        *root = Some(Shared::new(Node::leaf(key, value)));
        return (result, true);
    };
    let root = root.make_mut();
    let (mut index, mut slots) = (&mut root.index, &mut root.slots);
    let mut shift = 0;
    loop {
        let c = chunk(key, shift);
        let position = usize::from(index[c]);
        if position == 0 {
            let (value, result) = vacant(arg);
            push(index, slots, c, Slot::Leaf(key, value));
            return (result, true);
        }
        if matches!(slots[position - 1], Slot::Leaf(k, _) if k != key) {
            // Another key shares this chunk: both go one level down.
            let (value, result) = vacant(arg);
            let Slot::Leaf(other, other_value) = take(index, slots, c, shift) else { unreachable!("a leaf") };
            let pair = Node::pair(shift + BITS, (other, other_value), (key, value));
            push(index, slots, c, Slot::Branch(Shared::new(pair)));
            return (result, true);
        }
        match &mut slots[position - 1] {
            Slot::Leaf(_, v) => return (occupied(v, arg), false),
            Slot::Branch(child) => {
                let child = child.make_mut();
                (index, slots) = (&mut child.index, &mut child.slots);
            }
        }
        shift += BITS;
    }
}

/// Removes `key`, present in the trie below `root`, returning its value; an emptied trie
/// loses its root node.
fn remove_in_trie<V: Clone>(root: &mut Option<Shared<Node<V>>>, key: u64) -> Option<V> {
    let node = root.as_mut()?.make_mut();
    let value = remove_in(node, key, 0);
    if node.slots.is_empty() {
        *root = None;
    }
    Some(value)
}

/// Removes `key`, which is present below `node`, folding a branch left with one leaf.
fn remove_in<V: Clone>(node: &mut Node<V>, key: u64, shift: u32) -> V {
    let c = chunk(key, shift);
    let position = usize::from(node.index[c]) - 1;
    let Slot::Branch(child) = &mut node.slots[position] else {
        let Slot::Leaf(_, value) = take(&mut node.index, &mut node.slots, c, shift) else {
            unreachable!("not a branch")
        };
        return value;
    };
    let child = child.make_mut();
    let value = remove_in(child, key, shift + BITS);
    if child.slots.len() == 1 && matches!(child.slots[0], Slot::Leaf(..)) {
        if let Some(leaf) = child.slots.pop() {
            node.slots[position] = leaf;
        }
    }
    value
}

/// Iterator for [`IdMap::iter`]: the values in `top`, then the trie's entries that `top`
/// does not shadow.
pub struct Iter<'a, V> {
    top: &'a [(u64, Option<V>)],
    next_top: usize,
    stack: Vec<std::slice::Iter<'a, Slot<V>>>,
    remaining: usize,
}

impl<'a, V> Iterator for Iter<'a, V> {
    type Item = (u64, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        while let Some((key, value)) = self.top.get(self.next_top) {
            self.next_top += 1;
            if let Some(value) = value {
                self.remaining -= 1;
                return Some((*key, value));
            }
        }
        loop {
            match self.stack.last_mut()?.next() {
                Some(Slot::Leaf(k, v)) => {
                    if self.top.iter().all(|(shadowed, _)| shadowed != k) {
                        self.remaining -= 1;
                        return Some((*k, v));
                    }
                }
                Some(Slot::Branch(child)) => self.stack.push(child.get().slots.iter()),
                None => {
                    self.stack.pop();
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<V> ExactSizeIterator for Iter<'_, V> {}

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

impl<V> Clone for IdMap<V> {
    /// The same entries, sharing the layer: one increment.
    fn clone(&self) -> Self {
        Self { root: self.root.clone() }
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

impl<V> IdMap<V> {
    /// Checks the invariants listed in the module docs.
    ///
    /// # Errors
    ///
    /// A description of the first broken invariant found.
    pub fn check_invariants(&self) -> Result<(), String> {
        let Some(root) = &self.root else { return Ok(()) };
        let layer = root.get();
        let top = layer.top();
        let mut shadowed = 0;
        for (i, (key, value)) in top.iter().enumerate() {
            if top[..i].iter().any(|(other, _)| other == key) {
                return Err(format!("key {key:#x} twice on top"));
            }
            match (value, layer.base_get(*key)) {
                (_, Some(_)) => shadowed += 1,
                (None, None) => {
                    return Err(format!("top removes key {key:#x}, which the trie does not hold"));
                }
                (Some(_), None) => {}
            }
        }
        if layer.top[layer.top_len..].iter().any(|(_, value)| value.is_some()) {
            return Err("a value past the end of top".to_string());
        }
        let trie_len = match &layer.base {
            None => 0,
            Some(node) if node.get().slots.is_empty() => return Err("an empty trie keeps a root".to_string()),
            Some(node) => check_node(node.get(), 0, 0, true)?,
        };
        let expected = top.iter().filter(|(_, value)| value.is_some()).count() + trie_len - shadowed;
        if layer.len != expected {
            return Err(format!("the layer counts {} entries, holds {expected}", layer.len));
        }
        if layer.len == 0 && layer.base.is_none() {
            return Err("an empty map keeps a layer".to_string());
        }
        let mut listed = layer.marked.clone();
        listed.sort_unstable();
        let mut held: Vec<u64> = self.iter().map(|(key, _)| key).filter(|key| key & MARK != 0).collect();
        held.sort_unstable();
        if listed != held {
            return Err(format!("the layer lists marked keys {listed:?}, holds {held:?}"));
        }
        Ok(())
    }
}

/// Checks `node` (reached by the key bits `prefix` below `shift`); returns its leaf count.
fn check_node<V>(node: &Node<V>, shift: u32, prefix: u64, is_root: bool) -> Result<usize, String> {
    let low = |key: u64| if shift == 0 { 0 } else { key & ((1 << shift) - 1) };
    let mut seen = vec![false; node.slots.len()];
    let mut leaves = 0;
    for (c, &position) in node.index.iter().enumerate() {
        if position == 0 {
            continue;
        }
        let i = usize::from(position) - 1;
        if i >= node.slots.len() || std::mem::replace(&mut seen[i], true) {
            return Err(format!("index byte {c} points at slot {i} twice or past the end"));
        }
        match &node.slots[i] {
            Slot::Leaf(key, _) => {
                if chunk(*key, shift) != c || low(*key) != prefix {
                    return Err(format!("key {key:#x} sits in the slot of chunk {c} at shift {shift}"));
                }
                leaves += 1;
            }
            Slot::Branch(child) => {
                if shift + BITS >= 64 {
                    return Err("a branch below the last level".to_string());
                }
                leaves += check_node(child.get(), shift + BITS, prefix | (c as u64) << shift, false)?;
            }
        }
    }
    if seen.iter().any(|s| !s) {
        return Err(format!("a slot at shift {shift} that no index byte points at"));
    }
    if !is_root && leaves < 2 {
        return Err(format!("a branch at shift {shift} holding {leaves} leaf"));
    }
    Ok(leaves)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map_of(keys: &[u64]) -> IdMap<u64> {
        let mut map = IdMap::new();
        for &k in keys {
            map.insert(k, k.wrapping_mul(10));
        }
        map.check_invariants().unwrap();
        map
    }

    #[test]
    fn colliding_low_chunks_nest_and_fold_back() {
        let keys = [1, 1 | 1 << 5, 1 | 1 << 10, 1 | 2 << 10];
        let mut map = map_of(&keys);
        for &k in &keys {
            assert_eq!(map.get(k), Some(&(k.wrapping_mul(10))));
        }
        for (n, &k) in keys.iter().enumerate() {
            assert_eq!(map.remove(k), Some(k.wrapping_mul(10)));
            map.check_invariants().unwrap();
            assert_eq!(map.len(), keys.len() - n - 1);
        }
        assert!(map.is_empty());
    }

    #[test]
    fn keys_differing_only_in_the_top_bits() {
        let keys = [7, 7 | 1 << 60, 7 | 1 << 63];
        let map = map_of(&keys);
        for &k in &keys {
            assert_eq!(map.get(k), Some(&(k.wrapping_mul(10))));
        }
        assert_eq!(map.get(7 | 1 << 62), None);
    }

    #[test]
    fn updates_do_not_touch_clones() {
        let mut map = map_of(&(0..100).collect::<Vec<_>>());
        let copy = map.clone();
        assert!(map.ptr_eq(&copy));
        map.insert(5, 0);
        map.remove(6);
        map.upsert(7, 1, |v, new| *v = new, |new| (new, ()));
        assert_eq!((copy.get(5), copy.get(6), copy.get(7)), (Some(&50), Some(&60), Some(&70)));
        assert_eq!((map.get(5), map.get(6), map.get(7)), (Some(&0), None, Some(&1)));
        copy.check_invariants().unwrap();
        map.check_invariants().unwrap();
    }

    #[test]
    fn misses_keep_sharing() {
        let mut map = map_of(&[1, 2, 3]);
        let copy = map.clone();
        assert_eq!(map.remove(99), None);
        assert!(map.ptr_eq(&copy));
    }

    fn entries(map: &IdMap<u64>) -> Vec<(u64, u64)> {
        let mut entries: Vec<_> = map.iter().map(|(k, v)| (k, *v)).collect();
        entries.sort_unstable();
        entries
    }

    #[test]
    fn changes_to_a_shared_trie_go_on_top_and_fold_back_once_it_is_not_shared() {
        let mut map = map_of(&[1, 2, 3]);
        let snapshot = map.clone();
        map.insert(2, 200);
        assert_eq!(map.remove(3), Some(30));
        map.insert(4, 40);
        map.check_invariants().unwrap();
        assert_eq!(map.root.as_ref().unwrap().get().top_len, 3, "three changes on top");
        assert!(!map.can_fold_top(), "the snapshot still shares the trie");
        assert_eq!(entries(&snapshot), [(1, 10), (2, 20), (3, 30)]);
        drop(snapshot);
        assert!(map.can_fold_top());
        let mut released = map.fold_top();
        released.sort_unstable();
        assert_eq!(released, [20, 30], "the shadowed values");
        map.check_invariants().unwrap();
        assert!(!map.can_fold_top());
        assert_eq!(entries(&map), [(1, 10), (2, 200), (4, 40)]);
    }

    #[test]
    fn a_full_top_copies_the_path_instead() {
        let mut map = map_of(&(0..40).collect::<Vec<_>>());
        let snapshot = map.clone();
        for k in 100..100 + TOP as u64 + 3 {
            map.insert(k, k);
            map.check_invariants().unwrap();
        }
        assert_eq!(map.len(), 40 + TOP + 3);
        assert_eq!(snapshot.len(), 40);
        assert_eq!(map.get(100 + TOP as u64 + 2), Some(&(100 + TOP as u64 + 2)));
        snapshot.check_invariants().unwrap();
    }

    #[test]
    fn iter_yields_every_entry_once() {
        let keys: Vec<u64> = (0..2000).map(|k| k * 7919).collect();
        let map = map_of(&keys);
        let mut seen: Vec<u64> = map.iter().map(|(k, _)| k).collect();
        seen.sort_unstable();
        let mut expected = keys.clone();
        expected.sort_unstable();
        assert_eq!(seen, expected);
        assert_eq!(map.iter().len(), keys.len());
    }
}
