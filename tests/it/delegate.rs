//! delegate through the stack `configure` builds: HttpClient → Retry → Cached (memory), against
//! a local OpenAI-shaped server.

use std::collections::HashMap;

use flow_orchestrator::{ErrorKind, FlowConfig, Orchestrator};
use wiremock::MockServer;
use wiremock::matchers::{header, method, path};

use crate::openai;

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct Verdict {
    ship: bool,
    reason: String,
}

fn orchestrator(server: &MockServer, file: &str) -> Orchestrator {
    let vars: HashMap<&str, String> = HashMap::from([
        ("OPENAI_BASE_URL", format!("{}/v1", server.uri())),
        ("OPENAI_API_KEY", "sk-e2e-delegate".to_owned()),
        ("FLOW_LLM_MODEL", "gpt-4o-mini".to_owned()),
    ]);
    let env = move |k: &str| vars.get(k).cloned();
    let config = FlowConfig::from_yaml(file)
        .unwrap()
        .apply_env(&env)
        .unwrap();
    Orchestrator::configure(&config, &env)
        .unwrap()
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_typed_decision_is_asked_once_and_then_served_from_the_cache() {
    let server = MockServer::start().await;
    wiremock::Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", "Bearer sk-e2e-delegate"))
        .respond_with(
            wiremock::ResponseTemplate::new(200).set_body_json(openai::completion(
                r#"{"ship":true,"reason":"all checks passed"}"#,
            )),
        )
        .mount(&server)
        .await;
    let o = orchestrator(&server, "cache:\n  backend: memory\n  ttl_secs: 60\n");

    for _ in 0..2 {
        let d = o
            .delegate::<Verdict>(Some("You are a release manager."), "Ship 1.2.0?")
            .await
            .unwrap();
        assert!(d.value.ship);
        assert_eq!(d.value.reason, "all checks passed");
    }
    let sent = openai::requests(&server).await;
    assert_eq!(sent.len(), 1, "the second answer came from the cache");
    assert_eq!(sent[0]["model"], "gpt-4o-mini");
    assert_eq!(sent[0]["response_format"]["json_schema"]["strict"], true);
}

#[tokio::test]
async fn without_a_cache_every_call_reaches_the_server_and_errors_are_typed() {
    let server = MockServer::start().await;
    wiremock::Mock::given(method("POST"))
        .respond_with(
            wiremock::ResponseTemplate::new(401).set_body_json(serde_json::json!({
                "error": {"message": "Incorrect API key provided: sk-e2e-*****gate.",
                          "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}
            })),
        )
        .mount(&server)
        .await;
    let o = orchestrator(&server, "cache:\n  backend: none\nllm:\n  max_retries: 2\n");
    let e = o.delegate_text(None, "hello").await.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Llm(_)), "{e}");
    assert!(!e.is_retryable());
    assert!(!e.to_string().contains("sk-e2e-delegate"), "{e}");
    // A 401 is not retried.
    assert_eq!(openai::requests(&server).await.len(), 1);
}
