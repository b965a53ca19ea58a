//! [`RedisCoordinator`]: the [`Coordinator`] of `flow serve` replicas sharing one Redis.
//!
//! Keys, under a prefix (`flow` by default); repository names are lower-cased (GitHub treats
//! them case-insensitively):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `{prefix}:delivery:{id}` | string, `PX` | an `X-GitHub-Delivery` seen (de-duplication window) |
//! | `{prefix}:seen:{key}` | string, `PX` | a [`Coordinator::first_seen`] key |
//! | `{prefix}:inbox:{owner/name}` | stream | accepted events not yet acknowledged, oldest first |
//! | `{prefix}:pending` | set | repositories whose inbox is not empty |
//! | `{prefix}:lease:{owner/name}` | string, `PX` | the fencing token of the replica working on it |
//! | `{prefix}:fence:{owner/name}` | counter | the last fencing token handed out |
//! | `{prefix}:state:{owner/name}` | hash | the repository's [`MonitorState`](crate::state::MonitorState) ([`RedisStateStore`]) |
//!
//! Why a stream read by range rather than a consumer group: the lease already makes one
//! replica at a time the only reader of a repository's inbox, so there is nothing to share out.
//! The holder reads the oldest entries ([`Coordinator::inbox`]), runs them, saves the state,
//! and only then deletes them ([`Coordinator::ack`]). A holder that dies leaves its
//! entries where they were; its lease expires and the next holder reads the same entries again
//! (the saved state's cursor makes a run observed twice count once). A consumer group would add
//! a pending-entries list and `XAUTOCLAIM` that duplicate what the lease's expiry already does.
//!
//! Every step that must not be split is one Lua script: accept (de-duplicate, append, mark
//! pending), acquire (check free, hand out the next token), renew, read, acknowledge (only by
//! the token's holder; the acknowledgement clears the pending mark when the inbox is empty),
//! release ([`RedisCoordinator::release_if_idle`] refuses while the inbox holds events, so an
//! event accepted while the holder was finishing is never left to the next backlog scan) and
//! the fenced state save ([`RedisCoordinator::state_store`]).
//!
//! What survives what: a replica's death loses nothing accepted (the entry is in Redis before
//! the webhook is answered); Redis' own restarts are covered by its persistence settings
//! (`appendonly yes`), which are the operator's. Redis Cluster is not supported: a script
//! touches a repository's keys and the shared pending set together.

use std::sync::Arc;

use super::coord::{Accepted, Coordinator, Delivery, EntryId, InboxEntry, Lease};
use crate::error::{Error, ErrorKind, Result};
use crate::state::{Fence, RedisStateStore, StateStore, connect_redis, redacted};
use crate::time::{Clock, SystemClock};

/// Most inbox entries read or acknowledged in one script call.
pub const MAX_BATCH: usize = 1000;

/// De-duplicate by delivery, append to the inbox, mark the repository pending.
/// KEYS: delivery, inbox, pending. ARGV: ttl ms, repository key, id, event, repository, at ms,
/// body. Answers the entry id, or nil for a duplicate.
const ACCEPT: &str = r"
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return false end
local id = redis.call('XADD', KEYS[2], '*', 'id', ARGV[3], 'event', ARGV[4], 'repository', ARGV[5], 'at', ARGV[6], 'body', ARGV[7])
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

/// Extend the lease, only by its holder. KEYS: lease. ARGV: token, ttl ms. Answers 1 or 0.
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

/// The oldest entries, only for the holder. KEYS: lease, inbox. ARGV: token, count.
/// Answers `{1, entries}`, or `{0, {}}` when the lease is not held.
const READ: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {0, {}} end
return {1, redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', ARGV[2])}
";

/// Delete handled entries, only by the lease holder; clear the pending mark when empty.
/// KEYS: lease, inbox, pending. ARGV: token, repository key, entry ids… Answers the entries
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

/// What [`RedisCoordinator::release_if_idle`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Released {
    /// The lease is free.
    Released,
    /// Kept: deliveries arrived in the inbox meanwhile; drain them and try again.
    MoreWork,
    /// The lease had expired or passed to another holder.
    NotHeld,
}

/// The [`Coordinator`] on Redis: what `flow serve` replicas share. Cheap to clone (one
/// multiplexed connection that reconnects by itself). Keys and scripts: see the
/// [module](self).
#[derive(Clone)]
pub struct RedisCoordinator {
    conn: ::redis::aio::ConnectionManager,
    url_shown: String,
    prefix: String,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for RedisCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCoordinator")
            .field("at", &self.describe())
            .finish_non_exhaustive()
    }
}

/// `owner/name` (GitHub's characters), lower-cased for keys; else an error naming the field.
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
                repository
                    .chars()
                    .take(200)
                    .collect::<String>()
                    .escape_debug()
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

