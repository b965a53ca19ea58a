//! Reports: JSON (stable, documented schema), Markdown for `GITHUB_STEP_SUMMARY` with Mermaid
//! charts, and Prometheus text exposition.
//!
//! # JSON schema (version 1)
//!
//! ```text
//! {
//!   "schema_version": 1,               // bumped on any incompatible change
//!   "generated_at_ms": 1767225600000,  // unix ms
//!   "default_branch": "main",
//!   "workflows": [{
//!     "workflow": "CI",                // group key (see kpi::GroupKey)
//!     "count": 180, "in_progress": 0,  // then every field of kpi::KpiValues:
//!     "success_rate": 0.93, ..., "duration_ms": {"n","mean","p50","p90","p95","p99"} | null,
//!     "trend": [{"first_created_ms", "runs", "mean_duration_ms", "failure_rate"}]  // oldest first
//!   }],
//!   "alerts": [Alert],                 // open incidents, see alert::Alert
//!   "baselines": [BaselineStatus],     // optional: per workflow and branch, its baselines or
//!                                      // the history it still lacks (monitor::BaselineStatus)
//!   "problems": [Problem],             // optional: every incident over the history, see
//!                                      // problem::Problem (Report::of_monitor, of_runs)
//!   "truncated": true                  // optional: a limit cut the runs read (absent: false)
//! }
//! ```
//!
//! [`json_schema`] gives the machine-readable JSON Schema; a snapshot test pins it.

use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::alert::Alert;
use crate::kpi::{JobKpis, Kpis, RunFacts, job_kpis};
use crate::model::Job;
use crate::model::Run;
use crate::monitor::{BaselineStatus, Monitor};
use crate::problem::{Problem, ProblemStatus};
use crate::rules::Rules;
use crate::time::Clock;

/// The current JSON schema version.
pub const SCHEMA_VERSION: u32 = 1;

/// Buckets in a trend.
pub const TREND_BUCKETS: usize = 10;

/// One bucket of a trend: consecutive runs of the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TrendPoint {
    /// Creation time of the bucket's first run, unix ms.
    pub first_created_ms: i64,
    /// Completed runs in the bucket.
    pub runs: u64,
    /// Mean duration of the bucket's runs, ms (0 without durations).
    pub mean_duration_ms: f64,
    /// Share of the bucket's runs that failed (failure, timed out, error).
    pub failure_rate: f64,
}

/// KPIs and trend of one workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WorkflowReport {
    /// The KPIs.
    #[serde(flatten)]
    pub kpis: Kpis,
    /// The trend over the window, oldest first.
    pub trend: Vec<TrendPoint>,
}

/// A full report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Report {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// When the report was made, unix ms.
    pub generated_at_ms: i64,
    /// Where MTTR is measured.
    pub default_branch: String,
    /// Per workflow, sorted by name.
    pub workflows: Vec<WorkflowReport>,
    /// Active alerts, by fingerprint.
    pub alerts: Vec<Alert>,
    /// Job and step durations by job name, from the jobs given to [`Report::with_jobs`]
    /// (a poller fetches those of failed runs); omitted when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<JobKpis>,
    /// Per workflow and branch: the baselines the signals are judged against, or that there
    /// is too little history to judge yet; omitted when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub baselines: Vec<BaselineStatus>,
    /// Every problem that fired over the observed history (open and recovered), by
    /// fingerprint, from [`Report::of_monitor`], [`Report::of_runs`] or
    /// [`Report::with_problems`]; omitted when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Problem>,
    /// True when a limit (pages read, a result cap) cut the runs the report covers: older
    /// runs exist that it did not see. Set with [`Report::with_truncated`]; omitted when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// Splits `facts` (oldest first) into at most `buckets` runs of consecutive runs.
pub fn trend(facts: &[RunFacts], buckets: usize) -> Vec<TrendPoint> {
    if facts.is_empty() || buckets == 0 {
        return Vec::new();
    }
    let size = facts.len().div_ceil(buckets);
    facts
        .chunks(size)
        .map(|c| {
            let d: Vec<i64> = c.iter().filter_map(|f| f.duration_ms).collect();
            TrendPoint {
                first_created_ms: c[0].created_at,
                runs: c.len() as u64,
                mean_duration_ms: if d.is_empty() {
                    0.0
                } else {
                    d.iter().sum::<i64>() as f64 / d.len() as f64
                },
                failure_rate: c.iter().filter(|f| f.outcome.is_failed()).count() as f64
                    / c.len() as f64,
            }
        })
        .collect()
}

