//! What a run left behind that explains its failure: the error annotations of its failing
//! jobs, the tail of each failing job's log, its commit, and what changed since the last
//! green run of the same workflow and branch.
//!
//! [`EvidenceSource`] is the seam (implemented by [`GitHubSource`] over the REST API);
//! [`gather`] fetches everything once for one run, bounded, and never fails: what it could
//! not get is listed in [`RunEvidence::missing`]. Log text is cleaned (ANSI codes and
//! timestamps stripped) and secrets and token-shaped strings are redacted ([`redact`])
//! before anything leaves this module. Everything here is untrusted text (anyone who opens a
//! pull request writes commit messages, branch names and log lines): callers must keep it
//! data.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::github::GitHubSource;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{Conclusion, Job, Run, RunId, RunStatus};

/// Bounds on what [`gather`] fetches and keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvidenceLimits {
    /// Failing jobs examined (annotations and log), failing ones in the run's order.
    pub max_failing_jobs: usize,
    /// Annotations kept per job (failures first).
    pub max_annotations: usize,
    /// Log lines kept per failing job.
    pub log_lines: usize,
    /// Longest log line kept, bytes (longer ones are cut).
    pub line_bytes: usize,
    /// Bytes of a log read from its end (logs can be hundreds of MB).
    pub log_tail_bytes: usize,
    /// Commits and changed files listed for the range since the last green run.
    pub max_range_items: usize,
}

impl Default for EvidenceLimits {
    fn default() -> Self {
        Self {
            max_failing_jobs: 3,
            max_annotations: 10,
            log_lines: 40,
            line_bytes: 400,
            log_tail_bytes: 2 * 1024 * 1024,
            max_range_items: 10,
        }
    }
}

/// One check-run annotation, GitHub's shape.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Annotation {
    /// File the annotation is on (`.github` for the runner's own).
    pub path: String,
    /// First line.
    pub start_line: u64,
    /// Last line.
    pub end_line: u64,
    /// `notice`, `warning` or `failure`.
    pub annotation_level: Option<String>,
    /// Title, if any.
    pub title: Option<String>,
    /// The message.
    pub message: Option<String>,
}

impl Annotation {
    /// `failure: src/lib.rs:12: title: message`, on one line, redacted.
    pub fn to_line(&self) -> String {
        let mut s = format!(
            "{}: {}:{}",
            self.annotation_level.as_deref().unwrap_or("notice"),
            self.path,
            self.start_line
        );
        if let Some(t) = self.title.as_deref().filter(|t| !t.is_empty()) {
            s.push_str(": ");
            s.push_str(t);
        }
        if let Some(m) = &self.message {
            s.push_str(": ");
            s.push_str(m);
        }
        redact(&s.split_whitespace().collect::<Vec<_>>().join(" "))
    }

    fn rank(&self) -> u8 {
        match self.annotation_level.as_deref() {
            Some("failure") => 0,
            Some("warning") => 1,
            _ => 2,
        }
    }
}

/// A job as the jobs listing gives it, with the link to its check run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EvidenceJob {
    /// The job.
    #[serde(flatten)]
    pub job: Job,
    /// `https://api.github.com/repos/o/r/check-runs/{id}`: the check run's id is not always
    /// the job's.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub check_run_url: String,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

impl EvidenceJob {
    /// The check-run id at the end of `check_run_url`.
    pub fn check_run_id(&self) -> Option<u64> {
        self.check_run_url
            .trim_end_matches('/')
            .rsplit('/')
            .next()?
            .parse()
            .ok()
    }
}

/// A run with the first line of its head commit's message.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The run.
    pub run: Run,
    /// First line of the head commit's message (empty when unknown).
    pub commit_title: String,
}

/// What changed between two commits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comparison {
    /// Commits in the range.
    pub total_commits: u64,
    /// `(short sha, first line of message)`, newest first, at most the limit.
    pub commits: Vec<(String, String)>,
    /// `(file, lines changed)`, most changed first, at most the limit.
    pub files: Vec<(String, u64)>,
    /// Files changed in all (the listing is capped by GitHub at 300).
    pub total_files: usize,
}

/// The change since the last green run of the same workflow and branch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinceGreen {
    /// The last successful run.
    pub run_id: u64,
    /// Its head commit.
    pub head_sha: String,
    /// What changed from it to the failing run's head.
    pub comparison: Comparison,
}

