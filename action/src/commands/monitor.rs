//! `flow monitor`: one monitoring cycle of the orchestrator — collect runs, KPIs, anomalies,
//! triage, one issue per problem — presented for a terminal or a workflow step.
//!
//! Without a repository (`--repo`, the configuration file, or `GITHUB_REPOSITORY`) it runs
//! offline on flow-telemetry's bundled sample history, with an in-memory cache; without
//! `--open-issues` the issues are a dry run. That is the README's main job.

use std::fmt::Write as _;
use std::sync::Arc;

use anyhow::Context as _;
use flow_orchestrator::{AlertOutcome, MonitorOptions, MonitorReport, OrchestratorBuilder};
use flow_telemetry::github::{GitHubClient, GitHubConfig};
use flow_telemetry::history::History;
use flow_telemetry::model::ts;
use flow_telemetry::session::BranchScope;
use flow_telemetry::source::event::{Event, parse_event};
use flow_telemetry::source::file::{FileSource, IngestOptions, ingest_path};
use flow_telemetry::source::github::GitHubSource;
use flow_telemetry::source::stream::ReadOptions;
use flow_telemetry::{DryRunSink, RunSource, Severity};
use flow_telemetry::{Job, RunId, RunPage, RunQuery};
use serde::Serialize;

use super::llm;
use crate::cli::{MonitorArgs, ReportFormat};
use crate::gha::{Annotation, Level};
use crate::progress::{Progress, ProgressSource};
use crate::report::{Mode, Outcome};
use crate::settings::Ctx;

/// Where the runs came from.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "name")]
enum Origin {
    Sample,
    File(String),
    Repository(String),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sample => f.write_str("the bundled sample history (offline)"),
            Self::File(p) => write!(f, "{p} (offline)"),
            Self::Repository(r) => write!(f, "{r}"),
        }
    }
}

