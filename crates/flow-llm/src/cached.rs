//! The cache decorator over flow-cache: fresh hits, single flight, stale-if-error.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use flow_cache::{Cache, FetchError, Key, Lookup, Namespace, Outcome, Policy};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::Instrument;

use crate::error::{Error, ErrorKind, Result};
use crate::model::ChatModel;
use crate::protocol::{CacheStatus, ChatRequest, ChatResponse, ResponseMeta};

/// The default time a cached answer stays fresh.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(3600);
/// The default time after the TTL during which a stale answer may stand in when every model
/// fails.
pub const DEFAULT_STALE: Duration = Duration::from_secs(7 * 24 * 3600);

/// What is stored: the response and where it came from.
#[derive(Serialize, Deserialize)]
struct Stored {
    response: ChatResponse,
    provider: String,
    model: String,
    fallback_index: usize,
    request_id: Option<String>,
    attempts: u32,
    latency_ms: u64,
}

impl Stored {
    fn new(response: ChatResponse) -> Self {
        Self {
            provider: response.meta.provider.clone(),
            model: response.meta.model.clone(),
            fallback_index: response.meta.fallback_index,
            request_id: response.meta.request_id.clone(),
            attempts: response.meta.attempts,
            latency_ms: u64::try_from(response.meta.latency.as_millis()).unwrap_or(u64::MAX),
            response,
        }
    }

    /// The response with its origin; attempts and latency only for a miss (this call's work;
    /// the caller sets the failed attempts behind a stale answer).
    fn into_response(self, cache: CacheStatus) -> ChatResponse {
        let fresh = cache == CacheStatus::Miss;
        let mut r = self.response;
        r.meta = ResponseMeta {
            provider: self.provider,
            model: self.model,
            attempts: if fresh { self.attempts.max(1) } else { 0 },
            fallback_index: self.fallback_index,
            cache,
            request_id: self.request_id,
            latency: if fresh {
                Duration::from_millis(self.latency_ms)
            } else {
                Duration::ZERO
            },
        };
        r
    }
}

thread_local! {
    /// A reused buffer for the canonical request: no allocation per key, and one SHA-256
    /// update over the whole text instead of one per JSON fragment.
    static KEY_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Caches answers of the inner model in a [`flow_cache::Cache`].
///
/// - The key is a SHA-256 of the canonical request (the wire JSON: model, messages, every
///   parameter, the schema; fields in a fixed order) with the scope (the base URL) and the
///   crate version.
/// - TTL per call ([`ChatRequest::with_cache_ttl`]); [`ChatRequest::with_no_store`] bypasses
///   the cache.
/// - Single flight: identical concurrent calls make one call to the inner model; the others
///   get [`CacheStatus::Coalesced`].
/// - Fresh answers are also kept decoded in process (up to 1024), so a hit skips JSON
///   decoding. The flow-cache store stays the source of truth: every hit looks the entry up
///   there and serves the decoded answer only while the stored bytes are the ones it was
///   decoded from, so an entry removed or replaced in the store (by
///   [`ChatModel::invalidate`], [`Cache::remove`] on another handle, or another process) is
///   never served from the in-process tier.
/// - Answers the caller rejects are dropped: [`ChatModel::invalidate`] removes the request's
///   entry from the store and the in-process tier ([`crate::delegate()`] calls it when an
///   answer fails local schema validation, so an invalid answer is not served again).
/// - Stale-if-error: when the inner model fails with an error another attempt could cure
///   (retryable or fallbackable: 5xx, 429, timeouts, an exhausted fallback chain) and a stale
///   answer is within its stale window, it is served with [`CacheStatus::Stale`].
pub struct Cached<M> {
    inner: Arc<M>,
    cache: Cache,
    namespace: Namespace,
    scope: String,
    ttl: Duration,
    stale: Duration,
    hot: Mutex<HashMap<Key, Hot>>,
}

/// Decoded fresh answers kept in process, so a hit skips JSON decoding; cleared when full.
const HOT_CAPACITY: usize = 1024;

/// An answer kept decoded in process, with the stored bytes it was decoded from.
struct Hot {
    bytes: Arc<[u8]>,
    response: ChatResponse,
}

impl<M> fmt::Debug for Cached<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cached")
            .field("scope", &self.scope)
            .field("ttl", &self.ttl)
            .field("stale", &self.stale)
            .finish_non_exhaustive()
    }
}

