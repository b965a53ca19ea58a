//! `flow monitor --otlp-endpoint`: sequences of real invocations of the binary, the state
//! carried in a file, against a GitHub-shaped server and a local collector that decodes the
//! OTLP protobuf it receives with the OpenTelemetry proto definitions.

use std::collections::BTreeMap;
use std::process::Output;

use flow_telemetry::otlp::proto::collector::trace::v1::ExportTraceServiceRequest;
use flow_telemetry::otlp::proto::common::v1::any_value::Value;
use prost::Message as _;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::monitor_support::{flow, output, success_json};

/// The runs GitHub lists (newest first), shared with the responder so a test can add some.
#[derive(Clone, Default)]
struct Runs(std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>);

impl Respond for Runs {
    fn respond(&self, _req: &Request) -> ResponseTemplate {
        let runs = self.0.lock().unwrap().clone();
        ResponseTemplate::new(200)
            .set_body_json(serde_json::json!({"total_count": runs.len(), "workflow_runs": runs}))
    }
}

/// The REST fixture's job (with its ten steps) for whichever run is asked.
struct Jobs;

impl Respond for Jobs {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let run: u64 = req.url.path().split('/').nth(6).unwrap().parse().unwrap();
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../crates/flow-telemetry/tests/fixtures/job-paginated.json"
        ))
        .unwrap();
        let mut page: serde_json::Value = serde_json::from_str(&text).unwrap();
        page["jobs"][0]["run_id"] = run.into();
        page["jobs"][0]["id"] = (run * 10).into();
        ResponseTemplate::new(200).set_body_json(page)
    }
}

/// A completed run in GitHub's REST shape.
fn run(id: u64, conclusion: &str) -> serde_json::Value {
    let t = |min: u64| format!("2026-12-01T{:02}:{:02}:00Z", 8 + min / 60, min % 60);
    serde_json::json!({
        "id": id, "name": "CI", "workflow_id": 11, "path": ".github/workflows/ci.yml",
        "head_branch": "main", "head_sha": format!("{id:040x}"), "event": "push",
        "status": "completed", "conclusion": conclusion, "run_attempt": 1, "run_number": id,
        "created_at": t(id), "run_started_at": t(id), "updated_at": t(id + 1),
        "html_url": format!("https://github.com/octo/app/actions/runs/{id}"),
    })
}

struct Peers {
    github: MockServer,
    collector: MockServer,
    runs: Runs,
}

impl Peers {
    async fn start(collector_status: u16) -> Self {
        let github = MockServer::start().await;
        let runs = Runs::default();
        Mock::given(method("GET"))
            .and(path("/repos/octo/app/actions/runs"))
            .respond_with(runs.clone())
            .mount(&github)
            .await;
        Mock::given(method("GET"))
            .and(path_regex("^/repos/octo/app/actions/runs/[0-9]+/jobs$"))
            .respond_with(Jobs)
            .mount(&github)
            .await;
        let collector = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/traces"))
            .respond_with(ResponseTemplate::new(collector_status))
            .mount(&collector)
            .await;
        Self {
            github,
            collector,
            runs,
        }
    }

    fn add(&self, ids: impl IntoIterator<Item = u64>) {
        let mut runs = self.runs.0.lock().unwrap();
        for id in ids {
            runs.insert(0, run(id, if id % 4 == 0 { "failure" } else { "success" }));
        }
    }

    /// One invocation, as a scheduled workflow would make it.
    async fn monitor(&self, state: &std::path::Path, otlp: &str) -> Output {
        let mut c = flow();
        c.args(["monitor", "--json", "--repo", "octo/app", "--branch", "*"])
            .args(["--api-url", &self.github.uri()])
            .arg("--state")
            .arg(state)
            .args(["--otlp-endpoint", otlp])
            .args(["--otlp-header", "x-api-key=k3y-s3cret"])
            .env("GITHUB_TOKEN", "ghs_monitor_token");
        output(c).await
    }