fn ttl_arg(ms: u64) -> u64 {
    ms.max(1)
}

type StreamEntry = (String, Vec<(String, Vec<u8>)>);

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
            clock: Arc::new(SystemClock),
        })
    }

    /// Reads time (a lease's `expires_at_ms`) from `clock`; Redis itself expires keys.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    fn key(&self, kind: &str, name: &str) -> String {
        format!("{}:{kind}:{name}", self.prefix)
    }

    fn repo_key(&self, kind: &str, repository: &str) -> Result<String> {
        Ok(self.key(kind, &repository_key(repository)?))
    }

    fn pending_key(&self) -> String {
        format!("{}:pending", self.prefix)
    }

    fn fail(&self, what: &str, e: &::redis::RedisError) -> Error {
        Error::new(ErrorKind::Coordination {
            backend: self.describe(),
            detail: format!("{what}: {e}"),
        })
    }

    fn lost(lease: &Lease) -> Error {
        Error::new(ErrorKind::LeaseLost {
            repository: lease.repository.clone(),
        })
    }

    /// Gives `lease` up only when its repository's inbox is empty ([`Released::MoreWork`]
    /// otherwise: the holder drains it and tries again). Unlike [`Coordinator::release`], a
    /// delivery accepted while the holder was finishing is never left for the next backlog
    /// scan.
    ///
    /// # Errors
    /// [`ErrorKind::Coordination`].
    pub async fn release_if_idle(&self, lease: &Lease) -> Result<Released> {
        self.release_with(lease, false).await
    }

    async fn release_with(&self, lease: &Lease, force: bool) -> Result<Released> {
        let mut conn = self.conn.clone();
        let n: i64 = ::redis::Script::new(RELEASE)
            .key(self.repo_key("lease", &lease.repository)?)
            .key(self.repo_key("inbox", &lease.repository)?)
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

    /// The state store of the leased repository (`{prefix}:state:{owner/name}`), fenced by the
    /// lease: once the lease has expired or passed to another holder, saves fail with
    /// [`ErrorKind::LeaseLost`] and write nothing, on top of the revision check.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] for a repository that is not `owner/name`.
    pub fn state_store(&self, lease: &Lease) -> Result<RedisStateStore> {
        let key = self.repo_key("state", &lease.repository)?;
        let shown = format!("{}#{key}", self.url_shown);
        Ok(
            RedisStateStore::from_connection(self.conn.clone(), key, shown).fenced(Fence {
                repository: lease.repository.clone(),
                key: self.repo_key("lease", &lease.repository)?,
                token: lease.token,
            }),
        )
    }

    fn entry(&self, repository: &str, (id, fields): StreamEntry) -> Result<InboxEntry> {
        let mut d = Delivery {
            id: String::new(),
            event: String::new(),
            repository: String::new(),
            received_at_ms: 0,
            body: String::new(),
        };
        for (name, value) in fields {
            let text = || String::from_utf8_lossy(&value).into_owned();
            match name.as_str() {
                "id" => d.id = text(),
                "event" => d.event = text(),
                "repository" => d.repository = text(),
                "at" => d.received_at_ms = text().parse().unwrap_or(0),
                "body" => d.body = text(),
                _ => {}
            }
        }
        if d.id.is_empty() || d.event.is_empty() || d.repository.is_empty() {
            return Err(Error::new(ErrorKind::Coordination {
                backend: self.describe(),
                detail: format!(
                    "inbox entry {id} of {repository} lacks `id`, `event` or `repository`: not written by flow"
                ),
            }));
        }
        Ok(InboxEntry {
            id: EntryId(id),
            delivery: d,
        })
    }
}

