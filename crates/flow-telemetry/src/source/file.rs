//! Exported history on disk: `gh run list --json …`, REST pages and NDJSON.

use serde::Deserialize;

use super::stream::{ReadOptions, ReadStats, read_runs};
use super::{RunPage, RunQuery, RunSource, page_of};
use crate::error::{Error, ErrorKind, Result};
use crate::history::History;
use crate::model::{Conclusion, Job, Run, RunId, RunStatus, WorkflowId, ts};

/// What `gh run list --json <fields>` writes for one run (camelCase fields).
#[derive(Debug, Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct GhRun {
    database_id: Option<u64>,
    workflow_database_id: Option<u64>,
    workflow_name: Option<String>,
    name: Option<String>,
    head_branch: Option<String>,
    head_sha: Option<String>,
    event: Option<String>,
    status: Option<String>,
    conclusion: Option<String>,
    attempt: Option<u32>,
    number: Option<u64>,
    created_at: Option<String>,
    started_at: Option<String>,
    updated_at: Option<String>,
    url: Option<String>,
}

impl From<GhRun> for Run {
    fn from(g: GhRun) -> Self {
        let t = |s: &Option<String>| s.as_deref().and_then(ts::parse_rfc3339_ms);
        Run {
            id: RunId(g.database_id.unwrap_or_default()),
            name: g.workflow_name.or(g.name).unwrap_or_default(),
            workflow_id: WorkflowId(g.workflow_database_id.unwrap_or_default()),
            path: String::new(),
            head_branch: g.head_branch.unwrap_or_default(),
            head_sha: g.head_sha.unwrap_or_default(),
            event: g.event.unwrap_or_default(),
            status: g
                .status
                .as_deref()
                .map(RunStatus::parse)
                .unwrap_or_default(),
            conclusion: g
                .conclusion
                .as_deref()
                .filter(|c| !c.is_empty())
                .map(Conclusion::parse),
            run_attempt: g.attempt.unwrap_or(1).max(1),
            run_number: g.number.unwrap_or_default(),
            created_at: t(&g.created_at),
            run_started_at: t(&g.started_at),
            updated_at: t(&g.updated_at),
            actor: None,
            html_url: g.url.unwrap_or_default(),
            runner_error: false,
        }
    }
}

fn is_gh_shape(v: &serde_json::Value) -> bool {
    v.get("databaseId").is_some() || v.get("workflowName").is_some()
}

fn run_from_value(v: serde_json::Value, what: &str) -> Result<Run> {
    if is_gh_shape(&v) {
        serde_json::from_value::<GhRun>(v)
            .map(Run::from)
            .map_err(|e| Error::parse(what, e))
    } else {
        serde_json::from_value(v).map_err(|e| Error::parse(what, e))
    }
}

/// Parses one NDJSON line holding a REST run object (or a `gh` run object).
///
/// # Errors
/// [`ErrorKind::Parse`] when the line is not a JSON object with a numeric `id`.
pub fn parse_ndjson_line(line: &str) -> Result<Run> {
    serde_json::from_str::<Run>(line).or_else(|e| {
        if line.contains("\"databaseId\"") {
            serde_json::from_str::<GhRun>(line)
                .map(Run::from)
                .map_err(|e| Error::parse("ndjson line", e))
        } else {
            Err(Error::parse("ndjson line", e))
        }
    })
}

/// Parses exported history in any supported shape, detected from the content: a REST page
/// `{"total_count", "workflow_runs": [...]}`, several pages (a JSON array of them, or one after
/// another), a JSON array (of `gh run list --json` objects or of REST runs), one REST run
/// object or `workflow_run` event, or NDJSON (one run per line; blank lines skipped).
///
/// This is the streaming, typed parser of [`stream`](super::stream) collecting into a `Vec`;
/// use [`stream::read_runs`](super::stream::read_runs) to see runs one at a time.
///
/// # Errors
/// [`ErrorKind::Parse`] naming the line, page and run, or element that is not a run.
pub fn parse_runs(text: &str) -> Result<Vec<Run>> {
    let mut runs = Vec::new();
    super::stream::read_runs_from_slice(
        text.as_bytes(),
        &super::stream::ReadOptions::default().threads(1),
        |r| runs.push(r),
    )?;
    Ok(runs)
}

