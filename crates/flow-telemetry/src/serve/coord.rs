//! The [`Coordinator`]: what the processes of one `flow serve` deployment share.
//!
//! A webhook delivery goes through four steps, each a method of the seam:
//!
//! 1. [`Coordinator::accept`]: the delivery id is checked against those seen within a TTL
//!    and, when new, the delivery is appended to its repository's durable inbox — both in one
//!    atomic step, so a delivery is never marked seen without being kept. Only then does the
//!    webhook answer 202.
//! 2. [`Coordinator::lease`]: a worker takes the repository's work lease, so one process (and
//!    one task in it) handles one repository at a time; it [`renews`](Coordinator::renew) the
//!    lease while it works and [`releases`](Coordinator::release) it when the inbox is empty.
//! 3. [`Coordinator::inbox`]: the holder reads the oldest accepted deliveries, processes them
//!    through the monitoring session and saves the repository's state.
//! 4. [`Coordinator::ack`]: only after the state is saved are the deliveries removed from the
//!    inbox.
//!
//! [`Coordinator::backlog`] names the repositories with deliveries waiting, so a process finds
//! the work a dead one left behind; [`Coordinator::first_seen`] is the same first-seen check
//! for any other key (a run counted once in the metrics across replicas).
//!
//! # Crash semantics
//!
//! With a shared backend (Redis), a process that dies:
//!
//! - **after accept, before processing**: the delivery waits in the inbox. The dead process
//!   held no lease, or its lease expires after its TTL; any live process that sees the
//!   repository in [`Coordinator::backlog`] takes the lease and processes it. Nothing is lost.
//! - **mid-processing (before its state is saved)**: nothing was saved and nothing acked; the
//!   lease expires and the next holder processes the same deliveries from the saved state.
//!   GitHub writes the dead process had made are in the issue ledger only if it saved them
//!   first (the session saves a queued write before making it and claims it), so no issue is
//!   opened twice.
//! - **after saving the state, before ack**: the next holder processes those deliveries again.
//!   The session skips runs at or below the saved cursor (a re-run attempt is the exception,
//!   as in `flow monitor`), and the ledger says no issue twice; metrics stay exact when they are
//!   counted through [`Coordinator::first_seen`].
//!
//! A process whose lease expired while it worked learns it from [`ErrorKind::LeaseLost`] on
//! renew, inbox or ack and stops working on that repository; the state store's
//! compare-and-set refuses its stale save.
//!
//! [`MemoryCoordinator`] keeps all of this in one process: a crash loses the accepted
//! deliveries it had not processed, and the periodic reconciliation poll catches the runs up
//! from the saved state when the process comes back.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::time::Clock;

/// One webhook delivery as it was received, kept until processed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// GitHub's `X-GitHub-Delivery` id (a GUID; a redelivery repeats it).
    pub id: String,
    /// GitHub's `X-GitHub-Event` (`workflow_run`, `workflow_job`).
    pub event: String,
    /// The repository, `owner/name`.
    pub repository: String,
    /// When it was received, unix ms.
    pub received_at_ms: i64,
    /// The payload, JSON as received (verified against its signature).
    pub body: String,
}

/// Whether [`Coordinator::accept`] kept the delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// First seen: it is in the repository's inbox.
    New,
    /// Its id was seen within the TTL: nothing was kept.
    Duplicate,
}

/// The id of an entry in a repository's inbox (opaque; a Redis stream id, a counter).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EntryId(pub String);

/// An accepted delivery waiting in a repository's inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxEntry {
    /// Its id in the inbox, for [`Coordinator::ack`].
    pub id: EntryId,
    /// The delivery.
    pub delivery: Delivery,
}

/// A repository's work lease, held by one process until it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The repository, `owner/name`.
    pub repository: String,
    /// Who holds it (a process and task name, for messages).
    pub holder: String,
    /// A fencing token: a new one per lease taken, so an expired holder is told apart from
    /// the next one.
    pub token: u64,
    /// When it expires unless renewed, unix ms.
    pub expires_at_ms: i64,
}