#[async_trait::async_trait]
impl Coordinator for RedisCoordinator {
    async fn accept(&self, delivery: &Delivery, dedup_ttl_ms: u64) -> Result<Accepted> {
        let repo = repository_key(&delivery.repository)?;
        let dkey = self.key("delivery", delivery_key(&delivery.id)?);
        let mut conn = self.conn.clone();
        let entry: Option<String> = ::redis::Script::new(ACCEPT)
            .key(dkey)
            .key(self.key("inbox", &repo))
            .key(self.pending_key())
            .arg(ttl_arg(dedup_ttl_ms))
            .arg(&repo)
            .arg(&delivery.id)
            .arg(&delivery.event)
            .arg(&delivery.repository)
            .arg(delivery.received_at_ms)
            .arg(&delivery.body)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.fail("cannot accept the delivery", &e))?;
        Ok(if entry.is_some() {
            Accepted::New
        } else {
            Accepted::Duplicate
        })
    }

    async fn first_seen(&self, key: &str, ttl_ms: u64) -> Result<bool> {
        if key.is_empty() {
            return Err(Error::invalid("key", "expected a non-empty key"));
        }
        let mut conn = self.conn.clone();
        let set: Option<String> = ::redis::cmd("SET")
            .arg(self.key("seen", key))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(ttl_arg(ttl_ms))
            .query_async(&mut conn)
            .await
            .map_err(|e| self.fail("cannot record the key", &e))?;
        Ok(set.is_some())
    }

    async fn lease(&self, repository: &str, holder: &str, ttl_ms: u64) -> Result<Option<Lease>> {
        let mut conn = self.conn.clone();
        let now = self.clock.now_ms();
        let token: Option<u64> = ::redis::Script::new(ACQUIRE)
            .key(self.repo_key("lease", repository)?)
            .key(self.repo_key("fence", repository)?)
            .arg(ttl_arg(ttl_ms))
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.fail("cannot take the lease", &e))?;
        Ok(token.map(|token| Lease {
            repository: repository.to_owned(),
            holder: holder.to_owned(),
            token,
            expires_at_ms: now.saturating_add(i64::try_from(ttl_ms).unwrap_or(i64::MAX)),
        }))
    }

    async fn renew(&self, lease: &Lease, ttl_ms: u64) -> Result<Lease> {
        let mut conn = self.conn.clone();
        let now = self.clock.now_ms();
        let n: i64 = ::redis::Script::new(RENEW)
            .key(self.repo_key("lease", &lease.repository)?)
            .arg(lease.token)
            .arg(ttl_arg(ttl_ms))
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.fail("cannot renew the lease", &e))?;
        if n != 1 {
            return Err(Self::lost(lease));
        }
        Ok(Lease {
            expires_at_ms: now.saturating_add(i64::try_from(ttl_ms).unwrap_or(i64::MAX)),
            ..lease.clone()
        })
    }

    async fn release(&self, lease: &Lease) -> Result<()> {
        self.release_with(lease, true).await.map(drop)
    }

    async fn inbox(&self, lease: &Lease, max: usize) -> Result<Vec<InboxEntry>> {
        let mut conn = self.conn.clone();
        let (held, entries): (i64, Vec<StreamEntry>) = ::redis::Script::new(READ)
            .key(self.repo_key("lease", &lease.repository)?)
            .key(self.repo_key("inbox", &lease.repository)?)
            .arg(lease.token)
            .arg(max.clamp(1, MAX_BATCH))
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.fail("cannot read the inbox", &e))?;
        if held != 1 {
            return Err(Self::lost(lease));
        }
        entries
            .into_iter()
            .map(|e| self.entry(&lease.repository, e))
            .collect()
    }

    async fn ack(&self, lease: &Lease, ids: &[EntryId]) -> Result<()> {
        let lease_key = self.repo_key("lease", &lease.repository)?;
        let inbox_key = self.repo_key("inbox", &lease.repository)?;
        let repo = repository_key(&lease.repository)?;
        let ack = ::redis::Script::new(ACK);
        let mut chunks: Vec<&[EntryId]> = ids.chunks(MAX_BATCH).collect();
        if chunks.is_empty() {
            // Still clears a stale pending mark of an empty inbox.
            chunks.push(&[]);
        }
        for chunk in chunks {
            let mut call = ack.prepare_invoke();
            call.key(&lease_key)
                .key(&inbox_key)
                .key(self.pending_key())
                .arg(lease.token)
                .arg(&repo);
            for id in chunk {
                call.arg(&id.0);
            }
            let mut conn = self.conn.clone();
            let n: i64 = call
                .invoke_async(&mut conn)
                .await
                .map_err(|e| self.fail("cannot acknowledge", &e))?;
            if n < 0 {
                return Err(Self::lost(lease));
            }
        }
        Ok(())
    }

    async fn backlog(&self) -> Result<Vec<String>> {
        let mut conn = self.conn.clone();
        let mut repos: Vec<String> = ::redis::cmd("SMEMBERS")
            .arg(self.pending_key())
            .query_async(&mut conn)
            .await
            .map_err(|e| self.fail("cannot list the backlog", &e))?;
        repos.sort();
        Ok(repos)
    }

    async fn ping(&self) -> Result<()> {
        let mut conn = self.conn.clone();
        ::redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(drop)
            .map_err(|e| self.fail("no answer", &e))
    }

    fn describe(&self) -> String {
        format!("{}#{}", self.url_shown, self.prefix)
    }

    fn state_store(&self, lease: &Lease) -> Result<Option<Arc<dyn StateStore>>> {
        Ok(Some(Arc::new(RedisCoordinator::state_store(self, lease)?)))
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
