//! `flow-telemetry`: real-time monitoring of GitHub Actions workflows — KPIs, streaming anomaly
//! detection, one deduplicated issue per problem, and reports.
//!
//! # Map
//!
//! - [`model`]: [`Run`], [`Job`], [`Step`] as GitHub returns them, parsed tolerantly.
//! - [`source`]: the [`RunSource`] trait; GitHub REST, event payloads, exported files.
//! - [`kpi`]: pure KPI functions over a window of runs.
//! - [`alert`]: [`Alert`] (an incident), [`AlertSignal`], [`Fingerprint`], [`Severity`].
//! - [`detect`], [`monitor`]: streaming detectors and the [`Monitor`] that runs them per
//!   workflow with a bounded window.
//! - [`rules`]: the rules file ([`Rules`]), YAML or TOML, with a JSON Schema.
//! - [`sink`]: the [`IssueSink`] trait; GitHub issues and a dry run.
//! - [`watch`]: the long-running loop ([`watch::Watcher`]): poll, observe, raise and resolve.
//! - [`otlp`]: each completed run as an OpenTelemetry trace (run, job and step spans after the
//!   CICD semantic conventions), exported over OTLP/HTTP protobuf.
//! - [`serve`]: what `flow serve` builds on: the [`serve::Coordinator`] replicas share and the
//!   webhook signature check.
//! - [`report`]: JSON, Markdown (with Mermaid charts) and Prometheus text.
//! - [`generator`], [`quality`], [`sample`]: seeded synthetic histories, detection quality,
//!   and a bundled sample history.
//!
//! # KPI formulas
//!
//! Over the completed runs of a group (a workflow, or a workflow × branch or × event) in the
//! window, sorted by `created_at` then id then attempt; in-progress runs are only counted in
//! `in_progress`. `n` is the number of completed runs.
//!
//! | KPI | formula |
//! |---|---|
//! | `count` | `n` |
//! | `success_rate` | runs concluded `success` / `n` |
//! | `failure_rate` | runs concluded `failure` with a failed step / `n` (test and build failures) |
//! | `cancelled_rate`, `timed_out_rate` | runs concluded `cancelled` / `timed_out`, over `n` |
//! | `error_rate` | (`startup_failure` + runner errors) / `n`; a runner error is a `failure` whose failed job has no failed step |
//! | duration | `updated_at − run_started_at` (else `− created_at`) of the latest attempt, ms, negatives dropped |
//! | queue time | `run_started_at − created_at` of first attempts only, ms, negatives dropped |
//! | `pXX` | nearest rank: the value at 1-based rank `⌈XX/100 · m⌉` of the `m` sorted values |
//! | `mean` | arithmetic mean |
//! | `rerun_rate` | runs with `run_attempt > 1` / `n` |
//! | `flaky_rate` | flaky SHAs / distinct non-empty head SHAs; a SHA is flaky when a success follows a failed run of it, or a success has `run_attempt > 1` (its earlier attempt failed) |
//! | `mttr_ms` | on the default branch: mean over incidents of (completion of the first success after a failure − completion of the first failure of the incident); unrecovered incidents are not counted |
//! | `longest_failing_streak` | longest run of consecutive failed runs (failure, timed out, error); cancelled and other outcomes neither extend nor break it |
//! | `throughput_per_day` | `n` / max(1, (last `created_at` − first `created_at`) in days) |
//!
//! Jobs ([`kpi::job_kpis`]): duration `completed_at − started_at`, queue `started_at −
//! created_at`, steps `completed_at − started_at` (a step may start before its job's recorded
//! start; only negative spans are dropped).
//!
//! # Detection
//!
//! [`Monitor::observe`] feeds each completed run to the detectors of its workflow and branch, in
//! constant work per run (bounded by the baseline window), and returns the incidents that
//! opened, the open ones that gained a signal, and those that resolved:
//!
//! | signal | detector |
//! |---|---|
//! | `duration_outlier`, `queue_outlier` | robust z `(x − median)/(1.4826·MAD)` over the last `baseline_window` values (queue times on a log scale, with a lagged baseline), `z_min_consecutive` runs above `duration_z`/`queue_z`; recovers after `recovery_runs` runs in a row at or below it |
//! | `duration_shift`, `queue_shift` | one-sided CUSUM of the same standardized values, each clipped to ±`change_point_clip`, slack `change_point_k` / `queue_change_point_k`, threshold `change_point_h` / `queue_change_point_h`; recovers after `recovery_runs` runs in a row at most `2·k` sigmas above the pre-shift baseline |
//! | `failure_rate` | Bernoulli CUSUM of failed runs: baseline rate `p` (learned 10 runs late, frozen during a problem) against `max(p + failure_rate_shift, 2p)`, threshold `ln(1000·p1 / share)` where the share is a third of `false_alarms_per_1000_runs`; recovers when the reverse test has 99:1 odds that `p` is back |
//! | `consecutive_failures` | the shortest streak `k` with `(1 − p)·p^k` under the same share per run (or a fixed `consecutive_failures`); recovers like `failure_rate` |
//! | `rerun_rate` | Bernoulli CUSUM of "passed only on a re-run", as `failure_rate` with `rerun_rate_shift` |
//! | `*_threshold` | static `max_duration_ms`, `max_queue_ms`, `max_failure_rate` from the rules |
//!
//! Signals of one workflow on one branch form an *incident*: one [`Fingerprint`] (workflow and
//! branch), one issue listing every signal with a sentence saying the baseline, what was seen and
//! how unlikely that is under it; severity is the highest; it resolves when all its signals have
//! recovered. A workflow with too little history raises no failure signal and says so
//! ([`Monitor::baselines`]). Detection quality on generators of different character is in
//! `BENCHMARKS.md`.
//!
//! # Example
//!
//! ```
//! use flow_telemetry::{kpi, model::{Conclusion, Run, RunId, RunStatus}};
//!
//! let run = |id: u64, conclusion: Conclusion, secs: i64| Run {
//!     id: RunId(id),
//!     name: "CI".into(),
//!     head_branch: "main".into(),
//!     status: RunStatus::Completed,
//!     conclusion: Some(conclusion),
//!     created_at: Some(id as i64 * 60_000),
//!     run_started_at: Some(id as i64 * 60_000),
//!     updated_at: Some(id as i64 * 60_000 + secs * 1000),
//!     ..Run::default()
//! };
//! let runs = [
//!     run(1, Conclusion::Success, 100),
//!     run(2, Conclusion::Failure, 120),
//!     run(3, Conclusion::Success, 110),
//! ];
//! let k = kpi::kpis(&runs, kpi::GroupBy::Workflow, "main");
//! assert_eq!(k[0].values.count, 3);
//! assert!((k[0].values.failure_rate - 1.0 / 3.0).abs() < 1e-9);
//! assert_eq!(k[0].values.duration_ms.unwrap().p50, 110_000);
//! // From the failure's completion (2 min + 120 s) to the next success's (3 min + 110 s).
//! assert_eq!(k[0].values.mttr_ms, Some(50_000.0));
//! ```

