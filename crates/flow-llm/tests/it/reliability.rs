//! Retries, deadlines, fallback and budgets against local servers.

use std::time::Duration;

use flow_llm::{
    Budget, ChatModel, ChatModelExt, ChatRequest, ErrorKind, Fallback, HttpClient, Message, Retry,
    RetryPolicy,
};
use serde_json::json;
use wiremock::matchers::{body_partial_json, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{RecordingSleeper, api_error, client, completion, timing};

fn ask() -> ChatRequest {
    ChatRequest::new("gpt-4o-mini").message(Message::user("What should be fixed next?"))
}

fn retrying(c: HttpClient, sleeper: &std::sync::Arc<RecordingSleeper>) -> Retry<HttpClient> {
    Retry::new(c, RetryPolicy::default()).with_timing(timing(sleeper))
}

#[tokio::test]
async fn a_429_with_retry_after_then_success() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "7")
                .set_body_json(api_error(
                    "Rate limit reached",
                    "requests",
                    json!("rate_limit_exceeded"),
                )),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion("fixed")))
        .mount(&server)
        .await;
    let sleeper = RecordingSleeper::new();
    let r = retrying(client(&server), &sleeper)
        .complete(&ask())
        .await
        .unwrap();
    assert_eq!(r.text(), Some("fixed"));
    assert_eq!(r.meta.attempts, 2);
    assert_eq!(sleeper.waits(), vec![Duration::from_secs(7)]);
}

#[tokio::test]
async fn retry_after_ms_and_http_dates_are_honoured() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).insert_header("retry-after-ms", "1250"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    let date = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(20));
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).insert_header("retry-after", date.as_str()))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion("ok")))
        .mount(&server)
        .await;
    let sleeper = RecordingSleeper::new();
    retrying(client(&server), &sleeper)
        .complete(&ask())
        .await
        .unwrap();
    let waits = sleeper.waits();
    assert_eq!(waits[0], Duration::from_millis(1250));
    assert!(
        waits[1] > Duration::from_secs(17) && waits[1] <= Duration::from_secs(20),
        "{waits:?}"
    );
}

#[tokio::test]
async fn backoff_without_server_hints_uses_capped_full_jitter() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_json(api_error(
            "The server had an error",
            "server_error",
            json!(null),
        )))
        .expect(4)
        .mount(&server)
        .await;
    let sleeper = RecordingSleeper::new();
    let policy = RetryPolicy::default();
    let e = Retry::new(client(&server), policy)
        .with_timing(timing(&sleeper))
        .complete(&ask())
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(500));
    let waits = sleeper.waits();
    assert_eq!(waits.len(), 3);
    for (i, w) in waits.iter().enumerate() {
        assert!(*w <= policy.ceiling(i as u32 + 1), "{waits:?}");
    }
}

#[tokio::test]
async fn no_retry_on_quota_client_errors_or_x_should_retry_false() {
    for (status, body, header) in [
        (
            429,
            api_error(
                "You exceeded your current quota",
                "insufficient_quota",
                json!("insufficient_quota"),
            ),
            None,
        ),
        (
            400,
            api_error("bad", "invalid_request_error", json!(null)),
            None,
        ),
        (
            401,
            api_error("no", "invalid_request_error", json!("invalid_api_key")),
            None,
        ),
        (403, api_error("no", "permission", json!(null)), None),
        (
            404,
            api_error(
                "no model",
                "invalid_request_error",
                json!("model_not_found"),
            ),
            None,
        ),
        (
            413,
            api_error("too big", "invalid_request_error", json!(null)),
            None,
        ),
        (
            422,
            api_error("unprocessable", "invalid_request_error", json!(null)),
            None,
        ),
        (
            503,
            api_error("busy", "server_error", json!(null)),
            Some("false"),
        ),
    ] {
        let server = MockServer::start().await;
        let mut t = ResponseTemplate::new(status).set_body_json(body);
        if let Some(h) = header {
            t = t.insert_header("x-should-retry", h);
        }
        Mock::given(method("POST"))
            .respond_with(t)
            .expect(1)
            .mount(&server)
            .await;
        let sleeper = RecordingSleeper::new();
        let e = retrying(client(&server), &sleeper)
            .complete(&ask())
            .await
            .unwrap_err();
        assert_eq!(e.status(), Some(status));
        assert!(sleeper.waits().is_empty(), "{status}");
    }
}

