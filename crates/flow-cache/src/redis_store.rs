//! The Redis backend: one `SET key value PX ms` per put, failures are misses.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::clock::{Clock, SystemClock};
use crate::envelope::{Entry, Envelope};
use crate::error::{Error, ErrorKind, Result};
use crate::key::Key;
use crate::store::CacheStore;

/// The first bytes of every stored value: format tag and version.
const MAGIC: &[u8; 4] = b"FC1\0";
const HEADER: usize = MAGIC.len() + 24;

/// How a [`RedisStore`] connects and how long it may wait.
///
/// The defaults suit a cache on a nearby server: an answer that takes longer than the
/// timeouts is worth less than a miss.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    url: String,
    connect_timeout: Duration,
    response_timeout: Duration,
    op_timeout: Duration,
    reconnect_retries: usize,
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a password: show only the scheme.
        let scheme = self.url.split("://").next().unwrap_or("?");
        f.debug_struct("RedisConfig")
            .field("url", &format_args!("{scheme}://[redacted]"))
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("op_timeout", &self.op_timeout)
            .field("reconnect_retries", &self.reconnect_retries)
            .finish()
    }
}

impl RedisConfig {
    /// A server at `url` (`redis://host:port/db`), with 250 ms connect and response timeouts,
    /// a 1 s bound on each operation and 2 reconnection retries per attempt.
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            connect_timeout: Duration::from_millis(250),
            response_timeout: Duration::from_millis(250),
            op_timeout: Duration::from_secs(1),
            reconnect_retries: 2,
        }
    }

    /// How long one connection attempt may take.
    #[must_use]
    pub fn with_connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// How long the server may take to answer one command.
    #[must_use]
    pub fn with_response_timeout(mut self, d: Duration) -> Self {
        self.response_timeout = d;
        self
    }

    /// The bound on one store operation, reconnection included; past it the operation is a miss.
    #[must_use]
    pub fn with_op_timeout(mut self, d: Duration) -> Self {
        self.op_timeout = d;
        self
    }

    /// Retries of a failed (re)connection before an operation gives up.
    #[must_use]
    pub fn with_reconnect_retries(mut self, n: usize) -> Self {
        self.reconnect_retries = n;
        self
    }
}

/// A [`CacheStore`] in Redis, shared by every runner that points at the same server.
///
/// - Keys are `flow:{namespace}:v1:{hex}` ([`Key::redis_key`]).
/// - A put is one `SET key value PX ms` whose expiry is the envelope's `stale_until`; the value
///   is `FC1\0`, the three envelope timestamps (big-endian u64), then the bytes.
/// - A connection manager reconnects after failures. Any failure (server down, timeout, a value
///   not in this format) is logged with `tracing::warn!` and is a miss; no call waits longer
///   than the operation timeout.
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    clock: Arc<dyn Clock>,
    op_timeout: Duration,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("op_timeout", &self.op_timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store for `config`'s server. Does not connect: the first operation does, so a server
    /// that is down at start-up only means misses.
    ///
    /// Must be called inside a tokio runtime (the connection manager spawns a task).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidConfig`] when the URL does not parse or no tokio runtime is running.
    pub fn new(config: &RedisConfig) -> Result<Self> {
        let invalid = |field, expected| Error::from(ErrorKind::InvalidConfig { field, expected });
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(invalid(
                "runtime",
                "RedisStore::new to be called inside a tokio runtime",
            ));
        }
        let client = redis::Client::open(config.url.as_str())
            .map_err(|_| invalid("redis url", "redis://host:port[/db] or rediss://…"))?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.connect_timeout))
            .set_response_timeout(Some(config.response_timeout))
            .set_number_of_retries(config.reconnect_retries)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(200));
        let conn = ConnectionManager::new_lazy_with_config(client, manager_config)
            .map_err(|_| invalid("redis connection manager", "a valid configuration"))?;
        Ok(Self {
            conn,
            clock: Arc::new(SystemClock),
            op_timeout: config.op_timeout,
        })
    }

    /// The same store computing expiries against `clock` (tests).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    async fn run<T: redis::FromRedisValue>(
        &self,
        op: &'static str,
        key: &Key,
        cmd: &redis::Cmd,
    ) -> Option<T> {
        let mut conn = self.conn.clone();
        match tokio::time::timeout(self.op_timeout, cmd.query_async::<T>(&mut conn)).await {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                tracing::warn!(op, key = %key, error = %e, "flow-cache: redis failed; treating as a miss");
                None
            }
            Err(_) => {
                tracing::warn!(op, key = %key, timeout_ms = self.op_timeout.as_millis() as u64, "flow-cache: redis timed out; treating as a miss");
                None
            }
        }
    }
}