pub(crate) fn monitor(args: &MonitorArgs, ctx: &Ctx<'_>) -> anyhow::Result<Outcome> {
    // --workflow, --branch, --close-on-recovery, --max-writes and --state are settings,
    // resolved at the top; --event and --reset-state are this invocation's.
    let mut settings = ctx.settings()?;
    // Per-invocation options, not settings: the time window of this read.
    let since = args
        .since
        .as_deref()
        .map(|t| time_arg("--since", t, false))
        .transpose()?;
    let until = args
        .until
        .as_deref()
        .map(|t| time_arg("--until", t, true))
        .transpose()?;
    let event = read_event(args, ctx)?;
    let config = &settings.config;
    if args.open_issues {
        anyhow::ensure!(
            config.telemetry.repository.is_some(),
            "--open-issues needs --repo (owner/name)"
        );
        anyhow::ensure!(
            settings.credentials.github_token.is_some(),
            "--open-issues needs --github-token (or GITHUB_TOKEN)"
        );
    }

    // --from-file: the whole file in one streaming pass, before anything else; the detectors
    // then replay the newest runs of each workflow.
    let mut ingested = None;
    if let Some(path) = &args.from_file {
        let t = &config.telemetry;
        let mut query = RunQuery::new();
        if let Some(w) = &t.workflow {
            query = query.with_workflow(w.clone());
        }
        if let Some(b) = &t.branch {
            query = query.with_branch(b.clone());
        }
        let opts = IngestOptions {
            query,
            since,
            until,
            read: ReadOptions::default().skip_invalid(args.skip_invalid),
            ..IngestOptions::default()
        };
        let got = ingest_path(path, &opts)
            .with_context(|| format!("reading runs from {}", path.display()))?;
        let kept = u32::try_from(got.source.all().len()).unwrap_or(u32::MAX);
        settings.config.telemetry.max_pages = kept.div_ceil(100).saturating_add(1);
        ingested = Some(got);
    }

    let rt = llm::runtime()?;
    let _guard = rt.enter();
    let config = &settings.config;
    let mut builder = llm::builder(&settings)?;
    let (source, origin): (Arc<dyn RunSource>, Origin) = if let Some(got) = &ingested {
        let path = args.from_file.as_deref().map(|p| p.display().to_string());
        (
            Arc::new(got.source.clone()),
            Origin::File(path.unwrap_or_default()),
        )
    } else if let Some(repo) = &config.telemetry.repository {
        // Conditional requests on: a quiet poll with current state is one 304.
        let mut gh = GitHubConfig::from_slug(repo)?;
        if let Some(api) = &config.github.api_url {
            gh = gh.with_base_url(api.trim_end_matches('/'));
        }
        if let Some(token) = &settings.credentials.github_token {
            gh = gh.with_token(token.clone());
        }
        let source = GitHubSource::new(GitHubClient::new(gh)?);
        (Arc::new(source), Origin::Repository(repo.clone()))
    } else {
        let runs = flow_telemetry::sample::history().context("reading the bundled sample")?;
        (Arc::new(FileSource::new(runs)), Origin::Sample)
    };
    let progress = Arc::new(if ctx.json && ctx.mode == Mode::Terminal {
        Progress::off()
    } else {
        Progress::stderr()
    });
    // Whole-history KPIs: from the file pass, or of every run the source hands over.
    let tap = Arc::new(HistoryTap::new(source, since, until));
    let source: Arc<dyn RunSource> = if ingested.is_some() {
        tap.inner.clone()
    } else {
        tap.clone()
    };
    builder = builder.with_run_source(Arc::new(ProgressSource::new(source, progress.clone())));
    let offline = !matches!(origin, Origin::Repository(_));
    builder = configure(builder, &settings, args.open_issues, offline);
    let mut options = builder.monitor_options().clone();
    options.event = event;
    options.reset_state = args.reset_state;
    if args.from_file.is_none() && (since.is_some() || until.is_some()) {
        options.query = options.query.with_created(created_range(since, until));
    }
    builder = builder.with_monitor_options(options);
    if let Some(spec) = &config.telemetry.state {
        let key = state_key(config);
        let store = rt
            .block_on(flow_telemetry::state::open_store(spec, &key))
            .with_context(|| format!("opening the monitor state {spec}"))?;
        builder = builder.with_state_store(store);
    }
    let orchestrator = builder.build()?;
    let report = rt.block_on(orchestrator.monitor())?;
    progress.finish();
    let mut out = outcome(args, &origin, &report)?;
    let history = match &ingested {
        Some(got) => got.history.clone(),
        None => tap.history(),
    };
    let mut text = format!("\nWhole history: {} runs", history.runs());
    if let Some(got) = &ingested {
        let _ = write!(
            text,
            " of {} read ({:.1} MB)",
            got.stats.runs,
            got.stats.bytes as f64 / 1e6
        );
        if got.filtered_out > 0 {
            let _ = write!(text, ", {} filtered out", got.filtered_out);
        }
        if got.duplicates > 0 {
            let _ = write!(text, ", {} repeated runs counted once", got.duplicates);
        }
        if got.stats.invalid > 0 {
            let _ = write!(text, ", {} malformed records skipped", got.stats.invalid);
            out.annotations.push(Annotation::new(
                Level::Warning,
                format!(
                    "{} malformed records skipped, first: {}",
                    got.stats.invalid,
                    got.stats.invalid_examples.join("; ")
                ),
            ));
        }
        out.json["ingest"] = serde_json::json!({
            "runs_read": got.stats.runs,
            "bytes": got.stats.bytes,
            "invalid": got.stats.invalid,
            "invalid_examples": got.stats.invalid_examples,
            "filtered_out": got.filtered_out,
            "duplicates": got.duplicates,
            "kept_for_detection": got.source.all().len(),
        });
    }
    text.push_str(":\n");
    text.push_str(&super::report::history_table(&history));
    if args.format == ReportFormat::Text {
        out.text.push_str(&text);
    }
    out.json["history"] = serde_json::to_value(&history)?;
    Ok(out)
}

/// One line saying what the trace export did, with its first errors.
fn otlp_line(o: &flow_orchestrator::OtlpOutcome) -> String {
    let e = &o.export;
    let mut line = format!(
        "OTLP export to {}: {} run(s) exported as traces ({} spans, {} request(s), {} retried)",
        e.endpoint, e.exported, e.spans, e.requests, e.retries
    );
    if e.failed > 0 {
        let _ = write!(
            line,
            "; {} run(s) FAILED: {}",
            e.failed,
            e.errors.join("; ")
        );
    } else if e.rejected_spans > 0 {
        let _ = write!(line, "; {}", e.errors.join("; "));
    }
    if o.jobs_unreadable > 0 {
        let _ = write!(
            line,
            "; {} run(s) without their jobs (unreadable)",
            o.jobs_unreadable
        );
    }
    if o.left_out > 0 {
        let _ = write!(
            line,
            "; {} older run(s) left out (at most {} per invocation)",
            o.left_out,
            flow_orchestrator::MAX_EXPORTED_RUNS
        );
    }
    line
}

