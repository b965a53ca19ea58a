//! The in-memory backend: sharded LRU stores from the `cached` crate, bounded by bytes and
//! by entry count.

use std::fmt;
use std::mem::size_of;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use cached::{Cached, LruCache};

use crate::envelope::Entry;
use crate::error::{Error, ErrorKind, Result};
use crate::key::Key;
use crate::store::{CacheStore, StoreStats};

/// Bytes charged per entry on top of its value: the key and entry structs stored inline in the
/// LRU list, two list links, the hash-table slot and the shared value's reference counts.
/// An estimate of the real cost; `BENCHMARKS.md` has the measured figure.
pub const ENTRY_OVERHEAD_BYTES: u64 =
    (size_of::<Key>() + size_of::<Entry>() + 2 * size_of::<usize>() + 8 + 16) as u64;

/// Bounds and layout of a [`MemoryStore`].
///
/// Each of the `shards` independent LRU lists gets an equal share of both bounds, so the total
/// never exceeds them; eviction is least-recently-used within a shard. One shard gives an exact
/// global LRU; more shards let threads work in parallel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryConfig {
    max_bytes: u64,
    max_entries: usize,
    shards: usize,
}

impl Default for MemoryConfig {
    /// 256 MiB, 100 000 entries, 16 shards.
    fn default() -> Self {
        Self {
            max_bytes: 256 << 20,
            max_entries: 100_000,
            shards: 16,
        }
    }
}

impl MemoryConfig {
    /// The default bounds (256 MiB, 100 000 entries, 16 shards).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The most bytes held: the sum over entries of value length plus
    /// [`ENTRY_OVERHEAD_BYTES`].
    #[must_use]
    pub fn with_max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// The most entries held.
    #[must_use]
    pub fn with_max_entries(mut self, max_entries: usize) -> Self {
        self.max_entries = max_entries;
        self
    }

    /// The number of shards, rounded up to a power of two (1 gives an exact LRU).
    #[must_use]
    pub fn with_shards(mut self, shards: usize) -> Self {
        self.shards = shards;
        self
    }
}

/// Removal bookkeeping shared with the `on_evict` callback of one shard's LRU.
#[derive(Debug, Default)]
struct Sink {
    bytes: AtomicU64,
    evictions: AtomicU64,
    /// Set while an explicit removal runs, so it is not counted as an eviction.
    explicit: AtomicBool,
}

struct Shard {
    lru: Mutex<LruCache<Key, Entry>>,
    sink: Arc<Sink>,
    max_bytes: u64,
}

/// The in-memory [`CacheStore`]: least-recently-used eviction within byte and count bounds.
///
/// Built on `cached::LruCache` (one per shard, each behind a mutex). The byte bound counts
/// each value's length plus [`ENTRY_OVERHEAD_BYTES`]; an entry larger than a shard's share of
/// the byte bound is not stored. Expired entries stay until LRU eviction or an overwrite
/// removes them; [`Lookup::judge`](crate::Lookup::judge) treats them as misses.
pub struct MemoryStore {
    shards: Box<[Shard]>,
    mask: usize,
}

/// What one entry is charged against the byte bound.
fn charge(entry: &Entry) -> u64 {
    ENTRY_OVERHEAD_BYTES + entry.value.len() as u64
}

impl MemoryStore {
    /// A store with `config`'s bounds.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidConfig`] when a bound is zero or there are more shards than
    /// entries allowed.
    pub fn new(config: MemoryConfig) -> Result<Self> {
        let invalid = |field, expected| Error::from(ErrorKind::InvalidConfig { field, expected });
        if config.max_bytes == 0 {
            return Err(invalid("max_bytes", "more than 0 bytes"));
        }
        if config.shards == 0 || config.shards > 1 << 16 {
            return Err(invalid("shards", "between 1 and 65536"));
        }
        let shards = config.shards.next_power_of_two();
        if config.max_entries < shards {
            return Err(invalid("max_entries", "at least one entry per shard"));
        }
        let per_entries = config.max_entries / shards;
        let per_bytes = (config.max_bytes / shards as u64).max(1);
        let mut list = Vec::with_capacity(shards);
        for _ in 0..shards {
            let sink = Arc::new(Sink::default());
            let s = Arc::clone(&sink);
            // Start small and grow: `cached` pre-allocates `max_size` entries at build time.
            let mut lru = LruCache::<Key, Entry>::builder()
                .max_size(per_entries.min(1024))
                .on_evict(move |_k: &Key, v: &Entry| {
                    s.bytes.fetch_sub(charge(v), Ordering::Relaxed);
                    if !s.explicit.load(Ordering::Relaxed) {
                        s.evictions.fetch_add(1, Ordering::Relaxed);
                    }
                })
                .build()
                .map_err(|_| invalid("max_entries", "an entry count that can be allocated"))?;
            lru.set_max_size(per_entries);
            list.push(Shard {
                lru: Mutex::new(lru),
                sink,
                max_bytes: per_bytes,
            });
        }
        Ok(Self {
            shards: list.into_boxed_slice(),
            mask: shards - 1,
        })
    }