/// The reference parser [`parse_runs`] replaced: builds a `serde_json::Value` tree of the whole
/// text, then converts it. Kept as the baseline of the benchmarks and the oracle of the
/// property tests; it reads one page, not several.
///
/// # Errors
/// [`ErrorKind::Parse`] naming the line or element that is not a run.
pub fn parse_runs_tree(text: &str) -> Result<Vec<Run>> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        let values: Vec<serde_json::Value> =
            serde_json::from_str(trimmed).map_err(|e| Error::parse("json array of runs", e))?;
        return values
            .into_iter()
            .enumerate()
            .map(|(i, v)| run_from_value(v, &format!("element {i} of the array")))
            .collect();
    }
    if trimmed.starts_with('{')
        && let Ok(v) = serde_json::from_str::<serde_json::Value>(trimmed)
    {
        if let Some(runs) = v.get("workflow_runs") {
            return serde_json::from_value(runs.clone())
                .map_err(|e| Error::parse("`workflow_runs` of the REST page", e));
        }
        if let Some(run) = v.get("workflow_run") {
            return Ok(vec![run_from_value(
                run.clone(),
                "`workflow_run` of the event",
            )?]);
        }
        return Ok(vec![run_from_value(v, "run object")?]);
    }
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            parse_ndjson_line(l).map_err(|e| match e.kind() {
                ErrorKind::Parse { detail, .. } => {
                    Error::parse(format!("ndjson line {}", i + 1), detail)
                }
                _ => e,
            })
        })
        .collect()
}

/// Serializes runs as NDJSON, one REST-shaped run object per line.
///
/// # Errors
/// Never in practice; serialization of the model cannot fail.
pub fn to_ndjson(runs: &[Run]) -> Result<String> {
    let mut out = String::with_capacity(runs.len() * 400);
    for r in runs {
        out.push_str(&serde_json::to_string(r).map_err(|e| Error::parse("run", e))?);
        out.push('\n');
    }
    Ok(out)
}

/// Parses a REST "list jobs for a workflow run" page (`{"total_count", "jobs": [...]}`) or a
/// JSON array of jobs.
///
/// # Errors
/// [`ErrorKind::Parse`] when the text is neither.
pub fn parse_jobs(text: &str) -> Result<Vec<Job>> {
    #[derive(Deserialize)]
    struct Page {
        #[serde(default)]
        jobs: Vec<Job>,
    }
    if text.trim_start().starts_with('[') {
        serde_json::from_str(text).map_err(|e| Error::parse("json array of jobs", e))
    } else {
        serde_json::from_str::<Page>(text)
            .map(|p| p.jobs)
            .map_err(|e| Error::parse("jobs page", e))
    }
}

/// Runs (and optionally jobs) held in memory, loaded from exported files.
#[derive(Debug, Clone, Default)]
pub struct FileSource {
    runs: Vec<Run>,
    jobs: Vec<Job>,
}

impl FileSource {
    /// A source over `runs`.
    pub fn new(runs: Vec<Run>) -> Self {
        Self {
            runs,
            jobs: Vec::new(),
        }
    }

    /// Parses `text` in any shape [`parse_runs`] accepts.
    ///
    /// # Errors
    /// As [`parse_runs`].
    pub fn from_text(text: &str) -> Result<Self> {
        parse_runs(text).map(Self::new)
    }

    /// Reads and parses the file at `path`, streaming (see [`super::stream::read_runs`]).
    ///
    /// # Errors
    /// [`ErrorKind::Io`] when it cannot be read, else as [`parse_runs`].
    pub fn from_path(path: impl AsRef<std::path::Path>) -> Result<Self> {
        let path = path.as_ref();
        let io = |e: std::io::Error| {
            Error::new(ErrorKind::Io {
                path: path.display().to_string(),
                detail: e.to_string(),
            })
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let mut runs = Vec::new();
        super::stream::read_runs(file, &super::stream::ReadOptions::default(), |r| {
            runs.push(r);
        })?;
        Ok(Self::new(runs))
    }

    /// Adds jobs that [`RunSource::jobs`] will answer with.
    #[must_use]
    pub fn with_jobs(mut self, jobs: Vec<Job>) -> Self {
        self.jobs = jobs;
        self
    }

    /// Every run held, in file order.
    pub fn all(&self) -> &[Run] {
        &self.runs
    }
}

#[async_trait::async_trait]
impl RunSource for FileSource {
    async fn runs(&self, query: &RunQuery) -> Result<RunPage> {
        Ok(page_of(&self.runs, query))
    }

