//! OTLP export against a local collector stand-in that decodes what it receives with the
//! OpenTelemetry proto definitions (`opentelemetry-proto`'s generated types): span names,
//! parent links, the shared trace id, `cicd.*` attributes, status, times, retries, failures.

use std::sync::Arc;
use std::time::Duration;

use flow_telemetry::model::{Conclusion, Job, Run, RunStatus};
use flow_telemetry::otlp::proto::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use flow_telemetry::otlp::proto::common::v1::any_value::Value;
use flow_telemetry::otlp::proto::trace::v1::Span;
use flow_telemetry::otlp::proto::trace::v1::span::SpanKind;
use flow_telemetry::otlp::proto::trace::v1::status::StatusCode;
use flow_telemetry::otlp::{OtlpConfig, OtlpExporter, RunWithJobs, TraceExporter, ids};
use flow_telemetry::time::{FixedJitter, RecordingSleeper, Timing};
use flow_telemetry::{ManualClock, RunId};
use prost::Message as _;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::fixture;

const T0: i64 = 1_579_721_588_000; // 2020-01-22T19:33:08Z, the fixture run's start

/// The REST fixtures (a run, its job with steps), completed: the run failed in "Run Tests",
/// and a second job (a copy, renamed `deploy`) was skipped.
fn failed_run() -> RunWithJobs {
    let page: serde_json::Value =
        serde_json::from_str(&fixture("workflow-run-paginated.json")).unwrap();
    let mut run: Run = serde_json::from_value(page["workflow_runs"][0].clone()).unwrap();
    run.status = RunStatus::Completed;
    run.conclusion = Some(Conclusion::Failure);
    run.updated_at = Some(T0 + 7 * 60_000);
    let jobs: serde_json::Value = serde_json::from_str(&fixture("job-paginated.json")).unwrap();
    let mut build: Job = serde_json::from_value(jobs["jobs"][0].clone()).unwrap();
    build.run_id = run.id;
    build.conclusion = Some(Conclusion::Failure);
    let tests = build
        .steps
        .iter_mut()
        .find(|s| s.name == "Run Tests")
        .unwrap();
    tests.conclusion = Some(Conclusion::Failure);
    let mut deploy = build.clone();
    deploy.id += 1;
    deploy.name = "deploy".into();
    deploy.conclusion = Some(Conclusion::Skipped);
    deploy.steps.clear();
    RunWithJobs::new(run, vec![build, deploy])
}

fn attr<'a>(span: &'a Span, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

fn text<'a>(span: &'a Span, key: &str) -> &'a str {
    match attr(span, key) {
        Some(Value::StringValue(s)) => s,
        other => panic!("{key} on {}: {other:?}", span.name),
    }
}

async fn collector(status: u16) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/traces"))
        .and(header("content-type", "application/x-protobuf"))
        .respond_with(ResponseTemplate::new(status))
        .mount(&server)
        .await;
    server
}

fn exporter(endpoint: &str, sleeper: &RecordingSleeper) -> OtlpExporter {
    OtlpExporter::new(OtlpConfig::new(endpoint).unwrap())
        .unwrap()
        .with_timing(Timing::manual(ManualClock::new(T0), sleeper.clone()))
}

/// Every request the collector received, decoded.
async fn received(server: &MockServer) -> Vec<ExportTraceServiceRequest> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| ExportTraceServiceRequest::decode(r.body.as_slice()).unwrap())
        .collect()
}

fn spans_of(req: &ExportTraceServiceRequest) -> Vec<Span> {
    req.resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| s.spans.clone())
        .collect()
}

