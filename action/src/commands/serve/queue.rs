//! The work queue of `flow serve`: repositories, not deliveries.
//!
//! A worker drains a repository's whole inbox at once, so the queue holds each repository at
//! most once: a repository already queued, or being worked on, is not queued again — a
//! delivery accepted while its repository is being worked on marks it to be worked on again
//! when the worker finishes (re-armed), so nothing accepted is left behind.
//!
//! The webhook's bound (503 when full) is on what it protects, the memory and latency of work
//! not yet started: the deliveries accepted and not yet picked up by a worker. A worker picks
//! up a repository's deliveries just before it reads the inbox, so a delivery counted before
//! that point is in the inbox it reads; one counted after is read later (the repository was
//! re-armed).
//!
//! [`Slots`] is the bookkeeping, synchronous and pure (unit- and property-tested);
//! [`WorkQueue`] wraps it for the tasks (a mutex and a wake-up).

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

/// A repository taken from the queue by a worker, which must then call
/// [`WorkQueue::finish`] or [`WorkQueue::abandon`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Claim {
    /// The repository, `owner/name`.
    pub(crate) repository: String,
    /// Whether a reconciliation poll was asked for.
    pub(crate) reconcile: bool,
}

/// One repository's place.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Slot {
    /// In the queue's order.
    queued: bool,
    /// A worker has it.
    working: bool,
    /// Work arrived while a worker had it, since its last pick-up.
    again: bool,
    /// A reconciliation poll is due.
    reconcile: bool,
    /// Deliveries accepted for it and not yet picked up.
    waiting: usize,
}

/// The queue's bookkeeping: the order of repositories, each one's place, and the count the
/// webhook's bound applies to.
///
/// Invariants (property-tested): a repository is in `order` at most once, exactly when it is
/// `queued`, and never while `working`; a repository with deliveries waiting is queued or
/// being worked on; `waiting` is the slots' waiting plus the reservations not yet committed,
/// and never more than `capacity`.
#[derive(Debug, Default)]
pub(crate) struct Slots {
    capacity: usize,
    order: VecDeque<String>,
    slots: HashMap<String, Slot>,
    /// Deliveries reserved or accepted and not yet picked up.
    waiting: usize,
    closed: bool,
}

impl Slots {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            ..Self::default()
        }
    }

    /// Reserves a place for a delivery about to be accepted; false when `capacity` are
    /// waiting already.
    fn reserve(&mut self) -> bool {
        if self.waiting >= self.capacity {
            return false;
        }
        self.waiting += 1;
        true
    }

    /// Gives a reservation back (a duplicate, a refusal).
    fn unreserve(&mut self) {
        self.waiting = self.waiting.saturating_sub(1);
    }

    /// A reserved delivery was accepted for `repository`: it waits there. Returns whether the
    /// repository joined the queue.
    fn commit(&mut self, repository: &str) -> bool {
        self.slots.entry(repository.to_owned()).or_default().waiting += 1;
        self.arm(repository, false)
    }

    /// Asks for `repository` to be worked on (and polled, with `reconcile`): queued unless it
    /// is queued already; re-armed when a worker has it. Returns whether it joined the queue.
    fn arm(&mut self, repository: &str, reconcile: bool) -> bool {
        let slot = self.slots.entry(repository.to_owned()).or_default();
        slot.reconcile |= reconcile;
        if slot.working {
            slot.again = true;
            false
        } else if slot.queued {
            false
        } else {
            slot.queued = true;
            self.order.push_back(repository.to_owned());
            true
        }
    }

    /// The next repository for a worker.
    fn take(&mut self) -> Option<Claim> {
        let repository = self.order.pop_front()?;
        let slot = self.slots.entry(repository.clone()).or_default();
        slot.queued = false;
        slot.working = true;
        slot.again = false;
        Some(Claim {
            reconcile: std::mem::take(&mut slot.reconcile),
            repository,
        })
    }

    /// The worker is about to read `repository`'s inbox: what was accepted so far is in it.
    /// Returns how many deliveries were picked up.
    fn pick_up(&mut self, repository: &str) -> usize {
        let Some(slot) = self.slots.get_mut(repository) else {
            return 0;
        };
        let n = std::mem::take(&mut slot.waiting);
        slot.again = false;
        self.waiting = self.waiting.saturating_sub(n);
        n
    }

    /// The worker found `repository`'s inbox empty: it goes back in the queue when work
    /// arrived meanwhile (or a poll was asked for), else it is forgotten. Returns whether it
    /// was queued again.
    fn finish(&mut self, repository: &str) -> bool {
        let Some(slot) = self.slots.get_mut(repository) else {
            return false;
        };
        slot.working = false;
        if slot.again || slot.reconcile || slot.waiting > 0 {
            slot.again = false;
            if !slot.queued {
                slot.queued = true;
                self.order.push_back(repository.to_owned());
            }
            true
        } else {
            if !slot.queued {
                self.slots.remove(repository);
            }
            false
        }
    }

    /// The worker gives `repository` up without draining it (its lease is held elsewhere, or
    /// the coordination failed): its waiting deliveries stay in the shared inbox for the
    /// lease's holder or the next sweep, and are no longer counted here.
    fn abandon(&mut self, repository: &str) {
        if let Some(slot) = self.slots.remove(repository) {
            self.waiting = self.waiting.saturating_sub(slot.waiting);
        }
    }

    /// Repositories queued.
    fn queued(&self) -> usize {
        self.order.len()
    }
}