    async fn jobs(&self, run: RunId) -> Result<Vec<Job>> {
        Ok(self
            .jobs
            .iter()
            .filter(|j| j.run_id == run)
            .cloned()
            .collect())
    }
}

/// What [`ingest`] keeps and filters.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Workflow, branch, event and status filters (its page fields are ignored).
    pub query: RunQuery,
    /// Only runs created at or after this time, unix ms.
    pub since: Option<i64>,
    /// Only runs created before this time, unix ms.
    pub until: Option<i64>,
    /// Newest runs kept per workflow (by completion) for the windowed KPIs and the detectors.
    pub retain: usize,
    /// How the file is read.
    pub read: ReadOptions,
}

impl Default for IngestOptions {
    fn default() -> Self {
        Self {
            query: RunQuery::new(),
            since: None,
            until: None,
            retain: DEFAULT_RETAIN,
            read: ReadOptions::default(),
        }
    }
}

/// Runs kept per workflow by default: four times the default KPI window, so the detectors'
/// baselines and warm-up are long past when the window's runs are replayed.
pub const DEFAULT_RETAIN: usize = 2_000;

/// What [`ingest`] read: whole-history KPIs of every matching run, and the newest runs of each
/// workflow for the windowed KPIs and detection.
#[derive(Debug, Clone)]
pub struct Ingested {
    /// Whole-history KPIs of every run that passed the filters.
    pub history: History,
    /// The newest [`IngestOptions::retain`] runs of each workflow, in completion order.
    pub source: FileSource,
    /// What the reader saw (runs, skipped malformed records, bytes).
    pub stats: ReadStats,
    /// Runs left out by the filters.
    pub filtered_out: u64,
    /// Repeated runs (same id and attempt, as overlapping page exports hold) counted once.
    pub duplicates: u64,
}

/// A run ordered by completion, for the retention heaps.
#[derive(Debug)]
struct ByCompletion(Run);

impl ByCompletion {
    fn key(&self) -> (Option<i64>, Option<i64>, u64, u32) {
        let r = &self.0;
        (
            r.updated_at.or(r.created_at),
            r.created_at,
            r.id.0,
            r.run_attempt,
        )
    }
}

impl PartialEq for ByCompletion {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for ByCompletion {}
impl PartialOrd for ByCompletion {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ByCompletion {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

/// Recently seen (id, attempt) pairs: catches the repeats of overlapping page exports in
/// bounded memory.
#[derive(Debug, Default)]
struct Recent {
    set: std::collections::HashSet<(u64, u32)>,
    order: std::collections::VecDeque<(u64, u32)>,
}

impl Recent {
    const CAP: usize = 4_096;