/// The evidence of one failing job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobEvidence {
    /// Job name.
    pub name: String,
    /// Job id.
    pub id: u64,
    /// Its failing steps, `(number, name)`.
    pub failing_steps: Vec<(u32, String)>,
    /// Annotations, failures first, one line each, redacted.
    pub annotations: Vec<String>,
    /// Last lines of the failing step's log, cleaned and redacted; `None` when unavailable.
    pub log_tail: Option<Vec<String>>,
}

/// Everything [`gather`] found about a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunEvidence {
    /// The run and its commit title.
    pub run: Option<RunInfo>,
    /// Every job of the run.
    pub jobs: Vec<Job>,
    /// The failing jobs examined.
    pub failing: Vec<JobEvidence>,
    /// The range since the last green run.
    pub since_green: Option<SinceGreen>,
    /// What could not be fetched, and why (`job log of \`test\`: not available (HTTP 404)`).
    pub missing: Vec<String>,
}

/// Where the evidence of a run comes from: GitHub's REST API ([`GitHubSource`]), or a fake.
#[cfg_attr(test, mockall::automock)]
#[async_trait::async_trait]
pub trait EvidenceSource: Send + Sync {
    /// The run, with its head commit's message.
    ///
    /// # Errors
    /// Transport, HTTP or parse failures.
    async fn run_info(&self, run: RunId) -> Result<RunInfo>;

    /// The jobs of the run, with their check-run URLs.
    ///
    /// # Errors
    /// Transport, HTTP or parse failures.
    async fn evidence_jobs(&self, run: RunId) -> Result<Vec<EvidenceJob>>;

    /// The annotations of check run `check_run_id` (first page).
    ///
    /// # Errors
    /// Transport, HTTP or parse failures.
    async fn annotations(&self, check_run_id: u64) -> Result<Vec<Annotation>>;

    /// The last `max_bytes` of job `job_id`'s log, or `Ok(None)` when GitHub has none (the
    /// job is still running, or its logs expired or were deleted).
    ///
    /// # Errors
    /// Transport or HTTP failures other than "not found".
    async fn job_log(&self, job_id: u64, max_bytes: usize) -> Result<Option<String>>;

    /// The newest successful run of `run`'s workflow on its branch, created before it.
    ///
    /// # Errors
    /// Transport, HTTP or parse failures.
    async fn last_success(&self, run: &Run) -> Result<Option<Run>>;

    /// What changed from `base` to `head` (commit SHAs), at most `max_items` commits and
    /// files.
    ///
    /// # Errors
    /// Transport, HTTP or parse failures.
    async fn compare(&self, base: &str, head: &str, max_items: usize) -> Result<Comparison>;
}

fn failed(c: Option<Conclusion>) -> bool {
    matches!(
        c,
        Some(Conclusion::Failure | Conclusion::TimedOut | Conclusion::StartupFailure)
    )
}

fn why(e: &Error) -> String {
    match e.kind() {
        ErrorKind::Http {
            status, message, ..
        } if message.is_empty() => format!("HTTP {status}"),
        ErrorKind::Http {
            status, message, ..
        } => format!("HTTP {status}: {}", redact(message)),
        _ => redact(&e.to_string()),
    }
}

/// Fetches the evidence of `run` once: the run, its jobs, then for each failing job (up to
/// the limit) its annotations and log tail, then the range since the last green run. Never
/// fails; each thing it could not get is named in [`RunEvidence::missing`].
pub async fn gather(
    source: &dyn EvidenceSource,
    run: RunId,
    limits: &EvidenceLimits,
) -> RunEvidence {
    let mut ev = RunEvidence::default();
    match source.run_info(run).await {
        Ok(info) => ev.run = Some(info),
        Err(e) => ev
            .missing
            .push(format!("the run and its commit: {}", why(&e))),
    }
    let jobs = match source.evidence_jobs(run).await {
        Ok(jobs) => jobs,
        Err(e) => {
            ev.missing.push(format!("the jobs of the run: {}", why(&e)));
            Vec::new()
        }
    };
    let failing: Vec<&EvidenceJob> = jobs.iter().filter(|j| failed(j.job.conclusion)).collect();
    if failing.len() > limits.max_failing_jobs {
        ev.missing.push(format!(
            "{} more failing jobs not examined",
            failing.len() - limits.max_failing_jobs
        ));
    }
    for j in failing.into_iter().take(limits.max_failing_jobs) {
        ev.failing
            .push(job_evidence(source, j, limits, &mut ev.missing).await);
    }
    ev.jobs = jobs.into_iter().map(|j| j.job).collect();
    if let Some(info) = &ev.run {
        ev.since_green = since_green(source, &info.run, limits, &mut ev.missing).await;
    }
    ev
}