#[tokio::test]
async fn x_should_retry_true_retries_a_client_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).insert_header("x-should-retry", "true"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion("ok")))
        .mount(&server)
        .await;
    let sleeper = RecordingSleeper::new();
    let r = retrying(client(&server), &sleeper)
        .complete(&ask())
        .await
        .unwrap();
    assert_eq!(r.meta.attempts, 2);
}

#[tokio::test]
async fn never_sleeps_past_the_deadline() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "30"))
        .expect(1)
        .mount(&server)
        .await;
    let sleeper = RecordingSleeper::new();
    let e = retrying(client(&server), &sleeper)
        .complete(&ask().with_timeout(Duration::from_secs(10)))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(429));
    assert!(sleeper.waits().is_empty());
}

#[tokio::test]
async fn an_unrepresentable_backoff_is_past_the_deadline_not_a_panic() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .expect(1)
        .mount(&server)
        .await;
    let sleeper = RecordingSleeper::new();
    let policy = RetryPolicy::default()
        .with_base_delay(Duration::MAX)
        .with_max_delay(Duration::MAX);
    let e = Retry::new(client(&server), policy)
        .with_timing(timing(&sleeper))
        .complete(&ask().with_timeout(Duration::from_secs(10)))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(503));
    assert!(sleeper.waits().is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_tokio_sleeper_waits_in_virtual_time() {
    // Paused time: the real 8 s of backoff ceilings pass instantly.
    let flaky = flaky_model(2);
    let started = tokio::time::Instant::now();
    let r = Retry::new(
        &flaky,
        RetryPolicy::default().with_base_delay(Duration::from_secs(4)),
    )
    .complete(&ask())
    .await
    .unwrap();
    assert_eq!(r.meta.attempts, 3);
    assert!(started.elapsed() <= Duration::from_secs(12));
}

/// A model that fails with 503 `failures` times, then answers.
fn flaky_model(failures: usize) -> impl ChatModel {
    struct Flaky(std::sync::atomic::AtomicUsize, usize);
    #[async_trait::async_trait]
    impl ChatModel for Flaky {
        async fn complete(&self, _: &ChatRequest) -> flow_llm::Result<flow_llm::ChatResponse> {
            if self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < self.1 {
                return Err(flow_llm::Error::new(ErrorKind::Timeout, "slow"));
            }
            Ok(serde_json::from_value(completion("ok")).unwrap())
        }
    }
    Flaky(std::sync::atomic::AtomicUsize::new(0), failures)
}

#[tokio::test]
async fn server_errors_until_retries_run_out_then_fallback() {
    let primary = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(502).set_body_string("Bad Gateway"))
        .expect(3)
        .mount(&primary)
        .await;
    let secondary = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({"model": "llama3.2"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion("from the fallback")))
        .expect(1)
        .mount(&secondary)
        .await;
    let sleeper = RecordingSleeper::new();
    let policy = RetryPolicy::default().with_max_retries(2);
    let chain = Fallback::new(Retry::new(client(&primary), policy).with_timing(timing(&sleeper)))
        .then_model(
            Retry::new(client(&secondary), policy).with_timing(timing(&sleeper)),
            "llama3.2",
        );
    let r = chain.complete(&ask()).await.unwrap();
    assert_eq!(r.text(), Some("from the fallback"));
    assert_eq!(
        (r.meta.fallback_index, r.meta.model.as_str()),
        (1, "llama3.2")
    );
    assert_eq!(sleeper.waits().len(), 2);
}

#[tokio::test]
async fn fallback_on_quota_and_context_length_but_not_on_401() {
    let quota = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).set_body_json(api_error(
            "quota",
            "insufficient_quota",
            json!("insufficient_quota"),
        )))
        .mount(&quota)
        .await;
    let context = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(api_error(
            "too long",
            "invalid_request_error",
            json!("context_length_exceeded"),
        )))
        .mount(&context)
        .await;
    let good = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion("ok")))
        .mount(&good)
        .await;
    let r = Fallback::new(client(&quota))
        .then(client(&context))
        .then(client(&good))
        .complete(&ask())
        .await
        .unwrap();
    assert_eq!(r.meta.fallback_index, 2);

    let denied = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_json(api_error(
            "no",
            "invalid_request_error",
            json!("invalid_api_key"),
        )))
        .mount(&denied)
        .await;
    let e = client(&denied)
        .or_fallback(client(&good))
        .complete(&ask())
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(401));
}