impl Report {
    /// The report of `monitor`'s current state, dated `generated_at_ms` (unix ms): KPIs and
    /// the alerts active now. [`Report::of_monitor`] dates it from a clock and adds the
    /// history of every problem.
    pub fn from_monitor(monitor: &Monitor, generated_at_ms: i64) -> Self {
        let workflows = monitor
            .kpis()
            .into_iter()
            .map(|k| WorkflowReport {
                trend: trend(&monitor.window(&k.key.workflow), TREND_BUCKETS),
                kpis: k,
            })
            .collect();
        Self {
            schema_version: SCHEMA_VERSION,
            generated_at_ms,
            default_branch: monitor.rules().default_branch.clone(),
            workflows,
            alerts: monitor.active_alerts().cloned().collect(),
            jobs: Vec::new(),
            baselines: monitor.baselines(),
            problems: Vec::new(),
            truncated: false,
        }
    }

    /// The report of everything `monitor` observed, dated by `clock`: KPIs, active alerts,
    /// and every problem that fired over the history ([`Report::problems`]: open and
    /// recovered). Use [`SystemClock`](crate::SystemClock) for "now".
    pub fn of_monitor(monitor: &Monitor, clock: &dyn Clock) -> Self {
        Self::from_monitor(monitor, clock.now_ms()).with_problems(monitor)
    }

    /// Runs `runs` (oldest first) through a fresh [`Monitor`] with `rules` and reports as
    /// [`Report::of_monitor`] does, dated by `clock`.
    pub fn of_runs(runs: &[Run], rules: &Rules, clock: &dyn Clock) -> Self {
        let mut m = Monitor::new(rules.clone());
        for r in runs {
            m.observe(r);
        }
        Self::of_monitor(&m, clock)
    }

    /// Adds every problem that fired over `monitor`'s history, open and recovered.
    #[must_use]
    pub fn with_problems(mut self, monitor: &Monitor) -> Self {
        self.problems = monitor.problems().cloned().collect();
        self
    }

    /// Marks the report as covering runs cut by a limit (see [`Report::truncated`]).
    #[must_use]
    pub fn with_truncated(mut self, truncated: bool) -> Self {
        self.truncated = truncated;
        self
    }

    /// The problems that fired and recovered by the end of the history.
    pub fn recovered_problems(&self) -> impl Iterator<Item = &Problem> {
        self.problems
            .iter()
            .filter(|p| p.status == ProblemStatus::Recovered)
    }

    /// Adds the job and step KPIs of `jobs`.
    #[must_use]
    pub fn with_jobs(mut self, jobs: &[Job]) -> Self {
        self.jobs = job_kpis(jobs);
        self
    }

