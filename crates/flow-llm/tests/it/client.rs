//! The HTTP client: success, errors, providers, secrets.

use std::time::Duration;

use flow_llm::{
    ChatModel, ChatRequest, ClientConfig, ErrorKind, FinishReason, HttpClient, Message, Provider,
};
use secrecy::SecretString;
use serde_json::json;
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{KEY, api_error, capture_logs, client, completion, config};

fn ask() -> ChatRequest {
    ChatRequest::new("gpt-4o-mini").message(Message::user("Is the build green?"))
}

#[tokio::test]
async fn success_parses_content_usage_and_meta() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .and(body_partial_json(
            json!({"model": "gpt-4o-mini", "messages": [{"role": "user"}]}),
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(completion("yes"))
                .insert_header("x-request-id", "req_123"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let r = client(&server).complete(&ask()).await.unwrap();
    assert_eq!(r.text(), Some("yes"));
    assert_eq!(r.first().unwrap().finish_reason, Some(FinishReason::Stop));
    let u = r.usage.unwrap();
    assert_eq!(
        (u.prompt_tokens, u.completion_tokens, u.cached_tokens()),
        (1117, 46, 1024)
    );
    assert_eq!(r.meta.request_id.as_deref(), Some("req_123"));
    assert_eq!(
        (
            r.meta.provider.as_str(),
            r.meta.model.as_str(),
            r.meta.attempts
        ),
        ("compatible", "gpt-4o-mini", 1)
    );
}

#[tokio::test]
async fn empty_model_uses_the_default_and_reasoning_quirks_apply() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion("ok")))
        .mount(&server)
        .await;
    let c = HttpClient::new(config(&server).with_model("o3-mini")).unwrap();
    let req = ChatRequest::new("")
        .message(Message::user("hi"))
        .with_temperature(0.3)
        .with_top_p(0.5);
    let (r, logs) = capture_logs(c.complete(&req)).await;
    r.unwrap();
    let sent: serde_json::Value = server.received_requests().await.unwrap()[0]
        .body_json()
        .unwrap();
    assert_eq!(sent["model"], "o3-mini");
    assert!(
        sent.get("temperature").is_none() && sent.get("top_p").is_none(),
        "{sent}"
    );
    assert!(
        logs.contains("temperature") && logs.contains("top_p") && logs.contains("WARN"),
        "{logs}"
    );
}

#[tokio::test]
async fn unauthorized_is_not_retryable_and_hides_the_key() {
    let server = MockServer::start().await;
    let echoed = format!("Incorrect API key provided: {KEY}.");
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_json(api_error(
            &echoed,
            "invalid_request_error",
            json!("invalid_api_key"),
        )))
        .mount(&server)
        .await;
    let c = client(&server);
    let (e, logs) = capture_logs(c.complete(&ask())).await;
    let e = e.unwrap_err();
    assert_eq!(e.status(), Some(401));
    assert_eq!(e.code(), Some("invalid_api_key"));
    assert!(!e.is_retryable() && !e.is_fallbackable());
    for text in [e.to_string(), format!("{e:?}"), format!("{c:?}"), logs] {
        assert!(!text.contains(KEY) && !text.contains("SECRET"), "{text}");
    }
    assert!(e.to_string().contains("check the API key"), "{e}");
}

#[tokio::test]
async fn error_codes_may_be_numbers_absent_or_bodies_not_json() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(503).set_body_string("<html>upstream connect error</html>"),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).set_body_json(api_error(
            "slow down",
            "rate_limit",
            json!(429),
        )))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(400).set_body_json(json!({"error": {"message": "bad"}})),
        )
        .mount(&server)
        .await;
    let c = client(&server);
    let e = c.complete(&ask()).await.unwrap_err();
    assert!(
        e.to_string().contains("upstream connect error") && e.is_retryable(),
        "{e}"
    );
    let e = c.complete(&ask()).await.unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(429), Some("429")));
    let e = c.complete(&ask()).await.unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(400), None));
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn invalid_json_body_is_an_invalid_response() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw("{\"choices\": [", "application/json"),
        )
        .mount(&server)
        .await;
    let e = client(&server).complete(&ask()).await.unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::InvalidResponse);
    assert!(e.to_string().contains("not a chat completion"), "{e}");
}

#[tokio::test]
async fn a_slow_server_times_out() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(completion("late"))
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&server)
        .await;
    let c = HttpClient::new(config(&server).with_timeout(Duration::from_millis(200))).unwrap();
    let e = c.complete(&ask()).await.unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::Timeout, "{e}");
    assert!(e.is_retryable());
    // The per-call deadline is also a timeout, even when the client's is longer.
    let c = client(&server);
    let e = c
        .complete(&ask().with_timeout(Duration::from_millis(150)))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::Timeout, "{e}");
}

