//! Runs and jobs from the GitHub REST API.

use futures::{StreamExt, TryStreamExt};
use serde::Deserialize;

use super::{RunPage, RunQuery, RunSource};
use crate::error::{Error, Result};
use crate::github::GitHubClient;
use crate::model::{Job, Run, RunId, ts};

/// GitHub caps filtered listings at this many results.
pub const RESULT_CAP: u64 = 1_000;

#[derive(Deserialize)]
struct RunsBody {
    #[serde(default)]
    total_count: Option<u64>,
    #[serde(default)]
    workflow_runs: Vec<Run>,
}

#[derive(Deserialize)]
struct WorkflowsBody {
    #[serde(default)]
    workflows: Vec<super::WorkflowRef>,
}

#[derive(Deserialize)]
#[serde(bound = "T: serde::de::DeserializeOwned")]
struct JobsBody<T> {
    #[serde(default = "Vec::new")]
    jobs: Vec<T>,
}

/// Pages of jobs read per run (100 a page).
const JOB_PAGES: usize = 50;

/// Pages of workflows read (100 a page).
const WORKFLOW_PAGES: usize = 20;

/// A [`RunSource`] over the REST API of one repository.
#[derive(Debug, Clone)]
pub struct GitHubSource {
    client: GitHubClient,
    concurrency: usize,
}

impl GitHubSource {
    /// A source using `client`; job fetches run 4 at a time.
    pub fn new(client: GitHubClient) -> Self {
        Self {
            client,
            concurrency: 4,
        }
    }

    /// Fetches jobs of up to `n` runs at once in [`GitHubSource::jobs_of`].
    #[must_use]
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// The underlying client (for its counters and rate-limit state).
    pub fn client(&self) -> &GitHubClient {
        &self.client
    }

    fn runs_uri(&self, q: &RunQuery) -> String {
        let base = match &q.workflow {
            Some(w) => format!(
                "{}/actions/workflows/{}/runs",
                self.client.repo_path(),
                encode_path(w)
            ),
            None => format!("{}/actions/runs", self.client.repo_path()),
        };
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        ser.append_pair("per_page", &q.per_page.clamp(1, 100).to_string());
        if q.page > 1 {
            ser.append_pair("page", &q.page.to_string());
        }
        for (k, v) in [
            ("branch", &q.branch),
            ("event", &q.event),
            ("status", &q.status),
            ("created", &q.created),
        ] {
            if let Some(v) = v {
                ser.append_pair(k, v);
            }
        }
        format!("{base}?{}", ser.finish())
    }

    /// One run by id.
    ///
    /// # Errors
    /// HTTP, transport or parse failures.
    pub async fn run(&self, id: RunId) -> Result<Run> {
        let uri = format!("{}/actions/runs/{}", self.client.repo_path(), id.0);
        let a = self.client.get(&uri).await?;
        serde_json::from_slice(a.body()).map_err(|e| Error::parse(format!("GET {uri}"), e))
    }

    /// Jobs of many runs, `concurrency` requests at a time, in the order of `runs`.
    ///
    /// # Errors
    /// The first failure.
    pub async fn jobs_of(&self, runs: &[RunId]) -> Result<Vec<(RunId, Vec<Job>)>> {
        futures::stream::iter(runs.iter().copied())
            .map(|id| async move { self.jobs(id).await.map(|j| (id, j)) })
            .buffered(self.concurrency)
            .try_collect()
            .await
    }

