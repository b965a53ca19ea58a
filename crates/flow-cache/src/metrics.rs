//! Counters kept by a [`Cache`](crate::Cache).

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters (atomics); read them through [`Cache::metrics`](crate::Cache::metrics).
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub(crate) hits: AtomicU64,
    pub(crate) stale_hits: AtomicU64,
    pub(crate) stale_if_error: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) coalesced: AtomicU64,
    pub(crate) fetches: AtomicU64,
    pub(crate) fetch_errors: AtomicU64,
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    pub(crate) fn read(&self) -> [u64; 7] {
        [
            &self.hits,
            &self.stale_hits,
            &self.stale_if_error,
            &self.misses,
            &self.coalesced,
            &self.fetches,
            &self.fetch_errors,
        ]
        .map(|c| c.load(Ordering::Relaxed))
    }
}

/// A point-in-time copy of a cache's counters and its store's size.
///
/// Counters only grow. A caller of `get_or_fetch` counts once as exactly one of `hits`,
/// `stale_hits` or `misses` (unless it forced a refresh), and may then also count in
/// `coalesced` or `stale_if_error`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct MetricsSnapshot {
    /// Fresh values served from the store.
    pub hits: u64,
    /// Lookups that found a stale value (and so refreshed it).
    pub stale_hits: u64,
    /// Stale values served because the refresh failed with a transient error.
    pub stale_if_error: u64,
    /// Lookups that found nothing usable.
    pub misses: u64,
    /// Callers that waited for a fetch another caller had started instead of fetching.
    pub coalesced: u64,
    /// Fetches run.
    pub fetches: u64,
    /// Fetches that failed (each counted once, however many callers waited on it).
    pub fetch_errors: u64,
    /// Entries the store evicted to respect its bounds.
    pub evictions: u64,
    /// Bytes the store holds (memory tiers; 0 for Redis).
    pub bytes: u64,
    /// Entries the store holds (memory tiers; 0 for Redis).
    pub entries: u64,
}

impl MetricsSnapshot {
    /// Emits the snapshot as one `tracing` event at INFO, target `flow_cache::metrics`.
    pub fn log(&self) {
        tracing::info!(
            target: "flow_cache::metrics",
            hits = self.hits,
            stale_hits = self.stale_hits,
            stale_if_error = self.stale_if_error,
            misses = self.misses,
            coalesced = self.coalesced,
            fetches = self.fetches,
            fetch_errors = self.fetch_errors,
            evictions = self.evictions,
            bytes = self.bytes,
            entries = self.entries,
            "cache metrics"
        );
    }
}
