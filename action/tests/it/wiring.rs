//! Everything flow-llm can do, through `flow`: fallback models by error class, `--max-tokens`
//! and the token budget, `--prompt-file` with variables, usage in `--json`, `--choices` as an
//! enum on the wire; `flow config` with origins; triage only on purpose.

use std::process::Command;

use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SCHEMAS: &str =
    include_str!("../../../crates/flow-llm/tests/fixtures/openai-chat-schemas.json");

pub(crate) fn completion(model: &str, content: &str) -> Value {
    json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "finish_reason": "stop"
        }],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18,
            "prompt_tokens_details": {"cached_tokens": 4}}
    })
}

fn api_error(status: u16, kind: &str, code: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("retry-after-ms", "1")
        .set_body_json(
            json!({"error": {"message": format!("{kind} from the test server"),
            "type": kind, "param": null, "code": code}}),
        )
}

async fn flow(
    args: Vec<String>,
    envs: Vec<(&'static str, String)>,
    dir: Option<std::path::PathBuf>,
) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_flow"));
        c.args(&args);
        for (k, _) in std::env::vars() {
            if k.starts_with("FLOW_")
                || k.starts_with("OPENAI_")
                || k.starts_with("AZURE_")
                || k.starts_with("GITHUB_")
                || k.starts_with("INPUT_")
            {
                c.env_remove(k);
            }
        }
        if let Some(d) = dir {
            c.current_dir(d);
        }
        for (k, v) in envs {
            c.env(k, v);
        }
        c.output().unwrap()
    })
    .await
    .unwrap()
}

