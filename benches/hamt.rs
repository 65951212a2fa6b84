//! The persistent map behind `Context`, side by side with the persistent hash maps a user
//! would otherwise reach for: `rpds::HashTrieMapSync` and `imbl::HashMap`.
//!
//! Every operation is the persistent one, the way contexts use it: the map before the
//! operation is kept (a snapshot), so an update copies the path it changes. Keys are the
//! dense ids that `ContextVar`s draw; the peers hash them with their default hasher, as they
//! would in use. Results and their reading live in BENCHMARKS.md.

use std::hint::black_box;

use contextvars::hamt::{Garbage, IdMap};
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
        let mut garbage = Garbage::new();
        for key in 1..=n {
            map.insert(key, key, &mut garbage);
        }
        map.freeze();
        map
    }

    fn get(&self, key: u64) -> Option<u64> {
        IdMap::get(self, key).copied()
    }

    fn inserted(&self, key: u64, value: u64) -> Self {
        let mut map = self.share();
        map.insert(key, value, &mut Garbage::new());
        map.freeze();
        map
    }

    fn removed(&self, key: u64) -> Self {
        let mut map = self.share();
        map.remove(key, &mut Garbage::new());
        map.freeze();
        map
    }

    fn snapshot(&self) -> Self {
        self.share()
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

fn bench_map<M: PersistentMap>(c: &mut Criterion) {
    for n in SIZES {
        let map = M::build(n);
        // Keys spread over the map, so deep and shallow paths both count.
        let keys: Vec<u64> = (0..64).map(|i| 1 + (i * 7_919) % n).collect();
        let mut group = c.benchmark_group(format!("hamt/{n}"));

        group.bench_function(BenchmarkId::new("get", M::NAME), |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % keys.len();
                black_box(map.get(black_box(keys[i])))
            });
        });
        group.bench_function(BenchmarkId::new("insert-new", M::NAME), |b| {
            b.iter(|| black_box(map.inserted(black_box(n + 1), 0)));
        });
        group.bench_function(BenchmarkId::new("insert-replace", M::NAME), |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % keys.len();
                black_box(map.inserted(black_box(keys[i]), 0))
            });
        });
        group.bench_function(BenchmarkId::new("remove", M::NAME), |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % keys.len();
                black_box(map.removed(black_box(keys[i])))
            });
        });
        group.bench_function(BenchmarkId::new("clone", M::NAME), |b| {
            b.iter(|| black_box(map.snapshot()));
        });
        group.finish();
    }
}

fn hamt(c: &mut Criterion) {
    bench_map::<IdMap<u64>>(c);
    bench_map::<rpds::HashTrieMapSync<u64, u64>>(c);
    bench_map::<imbl::HashMap<u64, u64>>(c);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(300))
        .measurement_time(std::time::Duration::from_secs(1));
    targets = hamt
}
criterion_main!(benches);