impl<M: ChatModel + 'static> Cached<M> {
    /// Wraps `inner` with `cache`, keys scoped to `scope` (use the base URL).
    ///
    /// # Errors
    /// [`ErrorKind::Cache`] if flow-cache rejects the `flow-llm` namespace.
    pub fn new(inner: M, cache: Cache, scope: impl Into<String>) -> Result<Self> {
        let namespace = Namespace::new("flow-llm").map_err(|e| {
            Error::new(
                ErrorKind::Cache,
                format!("the cache namespace is invalid: {e}"),
            )
        })?;
        Ok(Self {
            inner: Arc::new(inner),
            cache,
            namespace,
            scope: scope.into(),
            ttl: DEFAULT_CACHE_TTL,
            stale: DEFAULT_STALE,
            hot: Mutex::new(HashMap::new()),
        })
    }

    /// Sets the default TTL (a request's own TTL wins).
    #[must_use]
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Sets the stale window after the TTL.
    #[must_use]
    pub fn with_stale(mut self, stale: Duration) -> Self {
        self.stale = stale;
        self
    }

    /// The cache.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// The cache key of `request`.
    ///
    /// # Errors
    /// [`ErrorKind::Cache`] when the request cannot be serialized.
    pub fn key(&self, request: &ChatRequest) -> Result<Key> {
        let digest = KEY_BUF.with(|buf| {
            let mut buf = buf.borrow_mut();
            buf.clear();
            serde_json::to_writer(&mut *buf, request).map_err(|e| {
                Error::new(
                    ErrorKind::Cache,
                    format!("the request could not be hashed for the cache: {e}"),
                )
            })?;
            let mut h = Sha256::new();
            h.update(b"flow-llm\0");
            h.update(env!("CARGO_PKG_VERSION").as_bytes());
            h.update(b"\0");
            h.update(self.scope.as_bytes());
            h.update(b"\0");
            h.update(&buf[..]);
            // Do not keep a huge buffer alive for the rest of the thread's life.
            if buf.capacity() > 1 << 20 {
                *buf = Vec::new();
            }
            Ok::<_, Error>(h.finalize())
        })?;
        Ok(self.namespace.key_from_digest(digest.into()))
    }
}

fn decode(bytes: &[u8], status: CacheStatus) -> Option<ChatResponse> {
    serde_json::from_slice::<Stored>(bytes)
        .ok()
        .map(|s| s.into_response(status))
}

#[async_trait]
impl<M: ChatModel + 'static> ChatModel for Cached<M> {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse> {
        if request.options.no_store {
            return self.inner.complete(request).await;
        }
        let span = tracing::debug_span!("flow.llm.cache", cache = tracing::field::Empty);
        let result = self.lookup_or_call(request).instrument(span.clone()).await;
        if let Ok(r) = &result {
            span.record("cache", tracing::field::debug(r.meta.cache));
        }
        result
    }

    /// Removes the request's entry from the store and the in-process tier, then passes the
    /// call on (a cache further in may hold it too).
    async fn invalidate(&self, request: &ChatRequest) {
        match self.key(request) {
            Ok(key) => {
                self.hot().remove(&key);
                self.cache.remove(&key).await;
                tracing::debug!(key = %key, "dropped a rejected answer from the cache");
            }
            Err(e) => tracing::warn!(error = %e, "could not drop a rejected answer: no key"),
        }
        self.inner.invalidate(request).await;
    }

    /// A fresh hit from this cache, else whatever a layer further in keeps.
    async fn peek(&self, request: &ChatRequest) -> Option<ChatResponse> {
        if !request.options.no_store
            && let Ok(key) = self.key(request)
            && let Some(r) = self.fresh(&key).await
        {
            return Some(r);
        }
        self.inner.peek(request).await
    }
}

