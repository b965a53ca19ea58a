//! One completed run as one trace of OTLP spans: the run span (root, kind `SERVER`), one span
//! per job (its child, `INTERNAL`), one span per step (the job's child, `INTERNAL`), named and
//! attributed after the CICD semantic conventions (see the [module](super) docs).

use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

use super::ids;
use super::{RunWithJobs, SCHEMA_URL};
use crate::model::{Conclusion, Job, Run, Step};

/// The instrumentation scope: this crate.
pub(crate) const SCOPE: &str = "flow-telemetry";

/// `cicd.pipeline.action.name` of every run span: GitHub Actions runs are executions.
pub(crate) const ACTION: &str = "RUN";

fn kv(key: &str, value: impl Into<String>) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..KeyValue::default()
    }
}

fn kv_int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        ..KeyValue::default()
    }
}

/// Unix ms to unix ns; times before 1970 (never GitHub's) read as 0.
fn nanos(ms: i64) -> u64 {
    u64::try_from(ms).unwrap_or(0).saturating_mul(1_000_000)
}

/// The `cicd.pipeline.result` / `cicd.pipeline.task.run.result` of a conclusion, and the
/// `error.type` when it is a failure or an error.
///
/// `failure` with `runner_error` (the job failed without a failed step: the runner was lost)
/// and `startup_failure` are the CICD system's errors (`error`); `neutral`, `action_required`
/// and `stale` have no well-known value and keep GitHub's spelling.
pub(crate) fn result(
    conclusion: Option<Conclusion>,
    runner_error: bool,
) -> (&'static str, Option<&'static str>) {
    match conclusion {
        Some(Conclusion::Success) => ("success", None),
        Some(Conclusion::Failure) if runner_error => ("error", Some("runner_error")),
        Some(Conclusion::Failure) => ("failure", Some("failure")),
        Some(Conclusion::StartupFailure) => ("error", Some("startup_failure")),
        Some(Conclusion::TimedOut) => ("timeout", Some("timeout")),
        Some(Conclusion::Cancelled) => ("cancellation", None),
        Some(Conclusion::Skipped) => ("skip", None),
        Some(c) => (c.as_str(), None),
        None => ("other", None),
    }
}

/// `ERROR` with the result as its message for failures and errors, else `UNSET` (the
/// Recording Errors convention: instrumentations leave successes unset).
fn status(result: &str, error_type: Option<&str>) -> Option<Status> {
    error_type.map(|_| Status {
        message: result.to_owned(),
        code: StatusCode::Error as i32,
    })
}

/// The repository's web URL, from a run's `html_url`
/// (`https://github.com/o/r/actions/runs/1` → `https://github.com/o/r`).
fn repository_url(run: &Run) -> Option<&str> {
    run.html_url
        .find("/actions/runs/")
        .map(|i| &run.html_url[..i])
        .filter(|u| !u.is_empty())
}

/// `cicd.pipeline.task.type` when the job's name says it (`build`, `test`, `deploy`), else none:
/// GitHub does not type its jobs, and a wrong type is worse than none.
fn task_type(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    let has = |w: &str| {
        lower
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|t| t == w || (t.starts_with(w) && t.len() <= w.len() + 3))
    };
    if has("test") || has("check") {
        Some("test")
    } else if has("deploy") || has("release") {
        Some("deploy")
    } else if has("build") || has("compile") {
        Some("build")
    } else {
        None
    }
}

/// The attributes every span of the trace carries, so each can be found on its own.
fn common(run: &Run) -> Vec<KeyValue> {
    let mut a = vec![
        kv("cicd.pipeline.name", run.workflow_key()),
        kv("cicd.pipeline.run.id", run.id.to_string()),
    ];
    if !run.html_url.is_empty() {
        a.push(kv("cicd.pipeline.run.url.full", run.html_url.clone()));
    }
    a
}

