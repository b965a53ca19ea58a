//! `/metrics`: what `flow serve` exposes to Prometheus.
//!
//! Exporter parity (the facts of cpanato/github_actions_exporter, our names): run and job
//! duration and queue-time histograms and status/conclusion counters, labelled by repository,
//! workflow, branch (and job, conclusion), counted from the deliveries and, for runs whose
//! delivery was lost, from the monitoring invocations that found them — each run attempt, job
//! and status once, through the coordinator's first-seen check, so a redelivery, a run seen
//! both ways or a replica's redo does not count twice. Then our KPIs per workflow and the open alerts, from each
//! repository's latest monitoring report, and the service's own counters.
//!
//! Names follow `report::Report::to_prometheus` (`flow_telemetry_…`, seconds).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use flow_orchestrator::MonitorReport;
use flow_telemetry::model::{Job, Run, RunStatus};
use flow_telemetry::serve::JobContext;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// 1 s to about 4.7 h, ×1.4 per bucket (the exporter's buckets).
fn buckets() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 1.4, 30))
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;
type FloatGauge = Gauge<f64, AtomicU64>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    repository: String,
    workflow: String,
    branch: String,
    conclusion: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    repository: String,
    workflow: String,
    branch: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    repository: String,
    workflow: String,
    branch: String,
    status: String,
    conclusion: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    repository: String,
    workflow: String,
    branch: String,
    job: String,
    conclusion: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobQueueLabels {
    repository: String,
    workflow: String,
    branch: String,
    job: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobStatusLabels {
    repository: String,
    workflow: String,
    branch: String,
    job: String,
    status: String,
    conclusion: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkflowLabels {
    repository: String,
    workflow: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    repository: String,
    workflow: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AlertLabels {
    repository: String,
    workflow: String,
    kind: String,
    severity: String,
    fingerprint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RepoLabels {
    repository: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    event: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

/// The label sets of one repository's snapshot gauges, to remove them when it changes.
#[derive(Default)]
struct Snapshot {
    workflows: Vec<WorkflowLabels>,
    outcomes: Vec<OutcomeLabels>,
    alerts: Vec<AlertLabels>,
}

/// Every series `flow serve` exposes.
pub(crate) struct Metrics {
    registry: Registry,
    run_duration: Histograms<RunLabels>,
    run_queue: Histograms<QueueLabels>,
    runs: Family<StatusLabels, Counter>,
    job_duration: Histograms<JobLabels>,
    job_queue: Histograms<JobQueueLabels>,
    jobs: Family<JobStatusLabels, Counter>,
    kpi_runs: Family<WorkflowLabels, FloatGauge>,
    outcome: Family<OutcomeLabels, FloatGauge>,
    rerun: Family<WorkflowLabels, FloatGauge>,
    flaky: Family<WorkflowLabels, FloatGauge>,
    mttr: Family<WorkflowLabels, FloatGauge>,
    alert_active: Family<AlertLabels, FloatGauge>,
    alerts_open: Family<RepoLabels, FloatGauge>,
    deliveries: Family<DeliveryLabels, Counter>,
    processed: Family<ResultLabels, Counter>,
    waiting: Gauge,
    queued: Gauge,
    snapshots: Mutex<HashMap<String, Snapshot>>,
    accepted_n: AtomicU64,
    processed_n: AtomicU64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn secs(ms: i64) -> Option<f64> {
    (ms >= 0).then(|| ms as f64 / 1000.0)
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::default();
        let run_duration: Histograms<RunLabels> = Family::new_with_constructor(buckets);
        let run_queue: Histograms<QueueLabels> = Family::new_with_constructor(buckets);
        let job_duration: Histograms<JobLabels> = Family::new_with_constructor(buckets);
        let job_queue: Histograms<JobQueueLabels> = Family::new_with_constructor(buckets);
        let m = Self {
            run_duration,
            run_queue,
            runs: Family::default(),
            job_duration,
            job_queue,
            jobs: Family::default(),
            kpi_runs: Family::default(),
            outcome: Family::default(),
            rerun: Family::default(),
            flaky: Family::default(),
            mttr: Family::default(),
            alert_active: Family::default(),
            alerts_open: Family::default(),
            deliveries: Family::default(),
            processed: Family::default(),
            waiting: Gauge::default(),
            queued: Gauge::default(),
            snapshots: Mutex::default(),
            accepted_n: AtomicU64::new(0),
            processed_n: AtomicU64::new(0),
            registry: Registry::default(),
        };
        registry.register(
            "flow_telemetry_workflow_run_duration_seconds",
            "Duration of completed workflow runs (updated_at - run_started_at)",
            m.run_duration.clone(),
        );
        registry.register(
            "flow_telemetry_workflow_run_queue_seconds",
            "Queue time of completed workflow runs (run_started_at - created_at)",
            m.run_queue.clone(),
        );
        // prometheus-client appends `_total` to counters.
        registry.register(
            "flow_telemetry_workflow_runs",
            "Workflow run deliveries by status and conclusion, each run attempt and status once",
            m.runs.clone(),
        );
        registry.register(
            "flow_telemetry_workflow_job_duration_seconds",
            "Duration of completed jobs (completed_at - started_at)",
            m.job_duration.clone(),
        );
        registry.register(
            "flow_telemetry_workflow_job_queue_seconds",
            "Queue time of jobs (started_at - created_at)",
            m.job_queue.clone(),
        );
        registry.register(
            "flow_telemetry_workflow_jobs",
            "Workflow job deliveries by status and conclusion, each job and status once",
            m.jobs.clone(),
        );
        registry.register(
            "flow_telemetry_runs",
            "Completed runs in the monitor's window",
            m.kpi_runs.clone(),
        );
        registry.register(
            "flow_telemetry_outcome_ratio",
            "Share of completed runs by outcome",
            m.outcome.clone(),
        );
        registry.register(
            "flow_telemetry_rerun_ratio",
            "Share of runs with run_attempt > 1",
            m.rerun.clone(),
        );
        registry.register(
            "flow_telemetry_flaky_ratio",
            "Share of head SHAs that failed then passed",
            m.flaky.clone(),
        );
        registry.register(
            "flow_telemetry_mttr_seconds",
            "Mean time to recovery on the default branch",
            m.mttr.clone(),
        );
        registry.register(
            "flow_telemetry_alert_active",
            "1 for each active alert",
            m.alert_active.clone(),
        );
        registry.register(
            "flow_telemetry_alerts_open",
            "Active alerts per repository",
            m.alerts_open.clone(),
        );
        registry.register(
            "flow_serve_deliveries",
            "Webhook deliveries by event and result (accepted, duplicate, unsigned, bad_signature, queue_full, ignored, invalid, unavailable)",
            m.deliveries.clone(),
        );
        registry.register(
            "flow_serve_processed",
            "Monitoring invocations by result (ok, error)",
            m.processed.clone(),
        );
        registry.register(
            "flow_serve_queue_depth",
            "Deliveries accepted and not yet picked up by a worker (the webhook answers 503 at serve.queue_capacity)",
            m.waiting.clone(),
        );
        registry.register(
            "flow_serve_queued_repositories",
            "Repositories waiting for a worker",
            m.queued.clone(),
        );
        Self { registry, ..m }
    }

    /// Counts a webhook delivery's result.
    pub(crate) fn delivery(&self, event: &str, result: &str) {
        // Event names come from GitHub's header: keep the label set bounded.
        if result == "accepted" {
            self.accepted_n.fetch_add(1, Ordering::Relaxed);
        }
        let event = match event {
            "workflow_run" | "workflow_job" | "ping" => event,
            _ => "other",
        };
        self.deliveries
            .get_or_create(&DeliveryLabels {
                event: event.to_owned(),
                result: result.to_owned(),
            })
            .inc();
    }

    /// Counts a monitoring invocation.
    pub(crate) fn processed(&self, ok: bool) {
        self.processed_n.fetch_add(1, Ordering::Relaxed);
        self.processed
            .get_or_create(&ResultLabels {
                result: if ok { "ok" } else { "error" }.to_owned(),
            })
            .inc();
    }

    /// Deliveries accepted so far.
    pub(crate) fn accepted(&self) -> u64 {
        self.accepted_n.load(Ordering::Relaxed)
    }

    /// Monitoring invocations so far.
    pub(crate) fn processed_count(&self) -> u64 {
        self.processed_n.load(Ordering::Relaxed)
    }

    /// The deliveries waiting for a worker and the repositories queued.
    pub(crate) fn set_queue_depth(&self, waiting: usize, queued: usize) {
        self.waiting.set(i64::try_from(waiting).unwrap_or(i64::MAX));
        self.queued.set(i64::try_from(queued).unwrap_or(i64::MAX));
    }

    /// Records a run's status; `timed` when its completion was seen for the first time
    /// (the histograms then get its duration and queue time).
    pub(crate) fn run(&self, repository: &str, run: &Run, timed: bool) {
        let conclusion = run
            .conclusion
            .map(|c| c.as_str().to_owned())
            .unwrap_or_default();
        self.runs
            .get_or_create(&StatusLabels {
                repository: repository.to_owned(),
                workflow: run.name.clone(),
                branch: run.head_branch.clone(),
                status: run.status.as_str().to_owned(),
                conclusion: conclusion.clone(),
            })
            .inc();
        if !timed || run.status != RunStatus::Completed {
            return;
        }
        if let Some(d) = run.duration_ms().and_then(secs) {
            self.run_duration
                .get_or_create(&RunLabels {
                    repository: repository.to_owned(),
                    workflow: run.name.clone(),
                    branch: run.head_branch.clone(),
                    conclusion,
                })
                .observe(d);
        }
        if let Some(q) = run.queue_ms().and_then(secs) {
            self.run_queue
                .get_or_create(&QueueLabels {
                    repository: repository.to_owned(),
                    workflow: run.name.clone(),
                    branch: run.head_branch.clone(),
                })
                .observe(q);
        }
    }

    /// Records a job's status; `queued_once` when its start was seen for the first time (its
    /// queue time is observed), `timed` when its completion was (its duration is).
    pub(crate) fn job(
        &self,
        repository: &str,
        context: &JobContext,
        job: &Job,
        queued_once: bool,
        timed: bool,
    ) {
        let conclusion = job
            .conclusion
            .map(|c| c.as_str().to_owned())
            .unwrap_or_default();
        self.jobs
            .get_or_create(&JobStatusLabels {
                repository: repository.to_owned(),
                workflow: context.workflow.clone(),
                branch: context.branch.clone(),
                job: job.name.clone(),
                status: job.status.as_str().to_owned(),
                conclusion: conclusion.clone(),
            })
            .inc();
        if queued_once && let Some(q) = job.queue_ms().and_then(secs) {
            self.job_queue
                .get_or_create(&JobQueueLabels {
                    repository: repository.to_owned(),
                    workflow: context.workflow.clone(),
                    branch: context.branch.clone(),
                    job: job.name.clone(),
                })
                .observe(q);
        }
        if timed
            && job.status == RunStatus::Completed
            && let Some(d) = job.duration_ms().and_then(secs)
        {
            self.job_duration
                .get_or_create(&JobLabels {
                    repository: repository.to_owned(),
                    workflow: context.workflow.clone(),
                    branch: context.branch.clone(),
                    job: job.name.clone(),
                    conclusion,
                })
                .observe(d);
        }
    }

    /// Replaces `repository`'s KPI and alert gauges with those of its latest report.
    pub(crate) fn report(&self, repository: &str, report: &MonitorReport) {
        let Ok(mut snapshots) = self.snapshots.lock() else {
            return;
        };
        if let Some(old) = snapshots.remove(repository) {
            for l in &old.workflows {
                self.kpi_runs.remove(l);
                self.rerun.remove(l);
                self.flaky.remove(l);
                self.mttr.remove(l);
            }
            for l in &old.outcomes {
                self.outcome.remove(l);
            }
            for l in &old.alerts {
                self.alert_active.remove(l);
            }
        }
        let mut snap = Snapshot::default();
        for w in &report.telemetry.workflows {
            let l = WorkflowLabels {
                repository: repository.to_owned(),
                workflow: w.kpis.key.workflow.clone(),
            };
            let v = &w.kpis.values;
            self.kpi_runs.get_or_create(&l).set(v.count as f64);
            self.rerun.get_or_create(&l).set(v.rerun_rate);
            self.flaky.get_or_create(&l).set(v.flaky_rate);
            if let Some(m) = v.mttr_ms {
                self.mttr.get_or_create(&l).set(m / 1000.0);
            }
            for (o, r) in v.outcome_rates() {
                let ol = OutcomeLabels {
                    repository: repository.to_owned(),
                    workflow: w.kpis.key.workflow.clone(),
                    outcome: o.to_owned(),
                };
                self.outcome.get_or_create(&ol).set(r);
                snap.outcomes.push(ol);
            }
            snap.workflows.push(l);
        }
        for a in &report.alerts {
            let al = &a.alert;
            let l = AlertLabels {
                repository: repository.to_owned(),
                workflow: al.workflow.clone(),
                kind: al.kind.as_str().to_owned(),
                severity: al.severity.to_string(),
                fingerprint: al.fingerprint.to_string(),
            };
            self.alert_active.get_or_create(&l).set(1.0);
            snap.alerts.push(l);
        }
        self.alerts_open
            .get_or_create(&RepoLabels {
                repository: repository.to_owned(),
            })
            .set(report.alerts.len() as f64);
        snapshots.insert(repository.to_owned(), snap);
    }

    /// The OpenMetrics text exposition.
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use flow_telemetry::model::{Conclusion, RunId};

    use super::*;

    fn run(status: RunStatus) -> Run {
        Run {
            id: RunId(7),
            name: "CI".into(),
            head_branch: "main".into(),
            status,
            conclusion: (status == RunStatus::Completed).then_some(Conclusion::Failure),
            created_at: Some(1_000),
            run_started_at: Some(4_000),
            updated_at: Some(64_000),
            ..Run::default()
        }
    }

    #[test]
    fn a_completed_run_feeds_the_histograms_and_the_counter() {
        let m = Metrics::new();
        m.run("o/r", &run(RunStatus::InProgress), true);
        m.run("o/r", &run(RunStatus::Completed), true);
        let text = m.encode();
        let labels = r#"repository="o/r",workflow="CI",branch="main""#;
        for line in [
            format!(
                r#"flow_telemetry_workflow_runs_total{{{labels},status="in_progress",conclusion=""}} 1"#
            ),
            format!(
                r#"flow_telemetry_workflow_runs_total{{{labels},status="completed",conclusion="failure"}} 1"#
            ),
            // 60 s of work after 3 s in the queue.
            format!(
                r#"flow_telemetry_workflow_run_duration_seconds_sum{{{labels},conclusion="failure"}} 60.0"#
            ),
            format!(r#"flow_telemetry_workflow_run_queue_seconds_sum{{{labels}}} 3.0"#),
        ] {
            assert!(text.contains(&line), "{line}\n{text}");
        }
        // Help texts end with one period (the library adds it).
        assert!(!text.contains(".."), "{text}");
    }

    #[test]
    fn service_counters_keep_event_labels_bounded() {
        let m = Metrics::new();
        m.delivery("workflow_run", "accepted");
        m.delivery("a-made-up-event", "ignored");
        let text = m.encode();
        assert!(
            text.contains(r#"flow_serve_deliveries_total{event="other",result="ignored"} 1"#),
            "{text}"
        );
        assert_eq!(m.accepted(), 1);
    }
}