impl<M: ChatModel + 'static> Cached<M> {
    fn hot(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Hot>> {
        // Entries are inserted and removed whole; a poisoned lock is still consistent.
        self.hot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The decoded answer kept in process for `key`, if it was decoded from `bytes` (the
    /// fresh entry the store holds now).
    fn hot_get(&self, key: &Key, bytes: &Arc<[u8]>) -> Option<ChatResponse> {
        let hot = self.hot();
        let kept = hot.get(key)?;
        (Arc::ptr_eq(&kept.bytes, bytes) || kept.bytes[..] == bytes[..])
            .then(|| kept.response.clone())
    }

    /// Keeps `response` (already marked as a hit), decoded from `bytes`.
    fn hot_put(&self, key: Key, bytes: Arc<[u8]>, response: ChatResponse) {
        let mut hot = self.hot();
        if hot.len() >= HOT_CAPACITY {
            hot.clear();
        }
        hot.insert(key, Hot { bytes, response });
    }

    /// The fresh answer stored under `key`, as a hit: no decoding when the in-process tier
    /// holds the answer decoded from these very bytes.
    async fn fresh(&self, key: &Key) -> Option<ChatResponse> {
        let Lookup::Fresh(entry) = self.cache.get(key).await else {
            return None;
        };
        if let Some(r) = self.hot_get(key, &entry.value) {
            return Some(r);
        }
        let r = decode(&entry.value, CacheStatus::Hit)?;
        self.hot_put(key.clone(), entry.value, r.clone());
        Some(r)
    }

    async fn lookup_or_call(&self, request: &ChatRequest) -> Result<ChatResponse> {
        let key = self.key(request)?;
        // Fast path: a fresh hit needs no clone of the request.
        if let Some(r) = self.fresh(&key).await {
            return Ok(r);
        }
        let policy =
            Policy::new(request.options.cache_ttl.unwrap_or(self.ttl)).with_stale(self.stale);
        let inner = Arc::clone(&self.inner);
        let req = request.clone();
        // The API attempts of this caller's own fetch when it fails (none when it shared
        // another caller's fetch), so a stale answer still reports the traffic behind it.
        let spent = Arc::new(AtomicU32::new(0));
        let spent_by_fetch = Arc::clone(&spent);
        let fetch = move || async move {
            match inner.complete(&req).await {
                Ok(r) => Ok(Stored::new(r)),
                Err(e) => {
                    spent_by_fetch.store(e.attempts().max(1), Ordering::Relaxed);
                    if e.is_retryable() || e.is_fallbackable() {
                        Err(FetchError::transient(e))
                    } else {
                        Err(FetchError::permanent(e))
                    }
                }
            }
        };
        let served = self
            .cache
            .get_or_fetch_json::<Stored, _, _>(&key, policy, fetch)
            .await;
        match served {
            Ok(s) => {
                let status = match s.outcome {
                    Outcome::Hit => CacheStatus::Hit,
                    Outcome::Coalesced => CacheStatus::Coalesced,
                    Outcome::StaleIfError => CacheStatus::Stale,
                    _ => CacheStatus::Miss,
                };
                let mut r = s.value.into_response(status);
                if status == CacheStatus::Stale {
                    r.meta.attempts = spent.load(Ordering::Relaxed);
                    tracing::warn!(key = %key, "every model failed: serving a stale cached answer");
                }
                Ok(r)
            }
            Err(e) => {
                if let Some(mine) = e.fetch_error().and_then(|f| f.downcast_ref::<Error>()) {
                    return Err(mine.clone());
                }
                Err(
                    Error::new(ErrorKind::Cache, format!("the answer cache failed: {e}"))
                        .with_source(e),
                )
            }
        }
    }
}