/// `--since` / `--until`: RFC 3339, or a date (its start; with `end_of_day`, the next day's).
fn time_arg(flag: &str, value: &str, end_of_day: bool) -> anyhow::Result<i64> {
    if let Some(ms) = ts::parse_rfc3339_ms(value) {
        return Ok(ms);
    }
    let day = (value.len() == 10)
        .then(|| ts::parse_rfc3339_ms(&format!("{value}T00:00:00Z")))
        .flatten()
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{flag} `{value}`: expected RFC 3339 (2024-01-31T12:00:00Z) or YYYY-MM-DD"
            )
        })?;
    Ok(if end_of_day { day + 86_400_000 } else { day })
}

/// GitHub's `created` filter for `[since, until)`.
fn created_range(since: Option<i64>, until: Option<i64>) -> String {
    let until_incl = until.map(|u| ts::format_ms(u - 1000));
    match (since.map(ts::format_ms), until_incl) {
        (Some(s), Some(u)) => format!("{s}..{u}"),
        (Some(s), None) => format!(">={s}"),
        (None, Some(u)) => format!("<={u}"),
        (None, None) => String::new(),
    }
}

/// Folds every run its source hands over into whole-history KPIs.
struct HistoryTap {
    inner: Arc<dyn RunSource>,
    since: Option<i64>,
    until: Option<i64>,
    history: std::sync::Mutex<History>,
}

impl std::fmt::Debug for HistoryTap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistoryTap").finish_non_exhaustive()
    }
}

impl HistoryTap {
    fn new(inner: Arc<dyn RunSource>, since: Option<i64>, until: Option<i64>) -> Self {
        Self {
            inner,
            since,
            until,
            history: std::sync::Mutex::new(History::new()),
        }
    }

    fn history(&self) -> History {
        self.history.lock().map(|h| h.clone()).unwrap_or_default()
    }
}

#[async_trait::async_trait]
impl RunSource for HistoryTap {
    async fn runs(&self, query: &RunQuery) -> flow_telemetry::Result<RunPage> {
        let mut page = self.inner.runs(query).await?;
        page.runs.retain(|r| match (self.since, self.until) {
            (None, None) => true,
            (since, until) => r
                .created_at
                .is_some_and(|t| since.is_none_or(|s| t >= s) && until.is_none_or(|u| t < u)),
        });
        if let Ok(mut h) = self.history.lock() {
            page.runs.iter().for_each(|r| h.add(r));
        }
        Ok(page)
    }

    async fn jobs(&self, run: RunId) -> flow_telemetry::Result<Vec<Job>> {
        self.inner.jobs(run).await
    }

    // The rest passes through: the saved ETag and the workflows list must reach the source.
    fn list_etag(&self, query: &RunQuery) -> Option<String> {
        self.inner.list_etag(query)
    }

    fn seed_list_etag(&self, query: &RunQuery, etag: &str) {
        self.inner.seed_list_etag(query, etag);
    }

    async fn workflows(&self) -> flow_telemetry::Result<Vec<flow_telemetry::source::WorkflowRef>> {
        self.inner.workflows().await
    }

    async fn run(&self, id: RunId) -> flow_telemetry::Result<Option<flow_telemetry::Run>> {
        self.inner.run(id).await
    }
}

/// What `flow monitor` and `flow serve` set alike on the orchestrator built from the
/// settings: the monitor options (triage as configured) and, without `--open-issues`, a dry
/// run in place of the issue sink.
pub(crate) fn configure(
    mut builder: OrchestratorBuilder,
    settings: &flow_orchestrator::Settings,
    open_issues: bool,
    offline: bool,
) -> OrchestratorBuilder {
    if !open_issues {
        builder = builder.with_issue_sink(Arc::new(DryRunSink::new(Box::new(std::io::sink()))));
    }
    let mut options = builder_options(&settings.config, offline);
    options.triage = settings.triage();
    builder.with_monitor_options(options)
}

/// The monitor options the configuration gives, with every branch watched offline (an
/// exported history or the sample has no default branch to single out) unless one is named.
fn builder_options(config: &flow_orchestrator::FlowConfig, offline: bool) -> MonitorOptions {
    let mut o = flow_orchestrator::monitor_options(config);
    if offline && config.telemetry.branch.is_none() && config.telemetry.rules.branch.is_none() {
        o.branch = BranchScope::All;
    }
    o
}

