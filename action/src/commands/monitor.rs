//! `flow monitor`: one monitoring cycle of the orchestrator — collect runs, KPIs, anomalies,
//! triage, one issue per problem — presented for a terminal or a workflow step.
//!
//! Without a repository (`--repo`, the configuration file, or `GITHUB_REPOSITORY`) it runs
//! offline on flow-telemetry's bundled sample history, with an in-memory cache; without
//! `--open-issues` the issues are a dry run. That is the README's main job.

use std::fmt::Write as _;
use std::sync::Arc;

use anyhow::Context as _;
use flow_orchestrator::{AlertOutcome, MonitorOptions, MonitorReport};
use flow_telemetry::github::{GitHubClient, GitHubConfig};
use flow_telemetry::session::BranchScope;
use flow_telemetry::source::event::{Event, parse_event};
use flow_telemetry::source::file::FileSource;
use flow_telemetry::source::github::GitHubSource;
use flow_telemetry::{DryRunSink, RunSource, Severity};
use secrecy::SecretString;
use serde::Serialize;

use super::llm::{self, Overlay};
use crate::cli::{GlobalArgs, MonitorArgs, ReportFormat};
use crate::gha::{Annotation, Level};
use crate::progress::{Progress, ProgressSource};
use crate::report::{Mode, Outcome};

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

pub(crate) fn monitor(
    args: &MonitorArgs,
    global: &GlobalArgs,
    mode: Mode,
) -> anyhow::Result<Outcome> {
    let mut overlay = Overlay::default();
    overlay.llm(&args.llm);
    overlay.github(&args.github);
    if let Some(w) = &args.workflow {
        overlay.set("FLOW_WORKFLOW", w.clone());
    }
    if let Some(n) = args.max_runs {
        overlay.set("FLOW_MAX_PAGES", n.div_ceil(100).max(1).to_string());
    }
    if let Some(t) = args.triage {
        overlay.set("FLOW_TRIAGE", t.to_string());
    }
    if let Some(r) = &args.rules {
        overlay.set("FLOW_RULES", r.display().to_string());
    }
    if !args.label.is_empty() {
        overlay.set("FLOW_ISSUE_LABELS", args.label.join(","));
    }
    let mut config = llm::config(global, &overlay)?;
    if let Some(b) = &args.branch {
        config.telemetry.branch = Some(b.clone());
    }
    if let Some(c) = args.close_on_recovery {
        config.telemetry.close_on_recovery = c;
    }
    if let Some(n) = args.max_writes {
        config.telemetry.max_writes = n;
    }
    if let Some(s) = &args.state {
        config.telemetry.state = Some(s.clone()).filter(|s| !s.is_empty());
    }
    let event = read_event(args)?;
    if args.open_issues {
        anyhow::ensure!(
            config.telemetry.repository.is_some(),
            "--open-issues needs --repo (owner/name)"
        );
        anyhow::ensure!(
            overlay.get("GITHUB_TOKEN").is_some(),
            "--open-issues needs --github-token (or GITHUB_TOKEN)"
        );
    }

    let rt = llm::runtime()?;
    let _guard = rt.enter();
    let mut builder = llm::builder(&config, &overlay)?;
    let (source, origin): (Arc<dyn RunSource>, Origin) = if let Some(path) = &args.from_file {
        let source = FileSource::from_path(path)
            .with_context(|| format!("reading runs from {}", path.display()))?;
        (Arc::new(source), Origin::File(path.display().to_string()))
    } else if let Some(repo) = &config.telemetry.repository {
        let mut gh = GitHubConfig::from_slug(repo)?;
        if let Some(api) = overlay.get("GITHUB_API_URL") {
            gh = gh.with_base_url(api.trim_end_matches('/'));
        }
        if let Some(token) = overlay.get("GITHUB_TOKEN") {
            gh = gh.with_token(SecretString::from(token));
        }
        let source = GitHubSource::new(GitHubClient::new(gh)?);
        (Arc::new(source), Origin::Repository(repo.clone()))
    } else {
        let runs = flow_telemetry::sample::history().context("reading the bundled sample")?;
        (Arc::new(FileSource::new(runs)), Origin::Sample)
    };
    let progress = Arc::new(if global.json && mode == Mode::Terminal {
        Progress::off()
    } else {
        Progress::stderr()
    });
    builder = builder.with_run_source(Arc::new(ProgressSource::new(source, progress.clone())));
    if !args.open_issues {
        builder = builder.with_issue_sink(Arc::new(DryRunSink::new(Box::new(std::io::sink()))));
    }
    let offline = !matches!(origin, Origin::Repository(_));
    let mut options = builder_options(&config, offline);
    options.event = event;
    options.reset_state = args.reset_state;
    builder = builder.with_monitor_options(options);
    if let Some(spec) = &config.telemetry.state {
        let key = state_key(&config);
        let store = rt
            .block_on(flow_telemetry::state::open_store(spec, &key))
            .with_context(|| format!("opening the monitor state {spec}"))?;
        builder = builder.with_state_store(store);
    }
    let orchestrator = builder.build()?;
    let report = rt.block_on(orchestrator.monitor())?;
    progress.finish();
    outcome(args, &origin, &report)
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
fn state_key(config: &flow_orchestrator::FlowConfig) -> String {
    format!(
        "flow:monitor:{}:{}:{}",
        config.telemetry.repository.as_deref().unwrap_or("-"),
        config.telemetry.workflow.as_deref().unwrap_or("*"),
        config.telemetry.branch.as_deref().unwrap_or("default")
    )
}

/// The triggering event: `--event`, else `GITHUB_EVENT_PATH` when the job runs on
/// `workflow_run` or `workflow_job`.
fn read_event(args: &MonitorArgs) -> anyhow::Result<Option<Event>> {
    let path = match &args.event {
        Some(p) => Some(p.clone()),
        None => match std::env::var("GITHUB_EVENT_NAME").as_deref() {
            Ok("workflow_run" | "workflow_job") => {
                std::env::var_os("GITHUB_EVENT_PATH").map(std::path::PathBuf::from)
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
        if let Some(t) = &a.triage {
            let _ = writeln!(text, "      likely cause: {}", t.likely_cause);
            let _ = writeln!(text, "      next step: {}", t.suggested_next_step);
        }
        if let Some(err) = &a.triage_error {
            let _ = writeln!(text, "      triage unavailable: {err}");
            annotations.push(
                Annotation::new(Level::Warning, format!("triage unavailable: {err}"))
                    .with_title(al.title()),
            );
        }
        let _ = writeln!(text, "      issue: {}", issue_text(a));
        let level = match al.severity {
            Severity::Critical => Level::Error,
            Severity::Warning => Level::Warning,
        };
        annotations.push(Annotation::new(level, al.summary.clone()).with_title(al.title()));
    }
    let failure = (!report.issues_ok())
        .then(|| "some issues could not be opened, updated or closed (see the report)".to_owned());
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