/// What the replicas of one deployment share. Object-safe: held as `Arc<dyn Coordinator>`.
///
/// Every method may fail with [`ErrorKind::Coordination`] when the backend is unreachable
/// (retryable); methods taking a [`Lease`] fail with [`ErrorKind::LeaseLost`] when it expired
/// and another holder may have taken it.
#[cfg_attr(test, mockall::automock)]
#[async_trait::async_trait]
pub trait Coordinator: Send + Sync + std::fmt::Debug {
    /// Checks the delivery id against those seen within `dedup_ttl_ms` and, when it is new,
    /// records it and appends the delivery to its repository's inbox, atomically.
    ///
    /// # Errors
    /// [`ErrorKind::Coordination`]: nothing was recorded; answer 503 so GitHub records the
    /// failure.
    async fn accept(&self, delivery: &Delivery, dedup_ttl_ms: u64) -> Result<Accepted>;

    /// True the first time `key` is seen within `ttl_ms` (and records it); false after.
    ///
    /// # Errors
    /// [`ErrorKind::Coordination`].
    async fn first_seen(&self, key: &str, ttl_ms: u64) -> Result<bool>;

    /// Takes the work lease of `repository` for `ttl_ms` when nobody holds it (or the
    /// holder's expired); `None` when another holder has it.
    ///
    /// # Errors
    /// [`ErrorKind::Coordination`].
    async fn lease(&self, repository: &str, holder: &str, ttl_ms: u64) -> Result<Option<Lease>>;

    /// Extends a held lease by `ttl_ms` from now and returns it renewed.
    ///
    /// # Errors
    /// [`ErrorKind::LeaseLost`] when it expired and was taken (or is no longer held).
    async fn renew(&self, lease: &Lease, ttl_ms: u64) -> Result<Lease>;

    /// Gives a lease up (a lease already lost is not an error).
    ///
    /// # Errors
    /// [`ErrorKind::Coordination`].
    async fn release(&self, lease: &Lease) -> Result<()>;

    /// The oldest `max` deliveries accepted for the lease's repository and not yet acked,
    /// oldest first. They stay in the inbox until acked.
    ///
    /// # Errors
    /// [`ErrorKind::LeaseLost`], [`ErrorKind::Coordination`].
    async fn inbox(&self, lease: &Lease, max: usize) -> Result<Vec<InboxEntry>>;

    /// Removes processed deliveries from the lease's repository inbox; call after the state
    /// they changed is saved. Unknown ids are ignored.
    ///
    /// # Errors
    /// [`ErrorKind::LeaseLost`], [`ErrorKind::Coordination`].
    async fn ack(&self, lease: &Lease, ids: &[EntryId]) -> Result<()>;

    /// The repositories with deliveries waiting in their inbox.
    ///
    /// # Errors
    /// [`ErrorKind::Coordination`].
    async fn backlog(&self) -> Result<Vec<String>>;

    /// Checks the backend answers (for `/readyz`).
    ///
    /// # Errors
    /// [`ErrorKind::Coordination`].
    async fn ping(&self) -> Result<()>;

    /// Where the coordination lives, for messages (`memory`, `redis://host/…`), no secrets.
    fn describe(&self) -> String;
}