    /// Run id → how many times its run span reached the collector.
    async fn exported(&self) -> BTreeMap<String, usize> {
        let mut seen = BTreeMap::new();
        for r in self.collector.received_requests().await.unwrap() {
            assert_eq!(
                r.headers.get("x-api-key").unwrap().to_str().unwrap(),
                "k3y-s3cret"
            );
            let req = ExportTraceServiceRequest::decode(r.body.as_slice()).unwrap();
            for span in req
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .flat_map(|s| &s.spans)
                .filter(|s| s.parent_span_id.is_empty())
            {
                assert_eq!(span.name, "RUN CI");
                let id = span
                    .attributes
                    .iter()
                    .find(|kv| kv.key == "cicd.pipeline.run.id")
                    .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                        Value::StringValue(s) => Some(s.clone()),
                        _ => None,
                    })
                    .unwrap();
                *seen.entry(id).or_insert(0) += 1;
            }
        }
        seen
    }
}

/// Three invocations with the state carried: each completed run is exported exactly once, in
/// the invocation that first observed it, with its job and steps; a quiet invocation sends
/// nothing.
#[tokio::test(flavor = "multi_thread")]
async fn each_completed_run_is_exported_once_across_invocations() {
    let peers = Peers::start(200).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    peers.add(1..=6);
    let out = peers.monitor(&state, &peers.collector.uri()).await;
    assert!(!String::from_utf8_lossy(&out.stderr).contains("k3y-s3cret"));
    let v = success_json(&out);
    assert_eq!(v["runs"], 6);
    assert_eq!(v["otlp"]["exported"], 6, "{v}");
    // Run + job + 10 steps each.
    assert_eq!(v["otlp"]["spans"], 6 * 12, "{v}");
    assert_eq!(v["otlp"]["failed"], 0);
    let first = peers.exported().await;
    assert_eq!(first.len(), 6);

    peers.add(7..=8);
    let v = success_json(&peers.monitor(&state, &peers.collector.uri()).await);
    assert_eq!(
        (v["runs"].as_u64(), v["otlp"]["exported"].as_u64()),
        (Some(2), Some(2)),
        "{v}"
    );
    let requests = peers.collector.received_requests().await.unwrap().len();

    let v = success_json(&peers.monitor(&state, &peers.collector.uri()).await);
    assert_eq!(
        (v["runs"].as_u64(), v["otlp"]["exported"].as_u64()),
        (Some(0), Some(0)),
        "{v}"
    );
    assert_eq!(
        peers.collector.received_requests().await.unwrap().len(),
        requests,
        "nothing new, nothing sent"
    );
    let all = peers.exported().await;
    assert_eq!(all.len(), 8);
    assert!(all.values().all(|n| *n == 1), "{all:?}");
}

/// A collector that is down (or failing) fails the export, not the monitoring: the invocation
/// succeeds, says what failed, and the state still advances.
#[tokio::test(flavor = "multi_thread")]
async fn a_collector_that_is_down_does_not_fail_the_monitoring() {
    let peers = Peers::start(200).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    peers.add(1..=3);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = format!("http://127.0.0.1:{port}");
    let out = peers.monitor(&state, &down).await;
    let v = success_json(&out);
    assert_eq!(v["runs"], 3);
    assert_eq!(
        (v["otlp"]["exported"].as_u64(), v["otlp"]["failed"].as_u64()),
        (Some(0), Some(3)),
        "{v}"
    );
    let errors = v["otlp"]["errors"].to_string();
    assert!(
        errors.contains(&format!("127.0.0.1:{port}/v1/traces")),
        "{errors}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("k3y-s3cret"));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("k3y-s3cret"));
    // The next invocation reads nothing new: the state advanced although the export failed.
    let v = success_json(&peers.monitor(&state, &peers.collector.uri()).await);
    assert_eq!(v["runs"], 0);

    // In text mode the failure is a line and a warning, and the exit status is still 0 (a
    // collector refusing with 400: not retried).
    let refusing = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_string("no"))
        .expect(1)
        .mount(&refusing)
        .await;
    let down = refusing.uri();
    peers.add([4]);
    let mut c = flow();
    c.args(["monitor", "--repo", "octo/app", "--branch", "*"])
        .args(["--api-url", &peers.github.uri()])
        .arg("--state")
        .arg(&state)
        .args(["--otlp-endpoint", &down])
        .env("GITHUB_TOKEN", "ghs_monitor_token");
    let out = output(c).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("0 run(s) exported as traces"), "{stdout}");
    assert!(stdout.contains("1 run(s) FAILED"), "{stdout}");
}