/// The Redis key of the state: one per repository, workflow and branch.
pub(crate) fn state_key(config: &flow_orchestrator::FlowConfig) -> String {
    format!(
        "flow:monitor:{}:{}:{}",
        config.telemetry.repository.as_deref().unwrap_or("-"),
        config.telemetry.workflow.as_deref().unwrap_or("*"),
        config.telemetry.branch.as_deref().unwrap_or("default")
    )
}

/// The triggering event: `--event`, else `GITHUB_EVENT_PATH` when the job runs on
/// `workflow_run` or `workflow_job` (the runner's variables, through the injected lookup).
fn read_event(args: &MonitorArgs, ctx: &Ctx<'_>) -> anyhow::Result<Option<Event>> {
    use flow_orchestrator::env::{GITHUB_EVENT_NAME, GITHUB_EVENT_PATH};
    let path = match &args.event {
        Some(p) => Some(p.clone()),
        None => match ctx.var(GITHUB_EVENT_NAME).as_deref() {
            Some("workflow_run" | "workflow_job") => {
                ctx.var(GITHUB_EVENT_PATH).map(std::path::PathBuf::from)
            }
            _ => None,
        },
    };
    let Some(path) = path else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading the event payload {}", path.display()))?;
    let event = parse_event(&text)
        .with_context(|| format!("reading the event payload {}", path.display()))?;
    Ok(Some(event))
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn secs(ms: i64) -> String {
    format!("{:.0}s", ms as f64 / 1000.0)
}

fn issue_text(a: &AlertOutcome) -> String {
    match (&a.issue, &a.issue_error) {
        (Some(i), _) => i.to_string(),
        (None, Some(e)) => format!("FAILED: {e}"),
        (None, None) => match a.tracked_in {
            Some(n) => format!("#{n} (open, nothing new to say)"),
            None => "none".to_owned(),
        },
    }
}

fn outcome(args: &MonitorArgs, origin: &Origin, report: &MonitorReport) -> anyhow::Result<Outcome> {
    let mut text = String::new();
    if report.from_event {
        let _ = writeln!(
            text,
            "flow monitor: {} new run(s) from the triggering event, {origin}",
            report.runs
        );
    } else {
        let _ = writeln!(
            text,
            "flow monitor: {} runs ({} pages) from {origin}",
            report.runs, report.pages
        );
    }
    let _ = writeln!(
        text,
        "\n{:<24} {:>5} {:>8} {:>8} {:>8} {:>8} {:>7} {:>7}",
        "workflow", "runs", "success", "failure", "p50", "p95", "flaky", "mttr"
    );
    for w in &report.telemetry.workflows {
        let v = &w.kpis.values;
        let (p50, p95) = v
            .duration_ms
            .as_ref()
            .map_or(("-".into(), "-".into()), |d| (secs(d.p50), secs(d.p95)));
        let mttr = v
            .mttr_ms
            .map_or_else(|| "-".to_owned(), |m| format!("{:.0}m", m / 60_000.0));
        let _ = writeln!(
            text,
            "{:<24} {:>5} {:>8} {:>8} {:>8} {:>8} {:>7} {:>7}",
            w.kpis.key.workflow,
            v.count,
            pct(v.success_rate),
            pct(v.failure_rate),
            p50,
            p95,
            pct(v.flaky_rate),
            mttr
        );
    }
    let learning: Vec<String> = report
        .telemetry
        .baselines
        .iter()
        .filter(|b| b.failure_rate.is_none())
        .map(|b| {
            let on = if b.branch.is_empty() {
                String::new()
            } else {
                format!(" on {}", b.branch)
            };
            format!(
                "{}{on} ({} of {} runs)",
                b.workflow, b.baseline_runs, b.needed
            )
        })
        .collect();
    if !learning.is_empty() {
        let _ = writeln!(
            text,
            "\ntoo little history to judge failures yet: {}",
            learning.join(", ")
        );
    }
    if !report.recovered.is_empty() {
        let _ = writeln!(
            text,
            "\n{} problem(s) recovered in the runs observed:",
            report.recovered.len()
        );
        for r in &report.recovered {
            let name = r.alert.as_ref().map_or_else(String::new, |a| {
                format!(
                    "[{}] {} {}: {}",
                    a.severity,
                    a.workflow,
                    a.kind.as_str(),
                    a.summary
                )
            });
            let issue = r
                .issue
                .as_ref()
                .map(|i| format!(": {i}"))
                .or_else(|| {
                    r.issue_error
                        .as_ref()
                        .map(|e| format!(": closing FAILED: {e}"))
                })
                .unwrap_or_default();
            let _ = writeln!(text, "  {} {name}{issue}", r.fingerprint);
        }
    }
    let mut annotations = Vec::new();
    if report.truncated {
        let warning = format!(
            "stopped after {} pages ({} runs): older runs were not read; raise --max-runs (FLOW_MAX_PAGES) to cover them",
            report.pages, report.runs
        );
        let _ = writeln!(text, "\nwarning: {warning}");
        annotations.push(
            Annotation::new(Level::Warning, warning).with_title("flow monitor: runs truncated"),
        );
    }
    if let Some(o) = &report.otlp {
        let line = otlp_line(o);
        let _ = writeln!(text, "\n{line}");
        if !o.is_ok() {
            // A collector that is down must not fail the monitoring: a warning, not an error.
            annotations.push(
                Annotation::new(Level::Warning, line).with_title("flow monitor: OTLP export"),
            );
        }
    }
    if report.alerts.is_empty() {
        text.push_str("\nNo alert is open: no issue to open or update.\n");
    } else {
        let _ = writeln!(text, "\n{} alert(s) open:", report.alerts.len());
    }
    for a in &report.alerts {
        let al = &a.alert;
        let _ = writeln!(text, "  [{}] {}", al.severity, al.title());
        let e = &al.evidence;
        let _ = writeln!(
            text,
            "      {} = {:.3} (baseline {:.3}, threshold {:.3}) at run {}",
            e.metric, e.value, e.baseline, e.threshold, al.run_id
        );
        for sig in &al.signals {
            let _ = writeln!(text, "      {}: {}", sig.kind.as_str(), sig.explanation);
        }
        if let Some(t) = &a.triage {
            let _ = writeln!(
                text,
                "      triage: {} ({} confidence){}",
                t.category.as_str(),
                t.confidence.as_str(),
                if t.cached { ", cached" } else { "" }
            );
            let _ = writeln!(text, "      likely cause: {}", t.likely_cause);
            let _ = writeln!(
                text,
                "      evidence ({}): {}",
                if t.verified { "verified" } else { "UNVERIFIED" },
                t.evidence_quote
            );
            let _ = writeln!(text, "      next step: {}", t.suggested_next_step);
            if !t.lacking.is_empty() {
                let _ = writeln!(text, "      evidence lacking: {}", t.lacking.join("; "));
            }
        }
        if let Some(err) = &a.triage_error {
            let _ = writeln!(text, "      triage unavailable: {err}");
            // Refused credentials are one error for the run (the failure below), not an
            // annotation per alert.
            if !a.triage_denied {
                annotations.push(
                    Annotation::new(Level::Warning, format!("triage unavailable: {err}"))
                        .with_title(al.title()),
                );
            }
        }
        let _ = writeln!(text, "      issue: {}", issue_text(a));
        let level = match al.severity {
            Severity::Critical => Level::Error,
            Severity::Warning => Level::Warning,
        };
        annotations.push(Annotation::new(level, al.summary.clone()).with_title(al.title()));
    }
    let denied = report.triage_refused.as_deref().or_else(|| {
        report
            .alerts
            .iter()
            .find(|a| a.triage_denied)
            .and_then(|a| a.triage_error.as_deref())
    });
    let failure = match denied {
        Some(err) => Some(format!(
            "the triage was asked for but the model refused the credentials: {err}"
        )),
        None => (!report.issues_ok()).then(|| {
            "some issues could not be opened, updated or closed (see the report)".to_owned()
        }),
    };
    let text = match args.format {
        ReportFormat::Text => text,
        ReportFormat::Markdown => report.to_markdown(),
        ReportFormat::Prometheus => report.telemetry.to_prometheus(),
    };
    let mut json = serde_json::to_value(report)?;
    json["origin"] = serde_json::to_value(origin)?;
    Ok(Outcome {
        text,
        json,
        outputs: vec![
            ("alerts".into(), report.alerts.len().to_string()),
            (
                "triage-tokens".into(),
                report
                    .alerts
                    .iter()
                    .filter_map(|a| a.triage.as_ref())
                    .map(flow_orchestrator::Triage::tokens_spent)
                    .sum::<u64>()
                    .to_string(),
            ),
            (
                "issues".into(),
                report
                    .alerts
                    .iter()
                    .map(issue_text)
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
        ],
        summary: Some(report.to_markdown()),
        annotations,
        failure,
    })
}
