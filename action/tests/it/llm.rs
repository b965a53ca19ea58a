//! `flow delegate` and `flow review-issue` against a local OpenAI-shaped server.

use std::process::Command;

use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn completion(content: &str) -> Value {
    json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "local-model",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "finish_reason": "stop"
        }],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    })
}

async fn server(content: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_partial_json(json!({"model": "local-model"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion(content)))
        .expect(1)
        .mount(&server)
        .await;
    server
}

async fn flow(args: Vec<String>, envs: Vec<(&'static str, String)>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_flow"));
        c.args(&args)
            .env_remove("GITHUB_ACTIONS")
            .env_remove("OPENAI_API_KEY")
            .env_remove("GITHUB_TOKEN")
            .env_remove("GITHUB_REPOSITORY")
            .env_remove("FLOW_REPOSITORY")
            .env_remove("FLOW_CONFIG")
            .env_remove("FLOW_LLM_PROVIDER")
            .env_remove("OPENAI_BASE_URL");
        for (k, v) in envs {
            c.env(k, v);
        }
        c.output().unwrap()
    })
    .await
    .unwrap()
}

fn common(server: &MockServer) -> Vec<String> {
    vec![
        "--provider".into(),
        "compatible".into(),
        "--base-url".into(),
        format!("{}/v1", server.uri()),
        "--model".into(),
        "local-model".into(),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn delegate_with_choices_returns_a_typed_choice() {
    let server = server(r#"{"choice":"no","reason":"the tests fail"}"#).await;
    let mut args = vec!["delegate".into(), "--json".into()];
    args.extend(common(&server));
    args.extend([
        "--prompt".into(),
        "Ship it?".into(),
        "--choices".into(),
        "yes,no".into(),
    ]);
    let out = flow(args, vec![]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["answer"], "no");
    assert_eq!(v["reason"], "the tests fail");
    // The request carried the strict schema of the answer.
    let requests = server.received_requests().await.unwrap();
    let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(body["response_format"]["type"], "json_schema");
    server.verify().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn delegate_rejects_a_choice_that_was_not_offered() {
    let server = server(r#"{"choice":"maybe","reason":"unsure"}"#).await;
    let mut args = vec!["delegate".into()];
    args.extend(common(&server));
    args.extend([
        "--prompt".into(),
        "Ship it?".into(),
        "--choices".into(),
        "yes,no".into(),
    ]);
    let out = flow(args, vec![]).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not one of: yes, no"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn review_issue_in_actions_mode_sets_outputs_and_masks_the_key() {
    let server = server(
        r#"{"fixed":false,"message":"CI still fails on main.","refinement":"Fix the flaky test."}"#,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("output");
    let summary = dir.path().join("summary");
    let out = flow(
        vec![],
        vec![
            ("GITHUB_ACTIONS", "true".into()),
            ("GITHUB_OUTPUT", output.display().to_string()),
            ("GITHUB_STEP_SUMMARY", summary.display().to_string()),
            ("INPUT_COMMAND", "review-issue".into()),
            ("INPUT_PROVIDER", "compatible".into()),
            ("INPUT_BASE-URL", format!("{}/v1", server.uri())),
            ("INPUT_MODEL", "local-model".into()),
            ("INPUT_API-KEY", "sk-review-secret".into()),
            ("INPUT_TITLE", "Crash on start".into()),
            ("INPUT_EVIDENCE", "CI run 42 failed".into()),
        ],
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("::add-mask::sk-review-secret\n"),
        "{stdout}"
    );
    let outputs = std::fs::read_to_string(&output).unwrap();
    assert!(outputs.contains("fixed<<ghadelimiter_"), "{outputs}");
    assert!(outputs.contains("\nfalse\n"), "{outputs}");
    assert!(outputs.contains("\nCI still fails on main.\n"), "{outputs}");
    let summary = std::fs::read_to_string(&summary).unwrap();
    insta::assert_snapshot!(summary, @r"
    ### flow review-issue: Crash on start

    **not fixed**: CI still fails on main.

    **Next step:** Fix the flaky test.
    ");
    // The key went to the server as a bearer token, and nowhere else.
    let requests = server.received_requests().await.unwrap();
    assert_eq!(
        requests[0].headers.get("authorization").unwrap(),
        "Bearer sk-review-secret"
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("sk-review-secret"));
}

pub(crate) fn burst_file(dir: &std::path::Path) -> std::path::PathBuf {
    let sample = flow_telemetry::sample::ndjson().unwrap();
    let cut: Vec<&str> = sample.lines().take(230).collect();
    let file = dir.join("runs.ndjson");
    std::fs::write(&file, cut.join("\n")).unwrap();
    file
}

#[tokio::test(flavor = "multi_thread")]
async fn monitor_triages_open_alerts_with_the_model() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion(
            r#"{"category":"flaky","confidence":"low","likely_cause":"a flaky integration test","evidence_quote":"no line quoted","suggested_next_step":"quarantine it"}"#,
        )))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let file = burst_file(dir.path());
    let mut args = vec![
        "monitor".to_owned(),
        "--from-file".into(),
        file.display().to_string(),
        "--triage".into(),
    ];
    args.extend(common(&server));
    let out = flow(args, vec![]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("likely cause: a flaky integration test"),
        "{stdout}"
    );
    assert!(stdout.contains("next step: quarantine it"), "{stdout}");
    assert!(
        stdout.contains("triage: flaky (low confidence)"),
        "{stdout}"
    );
    // Offline: no evidence to check the quote against, and the report says so.
    assert!(
        stdout.contains("evidence (UNVERIFIED): no line quoted"),
        "{stdout}"
    );
    assert!(stdout.contains("evidence lacking:"), "{stdout}");
    assert!(stdout.contains("issue: dry-run: would open"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn monitor_reports_a_failed_triage_and_still_raises_the_issue() {
    // A port nothing listens on: connections are refused. (A dropped MockServer would go back
    // to wiremock's pool and answer for another test.)
    let uri = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let dir = tempfile::tempdir().unwrap();
    let file = burst_file(dir.path());
    let out = flow(
        vec![
            "monitor".into(),
            "--from-file".into(),
            file.display().to_string(),
            "--triage".into(),
            "--provider".into(),
            "compatible".into(),
            "--base-url".into(),
            format!("{uri}/v1"),
            "--model".into(),
            "local-model".into(),
            "--timeout-secs".into(),
            "2".into(),
        ],
        vec![("FLOW_LLM_MAX_RETRIES", "0".into())],
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("triage unavailable:"), "{stdout}");
    assert!(stdout.contains("issue: dry-run: would open"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn delegate_free_form_and_with_a_json_schema() {
    let text_server = server("Ship on Friday.").await;
    let mut args = vec!["delegate".into()];
    args.extend(common(&text_server));
    args.extend(["--prompt".into(), "When?".into()]);
    let out = flow(args, vec![]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Ship on Friday.\n");

    let server = server(r#"{"risk":"low","ship":true}"#).await;
    let schema = r#"{"type":"object","properties":{"risk":{"type":"string"},"ship":{"type":"boolean"}},"required":["risk","ship"],"additionalProperties":false}"#;
    let mut args = vec!["delegate".into(), "--json".into()];
    args.extend(common(&server));
    args.extend([
        "--prompt".into(),
        "Ship it?".into(),
        "--schema".into(),
        schema.into(),
    ]);
    let out = flow(args, vec![]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["answer"], json!({"risk": "low", "ship": true}));
    let requests = server.received_requests().await.unwrap();
    let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(
        body["response_format"]["json_schema"]["schema"]["required"],
        json!(["risk", "ship"])
    );
    assert_eq!(body["response_format"]["json_schema"]["strict"], true);
}