// The README's example, compiled and run with the doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub mod alert;
pub mod detect;
pub mod error;
pub mod generator;
pub mod github;
pub mod history;
pub mod kpi;
pub mod lifecycle;
pub mod model;
pub mod monitor;
pub mod otlp;
pub mod problem;
pub mod quality;
pub mod report;
pub mod rules;
pub mod sample;
pub mod serve;
pub mod session;
pub mod sink;
pub mod source;
pub mod state;
pub mod time;
pub mod watch;

pub use alert::{Alert, AlertKind, AlertSignal, Evidence, Fingerprint, Severity};
pub use error::{Error, ErrorKind, Result};
pub use github::{GitHubClient, GitHubConfig};
pub use kpi::{GroupBy, KpiValues, Kpis, RunFacts, Summary};
pub use model::{Conclusion, Job, Outcome, Run, RunId, RunStatus, Step, WorkflowId};
pub use monitor::{BaselineStatus, Monitor, Observation};
pub use problem::{Problem, ProblemStatus};
pub use report::Report;
pub use rules::{Rules, Thresholds};
/// The redacting secret type tokens are held in (re-exported so callers need no extra dependency).
pub use secrecy::SecretString;
pub use sink::github::GitHubIssueSink;
pub use sink::{DryRunSink, IssueAction, IssueSink};
pub use source::event::EventSource;
pub use source::evidence::{EvidenceLimits, EvidenceSource, RunEvidence};
pub use source::file::FileSource;
pub use source::github::GitHubSource;
pub use source::sync::{Poller, PollerState};
pub use source::{RunPage, RunQuery, RunSource};
pub use state::{MonitorState, StateStore};
pub use time::{Clock, ManualClock, Sleeper, SystemClock, TokioSleeper};
pub use watch::Watcher;
