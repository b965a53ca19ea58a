//! The Redis primitives `flow serve` replicas coordinate through.
//!
//! Keys, under a prefix (`flow` by default); repository names are lower-cased (GitHub treats
//! them case-insensitively):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `{prefix}:delivery:{id}` | string, `PX` | an `X-GitHub-Delivery` seen (de-duplication window) |
//! | `{prefix}:inbox:{owner/name}` | stream | accepted events not yet acknowledged, oldest first |
//! | `{prefix}:pending` | set | repositories whose inbox is not empty |
//! | `{prefix}:lease:{owner/name}` | string, `PX` | the fencing token of the replica working on it |
//! | `{prefix}:fence:{owner/name}` | counter | the last fencing token handed out |
//! | `{prefix}:state:{owner/name}` | hash | the repository's [`MonitorState`](crate::state::MonitorState) ([`RedisStateStore`]) |
//!
//! Why a stream read by range rather than a consumer group: the lease already makes one
//! replica at a time the only reader of a repository's inbox, so there is nothing to share out.
//! The holder reads the oldest entries ([`RedisCoordinator::inbox`]), runs them, saves the
//! state, and only then deletes them ([`RedisCoordinator::ack`]). A holder that dies leaves its
//! entries where they were; its lease expires and the next holder reads the same entries again
//! (the saved state's cursor makes a run observed twice count once). A consumer group would add
//! a pending-entries list and `XAUTOCLAIM` that duplicate what the lease's expiry already does.
//!
//! Every step that must not be split is one Lua script: accept (de-duplicate, append, mark
//! pending), acquire (check free, hand out the next token), renew and release (only by the
//! token's holder; release refuses while the inbox holds events, so an event accepted while
//! the holder was finishing is never stranded), acknowledge (only by the holder; clears the
//! pending mark when the inbox is empty) and the fenced state save.
//!
//! What survives what: a replica's death loses nothing accepted (the entry is in Redis before
//! the webhook is answered); Redis' own restarts are covered by its persistence settings
//! (`appendonly yes`), which are the operator's. Redis Cluster is not supported: a script
//! touches a repository's keys and the shared pending set together.

use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};
use crate::state::{Fence, RedisStateStore, connect_redis, redacted};
use crate::time::{Clock, SystemClock};

/// How long a delivery id is remembered by default: GitHub redelivers on request for 3 days.
pub const DEFAULT_DELIVERY_TTL: Duration = Duration::from_secs(3 * 24 * 3600);

/// How long a lease lasts without renewal by default.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(30);

/// Most events read or acknowledged at once.
pub const MAX_BATCH: usize = 1000;

/// De-duplicate by delivery, append to the inbox, mark the repository pending.
/// KEYS: delivery, inbox, pending. ARGV: ttl ms, repository, delivery, kind, payload, at ms.
const ACCEPT: &str = r"
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return false end
local id = redis.call('XADD', KEYS[2], '*', 'delivery', ARGV[3], 'kind', ARGV[4], 'payload', ARGV[5], 'at', ARGV[6])
redis.call('SADD', KEYS[3], ARGV[2])
return id
";

/// Hand out the next fencing token when the lease is free. KEYS: lease, fence. ARGV: ttl ms.
const ACQUIRE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local t = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], t, 'PX', ARGV[1])
return t
";

/// Extend the lease, only by its holder. KEYS: lease. ARGV: token, ttl ms.
const RENEW: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
";

/// Give the lease up, only by its holder, and (unless forced) only with an empty inbox.
/// KEYS: lease, inbox. ARGV: token, force (`1`). Answers 1 released, 0 more work, -1 not held.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
if ARGV[2] ~= '1' and redis.call('XLEN', KEYS[2]) > 0 then return 0 end
redis.call('DEL', KEYS[1])
return 1
";

/// Delete handled entries, only by the lease holder; clear the pending mark when empty.
/// KEYS: lease, inbox, pending. ARGV: token, repository, entry ids… Answers the entries
/// deleted, -1 when the lease is not held.
const ACK: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local n = 0
if #ARGV > 2 then n = redis.call('XDEL', KEYS[2], unpack(ARGV, 3)) end
if redis.call('XLEN', KEYS[2]) == 0 then
  redis.call('DEL', KEYS[2])
  redis.call('SREM', KEYS[3], ARGV[2])
end
return n
";

/// A replica's right to work on one repository until it expires, with its fencing token.
///
/// Tokens grow with every acquisition of the repository's lease, so a save made under an
/// older token is recognisably stale ([`RedisCoordinator::state_store`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    repository: String,
    token: u64,
}

