//! Incremental sync: each [`Poller::poll`] returns the runs completed since the last one.
//!
//! Runs are listed newest first, 100 per page, and paging stops at the first page that
//! reaches a run already seen. So N new runs cost at most `ceil(N/100) + 1` list requests, and
//! a cycle with nothing new costs one (a 304 when the source does conditional requests).
//! Runs seen in progress are remembered and reported once they complete; paging then goes on
//! until the oldest of them, at most [`PENDING_EXTRA_PAGES`] pages past the newest seen run
//! (older ones are given up, so a stuck run cannot make every cycle page deep). Jobs are fetched only for failed runs, to tell runner errors from
//! test failures.
//!
//! In GitHub Actions each monitor run is a new process. Persist [`Poller::state`] (it is
//! `Serialize`: a JSON file kept with `actions/cache`, for example) and restore it with
//! [`Poller::with_state`]: the next process resumes after the last run seen, still follows the
//! runs seen in progress, and a cycle with nothing new costs one conditional request (a 304).
//!
//! ```no_run
//! # async fn demo(source: flow_telemetry::source::github::GitHubSource) -> Result<(), Box<dyn std::error::Error>> {
//! use flow_telemetry::RunQuery;
//! use flow_telemetry::source::sync::{Poller, PollerState};
//!
//! let path = "poller-state.json";
//! let state: PollerState = match std::fs::read_to_string(path) {
//!     Ok(json) => serde_json::from_str(&json)?,
//!     Err(_) => PollerState::default(),
//! };
//! let mut poller = Poller::new(source, RunQuery::new()).with_state(state);
//! let batch = poller.poll().await?;
//! // ... feed batch.completed to a Monitor ...
//! std::fs::write(path, serde_json::to_string(&poller.state())?)?;
//! # Ok(()) }
//! ```

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{RunQuery, RunSource};
use crate::error::Result;
use crate::model::{Job, Outcome, Run, RunId};

/// Pages read past the newest seen run to follow runs seen in progress.
pub const PENDING_EXTRA_PAGES: u32 = 2;

/// What one poll found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncBatch {
    /// Runs completed since the last poll, oldest completion first.
    pub completed: Vec<Run>,
    /// Jobs of the failed runs among them.
    pub jobs: Vec<(RunId, Vec<Job>)>,
    /// List requests made.
    pub list_requests: u32,
    /// Job requests made (one per failed run; more when a run has over 100 jobs).
    pub job_requests: u32,
    /// True when the page limit (the first poll's pages, or the later polls' maximum) stopped
    /// the listing while older pages remained that could hold runs not seen yet: the batch
    /// may miss runs.
    pub truncated: bool,
}

/// Where a [`Poller`] is, to carry across processes: serialize it after a poll, restore it
/// with [`Poller::with_state`]. Unknown or missing fields take their defaults, so an older
/// file still loads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PollerState {
    /// The newest run id seen; the next poll reports only newer runs (and `pending` ones).
    pub last_seen: Option<RunId>,
    /// `created_at` (unix ms) of that run, e.g. to bound a `created` backfill.
    pub last_created_at: Option<i64>,
    /// Runs seen in progress, reported once they complete.
    pub pending: Vec<RunId>,
    /// ETag of the last answer to the first list page; the next poll sends it as
    /// `If-None-Match`, so a cycle with nothing new is one 304.
    pub etag: Option<String>,
}

/// Polls a [`RunSource`] incrementally.
#[derive(Debug)]
pub struct Poller<S> {
    source: S,
    query: RunQuery,
    last_seen: Option<RunId>,
    last_created_at: Option<i64>,
    pending: BTreeSet<RunId>,
    first_pages: u32,
    max_pages: u32,
    concurrency: usize,
}

impl<S: RunSource> Poller<S> {
    /// A poller over `source` listing `query` (its page is ignored). The first poll reads one
    /// page.
    pub fn new(source: S, query: RunQuery) -> Self {
        Self {
            source,
            query,
            last_seen: None,
            last_created_at: None,
            pending: BTreeSet::new(),
            first_pages: 1,
            max_pages: 100,
            concurrency: 4,
        }
    }

    /// Reads up to `pages` pages on the first poll (the backfill).
    #[must_use]
    pub fn with_first_pages(mut self, pages: u32) -> Self {
        self.first_pages = pages.max(1);
        self
    }

    /// Fetches jobs of up to `n` failed runs at once.
    #[must_use]
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Resumes after `run` (e.g. persisted from a previous process).
    #[must_use]
    pub fn with_last_seen(mut self, run: RunId) -> Self {
        self.last_seen = Some(run);
        self
    }