/// A shared coordinator is a coordinator.
#[async_trait::async_trait]
impl<C: Coordinator + ?Sized> Coordinator for Arc<C> {
    async fn accept(&self, delivery: &Delivery, dedup_ttl_ms: u64) -> Result<Accepted> {
        (**self).accept(delivery, dedup_ttl_ms).await
    }
    async fn first_seen(&self, key: &str, ttl_ms: u64) -> Result<bool> {
        (**self).first_seen(key, ttl_ms).await
    }
    async fn lease(&self, repository: &str, holder: &str, ttl_ms: u64) -> Result<Option<Lease>> {
        (**self).lease(repository, holder, ttl_ms).await
    }
    async fn renew(&self, lease: &Lease, ttl_ms: u64) -> Result<Lease> {
        (**self).renew(lease, ttl_ms).await
    }
    async fn release(&self, lease: &Lease) -> Result<()> {
        (**self).release(lease).await
    }
    async fn inbox(&self, lease: &Lease, max: usize) -> Result<Vec<InboxEntry>> {
        (**self).inbox(lease, max).await
    }
    async fn ack(&self, lease: &Lease, ids: &[EntryId]) -> Result<()> {
        (**self).ack(lease, ids).await
    }
    async fn backlog(&self) -> Result<Vec<String>> {
        (**self).backlog().await
    }
    async fn ping(&self) -> Result<()> {
        (**self).ping().await
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
}

/// Keys remembered by [`MemoryCoordinator`] at most (delivery ids and `first_seen` keys, about
/// 150 bytes each: some 40 MB); past it the oldest are forgotten first, before their TTL.
pub const MEMORY_MAX_SEEN: usize = 1 << 18;

/// The coordinator of a single process: everything in memory, bounded (see
/// [`MEMORY_MAX_SEEN`]), with the TTLs read from an injected clock.
#[derive(Debug)]
pub struct MemoryCoordinator {
    clock: Arc<dyn Clock>,
    max_seen: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Key → expiry (unix ms).
    seen: HashMap<String, i64>,
    /// Keys in insertion order, to forget the oldest.
    order: VecDeque<(String, i64)>,
    inboxes: HashMap<String, VecDeque<InboxEntry>>,
    leases: HashMap<String, Lease>,
    next_entry: u64,
    next_token: u64,
}

impl Inner {
    /// True when `key` was not live, recording it until `now + ttl`.
    fn mark(&mut self, key: &str, now: i64, ttl_ms: u64, max: usize) -> bool {
        // Forget expired keys from the front (amortized: each is popped once).
        while let Some((k, exp)) = self.order.front() {
            let stale = self.seen.get(k) != Some(exp);
            if *exp > now && !stale && self.order.len() <= max {
                break;
            }
            if let Some((k, exp)) = self.order.pop_front()
                && self.seen.get(&k) == Some(&exp)
            {
                self.seen.remove(&k);
            }
        }
        if self.seen.get(key).is_some_and(|&exp| exp > now) {
            return false;
        }
        let exp = now.saturating_add(i64::try_from(ttl_ms).unwrap_or(i64::MAX));
        self.seen.insert(key.to_owned(), exp);
        self.order.push_back((key.to_owned(), exp));
        while self.order.len() > max {
            if let Some((k, e)) = self.order.pop_front()
                && self.seen.get(&k) == Some(&e)
            {
                self.seen.remove(&k);
            }
        }
        true
    }