#[tokio::test]
async fn an_exhausted_chain_names_every_failure() {
    let down = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&down)
        .await;
    let e = Fallback::new(client(&down))
        .then_model(client(&down), "other")
        .complete(&ask())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::Exhausted);
    assert!(
        e.to_string().contains("[0]")
            && e.to_string().contains("[1]")
            && e.to_string().contains("other"),
        "{e}"
    );
}

#[tokio::test]
async fn budgets_count_usage_and_refuse_when_spent() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion("ok")))
        .expect(3)
        .mount(&server)
        .await;
    let m = client(&server).with_budget(Budget::unlimited().with_max_calls(2));
    m.complete(&ask()).await.unwrap();
    m.complete(&ask()).await.unwrap();
    let e = m.complete(&ask()).await.unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::BudgetExceeded);
    assert!(e.to_string().contains("call budget of 2"), "{e}");
    let t = m.accounting().totals();
    assert_eq!(
        (t.calls, t.prompt_tokens, t.cached_tokens, t.total_tokens),
        (2, 2234, 2048, 2326)
    );

    let m = client(&server).with_budget(Budget::unlimited().with_max_tokens(1000));
    let _ = m.complete(&ask()).await;
    let e = m.complete(&ask()).await.unwrap_err();
    assert!(e.to_string().contains("token budget of 1000"), "{e}");
}

#[tokio::test]
async fn retries_are_counted() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion("ok")))
        .mount(&server)
        .await;
    let sleeper = RecordingSleeper::new();
    let m = Retry::new(client(&server), RetryPolicy::default())
        .with_timing(timing(&sleeper))
        .with_budget(Budget::unlimited());
    m.complete(&ask()).await.unwrap();
    let t = m.accounting().totals();
    assert_eq!((t.calls, t.retries), (1, 2));
}

#[tokio::test]
async fn retries_of_failed_calls_are_counted() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_body_string("down"))
        .expect(4)
        .mount(&server)
        .await;
    let sleeper = RecordingSleeper::new();
    let m = Retry::new(client(&server), RetryPolicy::default().with_max_retries(2))
        .with_timing(timing(&sleeper))
        .with_budget(Budget::unlimited());
    let e = m.complete(&ask()).await.unwrap_err();
    assert_eq!((e.status(), e.attempts()), (Some(503), 3));
    let t = m.accounting().totals();
    assert_eq!(
        (t.calls, t.failures, t.attempts, t.retries),
        (0, 1, 3, 2),
        "three requests reached the API"
    );
    // A failure that is not retried is one attempt.
    let bare = client(&server).with_budget(Budget::unlimited());
    let _ = bare.complete(&ask()).await.unwrap_err();
    let t = bare.accounting().totals();
    assert_eq!((t.failures, t.attempts, t.retries), (1, 1, 0));
}

#[tokio::test]
async fn attempts_on_every_model_of_a_fallback_chain_are_counted() {
    let primary = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(502).set_body_string("Bad Gateway"))
        .expect(6)
        .mount(&primary)
        .await;
    let secondary = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion("ok")))
        .up_to_n_times(1)
        .mount(&secondary)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&secondary)
        .await;
    let sleeper = RecordingSleeper::new();
    let policy = RetryPolicy::default().with_max_retries(2);
    let chain = Fallback::new(Retry::new(client(&primary), policy).with_timing(timing(&sleeper)))
        .then(Retry::new(client(&secondary), RetryPolicy::none()))
        .with_budget(Budget::unlimited());
    // Three on the primary, one answer from the secondary.
    let r = chain.complete(&ask()).await.unwrap();
    assert_eq!((r.meta.fallback_index, r.meta.attempts), (1, 4));
    // Three on the primary, one failure on the secondary: the chain is exhausted.
    let e = chain.complete(&ask()).await.unwrap_err();
    assert_eq!((e.kind(), e.attempts()), (&ErrorKind::Exhausted, 4));
    let t = chain.accounting().totals();
    assert_eq!((t.calls, t.failures, t.attempts, t.retries), (1, 1, 8, 6));
}