    /// Runs `runs` (oldest first) through a fresh [`Monitor`] with `rules` and reports
    /// (the active alerts only; [`Report::of_runs`] also lists every problem of the history
    /// and dates the report from a clock).
    pub fn from_runs(runs: &[Run], rules: &Rules, generated_at_ms: i64) -> Self {
        let mut m = Monitor::new(rules.clone());
        for r in runs {
            m.observe(r);
        }
        Self::from_monitor(&m, generated_at_ms)
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Markdown for `GITHUB_STEP_SUMMARY`: a KPI table, the active alerts, and per workflow a
    /// Mermaid duration trend and failure-rate chart.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "## Workflow health\n");
        let _ = writeln!(
            s,
            "| workflow | runs | success | failure | errors | p50 | p95 | queue p95 | re-runs | flaky | MTTR ({}) | longest failing streak | runs/day |",
            self.default_branch
        );
        let _ = writeln!(
            s,
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for w in &self.workflows {
            let v = &w.kpis.values;
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} |",
                md_escape(&w.kpis.key.workflow),
                v.count,
                pct(v.success_rate),
                pct(v.failure_rate),
                pct(v.error_rate + v.timed_out_rate),
                v.duration_ms.map_or_else(dash, |d| dur(d.p50 as f64)),
                v.duration_ms.map_or_else(dash, |d| dur(d.p95 as f64)),
                v.queue_ms.map_or_else(dash, |d| dur(d.p95 as f64)),
                pct(v.rerun_rate),
                pct(v.flaky_rate),
                v.mttr_ms.map_or_else(dash, dur),
                v.longest_failing_streak,
                v.throughput_per_day,
            );
        }
        let _ = writeln!(s, "\n### Alerts\n");
        if self.alerts.is_empty() {
            let _ = writeln!(s, "No active alert.");
        } else {
            let _ = writeln!(s, "| severity | workflow | signals | summary | run |");
            let _ = writeln!(s, "|---|---|---|---|---|");
            for a in &self.alerts {
                let run = a
                    .evidence
                    .runs
                    .last()
                    .map_or_else(dash, |u| format!("[{}]({u})", a.run_id));
                let kinds: Vec<String> = a.kinds().iter().map(|k| format!("`{k}`")).collect();
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} |",
                    a.severity,
                    md_escape(&a.workflow),
                    kinds.join(", "),
                    md_escape(&a.summary),
                    run
                );
            }
            let why: Vec<&str> = self
                .alerts
                .iter()
                .flat_map(|a| a.signals.iter().map(|s| s.explanation.as_str()))
                .collect();
            if !why.is_empty() {
                let _ = writeln!(s);
                for w in why {
                    let _ = writeln!(s, "- {}", md_escape(w));
                }
            }
        }
        if !self.baselines.is_empty() {
            let _ = writeln!(s, "\n### Baselines\n");
            for b in &self.baselines {
                let _ = writeln!(s, "- {}", md_escape(&b.to_string()));
            }
        }
        if self.truncated {
            let _ = writeln!(
                s,
                "\n> **Truncated**: a limit cut the runs read; older runs are not in this report."
            );
        }
        if !self.problems.is_empty() {
            let _ = writeln!(s, "\n### Problems over the history\n");
            let _ = writeln!(
                s,
                "| status | workflow | problem | fired | recovered | first fired | last recovered |"
            );
            let _ = writeln!(s, "|---|---|---|---:|---:|---|---|");
            for p in &self.problems {
                let _ = writeln!(
                    s,
                    "| {} | {} | `{}` | {} | {} | {} | {} |",
                    if p.is_open() { "open" } else { "recovered" },
                    md_escape(&p.workflow),
                    p.kind,
                    p.fired,
                    p.recovered,
                    crate::model::ts::format_ms(p.first_fired_at_ms),
                    p.last_recovered_at_ms
                        .map_or_else(dash, crate::model::ts::format_ms),
                );
            }
        }
        if !self.jobs.is_empty() {
            let _ = writeln!(s, "\n### Jobs\n");
            let _ = writeln!(
                s,
                "| job | runs | p50 | p95 | queue p95 | runner errors | slowest step (p95) |"
            );
            let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---|");
            for j in &self.jobs {
                let slowest = j
                    .steps
                    .iter()
                    .filter_map(|st| st.duration_ms.map(|d| (d.p95, st.name.as_str())))
                    .max_by_key(|(d, _)| *d)
                    .map_or_else(dash, |(d, n)| {
                        format!("{} ({})", md_escape(n), dur(d as f64))
                    });
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {} | {} |",
                    md_escape(&j.name),
                    j.count,
                    j.duration_ms.map_or_else(dash, |d| dur(d.p50 as f64)),
                    j.duration_ms.map_or_else(dash, |d| dur(d.p95 as f64)),
                    j.queue_ms.map_or_else(dash, |d| dur(d.p95 as f64)),
                    j.runner_errors,
                    slowest
                );
            }
        }
        for w in &self.workflows {
            if w.trend.is_empty() {
                continue;
            }
            let name = w.kpis.key.workflow.replace('"', "'");
            let xs: Vec<String> = (1..=w.trend.len()).map(|i| i.to_string()).collect();
            let mins: Vec<f64> = w
                .trend
                .iter()
                .map(|p| round1(p.mean_duration_ms / 60_000.0))
                .collect();
            let fails: Vec<f64> = w
                .trend
                .iter()
                .map(|p| round1(p.failure_rate * 100.0))
                .collect();
            let top = mins.iter().copied().fold(0.0, f64::max).ceil().max(1.0);
            let per = w.trend.first().map_or(0, |p| p.runs);
            let _ = writeln!(s, "\n### {}\n", md_escape(&w.kpis.key.workflow));
            let _ = writeln!(
                s,
                "```mermaid\nxychart-beta\n    title \"{name}: mean duration (min), buckets of {per} runs\"\n    x-axis [{}]\n    y-axis \"minutes\" 0 --> {top}\n    line [{}]\n```\n",
                xs.join(", "),
                join(&mins)
            );
            let _ = writeln!(
                s,
                "```mermaid\nxychart-beta\n    title \"{name}: failure rate (%), buckets of {per} runs\"\n    x-axis [{}]\n    y-axis \"%\" 0 --> 100\n    bar [{}]\n```",
                xs.join(", "),
                join(&fails)
            );
        }
        s
    }

    /// Prometheus text exposition (format 0.0.4).
    pub fn to_prometheus(&self) -> String {
        let mut s = String::new();
        let mut family = |name: &str, kind: &str, help: &str, samples: Vec<(String, f64)>| {
            if samples.is_empty() {
                return;
            }
            let _ = writeln!(s, "# HELP {name} {help}");
            let _ = writeln!(s, "# TYPE {name} {kind}");
            for (suffix_labels, v) in samples {
                let _ = writeln!(s, "{name}{suffix_labels} {}", num(v));
            }
        };
        let wf = |w: &WorkflowReport| format!("workflow=\"{}\"", label(&w.kpis.key.workflow));
        let per = |f: &dyn Fn(&WorkflowReport) -> Option<f64>| -> Vec<(String, f64)> {
            self.workflows
                .iter()
                .filter_map(|w| f(w).map(|v| (format!("{{{}}}", wf(w)), v)))
                .collect()
        };
        family(
            "flow_telemetry_runs",
            "gauge",
            "Completed runs in the window.",
            per(&|w| Some(w.kpis.values.count as f64)),
        );
        let mut outcomes = Vec::new();
        for w in &self.workflows {
            let v = &w.kpis.values;
            for (o, r) in v.outcome_rates() {
                outcomes.push((format!("{{{},outcome=\"{o}\"}}", wf(w)), r));
            }
        }
        family(
            "flow_telemetry_outcome_ratio",
            "gauge",
            "Share of completed runs by outcome.",
            outcomes,
        );
        for (name, help, pick) in [
            (
                "flow_telemetry_run_duration_seconds",
                "Run duration over the window.",
                0,
            ),
            (
                "flow_telemetry_queue_seconds",
                "Queue time of first attempts over the window.",
                1,
            ),
        ] {
            let mut samples = Vec::new();
            let mut sums = Vec::new();
            let mut counts = Vec::new();
            for w in &self.workflows {
                let v = &w.kpis.values;
                let Some(d) = (if pick == 0 { v.duration_ms } else { v.queue_ms }) else {
                    continue;
                };
                for (q, x) in [
                    ("0.5", d.p50),
                    ("0.9", d.p90),
                    ("0.95", d.p95),
                    ("0.99", d.p99),
                ] {
                    samples.push((format!("{{{},quantile=\"{q}\"}}", wf(w)), x as f64 / 1000.0));
                }
                sums.push((format!("{{{}}}", wf(w)), d.mean * d.n as f64 / 1000.0));
                counts.push((format!("{{{}}}", wf(w)), d.n as f64));
            }
            if samples.is_empty() {
                continue;
            }
            let _ = writeln!(s, "# HELP {name} {help}");
            let _ = writeln!(s, "# TYPE {name} summary");
            for (l, v) in samples {
                let _ = writeln!(s, "{name}{l} {}", num(v));
            }
            for (l, v) in sums {
                let _ = writeln!(s, "{name}_sum{l} {}", num(v));
            }
            for (l, v) in counts {
                let _ = writeln!(s, "{name}_count{l} {}", num(v));
            }
        }
        let mut family = |name: &str, help: &str, samples: Vec<(String, f64)>| {
            if samples.is_empty() {
                return;
            }
            let _ = writeln!(s, "# HELP {name} {help}");
            let _ = writeln!(s, "# TYPE {name} gauge");
            for (l, v) in samples {
                let _ = writeln!(s, "{name}{l} {}", num(v));
            }
        };
        family(
            "flow_telemetry_rerun_ratio",
            "Share of runs with run_attempt > 1.",
            per(&|w| Some(w.kpis.values.rerun_rate)),
        );
        family(
            "flow_telemetry_flaky_ratio",
            "Share of head SHAs that failed then passed.",
            per(&|w| Some(w.kpis.values.flaky_rate)),
        );
        family(
            "flow_telemetry_mttr_seconds",
            "Mean time to recovery on the default branch.",
            per(&|w| w.kpis.values.mttr_ms.map(|m| m / 1000.0)),
        );
        family(
            "flow_telemetry_longest_failing_streak",
            "Longest run of consecutive failed runs.",
            per(&|w| Some(w.kpis.values.longest_failing_streak as f64)),
        );
        family(
            "flow_telemetry_throughput_per_day",
            "Completed runs per day.",
            per(&|w| Some(w.kpis.values.throughput_per_day)),
        );
        let alerts: Vec<(String, f64)> = self
            .alerts
            .iter()
            .map(|a| {
                (
                    format!(
                        "{{workflow=\"{}\",kind=\"{}\",severity=\"{}\",fingerprint=\"{}\"}}",
                        label(&a.workflow),
                        a.kind,
                        a.severity,
                        a.fingerprint
                    ),
                    1.0,
                )
            })
            .collect();
        family(
            "flow_telemetry_alert_active",
            "1 for each active alert.",
            alerts,
        );
        s
    }
}

/// The JSON Schema of [`Report`].
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Report)).unwrap_or_default()
}

fn dash() -> String {
    "–".into()
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn dur(ms: f64) -> String {
    let s = ms / 1000.0;
    if s >= 3600.0 {
        format!("{:.1}h", s / 3600.0)
    } else if s >= 60.0 {
        format!("{:.1}m", s / 60.0)
    } else {
        format!("{s:.0}s")
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn join(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else if v.is_nan() {
        "NaN".into()
    } else if v > 0.0 {
        "+Inf".into()
    } else {
        "-Inf".into()
    }
}
