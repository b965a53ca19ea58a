//! OTLP export: each completed workflow run as one OpenTelemetry trace, sent to a collector
//! over OTLP/HTTP with protobuf bodies.
//!
//! # The trace of a run
//!
//! Spans follow the OpenTelemetry semantic conventions for CICD, version 1.44.0 (`cicd.*`,
//! `vcs.*`; both still of *Development* stability, so names may change in a later release;
//! [`SCHEMA_URL`] says which version a backend should read them as):
//!
//! | span | parent | name | kind | attributes |
//! |---|---|---|---|---|
//! | run (root) | — | `RUN {workflow}` (`{cicd.pipeline.action.name} {cicd.pipeline.name}`) | `SERVER` | `cicd.pipeline.name`, `cicd.pipeline.run.id`, `cicd.pipeline.run.url.full`, `cicd.pipeline.action.name` (`RUN`), `cicd.pipeline.result`, `error.type` on failures, `vcs.provider.name` (`github`), `vcs.ref.head.name`, `vcs.ref.head.type`, `vcs.ref.head.revision`, `vcs.repository.url.full`, `github.run.attempt`, `github.run.number`, `github.event.name`, `github.workflow.path` |
//! | job | the run | the job's name | `INTERNAL` | `cicd.pipeline.task.name`, `cicd.pipeline.task.run.id` (the job id), `cicd.pipeline.task.run.url.full`, `cicd.pipeline.task.run.result`, `cicd.pipeline.task.type` (only when the name says build, test or deploy), `cicd.worker.name` (the runner), `error.type`, `github.job.queue_ms` |
//! | step | its job | the step's name | `INTERNAL` | `cicd.pipeline.task.name`, `cicd.pipeline.task.run.id` (`{job id}/{step number}`), `cicd.pipeline.task.run.url.full` (the job's URL with `#step:{n}:1`), `cicd.pipeline.task.run.result`, `github.step.number`, `error.type` |
//!
//! Every span also carries `cicd.pipeline.name`, `cicd.pipeline.run.id` and
//! `cicd.pipeline.run.url.full`, so a job or step can be found on its own. Results use the
//! conventions' values (`success`, `failure`, `error`, `timeout`, `cancellation`, `skip`): a
//! failure without a failed step (a lost runner) and `startup_failure` are `error`. Failures,
//! errors and timeouts set the span status to `ERROR` with the result as its message; the
//! rest leave it unset. Times are GitHub's: the run from `run_started_at` to `updated_at`, jobs
//! and steps from `started_at` to `completed_at`; a step that never started has no span. The
//! resource says `service.name` ([`OtlpConfig::with_service_name`], default `flow-telemetry`)
//! and `service.version` (this crate's version); the scope is `flow-telemetry` at that version.
//!
//! # Identity: the same run, the same ids
//!
//! Trace and span ids are derived from the run id and attempt (and the job id and step number)
//! by hashing ([`ids`]), never drawn at random: exporting a run twice (two replicas, a retry
//! after a lost answer, a monitor whose state was reset) sends the same trace again, which a
//! backend shows as one trace. A re-run attempt is a new trace.
//!
//! # Delivery
//!
//! [`OtlpExporter::export`] batches runs (at most 50 runs and 5,000 spans per request by
//! default), posts each batch as `application/x-protobuf` to `{endpoint}/v1/traces`, retries
//! 429/502/503/504 and failed connections (honouring `Retry-After`), and reports what happened
//! in an [`ExportReport`]. It never returns an error: telemetry export must not fail the
//! monitoring that feeds it. Header values (API keys) are secrets and never reach `Debug`,
//! logs or reports.
//!
//! ```
//! use flow_telemetry::otlp::{OtlpConfig, RunWithJobs, ids};
//! use flow_telemetry::model::{Conclusion, Run, RunId, RunStatus};
//!
//! let config = OtlpConfig::new("http://localhost:4318")?;
//! assert_eq!(config.describe(), "http://localhost:4318/v1/traces");
//! let run = Run {
//!     id: RunId(42),
//!     name: "CI".into(),
//!     status: RunStatus::Completed,
//!     conclusion: Some(Conclusion::Failure),
//!     run_attempt: 1,
//!     ..Run::default()
//! };
//! let request = flow_telemetry::otlp::request("flow", &[RunWithJobs::new(run, vec![])]);
//! let span = &request.resource_spans[0].scope_spans[0].spans[0];
//! assert_eq!(span.name, "RUN CI");
//! assert_eq!(span.trace_id, ids::trace_id(RunId(42), 1).to_vec());
//! # Ok::<(), flow_telemetry::Error>(())
//! ```