    /// Every run created in `[from_ms, to_ms]` matching `query`'s filters, getting past the
    /// 1,000-result cap of filtered listings by halving the `created` window until each part
    /// holds at most 1,000 runs. Newest first, without duplicates.
    ///
    /// # Errors
    /// HTTP, transport or parse failures.
    pub async fn runs_between(
        &self,
        query: &RunQuery,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Run>> {
        let mut out: Vec<Run> = Vec::new();
        let mut windows = vec![(from_ms, to_ms)];
        while let Some((a, b)) = windows.pop() {
            let q = RunQuery {
                created: Some(format!("{}..{}", ts::format_ms(a), ts::format_ms(b))),
                page: 1,
                per_page: 100,
                ..query.clone()
            };
            let first = self.runs(&q).await?;
            let total = first.total_count.unwrap_or(0);
            if total > RESULT_CAP && b - a >= 2_000 {
                // Whole seconds: [a, mid] and [mid + 1 s, b] do not overlap.
                let mid = a + ((b - a) / 2_000) * 1_000;
                windows.push((mid + 1_000, b));
                windows.push((a, mid));
                continue;
            }
            let mut page = first;
            loop {
                let next = page.next_page;
                out.append(&mut page.runs);
                match next {
                    Some(n) if u64::from(n) <= RESULT_CAP / 100 => {
                        page = self
                            .runs(&RunQuery {
                                page: n,
                                ..q.clone()
                            })
                            .await?;
                    }
                    _ => break,
                }
            }
        }
        out.sort_by_key(|r| std::cmp::Reverse((r.created_at, r.id)));
        out.dedup_by_key(|r| r.id);
        Ok(out)
    }
}

impl GitHubSource {
    /// The jobs of `run`, every page, each parsed as `T` (a [`Job`], or the evidence's job
    /// with its check-run URL): the one page loop over the jobs listing.
    pub(crate) async fn jobs_as<T: serde::de::DeserializeOwned>(
        &self,
        run: RunId,
    ) -> Result<Vec<T>> {
        let uri = format!(
            "{}/actions/runs/{}/jobs?per_page=100",
            self.client.repo_path(),
            run.0
        );
        let mut pages = self.client.pages(&uri, JOB_PAGES);
        let mut jobs = Vec::new();
        while let Some(a) = pages.next().await? {
            let body: JobsBody<T> = serde_json::from_slice(a.body())
                .map_err(|e| Error::parse("list jobs response", e))?;
            jobs.extend(body.jobs);
        }
        Ok(jobs)
    }
}

fn encode_path(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn page_param(url: &str) -> Option<u32> {
    let query = url.split_once('?')?.1;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "page")
        .and_then(|(_, v)| v.parse().ok())
}

#[async_trait::async_trait]
impl RunSource for GitHubSource {
    async fn runs(&self, query: &RunQuery) -> Result<RunPage> {
        let uri = self.runs_uri(query);
        let a = self.client.get(&uri).await?;
        if a.not_modified() && a.body().is_empty() {
            // Unchanged since an ETag persisted by another process: no page is cached here.
            return Ok(RunPage {
                not_modified: true,
                ..RunPage::default()
            });
        }
        let body: RunsBody = serde_json::from_slice(a.body())
            .map_err(|e| Error::parse("list workflow runs response", e))?;
        Ok(RunPage {
            runs: body.workflow_runs,
            total_count: body.total_count,
            next_page: a.next_link().as_deref().and_then(page_param),
            not_modified: a.not_modified(),
        })
    }

    fn list_etag(&self, query: &RunQuery) -> Option<String> {
        self.client.etag_of(&self.runs_uri(query))
    }

    async fn workflows(&self) -> Result<Vec<super::WorkflowRef>> {
        let uri = format!("{}/actions/workflows?per_page=100", self.client.repo_path());
        let mut pages = self.client.pages(&uri, WORKFLOW_PAGES);
        let mut all = Vec::new();
        while let Some(a) = pages.next().await? {
            let body: WorkflowsBody = serde_json::from_slice(a.body())
                .map_err(|e| Error::parse("list repository workflows response", e))?;
            all.extend(body.workflows);
        }
        Ok(all)
    }

    async fn run(&self, id: RunId) -> Result<Option<Run>> {
        GitHubSource::run(self, id).await.map(Some)
    }

    fn seed_list_etag(&self, query: &RunQuery, etag: &str) {
        self.client.seed_etag(&self.runs_uri(query), etag);
    }

    async fn jobs(&self, run: RunId) -> Result<Vec<Job>> {
        self.jobs_as(run).await
    }
}
