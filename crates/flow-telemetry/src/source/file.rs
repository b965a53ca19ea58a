//! Exported history on disk: `gh run list --json …`, REST pages and NDJSON.

use serde::Deserialize;

use super::{RunPage, RunQuery, RunSource, page_of};
use crate::error::{Error, ErrorKind, Result};
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
}