/// The stored form of an entry.
pub(crate) fn encode(entry: &Entry) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + entry.value.len());
    out.extend_from_slice(MAGIC);
    let e = entry.envelope;
    for t in [e.created_at, e.fresh_until, e.stale_until] {
        out.extend_from_slice(&t.to_be_bytes());
    }
    out.extend_from_slice(&entry.value);
    out
}

/// The entry in `bytes`, or `None` when they are not in [`encode`]'s format.
pub(crate) fn decode(bytes: &[u8]) -> Option<Entry> {
    let rest = bytes.strip_prefix(MAGIC)?;
    if rest.len() < 24 {
        return None;
    }
    let t = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&rest[i * 8..i * 8 + 8]);
        u64::from_be_bytes(b)
    };
    let envelope = Envelope {
        created_at: t(0),
        fresh_until: t(1),
        stale_until: t(2),
    };
    if !(envelope.created_at <= envelope.fresh_until
        && envelope.fresh_until <= envelope.stale_until)
    {
        return None;
    }
    Some(Entry::new(envelope, &rest[24..]))
}

#[async_trait]
impl CacheStore for RedisStore {
    async fn get(&self, key: &Key) -> Option<Entry> {
        let bytes: Option<Vec<u8>> = self
            .run("get", key, redis::cmd("GET").arg(key.redis_key()))
            .await?;
        let bytes = bytes?;
        let entry = decode(&bytes);
        if entry.is_none() {
            tracing::warn!(key = %key, len = bytes.len(), "flow-cache: redis value is not a flow-cache entry; treating as a miss");
        }
        entry
    }

    async fn put(&self, key: &Key, entry: Entry) {
        let Some(px) = expiry_ms(entry.envelope.remaining_ms(self.clock.now_unix_ms())) else {
            return; // already past stale_until: nothing worth storing
        };
        let mut cmd = redis::cmd("SET");
        cmd.arg(key.redis_key())
            .arg(encode(&entry))
            .arg("PX")
            .arg(px);
        let _: Option<()> = self.run("set", key, &cmd).await;
    }

    async fn remove(&self, key: &Key) {
        let _: Option<i64> = self
            .run("del", key, redis::cmd("DEL").arg(key.redis_key()))
            .await;
    }
}

/// The longest `PX` sent: Redis rejects an expiry whose deadline overflows a signed 64-bit
/// count of milliseconds, which would make every put of a near-eternal entry fail. 2^62 ms is
/// over a hundred million years, and leaves room for the server's clock.
const MAX_PX_MS: u64 = 1 << 62;

/// The `PX` argument for an entry `remaining_ms` from its `stale_until`, `None` when expired.
fn expiry_ms(remaining_ms: u64) -> Option<u64> {
    (remaining_ms > 0).then(|| remaining_ms.min(MAX_PX_MS))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn encode_decode_round_trip(a in any::<u64>(), b in any::<u64>(), c in any::<u64>(), v in prop::collection::vec(any::<u8>(), 0..64)) {
            let mut t = [a, b, c];
            t.sort_unstable();
            let entry = Entry::new(Envelope { created_at: t[0], fresh_until: t[1], stale_until: t[2] }, v);
            prop_assert_eq!(decode(&encode(&entry)), Some(entry));
        }

        #[test]
        fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&bytes);
        }
    }

    #[test]
    fn expiry_is_capped_below_what_redis_rejects() {
        assert_eq!(expiry_ms(0), None);
        assert_eq!(expiry_ms(1_500), Some(1_500));
        assert_eq!(expiry_ms(u64::MAX), Some(MAX_PX_MS));
        assert!(MAX_PX_MS + 4_102_444_800_000 < i64::MAX as u64); // + 2100-01-01 in ms
    }

    #[test]
    fn foreign_values_are_rejected() {
        assert_eq!(decode(b"hello"), None);
        assert_eq!(decode(b"FC1\0short"), None);
        let bad = Entry::new(
            Envelope {
                created_at: 5,
                fresh_until: 4,
                stale_until: 6,
            },
            vec![],
        );
        assert_eq!(decode(&encode(&bad)), None);
    }

    #[test]
    fn config_debug_hides_the_url() {
        let c = RedisConfig::new("redis://:hunter2@host:6379/0");
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn new_outside_a_runtime_is_an_error_not_a_panic() {
        let e = RedisStore::new(&RedisConfig::new("redis://127.0.0.1:1")).unwrap_err();
        assert!(e.to_string().contains("tokio runtime"), "{e}");
    }

    #[tokio::test]
    async fn bad_url_is_a_config_error() {
        let e = RedisStore::new(&RedisConfig::new("http://nope")).unwrap_err();
        assert!(e.to_string().starts_with("redis url: expected"), "{e}");
    }
}
