//! A shared Redis cache between `flow` invocations: answers are keyed by the model that
//! answers (and every parameter), so two models never serve each other's answers.

use std::process::Command;

use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::redis_server::RedisServer;

fn completion(model: &str, content: &str) -> Value {
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
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    })
}

async fn delegate(server: &MockServer, redis: &str, model: &str) -> String {
    let args = vec![
        "delegate".to_owned(),
        "--provider".into(),
        "compatible".into(),
        "--base-url".into(),
        format!("{}/v1", server.uri()),
        "--model".into(),
        model.into(),
        "--cache".into(),
        "redis".into(),
        "--redis-url".into(),
        redis.into(),
        "--prompt".into(),
        "Ship it?".into(),
    ];
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_flow"))
            .args(&args)
            .env_remove("GITHUB_ACTIONS")
            .env_remove("OPENAI_API_KEY")
            .env_remove("GITHUB_TOKEN")
            .env_remove("FLOW_CONFIG")
            .env_remove("FLOW_LLM_PROVIDER")
            .env_remove("FLOW_LLM_MODEL")
            .env_remove("OPENAI_BASE_URL")
            .env_remove("FLOW_CACHE_URL")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_models_through_one_redis_each_get_their_own_answer() {
    let redis = RedisServer::start();
    let server = MockServer::start().await;
    for model in ["model-a", "model-b"] {
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .and(body_partial_json(json!({"model": model})))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(completion(model, &format!("answer of {model}"))),
            )
            .expect(1)
            .mount(&server)
            .await;
    }
    assert_eq!(
        delegate(&server, &redis.url(), "model-a").await,
        "answer of model-a\n"
    );
    assert_eq!(
        delegate(&server, &redis.url(), "model-b").await,
        "answer of model-b\n"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
    // The same model again, from another process: served by Redis, no request.
    assert_eq!(
        delegate(&server, &redis.url(), "model-a").await,
        "answer of model-a\n"
    );
    assert_eq!(
        delegate(&server, &redis.url(), "model-b").await,
        "answer of model-b\n"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
    server.verify().await;
}
