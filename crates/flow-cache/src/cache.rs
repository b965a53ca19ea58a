//! The `Cache` front: fresh hits, single-flight fetches, stale-if-error.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::clock::{Clock, SystemClock};
use crate::envelope::{Entry, Envelope, Lookup};
use crate::error::{Error, ErrorKind, FetchError, Result};
use crate::key::Key;
use crate::memory::{MemoryConfig, MemoryStore};
use crate::metrics::{Metrics, MetricsSnapshot, bump};
use crate::store::CacheStore;

/// How one call may use the cache.
///
/// The policy of the caller that runs the fetch decides the stored envelope; callers that join
/// its flight take the result as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// How long a fetched value is fresh.
    pub ttl: Duration,
    /// How long after `ttl` a value may still be served when a refresh fails transiently.
    pub stale: Duration,
    /// Do not write the fetched value (lookups still read the cache).
    pub no_store: bool,
    /// Skip the lookup and fetch (joining a fetch already running for the key).
    pub force_refresh: bool,
}

impl Default for Policy {
    /// Fresh for 5 minutes, no stale window.
    fn default() -> Self {
        Self::new(Duration::from_secs(300))
    }
}

impl Policy {
    /// Fresh for `ttl`, no stale window, stored, looked up.
    #[must_use]
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            stale: Duration::ZERO,
            no_store: false,
            force_refresh: false,
        }
    }

    /// Sets the stale window.
    #[must_use]
    pub fn with_stale(mut self, stale: Duration) -> Self {
        self.stale = stale;
        self
    }

    /// Sets [`Policy::no_store`].
    #[must_use]
    pub fn with_no_store(mut self, no_store: bool) -> Self {
        self.no_store = no_store;
        self
    }

    /// Sets [`Policy::force_refresh`].
    #[must_use]
    pub fn with_force_refresh(mut self, force_refresh: bool) -> Self {
        self.force_refresh = force_refresh;
        self
    }
}

/// How a value was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// A fresh cached value; nothing was fetched.
    Hit,
    /// This call ran the fetch (nothing usable was cached, or a refresh was forced).
    Miss,
    /// Another call was already fetching this key; this one waited for its result.
    Coalesced,
    /// A stale cached value was found and replaced by a fresh fetch.
    Refreshed,
    /// The refresh failed transiently, so the stale cached value was served.
    StaleIfError,
}

impl Outcome {
    /// True when the value served is past its ttl (only [`Outcome::StaleIfError`]).
    #[must_use]
    pub fn is_stale(self) -> bool {
        matches!(self, Self::StaleIfError)
    }

    /// True when the value came from the store rather than from a fetch in this call's flight.
    #[must_use]
    pub fn is_cached(self) -> bool {
        matches!(self, Self::Hit | Self::StaleIfError)
    }
}

/// A value with how it was obtained and its envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served<T> {
    /// The value.
    pub value: T,
    /// How it was obtained.
    pub outcome: Outcome,
    /// Its timestamps (unix ms): `created_at` tells its age.
    pub envelope: Envelope,
}

/// Why a flight produced no value; cloned to every waiter.
#[derive(Debug, Clone)]
enum FlightError {
    Fetch(FetchError),
    Aborted(String),
}

type FlightResult = std::result::Result<Entry, FlightError>;

struct Flight {
    id: u64,
    result: Shared<BoxFuture<'static, FlightResult>>,
}

struct Inner {
    store: Arc<dyn CacheStore>,
    clock: Arc<dyn Clock>,
    flights: Mutex<HashMap<Key, Flight>>,
    next_flight: AtomicU64,
    metrics: Metrics,
}

impl Inner {
    fn flights(&self) -> MutexGuard<'_, HashMap<Key, Flight>> {
        // The map is only ever inserted into or removed from whole; a poisoned lock is usable.
        self.flights
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Removes a flight from the map when its task ends, even by panic.
struct FlightGuard {
    inner: Arc<Inner>,
    key: Key,
    id: u64,
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        let mut flights = self.inner.flights();
        if flights.get(&self.key).is_some_and(|f| f.id == self.id) {
            flights.remove(&self.key);
        }
    }
}

