//! `flow-cache`: a TTL cache for LLM responses — in memory by default, Redis when runners
//! share it — with single-flight fetches, stale-if-error and metrics.
//!
//! - [`CacheStore`] is the seam: byte values in an [`Envelope`] (`created_at`, `fresh_until`,
//!   `stale_until`, unix ms) under a [`Key`]. Backends: [`MemoryStore`] (LRU from the `cached`
//!   crate, bounded by bytes and entries), [`RedisStore`] (one `SET … PX` per put, failures are
//!   misses) and [`TwoTier`] (memory in front of Redis).
//! - [`Cache`] is the front: [`Cache::get_or_fetch`] serves a fresh hit at once, runs one fetch
//!   per key however many callers wait, refreshes stale values and serves them
//!   ([`Outcome::StaleIfError`]) when the refresh fails transiently. [`Served::outcome`] says
//!   which happened. Errors are never cached.
//! - [`Namespace::key`] derives keys: SHA-256 over canonical JSON (sorted keys) of any
//!   `Serialize` value, with the namespace and a format version.
//! - Time comes from a [`Clock`] ([`SystemClock`], or [`ManualClock`] in tests);
//!   [`Cache::metrics`] returns a [`MetricsSnapshot`] that can also [log](MetricsSnapshot::log)
//!   itself.
//!
//! flow-cache knows nothing of HTTP, LLMs or GitHub.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use flow_cache::{Cache, FetchError, MemoryConfig, Namespace, Outcome, Policy};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), flow_cache::Error> {
//! let cache = Cache::in_memory(MemoryConfig::new().with_max_bytes(64 << 20))?;
//! let request = serde_json::json!({"model": "gpt-4o-mini", "prompt": "label this issue"});
//! let key = Namespace::new("llm")?.key(&request)?;
//! let policy = Policy::new(Duration::from_secs(600)).with_stale(Duration::from_secs(86_400));
//!
//! let first = cache
//!     .get_or_fetch_json(&key, policy, || async { Ok::<_, FetchError>("bug".to_string()) })
//!     .await?;
//! assert_eq!(first.outcome, Outcome::Miss);
//!
//! let second = cache
//!     .get_or_fetch_json(&key, policy, || async { Ok::<_, FetchError>("unused".to_string()) })
//!     .await?;
//! assert_eq!((second.value.as_str(), second.outcome), ("bug", Outcome::Hit));
//! assert_eq!(cache.metrics().fetches, 1);
//! # Ok(())
//! # }
//! ```

// The README's example, compiled and run with the doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod cache;
mod clock;
mod envelope;
mod error;
mod key;
mod memory;
mod metrics;
mod redis_store;
mod store;

pub use cache::{Cache, Outcome, Policy, Served};
pub use clock::{Clock, ManualClock, SystemClock};
pub use envelope::{Entry, Envelope, Freshness, Lookup};
pub use error::{Error, ErrorKind, FetchError, Result};
pub use key::{KEY_VERSION, Key, Namespace};
pub use memory::{ENTRY_OVERHEAD_BYTES, MemoryConfig, MemoryStore};
pub use metrics::MetricsSnapshot;
pub use redis_store::{RedisConfig, RedisStore};
pub use store::{CacheStore, StoreStats, TwoTier};