impl Lease {
    /// The repository, `owner/name`, lower-cased.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The fencing token.
    pub fn token(&self) -> u64 {
        self.token
    }
}

/// What [`RedisCoordinator::release`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Released {
    /// The lease is free.
    Released,
    /// Kept: events arrived in the inbox meanwhile; drain them and release again.
    MoreWork,
    /// The lease had expired or passed to another replica.
    NotHeld,
}

/// One accepted event, as stored in a repository's inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxEvent {
    /// The stream entry id (`ms-seq`), what [`RedisCoordinator::ack`] takes.
    pub entry: String,
    /// The `X-GitHub-Delivery` id.
    pub delivery: String,
    /// The `X-GitHub-Event` name (`workflow_run`, `workflow_job`).
    pub kind: String,
    /// The request body as received.
    pub payload: Vec<u8>,
    /// When it was accepted, unix ms.
    pub accepted_at_ms: i64,
}

/// The Redis side of replica coordination: delivery de-duplication, durable per-repository
/// inboxes, the set of repositories with pending work, and per-repository leases with fencing
/// tokens. Cheap to clone (one multiplexed connection that reconnects by itself).
#[derive(Clone)]
pub struct RedisCoordinator {
    conn: ::redis::aio::ConnectionManager,
    url_shown: String,
    prefix: String,
    delivery_ttl: Duration,
    lease_ttl: Duration,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for RedisCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCoordinator")
            .field("at", &self.describe())
            .field("delivery_ttl", &self.delivery_ttl)
            .field("lease_ttl", &self.lease_ttl)
            .finish_non_exhaustive()
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// `owner/name` (GitHub's characters), lower-cased; else an error naming the field.
fn repository_key(repository: &str) -> Result<String> {
    let ok = repository.split_once('/').is_some_and(|(o, n)| {
        let part = |s: &str| {
            !s.is_empty()
                && s.len() <= 100
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        };
        part(o) && part(n)
    });
    if ok {
        Ok(repository.to_ascii_lowercase())
    } else {
        Err(Error::invalid(
            "repository",
            format!(
                "expected `owner/name` of letters, digits, `-`, `_` and `.`, got `{}`",
                repository.escape_debug()
            ),
        ))
    }
}

fn delivery_key(delivery: &str) -> Result<&str> {
    if delivery.is_empty()
        || delivery.len() > 100
        || !delivery
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(Error::invalid(
            "X-GitHub-Delivery",
            format!(
                "expected a GUID (letters, digits and `-`, at most 100), got `{}`",
                delivery
                    .chars()
                    .take(100)
                    .collect::<String>()
                    .escape_debug()
            ),
        ));
    }
    Ok(delivery)
}

