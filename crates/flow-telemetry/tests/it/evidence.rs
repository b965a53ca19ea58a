//! The evidence of a failing run from a wiremock GitHub speaking the REST wire format: the
//! run and its commit, jobs with their check-run URLs, annotations, the job log behind its
//! redirect, the last green run and the compare range.

use flow_telemetry::RunId;
use flow_telemetry::github::{GitHubClient, GitHubConfig};
use flow_telemetry::source::evidence::{EvidenceLimits, gather};
use flow_telemetry::source::github::GitHubSource;
use secrecy::SecretString;
use serde_json::{Value, json};
use wiremock::matchers::{header_exists, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::fixture;

const REPO: &str = "/repos/octo-org/octo-repo";

fn run(id: u64, sha: &str, conclusion: &str, created: &str) -> Value {
    let mut r: Value = serde_json::from_str(&fixture("workflow-run.json")).unwrap();
    r["id"] = json!(id);
    r["head_sha"] = json!(sha);
    r["head_branch"] = json!("main");
    r["workflow_id"] = json!(159038);
    r["conclusion"] = json!(conclusion);
    r["created_at"] = json!(created);
    r["head_commit"]["message"] = json!("Bump tokio to 1.47\n\nSigned-off-by: a dev");
    r
}

fn job(id: u64, name: &str, status: &str, conclusion: Option<&str>) -> Value {
    let mut j: Value =
        serde_json::from_str::<Value>(&fixture("job-paginated.json")).unwrap()["jobs"][0].clone();
    j["id"] = json!(id);
    j["name"] = json!(name);
    j["status"] = json!(status);
    j["conclusion"] = json!(conclusion);
    // The check run's id differs from the job's.
    j["check_run_url"] = json!(format!(
        "https://api.github.com{REPO}/check-runs/{}",
        id + 1
    ));
    if let Some(last) = j["steps"].as_array_mut().and_then(|s| s.last_mut()) {
        last["conclusion"] = json!(conclusion);
        last["name"] = json!("Run cargo test");
    }
    j
}

async fn server() -> MockServer {
    let s = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{REPO}/actions/runs/30")))
        .respond_with(ResponseTemplate::new(200).set_body_json(run(
            30,
            "bbbbbbb1",
            "failure",
            "2024-03-02T10:00:00Z",
        )))
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{REPO}/actions/runs/30/jobs")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "total_count": 3,
            "jobs": [
                job(301, "lint", "completed", Some("success")),
                job(302, "test", "completed", Some("failure")),
                job(303, "e2e", "completed", Some("failure")),
            ]
        })))
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{REPO}/check-runs/303/annotations")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{
            "path": "src/lib.rs", "blob_href": "https://github.com/octo-org/octo-repo/blob/x/src/lib.rs",
            "start_line": 12, "end_line": 12, "start_column": 5, "end_column": 10,
            "annotation_level": "failure", "title": "test failed",
            "message": "assertion `left == right` failed", "raw_details": null
        }])))
        .expect(1)
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{REPO}/check-runs/304/annotations")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&s)
        .await;
    // The log endpoint redirects to a signed URL on "another host".
    Mock::given(method("GET"))
        .and(path(format!("{REPO}/actions/jobs/302/logs")))
        .respond_with(
            ResponseTemplate::new(302)
                .insert_header("location", format!("{}/blob/logs/302?sig=abc", s.uri())),
        )
        .expect(1)
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(path("/blob/logs/302"))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            "2024-03-02T10:01:00.0000000Z ##[group]Run cargo test\n\
             2024-03-02T10:01:01.0000000Z \u{1b}[1mtest it_works ... FAILED\u{1b}[0m\n\
             2024-03-02T10:01:02.0000000Z export GH_TOKEN=ghp_abcdefghijklmnopqrstuvwxyz0123456789\n\
             2024-03-02T10:01:03.0000000Z ##[error]Process completed with exit code 101.\n\
             2024-03-02T10:01:04.0000000Z Post job cleanup.\n",
        ))
        .expect(1)
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{REPO}/actions/jobs/303/logs")))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})))
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{REPO}/actions/workflows/159038/runs")))
        .and(query_param("status", "success"))
        .and(query_param("branch", "main"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "total_count": 2,
            "workflow_runs": [
                run(31, "ccccccc1", "success", "2024-03-02T11:00:00Z"),
                run(29, "aaaaaaa1", "success", "2024-03-01T10:00:00Z"),
            ]
        })))
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{REPO}/compare/aaaaaaa1...bbbbbbb1")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "status": "ahead", "ahead_by": 2, "behind_by": 0, "total_commits": 2,
            "commits": [
                {"sha": "1111111aaaa", "commit": {"message": "Refactor the parser\n\nbody"}},
                {"sha": "2222222bbbb", "commit": {"message": "Bump tokio to 1.47"}}
            ],
            "files": [
                {"sha": "x", "filename": "Cargo.lock", "status": "modified", "additions": 40, "deletions": 30, "changes": 70},
                {"sha": "y", "filename": "src/parser.rs", "status": "modified", "additions": 100, "deletions": 20, "changes": 120}
            ]
        })))
        .mount(&s)
        .await;
    s
}