    fn shard(&self, key: &Key) -> &Shard {
        // High bits pick the shard; the hash table inside uses a hash of all 64.
        let i = ((key.spread() >> 40) as usize) & self.mask;
        &self.shards[i]
    }

    fn lock(shard: &Shard) -> MutexGuard<'_, LruCache<Key, Entry>> {
        // A poisoned lock only means a panic elsewhere mid-operation; the LRU stays consistent
        // (cached removes before notifying), so keep serving.
        shard
            .lru
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The entry under `key`, marking it most recently used. Synchronous form of
    /// [`CacheStore::get`].
    pub fn get_sync(&self, key: &Key) -> Option<Entry> {
        let shard = self.shard(key);
        Self::lock(shard).cache_get(key).cloned()
    }

    /// Stores `entry` under `key`, evicting least recently used entries until the shard fits
    /// its bounds. Synchronous form of [`CacheStore::put`].
    pub fn put_sync(&self, key: &Key, entry: Entry) {
        let shard = self.shard(key);
        let c = charge(&entry);
        let mut lru = Self::lock(shard);
        if c > shard.max_bytes {
            tracing::debug!(key = %key, bytes = c, "flow-cache: entry larger than a memory shard; not stored");
            Self::remove_locked(shard, &mut lru, key);
            return;
        }
        shard.sink.bytes.fetch_add(c, Ordering::Relaxed);
        if let Some(old) = lru.cache_set(key.clone(), entry) {
            shard.sink.bytes.fetch_sub(charge(&old), Ordering::Relaxed);
        }
        while shard.sink.bytes.load(Ordering::Relaxed) > shard.max_bytes {
            let len = lru.cache_size();
            if len < 2 {
                break; // only the new entry is left, and it fits (checked above)
            }
            // `cached` has no "pop LRU"; shrinking the capacity by one evicts exactly the least
            // recently used entry (through `on_evict`), then the capacity is restored.
            let cap = lru.capacity();
            lru.set_max_size(len - 1);
            lru.set_max_size(cap);
        }
    }

    /// Removes the entry under `key`. Synchronous form of [`CacheStore::remove`].
    pub fn remove_sync(&self, key: &Key) {
        let shard = self.shard(key);
        let mut lru = Self::lock(shard);
        Self::remove_locked(shard, &mut lru, key);
    }

    fn remove_locked(shard: &Shard, lru: &mut LruCache<Key, Entry>, key: &Key) {
        shard.sink.explicit.store(true, Ordering::Relaxed);
        let _ = lru.cache_remove(key);
        shard.sink.explicit.store(false, Ordering::Relaxed);
    }