async fn job_evidence(
    source: &dyn EvidenceSource,
    j: &EvidenceJob,
    limits: &EvidenceLimits,
    missing: &mut Vec<String>,
) -> JobEvidence {
    let job = &j.job;
    let mut out = JobEvidence {
        name: redact(&job.name),
        id: job.id,
        failing_steps: job
            .steps
            .iter()
            .filter(|s| failed(s.conclusion))
            .map(|s| (s.number, redact(&s.name)))
            .collect(),
        ..JobEvidence::default()
    };
    match j.check_run_id() {
        Some(id) => match source.annotations(id).await {
            Ok(mut a) => {
                a.sort_by_key(Annotation::rank);
                out.annotations = a
                    .iter()
                    .take(limits.max_annotations)
                    .map(Annotation::to_line)
                    .collect();
            }
            Err(e) => missing.push(format!("annotations of `{}`: {}", out.name, why(&e))),
        },
        None => missing.push(format!("annotations of `{}`: no check run URL", out.name)),
    }
    if job.status != RunStatus::Completed {
        missing.push(format!(
            "job log of `{}`: the job is still running",
            out.name
        ));
        return out;
    }
    match source.job_log(job.id, limits.log_tail_bytes).await {
        Ok(Some(log)) => out.log_tail = Some(failing_tail(&log, limits)),
        Ok(None) => missing.push(format!(
            "job log of `{}`: not available (expired, deleted or not yet written)",
            out.name
        )),
        Err(e) => missing.push(format!("job log of `{}`: {}", out.name, why(&e))),
    }
    out
}

async fn since_green(
    source: &dyn EvidenceSource,
    run: &Run,
    limits: &EvidenceLimits,
    missing: &mut Vec<String>,
) -> Option<SinceGreen> {
    if run.head_sha.is_empty() {
        return None;
    }
    let green = match source.last_success(run).await {
        Ok(Some(g)) => g,
        Ok(None) => {
            missing.push("the range since the last green run: no earlier successful run of this workflow on this branch".into());
            return None;
        }
        Err(e) => {
            missing.push(format!("the last green run: {}", why(&e)));
            return None;
        }
    };
    match source
        .compare(&green.head_sha, &run.head_sha, limits.max_range_items)
        .await
    {
        Ok(comparison) => Some(SinceGreen {
            run_id: green.id.0,
            head_sha: green.head_sha,
            comparison,
        }),
        Err(e) => {
            missing.push(format!("the range since the last green run: {}", why(&e)));
            None
        }
    }
}

static ANSI: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-_]").ok()
});

static TIMESTAMP: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"^\u{FEFF}?\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})\s?")
        .ok()
});

static SECRETS: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        // key=value and key: value, for names that say "secret".
        (
            r#"(?i)\b((?:[a-z0-9_-]*(?:password|passwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credentials?))["']?\s*[:=]\s*["']?)[^\s"',;]{3,}"#,
            "${1}[redacted]",
        ),
        (r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{8,}", "${1} [redacted]"),
        // Credentials in URLs.
        (r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@", "${1}[redacted]@"),
        (r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})", "[redacted]"),
        (r"\bsk-[A-Za-z0-9_-]{16,}", "[redacted]"),
        (r"\bxox[abprs]-[A-Za-z0-9-]{10,}", "[redacted]"),
        (r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", "[redacted]"),
        (r"\bAIza[0-9A-Za-z_-]{35}\b", "[redacted]"),
        (r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}", "[redacted]"),
        (r"-----BEGIN [A-Z ]*PRIVATE KEY-----", "[redacted private key]"),
    ]
    .into_iter()
    .filter_map(|(re, with)| Regex::new(re).ok().map(|re| (re, with)))
    .collect()
});

/// Replaces secrets and token-shaped strings with `[redacted]`: `password=…`-style
/// assignments, `Bearer …`, credentials in URLs, GitHub, OpenAI, Slack, AWS and Google keys,
/// JWTs, private-key headers.
pub fn redact(text: &str) -> String {
    let mut out = std::borrow::Cow::Borrowed(text);
    for (re, with) in SECRETS.iter() {
        if re.is_match(&out) {
            out = std::borrow::Cow::Owned(re.replace_all(&out, *with).into_owned());
        }
    }
    out.into_owned()
}

