//! flow-cache benchmarks: the memory backend against a `Mutex<HashMap>` and `moka::sync::Cache`
//! in the same run; 32-byte keys, 2 KiB values, 10k and 1M entries, 1 and 2 threads.
//!
//! Run: `cargo bench -p flow-benches --bench cache -- --warm-up-time 1 --measurement-time 3`.
//! Before the timings it prints the measured memory per entry of each structure at 1M entries
//! (each built in a child process so that freed memory from one cannot hide the next).
//! Under `cargo test` (no `--bench` flag) only the 10k size runs, once, as a smoke test.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs
)]

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{BenchmarkGroup, Criterion, measurement::WallTime};
use flow_cache::{
    Cache, ENTRY_OVERHEAD_BYTES, Entry, Envelope, FetchError, Key, MemoryConfig, MemoryStore,
    Namespace, Policy,
};

const VALUE_LEN: usize = 2048;
const LOOKUPS: usize = 1 << 16;

/// splitmix64: deterministic pseudo-random numbers without a dependency.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn raw_key(i: u64) -> [u8; 32] {
    let mut k = [0u8; 32];
    for (j, chunk) in k.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&mix(i * 4 + j as u64).to_le_bytes());
    }
    k
}

fn value(i: u64) -> Arc<[u8]> {
    // Non-zero fill so that every page is really written (calloc'd zeros may stay unmapped).
    Arc::from(vec![(i % 251 + 1) as u8; VALUE_LEN])
}

fn lookups(n: usize, seed: u64) -> Vec<u32> {
    (0..LOOKUPS as u64)
        .map(|i| (mix(seed ^ i) % n as u64) as u32)
        .collect()
}

fn envelope() -> Envelope {
    Envelope::new(
        flow_cache::SystemClock.now_unix_ms(),
        Duration::from_secs(86_400),
        Duration::ZERO,
    )
}

use flow_cache::Clock as _;

fn memory_store(n: usize) -> MemoryStore {
    // Room for every entry: the benchmark measures hits, not evictions.
    MemoryStore::new(
        MemoryConfig::new()
            .with_max_entries(2 * n)
            .with_max_bytes(u64::MAX / 2)
            .with_shards(16),
    )
    .unwrap()
}

/// The three structures under test, behind one interface.
trait Subject: Sync {
    fn get(&self, i: u32) -> Option<Arc<[u8]>>;
    fn insert(&self, i: u32, v: Arc<[u8]>);
}

struct Ours {
    store: Arc<MemoryStore>,
    keys: Vec<Key>,
    env: Envelope,
}

impl Ours {
    fn build(n: usize) -> Self {
        let ns = Namespace::new("bench").unwrap();
        let store = Arc::new(memory_store(n));
        let keys: Vec<Key> = (0..n as u64)
            .map(|i| ns.key_from_digest(raw_key(i)))
            .collect();
        let env = envelope();
        for (i, k) in keys.iter().enumerate() {
            store.put_sync(
                k,
                Entry {
                    envelope: env,
                    value: value(i as u64),
                },
            );
        }
        Self { store, keys, env }
    }
}

impl Subject for Ours {
    fn get(&self, i: u32) -> Option<Arc<[u8]>> {
        self.store.get_sync(&self.keys[i as usize]).map(|e| e.value)
    }
    fn insert(&self, i: u32, v: Arc<[u8]>) {
        self.store.put_sync(
            &self.keys[i as usize],
            Entry {
                envelope: self.env,
                value: v,
            },
        );
    }
}

struct MutexMap {
    map: Mutex<HashMap<[u8; 32], Arc<[u8]>>>,
    keys: Vec<[u8; 32]>,
}

impl MutexMap {
    fn build(n: usize) -> Self {
        let keys: Vec<[u8; 32]> = (0..n as u64).map(raw_key).collect();
        let mut map = HashMap::with_capacity(n);
        for (i, k) in keys.iter().enumerate() {
            map.insert(*k, value(i as u64));
        }
        Self {
            map: Mutex::new(map),
            keys,
        }
    }
}

impl Subject for MutexMap {
    fn get(&self, i: u32) -> Option<Arc<[u8]>> {
        self.map
            .lock()
            .unwrap()
            .get(&self.keys[i as usize])
            .cloned()
    }
    fn insert(&self, i: u32, v: Arc<[u8]>) {
        self.map.lock().unwrap().insert(self.keys[i as usize], v);
    }
}

struct Moka {
    cache: moka::sync::Cache<[u8; 32], Arc<[u8]>>,
    keys: Vec<[u8; 32]>,
}

impl Moka {
    fn build(n: usize) -> Self {
        let keys: Vec<[u8; 32]> = (0..n as u64).map(raw_key).collect();
        let cache = moka::sync::Cache::new(2 * n as u64);
        for (i, k) in keys.iter().enumerate() {
            cache.insert(*k, value(i as u64));
        }
        cache.run_pending_tasks();
        Self { cache, keys }
    }
}

impl Subject for Moka {
    fn get(&self, i: u32) -> Option<Arc<[u8]>> {
        self.cache.get(&self.keys[i as usize])
    }
    fn insert(&self, i: u32, v: Arc<[u8]>) {
        self.cache.insert(self.keys[i as usize], v);
    }
}