impl RedisCoordinator {
    /// Connects to `url` (`redis://[:password@]host:port[/db]` or `rediss://…`) with keys
    /// under `prefix` (`flow` when empty).
    ///
    /// # Errors
    /// [`ErrorKind::State`] when the URL is invalid or the server unreachable.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self> {
        let prefix = if prefix.is_empty() { "flow" } else { prefix };
        let url_shown = redacted(url);
        let conn = connect_redis(url, &url_shown).await?;
        Ok(Self {
            conn,
            url_shown,
            prefix: prefix.to_owned(),
            delivery_ttl: DEFAULT_DELIVERY_TTL,
            lease_ttl: DEFAULT_LEASE_TTL,
            clock: Arc::new(SystemClock),
        })
    }

    /// Remembers delivery ids for `ttl` (default [`DEFAULT_DELIVERY_TTL`]).
    #[must_use]
    pub fn with_delivery_ttl(mut self, ttl: Duration) -> Self {
        self.delivery_ttl = ttl;
        self
    }

    /// Leases last `ttl` without renewal (default [`DEFAULT_LEASE_TTL`]); renew well within it.
    #[must_use]
    pub fn with_lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl;
        self
    }

    /// Stamps accepted events with `clock`'s time.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// How long a lease lasts without renewal.
    pub fn lease_ttl(&self) -> Duration {
        self.lease_ttl
    }

    /// The server (password redacted) and prefix, for messages.
    pub fn describe(&self) -> String {
        format!("{}#{}", self.url_shown, self.prefix)
    }

    fn key(&self, kind: &str, name: &str) -> String {
        format!("{}:{kind}:{name}", self.prefix)
    }

    fn pending_key(&self) -> String {
        format!("{}:pending", self.prefix)
    }

    fn fail(&self, what: &str, e: &::redis::RedisError) -> Error {
        Error::new(ErrorKind::Coordination {
            origin: self.describe(),
            detail: format!("{what}: {e}"),
        })
    }

    /// Records `delivery` as seen; `true` the first time within the de-duplication window.
    /// For deliveries that are answered without being queued (`ping`, ignored events).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] for an id that is not a GUID;
    /// [`ErrorKind::Coordination`] when Redis fails.
    pub async fn first_delivery(&self, delivery: &str) -> Result<bool> {
        let key = self.key("delivery", delivery_key(delivery)?);
        let mut conn = self.conn.clone();
        let set: Option<String> = ::redis::cmd("SET")
            .arg(&key)
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(millis(self.delivery_ttl))
            .query_async(&mut conn)
            .await
            .map_err(|e| self.fail("cannot record the delivery", &e))?;
        Ok(set.is_some())
    }

    /// Durably accepts one delivery for `repository`, in one step: unless `delivery` was seen
    /// within the window, appends it to the repository's inbox and marks the repository
    /// pending. Answers the inbox entry id, `None` for a duplicate. Once this returns, the
    /// event outlives the process: answer the webhook only after it.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] for a bad repository or delivery id;
    /// [`ErrorKind::Coordination`] when Redis fails (nothing was recorded: answer 503 so
    /// GitHub shows the failure and it can be redelivered).
    pub async fn accept(
        &self,
        repository: &str,
        delivery: &str,
        kind: &str,
        payload: &[u8],
    ) -> Result<Option<String>> {
        let repo = repository_key(repository)?;
        let dkey = self.key("delivery", delivery_key(delivery)?);
        let mut conn = self.conn.clone();
        ::redis::Script::new(ACCEPT)
            .key(dkey)
            .key(self.key("inbox", &repo))
            .key(self.pending_key())
            .arg(millis(self.delivery_ttl))
            .arg(&repo)
            .arg(delivery)
            .arg(kind)
            .arg(payload)
            .arg(self.clock.now_ms())
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.fail("cannot accept the delivery", &e))
    }

    /// Takes the lease of `repository` when it is free; `None` when another replica holds it.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] for a bad repository; [`ErrorKind::Coordination`].
    pub async fn try_lease(&self, repository: &str) -> Result<Option<Lease>> {
        let repo = repository_key(repository)?;
        let mut conn = self.conn.clone();
        let token: Option<u64> = ::redis::Script::new(ACQUIRE)
            .key(self.key("lease", &repo))
            .key(self.key("fence", &repo))
            .arg(millis(self.lease_ttl))
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.fail("cannot take the lease", &e))?;
        Ok(token.map(|token| Lease {
            repository: repo,
            token,
        }))
    }

    /// Extends `lease` by the lease TTL; `false` when it had expired or passed to another
    /// replica (stop working on the repository).
    ///
    /// # Errors
    /// [`ErrorKind::Coordination`].
    pub async fn renew(&self, lease: &Lease) -> Result<bool> {
        let mut conn = self.conn.clone();
        let n: i64 = ::redis::Script::new(RENEW)
            .key(self.key("lease", &lease.repository))
            .arg(lease.token)
            .arg(millis(self.lease_ttl))
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.fail("cannot renew the lease", &e))?;
        Ok(n == 1)
    }

    /// Gives `lease` up when its inbox is empty ([`Released::MoreWork`] otherwise: drain and
    /// release again). `force` releases regardless (shutting down: the events stay pending
    /// for another replica).
    ///
    /// # Errors
    /// [`ErrorKind::Coordination`].
    pub async fn release(&self, lease: &Lease, force: bool) -> Result<Released> {
        let mut conn = self.conn.clone();
        let n: i64 = ::redis::Script::new(RELEASE)
            .key(self.key("lease", &lease.repository))
            .key(self.key("inbox", &lease.repository))
            .arg(lease.token)
            .arg(if force { "1" } else { "0" })
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.fail("cannot release the lease", &e))?;
        Ok(match n {
            1 => Released::Released,
            0 => Released::MoreWork,
            _ => Released::NotHeld,
        })
    }

    /// The oldest `max` (at most [`MAX_BATCH`]) events of the leased repository's inbox,
    /// oldest first. They stay there until [`RedisCoordinator::ack`].
    ///
    /// # Errors
    /// [`ErrorKind::Coordination`], or when an entry is not one this crate wrote.
    pub async fn inbox(&self, lease: &Lease, max: usize) -> Result<Vec<InboxEvent>> {
        let mut conn = self.conn.clone();
        type Entry = (String, Vec<(String, Vec<u8>)>);
        let entries: Vec<Entry> = ::redis::cmd("XRANGE")
            .arg(self.key("inbox", &lease.repository))
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(max.clamp(1, MAX_BATCH))
            .query_async(&mut conn)
            .await
            .map_err(|e| self.fail("cannot read the inbox", &e))?;
        entries
            .into_iter()
            .map(|(entry, fields)| {
                let mut event = InboxEvent {
                    entry,
                    delivery: String::new(),
                    kind: String::new(),
                    payload: Vec::new(),
                    accepted_at_ms: 0,
                };
                for (name, value) in fields {
                    match name.as_str() {
                        "delivery" => event.delivery = String::from_utf8_lossy(&value).into(),
                        "kind" => event.kind = String::from_utf8_lossy(&value).into(),
                        "payload" => event.payload = value,
                        "at" => {
                            event.accepted_at_ms =
                                String::from_utf8_lossy(&value).parse().unwrap_or(0);
                        }
                        _ => {}
                    }
                }
                if event.delivery.is_empty() || event.kind.is_empty() {
                    return Err(Error::new(ErrorKind::Coordination {
                        origin: self.describe(),
                        detail: format!(
                            "inbox entry {} of {} has no `delivery` or `kind` field: not written by flow",
                            event.entry, lease.repository
                        ),
                    }));
                }
                Ok(event)
            })
            .collect()
    }

    /// Deletes handled inbox entries (after the state recording them is saved) and clears the
    /// repository's pending mark when its inbox is empty. Answers `false`, deleting nothing,
    /// when the lease is no longer held: the successor handles the entries again.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] for more than [`MAX_BATCH`] entries;
    /// [`ErrorKind::Coordination`].
    pub async fn ack(&self, lease: &Lease, entries: &[String]) -> Result<bool> {
        if entries.len() > MAX_BATCH {
            return Err(Error::invalid(
                "entries",
                format!(
                    "at most {MAX_BATCH} per acknowledgement, got {}",
                    entries.len()
                ),
            ));
        }
        let mut conn = self.conn.clone();
        let ack = ::redis::Script::new(ACK);
        let mut call = ack.prepare_invoke();
        call.key(self.key("lease", &lease.repository))
            .key(self.key("inbox", &lease.repository))
            .key(self.pending_key())
            .arg(lease.token)
            .arg(&lease.repository);
        for e in entries {
            call.arg(e);
        }
        let n: i64 = call
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.fail("cannot acknowledge", &e))?;
        Ok(n >= 0)
    }

    /// Repositories with accepted events not yet acknowledged, whoever accepted them: work a
    /// replica picks up when their lease is free (a dead replica's included).
    ///
    /// # Errors
    /// [`ErrorKind::Coordination`].
    pub async fn pending(&self) -> Result<Vec<String>> {
        let mut conn = self.conn.clone();
        let mut repos: Vec<String> = ::redis::cmd("SMEMBERS")
            .arg(self.pending_key())
            .query_async(&mut conn)
            .await
            .map_err(|e| self.fail("cannot list pending repositories", &e))?;
        repos.sort();
        Ok(repos)
    }

    /// The state store of the leased repository (`{prefix}:state:{owner/name}`), fenced by the
    /// lease: once it is lost, saves fail with [`ErrorKind::LeaseLost`] and write nothing.
    pub fn state_store(&self, lease: &Lease) -> RedisStateStore {
        let key = self.key("state", &lease.repository);
        let shown = format!("{}#{key}", self.url_shown);
        RedisStateStore::from_connection(self.conn.clone(), key, shown).fenced(Fence {
            key: self.key("lease", &lease.repository),
            token: lease.token,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn repository_names_are_checked_and_lower_cased() {
        assert_eq!(
            repository_key("Octo-Org/Hello.World_2").unwrap(),
            "octo-org/hello.world_2"
        );
        for bad in ["", "octo", "/x", "x/", "a/b/c", "a b/c", "a/b:c", "a/{b}"] {
            let e = repository_key(bad).unwrap_err().to_string();
            assert!(
                e.contains("repository") && e.contains("owner/name"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn delivery_ids_must_be_guids() {
        assert!(delivery_key("72d3162e-cc78-11e3-81ab-4c9367dc0958").is_ok());
        for bad in ["", "a:b", "x y", &"a".repeat(101)] {
            let e = delivery_key(bad).unwrap_err().to_string();
            assert!(e.contains("X-GitHub-Delivery"), "{e}");
        }
    }
}
