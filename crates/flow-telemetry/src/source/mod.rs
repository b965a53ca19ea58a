//! Where runs come from: the [`RunSource`] trait and its implementations.
//!
//! - [`github::GitHubSource`]: the REST API through octocrab, with paging, rate limits and
//!   conditional requests;
//! - [`event::EventSource`]: one `workflow_run` / `workflow_job` payload at `GITHUB_EVENT_PATH`;
//! - [`file::FileSource`]: `gh run list --json` output, REST pages or NDJSON.
//!
//! [`evidence::EvidenceSource`] is the seam for what explains a failure (annotations, log
//! tails, commits), implemented by the same GitHub source.

pub mod event;
pub mod evidence;
pub mod file;
pub mod github;
pub mod stream;
pub mod sync;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::{Job, Run, RunId};

/// A workflow as the workflows list names it (remembered once resolved).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowRef {
    /// Numeric id.
    pub id: u64,
    /// Display name (`CI`, `Build / Test`).
    pub name: String,
    /// File path (`.github/workflows/ci.yml`).
    pub path: String,
}

impl WorkflowRef {
    /// The file name of [`WorkflowRef::path`] (`ci.yml`).
    pub fn file_name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

/// Which runs to list. Mirrors the query parameters of GitHub's "list workflow runs".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunQuery {
    /// Only runs of this workflow: its numeric id or file name (`ci.yml`).
    pub workflow: Option<String>,
    /// Only runs on this branch.
    pub branch: Option<String>,
    /// Only runs for this event.
    pub event: Option<String>,
    /// Only runs with this status or conclusion (`completed`, `failure`, ...).
    pub status: Option<String>,
    /// Only runs created in this range, GitHub's syntax (`2024-01-01..2024-01-31`).
    pub created: Option<String>,
    /// Page number, from 1.
    pub page: u32,
    /// Results per page, 1 to 100.
    pub per_page: u8,
}

impl Default for RunQuery {
    fn default() -> Self {
        Self {
            workflow: None,
            branch: None,
            event: None,
            status: None,
            created: None,
            page: 1,
            per_page: 100,
        }
    }
}

impl RunQuery {
    /// The first page of every run, 100 per page.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only runs of `workflow` (id or file name).
    #[must_use]
    pub fn with_workflow(mut self, workflow: impl Into<String>) -> Self {
        self.workflow = Some(workflow.into());
        self
    }

    /// Only runs on `branch`.
    #[must_use]
    pub fn with_branch(mut self, branch: impl Into<String>) -> Self {
        self.branch = Some(branch.into());
        self
    }

    /// Only runs created in `range` (GitHub syntax, e.g. `2024-01-01T00:00:00Z..2024-01-02T00:00:00Z`).
    #[must_use]
    pub fn with_created(mut self, range: impl Into<String>) -> Self {
        self.created = Some(range.into());
        self
    }

    /// True when `r` passes the workflow, branch, event and status filters (not the page).
    pub fn matches(&self, r: &Run) -> bool {
        self.workflow.as_deref().is_none_or(|w| {
            r.workflow_id.0.to_string() == w
                || r.path
                    .rsplit('/')
                    .next()
                    .is_some_and(|f| f.split('@').next() == Some(w))
                || r.name == w
        }) && self.branch.as_deref().is_none_or(|b| r.head_branch == b)
            && self.event.as_deref().is_none_or(|e| r.event == e)
            && self.status.as_deref().is_none_or(|s| {
                r.status.as_str() == s || r.conclusion.is_some_and(|c| c.as_str() == s)
            })
    }

    /// Page `page` (from 1).
    #[must_use]
    pub fn with_page(mut self, page: u32) -> Self {
        self.page = page.max(1);
        self
    }

    /// True when any filter is set (GitHub then caps results at 1,000).
    pub fn is_filtered(&self) -> bool {
        self.branch.is_some()
            || self.event.is_some()
            || self.status.is_some()
            || self.created.is_some()
    }
}