/// A cache front over any [`CacheStore`]: fresh hits, one fetch per key at a time,
/// stale-if-error. Cloning is cheap and clones share everything.
///
/// Values are bytes; [`Cache::get_or_fetch_json`] and friends (de)serialize any serde type.
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("clock", &self.inner.clock)
            .field("metrics", &self.metrics())
            .finish_non_exhaustive()
    }
}

impl Cache {
    /// A cache over `store`, on the system clock.
    pub fn new(store: impl CacheStore + 'static) -> Self {
        Self::from_arc(Arc::new(store))
    }

    /// A cache over a shared store, on the system clock.
    pub fn from_arc(store: Arc<dyn CacheStore>) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                clock: Arc::new(SystemClock),
                flights: Mutex::new(HashMap::new()),
                next_flight: AtomicU64::new(0),
                metrics: Metrics::default(),
            }),
        }
    }

    /// A cache over a new [`MemoryStore`] with `config`'s bounds.
    ///
    /// # Errors
    /// As [`MemoryStore::new`].
    pub fn in_memory(config: MemoryConfig) -> Result<Self> {
        Ok(Self::new(MemoryStore::new(config)?))
    }

    /// The same cache judged against `clock` (a `ManualClock` in tests).
    ///
    /// Call it before sharing the cache: it starts fresh counters and flights.
    #[must_use]
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Self {
        Self {
            inner: Arc::new(Inner {
                store: Arc::clone(&self.inner.store),
                clock,
                flights: Mutex::new(HashMap::new()),
                next_flight: AtomicU64::new(0),
                metrics: Metrics::default(),
            }),
        }
    }

    /// The store behind the cache.
    #[must_use]
    pub fn store(&self) -> &Arc<dyn CacheStore> {
        &self.inner.store
    }

    /// The clock entries are judged against.
    #[must_use]
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// The counters now, with the store's size and evictions.
    #[must_use]
    pub fn metrics(&self) -> MetricsSnapshot {
        let [
            hits,
            stale_hits,
            stale_if_error,
            misses,
            coalesced,
            fetches,
            fetch_errors,
        ] = self.inner.metrics.read();
        let s = self.inner.store.stats();
        MetricsSnapshot {
            hits,
            stale_hits,
            stale_if_error,
            misses,
            coalesced,
            fetches,
            fetch_errors,
            evictions: s.evictions,
            bytes: s.bytes,
            entries: s.entries,
        }
    }

    /// The entry under `key` judged now: fresh, stale (past its ttl, before `stale_until`),
    /// or a miss. Fetches nothing and counts nothing; use it to fall back on a stale answer
    /// when every other way has failed.
    pub async fn get(&self, key: &Key) -> Lookup {
        Lookup::judge(
            self.inner.store.get(key).await,
            self.inner.clock.now_unix_ms(),
        )
    }

    /// [`Cache::get`], decoding the value from JSON.
    ///
    /// # Errors
    /// [`ErrorKind::Decode`] when the stored bytes are not a JSON `T`.
    pub async fn get_json<T: DeserializeOwned>(&self, key: &Key) -> Result<Option<Served<T>>> {
        let (entry, outcome) = match self.get(key).await {
            Lookup::Fresh(e) => (e, Outcome::Hit),
            Lookup::Stale(e) => (e, Outcome::StaleIfError),
            Lookup::Miss => return Ok(None),
        };
        Ok(Some(Served {
            value: decode(&entry.value)?,
            outcome,
            envelope: entry.envelope,
        }))
    }

    /// Stores `value` under `key` as if fetched now with `policy` (ignores `no_store`
    /// and `force_refresh`).
    pub async fn put(&self, key: &Key, value: impl Into<Arc<[u8]>>, policy: Policy) {
        let env = Envelope::new(self.inner.clock.now_unix_ms(), policy.ttl, policy.stale);
        self.inner.store.put(key, Entry::new(env, value)).await;
    }

    /// [`Cache::put`] of `value` encoded as JSON.
    ///
    /// # Errors
    /// [`ErrorKind::Encode`] when `value` cannot be serialized.
    pub async fn put_json<T: Serialize + ?Sized>(
        &self,
        key: &Key,
        value: &T,
        policy: Policy,
    ) -> Result<()> {
        let bytes =
            serde_json::to_vec(value).map_err(|e| Error::from(ErrorKind::Encode(e.to_string())))?;
        self.put(key, bytes, policy).await;
        Ok(())
    }

    /// Removes the entry under `key`.
    pub async fn remove(&self, key: &Key) {
        self.inner.store.remove(key).await;
    }

    /// The value under `key`: a fresh cached one at once, else the result of `fetch`.
    ///
    /// - Concurrent calls for one key share one fetch. It runs in a spawned tokio task (inline
    ///   when no runtime is running), so it completes and is stored even if every caller is
    ///   dropped.
    /// - A stale value is refreshed the same way. If the refresh fails with a
    ///   [`FetchError::transient`] error (or the fetch task dies), the stale value is served as
    ///   [`Outcome::StaleIfError`] until its `stale_until`.
    /// - Errors are never stored.
    ///
    /// # Errors
    /// [`ErrorKind::Fetch`] with the fetch's error when no stale value can stand in;
    /// [`ErrorKind::FetchAborted`] when the fetch task ended without a result.
    pub async fn get_or_fetch<F, Fut>(
        &self,
        key: &Key,
        policy: Policy,
        fetch: F,
    ) -> Result<Served<Arc<[u8]>>>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = std::result::Result<Vec<u8>, FetchError>> + Send + 'static,
    {
        let stale = match self.lookup(key, policy).await {
            Lookup::Fresh(e) => {
                return Ok(Served {
                    value: e.value,
                    outcome: Outcome::Hit,
                    envelope: e.envelope,
                });
            }
            Lookup::Stale(e) => Some(e),
            Lookup::Miss => None,
        };
        self.fly(key, policy, stale, fetch).await
    }

    /// [`Cache::get_or_fetch`] for any serde type, stored as JSON.
    ///
    /// A cached value that no longer decodes as `T` (its type changed) is treated as a miss.
    ///
    /// # Errors
    /// As [`Cache::get_or_fetch`]; also [`ErrorKind::Encode`] when the fetched value cannot be
    /// serialized and [`ErrorKind::Decode`] when a fetched value does not decode as `T`.
    pub async fn get_or_fetch_json<T, F, Fut>(
        &self,
        key: &Key,
        policy: Policy,
        fetch: F,
    ) -> Result<Served<T>>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = std::result::Result<T, FetchError>> + Send + 'static,
    {
        let stale = match self.lookup(key, policy).await {
            Lookup::Fresh(e) => match decode::<T>(&e.value) {
                Ok(value) => {
                    return Ok(Served {
                        value,
                        outcome: Outcome::Hit,
                        envelope: e.envelope,
                    });
                }
                Err(err) => {
                    tracing::warn!(key = %key, error = %err, "flow-cache: cached value does not decode; refetching");
                    None
                }
            },
            Lookup::Stale(e) => decode::<T>(&e.value).ok().map(|v| (e.envelope, v)),
            Lookup::Miss => None,
        };
        let (stale_env, stale_value) = match stale {
            Some((env, v)) => (Some(env), Some(v)),
            None => (None, None),
        };
        let bytes_fetch = move || async move {
            let value = fetch().await?;
            serde_json::to_vec(&value)
                .map_err(|e| FetchError::permanent(Error::from(ErrorKind::Encode(e.to_string()))))
        };
        // The stale bytes are not needed by `fly` beyond their envelope; keep the decoded value.
        let stale_entry = stale_env.map(|env| Entry::new(env, Vec::new()));
        let served = match self.fly(key, policy, stale_entry, bytes_fetch).await {
            Ok(s) => s,
            Err(e) => {
                let encode = e
                    .fetch_error()
                    .and_then(|f| f.downcast_ref::<Error>())
                    .cloned();
                return Err(encode.unwrap_or(e));
            }
        };
        let value = match (served.outcome, stale_value) {
            (Outcome::StaleIfError, Some(v)) => v,
            _ => decode(&served.value)?,
        };
        Ok(Served {
            value,
            outcome: served.outcome,
            envelope: served.envelope,
        })
    }

    /// The lookup `get_or_fetch` starts with, counted.
    async fn lookup(&self, key: &Key, policy: Policy) -> Lookup {
        if policy.force_refresh {
            return Lookup::Miss;
        }
        let m = &self.inner.metrics;
        let found = self.get(key).await;
        match &found {
            Lookup::Fresh(_) => bump(&m.hits),
            Lookup::Stale(_) => bump(&m.stale_hits),
            Lookup::Miss => bump(&m.misses),
        }
        found
    }

    /// Joins the key's flight or starts one, then applies stale-if-error.
    async fn fly<F, Fut>(
        &self,
        key: &Key,
        policy: Policy,
        stale: Option<Entry>,
        fetch: F,
    ) -> Result<Served<Arc<[u8]>>>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = std::result::Result<Vec<u8>, FetchError>> + Send + 'static,
    {
        let (flight, led) = self.join_or_start(key, policy, fetch);
        if !led {
            bump(&self.inner.metrics.coalesced);
        }
        let result = flight.await;
        let transient = match result {
            Ok(entry) => {
                let outcome = match (stale.is_some(), led) {
                    (true, _) => Outcome::Refreshed,
                    (false, true) => Outcome::Miss,
                    (false, false) => Outcome::Coalesced,
                };
                return Ok(Served {
                    value: entry.value,
                    outcome,
                    envelope: entry.envelope,
                });
            }
            Err(FlightError::Fetch(e)) => {
                if !e.is_transient() {
                    return Err(ErrorKind::Fetch(e).into());
                }
                Error::from(ErrorKind::Fetch(e))
            }
            Err(FlightError::Aborted(msg)) => Error::from(ErrorKind::FetchAborted(msg)),
        };
        match stale {
            Some(s) if self.inner.clock.now_unix_ms() < s.envelope.stale_until => {
                bump(&self.inner.metrics.stale_if_error);
                tracing::warn!(key = %key, error = %transient, "flow-cache: refresh failed; serving stale value");
                Ok(Served {
                    value: s.value,
                    outcome: Outcome::StaleIfError,
                    envelope: s.envelope,
                })
            }
            _ => Err(transient),
        }
    }

    /// The running flight for `key` (`false`), or a new one this call started (`true`).
    fn join_or_start<F, Fut>(
        &self,
        key: &Key,
        policy: Policy,
        fetch: F,
    ) -> (Shared<BoxFuture<'static, FlightResult>>, bool)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = std::result::Result<Vec<u8>, FetchError>> + Send + 'static,
    {
        let inner = &self.inner;
        let mut flights = inner.flights();
        if let Some(f) = flights.get(key) {
            return (f.result.clone(), false);
        }
        let id = inner.next_flight.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = futures::channel::oneshot::channel::<FlightResult>();
        let result = rx
            .map(|r| {
                r.unwrap_or_else(|_| {
                    Err(FlightError::Aborted(
                        "the fetch task panicked or was cancelled".into(),
                    ))
                })
            })
            .boxed()
            .shared();
        // Registered before the task can run: the task's guard, which unregisters it, needs
        // the lock held here.
        flights.insert(
            key.clone(),
            Flight {
                id,
                result: result.clone(),
            },
        );
        let guard = FlightGuard {
            inner: Arc::clone(inner),
            key: key.clone(),
            id,
        };
        let task = async move {
            let inner = Arc::clone(&guard.inner);
            bump(&inner.metrics.fetches);
            let out = match fetch().await {
                Ok(bytes) => {
                    let now = inner.clock.now_unix_ms();
                    let env = Envelope::new(now, policy.ttl, policy.stale);
                    let entry = Entry::new(env, bytes);
                    // A zero ttl and stale window make an entry that is dead on arrival.
                    if !policy.no_store && env.stale_until > now {
                        inner.store.put(&guard.key, entry.clone()).await;
                    }
                    Ok(entry)
                }
                Err(e) => {
                    bump(&inner.metrics.fetch_errors);
                    tracing::debug!(key = %guard.key, transient = e.is_transient(), error = %e, "flow-cache: fetch failed; not cached");
                    Err(FlightError::Fetch(e))
                }
            };
            // Unregister only after the put, so a newcomer either joins or finds the value.
            drop(guard);
            let _ = tx.send(out);
        };
        drop(flights);
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(task);
                (result, true)
            }
            Err(_) => {
                // No runtime to spawn on: run the fetch as part of awaiting the result.
                let inline = async move {
                    task.await;
                    result.await
                };
                (inline.boxed().shared(), true)
            }
        }
    }
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::from(ErrorKind::Decode(e.to_string())))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::clock::ManualClock;
    use crate::key::Namespace;
    use crate::store::MockCacheStore;

    #[derive(Debug, thiserror::Error)]
    #[error("boom")]
    struct Boom;

    #[tokio::test]
    async fn errors_and_no_store_results_never_reach_the_store() {
        let mut store = MockCacheStore::new();
        store.expect_get().times(2).returning(|_| None);
        store.expect_put().never();
        let cache = Cache::new(store).with_clock(Arc::new(ManualClock::new(0)));
        let key = Namespace::new("t").unwrap().key("k").unwrap();
        let policy = Policy::default();
        let e = cache
            .get_or_fetch(&key, policy, || async { Err(FetchError::transient(Boom)) })
            .await
            .unwrap_err();
        assert!(e.is_retryable());
        let s = cache
            .get_or_fetch(&key, policy.with_no_store(true), || async {
                Ok(b"v".to_vec())
            })
            .await
            .unwrap();
        assert_eq!(s.outcome, Outcome::Miss);
        // A forced refresh does not even look.
        let s = cache
            .get_or_fetch(
                &key,
                policy.with_no_store(true).with_force_refresh(true),
                || async { Ok(b"w".to_vec()) },
            )
            .await
            .unwrap();
        assert_eq!(&*s.value, b"w");
    }

    #[tokio::test]
    async fn dead_on_arrival_values_are_not_stored() {
        let mut store = MockCacheStore::new();
        store.expect_get().returning(|_| None);
        store.expect_put().never();
        let cache = Cache::new(store).with_clock(Arc::new(ManualClock::new(0)));
        let key = Namespace::new("t").unwrap().key("k").unwrap();
        let s = cache
            .get_or_fetch(&key, Policy::new(Duration::ZERO), || async {
                Ok(b"v".to_vec())
            })
            .await
            .unwrap();
        assert_eq!((&*s.value, s.outcome), (&b"v"[..], Outcome::Miss));
    }

    #[tokio::test]
    async fn fetched_values_are_stored_with_the_leaders_envelope() {
        let mut store = MockCacheStore::new();
        store.expect_get().returning(|_| None);
        store
            .expect_put()
            .withf(|_, e| {
                e.envelope
                    == Envelope {
                        created_at: 500,
                        fresh_until: 510,
                        stale_until: 530,
                    }
                    && &*e.value == b"v"
            })
            .times(1)
            .return_const(());
        let cache = Cache::new(store).with_clock(Arc::new(ManualClock::new(500)));
        let key = Namespace::new("t").unwrap().key("k").unwrap();
        let policy = Policy::new(Duration::from_millis(10)).with_stale(Duration::from_millis(20));
        cache
            .get_or_fetch(&key, policy, || async { Ok(b"v".to_vec()) })
            .await
            .unwrap();
    }
}
