//! `flow monitor`: collect runs, compute KPIs, detect anomalies, raise one issue per problem.
//!
//! Without `--repo` (or `--from-file`) it runs offline on flow-telemetry's bundled sample
//! history, with an in-memory cache and a dry-run issue sink: the README's main job.

use std::fmt::Write as _;

use anyhow::Context as _;
use flow_telemetry::github::GitHubClient;
use flow_telemetry::github::GitHubConfig;
use flow_telemetry::sink::github::GitHubIssueSink;
use flow_telemetry::source::file::FileSource;
use flow_telemetry::source::github::GitHubSource;
use flow_telemetry::{
    Alert, DryRunSink, IssueAction, IssueSink, Kpis, Monitor, Rules, Run, RunQuery, RunSource,
    Severity,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::llm;
use crate::cli::{MonitorArgs, ReportFormat};
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

/// The LLM's triage of one alert.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
struct Triage {
    /// The most likely cause, from the failing jobs and steps.
    likely_cause: String,
    /// The next step a maintainer should take.
    next_step: String,
}

/// One alert with what happened to it.
#[derive(Debug, Serialize)]
struct Handled {
    alert: Alert,
    #[serde(skip_serializing_if = "Option::is_none")]
    triage: Option<Triage>,
    issue: String,
}

pub(crate) fn monitor(args: &MonitorArgs, mode: Mode, json_out: bool) -> anyhow::Result<Outcome> {
    let rules = match &args.rules {
        Some(path) => Rules::from_path(path)
            .with_context(|| format!("reading the rules in {}", path.display()))?,
        None => Rules::default(),
    };
    let rt = llm::runtime()?;
    // The GitHub client needs a runtime around it when it is built.
    let _guard = rt.enter();
    let github = match &args.github.repo {
        Some(repo) if args.from_file.is_none() || args.open_issues => {
            let mut cfg = GitHubConfig::from_slug(repo)?
                .with_base_url(args.github.api_url.trim_end_matches('/'))
                .with_conditional(false);
            if let Some(token) = &args.github.github_token {
                cfg = cfg.with_token(token.to_secret_string());
            }
            Some(GitHubClient::new(cfg)?)
        }
        _ => None,
    };
    let (source, origin): (Box<dyn RunSource>, Origin) = if let Some(path) = &args.from_file {
        let source = FileSource::from_path(path)
            .with_context(|| format!("reading runs from {}", path.display()))?;
        (Box::new(source), Origin::File(path.display().to_string()))
    } else if let (Some(client), Some(repo)) = (&github, &args.github.repo) {
        (
            Box::new(GitHubSource::new(client.clone())),
            Origin::Repository(repo.clone()),
        )
    } else {
        let runs = flow_telemetry::sample::history().context("reading the bundled sample")?;
        (Box::new(FileSource::new(runs)), Origin::Sample)
    };
    let sink: Box<dyn IssueSink> = match (&github, args.open_issues) {
        (Some(client), true) => {
            anyhow::ensure!(
                args.github.github_token.is_some(),
                "--open-issues needs --github-token (or GITHUB_TOKEN)"
            );
            let mut sink = GitHubIssueSink::new(client.clone());
            if let Some(label) = &args.label {
                sink = sink.with_label(label.clone());
            }
            Box::new(sink)
        }
        (None, true) => anyhow::bail!("--open-issues needs --repo (owner/name)"),
        (_, false) => Box::new(DryRunSink::new(Box::new(std::io::sink()))),
    };
    let progress = if json_out && mode == Mode::Terminal {
        Progress::off()
    } else {
        Progress::stderr()
    };
    let source = ProgressSource::boxed(source, &progress);
    let mut runs = rt.block_on(collect(&source, args))?;
    progress.finish();
    // Oldest first: the detectors stream through history.
    runs.sort_by_key(|r| (r.created_at, r.id, r.run_attempt));

    let mut monitor = Monitor::new(rules);
    let mut history: Vec<Past> = Vec::new();
    for run in &runs {
        let obs = monitor.observe(run);
        for fp in &obs.recovered {
            if let Some(p) = history
                .iter_mut()
                .rev()
                .find(|p| &p.alert.fingerprint == fp && p.recovered_by.is_none())
            {
                p.recovered_by = Some(run.id.0);
            }
        }
        history.extend(obs.alerts.into_iter().map(|alert| Past {
            alert,
            recovered_by: None,
        }));
    }
    let kpis = monitor.kpis();
    let active: Vec<Alert> = monitor.active_alerts().cloned().collect();

    let triage_model = if args.triage && !active.is_empty() {
        Some(llm::build(&args.llm)?)
    } else {
        None
    };
    let mut handled = Vec::new();
    let mut notes = Vec::new();
    for alert in active {
        let mut alert = alert;
        let triage = match &triage_model {
            Some(llm) => match rt.block_on(triage(llm, &alert)) {
                Ok(t) => Some(t),
                Err(e) => {
                    notes.push(format!("triage of {} failed: {e:#}", alert.fingerprint));
                    None
                }
            },
            None => None,
        };
        if let Some(t) = &triage {
            alert.summary = format!(
                "{} (likely cause: {}; next step: {})",
                alert.summary, t.likely_cause, t.next_step
            );
        }
        let action = rt.block_on(sink.raise(&alert))?;
        let issue = match action {
            IssueAction::DryRun { description } => description,
            IssueAction::Opened { number } => format!("opened #{number}"),
            IssueAction::Commented { number } => format!("commented on #{number}"),
            other => format!("{other:?}"),
        };
        handled.push(Handled {
            alert,
            triage,
            issue,
        });
    }
    Ok(outcome(
        args, &origin, &runs, &kpis, &handled, &history, &notes,
    ))
}

/// An alert that fired during the history, and the run that cleared it.
#[derive(Debug, Serialize)]
struct Past {
    alert: Alert,
    recovered_by: Option<u64>,
}

/// Pages through the source, newest first, until `--max-runs` runs (0: no limit).
async fn collect(source: &dyn RunSource, args: &MonitorArgs) -> anyhow::Result<Vec<Run>> {
    let mut query = RunQuery::new();
    if let Some(w) = &args.workflow {
        query = query.with_workflow(w.clone());
    }
    if let Some(b) = &args.branch {
        query = query.with_branch(b.clone());
    }
    let limit = if args.max_runs == 0 {
        usize::MAX
    } else {
        args.max_runs as usize
    };
    let mut runs = Vec::new();
    loop {
        let page = source.runs(&query).await?;
        runs.extend(page.runs);
        match page.next_page {
            Some(next) if runs.len() < limit => query = query.with_page(next),
            _ => break,
        }
    }
    runs.truncate(limit);
    Ok(runs)
}

async fn triage(llm: &llm::Llm, alert: &Alert) -> anyhow::Result<Triage> {
    let request = flow_llm::ChatRequest::new(llm.name.clone())
        .with_timeout(llm.timeout)
        .message(flow_llm::Message::system(
            "You triage GitHub Actions health alerts. From the alert, its evidence and the \
             failing runs, give the most likely cause and the next step for a maintainer. \
             Be concrete and brief.",
        ))
        .message(flow_llm::Message::user(serde_json::to_string_pretty(
            alert,
        )?));
    Ok(flow_llm::delegate::<Triage>(&*llm.model, request)
        .await?
        .value)
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn secs(ms: i64) -> String {
    format!("{:.0}s", ms as f64 / 1000.0)
}

#[allow(clippy::too_many_arguments)]
fn outcome(
    args: &MonitorArgs,
    origin: &Origin,
    runs: &[Run],
    kpis: &[Kpis],
    handled: &[Handled],
    history: &[Past],
    notes: &[String],
) -> Outcome {
    let mut text = String::new();
    let _ = writeln!(text, "flow monitor: {} runs from {origin}", runs.len());
    let _ = writeln!(
        text,
        "\n{:<24} {:>5} {:>8} {:>8} {:>8} {:>8} {:>7} {:>7}",
        "workflow", "runs", "success", "failure", "p50", "p95", "flaky", "mttr"
    );
    let mut md = String::from("### flow monitor\n\n");
    let _ = writeln!(md, "{} runs from {origin}.\n", runs.len());
    md.push_str(
        "| workflow | runs | success | failure | p50 | p95 | flaky | MTTR |\n|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for k in kpis {
        let v = &k.values;
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
            k.key.workflow,
            v.count,
            pct(v.success_rate),
            pct(v.failure_rate),
            p50,
            p95,
            pct(v.flaky_rate),
            mttr
        );
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {p50} | {p95} | {} | {mttr} |",
            k.key.workflow,
            v.count,
            pct(v.success_rate),
            pct(v.failure_rate),
            pct(v.flaky_rate)
        );
    }
    let _ = writeln!(text, "\n{} alert(s) fired over the history:", history.len());
    let _ = writeln!(
        md,
        "\n**{} alert(s) fired over the history:**\n",
        history.len()
    );
    if !history.is_empty() {
        md.push_str("| run | workflow | alert | severity | status |\n|---:|---|---|---|---|\n");
    }
    for p in history {
        let a = &p.alert;
        let status = p
            .recovered_by
            .map_or_else(|| "open".to_owned(), |r| format!("recovered at run {r}"));
        let _ = writeln!(
            text,
            "  run {:<6} {:<10} {:<22} {:<8} {}: {}",
            a.run_id,
            a.workflow,
            a.kind.as_str(),
            a.severity.to_string(),
            status,
            a.summary
        );
        let _ = writeln!(
            md,
            "| {} | {} | {}: {} | {} | {status} |",
            a.run_id,
            a.workflow,
            a.kind.as_str(),
            a.summary.replace('|', "\\|"),
            a.severity
        );
    }
    if handled.is_empty() {
        text.push_str("\nNo alert is open now: no issue to open or update.\n");
        md.push_str("\nNo alert is open now: no issue to open or update.\n");
    } else {
        let _ = writeln!(text, "\n{} alert(s) open now:", handled.len());
        let _ = writeln!(md, "\n**{} alert(s) open now:**\n", handled.len());
    }
    let mut annotations = Vec::new();
    for h in handled {
        let a = &h.alert;
        let _ = writeln!(text, "  [{}] {}", a.severity, a.title());
        let _ = writeln!(
            text,
            "      {} = {:.3} (baseline {:.3}, threshold {:.3}); {} run(s)",
            a.evidence.metric,
            a.evidence.value,
            a.evidence.baseline,
            a.evidence.threshold,
            a.evidence.runs.len()
        );
        if let Some(t) = &h.triage {
            let _ = writeln!(text, "      likely cause: {}", t.likely_cause);
            let _ = writeln!(text, "      next step: {}", t.next_step);
        }
        let _ = writeln!(text, "      issue: {}", h.issue);
        let _ = writeln!(md, "- **{}** {}: {}", a.severity, a.workflow, a.summary);
        let level = match a.severity {
            Severity::Critical => Level::Error,
            _ => Level::Warning,
        };
        annotations.push(Annotation::new(level, a.summary.clone()).with_title(a.title()));
    }
    for n in notes {
        let _ = writeln!(text, "note: {n}");
        annotations.push(Annotation::new(Level::Warning, n.clone()));
    }
    let json = json!({
        "origin": origin,
        "runs": runs.len(),
        "kpis": kpis,
        "alerts": handled,
        "history": history,
        "notes": notes,
    });
    let text = match args.format {
        ReportFormat::Text => text,
        ReportFormat::Markdown => md.clone(),
        ReportFormat::Prometheus => prometheus(kpis, handled.len()),
    };
    Outcome {
        text,
        outputs: vec![
            ("alerts".into(), handled.len().to_string()),
            (
                "issues".into(),
                handled
                    .iter()
                    .map(|h| h.issue.clone())
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
        ],
        summary: Some(md),
        json,
        annotations,
    }
}

/// KPIs in the Prometheus text exposition format.
fn prometheus(kpis: &[Kpis], open_alerts: usize) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, help: &str, values: Vec<(String, f64)>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (wf, v) in values {
            let wf = wf
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            let _ = writeln!(out, "{name}{{workflow=\"{wf}\"}} {v}");
        }
    };
    let each = |f: &dyn Fn(&Kpis) -> f64| -> Vec<(String, f64)> {
        kpis.iter()
            .map(|k| (k.key.workflow.clone(), f(k)))
            .collect()
    };
    metric(
        "flow_workflow_runs",
        "Completed runs in the window.",
        each(&|k| k.values.count as f64),
    );
    metric(
        "flow_workflow_success_ratio",
        "Share of runs that succeeded.",
        each(&|k| k.values.success_rate),
    );
    metric(
        "flow_workflow_failure_ratio",
        "Share of runs that failed in a step.",
        each(&|k| k.values.failure_rate),
    );
    let _ = writeln!(
        out,
        "# HELP flow_open_alerts Alerts open after this run.\n# TYPE flow_open_alerts gauge\nflow_open_alerts {open_alerts}"
    );
    out
}
