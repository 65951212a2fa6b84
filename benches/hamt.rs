//! The persistent map behind `Context`, side by side with the persistent hash maps a user
//! would otherwise reach for: `rpds::HashTrieMapSync` and `imbl::HashMap`.
//!
//! Every operation is the persistent one, the way contexts use it: the map before the
//! operation is kept (a snapshot), so an update copies the path it changes. Keys are the
//! dense ids that `ContextVar`s draw; the peers hash them with their default hasher, as they
//! would in use. Results and their reading live in BENCHMARKS.md.

use std::hint::black_box;

use contextvars::internals::IdMap;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

const SIZES: [u64; 5] = [1, 8, 64, 1_000, 10_000];

/// The operations measured, implemented by each map.
trait PersistentMap: Sized {
    const NAME: &'static str;
    fn build(n: u64) -> Self;
    fn get(&self, key: u64) -> Option<u64>;
    /// A new map with `key` set; `self` is unchanged.
    fn inserted(&self, key: u64, value: u64) -> Self;
    /// A new map without `key`; `self` is unchanged.
    fn removed(&self, key: u64) -> Self;
    /// Another handle to the same entries.
    fn snapshot(&self) -> Self;
}

impl PersistentMap for IdMap<u64> {
    const NAME: &'static str = "contextvars";

    fn build(n: u64) -> Self {
        let mut map = IdMap::new();
        for key in 1..=n {
            map.insert(key, key);
        }
        map
    }

    fn get(&self, key: u64) -> Option<u64> {
        IdMap::get(self, key).copied()
    }

    fn inserted(&self, key: u64, value: u64) -> Self {
        let mut map = self.clone();
        map.insert(key, value);
        map
    }

    fn removed(&self, key: u64) -> Self {
        let mut map = self.clone();
        map.remove(key);
        map
    }

    fn snapshot(&self) -> Self {
        self.clone()
    }
}

impl PersistentMap for rpds::HashTrieMapSync<u64, u64> {
    const NAME: &'static str = "rpds";

    fn build(n: u64) -> Self {
        let mut map = rpds::HashTrieMapSync::new_sync();
        for key in 1..=n {
            map.insert_mut(key, key);
        }
        map
    }

    fn get(&self, key: u64) -> Option<u64> {
        rpds::HashTrieMapSync::get(self, &key).copied()
    }

    fn inserted(&self, key: u64, value: u64) -> Self {
        self.insert(key, value)
    }

    fn removed(&self, key: u64) -> Self {
        self.remove(&key)
    }

    fn snapshot(&self) -> Self {
        self.clone()
    }
}

impl PersistentMap for imbl::HashMap<u64, u64> {
    const NAME: &'static str = "imbl";

    fn build(n: u64) -> Self {
        let mut map = imbl::HashMap::new();
        for key in 1..=n {
            map.insert(key, key);
        }
        map
    }

    fn get(&self, key: u64) -> Option<u64> {
        imbl::HashMap::get(self, &key).copied()
    }

    fn inserted(&self, key: u64, value: u64) -> Self {
        self.update(key, value)
    }

    fn removed(&self, key: u64) -> Self {
        self.without(&key)
    }

    fn snapshot(&self) -> Self {
        self.clone()
    }
}

/// One operation on one map, measured over `keys` spread across the map.
fn bench_op<M: PersistentMap>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    op: &str,
    n: u64,
    keys: &[u64],
) {
    let map = M::build(n);
    let mut i = 0;
    let mut next = move || {
        i = (i + 1) % keys.len();
        black_box(keys[i])
    };
    group.bench_function(BenchmarkId::new(op, M::NAME), |b| match op {
        "get" => b.iter(|| black_box(map.get(next()))),
        "insert-new" => b.iter(|| black_box(map.inserted(black_box(n + 1), 0))),
        "insert-replace" => b.iter(|| black_box(map.inserted(next(), 0))),
        "remove" => b.iter(|| black_box(map.removed(next()))),
        "clone" => b.iter(|| black_box(map.snapshot())),
        _ => unreachable!("unknown operation {op}"),
    });
}

/// For each size and operation, the three maps one after the other, so that they are
/// measured under the same load on a shared machine.
fn hamt(c: &mut Criterion) {
    for n in SIZES {
        // Keys spread over the map, so deep and shallow paths both count.
        let keys: Vec<u64> = (0..64).map(|i| 1 + (i * 7_919) % n).collect();
        let mut group = c.benchmark_group(format!("hamt/{n}"));
        for op in ["get", "insert-new", "insert-replace", "remove", "clone"] {
            bench_op::<IdMap<u64>>(&mut group, op, n, &keys);
            bench_op::<rpds::HashTrieMapSync<u64, u64>>(&mut group, op, n, &keys);
            bench_op::<imbl::HashMap<u64, u64>>(&mut group, op, n, &keys);
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(300))
        .measurement_time(std::time::Duration::from_secs(1));
    targets = hamt
}
criterion_main!(benches);