/// One page of runs, newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunPage {
    /// The runs on this page.
    pub runs: Vec<Run>,
    /// GitHub's `total_count` for the query, when known.
    pub total_count: Option<u64>,
    /// The next page number, when there is one.
    pub next_page: Option<u32>,
    /// The server answered 304: nothing changed since the last identical request, and `runs`
    /// holds the cached page.
    pub not_modified: bool,
}

/// A source of workflow runs and their jobs.
#[cfg_attr(test, mockall::automock)]
#[async_trait::async_trait]
pub trait RunSource: Send + Sync {
    /// One page of runs matching `query`, newest first.
    ///
    /// # Errors
    /// Transport, HTTP or parse failures of the underlying source.
    async fn runs(&self, query: &RunQuery) -> Result<RunPage>;

    /// The jobs (with steps) of run `run`.
    ///
    /// # Errors
    /// Transport, HTTP or parse failures of the underlying source.
    async fn jobs(&self, run: RunId) -> Result<Vec<Job>>;

    /// The ETag of the last answer to `query`, for persisting across processes (see
    /// [`sync::PollerState`]). `None` (the default) for sources without conditional requests.
    fn list_etag(&self, _query: &RunQuery) -> Option<String> {
        None
    }

    /// Makes the next request for `query` conditional on `etag`, persisted by another
    /// process: when nothing changed, the answer is a [`RunPage`] with `not_modified` set and
    /// no runs. The default does nothing.
    fn seed_list_etag(&self, _query: &RunQuery, _etag: &str) {}

    /// The repository's workflows, to resolve a display name to an id. Empty (the default)
    /// for sources that cannot list them; they match runs by name themselves.
    ///
    /// # Errors
    /// Transport, HTTP or parse failures of the underlying source.
    async fn workflows(&self) -> Result<Vec<WorkflowRef>> {
        Ok(Vec::new())
    }

    /// One run by id, `None` (the default) for sources that cannot fetch one.
    ///
    /// # Errors
    /// Transport, HTTP or parse failures of the underlying source.
    async fn run(&self, _id: RunId) -> Result<Option<Run>> {
        Ok(None)
    }
}

#[async_trait::async_trait]
impl<T: RunSource + ?Sized> RunSource for Arc<T> {
    async fn runs(&self, query: &RunQuery) -> Result<RunPage> {
        (**self).runs(query).await
    }

    async fn jobs(&self, run: RunId) -> Result<Vec<Job>> {
        (**self).jobs(run).await
    }

    fn list_etag(&self, query: &RunQuery) -> Option<String> {
        (**self).list_etag(query)
    }

    fn seed_list_etag(&self, query: &RunQuery, etag: &str) {
        (**self).seed_list_etag(query, etag);
    }

    async fn workflows(&self) -> Result<Vec<WorkflowRef>> {
        (**self).workflows().await
    }

    async fn run(&self, id: RunId) -> Result<Option<Run>> {
        (**self).run(id).await
    }
}

/// Filters and pages an in-memory list of runs the way GitHub would (newest first).
pub(crate) fn page_of(all: &[Run], query: &RunQuery) -> RunPage {
    let mut matching: Vec<&Run> = all.iter().filter(|r| query.matches(r)).collect();
    matching.sort_by_key(|r| std::cmp::Reverse((r.created_at, r.id)));
    let per = usize::from(query.per_page.clamp(1, 100));
    let start = (query.page.max(1) as usize - 1) * per;
    let runs: Vec<Run> = matching
        .iter()
        .skip(start)
        .take(per)
        .map(|r| (*r).clone())
        .collect();
    let next_page = (start + per < matching.len()).then_some(query.page.max(1) + 1);
    RunPage {
        runs,
        total_count: Some(matching.len() as u64),
        next_page,
        not_modified: false,
    }
}