    /// Entries held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| Self::lock(s).cache_size()).sum()
    }

    /// True when no entry is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes charged for the entries held.
    #[must_use]
    pub fn bytes(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.sink.bytes.load(Ordering::Relaxed))
            .sum()
    }

    /// Entries evicted to respect a bound so far.
    #[must_use]
    pub fn evictions(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.sink.evictions.load(Ordering::Relaxed))
            .sum()
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("shards", &self.shards.len())
            .field("bytes", &self.bytes())
            .field("evictions", &self.evictions())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl CacheStore for MemoryStore {
    async fn get(&self, key: &Key) -> Option<Entry> {
        self.get_sync(key)
    }
    async fn put(&self, key: &Key, entry: Entry) {
        self.put_sync(key, entry);
    }
    async fn remove(&self, key: &Key) {
        self.remove_sync(key);
    }
    fn stats(&self) -> StoreStats {
        StoreStats {
            entries: self.len() as u64,
            bytes: self.bytes(),
            evictions: self.evictions(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::envelope::Envelope;
    use crate::key::Namespace;
    use std::time::Duration;

    fn entry(len: usize, tag: u8) -> Entry {
        Entry::new(
            Envelope::new(0, Duration::from_secs(60), Duration::ZERO),
            vec![tag; len],
        )
    }

    fn key(i: u32) -> Key {
        Namespace::new("t").unwrap().key(&i).unwrap()
    }

    #[test]
    fn evicts_least_recently_used_by_bytes() {
        let per = charge(&entry(100, 0));
        let store =
            MemoryStore::new(MemoryConfig::new().with_shards(1).with_max_bytes(3 * per)).unwrap();
        for i in 0..3 {
            store.put_sync(&key(i), entry(100, i as u8));
        }
        assert_eq!(store.bytes(), 3 * per);
        // Touch 0 so that 1 is the least recently used.
        assert!(store.get_sync(&key(0)).is_some());
        store.put_sync(&key(3), entry(100, 3));
        assert!(store.get_sync(&key(1)).is_none(), "LRU entry evicted");
        for i in [0, 2, 3] {
            assert_eq!(store.get_sync(&key(i)).unwrap().value[0], i as u8);
        }
        assert_eq!(store.evictions(), 1);
        assert_eq!(store.bytes(), 3 * per);
        // One big entry pushes out several small ones.
        store.put_sync(&key(4), entry(250, 4));
        assert!(store.bytes() <= 3 * per);
        assert_eq!(store.len(), 2);
        assert_eq!(store.evictions(), 3);
    }

    #[test]
    fn evicts_by_count() {
        let store =
            MemoryStore::new(MemoryConfig::new().with_shards(1).with_max_entries(2)).unwrap();
        for i in 0..3 {
            store.put_sync(&key(i), entry(1, 0));
        }
        assert_eq!(store.len(), 2);
        assert_eq!(store.evictions(), 1);
        assert_eq!(store.bytes(), 2 * charge(&entry(1, 0)));
    }

    #[test]
    fn overwrite_and_remove_keep_bytes_exact_and_are_not_evictions() {
        let store = MemoryStore::new(MemoryConfig::new().with_shards(1)).unwrap();
        store.put_sync(&key(1), entry(10, 1));
        store.put_sync(&key(1), entry(30, 2));
        assert_eq!(store.bytes(), charge(&entry(30, 0)));
        assert_eq!(store.len(), 1);
        store.remove_sync(&key(1));
        store.remove_sync(&key(1));
        assert_eq!((store.bytes(), store.len(), store.evictions()), (0, 0, 0));
    }

    #[test]
    fn too_large_entry_is_not_stored_and_drops_the_old_value() {
        let store =
            MemoryStore::new(MemoryConfig::new().with_shards(1).with_max_bytes(1_000)).unwrap();
        store.put_sync(&key(1), entry(10, 1));
        store.put_sync(&key(1), entry(5_000, 2));
        assert!(store.get_sync(&key(1)).is_none());
        assert_eq!(store.bytes(), 0);
    }

    #[test]
    fn shards_split_the_bounds() {
        let per = charge(&entry(100, 0));
        let store =
            MemoryStore::new(MemoryConfig::new().with_shards(4).with_max_bytes(40 * per)).unwrap();
        for i in 0..1_000 {
            store.put_sync(&key(i), entry(100, 0));
        }
        assert!(store.bytes() <= 40 * per);
        assert!(store.len() <= 40 && store.len() >= 36, "{}", store.len());
        assert_eq!(store.evictions(), 1_000 - store.len() as u64);
    }

    #[test]
    fn config_is_validated() {
        let e = MemoryStore::new(MemoryConfig::new().with_max_bytes(0)).unwrap_err();
        assert_eq!(e.to_string(), "max_bytes: expected more than 0 bytes");
        assert!(MemoryStore::new(MemoryConfig::new().with_shards(0)).is_err());
        assert!(MemoryStore::new(MemoryConfig::new().with_shards(8).with_max_entries(4)).is_err());
    }
}