fn source(s: &MockServer) -> GitHubSource {
    let cfg = GitHubConfig::new("octo-org", "octo-repo")
        .with_base_url(s.uri())
        .with_token(SecretString::from("ghs_not_a_real_token"));
    GitHubSource::new(GitHubClient::new(cfg).unwrap())
}

#[tokio::test]
async fn a_failing_run_yields_annotations_log_tail_commit_and_range() {
    let s = server().await;
    let ev = gather(&source(&s), RunId(30), &EvidenceLimits::default()).await;

    let info = ev.run.as_ref().unwrap();
    assert_eq!(info.run.head_sha, "bbbbbbb1");
    assert_eq!(info.commit_title, "Bump tokio to 1.47");
    assert_eq!(ev.jobs.len(), 3);
    assert_eq!(ev.failing.len(), 2);

    let test = &ev.failing[0];
    assert_eq!(test.name, "test");
    // Check run 303 belongs to job 302: the id comes from `check_run_url`.
    assert_eq!(
        test.annotations,
        ["failure: src/lib.rs:12: test failed: assertion `left == right` failed"]
    );
    let tail = test.log_tail.as_ref().unwrap();
    assert_eq!(
        tail,
        &[
            "##[group]Run cargo test",
            "test it_works ... FAILED",
            "export GH_TOKEN=[redacted]",
            "##[error]Process completed with exit code 101."
        ]
    );

    let e2e = &ev.failing[1];
    assert!(e2e.annotations.is_empty());
    assert!(e2e.log_tail.is_none());
    assert!(
        ev.missing
            .iter()
            .any(|m| m.contains("job log of `e2e`: not available")),
        "{:?}",
        ev.missing
    );

    // The newest green run created before the failure, not the later one.
    let range = ev.since_green.as_ref().unwrap();
    assert_eq!((range.run_id, range.head_sha.as_str()), (29, "aaaaaaa1"));
    assert_eq!(range.comparison.total_commits, 2);
    assert_eq!(
        range.comparison.commits[0],
        ("2222222".into(), "Bump tokio to 1.47".into())
    );
    assert_eq!(range.comparison.files[0], ("src/parser.rs".into(), 120));

    // The token went to the API, never to the log's download host.
    let requests = s.received_requests().await.unwrap();
    let blob = requests
        .iter()
        .find(|r| r.url.path().starts_with("/blob/"))
        .unwrap();
    assert!(!blob.headers.contains_key("authorization"));
    let api = requests
        .iter()
        .find(|r| r.url.path().ends_with("/logs"))
        .unwrap();
    assert!(api.headers.contains_key("authorization"));
}

#[tokio::test]
async fn a_running_job_is_not_asked_for_its_log() {
    let s = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{REPO}/actions/runs/40/jobs")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "total_count": 1,
            "jobs": [job(401, "test", "in_progress", Some("failure"))]
        })))
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{REPO}/actions/jobs/401/logs")))
        .and(header_exists("authorization"))
        .respond_with(ResponseTemplate::new(404))
        .expect(0)
        .mount(&s)
        .await;
    let src = source(&s);
    let ev = gather(&src, RunId(40), &EvidenceLimits::default()).await;
    let missing = ev.missing.join("\n");
    assert!(
        missing.contains("job log of `test`: the job is still running"),
        "{missing}"
    );
    assert!(
        missing.contains("the run and its commit: HTTP 404"),
        "{missing}"
    );
    assert!(
        missing.contains("annotations of `test`: HTTP 404"),
        "{missing}"
    );
    assert_eq!(ev.failing[0].failing_steps.len(), 1);
}
