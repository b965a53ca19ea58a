//! A shared Redis cache between `flow` invocations: answers are keyed by the model that
//! answers (and every parameter), so two models never serve each other's answers.

use std::process::Command;

use serde_json::{Value, json};

use crate::wiring::completion;
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::redis_server::RedisServer;

/// `flow delegate --json` through Redis: the answer and whether it came from the cache.
async fn delegate(server: &MockServer, redis: &str, model: &str) -> (String, bool) {
    let args = vec![
        "delegate".to_owned(),
        "--json".into(),
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
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["model"], model, "{v}");
    (
        v["answer"].as_str().unwrap().to_owned(),
        v["usage"]["from_cache"].as_bool().unwrap(),
    )
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
    let answer = |m: &str| (format!("answer of {m}"), false);
    let cached = |m: &str| (format!("answer of {m}"), true);
    assert_eq!(
        delegate(&server, &redis.url(), "model-a").await,
        answer("model-a")
    );
    assert_eq!(
        delegate(&server, &redis.url(), "model-b").await,
        answer("model-b")
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
    // The same model again, from another process: served by Redis, no request.
    assert_eq!(
        delegate(&server, &redis.url(), "model-a").await,
        cached("model-a")
    );
    assert_eq!(
        delegate(&server, &redis.url(), "model-b").await,
        cached("model-b")
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
    server.verify().await;
}