    /// Resumes from `state`, persisted from a previous process by [`Poller::state`]: the
    /// last run seen, the runs seen in progress and, when the source does conditional
    /// requests, the first page's ETag.
    #[must_use]
    pub fn with_state(mut self, state: PollerState) -> Self {
        self.last_seen = state.last_seen;
        self.last_created_at = state.last_created_at;
        self.pending = state.pending.into_iter().collect();
        if let Some(etag) = &state.etag {
            self.source.seed_list_etag(&self.first_page(), etag);
        }
        self
    }

    /// Where this poller is, to persist and restore with [`Poller::with_state`].
    pub fn state(&self) -> PollerState {
        PollerState {
            last_seen: self.last_seen,
            last_created_at: self.last_created_at,
            pending: self.pending.iter().copied().collect(),
            etag: self.source.list_etag(&self.first_page()),
        }
    }

    fn first_page(&self) -> RunQuery {
        RunQuery {
            page: 1,
            ..self.query.clone()
        }
    }

    /// The newest run id seen so far.
    pub fn last_seen(&self) -> Option<RunId> {
        self.last_seen
    }

    /// The source.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// Lists what is new and fetches jobs of new failed runs.
    ///
    /// # Errors
    /// The source's failures; the poller's state is unchanged then.
    pub async fn poll(&mut self) -> Result<SyncBatch> {
        let mut batch = SyncBatch::default();
        let oldest_pending = self.pending.first().copied();
        let max_pages = if self.last_seen.is_none() {
            self.first_pages
        } else {
            self.max_pages
        };
        let mut fresh: Vec<Run> = Vec::new();
        let mut page = 1;
        let mut pages_past_seen = 0;
        let mut horizon: Option<RunId> = None;
        loop {
            let q = RunQuery {
                page,
                ..self.query.clone()
            };
            let p = self.source.runs(&q).await?;
            batch.list_requests += 1;
            if p.not_modified && self.last_seen.is_some() {
                break;
            }
            horizon = p.runs.iter().map(|r| r.id).min().or(horizon);
            let seen = |s: Option<RunId>| s.is_some_and(|s| p.runs.iter().any(|r| r.id <= s));
            if pages_past_seen > 0 || seen(self.last_seen) {
                pages_past_seen += 1;
            }
            let done = match oldest_pending {
                // Runs seen in progress are followed a few pages past the newest seen run;
                // older ones are given up so that a stuck run cannot make every cycle page deep.
                Some(_) if pages_past_seen > 0 => {
                    seen(oldest_pending) || pages_past_seen > PENDING_EXTRA_PAGES
                }
                _ => pages_past_seen > 0,
            };
            fresh.extend(p.runs);
            match p.next_page {
                Some(n) if !done && page < max_pages => page = n,
                Some(_) if !done => {
                    batch.truncated = true;
                    tracing::warn!(target: "flow.monitor", pages = page, "stopped listing at the page limit: older runs were not read");
                    break;
                }
                _ => break,
            }
        }
        let mut newest = self.last_seen;
        let mut newest_created = self.last_created_at;
        let mut pending = self.pending.clone();
        if let Some(h) = horizon {
            let before = pending.len();
            pending.retain(|id| *id >= h);
            if pending.len() < before {
                tracing::warn!(target: "flow.monitor", dropped = before - pending.len(), "no longer following runs still in progress beyond the paging horizon");
            }
        }
        for run in fresh {
            let new = self.last_seen.is_none_or(|l| run.id > l);
            if !new && !pending.contains(&run.id) {
                continue;
            }
            if newest.is_none_or(|n| run.id > n) {
                newest = Some(run.id);
                newest_created = run.created_at;
            }
            if run.is_completed() {
                pending.remove(&run.id);
                batch.completed.push(run);
            } else {
                pending.insert(run.id);
            }
        }
        batch.completed.sort_by_key(|r| (r.updated_at, r.id));
        batch.completed.dedup_by_key(|r| r.id);

        let failed: Vec<RunId> = batch
            .completed
            .iter()
            .filter(|r| r.outcome() == Outcome::Failure)
            .map(|r| r.id)
            .collect();
        let source = &self.source;
        let jobs: Vec<(RunId, Vec<Job>)> = {
            use futures::{StreamExt, TryStreamExt};
            futures::stream::iter(failed)
                .map(|id| async move { source.jobs(id).await.map(|j| (id, j)) })
                .buffered(self.concurrency)
                .try_collect()
                .await?
        };
        batch.job_requests = jobs.len() as u32;
        for (id, js) in &jobs {
            if js.iter().any(Job::is_runner_error)
                && let Some(r) = batch.completed.iter_mut().find(|r| r.id == *id)
            {
                r.runner_error = true;
            }
        }
        batch.jobs = jobs;
        self.last_seen = newest;
        self.last_created_at = newest_created;
        self.pending = pending;
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::model::{Conclusion, RunStatus};
    use crate::source::{MockRunSource, RunPage};

    fn run(id: u64) -> Run {
        Run {
            id: RunId(id),
            status: RunStatus::Completed,
            conclusion: Some(Conclusion::Success),
            updated_at: Some(id as i64),
            ..Run::default()
        }
    }

    #[tokio::test]
    async fn stops_paging_at_the_first_run_already_seen() {
        let mut src = MockRunSource::new();
        src.expect_runs()
            .withf(|q| q.page == 1)
            .times(1)
            .returning(|_| {
                Ok(RunPage {
                    runs: (5..=12).rev().map(run).collect(),
                    total_count: Some(500),
                    next_page: Some(2),
                    not_modified: false,
                })
            });
        src.expect_jobs().never();
        let mut p = Poller::new(src, RunQuery::new()).with_last_seen(RunId(8));
        let b = p.poll().await.unwrap();
        let ids: Vec<u64> = b.completed.iter().map(|r| r.id.0).collect();
        assert_eq!(ids, vec![9, 10, 11, 12]);
        assert_eq!(b.list_requests, 1);
        assert_eq!(p.last_seen(), Some(RunId(12)));
    }

    #[tokio::test]
    async fn a_failed_job_without_a_failed_step_is_a_runner_error() {
        let mut src = MockRunSource::new();
        src.expect_runs().returning(|_| {
            let mut failed = run(2);
            failed.conclusion = Some(Conclusion::Failure);
            let mut test_failure = run(3);
            test_failure.conclusion = Some(Conclusion::Failure);
            Ok(RunPage {
                runs: vec![test_failure, failed, run(1)],
                ..RunPage::default()
            })
        });
        src.expect_jobs().times(2).returning(|id| {
            let step = |c| crate::model::Step {
                conclusion: Some(c),
                ..crate::model::Step::default()
            };
            let failed_step = if id == RunId(3) {
                Conclusion::Failure
            } else {
                Conclusion::Success
            };
            Ok(vec![Job {
                run_id: id,
                conclusion: Some(Conclusion::Failure),
                steps: vec![step(Conclusion::Success), step(failed_step)],
                ..Job::default()
            }])
        });
        let mut p = Poller::new(src, RunQuery::new()).with_last_seen(RunId(0));
        let b = p.poll().await.unwrap();
        let outcomes: Vec<(u64, Outcome)> =
            b.completed.iter().map(|r| (r.id.0, r.outcome())).collect();
        assert_eq!(
            outcomes,
            vec![
                (1, Outcome::Success),
                (2, Outcome::Error),
                (3, Outcome::Failure)
            ]
        );
        assert_eq!(b.job_requests, 2);
    }

    #[tokio::test]
    async fn a_stuck_run_in_progress_is_followed_only_a_few_pages() {
        use std::sync::{Arc, Mutex};
        let all: Arc<Mutex<Vec<Run>>> = Arc::new(Mutex::new(
            (1..=500)
                .map(|i| {
                    let mut r = run(i);
                    r.created_at = Some(i as i64);
                    if i == 150 {
                        r.status = RunStatus::InProgress;
                        r.conclusion = None;
                    }
                    r
                })
                .collect(),
        ));
        let mut src = MockRunSource::new();
        let shared = all.clone();
        src.expect_runs()
            .returning(move |q| Ok(crate::source::page_of(&shared.lock().unwrap(), q)));
        let mut p = Poller::new(src, RunQuery::new()).with_first_pages(5);
        let b = p.poll().await.unwrap();
        assert_eq!((b.completed.len(), b.list_requests), (499, 5));
        let mut new = run(501);
        new.created_at = Some(501);
        all.lock().unwrap().push(new);
        let b = p.poll().await.unwrap();
        assert_eq!(b.completed.len(), 1);
        assert_eq!(
            b.list_requests,
            1 + PENDING_EXTRA_PAGES,
            "followed two pages, then gave up"
        );
        let b = p.poll().await.unwrap();
        assert_eq!(
            (b.completed.len(), b.list_requests),
            (0, 1),
            "back to one request"
        );
    }

    #[tokio::test]
    async fn a_failed_poll_leaves_the_state_unchanged() {
        let mut src = MockRunSource::new();
        src.expect_runs()
            .returning(|_| Err(crate::Error::invalid("x", "boom")));
        let mut p = Poller::new(src, RunQuery::new()).with_last_seen(RunId(3));
        assert!(p.poll().await.is_err());
        assert_eq!(p.last_seen(), Some(RunId(3)));
    }
}
