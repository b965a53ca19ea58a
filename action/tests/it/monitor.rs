//! `flow monitor` offline: the bundled sample (the README's main job) and an exported file.

use crate::monitor_support::{flow, mount_no_jobs, output, sample_runs, success_json};

#[test]
fn main_job_runs_offline_on_the_bundled_sample() {
    let out = flow().arg("monitor").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    insta::assert_snapshot!("main_job", stdout);
    // Progress went to stderr, not into the report.
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("fetched 300/300 runs"), "{stderr}");
}

#[test]
fn json_output_is_machine_readable_and_alone_on_stdout() {
    let out = flow().args(["monitor", "--json"]).output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["origin"]["kind"], "sample");
    assert_eq!(v["runs"], 300);
    assert_eq!(v["telemetry"]["workflows"].as_array().unwrap().len(), 3);
    assert!(!v["recovered"].as_array().unwrap().is_empty(), "{v}");
    assert_eq!(v["alerts"].as_array().unwrap().len(), 0, "{v}");
}

/// The sample cut inside its failure burst: the alert is still open, so an issue would be
/// opened (a dry run without --open-issues), and the action outputs and summary say so.
#[test]
fn an_open_alert_from_a_file_in_actions_mode() {
    let dir = tempfile::tempdir().unwrap();
    let sample = flow_telemetry::sample::ndjson().unwrap();
    let cut: Vec<&str> = sample.lines().take(230).collect();
    let file = dir.path().join("runs.ndjson");
    std::fs::write(&file, cut.join("\n")).unwrap();
    let output = dir.path().join("output");
    let summary = dir.path().join("summary");
    let out = flow()
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", &output)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("INPUT_COMMAND", "monitor")
        .env("INPUT_FROM-FILE", &file)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("alert(s) open:"), "{stdout}");
    // One incident for the burst, carrying the streak and the failure rate, each explained.
    assert!(stdout.contains("1 alert(s) open:"), "{stdout}");
    assert!(
        stdout.contains(
            "::error title=[flow-telemetry] CI%3A 4 consecutive failed runs; failure rate rose"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("consecutive_failures: CI on main usually fails")
            && stdout.contains("failure_rate: CI on main usually fails"),
        "{stdout}"
    );
    let outputs = std::fs::read_to_string(&output).unwrap();
    assert!(
        outputs.contains("dry-run: would open or comment on the issue"),
        "{outputs}"
    );
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert!(summary.contains("### Issues and triage"), "{summary}");
    assert!(summary.contains("CI"), "{summary}");
}

#[test]
fn prometheus_format() {
    let out = flow()
        .args(["monitor", "--format", "prometheus"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("# TYPE "), "{text}");
    assert!(
        text.contains("flow_telemetry_runs{workflow=\"CI\"} 166"),
        "{text}"
    );
}

#[test]
fn a_missing_file_fails_with_its_name() {
    let out = flow()
        .args(["monitor", "--from-file", "/nonexistent/runs.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("/nonexistent/runs.json"), "{stderr}");
}

/// `--repo` reads the runs from a GitHub-shaped server (GITHUB_API_URL), with the token.
#[tokio::test(flavor = "multi_thread")]
async fn a_repository_through_the_github_rest_api() {
    use wiremock::matchers::{header, method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let mut runs = sample_runs(230);
    runs.reverse(); // GitHub lists newest first
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/octo/app/actions/runs"))
        .and(query_param("per_page", "100"))
        .and(header("authorization", "Bearer ghs_monitor_token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "total_count": runs.len(),
            "workflow_runs": runs,
        })))
        .expect(1)
        .mount(&server)
        .await;
    mount_no_jobs(&server, "octo/app").await;
    let mut cmd = flow();
    cmd.args(["monitor", "--json", "--repo", "octo/app", "--api-url"])
        .arg(server.uri())
        .args(["--branch", "*"])
        .env("GITHUB_TOKEN", "ghs_monitor_token");
    let v = success_json(&output(cmd).await);
    assert_eq!(v["origin"]["kind"], "repository");
    assert_eq!(v["origin"]["name"], "octo/app");
    assert_eq!(v["runs"], 230);
    let open = v["alerts"].as_array().unwrap();
    assert!(!open.is_empty(), "{v}");
    assert!(
        open.iter().any(|a| a["issue"]["description"]
            .as_str()
            .is_some_and(|d| d.starts_with("dry-run:"))),
        "{v}"
    );
    server.verify().await;
}

/// `--since` / `--until` with a repository become GitHub's `created` filter; the whole-history
/// KPIs cover the runs read.
#[tokio::test(flavor = "multi_thread")]
async fn since_and_until_filter_the_api_listing() {
    use wiremock::matchers::{method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let runs = sample_runs(40);
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/octo/app/actions/runs"))
        .and(query_param(
            "created",
            "2024-01-01T00:00:00Z..2024-01-31T23:59:59Z",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "total_count": runs.len(),
            "workflow_runs": runs,
        })))
        .expect(1..)
        .mount(&server)
        .await;
    let mut cmd = flow();
    cmd.args(["monitor", "--json", "--repo", "octo/app", "--api-url"])
        .arg(server.uri())
        .args(["--since", "2024-01-01", "--until", "2024-01-31"])
        .env("GITHUB_TOKEN", "ghs_t");
    let v = success_json(&output(cmd).await);
    assert_eq!(v["history"]["schema"], "flow-telemetry/history/1");
    server.verify().await;
}

#[test]
fn open_issues_needs_a_repository() {
    let out = flow()
        .args(["monitor", "--open-issues"])
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("--open-issues needs --repo"), "{stderr}");
}

