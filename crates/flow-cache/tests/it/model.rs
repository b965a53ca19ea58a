//! Model-based tests: random operation sequences against simple reference models.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use flow_cache::{
    Cache, ENTRY_OVERHEAD_BYTES, Entry, Envelope, FetchError, Key, Lookup, ManualClock,
    MemoryConfig, MemoryStore, Namespace, Outcome, Policy,
};
use proptest::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("model fetch failed")]
struct Failed;

#[derive(Debug, Clone)]
enum Op {
    Advance(u64),
    Fetch {
        k: u8,
        answer: Option<u8>,
        transient: bool,
        ttl: u64,
        stale: u64,
        no_store: bool,
        force: bool,
    },
    Put {
        k: u8,
        v: u8,
        ttl: u64,
        stale: u64,
    },
    Remove(u8),
    Get(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u64..120).prop_map(Op::Advance),
        (
            0u8..3,
            prop::option::of(any::<u8>()),
            any::<bool>(),
            0u64..100,
            0u64..100,
            prop::bool::weighted(0.15),
            prop::bool::weighted(0.15)
        )
            .prop_map(
                |(k, answer, transient, ttl, stale, no_store, force)| Op::Fetch {
                    k,
                    answer,
                    transient,
                    ttl,
                    stale,
                    no_store,
                    force
                }
            ),
        (0u8..3, any::<u8>(), 0u64..100, 0u64..100).prop_map(|(k, v, ttl, stale)| Op::Put {
            k,
            v,
            ttl,
            stale
        }),
        (0u8..3).prop_map(Op::Remove),
        (0u8..3).prop_map(Op::Get),
    ]
}

/// The reference: a plain map of (value, envelope), judged by hand.
#[derive(Default)]
struct Model {
    now: u64,
    map: HashMap<u8, (u8, Envelope)>,
}

impl Model {
    fn judge(&self, k: u8) -> Option<(u8, Envelope, bool)> {
        let (v, env) = *self.map.get(&k)?;
        if self.now < env.fresh_until {
            Some((v, env, true))
        } else if self.now < env.stale_until {
            Some((v, env, false))
        } else {
            None
        }
    }
}

fn key(k: u8) -> Key {
    Namespace::new("model").unwrap().key(&k).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn cache_front_matches_reference_model(ops in prop::collection::vec(op(), 1..60)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let clock = ManualClock::new(0);
        let cache = Cache::in_memory(MemoryConfig::new().with_shards(1)).unwrap().with_clock(Arc::new(clock.clone()));
        let mut model = Model::default();
        for op in ops {
            match op {
                Op::Advance(ms) => {
                    model.now += ms;
                    clock.set(model.now);
                }
                Op::Put { k, v, ttl, stale } => {
                    let env = Envelope::new(model.now, Duration::from_millis(ttl), Duration::from_millis(stale));
                    model.map.insert(k, (v, env));
                    rt.block_on(cache.put(&key(k), vec![v], Policy::new(Duration::from_millis(ttl)).with_stale(Duration::from_millis(stale))));
                }
                Op::Remove(k) => {
                    model.map.remove(&k);
                    rt.block_on(cache.remove(&key(k)));
                }
                Op::Get(k) => {
                    let got = rt.block_on(cache.get(&key(k)));
                    let want = model.judge(k);
                    match (got, want) {
                        (Lookup::Miss, None) => {}
                        (Lookup::Fresh(e), Some((v, env, true))) | (Lookup::Stale(e), Some((v, env, false))) => {
                            prop_assert_eq!(&*e.value, &[v][..]);
                            prop_assert_eq!(e.envelope, env);
                        }
                        (got, want) => prop_assert!(false, "get {k}: cache {got:?}, model {want:?}"),
                    }
                }
                Op::Fetch { k, answer, transient, ttl, stale, no_store, force } => {
                    let policy = Policy::new(Duration::from_millis(ttl))
                        .with_stale(Duration::from_millis(stale))
                        .with_no_store(no_store)
                        .with_force_refresh(force);
                    let got = rt.block_on(cache.get_or_fetch(&key(k), policy, move || async move {
                        match answer {
                            Some(v) => Ok(vec![v]),
                            None if transient => Err(FetchError::transient(Failed)),
                            None => Err(FetchError::permanent(Failed)),
                        }
                    }));
                    let found = if force { None } else { model.judge(k) };
                    let want: Option<(u8, Outcome)> = match (found, answer) {
                        (Some((v, _, true)), _) => Some((v, Outcome::Hit)),
                        (prev, Some(v)) => {
                            if !no_store && ttl + stale > 0 {
                                let env = Envelope::new(model.now, Duration::from_millis(ttl), Duration::from_millis(stale));
                                model.map.insert(k, (v, env));
                            }
                            Some((v, if prev.is_some() { Outcome::Refreshed } else { Outcome::Miss }))
                        }
                        (Some((v, _, false)), None) if transient => Some((v, Outcome::StaleIfError)),
                        (_, None) => None,
                    };
                    match (got, want) {
                        (Ok(s), Some((v, outcome))) => {
                            prop_assert_eq!(&*s.value, &[v][..]);
                            prop_assert_eq!(s.outcome, outcome);
                        }
                        (Err(e), None) => prop_assert_eq!(e.is_retryable(), transient),
                        (got, want) => prop_assert!(false, "fetch {k}: cache {got:?}, model {want:?}"),
                    }
                }
            }
        }
        let m = cache.metrics();
        prop_assert_eq!(m.entries as usize, model.map.len());
    }
}