/// The queue the webhook, the background ticks and the workers share.
#[derive(Debug)]
pub(crate) struct WorkQueue {
    slots: Mutex<Slots>,
    wake: Notify,
}

/// A place for one delivery, reserved before the coordinator accepts it: commit it once
/// accepted; dropped, it is given back.
#[derive(Debug)]
pub(crate) struct Reservation<'a> {
    queue: &'a WorkQueue,
    committed: bool,
}

impl Reservation<'_> {
    /// The delivery was accepted for `repository`.
    pub(crate) fn commit(mut self, repository: &str) {
        self.committed = true;
        if self.queue.lock().commit(repository) {
            self.queue.wake.notify_one();
        }
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.committed {
            self.queue.lock().unreserve();
        }
    }
}

impl WorkQueue {
    /// At most `capacity` deliveries accepted and not yet picked up.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            slots: Mutex::new(Slots::new(capacity)),
            wake: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Slots> {
        // The bookkeeping stays consistent across a panic elsewhere: every method completes
        // its update before it returns.
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A place for one delivery; `None` when the queue is full (answer 503).
    pub(crate) fn reserve(&self) -> Option<Reservation<'_>> {
        // The guard is gone before a reservation exists (its drop takes the lock).
        let reserved = self.lock().reserve();
        reserved.then_some(Reservation {
            queue: self,
            committed: false,
        })
    }

    /// Asks for `repository` to be worked on (the sweep; with `reconcile`, a poll too).
    pub(crate) fn arm(&self, repository: &str, reconcile: bool) {
        if self.lock().arm(repository, reconcile) {
            self.wake.notify_one();
        }
    }

    /// The next repository to work on; `None` once the queue is closed and empty.
    pub(crate) async fn next(&self) -> Option<Claim> {
        loop {
            let woken = self.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            {
                let mut slots = self.lock();
                if let Some(claim) = slots.take() {
                    // Others may be waiting for what is left.
                    if slots.queued() > 0 {
                        self.wake.notify_one();
                    }
                    return Some(claim);
                }
                if slots.closed {
                    return None;
                }
            }
            woken.await;
        }
    }

    /// See [`Slots::pick_up`].
    pub(crate) fn pick_up(&self, repository: &str) -> usize {
        self.lock().pick_up(repository)
    }