    /// False when `key` was seen among the last [`Self::CAP`] runs.
    fn insert(&mut self, key: (u64, u32)) -> bool {
        if !self.set.insert(key) {
            return false;
        }
        self.order.push_back(key);
        if self.order.len() > Self::CAP
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        true
    }
}

/// Reads an export from `reader` in one streaming pass: every run that passes the filters is
/// folded into whole-history KPIs, and only the newest `retain` runs of each workflow are kept.
/// Memory is bounded by the workflows × `retain`, not by the file.
///
/// # Errors
/// As [`read_runs`].
pub fn ingest<R: std::io::Read>(reader: R, opts: &IngestOptions) -> Result<Ingested> {
    use std::cmp::Reverse;
    use std::collections::{BinaryHeap, HashMap};
    let mut history = History::new();
    let mut kept: HashMap<String, BinaryHeap<Reverse<ByCompletion>>> = HashMap::new();
    let mut recent = Recent::default();
    let (mut filtered_out, mut duplicates) = (0u64, 0u64);
    let retain = opts.retain.max(1);
    let stats = read_runs(reader, &opts.read, |run| {
        let in_range = match (opts.since, opts.until, run.created_at) {
            (None, None, _) => true,
            (_, _, None) => false,
            (since, until, Some(t)) => since.is_none_or(|s| t >= s) && until.is_none_or(|u| t < u),
        };
        if !in_range || !opts.query.matches(&run) {
            filtered_out += 1;
            return;
        }
        if !recent.insert((run.id.0, run.run_attempt)) {
            duplicates += 1;
            return;
        }
        history.add(&run);
        let heap = match kept.get_mut(run.workflow_key().as_ref()) {
            Some(h) => h,
            None => kept.entry(run.workflow_key().into_owned()).or_default(),
        };
        let run = ByCompletion(run);
        if heap.len() < retain {
            heap.push(Reverse(run));
        } else if heap.peek().is_some_and(|Reverse(oldest)| *oldest < run) {
            heap.pop();
            heap.push(Reverse(run));
        }
    })?;
    history.invalid = stats.invalid;
    let mut runs: Vec<ByCompletion> = kept
        .into_values()
        .flat_map(|h| h.into_iter().map(|Reverse(r)| r))
        .collect();
    runs.sort();
    Ok(Ingested {
        history,
        source: FileSource::new(runs.into_iter().map(|r| r.0).collect()),
        stats,
        filtered_out,
        duplicates,
    })
}

/// [`ingest`] of the file at `path`.
///
/// # Errors
/// [`ErrorKind::Io`] when it cannot be opened, else as [`ingest`].
pub fn ingest_path(path: impl AsRef<std::path::Path>, opts: &IngestOptions) -> Result<Ingested> {
    let path = path.as_ref();
    let file = std::fs::File::open(path).map_err(|e| {
        Error::new(ErrorKind::Io {
            path: path.display().to_string(),
            detail: e.to_string(),
        })
    })?;
    ingest(file, opts)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn reads_gh_run_list_json() {
        let text = r#"[{"databaseId":9,"workflowName":"CI","headBranch":"main","status":"completed",
            "conclusion":"failure","attempt":2,"number":4,"createdAt":"2024-01-01T00:00:00Z",
            "startedAt":"2024-01-01T00:00:05Z","updatedAt":"2024-01-01T00:01:05Z","url":"u","event":"push"}]"#;
        let runs = parse_runs(text).unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].id, RunId(9));
        assert_eq!(runs[0].name, "CI");
        assert_eq!(runs[0].run_attempt, 2);
        assert_eq!(runs[0].duration_ms(), Some(60_000));
    }

    #[test]
    fn ndjson_error_names_the_line() {
        let err = parse_runs("{\"id\":1}\n\nnot json\n").unwrap_err();
        assert!(err.to_string().contains("line 3"), "{err}");
    }

    #[tokio::test]
    async fn file_source_pages_newest_first() {
        let runs: Vec<Run> = (1..=250)
            .map(|i| Run {
                id: RunId(i),
                created_at: Some(i as i64 * 1000),
                ..Run::default()
            })
            .collect();
        let src = FileSource::new(runs);
        let p1 = src.runs(&RunQuery::new()).await.unwrap();
        assert_eq!(p1.runs.len(), 100);
        assert_eq!(p1.runs[0].id, RunId(250));
        assert_eq!(p1.next_page, Some(2));
        let p3 = src.runs(&RunQuery::new().with_page(3)).await.unwrap();
        assert_eq!(p3.runs.len(), 50);
        assert_eq!(p3.next_page, None);
    }

    #[test]
    fn ingest_keeps_the_newest_per_workflow_and_counts_everything() {
        let mut text = String::new();
        // Newest first, as GitHub pages are; run 50 repeats (an overlapping page).
        for i in (1..=300u64).rev().chain([50]) {
            let wf = if i % 3 == 0 { "Release" } else { "CI" };
            let t = |s: u64| ts::format_ms(1_700_000_000_000 + (i * 60 + s) as i64 * 1000);
            text.push_str(&format!(
                "{{\"id\":{i},\"name\":\"{wf}\",\"status\":\"completed\",\"conclusion\":\"success\",\
                 \"created_at\":\"{}\",\"run_started_at\":\"{}\",\"updated_at\":\"{}\"}}\n",
                t(0),
                t(1),
                t(30)
            ));
        }
        let opts = IngestOptions {
            retain: 10,
            since: Some(1_700_000_000_000 + 21 * 60_000),
            ..IngestOptions::default()
        };
        let got = ingest(text.as_bytes(), &opts).unwrap();
        assert_eq!(got.stats.runs, 301);
        assert_eq!((got.filtered_out, got.duplicates), (20, 1));
        assert_eq!(got.history.runs(), 280);
        assert_eq!(
            got.history.workflows["CI"].counts.count
                + got.history.workflows["Release"].counts.count,
            280
        );
        let kept = got.source.all();
        assert_eq!(kept.len(), 20);
        assert!(kept.is_sorted_by_key(|r| r.updated_at));
        assert_eq!(kept.last().unwrap().id, RunId(300));
        assert!(kept.iter().filter(|r| r.name == "CI").all(|r| r.id.0 > 284));
        let until = IngestOptions {
            until: Some(1_700_000_000_000 + 11 * 60_000),
            ..IngestOptions::default()
        };
        assert_eq!(ingest(text.as_bytes(), &until).unwrap().history.runs(), 10);
    }
}