#[tokio::test]
async fn a_failed_run_is_one_trace_of_linked_spans_after_the_cicd_conventions() {
    let server = collector(200).await;
    let sleeper = RecordingSleeper::default();
    let item = failed_run();
    let report = exporter(&server.uri(), &sleeper)
        .export(std::slice::from_ref(&item))
        .await;
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(
        (report.exported, report.requests, report.retries),
        (1, 1, 0)
    );

    let requests = received(&server).await;
    assert_eq!(requests.len(), 1);
    let resource = requests[0].resource_spans[0].resource.as_ref().unwrap();
    let service: Vec<_> = resource
        .attributes
        .iter()
        .map(|kv| kv.key.as_str())
        .collect();
    assert_eq!(service, ["service.name", "service.version"]);
    let scope = requests[0].resource_spans[0].scope_spans[0]
        .scope
        .as_ref()
        .unwrap();
    assert_eq!(
        (scope.name.as_str(), scope.version.as_str()),
        ("flow-telemetry", env!("CARGO_PKG_VERSION"))
    );

    let spans = spans_of(&requests[0]);
    // 1 run + 2 jobs + the build job's 10 steps (the skipped job has none).
    assert_eq!(spans.len(), 13);
    let run = &spans[0];
    assert_eq!(run.name, "RUN Build");
    assert_eq!(run.kind, SpanKind::Server as i32);
    assert!(run.parent_span_id.is_empty());
    assert_eq!(run.trace_id, ids::trace_id(RunId(30433642), 1).to_vec());
    assert_eq!(run.span_id, ids::run_span_id(RunId(30433642), 1).to_vec());
    assert!(
        spans.iter().all(|s| s.trace_id == run.trace_id),
        "one trace"
    );
    assert_eq!(text(run, "cicd.pipeline.name"), "Build");
    assert_eq!(text(run, "cicd.pipeline.run.id"), "30433642");
    assert_eq!(text(run, "cicd.pipeline.result"), "failure");
    assert_eq!(text(run, "cicd.pipeline.action.name"), "RUN");
    assert_eq!(text(run, "error.type"), "failure");
    assert_eq!(
        text(run, "cicd.pipeline.run.url.full"),
        "https://github.com/octo-org/octo-repo/actions/runs/30433642"
    );
    assert_eq!(text(run, "vcs.ref.head.name"), "master");
    assert_eq!(
        text(run, "vcs.ref.head.revision"),
        "acb5820ced9479c074f688cc328bf03f341a511d"
    );
    assert_eq!(
        text(run, "vcs.repository.url.full"),
        "https://github.com/octo-org/octo-repo"
    );
    assert_eq!(attr(run, "github.run.attempt"), Some(&Value::IntValue(1)));
    let status = run.status.as_ref().unwrap();
    assert_eq!(
        (status.code, status.message.as_str()),
        (StatusCode::Error as i32, "failure")
    );
    assert_eq!(run.start_time_unix_nano, T0 as u64 * 1_000_000);
    assert_eq!(run.end_time_unix_nano, (T0 + 7 * 60_000) as u64 * 1_000_000);

    let build = spans.iter().find(|s| s.name == "build").unwrap();
    assert_eq!(build.parent_span_id, run.span_id, "job → run");
    assert_eq!(build.kind, SpanKind::Internal as i32);
    assert_eq!(
        build.span_id,
        ids::job_span_id(RunId(30433642), 1, 399444496).to_vec()
    );
    assert_eq!(text(build, "cicd.pipeline.task.name"), "build");
    assert_eq!(text(build, "cicd.pipeline.task.run.id"), "399444496");
    assert_eq!(text(build, "cicd.pipeline.task.run.result"), "failure");
    assert_eq!(text(build, "cicd.pipeline.task.type"), "build");
    assert_eq!(
        text(build, "cicd.pipeline.task.run.url.full"),
        "https://github.com/octo-org/octo-repo/runs/29679449/jobs/399444496"
    );
    assert_eq!(text(build, "cicd.worker.name"), "my runner");
    assert_eq!(
        text(build, "cicd.pipeline.run.id"),
        "30433642",
        "found on its own"
    );
    // 2020-01-20T17:42:40Z .. 17:44:39Z, the job's own times.
    assert_eq!(build.start_time_unix_nano, 1_579_542_160_000 * 1_000_000);
    assert_eq!(build.end_time_unix_nano, 1_579_542_279_000 * 1_000_000);
    assert_eq!(
        build.status.as_ref().unwrap().code,
        StatusCode::Error as i32
    );

    let deploy = spans.iter().find(|s| s.name == "deploy").unwrap();
    assert_eq!(deploy.parent_span_id, run.span_id);
    assert_eq!(text(deploy, "cicd.pipeline.task.run.result"), "skip");
    assert_eq!(text(deploy, "cicd.pipeline.task.type"), "deploy");
    assert!(deploy.status.is_none(), "a skip is no error");

    let steps: Vec<&Span> = spans
        .iter()
        .filter(|s| s.parent_span_id == build.span_id)
        .collect();
    assert_eq!(steps.len(), 10, "step → job");
    let tests = steps.iter().find(|s| s.name == "Run Tests").unwrap();
    assert_eq!(
        tests.span_id,
        ids::step_span_id(RunId(30433642), 1, 399444496, 7).to_vec()
    );
    assert_eq!(text(tests, "cicd.pipeline.task.run.id"), "399444496/7");
    assert_eq!(text(tests, "cicd.pipeline.task.run.result"), "failure");
    assert_eq!(
        text(tests, "cicd.pipeline.task.run.url.full"),
        "https://github.com/octo-org/octo-repo/runs/29679449/jobs/399444496#step:7:1"
    );
    assert_eq!(
        tests.status.as_ref().unwrap().code,
        StatusCode::Error as i32
    );
    // 09:42:53-08:00 .. 09:42:59-08:00 (the step's times, with their offset).
    assert_eq!(tests.start_time_unix_nano, 1_579_542_173_000 * 1_000_000);
    assert_eq!(tests.end_time_unix_nano, 1_579_542_179_000 * 1_000_000);
    let setup = steps.iter().find(|s| s.name == "Set up job").unwrap();
    assert_eq!(text(setup, "cicd.pipeline.task.run.result"), "success");
    assert!(setup.status.is_none(), "successes leave the status unset");
    let mut ids: Vec<&Vec<u8>> = spans.iter().map(|s| &s.span_id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), spans.len(), "span ids are distinct");
}