/// The spans of one run: the run span first, then each job followed by its steps.
pub(crate) fn spans(item: &RunWithJobs) -> Vec<Span> {
    let run = &item.run;
    let attempt = run.run_attempt.max(1);
    let trace_id = ids::trace_id(run.id, attempt).to_vec();
    let run_span_id = ids::run_span_id(run.id, attempt);
    let start = run.run_started_at.or(run.created_at).unwrap_or(0);
    let end = run.updated_at.unwrap_or(start).max(start);
    let runner_error = run.runner_error || item.jobs.iter().any(Job::is_runner_error);
    let (res, error_type) = result(run.conclusion, runner_error);
    let name = run.workflow_key();

    let mut attributes = common(run);
    attributes.extend([
        kv("cicd.pipeline.action.name", ACTION),
        kv("cicd.pipeline.result", res),
        kv("vcs.provider.name", "github"),
        kv_int("github.run.attempt", i64::from(attempt)),
        kv_int(
            "github.run.number",
            i64::try_from(run.run_number).unwrap_or(i64::MAX),
        ),
    ]);
    if let Some(e) = error_type {
        attributes.push(kv("error.type", e));
    }
    if !run.head_branch.is_empty() {
        attributes.push(kv("vcs.ref.head.name", run.head_branch.clone()));
        attributes.push(kv("vcs.ref.head.type", "branch"));
    }
    if !run.head_sha.is_empty() {
        attributes.push(kv("vcs.ref.head.revision", run.head_sha.clone()));
    }
    if let Some(url) = repository_url(run) {
        attributes.push(kv("vcs.repository.url.full", url));
    }
    if !run.event.is_empty() {
        attributes.push(kv("github.event.name", run.event.clone()));
    }
    if !run.path.is_empty() {
        attributes.push(kv("github.workflow.path", run.path.clone()));
    }
    let mut out =
        Vec::with_capacity(1 + item.jobs.iter().map(|j| 1 + j.steps.len()).sum::<usize>());
    out.push(Span {
        trace_id: trace_id.clone(),
        span_id: run_span_id.to_vec(),
        name: format!("{ACTION} {name}"),
        kind: SpanKind::Server as i32,
        start_time_unix_nano: nanos(start),
        end_time_unix_nano: nanos(end),
        attributes,
        status: status(res, error_type),
        ..Span::default()
    });

    for job in &item.jobs {
        let job_span_id = ids::job_span_id(run.id, attempt, job.id);
        let job_start = job.started_at.or(job.created_at).unwrap_or(start);
        let job_end = job.completed_at.unwrap_or(job_start).max(job_start);
        let (res, error_type) = result(job.conclusion, job.is_runner_error());
        let mut attributes = common(run);
        attributes.extend([
            kv("cicd.pipeline.task.name", job.name.clone()),
            kv("cicd.pipeline.task.run.id", job.id.to_string()),
            kv("cicd.pipeline.task.run.result", res),
        ]);
        if !job.html_url.is_empty() {
            attributes.push(kv("cicd.pipeline.task.run.url.full", job.html_url.clone()));
        }
        if let Some(t) = task_type(&job.name) {
            attributes.push(kv("cicd.pipeline.task.type", t));
        }
        if let Some(e) = error_type {
            attributes.push(kv("error.type", e));
        }
        if let Some(runner) = job.runner_name.as_deref().filter(|r| !r.is_empty()) {
            attributes.push(kv("cicd.worker.name", runner));
        }
        if let Some(q) = job.queue_ms() {
            attributes.push(kv_int("github.job.queue_ms", q));
        }
        out.push(Span {
            trace_id: trace_id.clone(),
            span_id: job_span_id.to_vec(),
            parent_span_id: run_span_id.to_vec(),
            name: job.name.clone(),
            kind: SpanKind::Internal as i32,
            start_time_unix_nano: nanos(job_start),
            end_time_unix_nano: nanos(job_end),
            attributes,
            status: status(res, error_type),
            ..Span::default()
        });
        for step in &job.steps {
            if let Some(span) = step_span(run, job, step, &trace_id, job_span_id) {
                out.push(span);
            }
        }
    }
    out
}

/// A step as a task run inside its job's: steps that never started (no `started_at`) have no
/// span.
fn step_span(run: &Run, job: &Job, step: &Step, trace_id: &[u8], parent: [u8; 8]) -> Option<Span> {
    let start = step.started_at?;
    let end = step.completed_at.unwrap_or(start).max(start);
    let (res, error_type) = result(step.conclusion, false);
    let mut attributes = common(run);
    attributes.extend([
        kv("cicd.pipeline.task.name", step.name.clone()),
        kv(
            "cicd.pipeline.task.run.id",
            format!("{}/{}", job.id, step.number),
        ),
        kv("cicd.pipeline.task.run.result", res),
        kv_int("github.step.number", i64::from(step.number)),
    ]);
    if !job.html_url.is_empty() {
        attributes.push(kv(
            "cicd.pipeline.task.run.url.full",
            format!("{}#step:{}:1", job.html_url, step.number),
        ));
    }
    if let Some(e) = error_type {
        attributes.push(kv("error.type", e));
    }
    Some(Span {
        trace_id: trace_id.to_vec(),
        span_id: ids::step_span_id(run.id, run.run_attempt.max(1), job.id, step.number).to_vec(),
        parent_span_id: parent.to_vec(),
        name: step.name.clone(),
        kind: SpanKind::Internal as i32,
        start_time_unix_nano: nanos(start),
        end_time_unix_nano: nanos(end),
        attributes,
        status: status(res, error_type),
        ..Span::default()
    })
}

/// The one `ResourceSpans` of a request: our resource and scope around `spans`.
pub(crate) fn resource_spans(service_name: &str, spans: Vec<Span>) -> ResourceSpans {
    let version = env!("CARGO_PKG_VERSION");
    ResourceSpans {
        resource: Some(Resource {
            attributes: vec![
                kv("service.name", service_name),
                kv("service.version", version),
            ],
            ..Resource::default()
        }),
        scope_spans: vec![ScopeSpans {
            scope: Some(InstrumentationScope {
                name: SCOPE.to_owned(),
                version: version.to_owned(),
                ..InstrumentationScope::default()
            }),
            spans,
            schema_url: SCHEMA_URL.to_owned(),
        }],
        schema_url: SCHEMA_URL.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_types_only_from_clear_names() {
        assert_eq!(task_type("unit-tests"), Some("test"));
        assert_eq!(task_type("Test (ubuntu, 1.92)"), Some("test"));
        assert_eq!(task_type("build"), Some("build"));
        assert_eq!(task_type("Deploy to prod"), Some("deploy"));
        assert_eq!(task_type("lint"), None);
        assert_eq!(
            task_type("attestation"),
            None,
            "`test` inside a word is no test"
        );
    }

    #[test]
    fn results_follow_the_conventions_values() {
        assert_eq!(result(Some(Conclusion::Success), false), ("success", None));
        assert_eq!(
            result(Some(Conclusion::Failure), false),
            ("failure", Some("failure"))
        );
        assert_eq!(
            result(Some(Conclusion::Failure), true),
            ("error", Some("runner_error"))
        );
        assert_eq!(
            result(Some(Conclusion::TimedOut), false),
            ("timeout", Some("timeout"))
        );
        assert_eq!(
            result(Some(Conclusion::Cancelled), false),
            ("cancellation", None)
        );
        assert_eq!(result(Some(Conclusion::Skipped), false), ("skip", None));
        assert_eq!(result(Some(Conclusion::Neutral), false), ("neutral", None));
    }
}