mod config;
pub mod ids;
mod spans;
mod transport;

use std::sync::Arc;

pub use config::{OtlpConfig, TRACES_PATH};
/// The generated OTLP protobuf types (`opentelemetry-proto`), re-exported so callers and tests
/// decode what was sent with the same definitions.
pub use opentelemetry_proto::tonic as proto;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::model::{Job, Run};
use crate::source::RunSource;
use crate::time::Timing;

/// The semantic conventions version the spans follow.
pub const SCHEMA_URL: &str = "https://opentelemetry.io/schemas/1.44.0";

/// A run with the jobs (and their steps) of its latest attempt: one trace.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunWithJobs {
    /// The run.
    pub run: Run,
    /// Its jobs, with their steps (`GET /repos/{owner}/{repo}/actions/runs/{id}/jobs`).
    pub jobs: Vec<Job>,
}

impl RunWithJobs {
    /// `run` with `jobs`.
    pub fn new(run: Run, jobs: Vec<Job>) -> Self {
        Self { run, jobs }
    }
}

/// Fetches the jobs of each completed run from `source`. A run whose jobs cannot be read is
/// kept without them (its trace is the run span alone) and counted in the second value.
pub async fn with_jobs(source: &dyn RunSource, runs: &[Run]) -> (Vec<RunWithJobs>, usize) {
    let mut out = Vec::with_capacity(runs.len());
    let mut failed = 0;
    for run in runs.iter().filter(|r| r.is_completed()) {
        let jobs = match source.jobs(run.id).await {
            Ok(jobs) => jobs,
            Err(e) => {
                tracing::warn!(target: "flow.otlp", run = %run.id, error = %e, "jobs unreadable; exporting the run span alone");
                failed += 1;
                Vec::new()
            }
        };
        out.push(RunWithJobs::new(run.clone(), jobs));
    }
    (out, failed)
}

/// The OTLP request carrying the traces of `runs` (completed ones; others are left out), with
/// `service_name` as the resource's `service.name`.
pub fn request(service_name: &str, runs: &[RunWithJobs]) -> ExportTraceServiceRequest {
    let spans = runs
        .iter()
        .filter(|r| r.run.is_completed())
        .flat_map(spans::spans)
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![spans::resource_spans(service_name, spans)],
    }
}

/// What one [`TraceExporter::export`] did. Nothing is silently dropped: every run given is
/// counted as exported, failed or skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExportReport {
    /// Where the traces went (without credentials).
    pub endpoint: String,
    /// Runs delivered.
    pub exported: usize,
    /// Runs whose request was given up (see `errors`).
    pub failed: usize,
    /// Runs left out because they have not completed.
    pub skipped: usize,
    /// Spans delivered.
    pub spans: usize,
    /// Spans the collector accepted the request for but rejected (`partial_success`).
    pub rejected_spans: u64,
    /// HTTP requests made, retries included.
    pub requests: u32,
    /// Retries among them.
    pub retries: u32,
    /// Why requests failed or spans were rejected, one line each (at most 5; `failed` counts
    /// them all).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

impl ExportReport {
    /// True when every completed run was delivered and no span rejected.
    pub fn is_ok(&self) -> bool {
        self.failed == 0 && self.rejected_spans == 0
    }

    /// Adds `other`'s counts to this one.
    pub fn merge(&mut self, other: Self) {
        if self.endpoint.is_empty() {
            self.endpoint = other.endpoint;
        }
        self.exported += other.exported;
        self.failed += other.failed;
        self.skipped += other.skipped;
        self.spans += other.spans;
        self.rejected_spans += other.rejected_spans;
        self.requests += other.requests;
        self.retries += other.retries;
        for e in other.errors {
            self.push_error(e);
        }
    }

    fn push_error(&mut self, e: String) {
        if self.errors.len() < 5 {
            self.errors.push(e);
        }
    }
}

/// Sends the traces of completed runs somewhere; [`OtlpExporter`] is the OTLP one.
#[cfg_attr(test, mockall::automock)]
#[async_trait::async_trait]
pub trait TraceExporter: Send + Sync + std::fmt::Debug {
    /// Exports one trace per completed run of `runs`. Never fails: failures are counted in
    /// the report.
    async fn export(&self, runs: &[RunWithJobs]) -> ExportReport;
}

