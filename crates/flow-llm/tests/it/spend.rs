//! What an author adds up: fallback to another model in one call, zero-usage cache hits,
//! soft and hard token budgets.

use std::sync::Arc;
use std::time::Duration;

use flow_llm::{
    Budget, ChatModel, ChatModelExt, ChatRequest, Enforcement, ErrorKind, Message, delegate,
    worst_case_tokens,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{api_error, client, completion};

fn ask() -> ChatRequest {
    ChatRequest::new("gpt-4o").message(Message::user("Which test is flaky?"))
}

/// A completion whose usage is `prompt` + `completion` tokens.
fn small(content: &str, prompt: u64, completion_tokens: u64) -> Value {
    let mut body = completion(content);
    body["usage"] = json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens
    });
    body
}

#[tokio::test]
async fn or_fallback_model_asks_the_same_server_for_another_model() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({"model": "gpt-4o"})))
        .respond_with(ResponseTemplate::new(429).set_body_json(api_error(
            "You exceeded your current quota",
            "insufficient_quota",
            json!("insufficient_quota"),
        )))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({"model": "gpt-4o-mini"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion("the cache test")))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let model = c.clone().or_fallback_model(c, "gpt-4o-mini");
    let r = model.complete(&ask()).await.unwrap();
    assert_eq!(r.text(), Some("the cache test"));
    assert_eq!(r.meta.fallback_index, 1);
    assert_eq!(r.meta.model, "gpt-4o-mini");
    assert_eq!(r.meta.attempts, 2, "one attempt per model");
    assert_eq!(
        format!("{model:?}"),
        r#"Fallback { chain: ["(request model)", "gpt-4o-mini"] }"#
    );
}

#[tokio::test]
async fn a_401_does_not_fall_back_to_another_model() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_json(api_error(
            "bad key",
            "invalid_request_error",
            json!("invalid_api_key"),
        )))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let e = c
        .clone()
        .or_fallback_model(c, "gpt-4o-mini")
        .complete(&ask())
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(401));
}

#[derive(Debug, Deserialize, JsonSchema)]
struct Flaky {
    test: String,
}

#[tokio::test]
async fn a_cache_hit_spends_zero_tokens_and_keeps_the_original_usage_apart() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(completion(r#"{"test":"it::cache"}"#)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let model = client(&server)
        .with_memory_cache(server.uri())
        .unwrap()
        .with_budget(Budget::unlimited());
    let first = delegate::<Flaky>(&model, ask()).await.unwrap();
    assert!(!first.cached);
    assert_eq!(first.usage.total_tokens, 1163);
    assert_eq!(first.original_usage, first.usage);
    assert_eq!(first.response.spent_usage().total_tokens, 1163);

    let second = delegate::<Flaky>(&model, ask()).await.unwrap();
    assert_eq!(second.value.test, "it::cache");
    assert!(second.cached);
    assert!(second.response.meta.is_cached());
    assert_eq!(
        second.usage,
        flow_llm::Usage::default(),
        "a hit spends nothing"
    );
    assert_eq!(second.original_usage.total_tokens, 1163);
    assert_eq!(second.original_usage.cached_tokens(), 1024);
    assert_eq!(
        second.response.usage.unwrap().total_tokens,
        1163,
        "the wire usage is kept"
    );
    assert_eq!(second.response.spent_usage().total_tokens, 0);

    // Summing per-decision usage gives what the budget counted: once.
    let totals = model.accounting().totals();
    assert_eq!(
        totals.total_tokens,
        first.usage.total_tokens + second.usage.total_tokens
    );
    assert_eq!((totals.calls, totals.cache_hits), (1, 1));
}

#[tokio::test]
async fn a_soft_budget_lets_the_crossing_call_run_then_refuses() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion("ok")))
        .expect(1)
        .mount(&server)
        .await;
    let budget = Budget::unlimited().with_max_tokens(1000);
    assert_eq!(budget.enforcement, Enforcement::Soft, "soft is the default");
    let m = client(&server).with_budget(budget);
    // Nothing is spent yet: the call runs, and its 1,163 tokens cross the limit of 1,000.
    m.complete(&ask()).await.unwrap();
    assert_eq!(m.accounting().totals().total_tokens, 1163);
    let e = m.complete(&ask()).await.unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::BudgetExceeded);
    assert!(e.to_string().contains("token budget of 1000"), "{e}");
}

#[tokio::test]
async fn a_hard_budget_refuses_a_call_that_could_cross_it_before_any_request() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(small("ok", 20, 30)))
        .expect(1)
        .mount(&server)
        .await;
    let req = ask().with_max_completion_tokens(200);
    let worst = worst_case_tokens(&req).unwrap();
    let json_len = serde_json::to_vec(&req).unwrap().len() as u64;
    assert_eq!(
        worst,
        json_len + 200,
        "prompt bound (bytes of JSON) plus the cap"
    );
    assert!(worst_case_tokens(&ask()).is_none(), "no cap, no bound");

    // Room for exactly one worst case, plus what the first call really spends.
    let m = client(&server).with_budget(Budget::unlimited().with_max_tokens(worst + 49).hard());
    m.complete(&req).await.unwrap();
    assert_eq!(m.accounting().totals().total_tokens, 50);
    // 50 spent + the worst case > worst + 49: refused although only 50 of it were used.
    let e = m.complete(&req).await.unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::BudgetExceeded);
    assert!(e.to_string().contains("could be crossed"), "{e}");
    assert!(e.to_string().contains("50 spent"), "{e}");

    // A request without a completion cap cannot be bounded: refused, naming the field.
    let e = m.complete(&ask()).await.unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::BudgetExceeded);
    assert!(e.to_string().contains("max_completion_tokens"), "{e}");
    let t = m.accounting().totals();
    assert_eq!((t.calls, t.failures, t.total_tokens), (1, 0, 50));
}

#[tokio::test]
async fn a_hard_budget_holds_under_concurrent_calls() {
    let server = MockServer::start().await;
    // The calls overlap: each answer waits, so all four checks run while two are in flight.
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(small("ok", 20, 30))
                .set_delay(Duration::from_millis(200)),
        )
        .mount(&server)
        .await;
    let req = ask().with_max_completion_tokens(100);
    let worst = worst_case_tokens(&req).unwrap();
    let m = Arc::new(
        client(&server).with_budget(Budget::unlimited().with_max_tokens(2 * worst + 10).hard()),
    );
    let calls = (0..4).map(|_| {
        let m = Arc::clone(&m);
        let req = req.clone();
        tokio::spawn(async move { m.complete(&req).await })
    });
    let results = futures::future::join_all(calls).await;
    let ok = results
        .iter()
        .filter(|r| r.as_ref().unwrap().is_ok())
        .count();
    assert_eq!(ok, 2, "only two worst cases fit the limit");
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
    let t = m.accounting().totals();
    assert!(t.total_tokens <= 2 * worst + 10);
    assert_eq!(t.total_tokens, 100);
}