fn bench_subject(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, s: &dyn Subject, n: usize) {
    let idx = lookups(n, 1);
    g.bench_function(format!("hit-1t/{name}"), |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = i.wrapping_add(1);
            black_box(s.get(idx[i & (LOOKUPS - 1)]))
        });
    });
    let idx2 = lookups(n, 2);
    g.bench_function(format!("hit-2t/{name}"), |b| {
        // Wall time for an iteration in which each of 2 threads does one get.
        b.iter_custom(|iters| {
            let start = Instant::now();
            std::thread::scope(|scope| {
                for lk in [&idx, &idx2] {
                    scope.spawn(move || {
                        for i in 0..iters as usize {
                            black_box(s.get(lk[i & (LOOKUPS - 1)]));
                        }
                    });
                }
            });
            start.elapsed()
        });
    });
    let v = value(7);
    g.bench_function(format!("insert-1t/{name}"), |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = i.wrapping_add(1);
            s.insert(idx[i & (LOOKUPS - 1)], Arc::clone(&v));
        });
    });
}

fn benches(c: &mut Criterion, sizes: &[(usize, &str)]) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for &(n, label) in sizes {
        let mut g = c.benchmark_group(format!("cache/{label}"));
        // One structure alive at a time: at 1M entries each holds 2 GiB of values.
        {
            let ours = Ours::build(n);
            bench_subject(&mut g, "flow-cache", &ours, n);
            let cache = Cache::new(Arc::clone(&ours.store));
            let policy = Policy::new(Duration::from_secs(86_400));
            let idx = lookups(n, 3);
            g.bench_function("get_or_fetch-hit/flow-cache", |b| {
                let mut i = 0usize;
                b.to_async(&rt).iter(|| {
                    i = i.wrapping_add(1);
                    let key = &ours.keys[idx[i & (LOOKUPS - 1)] as usize];
                    let cache = &cache;
                    async move {
                        black_box(
                            cache
                                .get_or_fetch(key, policy, || {
                                    std::future::ready(Ok::<_, FetchError>(Vec::new()))
                                })
                                .await
                                .unwrap(),
                        )
                    }
                });
            });
            assert_eq!(ours.store.evictions(), 0);
        }
        {
            let map = MutexMap::build(n);
            bench_subject(&mut g, "mutex-hashmap", &map, n);
        }
        {
            let moka = Moka::build(n);
            bench_subject(&mut g, "moka", &moka, n);
            let idx = lookups(n, 3);
            g.bench_function("get_or_fetch-hit/moka-get_with", |b| {
                let mut i = 0usize;
                b.iter(|| {
                    i = i.wrapping_add(1);
                    let k = moka.keys[idx[i & (LOOKUPS - 1)] as usize];
                    black_box(moka.cache.get_with(k, || value(0)))
                });
            });
        }
        g.finish();
    }
}

/// Resident memory of this process in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// In a child process: build `which` with `n` entries and print bytes per entry beyond
/// key (32) + value (2048).
fn overhead_child(which: &str, n: usize) {
    let before = rss();
    let kept: Box<dyn std::any::Any> = match which {
        "flow-cache" => {
            let ns = Namespace::new("bench").unwrap();
            let store = MemoryStore::new(
                MemoryConfig::new()
                    .with_max_entries(2 * n)
                    .with_max_bytes(u64::MAX / 2)
                    .with_shards(16),
            )
            .unwrap();
            let env = envelope();
            for i in 0..n as u64 {
                store.put_sync(
                    &ns.key_from_digest(raw_key(i)),
                    Entry {
                        envelope: env,
                        value: value(i),
                    },
                );
            }
            assert_eq!(store.len(), n, "nothing evicted");
            Box::new(store)
        }
        "mutex-hashmap" => {
            let mut map = HashMap::new();
            for i in 0..n as u64 {
                map.insert(raw_key(i), value(i));
            }
            Box::new(Mutex::new(map))
        }
        _ => {
            let cache = moka::sync::Cache::new(2 * n as u64);
            for i in 0..n as u64 {
                cache.insert(raw_key(i), value(i));
            }
            cache.run_pending_tasks();
            Box::new(cache)
        }
    };
    let delta = rss().saturating_sub(before) as f64;
    let per_entry = delta / n as f64 - (32 + VALUE_LEN) as f64;
    println!("{which} {per_entry:.1}");
    drop(kept);
}

fn overhead_report(n: usize) {
    let exe = std::env::current_exe().unwrap();
    eprintln!(
        "== memory per entry at {n} entries, beyond 32-byte key + 2048-byte value (RSS delta):"
    );
    for which in ["flow-cache", "mutex-hashmap", "moka"] {
        let out = std::process::Command::new(&exe)
            .env("FLOW_CACHE_OVERHEAD_CHILD", which)
            .env("FLOW_CACHE_OVERHEAD_N", n.to_string())
            .output()
            .unwrap();
        let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if line.is_empty() {
            eprintln!(
                "   {which}: child failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        } else {
            eprintln!("   {line}");
        }
    }
    eprintln!(
        "== flow-cache analytic: size_of Key {} + Entry {} + 2 list links 16 + hash slot ~9-18 + Arc header 16 + malloc ~16; charged ENTRY_OVERHEAD_BYTES = {}",
        std::mem::size_of::<Key>(),
        std::mem::size_of::<Entry>(),
        ENTRY_OVERHEAD_BYTES
    );
}

fn main() {
    if let Ok(which) = std::env::var("FLOW_CACHE_OVERHEAD_CHILD") {
        let n = std::env::var("FLOW_CACHE_OVERHEAD_N")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1_000_000);
        overhead_child(&which, n);
        return;
    }
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let mut c = Criterion::default().configure_from_args();
    if benchmarking {
        overhead_report(1_000_000);
        benches(&mut c, &[(10_000, "10k"), (1_000_000, "1M")]);
    } else {
        benches(&mut c, &[(10_000, "10k")]);
    }
    c.final_summary();
}