fn compatible(server: &MockServer, model: &str) -> Vec<String> {
    [
        "--provider",
        "compatible",
        "--base-url",
        &format!("{}/v1", server.uri()),
        "--model",
        model,
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Rules under which the burst file leaves two alerts open.
fn two_alert_rules(dir: &std::path::Path) -> String {
    let rules = dir.join("rules.yml");
    std::fs::write(&rules, "defaults:\n  consecutive_failures: 1\n").unwrap();
    rules.display().to_string()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

async fn bodies(server: &MockServer) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

/// Mounts `primary` failing with `failure`, and `backup` answering.
async fn primary_fails(failure: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_partial_json(json!({"model": "primary"})))
        .respond_with(failure)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_partial_json(json!({"model": "backup"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion("backup", "from backup")))
        .mount(&server)
        .await;
    server
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fallback_model_answers_a_5xx_after_retries_and_a_quota_error_but_not_a_401() {
    for (failure, primary_calls) in [
        (api_error(500, "server_error", "server_error"), 2),
        (
            api_error(429, "insufficient_quota", "insufficient_quota"),
            1,
        ),
    ] {
        let server = primary_fails(failure).await;
        let mut a = args(&["delegate", "--json", "--prompt", "Ship it?"]);
        a.extend(compatible(&server, "primary"));
        a.extend(args(&["--max-retries", "1", "--fallback-model", "backup"]));
        let out = flow(a, vec![], None).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["answer"], "from backup");
        // The output names the model that answered.
        assert_eq!(v["model"], "backup");
        assert_eq!(v["usage"]["model"], "backup");
        assert_eq!(v["usage"]["fallback_index"], 1);
        assert_eq!(v["usage"]["attempts"], primary_calls + 1);
        let models: Vec<Value> = bodies(&server)
            .await
            .iter()
            .map(|b| b["model"].clone())
            .collect();
        let mut expected = vec![json!("primary"); primary_calls as usize];
        expected.push(json!("backup"));
        assert_eq!(models, expected);
    }

    // A refused key is not something another model cures.
    let server = primary_fails(api_error(401, "invalid_request_error", "invalid_api_key")).await;
    let mut a = args(&["delegate", "--prompt", "Ship it?"]);
    a.extend(compatible(&server, "primary"));
    a.extend(args(&["--fallback-model", "backup"]));
    let out = flow(a, vec![], None).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("401"), "{stderr}");
    assert_eq!(bodies(&server).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_prompt_file_with_variables_goes_on_the_wire_with_its_parameters() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(completion("file-model", r#"{"label":"bug"}"#)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("triage.prompt.yml");
    std::fs::write(
        &file,
        r#"name: Triage
model: file-model
modelParameters:
  temperature: 0.2
  maxTokens: 300
messages:
  - role: system
    content: You label issues of {{repo}}.
  - role: user
    content: "Label this: {{title}}"
responseFormat: json_schema
jsonSchema: |-
  {"name": "label", "strict": true, "schema": {"type": "object", "properties": {"label": {"type": "string"}}, "required": ["label"], "additionalProperties": false}}
"#,
    )
    .unwrap();
    let a = args(&[
        "delegate",
        "--json",
        "--provider",
        "compatible",
        "--base-url",
        &format!("{}/v1", server.uri()),
        "--prompt-file",
        &file.display().to_string(),
        "--var",
        "repo=octo/app",
        "--var",
        "title=Crash on start",
    ]);
    let out = flow(a, vec![], None).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["answer"], json!({"label": "bug"}));
    // Usage: tokens, model, cache, attempts.
    assert_eq!(v["usage"]["prompt_tokens"], 11);
    assert_eq!(v["usage"]["completion_tokens"], 7);
    assert_eq!(v["usage"]["cached_tokens"], 4);
    assert_eq!(v["usage"]["from_cache"], false);
    assert_eq!(v["usage"]["attempts"], 1);
    let body = &bodies(&server).await[0];
    assert_eq!(body["model"], "file-model");
    assert_eq!(
        body["messages"],
        json!([
            {"role": "system", "content": "You label issues of octo/app."},
            {"role": "user", "content": "Label this: Crash on start"}
        ])
    );
    assert_eq!(body["temperature"], 0.2);
    assert_eq!(body["max_completion_tokens"], 300);
    assert_eq!(body["response_format"]["json_schema"]["name"], "label");
    // The request conforms to the official CreateChatCompletionRequest schema.
    let mut doc: Value = serde_json::from_str(SCHEMAS).unwrap();
    doc["$ref"] = json!("#/$defs/CreateChatCompletionRequest");
    let validator = jsonschema::validator_for(&doc).unwrap();
    let errors: Vec<String> = validator.iter_errors(body).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}\n{body:#}");

    // A typo'd key fails with the key and its line, before any request.
    std::fs::write(
        &file,
        "model: file-model\nmessages:\n  - role: user\n    contnet: hi\n",
    )
    .unwrap();
    let a = args(&[
        "delegate",
        "--provider",
        "compatible",
        "--base-url",
        &format!("{}/v1", server.uri()),
        "--prompt-file",
        &file.display().to_string(),
    ]);
    let out = flow(a, vec![], None).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("contnet") && stderr.contains("line 4"),
        "{stderr}"
    );
    server.verify().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn choices_send_an_enum_in_the_strict_schema_and_max_tokens_on_every_request() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(completion("m", r#"{"choice":"yes","reason":"green"}"#)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let mut a = args(&[
        "delegate",
        "--prompt",
        "Ship it?",
        "--choices",
        "yes,no,later",
        "--max-tokens",
        "64",
    ]);
    a.extend(compatible(&server, "m"));
    let out = flow(a, vec![], None).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "yes\n");
    let body = &bodies(&server).await[0];
    assert_eq!(body["max_completion_tokens"], 64);
    insta::assert_json_snapshot!("choices_wire_schema", body["response_format"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_budget_stops_the_second_paid_call() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion(
            "m",
            r#"{"likely_cause":"flaky","suggested_next_step":"retry"}"#,
        )))
        .mount(&server)
        .await;
    // Two alerts would need two triage calls of 18 tokens; the budget allows one.
    let dir = tempfile::tempdir().unwrap();
    let file = crate::llm::burst_file(dir.path());
    let mut a = args(&[
        "monitor",
        "--json",
        "--from-file",
        &file.display().to_string(),
        "--rules",
        &two_alert_rules(dir.path()),
        "--triage",
        "--token-budget",
        "10",
        "--cache",
        "none",
    ]);
    a.extend(compatible(&server, "m"));
    let out = flow(a, vec![], None).await;
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    // The monitor replays the history through the issue lifecycle: each new problem is
    // triaged when its issue is opened, so the first paid call goes to a problem that
    // recovered before the end of the history; one problem is still open.
    let alerts = v["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{v}");
    // The first call spends 18 tokens > 10: the next is refused without a request.
    assert_eq!(bodies(&server).await.len(), 1, "{v}");
    let refused = alerts[0]["triage_error"].as_str().unwrap();
    assert!(
        refused.contains("budget") && refused.contains("18 used"),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn flow_config_names_the_origin_of_each_value_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".github")).unwrap();
    std::fs::write(
        dir.path().join(".github/flow.yml"),
        "llm:\n  model: file-model\n  timeout_secs: 30\ncache:\n  ttl_secs: 120\n",
    )
    .unwrap();
    let out = flow(
        args(&[
            "config",
            "--json",
            "--timeout-secs",
            "5",
            "--api-key",
            "sk-flag-secret",
        ]),
        vec![
            ("FLOW_LLM_MODEL", "env-model".into()),
            ("FLOW_CACHE_URL", "redis://:hunter2@cache:6379".into()),
            ("GITHUB_TOKEN", "ghs_env_secret".into()),
        ],
        Some(dir.path().to_path_buf()),
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for secret in ["sk-flag-secret", "hunter2", "ghs_env_secret"] {
        assert!(!stdout.contains(secret), "{secret} leaked: {stdout}");
    }
    let v: Value = serde_json::from_str(&stdout).unwrap();
    let entry = |key: &str| {
        v["settings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["key"] == key)
            .unwrap_or_else(|| panic!("no {key} in {v}"))
            .clone()
    };
    assert_eq!(v["file"]["path"], "./.github/flow.yml");
    let model = entry("llm.model");
    assert_eq!(model["value"], "env-model");
    assert_eq!(
        model["origin"],
        json!({"source": "env", "var": "FLOW_LLM_MODEL"})
    );
    let timeout = entry("llm.timeout_secs");
    assert_eq!(timeout["value"], 5);
    assert_eq!(
        timeout["origin"],
        json!({"source": "flag", "flag": "--timeout-secs"})
    );
    let ttl = entry("cache.ttl_secs");
    assert_eq!(ttl["value"], 120);
    assert_eq!(
        ttl["origin"],
        json!({"source": "file", "path": "./.github/flow.yml", "key": "cache.ttl_secs"})
    );
    assert_eq!(entry("llm.max_retries")["origin"]["source"], "default");
    assert_eq!(entry("llm.api_key")["value"], "[redacted]");
    assert_eq!(entry("cache.url")["value"], "[redacted]");
    assert_eq!(entry("github.token")["value"], "[redacted]");
    assert_eq!(entry("cache.backend")["value"], "redis");
    assert_eq!(
        entry("cache.backend")["origin"],
        json!({"source": "inferred", "from": "FLOW_CACHE_URL"})
    );
    assert_eq!(entry("llm.provider")["value"], "openai");
    // --for narrows to what one command uses.
    let out = flow(
        args(&["config", "--json", "--for", "delegate"]),
        vec![],
        Some(dir.path().to_path_buf()),
    )
    .await;
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let keys: Vec<&str> = v["settings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap())
        .collect();
    assert!(
        keys.contains(&"llm.model") && keys.contains(&"cache.ttl_secs"),
        "{keys:?}"
    );
    assert!(
        !keys.iter().any(|k| k.starts_with("telemetry.")),
        "{keys:?}"
    );
    // Text mode says the same.
    let out = flow(
        args(&["config"]),
        vec![("FLOW_LLM_MODEL", "env-model".into())],
        Some(dir.path().to_path_buf()),
    )
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("env FLOW_LLM_MODEL"), "{text}");
    assert!(
        text.contains("file ./.github/flow.yml: cache.ttl_secs"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_actions_step_with_only_the_workflow_token_makes_no_llm_call() {
    let dir = tempfile::tempdir().unwrap();
    let file = crate::llm::burst_file(dir.path());
    let output = dir.path().join("output");
    let out = flow(
        vec![],
        vec![
            ("GITHUB_ACTIONS", "true".into()),
            ("GITHUB_OUTPUT", output.display().to_string()),
            ("INPUT_COMMAND", "monitor".into()),
            ("INPUT_JSON", "true".into()),
            ("INPUT_FROM-FILE", file.display().to_string()),
            // What the action always passes, and what the runner sets.
            ("INPUT_GITHUB-TOKEN", "ghs_workflow_token".into()),
            ("GITHUB_TOKEN", "ghs_workflow_token".into()),
            ("INPUT_TRIAGE", String::new()),
            ("INPUT_PROVIDER", String::new()),
        ],
        None,
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An open alert, and no triage tried: no error, no warning about it.
    let outputs = std::fs::read_to_string(&output).unwrap();
    let (_, rest) = outputs
        .split_once("json<<")
        .unwrap_or_else(|| panic!("{outputs}"));
    let (delimiter, rest) = rest.split_once('\n').unwrap();
    let (json, _) = rest.split_once(&format!("\n{delimiter}")).unwrap();
    let v: Value = serde_json::from_str(json).unwrap();
    let alerts = v["alerts"].as_array().unwrap();
    assert!(!alerts.is_empty(), "{v}");
    for a in alerts {
        assert!(
            a.get("triage").is_none() && a.get("triage_error").is_none(),
            "{a}"
        );
    }
    assert!(!stdout.contains("triage unavailable"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn github_models_without_models_read_is_one_clear_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/inference/chat/completions"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({
            "error": {"code": "no_access", "message": "No access to model: openai/gpt-4o-mini"}
        })))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let file = crate::llm::burst_file(dir.path());
    let output = dir.path().join("output");
    let out = flow(
        vec![],
        vec![
            ("GITHUB_ACTIONS", "true".into()),
            ("GITHUB_OUTPUT", output.display().to_string()),
            ("INPUT_COMMAND", "monitor".into()),
            ("INPUT_FROM-FILE", file.display().to_string()),
            ("INPUT_GITHUB-TOKEN", "ghs_workflow_token".into()),
            ("INPUT_PROVIDER", "github-models".into()),
            ("INPUT_BASE-URL", format!("{}/inference", server.uri())),
            ("INPUT_TRIAGE", "true".into()),
            ("INPUT_RULES", two_alert_rules(dir.path())),
        ],
        None,
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    // Seven problems over the history (six recovered before its end, one open), one request,
    // one error naming the permission; the issues are still reported.
    assert_eq!(bodies(&server).await.len(), 1);
    assert!(stdout.contains("6 problem(s) recovered"), "{stdout}");
    assert!(stdout.contains("1 alert(s) open"), "{stdout}");
    let errors: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("::") && l.contains("models: read"))
        .collect();
    assert_eq!(errors.len(), 1, "{stdout}");
    assert!(errors[0].starts_with("::error::"), "{stdout}");
    assert!(
        !stdout
            .lines()
            .any(|l| l.starts_with("::warning") && l.contains("triage")),
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("ghs_workflow_token").count(),
        1,
        "only the mask: {stdout}"
    );
}