#[tokio::test]
async fn a_truncated_body_is_a_connection_error() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 65536];
        let _ = sock.read(&mut buf).await;
        let body = completion("cut").to_string();
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        sock.write_all(head.as_bytes()).await.unwrap();
        sock.write_all(&body.as_bytes()[..body.len() / 2])
            .await
            .unwrap();
        sock.shutdown().await.unwrap();
    });
    let c = HttpClient::new(ClientConfig::compatible(
        &format!("http://{addr}/v1"),
        None,
        "m",
    ))
    .unwrap();
    let e = c.complete(&ask()).await.unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::Connection, "{e}");
    assert!(e.is_retryable() && e.to_string().contains("cut off"), "{e}");
}

#[tokio::test]
async fn connection_refused_is_retryable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let c = HttpClient::new(ClientConfig::compatible(
        &format!("http://{addr}/v1"),
        None,
        "m",
    ))
    .unwrap();
    let e = c.complete(&ask()).await.unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::Connection, "{e}");
    assert!(e.is_retryable() && e.is_fallbackable());
}

#[tokio::test]
async fn github_models_errors_say_what_to_change() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/inference/chat/completions"))
        .and(header("authorization", "Bearer ghs_workflowtoken0123456789"))
        .and(header("x-github-api-version", "2022-11-28"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({"error": {"code": "no_access", "message": "No access to model: openai/gpt-4o-mini"}})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(413)
                .set_body_json(json!({"error": {"code": "tokens_limit_reached",
            "message": "Request body too large for gpt-4o-mini model. Max size: 8000 tokens."}})),
        )
        .mount(&server)
        .await;
    let cfg = ClientConfig::github_models(SecretString::from("ghs_workflowtoken0123456789"))
        .with_base_url(&format!("{}/inference", server.uri()));
    assert_eq!(cfg.provider(), &Provider::GitHubModels { org: None });
    let c = HttpClient::new(cfg).unwrap();
    let req = ChatRequest::new("").message(Message::user("hi"));
    let e = c.complete(&req).await.unwrap_err();
    assert!(e.to_string().contains("permissions: models: read"), "{e}");
    assert!(!e.to_string().contains("ghs_workflowtoken"), "{e}");
    let e = c.complete(&req).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("shorten the prompt or choose a model with a larger limit"),
        "{e}"
    );
    assert!(e.is_context_length() && e.is_fallbackable() && !e.is_retryable());
}

#[tokio::test]
async fn azure_uses_the_api_key_header_and_the_deployment() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/openai/v1/chat/completions"))
        .and(header("api-key", "azure-key-0123456789"))
        .and(body_partial_json(json!({"model": "prod-gpt4o"})))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(completion("ok"))
                .insert_header("apim-request-id", "az-1"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let c = HttpClient::new(ClientConfig::azure(
        &server.uri(),
        SecretString::from("azure-key-0123456789"),
        "prod-gpt4o",
    ))
    .unwrap();
    let r = c
        .complete(&ChatRequest::new("").message(Message::user("hi")))
        .await
        .unwrap();
    assert_eq!(
        (r.meta.provider.as_str(), r.meta.request_id.as_deref()),
        ("azure-openai", Some("az-1"))
    );
    let sent = &server.received_requests().await.unwrap()[0];
    assert!(sent.headers.get("authorization").is_none());
}

#[tokio::test]
async fn invalid_prompts_never_reach_the_server() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion("ok")))
        .expect(0)
        .mount(&server)
        .await;
    let c = client(&server);
    for bad in ["", "   ", "a\0b"] {
        let e = c
            .complete(&ChatRequest::new("gpt-4o-mini").message(Message::user(bad)))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), &ErrorKind::InvalidPrompt, "{bad:?}");
    }
    let huge = ChatRequest::new("gpt-4").message(Message::user("word ".repeat(10_000)));
    let e = c.complete(&huge).await.unwrap_err();
    assert!(e.to_string().contains("context window of 8192"), "{e}");
}

#[tokio::test]
async fn prompts_are_logged_only_at_trace_level_and_redacted() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion("the answer")))
        .mount(&server)
        .await;
    let c = client(&server);
    let req = ChatRequest::new("gpt-4o-mini")
        .message(Message::user("my token is ghp_abcdefghijklmnop0123 ok"));
    let (r, logs) = capture_logs(c.complete(&req)).await;
    r.unwrap();
    assert!(
        logs.contains("TRACE") && logs.contains("my token is [redacted] ok"),
        "{logs}"
    );
    assert!(!logs.contains("ghp_abcdefghijklmnop0123"), "{logs}");
    assert!(
        logs.contains("flow.llm.call") && logs.contains("the answer"),
        "{logs}"
    );
    for line in logs.lines().filter(|l| l.contains("my token is")) {
        assert!(line.contains("TRACE"), "{line}");
    }
}

#[tokio::test]
async fn credentials_in_the_base_url_never_reach_errors_or_debug() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let c = HttpClient::new(ClientConfig::compatible(
        &format!("http://proxyuser:hunter2-proxy-pass@{addr}/v1"),
        None,
        "m",
    ))
    .unwrap();
    assert!(!format!("{c:?}").contains("hunter2"), "{c:?}");
    let e = c.complete(&ask()).await.unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::Connection, "{e}");
    assert!(!e.to_string().contains("hunter2"), "{e}");
    assert!(!format!("{e:?}").contains("hunter2"), "{e:?}");
}
