//! The `CacheStore` seam and the two-tier stack.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::clock::{Clock, SystemClock};
use crate::envelope::{Entry, Freshness};
use crate::key::Key;

/// Stores byte values in envelopes under a [`Key`].
///
/// Backends absorb their own failures: a store that cannot answer (Redis down, a corrupt value)
/// logs a warning and behaves as a miss; a failed write is dropped. That is why no method
/// returns a `Result` — a cache must never turn a working call into a failing one.
///
/// A store may return an entry whose envelope has expired; [`Lookup::judge`](crate::Lookup::judge)
/// decides what is usable. Object-safe: use it as `Arc<dyn CacheStore>`.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait CacheStore: Send + Sync {
    /// The entry under `key`, if the store has one.
    async fn get(&self, key: &Key) -> Option<Entry>;
    /// Stores `entry` under `key`, replacing any previous one; kept at most until
    /// `entry.envelope.stale_until`.
    async fn put(&self, key: &Key, entry: Entry);
    /// Removes the entry under `key`, if any.
    async fn remove(&self, key: &Key);
    /// Counters kept by the store itself (entries, bytes held, evictions). Defaults to zeros
    /// for stores that keep none (Redis).
    fn stats(&self) -> StoreStats {
        StoreStats::default()
    }
}

/// What a store reports about itself; see [`CacheStore::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Entries held.
    pub entries: u64,
    /// Bytes charged for the entries held (see [`MemoryStore`](crate::MemoryStore)).
    pub bytes: u64,
    /// Entries evicted to respect a bound (not explicit removals, not expiry).
    pub evictions: u64,
}

impl StoreStats {
    fn plus(self, o: Self) -> Self {
        Self {
            entries: self.entries + o.entries,
            bytes: self.bytes + o.bytes,
            evictions: self.evictions + o.evictions,
        }
    }
}

#[async_trait]
impl<S: CacheStore + ?Sized> CacheStore for Arc<S> {
    async fn get(&self, key: &Key) -> Option<Entry> {
        (**self).get(key).await
    }
    async fn put(&self, key: &Key, entry: Entry) {
        (**self).put(key, entry).await;
    }
    async fn remove(&self, key: &Key) {
        (**self).remove(key).await;
    }
    fn stats(&self) -> StoreStats {
        (**self).stats()
    }
}

/// Two stores stacked: `near` (memory) in front of `far` (Redis).
///
/// A get answers from `near` when its entry is fresh. Otherwise it asks `far`, which other
/// runners may have refreshed, and keeps whichever entry is fresher, copying a better `far`
/// entry into `near`. Puts and removes go to both, `near` first.
pub struct TwoTier<A, B> {
    near: A,
    far: B,
    clock: Arc<dyn Clock>,
}

impl<A: CacheStore, B: CacheStore> TwoTier<A, B> {
    /// `near` in front of `far`, judging freshness on the system clock.
    pub fn new(near: A, far: B) -> Self {
        Self {
            near,
            far,
            clock: Arc::new(SystemClock),
        }
    }

    /// The same tiers judging freshness against `clock` (use the cache's clock).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The front tier.
    pub fn near(&self) -> &A {
        &self.near
    }

    /// The back tier.
    pub fn far(&self) -> &B {
        &self.far
    }
}

impl<A, B> fmt::Debug for TwoTier<A, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwoTier").finish_non_exhaustive()
    }
}

#[async_trait]
impl<A: CacheStore, B: CacheStore> CacheStore for TwoTier<A, B> {
    async fn get(&self, key: &Key) -> Option<Entry> {
        let near = self.near.get(key).await;
        let now = self.clock.now_unix_ms();
        if near
            .as_ref()
            .is_some_and(|e| e.envelope.freshness(now) == Freshness::Fresh)
        {
            return near;
        }
        match (near, self.far.get(key).await) {
            (Some(n), Some(f)) if f.envelope.fresh_until <= n.envelope.fresh_until => Some(n),
            (_, Some(f)) => {
                self.near.put(key, f.clone()).await;
                Some(f)
            }
            (n, None) => n,
        }
    }

    async fn put(&self, key: &Key, entry: Entry) {
        self.near.put(key, entry.clone()).await;
        self.far.put(key, entry).await;
    }

    async fn remove(&self, key: &Key) {
        self.near.remove(key).await;
        self.far.remove(key).await;
    }