/// One log line without its timestamp, ANSI codes and control characters, cut at
/// `max_bytes`, redacted.
pub fn clean_line(line: &str, max_bytes: usize) -> String {
    let line = match ANSI.as_ref() {
        Some(re) => re.replace_all(line, ""),
        None => line.into(),
    };
    let line = match TIMESTAMP.as_ref() {
        Some(re) => re.replace(&line, "").into_owned(),
        None => line.into_owned(),
    };
    let mut line: String = line
        .chars()
        .filter(|c| !c.is_control() || *c == '\t')
        .collect();
    if line.len() > max_bytes {
        let mut end = max_bytes;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        line.truncate(end);
        line.push_str(" [… cut]");
    }
    redact(line.trim_end())
}

/// The last lines of the failing step: up to `log_lines` lines ending at the last
/// `##[error]` line (the runner's verdict on the failed step; post-job cleanup follows it),
/// not reaching back past the `##[group]Run …` header that opened that step. Without an
/// error line, the last lines of the log.
pub fn failing_tail(log: &str, limits: &EvidenceLimits) -> Vec<String> {
    let lines: Vec<&str> = log.lines().collect();
    let error = lines.iter().rposition(|l| l.contains("##[error]"));
    let end = error.map_or(lines.len(), |i| i + 1);
    let step_start = error
        .and_then(|e| lines[..e].iter().rposition(|l| l.contains("##[group]Run ")))
        .unwrap_or(0);
    let start = end.saturating_sub(limits.log_lines).max(step_start);
    lines[start..end]
        .iter()
        .map(|l| clean_line(l, limits.line_bytes))
        .filter(|l| !l.is_empty() && l != "##[endgroup]")
        .collect()
}

#[derive(Deserialize)]
struct RunBody {
    #[serde(flatten)]
    run: Run,
    #[serde(default)]
    head_commit: Option<HeadCommit>,
}

#[derive(Deserialize)]
struct HeadCommit {
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize)]
struct RunsBody {
    #[serde(default)]
    workflow_runs: Vec<Run>,
}

#[derive(Deserialize)]
struct CompareBody {
    #[serde(default)]
    total_commits: u64,
    #[serde(default)]
    commits: Vec<CompareCommit>,
    #[serde(default)]
    files: Vec<CompareFile>,
}

#[derive(Deserialize)]
struct CompareCommit {
    sha: String,
    commit: CommitDetail,
}

#[derive(Deserialize)]
struct CommitDetail {
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct CompareFile {
    filename: String,
    #[serde(default)]
    changes: u64,
}

fn first_line(s: &str) -> String {
    redact(s.lines().next().unwrap_or_default().trim())
}

#[async_trait::async_trait]
impl EvidenceSource for GitHubSource {
    async fn run_info(&self, run: RunId) -> Result<RunInfo> {
        let uri = format!("{}/actions/runs/{}", self.client().repo_path(), run.0);
        let a = self.client().get(&uri).await?;
        let body: RunBody = serde_json::from_slice(a.body())
            .map_err(|e| Error::parse("get a workflow run response", e))?;
        Ok(RunInfo {
            run: body.run,
            commit_title: body
                .head_commit
                .and_then(|c| c.message)
                .map(|m| first_line(&m))
                .unwrap_or_default(),
        })
    }

    async fn evidence_jobs(&self, run: RunId) -> Result<Vec<EvidenceJob>> {
        self.jobs_as(run).await
    }

    async fn annotations(&self, check_run_id: u64) -> Result<Vec<Annotation>> {
        let uri = format!(
            "{}/check-runs/{check_run_id}/annotations?per_page=50",
            self.client().repo_path()
        );
        let a = self.client().get(&uri).await?;
        serde_json::from_slice(a.body())
            .map_err(|e| Error::parse("list check run annotations response", e))
    }

    async fn job_log(&self, job_id: u64, max_bytes: usize) -> Result<Option<String>> {
        let uri = format!("{}/actions/jobs/{job_id}/logs", self.client().repo_path());
        // GitHub answers with a short-lived link to the log (302), on another host: the link
        // carries its own signature, and the token must not follow it there.
        let Some(location) = self.client().get_redirect(&uri).await? else {
            return Ok(None);
        };
        // Downloaded without the token, streaming, keeping only the tail (the failing step
        // is near the end); errors name the download, never the signed URL (a credential
        // while it lasts).
        let Some(tail) = self
            .client()
            .download_tail(&location, "job log download", max_bytes)
            .await?
        else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&tail);
        // A cut first line is partial: drop it.
        let text = if tail.len() == max_bytes {
            text.split_once('\n').map_or("", |(_, rest)| rest)
        } else {
            &text
        };
        Ok(Some(text.to_owned()))
    }