#[tokio::test]
async fn a_503_is_retried_after_retry_after_and_delivered_once() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/traces"))
        .respond_with(ResponseTemplate::new(503).insert_header("retry-after", "2"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/traces"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let sleeper = RecordingSleeper::default();
    let report = exporter(&server.uri(), &sleeper)
        .export(&[failed_run()])
        .await;
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(
        (
            report.exported,
            report.requests,
            report.retries,
            report.failed
        ),
        (1, 2, 1, 0)
    );
    assert_eq!(
        sleeper.slept(),
        [Duration::from_secs(2)],
        "Retry-After honoured"
    );
    let requests = received(&server).await;
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0], requests[1],
        "the retry sends the same spans, same ids"
    );
}

#[tokio::test]
async fn a_collector_that_is_down_is_counted_and_reported_never_raised() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sleeper = RecordingSleeper::default();
    let config = OtlpConfig::new(&format!("http://127.0.0.1:{port}"))
        .unwrap()
        .with_max_retries(2)
        .with_header("x-api-key", "sup3rs3cret".into());
    let exporter = OtlpExporter::new(config).unwrap().with_timing(
        Timing::default()
            .with_sleeper(Arc::new(sleeper.clone()))
            .with_jitter(Arc::new(FixedJitter::new(1.0))),
    );
    let report = exporter.export(&[failed_run(), failed_run()]).await;
    assert!(!report.is_ok());
    assert_eq!(
        (
            report.exported,
            report.failed,
            report.requests,
            report.retries
        ),
        (0, 2, 3, 2)
    );
    assert_eq!(
        sleeper.slept(),
        [Duration::from_millis(500), Duration::from_secs(1)],
        "back-off"
    );
    assert_eq!(report.errors.len(), 1);
    assert!(
        report.errors[0].contains(&format!("127.0.0.1:{port}/v1/traces")),
        "{:?}",
        report.errors
    );
    assert!(
        report.errors[0].contains("gave up after 3 attempts"),
        "{:?}",
        report.errors
    );
    let shown = format!(
        "{report:?} {exporter:?} {}",
        serde_json::to_string(&report).unwrap()
    );
    assert!(!shown.contains("sup3rs3cret"), "{shown}");
}

#[tokio::test]
async fn a_client_error_is_not_retried_and_headers_are_sent() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/traces"))
        .and(header("authorization", "Bearer t0ken"))
        .respond_with(ResponseTemplate::new(400).set_body_string("bad span"))
        .expect(1)
        .mount(&server)
        .await;
    let config = OtlpConfig::new(&server.uri())
        .unwrap()
        .with_headers_text("authorization=Bearer%20t0ken")
        .unwrap();
    let sleeper = RecordingSleeper::default();
    let exporter = OtlpExporter::new(config)
        .unwrap()
        .with_timing(Timing::default().with_sleeper(Arc::new(sleeper.clone())));
    let report = exporter.export(&[failed_run()]).await;
    assert_eq!((report.failed, report.requests), (1, 1));
    assert!(
        report.errors[0].ends_with("answered 400: bad span"),
        "{:?}",
        report.errors
    );
    assert!(sleeper.slept().is_empty());
    assert!(!format!("{exporter:?}").contains("t0ken"));
}

#[tokio::test]
async fn batches_are_bounded_and_unfinished_runs_skipped() {
    let server = collector(200).await;
    let mut runs: Vec<RunWithJobs> = (0..5u64)
        .map(|i| {
            let mut r = failed_run();
            r.run.id = RunId(100 + i);
            r
        })
        .collect();
    runs[4].run.status = RunStatus::InProgress;
    runs[4].run.conclusion = None;
    let config = OtlpConfig::new(&server.uri())
        .unwrap()
        .with_batch_limits(3, 10_000);
    let report = OtlpExporter::new(config).unwrap().export(&runs).await;
    assert_eq!(
        (
            report.exported,
            report.skipped,
            report.requests,
            report.spans
        ),
        (4, 1, 2, 4 * 13)
    );
    let requests = received(&server).await;
    let per_request: Vec<usize> = requests.iter().map(|r| spans_of(r).len()).collect();
    assert_eq!(per_request, [3 * 13, 13]);
    // Span budget: 13 spans per run, 20 per request → one run each.
    let server = collector(200).await;
    let config = OtlpConfig::new(&server.uri())
        .unwrap()
        .with_batch_limits(50, 20);
    let report = OtlpExporter::new(config).unwrap().export(&runs[..3]).await;
    assert_eq!((report.exported, report.requests), (3, 3));
}

#[tokio::test]
async fn rejected_spans_of_a_partial_success_are_reported() {
    let server = MockServer::start().await;
    let body = ExportTraceServiceResponse {
        partial_success: Some(ExportTracePartialSuccess {
            rejected_spans: 2,
            error_message: "span too old".into(),
        }),
    }
    .encode_to_vec();
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(body))
        .mount(&server)
        .await;
    let report = OtlpExporter::new(OtlpConfig::new(&server.uri()).unwrap())
        .unwrap()
        .export(&[failed_run()])
        .await;
    assert_eq!((report.exported, report.rejected_spans), (1, 2));
    assert!(!report.is_ok());
    assert!(
        report.errors[0].contains("span too old"),
        "{:?}",
        report.errors
    );
}