/// A bad endpoint is a settings error naming the flag, before anything is read.
#[test]
fn a_bad_endpoint_names_the_flag() {
    let out = flow()
        .args(["monitor", "--otlp-endpoint", "localhost:4318"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("--otlp-endpoint"), "{stderr}");
    assert!(stderr.contains("expected an http(s) URL"), "{stderr}");
}

/// `flow serve --otlp-endpoint --otlp-header`: the service exports the runs it observes newly
/// completed — here those the reconciliation finds at start, then one from a signed
/// `workflow_run` delivery — each once, with the header, which never reaches its output.
#[tokio::test(flavor = "multi_thread")]
async fn serve_exports_each_completed_run_once_with_its_headers() {
    use std::time::Duration;

    use crate::serve_support::{Process, SECRET, free_port, http, sign};

    let peers = Peers::start(200).await;
    peers.add(1..=3);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut c = flow();
    c.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args([
            "--repos",
            "octo/app",
            "--branch",
            "*",
            "--reconcile-secs",
            "3600",
        ])
        .args(["--api-url", &peers.github.uri()])
        .arg("--state")
        .arg(dir.path().join("state"))
        .args(["--otlp-endpoint", &peers.collector.uri()])
        .args(["--otlp-header", "x-api-key=k3y-s3cret"])
        .env("GITHUB_TOKEN", "ghs_serve_token")
        .env("FLOW_WEBHOOK_SECRET", SECRET)
        .env("RUST_LOG", "flow=info");
    let mut serve = Process::spawn("flow serve", c, dir.path().join("serve.log"));
    // The reconciliation's first poll, at start.
    let seen = exported_at_least(&peers, 3, &serve).await;
    assert_eq!(seen.keys().collect::<Vec<_>>(), ["1", "2", "3"]);

    // Run 4 completes and GitHub delivers it.
    peers.add([4]);
    let mut envelope: serde_json::Value =
        serde_json::from_str(&crate::telemetry_fixture("workflow_run.completed.1.json")).unwrap();
    envelope["workflow_run"] = run(4, "success");
    envelope["repository"]["full_name"] = "octo/app".into();
    let body = serde_json::to_vec(&envelope).unwrap();
    let answer = http(
        port,
        "POST",
        "/webhook",
        &[
            ("Content-Type", "application/json".into()),
            ("X-GitHub-Event", "workflow_run".into()),
            ("X-GitHub-Delivery", "otlp-4".into()),
            ("X-Hub-Signature-256", sign(&body)),
        ],
        &body,
    )
    .unwrap();
    assert_eq!(answer.status, 202);
    let seen = exported_at_least(&peers, 4, &serve).await;
    assert!(seen.values().all(|n| *n == 1), "{seen:?}");
    assert_eq!(serve.terminate(Duration::from_secs(60)), Some(0));
    let log = serve.output();
    assert!(!log.contains("k3y-s3cret"), "{log}");
}

/// Polls the collector until `n` runs reached it (a deadline, not a sleep).
async fn exported_at_least(
    peers: &Peers,
    n: usize,
    serve: &crate::serve_support::Process,
) -> BTreeMap<String, usize> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let seen = peers.exported().await;
        if seen.len() >= n {
            return seen;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{seen:?}\n{}",
            serve.output()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The OTLP settings of `flow serve` come through the settings layer, the header redacted.
#[test]
fn flow_config_for_serve_shows_the_otlp_settings_with_the_header_redacted() {
    let out = flow()
        .args(["config", "--for", "serve"])
        .args(["--otlp-endpoint", "http://collector:4318"])
        .args(["--otlp-header", "x-api-key=k3y-s3cret"])
        .env("FLOW_WEBHOOK_SECRET", "w")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let line = |key: &str| {
        text.lines()
            .find(|l| l.contains(key))
            .unwrap_or_else(|| panic!("{key}: {text}"))
            .to_owned()
    };
    assert!(
        line("telemetry.otlp_endpoint").contains("http://collector:4318"),
        "{text}"
    );
    assert!(
        line("telemetry.otlp_headers").contains("[redacted]"),
        "{text}"
    );
    assert!(!text.contains("k3y-s3cret"), "{text}");
    // `flow serve` parses the same flags (an unknown one would exit 2 before the secret check).
    let out = flow()
        .args([
            "serve",
            "--otlp-endpoint",
            "not a url",
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--otlp-header", "x-api-key=k3y-s3cret"])
        .env("FLOW_WEBHOOK_SECRET", "w")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("otlp"), "{err}");
    assert!(!err.contains("k3y-s3cret"), "{err}");
}