#[derive(Debug, Clone)]
enum StoreOp {
    Put(u8, usize),
    Get(u8),
    Remove(u8),
}

/// The naive LRU: a vector, most recently used first.
struct NaiveLru {
    order: Vec<(u8, usize)>,
    max_bytes: u64,
    max_entries: usize,
    evictions: u64,
}

impl NaiveLru {
    fn charge(len: usize) -> u64 {
        ENTRY_OVERHEAD_BYTES + len as u64
    }
    fn bytes(&self) -> u64 {
        self.order.iter().map(|(_, l)| Self::charge(*l)).sum()
    }
    fn take(&mut self, k: u8) -> Option<(u8, usize)> {
        let i = self.order.iter().position(|(x, _)| *x == k)?;
        Some(self.order.remove(i))
    }
    fn put(&mut self, k: u8, len: usize) {
        self.take(k);
        if Self::charge(len) > self.max_bytes {
            return;
        }
        self.order.insert(0, (k, len));
        while self.order.len() > self.max_entries
            || (self.bytes() > self.max_bytes && self.order.len() > 1)
        {
            self.order.pop();
            self.evictions += 1;
        }
    }
    fn get(&mut self, k: u8) -> Option<usize> {
        let e = self.take(k)?;
        self.order.insert(0, e);
        Some(e.1)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn memory_store_matches_naive_lru(
        max_values in 1u64..2_000,
        max_entries in 1usize..6,
        ops in prop::collection::vec(prop_oneof![
            (0u8..8, 0usize..700).prop_map(|(k, l)| StoreOp::Put(k, l)),
            (0u8..8).prop_map(StoreOp::Get),
            (0u8..8).prop_map(StoreOp::Remove),
        ], 1..80),
    ) {
        let max_bytes = max_values + 2 * ENTRY_OVERHEAD_BYTES;
        let store = MemoryStore::new(
            MemoryConfig::new().with_shards(1).with_max_bytes(max_bytes).with_max_entries(max_entries),
        ).unwrap();
        let mut naive = NaiveLru { order: Vec::new(), max_bytes, max_entries, evictions: 0 };
        let env = Envelope::new(0, Duration::from_secs(1), Duration::ZERO);
        for op in ops {
            match op {
                StoreOp::Put(k, len) => {
                    store.put_sync(&key(k), Entry::new(env, vec![k; len]));
                    naive.put(k, len);
                }
                StoreOp::Get(k) => {
                    let got = store.get_sync(&key(k)).map(|e| e.value.len());
                    prop_assert_eq!(got, naive.get(k), "get {}", k);
                }
                StoreOp::Remove(k) => {
                    store.remove_sync(&key(k));
                    naive.take(k);
                }
            }
            prop_assert_eq!(store.len(), naive.order.len());
            prop_assert_eq!(store.bytes(), naive.bytes());
            prop_assert_eq!(store.evictions(), naive.evictions);
            prop_assert!(store.bytes() <= max_bytes);
        }
    }
}
