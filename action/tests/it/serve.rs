//! `flow serve` as a child process on a free port, against a fake GitHub (wiremock speaking
//! the REST wire format): signed webhook deliveries in, `/metrics` and GitHub issues out.
//!
//! The deliveries are GitHub's real webhook payloads (flow-telemetry's fixtures, MIT, GitHub),
//! signed as GitHub signs them.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flow_telemetry::SecretString;
use flow_telemetry::serve::WebhookSecret;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::fake_github::{FakeRepo, IssueState, Runs};

const SECRET: &str = "serve-test-secret";

fn secret() -> WebhookSecret {
    WebhookSecret::new(SecretString::from(SECRET)).unwrap()
}

fn webhook_fixture(name: &str) -> String {
    crate::telemetry_fixture(name)
}

/// The fake GitHub of `octo-org/octo-repo`: runs, jobs, workflows, issues and labels.
struct GitHub {
    server: MockServer,
    runs: Runs,
    issues: Arc<Mutex<IssueState>>,
}

impl GitHub {
    async fn start(list_delay_ms: u64) -> Self {
        let server = MockServer::start().await;
        let FakeRepo { runs, issues } = FakeRepo::mount(&server, list_delay_ms, json!([])).await;
        Self {
            server,
            runs,
            issues,
        }
    }

    async fn requests(&self) -> Vec<Request> {
        self.server.received_requests().await.unwrap_or_default()
    }

    async fn lists(&self) -> usize {
        self.requests()
            .await
            .iter()
            .filter(|r| r.method.as_str() == "GET" && r.url.path().ends_with("/runs"))
            .count()
    }

    async fn writes(&self) -> usize {
        self.requests()
            .await
            .iter()
            .filter(|r| matches!(r.method.as_str(), "POST" | "PATCH"))
            .count()
    }

    /// The `workflow_run` `completed` delivery of run `id` as the fake lists it.
    fn completed_delivery(&self, id: u64) -> String {
        let run = self
            .runs
            .0
            .lock()
            .unwrap()
            .iter()
            .find(|r| r["id"] == json!(id))
            .cloned()
            .unwrap();
        let mut body: Value =
            serde_json::from_str(&webhook_fixture("workflow_run.completed.1.json")).unwrap();
        body["workflow_run"] = run;
        body["repository"]["default_branch"] = json!("main");
        body.to_string()
    }
}

/// A running `flow serve`.
struct Serve {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
    _state: tempfile::TempDir,
    state_dir: std::path::PathBuf,
}