#[async_trait::async_trait]
impl<T: TraceExporter + ?Sized> TraceExporter for Arc<T> {
    async fn export(&self, runs: &[RunWithJobs]) -> ExportReport {
        (**self).export(runs).await
    }
}

/// Exports traces over OTLP/HTTP protobuf. Cheap to clone (the HTTP client is shared).
#[derive(Debug, Clone)]
pub struct OtlpExporter {
    config: Arc<OtlpConfig>,
    client: reqwest::Client,
    timing: Timing,
}

impl OtlpExporter {
    /// An exporter for `config`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`](crate::ErrorKind::InvalidArgument) naming `otlp header`
    /// when a header name or value cannot be sent, or `otlp endpoint` when the HTTP client
    /// cannot be built.
    pub fn new(config: OtlpConfig) -> Result<Self> {
        for (name, value) in &config.headers {
            use secrecy::ExposeSecret as _;
            if http::HeaderName::from_bytes(name.as_bytes()).is_err()
                || http::HeaderValue::from_str(value.expose_secret()).is_err()
            {
                return Err(Error::invalid(
                    "otlp header",
                    format!(
                        "`{name}`: expected a valid HTTP header name and a value of visible ASCII"
                    ),
                ));
            }
        }
        // Our one crypto provider (ring); a no-op when the application installed one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent(concat!("flow-telemetry/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                Error::invalid(
                    "otlp endpoint",
                    format!("cannot build the HTTP client: {e}"),
                )
            })?;
        Ok(Self {
            config: Arc::new(config),
            client,
            timing: Timing::default(),
        })
    }

    /// Uses `timing`: its clock is "now" for `Retry-After` dates, its sleeper every back-off
    /// wait (tests record them instead of waiting), its jitter the back-off's randomness.
    #[must_use]
    pub fn with_timing(mut self, timing: Timing) -> Self {
        self.timing = timing;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &OtlpConfig {
        &self.config
    }

    /// Batches of runs within the configured limits, in order.
    fn batches<'a>(
        &self,
        runs: &'a [(&'a RunWithJobs, usize)],
    ) -> Vec<&'a [(&'a RunWithJobs, usize)]> {
        let mut out = Vec::new();
        let mut start = 0;
        let mut spans = 0;
        for (i, (_, n)) in runs.iter().enumerate() {
            let full = i > start
                && (i - start >= self.config.max_runs_per_request
                    || spans + n > self.config.max_spans_per_request);
            if full {
                out.push(&runs[start..i]);
                start = i;
                spans = 0;
            }
            spans += n;
        }
        if start < runs.len() {
            out.push(&runs[start..]);
        }
        out
    }
}

#[async_trait::async_trait]
impl TraceExporter for OtlpExporter {
    async fn export(&self, runs: &[RunWithJobs]) -> ExportReport {
        let mut report = ExportReport {
            endpoint: self.config.describe(),
            ..ExportReport::default()
        };
        let sized: Vec<(&RunWithJobs, usize)> = runs
            .iter()
            .filter(|r| r.run.is_completed())
            .map(|r| {
                (
                    r,
                    1 + r.jobs.iter().map(|j| 1 + j.steps.len()).sum::<usize>(),
                )
            })
            .collect();
        report.skipped = runs.len() - sized.len();
        for batch in self.batches(&sized) {
            let spans: Vec<_> = batch.iter().flat_map(|(r, _)| spans::spans(r)).collect();
            let count = spans.len();
            let request = ExportTraceServiceRequest {
                resource_spans: vec![spans::resource_spans(&self.config.service_name, spans)],
            };
            match transport::send(&self.client, &self.config, &self.timing, &request).await {
                Ok(d) => {
                    report.requests += d.attempts;
                    report.retries += d.attempts - 1;
                    report.exported += batch.len();
                    report.spans += count;
                    if d.rejected_spans > 0 {
                        report.rejected_spans += d.rejected_spans;
                        let why = d.message.unwrap_or_default();
                        report.push_error(format!(
                            "the collector rejected {} span(s): {why}",
                            d.rejected_spans
                        ));
                    }
                }
                Err(f) => {
                    report.requests += f.attempts;
                    report.retries += f.attempts.saturating_sub(1);
                    report.failed += batch.len();
                    tracing::warn!(target: "flow.otlp", runs = batch.len(), reason = %f.reason, "otlp export failed");
                    report.push_error(f.reason);
                }
            }
        }
        report
    }
}