    fn check(&self, lease: &Lease, now: i64) -> Result<()> {
        match self.leases.get(&lease.repository) {
            Some(l) if l.token == lease.token && l.expires_at_ms > now => Ok(()),
            _ => Err(Error::new(ErrorKind::LeaseLost {
                repository: lease.repository.clone(),
            })),
        }
    }
}

impl MemoryCoordinator {
    /// An empty coordinator reading time from `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            max_seen: MEMORY_MAX_SEEN,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Remembers at most `max` keys (at least 1).
    #[must_use]
    pub fn with_max_seen(mut self, max: usize) -> Self {
        self.max_seen = max.max(1);
        self
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Inner>> {
        self.inner.lock().map_err(|_| {
            Error::new(ErrorKind::Coordination {
                backend: "memory".into(),
                detail: "poisoned lock".into(),
            })
        })
    }
}

fn ttl(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

#[async_trait::async_trait]
impl Coordinator for MemoryCoordinator {
    async fn accept(&self, delivery: &Delivery, dedup_ttl_ms: u64) -> Result<Accepted> {
        let now = self.clock.now_ms();
        let mut g = self.lock()?;
        let key = format!("delivery:{}", delivery.id);
        if !g.mark(&key, now, dedup_ttl_ms, self.max_seen) {
            return Ok(Accepted::Duplicate);
        }
        g.next_entry += 1;
        let id = EntryId(g.next_entry.to_string());
        g.inboxes
            .entry(delivery.repository.clone())
            .or_default()
            .push_back(InboxEntry {
                id,
                delivery: delivery.clone(),
            });
        Ok(Accepted::New)
    }

    async fn first_seen(&self, key: &str, ttl_ms: u64) -> Result<bool> {
        let now = self.clock.now_ms();
        let mut g = self.lock()?;
        Ok(g.mark(&format!("key:{key}"), now, ttl_ms, self.max_seen))
    }

    async fn lease(&self, repository: &str, holder: &str, ttl_ms: u64) -> Result<Option<Lease>> {
        let now = self.clock.now_ms();
        let mut g = self.lock()?;
        if g.leases
            .get(repository)
            .is_some_and(|l| l.expires_at_ms > now)
        {
            return Ok(None);
        }
        g.next_token += 1;
        let lease = Lease {
            repository: repository.to_owned(),
            holder: holder.to_owned(),
            token: g.next_token,
            expires_at_ms: now.saturating_add(ttl(ttl_ms)),
        };
        g.leases.insert(repository.to_owned(), lease.clone());
        Ok(Some(lease))
    }

    async fn renew(&self, lease: &Lease, ttl_ms: u64) -> Result<Lease> {
        let now = self.clock.now_ms();
        let mut g = self.lock()?;
        g.check(lease, now)?;
        let mut renewed = lease.clone();
        renewed.expires_at_ms = now.saturating_add(ttl(ttl_ms));
        g.leases.insert(lease.repository.clone(), renewed.clone());
        Ok(renewed)
    }

    async fn release(&self, lease: &Lease) -> Result<()> {
        let mut g = self.lock()?;
        if g.leases
            .get(&lease.repository)
            .is_some_and(|l| l.token == lease.token)
        {
            g.leases.remove(&lease.repository);
        }
        Ok(())
    }

    async fn inbox(&self, lease: &Lease, max: usize) -> Result<Vec<InboxEntry>> {
        let now = self.clock.now_ms();
        let g = self.lock()?;
        g.check(lease, now)?;
        Ok(g.inboxes
            .get(&lease.repository)
            .map(|q| q.iter().take(max).cloned().collect())
            .unwrap_or_default())
    }

    async fn ack(&self, lease: &Lease, ids: &[EntryId]) -> Result<()> {
        let now = self.clock.now_ms();
        let mut g = self.lock()?;
        g.check(lease, now)?;
        if let Some(q) = g.inboxes.get_mut(&lease.repository) {
            q.retain(|e| !ids.contains(&e.id));
            if q.is_empty() {
                g.inboxes.remove(&lease.repository);
            }
        }
        Ok(())
    }

    async fn backlog(&self) -> Result<Vec<String>> {
        let g = self.lock()?;
        let mut repos: Vec<String> = g.inboxes.keys().cloned().collect();
        repos.sort();
        Ok(repos)
    }

    async fn ping(&self) -> Result<()> {
        self.lock().map(drop)
    }

    fn describe(&self) -> String {
        "memory".to_owned()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::time::ManualClock;

    fn delivery(id: &str, repo: &str) -> Delivery {
        Delivery {
            id: id.into(),
            event: "workflow_run".into(),
            repository: repo.into(),
            received_at_ms: 0,
            body: "{}".into(),
        }
    }

    fn coordinator() -> (ManualClock, MemoryCoordinator) {
        let clock = ManualClock::new(1_000);
        (clock.clone(), MemoryCoordinator::new(Arc::new(clock)))
    }

    #[tokio::test]
    async fn a_delivery_is_accepted_once_within_its_ttl() {
        let (clock, c) = coordinator();
        assert_eq!(
            c.accept(&delivery("d1", "o/r"), 1_000).await.unwrap(),
            Accepted::New
        );
        assert_eq!(
            c.accept(&delivery("d1", "o/r"), 1_000).await.unwrap(),
            Accepted::Duplicate
        );
        clock.advance_ms(1_001);
        assert_eq!(
            c.accept(&delivery("d1", "o/r"), 1_000).await.unwrap(),
            Accepted::New
        );
        assert_eq!(c.backlog().await.unwrap(), vec!["o/r".to_owned()]);
    }

    #[tokio::test]
    async fn one_holder_per_repository_until_release_or_expiry() {
        let (clock, c) = coordinator();
        let a = c.lease("o/r", "a", 500).await.unwrap().unwrap();
        assert!(c.lease("o/r", "b", 500).await.unwrap().is_none());
        assert!(c.lease("o/other", "b", 500).await.unwrap().is_some());
        c.release(&a).await.unwrap();
        let b = c.lease("o/r", "b", 500).await.unwrap().unwrap();
        assert!(b.token > a.token);
        // b's lease expires: a newcomer takes over, and b learns it lost the lease.
        clock.advance_ms(501);
        let d = c.lease("o/r", "d", 500).await.unwrap().unwrap();
        let lost = c.renew(&b, 500).await.unwrap_err();
        assert!(matches!(lost.kind(), ErrorKind::LeaseLost { repository } if repository == "o/r"));
        assert!(c.inbox(&b, 10).await.is_err());
        assert!(c.ack(&b, &[]).await.is_err());
        // Releasing a lost lease leaves the new holder alone.
        c.release(&b).await.unwrap();
        assert!(c.renew(&d, 500).await.is_ok());
    }

    #[tokio::test]
    async fn renewal_keeps_the_lease_past_its_first_expiry() {
        let (clock, c) = coordinator();
        let a = c.lease("o/r", "a", 500).await.unwrap().unwrap();
        clock.advance_ms(400);
        let a = c.renew(&a, 500).await.unwrap();
        clock.advance_ms(400);
        assert!(c.lease("o/r", "b", 500).await.unwrap().is_none());
        assert!(c.inbox(&a, 1).await.is_ok());
    }

    #[tokio::test]
    async fn the_inbox_keeps_deliveries_in_order_until_acked() {
        let (_, c) = coordinator();
        for id in ["d1", "d2", "d3"] {
            c.accept(&delivery(id, "o/r"), 60_000).await.unwrap();
        }
        c.accept(&delivery("x", "o/other"), 60_000).await.unwrap();
        let lease = c.lease("o/r", "a", 60_000).await.unwrap().unwrap();
        let two = c.inbox(&lease, 2).await.unwrap();
        let ids: Vec<&str> = two.iter().map(|e| e.delivery.id.as_str()).collect();
        assert_eq!(ids, ["d1", "d2"]);
        // Not acked: read again.
        assert_eq!(c.inbox(&lease, 2).await.unwrap(), two);
        let acked: Vec<EntryId> = two.iter().map(|e| e.id.clone()).collect();
        c.ack(&lease, &acked).await.unwrap();
        let rest = c.inbox(&lease, 10).await.unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].delivery.id, "d3");
        c.ack(&lease, &[rest[0].id.clone()]).await.unwrap();
        assert_eq!(c.backlog().await.unwrap(), vec!["o/other".to_owned()]);
    }

    #[tokio::test]
    async fn first_seen_is_bounded_and_expires() {
        let (clock, c) = coordinator();
        let c = c.with_max_seen(2);
        assert!(c.first_seen("a", 100).await.unwrap());
        assert!(!c.first_seen("a", 100).await.unwrap());
        assert!(c.first_seen("b", 100).await.unwrap());
        assert!(c.first_seen("c", 100).await.unwrap());
        // Past the bound the oldest is forgotten first.
        assert!(c.first_seen("a", 100).await.unwrap());
        assert!(!c.first_seen("c", 100).await.unwrap());
        clock.advance_ms(101);
        assert!(c.first_seen("c", 100).await.unwrap());
        assert!(c.lock().unwrap().seen.len() <= 2);
    }

    #[tokio::test]
    async fn a_mocked_coordinator_stands_in_for_the_trait() {
        let mut m = MockCoordinator::new();
        m.expect_accept().returning(|_, _| Ok(Accepted::Duplicate));
        let c: Arc<dyn Coordinator> = Arc::new(m);
        assert_eq!(
            c.accept(&delivery("d", "o/r"), 1).await.unwrap(),
            Accepted::Duplicate
        );
    }
}