impl Serve {
    fn start(api: &str, args: &[&str]) -> Self {
        let state = tempfile::tempdir().unwrap();
        let state_dir = state.path().join("state");
        let mut child = Command::new(env!("CARGO_BIN_EXE_flow"))
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(if args.contains(&"--reconcile-secs") {
                &[][..]
            } else {
                &["--reconcile-secs", "0"][..]
            })
            .arg("--state")
            .arg(&state_dir)
            .args(args)
            .env_remove("GITHUB_ACTIONS")
            .env_remove("OPENAI_API_KEY")
            .env_remove("GITHUB_REPOSITORY")
            .env_remove("FLOW_REPOSITORY")
            .env_remove("FLOW_CONFIG")
            .env_remove("FLOW_LLM_PROVIDER")
            .env("FLOW_WEBHOOK_SECRET", SECRET)
            .env("GITHUB_TOKEN", "ghs_serve_token")
            .env("GITHUB_API_URL", api)
            .env("RUST_LOG", "flow=info")
            .current_dir(state.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let pipe = child.stderr.take().unwrap();
            let stderr = stderr.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    if let Some(a) = line.strip_prefix("flow serve: listening on http://") {
                        let _ = tx.send(a.parse::<SocketAddr>().unwrap());
                    }
                    let mut s = stderr.lock().unwrap();
                    s.push_str(&line);
                    s.push('\n');
                }
            });
        }
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("flow serve did not start: {}", stderr.lock().unwrap()));
        Self {
            child,
            addr,
            stderr,
            _state: state,
            state_dir,
        }
    }

    fn post(&self, event: &str, delivery: &str, body: &str, signature: Option<&str>) -> u16 {
        let mut headers = vec![
            ("X-GitHub-Event", event.to_owned()),
            ("X-GitHub-Delivery", delivery.to_owned()),
            ("Content-Type", "application/json".to_owned()),
        ];
        if let Some(s) = signature {
            headers.push(("X-Hub-Signature-256", s.to_owned()));
        }
        http(self.addr, "POST", "/webhook", &headers, body.as_bytes()).0
    }

    /// Posts `body`, signed.
    fn deliver(&self, event: &str, delivery: &str, body: &str) -> u16 {
        let sig = secret().sign(body.as_bytes()).unwrap();
        self.post(event, delivery, body, Some(&sig))
    }

    fn metrics(&self) -> String {
        let (status, body) = http(self.addr, "GET", "/metrics", &[], b"");
        assert_eq!(status, 200);
        body
    }

    /// The value of the sample `series` (name and labels exactly as exposed), if present.
    fn sample(&self, series: &str) -> Option<f64> {
        sample(&self.metrics(), series)
    }

    /// Polls `/metrics` until `series` reaches `at_least` (a deadline, not a sleep).
    fn wait_for(&self, series: &str, at_least: f64) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if self.sample(series).is_some_and(|v| v >= at_least) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "{series} never reached {at_least}:\n{}\n{}",
            self.metrics(),
            self.stderr()
        );
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// SIGTERM, then waits for the exit; returns the exit code, stdout and stderr.
    fn terminate(&mut self) -> (Option<i32>, String, String) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(120);
        let code = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s.code();
            }
            assert!(Instant::now() < deadline, "no exit: {}", self.stderr());
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut out = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        (code, out, self.stderr())
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request on a new connection: (status, body).
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The value of `series` in an exposition.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let (name, value) = l.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok()).flatten()
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_fixtures_are_counted_once_and_unsigned_ones_never() {
    let gh = GitHub::start(0).await;
    let mut serve = Serve::start(&gh.server.uri(), &["--workers", "2"]);
    let ok = |s: &Serve| http(s.addr, "GET", "/healthz", &[], b"").0;
    assert_eq!(ok(&serve), 200);
    assert_eq!(http(serve.addr, "GET", "/readyz", &[], b"").0, 200);
    assert_eq!(
        serve.deliver("ping", "p-1", r#"{"zen":"Keep it logically awesome."}"#),
        200
    );
    // Not a workflow event: nothing to do.
    assert_eq!(serve.deliver("push", "x-1", "{}"), 204);

    let run = webhook_fixture("workflow_run.completed.1.json");
    let job = webhook_fixture("workflow_job.completed.1.json");
    let job_started = webhook_fixture("workflow_job.in_progress.3.json");
    // A run nobody may count: another repository's, refused for its signature.
    let forged = run.replace("octo-org/octo-repo", "forged-org/forged-repo");
    assert_eq!(serve.post("workflow_run", "f-1", &forged, None), 401);
    let wrong = WebhookSecret::new(SecretString::from("not-the-secret"))
        .unwrap()
        .sign(forged.as_bytes())
        .unwrap();
    assert_eq!(
        serve.post("workflow_run", "f-2", &forged, Some(&wrong)),
        401
    );
    assert_eq!(
        serve.post("workflow_run", "f-3", &forged, Some("sha256=zz")),
        401
    );

    assert_eq!(serve.deliver("workflow_run", "d-1", &run), 202);
    assert_eq!(serve.deliver("workflow_job", "d-2", &job_started), 202);
    assert_eq!(serve.deliver("workflow_job", "d-3", &job), 202);
    // GitHub's redelivery repeats the id: answered, not processed again.
    assert_eq!(serve.deliver("workflow_run", "d-1", &run), 200);
    serve.wait_for(
        r#"flow_serve_deliveries_total{event="workflow_run",result="duplicate"}"#,
        1.0,
    );
    serve.wait_for(r#"flow_serve_processed_total{result="ok"}"#, 1.0);
    let runs = r#"flow_telemetry_workflow_runs_total{repository="octo-org/octo-repo",workflow="",branch="master",status="completed",conclusion="success"}"#;
    serve.wait_for(runs, 1.0);
    let jobs = r#"flow_telemetry_workflow_jobs_total{repository="Codertocat/Hello-World",workflow="CodeQL",branch="main",job="linters",status="completed",conclusion="failure"}"#;
    serve.wait_for(jobs, 1.0);
    let text = serve.metrics();
    assert_eq!(sample(&text, runs), Some(1.0), "{text}");
    // The run's duration (25 s after its start) and queue time (25 s) in the histograms.
    assert_eq!(
        sample(
            &text,
            r#"flow_telemetry_workflow_run_duration_seconds_count{repository="octo-org/octo-repo",workflow="",branch="master",conclusion="success"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        text.contains("flow_telemetry_workflow_run_queue_seconds_bucket{"),
        "{text}"
    );
    assert!(
        text.contains("flow_telemetry_workflow_job_duration_seconds_count{"),
        "{text}"
    );
    assert!(
        text.contains("flow_telemetry_workflow_job_queue_seconds_count{"),
        "{text}"
    );
    assert!(!text.contains("forged-org"), "{text}");
    for (result, n) in [("unsigned", 1.0), ("bad_signature", 2.0)] {
        assert_eq!(
            sample(
                &text,
                &format!(
                    r#"flow_serve_deliveries_total{{event="workflow_run",result="{result}"}}"#
                )
            ),
            Some(n),
            "{text}"
        );
    }
    // Exactly the three accepted deliveries, one monitoring invocation (the completed run).
    let accepted: f64 = ["workflow_run", "workflow_job"]
        .iter()
        .filter_map(|e| {
            sample(
                &text,
                &format!(r#"flow_serve_deliveries_total{{event="{e}",result="accepted"}}"#),
            )
        })
        .sum();
    assert_eq!(accepted, 3.0, "{text}");
    assert!(!serve.stderr().contains(SECRET));
    let (code, out, err) = serve.terminate();
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("3 deliveries accepted"), "{out}");
    assert!(!err.contains(SECRET));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_queue_answers_503_and_the_accepted_work_is_still_done() {
    // Each listing takes 1.5 s: the one worker is busy with the first delivery.
    let gh = GitHub::start(1_500).await;
    gh.runs.add(1..=3, Some("success"));
    let mut serve = Serve::start(
        &gh.server.uri(),
        &["--workers", "1", "--queue-capacity", "1"],
    );
    assert_eq!(
        serve.deliver("workflow_run", "q-1", &gh.completed_delivery(1)),
        202
    );
    // Wait until the worker is on it (its first listing reached GitHub).
    let deadline = Instant::now() + Duration::from_secs(30);
    while gh.lists().await == 0 {
        assert!(Instant::now() < deadline, "{}", serve.stderr());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        serve.deliver("workflow_run", "q-2", &gh.completed_delivery(2)),
        202
    );
    assert_eq!(
        serve.deliver("workflow_run", "q-3", &gh.completed_delivery(3)),
        503
    );
    serve.wait_for(
        r#"flow_serve_deliveries_total{event="workflow_run",result="queue_full"}"#,
        1.0,
    );
    serve.wait_for(r#"flow_serve_processed_total{result="ok"}"#, 2.0);
    let (code, out, err) = serve.terminate();
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("2 deliveries accepted, 2 processed"),
        "{out}\n{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_processes_every_accepted_delivery_and_saves_the_state() {
    let gh = GitHub::start(300).await;
    gh.runs.add(1..=6, Some("success"));
    let mut serve = Serve::start(&gh.server.uri(), &["--workers", "1"]);
    for id in 1..=6u64 {
        let status = serve.deliver(
            "workflow_run",
            &format!("t-{id}"),
            &gh.completed_delivery(id),
        );
        assert_eq!(status, 202);
    }
    let state = serve.state_dir.join("octo-org/octo-repo.json");
    // Stop with work queued: the first listing alone takes 300 ms.
    let (code, out, err) = serve.terminate();
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("6 deliveries accepted, 6 processed"),
        "{out}\n{err}"
    );
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(saved["poller"]["last_seen"], json!(6), "{saved}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_failures_opens_one_issue_and_says_nothing_twice() {
    let gh = GitHub::start(0).await;
    gh.runs.add(1..=30, Some("success"));
    let mut serve = Serve::start(&gh.server.uri(), &["--workers", "2", "--open-issues"]);
    // The history is read once (the first delivery finds no state) ...
    assert_eq!(
        serve.deliver("workflow_run", "b-30", &gh.completed_delivery(30)),
        202
    );
    serve.wait_for(r#"flow_serve_processed_total{result="ok"}"#, 1.0);
    let lists = gh.lists().await;
    assert!(lists >= 1);
    // ... then each failed run arrives as its own delivery, some of them twice.
    for id in 31..=40u64 {
        gh.runs.add([id], Some("failure"));
        let body = gh.completed_delivery(id);
        assert_eq!(
            serve.deliver("workflow_run", &format!("b-{id}"), &body),
            202
        );
        if id % 3 == 0 {
            assert_eq!(
                serve.deliver("workflow_run", &format!("b-{id}"), &body),
                200
            );
        }
    }
    serve.wait_for(r#"flow_serve_processed_total{result="ok"}"#, 11.0);
    serve.wait_for(
        r#"flow_telemetry_alerts_open{repository="octo-org/octo-repo"}"#,
        1.0,
    );
    let (created, comments, issues) = {
        let st = gh.issues.lock().unwrap();
        (st.created, st.comments.clone(), st.issues.clone())
    };
    assert_eq!(created, 1, "one issue: {issues:?}");
    assert!(comments.is_empty(), "{comments:?}");
    // Events that follow the last run observed are read from the delivery: no listing.
    assert_eq!(gh.lists().await, lists, "{}", serve.stderr());
    // The writes: the issue, and its label created once.
    let writes = gh.writes().await;
    assert!(writes <= 2, "{writes}");
    let (code, _, err) = serve.terminate();
    assert_eq!(code, Some(0), "{err}");
}

/// No delivery at all: the reconciliation lists the organisation's repositories and polls
/// each, so runs whose delivery was lost still reach the detectors and the KPIs.
#[tokio::test(flavor = "multi_thread")]
async fn the_reconciliation_polls_every_repository_of_the_organisation() {
    let gh = GitHub::start(0).await;
    gh.runs.add(1..=12, Some("success"));
    Mock::given(method("GET"))
        .and(path("/orgs/octo-org/repos"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"full_name": "octo-org/octo-repo", "archived": false},
            {"full_name": "octo-org/attic", "archived": true}
        ])))
        .expect(1)
        .mount(&gh.server)
        .await;
    let mut serve = Serve::start(
        &gh.server.uri(),
        &["--org", "octo-org", "--reconcile-secs", "3600"],
    );
    serve.wait_for(
        r#"flow_telemetry_runs{repository="octo-org/octo-repo",workflow="Build"}"#,
        12.0,
    );
    assert_eq!(gh.lists().await, 1);
    let (code, out, err) = serve.terminate();
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("0 deliveries accepted, 1 processed"), "{out}");
    let saved = std::fs::read_to_string(serve.state_dir.join("octo-org/octo-repo.json")).unwrap();
    assert!(saved.contains(r#""last_seen":12"#), "{saved}");
    assert!(!serve.state_dir.join("octo-org/attic.json").exists());
    gh.server.verify().await;
}

/// `/readyz` is 503 while a state could not be saved: here the state directory's path is
/// taken by a file (the tests run as root, so permissions would not stop a write).
#[tokio::test(flavor = "multi_thread")]
async fn readyz_checks_that_the_state_directory_is_writable() {
    let gh = GitHub::start(0).await;
    let mut serve = Serve::start(&gh.server.uri(), &[]);
    let ready = |s: &Serve| http(s.addr, "GET", "/readyz", &[], b"");
    assert_eq!(ready(&serve), (200, "ready\n".to_owned()));
    // The probe created the directory, as a save would, and left nothing in it.
    assert!(serve.state_dir.is_dir());
    assert_eq!(std::fs::read_dir(&serve.state_dir).unwrap().count(), 0);
    std::fs::remove_dir_all(&serve.state_dir).unwrap();
    std::fs::write(&serve.state_dir, "not a directory").unwrap();
    assert_eq!(
        ready(&serve),
        (503, "state directory not writable\n".to_owned())
    );
    // Liveness is not readiness.
    assert_eq!(http(serve.addr, "GET", "/healthz", &[], b"").0, 200);
    std::fs::remove_file(&serve.state_dir).unwrap();
    assert_eq!(ready(&serve).0, 200);
    let (code, _, err) = serve.terminate();
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("the state directory is not writable"), "{err}");
}

/// The sum of the samples of `name` (every label set of the repository).
fn total(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter(|l| l.contains(r#"repository="octo-org/octo-repo""#))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// Each run reaches the run counters and histograms once, whichever path saw it: a delivery
/// (and the monitoring that follows it), the reconciliation alone (its delivery lost), or the
/// reconciliation then a late delivery. The history read at start is observed, not counted.
#[tokio::test(flavor = "multi_thread")]
async fn runs_found_by_the_reconciliation_are_counted_once_like_delivered_ones() {
    let gh = GitHub::start(0).await;
    gh.runs.add(1..=3, Some("success"));
    let mut serve = Serve::start(
        &gh.server.uri(),
        &["--repos", "octo-org/octo-repo", "--reconcile-secs", "1"],
    );
    let kpi_runs = r#"flow_telemetry_runs{repository="octo-org/octo-repo",workflow="Build"}"#;
    let counted = |s: &Serve| {
        let text = s.metrics();
        (
            total(&text, "flow_telemetry_workflow_runs_total"),
            total(&text, "flow_telemetry_workflow_run_duration_seconds_count"),
            total(&text, "flow_telemetry_workflow_run_queue_seconds_count"),
        )
    };
    serve.wait_for(kpi_runs, 3.0);
    assert_eq!(counted(&serve), (0.0, 0.0, 0.0), "{}", serve.metrics());

    // Run 4 is delivered: counted by its delivery, not again by its monitoring nor by the
    // reconciliation that lists it.
    gh.runs.add([4], Some("success"));
    assert_eq!(
        serve.deliver("workflow_run", "r-4", &gh.completed_delivery(4)),
        202
    );
    // Run 5's delivery is lost: the reconciliation finds it.
    gh.runs.add([5], Some("failure"));
    serve.wait_for(kpi_runs, 5.0);
    let deadline = Instant::now() + Duration::from_secs(60);
    while counted(&serve).0 < 2.0 {
        assert!(Instant::now() < deadline, "{}", serve.metrics());
        std::thread::sleep(Duration::from_millis(50));
    }
    // Run 5's delivery arrives late: not counted again. Wait for two more monitoring
    // invocations after it (the delivery's, the next reconciliation's).
    let ok = r#"flow_serve_processed_total{result="ok"}"#;
    let before = serve.sample(ok).unwrap_or(0.0);
    assert_eq!(
        serve.deliver("workflow_run", "r-5", &gh.completed_delivery(5)),
        202
    );
    serve.wait_for(ok, before + 3.0);
    assert_eq!(counted(&serve), (2.0, 2.0, 2.0), "{}", serve.metrics());
    let text = serve.metrics();
    for conclusion in ["success", "failure"] {
        assert_eq!(
            sample(
                &text,
                &format!(
                    r#"flow_telemetry_workflow_run_duration_seconds_count{{repository="octo-org/octo-repo",workflow="Build",branch="main",conclusion="{conclusion}"}}"#
                )
            ),
            Some(1.0),
            "{text}"
        );
    }
    let (code, out, err) = serve.terminate();
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("2 deliveries accepted"), "{out}");
}

#[test]
fn serve_refuses_to_start_without_a_webhook_secret() {
    let out = Command::new(env!("CARGO_BIN_EXE_flow"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("GITHUB_ACTIONS")
        .env_remove("FLOW_WEBHOOK_SECRET")
        .env_remove("FLOW_WEBHOOK_SECRET_FILE")
        .env_remove("FLOW_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("FLOW_WEBHOOK_SECRET"), "{err}");
}

#[test]
fn flow_config_lists_the_serve_settings() {
    let out = Command::new(env!("CARGO_BIN_EXE_flow"))
        .args(["config", "--for", "serve"])
        .env_remove("GITHUB_ACTIONS")
        .env("FLOW_WEBHOOK_SECRET", SECRET)
        .env("FLOW_SERVE_WORKERS", "3")
        .env_remove("FLOW_CONFIG")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for key in [
        "serve.listen",
        "serve.webhook_secret",
        "serve.repositories",
        "serve.org",
        "serve.reconcile_secs",
        "serve.queue_capacity",
        "telemetry.state",
    ] {
        assert!(text.contains(key), "{key}: {text}");
    }
    assert!(
        text.contains("serve.workers") && text.contains("(env FLOW_SERVE_WORKERS)"),
        "{text}"
    );
    assert!(!text.contains(SECRET), "{text}");
}