    async fn last_success(&self, run: &Run) -> Result<Option<Run>> {
        let query = {
            let mut ser = url::form_urlencoded::Serializer::new(String::new());
            ser.append_pair("status", "success");
            ser.append_pair("per_page", "20");
            if !run.head_branch.is_empty() {
                ser.append_pair("branch", &run.head_branch);
            }
            ser.finish()
        };
        let uri = format!(
            "{}/actions/workflows/{}/runs?{query}",
            self.client().repo_path(),
            run.workflow_id.0,
        );
        let a = self.client().get(&uri).await?;
        let body: RunsBody = serde_json::from_slice(a.body())
            .map_err(|e| Error::parse("list workflow runs response", e))?;
        Ok(body.workflow_runs.into_iter().find(|r| {
            r.id != run.id
                && r.conclusion == Some(Conclusion::Success)
                && !r.head_sha.is_empty()
                && match (r.created_at, run.created_at) {
                    (Some(a), Some(b)) => a < b,
                    _ => r.id.0 < run.id.0,
                }
        }))
    }

    async fn compare(&self, base: &str, head: &str, max_items: usize) -> Result<Comparison> {
        let sha = |s: &str| s.chars().all(|c| c.is_ascii_hexdigit()) && !s.is_empty();
        if !sha(base) || !sha(head) {
            return Err(Error::invalid("sha", "expected hexadecimal commit SHAs"));
        }
        let uri = format!(
            "{}/compare/{base}...{head}?per_page=100",
            self.client().repo_path()
        );
        let a = self.client().get(&uri).await?;
        let body: CompareBody =
            serde_json::from_slice(a.body()).map_err(|e| Error::parse("compare response", e))?;
        let mut files: Vec<(String, u64)> = body
            .files
            .into_iter()
            .map(|f| (redact(&f.filename), f.changes))
            .collect();
        let total_files = files.len();
        files.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        files.truncate(max_items);
        Ok(Comparison {
            total_commits: body.total_commits,
            // GitHub lists the range oldest first.
            commits: body
                .commits
                .iter()
                .rev()
                .take(max_items)
                .map(|c| {
                    (
                        c.sha.chars().take(7).collect(),
                        first_line(&c.commit.message),
                    )
                })
                .collect(),
            files,
            total_files,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::model::Step;

    #[test]
    fn check_run_id_comes_from_the_url() {
        let j = EvidenceJob {
            check_run_url: "https://api.github.com/repos/o/r/check-runs/399444497".into(),
            ..EvidenceJob::default()
        };
        assert_eq!(j.check_run_id(), Some(399_444_497));
        assert_eq!(EvidenceJob::default().check_run_id(), None);
        let parsed: EvidenceJob = serde_json::from_str(
            r#"{"id":5,"name":"test","check_run_url":"https://x/check-runs/9","status":"completed","conclusion":"failure","steps":null}"#,
        )
        .unwrap();
        assert_eq!((parsed.job.id, parsed.check_run_id()), (5, Some(9)));
        assert_eq!(parsed.job.conclusion, Some(Conclusion::Failure));
    }

    #[test]
    fn lines_lose_timestamps_ansi_and_secrets() {
        let l = "2024-03-01T10:00:00.1234567Z \u{1b}[31merror\u{1b}[0m: token=ghp_abcdefghijklmnopqrstuvwxyz0123456789 failed";
        assert_eq!(clean_line(l, 400), "error: token=[redacted] failed");
        assert_eq!(
            redact("curl -H 'Authorization: Bearer abc.def.ghi123' https://u:p4ss@host/x"),
            "curl -H 'Authorization: Bearer [redacted]' https://[redacted]@host/x"
        );
        assert_eq!(
            redact("key sk-proj-abcdefghijklmnop1234 end"),
            "key [redacted] end"
        );
        assert_eq!(redact("AWS AKIAABCDEFGHIJKLMNOP"), "AWS [redacted]");
        assert_eq!(redact("DB_PASSWORD: hunter22"), "DB_PASSWORD: [redacted]");
        assert_eq!(
            redact("nothing to see, sha f83a3566"),
            "nothing to see, sha f83a3566"
        );
        let long = clean_line(&"x".repeat(50), 10);
        assert_eq!(long, "xxxxxxxxxx [… cut]");
    }

    #[test]
    fn the_tail_ends_at_the_last_error_and_stays_in_its_step() {
        let log = "\
2024-03-01T10:00:00Z ##[group]Run actions/checkout@v4
2024-03-01T10:00:01Z checked out
2024-03-01T10:00:02Z ##[endgroup]
2024-03-01T10:00:03Z ##[group]Run cargo test
2024-03-01T10:00:04Z cargo test --workspace
2024-03-01T10:00:05Z ##[endgroup]
2024-03-01T10:00:06Z test tests::it_works ... FAILED
2024-03-01T10:00:07Z thread 'tests::it_works' panicked at src/lib.rs:12:5
2024-03-01T10:00:08Z ##[error]Process completed with exit code 101.
2024-03-01T10:00:09Z Post job cleanup.
";
        let tail = failing_tail(log, &EvidenceLimits::default());
        assert_eq!(
            tail,
            [
                "##[group]Run cargo test",
                "cargo test --workspace",
                "test tests::it_works ... FAILED",
                "thread 'tests::it_works' panicked at src/lib.rs:12:5",
                "##[error]Process completed with exit code 101."
            ]
        );
        let short = failing_tail(
            log,
            &EvidenceLimits {
                log_lines: 2,
                ..EvidenceLimits::default()
            },
        );
        assert_eq!(short.len(), 2);
        assert!(short[1].contains("exit code 101"));
        // Without an error line: the end of the log.
        let tail = failing_tail("a\nb\nc\n", &EvidenceLimits::default());
        assert_eq!(tail, ["a", "b", "c"]);
    }

    #[tokio::test]
    async fn gather_says_what_it_lacked() {
        let mut src = MockEvidenceSource::new();
        src.expect_run_info().returning(|_| {
            Err(Error::new(ErrorKind::Http {
                method: "GET".into(),
                path: "/x".into(),
                status: 403,
                message: "Resource not accessible by integration".into(),
            }))
        });
        src.expect_evidence_jobs().returning(|_| {
            let job = |id: u64, name: &str, status: RunStatus, c: Option<Conclusion>| EvidenceJob {
                job: Job {
                    id,
                    name: name.into(),
                    status,
                    conclusion: c,
                    steps: vec![Step {
                        name: "cargo test".into(),
                        number: 3,
                        conclusion: c,
                        ..Step::default()
                    }],
                    ..Job::default()
                },
                check_run_url: format!("https://x/check-runs/{}", id + 1000),
            };
            Ok(vec![
                job(1, "lint", RunStatus::Completed, Some(Conclusion::Success)),
                job(2, "test", RunStatus::Completed, Some(Conclusion::Failure)),
                job(3, "e2e", RunStatus::InProgress, Some(Conclusion::Failure)),
            ])
        });
        src.expect_annotations()
            .withf(|id| *id == 1002 || *id == 1003)
            .returning(|_| {
                Ok(vec![
                    Annotation {
                        annotation_level: Some("warning".into()),
                        message: Some("Node 16 is deprecated".into()),
                        path: ".github".into(),
                        ..Annotation::default()
                    },
                    Annotation {
                        annotation_level: Some("failure".into()),
                        message: Some("Process completed with exit code 101.".into()),
                        path: ".github".into(),
                        ..Annotation::default()
                    },
                ])
            });
        src.expect_job_log().times(1).returning(|_, _| Ok(None));
        src.expect_last_success().never();
        let ev = gather(&src, RunId(7), &EvidenceLimits::default()).await;
        assert_eq!(ev.jobs.len(), 3);
        assert_eq!(ev.failing.len(), 2);
        assert_eq!(
            ev.failing[0].annotations[0],
            "failure: .github:0: Process completed with exit code 101."
        );
        assert_eq!(ev.failing[0].failing_steps, [(3, "cargo test".to_owned())]);
        assert!(ev.failing[0].log_tail.is_none());
        let missing = ev.missing.join("\n");
        assert!(
            missing.contains("the run and its commit: HTTP 403: Resource not accessible"),
            "{missing}"
        );
        assert!(
            missing.contains("job log of `test`: not available"),
            "{missing}"
        );
        assert!(
            missing.contains("job log of `e2e`: the job is still running"),
            "{missing}"
        );
    }
}