    fn stats(&self) -> StoreStats {
        self.near.stats().plus(self.far.stats())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::envelope::Envelope;
    use crate::key::Namespace;
    use mockall::predicate::always;
    use std::time::Duration;

    fn entry(v: u8) -> Entry {
        Entry::new(
            Envelope::new(0, Duration::from_secs(1), Duration::ZERO),
            vec![v],
        )
    }

    #[tokio::test]
    async fn far_hit_fills_near() {
        let key = Namespace::new("t").unwrap().key("k").unwrap();
        let mut near = MockCacheStore::new();
        let mut far = MockCacheStore::new();
        near.expect_get().times(1).returning(|_| None);
        far.expect_get().times(1).returning(|_| Some(entry(7)));
        near.expect_put()
            .with(always(), mockall::predicate::eq(entry(7)))
            .times(1)
            .return_const(());
        let tiers = TwoTier::new(near, far);
        assert_eq!(tiers.get(&key).await, Some(entry(7)));
    }

    #[tokio::test]
    async fn stale_near_entry_gives_way_to_a_fresher_far_one() {
        let key = Namespace::new("t").unwrap().key("k").unwrap();
        let clock = Arc::new(crate::clock::ManualClock::new(2_000));
        let old = Entry::new(
            Envelope::new(0, Duration::from_secs(1), Duration::from_secs(60)),
            vec![1],
        );
        let new = Entry::new(
            Envelope::new(1_900, Duration::from_secs(1), Duration::ZERO),
            vec![2],
        );
        let mut near = MockCacheStore::new();
        let mut far = MockCacheStore::new();
        let o = old.clone();
        near.expect_get().returning(move |_| Some(o.clone()));
        let n = new.clone();
        far.expect_get()
            .times(1)
            .returning(move |_| Some(n.clone()));
        near.expect_put()
            .with(always(), mockall::predicate::eq(new.clone()))
            .times(1)
            .return_const(());
        let tiers = TwoTier::new(near, far).with_clock(clock);
        assert_eq!(tiers.get(&key).await, Some(new));
    }

    #[tokio::test]
    async fn stale_near_entry_stays_when_far_has_nothing_better() {
        let key = Namespace::new("t").unwrap().key("k").unwrap();
        let clock = Arc::new(crate::clock::ManualClock::new(2_000));
        let stale = Entry::new(
            Envelope::new(0, Duration::from_secs(1), Duration::from_secs(60)),
            vec![1],
        );
        let mut near = MockCacheStore::new();
        let mut far = MockCacheStore::new();
        let s = stale.clone();
        near.expect_get().returning(move |_| Some(s.clone()));
        far.expect_get().times(1).returning(|_| None);
        near.expect_put().never();
        let tiers = TwoTier::new(near, far).with_clock(clock);
        assert_eq!(tiers.get(&key).await, Some(stale));
    }

    #[tokio::test]
    async fn near_hit_skips_far() {
        let key = Namespace::new("t").unwrap().key("k").unwrap();
        let mut near = MockCacheStore::new();
        let mut far = MockCacheStore::new();
        near.expect_get().times(1).returning(|_| Some(entry(1)));
        far.expect_get().never();
        let tiers = TwoTier::new(near, far).with_clock(Arc::new(crate::clock::ManualClock::new(0)));
        assert_eq!(tiers.get(&key).await, Some(entry(1)));
    }

    #[tokio::test]
    async fn writes_go_to_both_tiers() {
        let key = Namespace::new("t").unwrap().key("k").unwrap();
        let mut near = MockCacheStore::new();
        let mut far = MockCacheStore::new();
        near.expect_put().times(1).return_const(());
        far.expect_put().times(1).return_const(());
        near.expect_remove().times(1).return_const(());
        far.expect_remove().times(1).return_const(());
        near.expect_stats().return_const(StoreStats {
            entries: 1,
            bytes: 10,
            evictions: 2,
        });
        far.expect_stats().return_const(StoreStats::default());
        let tiers = TwoTier::new(near, far);
        tiers.put(&key, entry(1)).await;
        tiers.remove(&key).await;
        assert_eq!(
            tiers.stats(),
            StoreStats {
                entries: 1,
                bytes: 10,
                evictions: 2
            }
        );
    }
}