/// `--max-runs` below the history's size: the cut is reported, never silent.
#[test]
fn a_run_limit_that_cuts_the_history_is_warned_and_flagged() {
    let out = flow()
        .args(["monitor", "--max-runs", "100"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("warning: stopped after 1 pages (100 runs): older runs were not read"),
        "{stdout}"
    );
    let out = flow()
        .args(["monitor", "--max-runs", "100", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["runs"].as_u64(), v["truncated"].as_bool()),
        (Some(100), Some(true))
    );
    assert_eq!(v["telemetry"]["truncated"], true);
    // The whole sample fits three pages: no flag.
    let out = flow()
        .args(["monitor", "--max-runs", "300", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["runs"], 300);
    assert!(v.get("truncated").is_none(), "{v}");
}

/// A generated NDJSON export of `runs` runs.
fn big_export(dir: &std::path::Path, runs: usize) -> std::path::PathBuf {
    use flow_telemetry::generator::{GeneratorConfig, generate};
    let history = generate(&GeneratorConfig {
        seed: 5,
        runs,
        ..GeneratorConfig::default()
    });
    let file = dir.join("runs.ndjson");
    std::fs::write(
        &file,
        flow_telemetry::source::file::to_ndjson(&history.runs).unwrap(),
    )
    .unwrap();
    file
}

fn monitor_json(args: &[&str]) -> serde_json::Value {
    let out = flow()
        .arg("monitor")
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    success_json(&out)
}

/// An export larger than the API's default read (1,000 runs): `--from-file` reads all of it,
/// whatever `--max-runs` says, and reports whole-history KPIs beside the windowed ones.
#[test]
fn from_file_reads_the_whole_file_with_whole_history_kpis() {
    let dir = tempfile::tempdir().unwrap();
    let file = big_export(dir.path(), 2_500);
    let path = file.to_str().unwrap();
    let v = monitor_json(&["--from-file", path, "--max-runs", "100"]);
    assert_eq!(v["ingest"]["runs_read"], 2_500);
    assert_eq!(v["history"]["runs"], 2_500);
    assert_eq!(v["history"]["schema"], "flow-telemetry/history/1");
    let by_name = |name: &str| {
        v["history"]["workflows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["workflow"] == name)
            .cloned()
            .unwrap()
    };
    // The windowed figures stay the rules' window (500); the whole history counts every run.
    let ci_window = v["telemetry"]["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["workflow"] == "CI")
        .unwrap()["count"]
        .as_u64()
        .unwrap();
    assert_eq!(ci_window, 500);
    assert!(by_name("CI")["count"].as_u64().unwrap() > 1_000);
    assert!(by_name("CI")["duration_ms"]["p95"].as_i64().unwrap() > 0);

    // Text mode shows the whole-history table.
    let out = flow()
        .args(["monitor", "--from-file", path])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("Whole history: 2500 runs of 2500 read"),
        "{text}"
    );
    assert!(text.contains("percentiles within 1%"), "{text}");
}

#[test]
fn since_until_and_merged_shards_equal_the_whole() {
    let dir = tempfile::tempdir().unwrap();
    let file = big_export(dir.path(), 1_200);
    let path = file.to_str().unwrap();
    let whole = monitor_json(&["--from-file", path]);
    // The generator starts on 2026-01-01 with a run every 4 minutes on average: ~3.3 days.
    let a = monitor_json(&["--from-file", path, "--until", "2026-01-01"]);
    let b = monitor_json(&["--from-file", path, "--since", "2026-01-02T00:00:00Z"]);
    let (na, nb) = (
        a["history"]["runs"].as_u64().unwrap(),
        b["history"]["runs"].as_u64().unwrap(),
    );
    assert!(na > 100 && nb > 100, "{na} {nb}");
    assert_eq!(na + nb, 1_200);
    assert_eq!(a["ingest"]["filtered_out"], nb);
    for (name, v) in [("a.json", &a), ("b.json", &b)] {
        std::fs::write(dir.path().join(name), v.to_string()).unwrap();
    }
    let out = flow()
        .current_dir(dir.path())
        .args(["report", "merge", "a.json", "b.json", "--json"])
        .output()
        .unwrap();
    let merged = success_json(&out);
    assert_eq!(merged["runs"], 1_200);
    assert_eq!(merged["sources"], 2);
    for (m, w) in merged["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .zip(whole["history"]["workflows"].as_array().unwrap())
    {
        for k in [
            "workflow",
            "count",
            "success",
            "failure",
            "reruns",
            "success_rate",
        ] {
            assert_eq!(m[k], w[k], "{k}");
        }
        assert_eq!(m["duration_ms"]["n"], w["duration_ms"]["n"]);
        assert_eq!(m["duration_ms"]["max"], w["duration_ms"]["max"]);
        let (x, y) = (
            m["duration_ms"]["p90"].as_f64().unwrap(),
            w["duration_ms"]["p90"].as_f64().unwrap(),
        );
        assert!((x - y).abs() <= 0.01 * y + 0.5, "{x} {y}");
    }
    // A bad time or a bad summary is named.
    let out = flow()
        .args(["monitor", "--from-file", path, "--since", "last week"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("--since `last week`"));
    let out = flow().args(["report", "merge", path]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("runs.ndjson"));
}

#[test]
fn malformed_records_fail_with_their_position_or_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("runs.json");
    std::fs::write(
        &file,
        "{\"total_count\":3,\"workflow_runs\":[{\"id\":1,\"status\":\"completed\"},\n{\"id\":\"two\"},\n{\"id\":3}]}",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let out = flow()
        .args(["monitor", "--from-file", path])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("page 1, run 1 of `workflow_runs` (line 2): invalid type"),
        "{stderr}"
    );
    let v = monitor_json(&["--from-file", path, "--skip-invalid"]);
    assert_eq!(v["ingest"]["invalid"], 1);
    assert_eq!(v["history"]["runs"], 2);
    assert_eq!(v["history"]["invalid"], 1);
}

/// Serves a fixed list of runs the way GitHub does: an ETag, and a 304 to a request carrying it.
struct Conditional(serde_json::Value);

impl wiremock::Respond for Conditional {
    fn respond(&self, req: &wiremock::Request) -> wiremock::ResponseTemplate {
        let etag = format!("W/\"{:x}\"", self.0.to_string().len());
        if req
            .headers
            .get("if-none-match")
            .is_some_and(|v| v.to_str().ok() == Some(etag.as_str()))
        {
            return wiremock::ResponseTemplate::new(304).insert_header("etag", etag.as_str());
        }
        wiremock::ResponseTemplate::new(200)
            .insert_header("etag", etag.as_str())
            .set_body_json(&self.0)
    }
}

/// The real binary, invoked as a workflow would invoke it, against a GitHub-shaped server: the
/// display name (spaces and a slash) is resolved once and remembered, and after the first
/// invocation each one on an unchanged history is one conditional request answered 304.
#[tokio::test(flavor = "multi_thread")]
async fn invocations_with_state_resolve_the_name_once_and_then_cost_one_304() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let mut runs = sample_runs(120);
    runs.reverse(); // GitHub lists newest first
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/octo/app/actions/workflows"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "total_count": 2,
            "workflows": [
                {"id": 11, "name": "CI", "path": ".github/workflows/ci.yml"},
                {"id": 12, "name": "Build / Test", "path": ".github/workflows/build-test.yml"}
            ]
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/octo/app/actions/workflows/12/runs"))
        .respond_with(Conditional(serde_json::json!({
            "total_count": runs.len(),
            "workflow_runs": runs,
        })))
        .mount(&server)
        .await;
    mount_no_jobs(&server, "octo/app").await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let invoke = |workflow: &'static str| {
        let uri = server.uri();
        let state = state.clone();
        let mut cmd = flow();
        cmd.args(["monitor", "--json", "--repo", "octo/app", "--api-url", &uri])
            .args(["--workflow", workflow, "--branch", "*", "--state"])
            .arg(&state)
            .env("GITHUB_TOKEN", "ghs_monitor_token");
        output(cmd)
    };
    let requests = || async { server.received_requests().await.unwrap().len() };
    let out = invoke("Build / Test").await;
    let v = success_json(&out);
    assert_eq!(v["workflow"]["id"], 12);
    assert_eq!(v["runs"], 120);
    for i in 0..10 {
        let before = requests().await;
        let out = invoke("Build / Test").await;
        let v = success_json(&out);
        assert_eq!(
            (v["runs"].as_u64(), v["writes"].as_u64()),
            (Some(0), Some(0))
        );
        let all = server.received_requests().await.unwrap();
        assert_eq!(
            all.len() - before,
            1,
            "invocation {i}: {:?}",
            &all[before..]
        );
        assert!(all[before].headers.get("if-none-match").is_some());
    }
    // An unknown name lists the known ones.
    let out = invoke("Deploy").await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("no workflow named `Deploy`")
            && stderr.contains("`Build / Test` (build-test.yml, id 12)"),
        "{stderr}"
    );
}