    /// See [`Slots::finish`].
    pub(crate) fn finish(&self, repository: &str) {
        if self.lock().finish(repository) {
            self.wake.notify_one();
        }
    }

    /// See [`Slots::abandon`].
    pub(crate) fn abandon(&self, repository: &str) {
        self.lock().abandon(repository);
    }

    /// No new work: the workers end once the queue is empty.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_waiters();
    }

    /// Deliveries accepted and not yet picked up (the bounded count), and repositories queued.
    pub(crate) fn depth(&self) -> (usize, usize) {
        let slots = self.lock();
        (slots.waiting, slots.queued())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use std::collections::HashSet;
    use std::sync::Arc;
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;

    impl Slots {
        /// Panics when an invariant of [`Slots`] does not hold.
        fn check(&self, reserved: usize) {
            let mut seen = HashSet::new();
            for r in &self.order {
                assert!(seen.insert(r.clone()), "{r} queued twice: {:?}", self.order);
                let slot = &self.slots[r];
                assert!(slot.queued && !slot.working, "{r}: {slot:?}");
            }
            let mut waiting = reserved;
            for (r, slot) in &self.slots {
                assert_eq!(slot.queued, seen.contains(r), "{r}: {slot:?}");
                assert!(
                    slot.waiting == 0 || slot.queued || slot.working,
                    "{r} has deliveries waiting and nobody on it: {slot:?}"
                );
                waiting += slot.waiting;
            }
            assert_eq!(self.waiting, waiting);
            assert!(self.waiting <= self.capacity);
        }
    }

    #[test]
    fn a_repository_is_queued_once_and_re_armed_while_worked_on() {
        let mut s = Slots::new(10);
        for _ in 0..3 {
            assert!(s.reserve());
        }
        assert!(s.commit("o/a"));
        assert!(!s.commit("o/a"));
        assert!(s.commit("o/b"));
        assert_eq!(s.queued(), 2);
        let c = s.take().unwrap();
        assert_eq!(c.repository, "o/a");
        assert_eq!(s.pick_up("o/a"), 2);
        assert_eq!(s.waiting, 1);
        // Accepted while o/a is worked on: not queued, re-armed.
        assert!(s.reserve());
        assert!(!s.commit("o/a"));
        assert_eq!(s.queued(), 1);
        assert!(s.finish("o/a"));
        assert_eq!(s.queued(), 2);
        s.check(0);
        // Worked on again, nothing new: forgotten.
        s.take().unwrap();
        let c = s.take().unwrap();
        assert_eq!(c.repository, "o/a");
        assert_eq!(s.pick_up("o/a"), 1);
        assert!(!s.finish("o/a"));
        assert!(!s.slots.contains_key("o/a"));
        s.check(0);
    }

    #[test]
    fn the_bound_counts_deliveries_not_yet_picked_up() {
        // The semantics `a_full_queue_answers_503…` pins, with a capacity of 1: the first
        // delivery is taken by the worker, the next one waits, the third is refused.
        let mut s = Slots::new(1);
        assert!(s.reserve());
        s.commit("o/r");
        s.take().unwrap();
        s.pick_up("o/r");
        assert!(s.reserve());
        s.commit("o/r");
        assert!(!s.reserve());
        // A duplicate gives its place back.
        s.pick_up("o/r");
        assert!(s.reserve());
        s.unreserve();
        assert!(s.reserve());
        s.check(1);
    }

    #[test]
    fn a_reconciliation_asked_while_working_is_done_after() {
        let mut s = Slots::new(4);
        s.arm("o/r", false);
        let c = s.take().unwrap();
        assert!(!c.reconcile);
        s.arm("o/r", true);
        s.pick_up("o/r");
        assert!(s.finish("o/r"));
        assert!(s.take().unwrap().reconcile);
        assert!(!s.finish("o/r"));
    }

    #[test]
    fn abandoning_a_repository_forgets_its_count() {
        let mut s = Slots::new(2);
        assert!(s.reserve() && s.reserve());
        s.commit("o/r");
        s.take().unwrap();
        s.commit("o/r");
        s.abandon("o/r");
        assert_eq!(s.waiting, 0);
        s.check(0);
    }

    #[tokio::test]
    async fn workers_wake_for_work_and_end_when_closed_and_empty() {
        let q = Arc::new(WorkQueue::new(8));
        let worker = {
            let q = q.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                while let Some(c) = q.next().await {
                    q.pick_up(&c.repository);
                    q.finish(&c.repository);
                    got.push(c.repository);
                }
                got
            })
        };
        q.reserve().unwrap().commit("o/a");
        // Full: refused without a deadlock (the refused reservation is never built).
        let full = WorkQueue::new(0);
        assert!(full.reserve().is_none());
        q.arm("o/b", true);
        // A reservation dropped without a commit is given back.
        drop(q.reserve().unwrap());
        tokio::time::timeout(Duration::from_secs(5), async {
            while q.depth() != (0, 0) {
                tokio::task::yield_now().await;
            }
        })
        .await
        .unwrap();
        q.close();
        let got = tokio::time::timeout(Duration::from_secs(5), worker)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, ["o/a", "o/b"]);
        assert!(q.reserve().is_some());
    }

    /// One step of a webhook request, a worker or a background tick.
    #[derive(Debug, Clone)]
    enum Op {
        /// Webhook `h`: reserve a place for a delivery to repository `r` (503 when full).
        Reserve(usize, usize),
        /// Webhook `h`: the coordinator accepts its delivery (it is in the inbox).
        Accept(usize),
        /// Webhook `h`: the delivery was a duplicate (nothing kept).
        Duplicate(usize),
        /// Webhook `h`: commit its accepted delivery.
        Commit(usize),
        /// Worker `w`: take a repository, or pick up and read its inbox, or finish when the
        /// last read was empty.
        Work(usize),
        /// The reconciliation tick for repository `r`.
        Reconcile(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            2 => (0..3usize, 0..4usize).prop_map(|(h, r)| Op::Reserve(h, r)),
            2 => (0..3usize).prop_map(Op::Accept),
            1 => (0..3usize).prop_map(Op::Duplicate),
            2 => (0..3usize).prop_map(Op::Commit),
            6 => (0..3usize).prop_map(Op::Work),
            1 => (0..4usize).prop_map(Op::Reconcile),
        ]
    }

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Hook {
        Idle,
        Reserved(usize),
        Accepted(usize, u64),
    }

    /// Where a worker is in its loop: pick up, read (and process), and finish after an empty
    /// read. Picking up and reading are separate steps, as they are two calls.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Phase {
        PickUp,
        Read,
        Finish,
    }

    #[derive(Debug, Clone, PartialEq)]
    enum Worker {
        Idle,
        On(String, Phase),
    }

    /// The system under any interleaving: webhooks, workers, inboxes.
    struct Model {
        slots: Slots,
        hooks: [Hook; 3],
        workers: [Worker; 3],
        inbox: HashMap<String, Vec<u64>>,
        accepted: HashSet<u64>,
        processed: Vec<u64>,
        next: u64,
    }

    fn repo(r: usize) -> String {
        format!("o/r{r}")
    }

    impl Model {
        fn reserved(&self) -> usize {
            self.hooks.iter().filter(|h| **h != Hook::Idle).count()
        }

        fn step(&mut self, op: &Op) {
            match *op {
                Op::Reserve(h, r) => {
                    if self.hooks[h] == Hook::Idle && self.slots.reserve() {
                        self.hooks[h] = Hook::Reserved(r);
                    }
                }
                Op::Accept(h) => {
                    if let Hook::Reserved(r) = self.hooks[h] {
                        self.next += 1;
                        self.inbox.entry(repo(r)).or_default().push(self.next);
                        self.accepted.insert(self.next);
                        self.hooks[h] = Hook::Accepted(r, self.next);
                    }
                }
                Op::Duplicate(h) => {
                    if let Hook::Reserved(_) = self.hooks[h] {
                        self.slots.unreserve();
                        self.hooks[h] = Hook::Idle;
                    }
                }
                Op::Commit(h) => {
                    if let Hook::Accepted(r, _) = self.hooks[h] {
                        self.slots.commit(&repo(r));
                        self.hooks[h] = Hook::Idle;
                    }
                }
                Op::Work(w) => self.work(w),
                Op::Reconcile(r) => {
                    self.slots.arm(&repo(r), true);
                }
            }
        }

        fn work(&mut self, w: usize) {
            match self.workers[w].clone() {
                Worker::Idle => {
                    if let Some(c) = self.slots.take() {
                        self.workers[w] = Worker::On(c.repository, Phase::PickUp);
                    }
                }
                Worker::On(r, Phase::PickUp) => {
                    self.slots.pick_up(&r);
                    self.workers[w] = Worker::On(r, Phase::Read);
                }
                Worker::On(r, Phase::Read) => {
                    let read = std::mem::take(self.inbox.entry(r.clone()).or_default());
                    let next = if read.is_empty() {
                        Phase::Finish
                    } else {
                        Phase::PickUp
                    };
                    self.processed.extend(read);
                    self.workers[w] = Worker::On(r, next);
                }
                Worker::On(r, Phase::Finish) => {
                    self.slots.finish(&r);
                    self.workers[w] = Worker::Idle;
                }
            }
        }

        /// Every repository with a committed delivery in its inbox is queued or worked on.
        fn check(&self) {
            self.slots.check(self.reserved());
            let uncommitted: HashSet<u64> = self
                .hooks
                .iter()
                .filter_map(|h| match h {
                    Hook::Accepted(_, id) => Some(*id),
                    _ => None,
                })
                .collect();
            for (r, ids) in &self.inbox {
                if ids.iter().any(|id| !uncommitted.contains(id)) {
                    let slot = self.slots.slots.get(r);
                    assert!(
                        slot.is_some_and(|s| s.queued || s.working),
                        "{r} holds {ids:?} and nobody will read it: {slot:?}"
                    );
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Whatever the interleaving of webhooks, workers and reconciliation ticks (and no
        /// sweep to rescue anything): each repository is queued at most once, the bound
        /// counts exactly the deliveries not yet picked up, and once the webhooks finish and
        /// the workers run dry every accepted delivery was processed, once.
        #[test]
        fn no_accepted_delivery_is_stranded(
            capacity in 1..6usize,
            ops in proptest::collection::vec(op(), 0..200),
        ) {
            let mut m = Model {
                slots: Slots::new(capacity),
                hooks: [Hook::Idle; 3],
                workers: [Worker::Idle, Worker::Idle, Worker::Idle],
                inbox: HashMap::new(),
                accepted: HashSet::new(),
                processed: Vec::new(),
                next: 0,
            };
            for op in &ops {
                m.step(op);
                m.check();
            }
            // The webhooks finish their requests ...
            for h in 0..3 {
                m.step(&Op::Accept(h));
                m.step(&Op::Commit(h));
                m.check();
            }
            // ... and the workers run until all are idle with nothing queued.
            let mut rounds = 0;
            while m.slots.queued() > 0 || m.workers.iter().any(|w| *w != Worker::Idle) {
                for w in 0..3 {
                    m.step(&Op::Work(w));
                    m.check();
                }
                rounds += 1;
                prop_assert!(rounds < 10_000, "the workers never run dry");
            }
            let processed: HashSet<u64> = m.processed.iter().copied().collect();
            prop_assert_eq!(processed.len(), m.processed.len(), "a delivery read twice");
            prop_assert_eq!(processed, m.accepted);
            prop_assert_eq!(m.slots.waiting, 0);
            prop_assert!(m.slots.slots.is_empty(), "{:?}", m.slots.slots);
        }
    }
}
