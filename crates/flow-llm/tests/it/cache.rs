//! The cache decorator over flow-cache: hits, TTL, no-store, single flight, stale-if-error.

use std::sync::Arc;
use std::time::Duration;

use flow_cache::{Cache, ManualClock, MemoryConfig};
use flow_llm::{
    Budget, CacheStatus, Cached, ChatModel, ChatModelExt, ChatRequest, HttpClient, Message,
    ResponseFormat, RetryPolicy,
};
use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{RecordingSleeper, client, completion};

fn ask() -> ChatRequest {
    ChatRequest::new("gpt-4o-mini").message(Message::user("Is issue #12 resolved?"))
}

fn cache_with_clock() -> (Cache, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let cache = Cache::in_memory(MemoryConfig::new())
        .unwrap()
        .with_clock(clock.clone());
    (cache, clock)
}

fn cached(server: &MockServer, cache: Cache) -> Cached<HttpClient> {
    client(server)
        .with_cache(cache, server.uri())
        .unwrap()
        .with_ttl(Duration::from_secs(60))
}

#[tokio::test]
async fn a_second_identical_call_is_a_hit_and_costs_nothing() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(completion("yes"))
                .insert_header("x-request-id", "req_1"),
        )
        .expect(2)
        .mount(&server)
        .await;
    let (cache, _clock) = cache_with_clock();
    let m = cached(&server, cache).with_budget(Budget::unlimited().with_max_calls(2));
    let first = m.complete(&ask()).await.unwrap();
    assert_eq!(
        (first.meta.cache, first.meta.attempts),
        (CacheStatus::Miss, 1)
    );
    for _ in 0..3 {
        let again = m.complete(&ask()).await.unwrap();
        assert_eq!(
            (again.meta.cache, again.meta.attempts),
            (CacheStatus::Hit, 0)
        );
        assert_eq!(again.text(), Some("yes"));
        assert_eq!(
            (
                again.meta.provider.as_str(),
                again.meta.request_id.as_deref()
            ),
            ("compatible", Some("req_1"))
        );
    }
    // Hits did not spend the budget of two calls: one more call reaches the API.
    let other = ask().message(Message::user("And #13?"));
    assert_eq!(
        m.complete(&other).await.unwrap().meta.cache,
        CacheStatus::Miss
    );
    let third = ask().message(Message::user("And #14?"));
    assert_eq!(
        m.complete(&third).await.unwrap_err().kind(),
        &flow_llm::ErrorKind::BudgetExceeded
    );
    let t = m.accounting().totals();
    assert_eq!((t.calls, t.cache_hits, t.total_tokens), (2, 3, 2 * 1163));
}

#[tokio::test]
async fn ttl_per_call_and_no_store() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion("yes")))
        .expect(4)
        .mount(&server)
        .await;
    let (cache, clock) = cache_with_clock();
    let m = cached(&server, cache);
    let short = ask().with_cache_ttl(Duration::from_secs(1));
    assert_eq!(
        m.complete(&short).await.unwrap().meta.cache,
        CacheStatus::Miss
    );
    assert_eq!(
        m.complete(&short).await.unwrap().meta.cache,
        CacheStatus::Hit
    );
    clock.advance(Duration::from_secs(2));
    assert_eq!(
        m.complete(&short).await.unwrap().meta.cache,
        CacheStatus::Miss
    );
    let bypass = ask().with_no_store();
    assert_eq!(
        m.complete(&bypass).await.unwrap().meta.cache,
        CacheStatus::Bypass
    );
    assert_eq!(
        m.complete(&bypass).await.unwrap().meta.cache,
        CacheStatus::Bypass
    );
}

#[tokio::test]
async fn identical_concurrent_calls_make_one_api_call() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(completion("once"))
                .set_delay(Duration::from_millis(300)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let (cache, _clock) = cache_with_clock();
    let m = Arc::new(cached(&server, cache));
    let calls = (0..16).map(|_| {
        let m = Arc::clone(&m);
        tokio::spawn(async move { m.complete(&ask()).await.unwrap() })
    });
    let answers = futures::future::join_all(calls).await;
    let statuses: Vec<CacheStatus> = answers.into_iter().map(|a| a.unwrap().meta.cache).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == CacheStatus::Miss).count(),
        1,
        "{statuses:?}"
    );
    assert!(statuses.iter().all(|s| matches!(
        s,
        CacheStatus::Miss | CacheStatus::Coalesced | CacheStatus::Hit
    )));
}

#[tokio::test]
async fn stale_if_error_when_everything_fails() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion("yesterday's answer")))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_body_string("down"))
        .mount(&server)
        .await;
    let (cache, clock) = cache_with_clock();
    let sleeper = RecordingSleeper::new();
    let stack = Cached::new(
        flow_llm::Retry::new(client(&server), RetryPolicy::default().with_max_retries(1))
            .with_timing(crate::support::timing(&sleeper)),
        cache,
        server.uri(),
    )
    .unwrap()
    .with_ttl(Duration::from_secs(60))
    .with_stale(Duration::from_secs(3600))
    .with_budget(Budget::unlimited());
    assert_eq!(
        stack.complete(&ask()).await.unwrap().meta.cache,
        CacheStatus::Miss
    );
    clock.advance(Duration::from_secs(120));
    let r = stack.complete(&ask()).await.unwrap();
    assert_eq!(r.meta.cache, CacheStatus::Stale);
    assert!(r.meta.is_stale());
    assert_eq!(r.text(), Some("yesterday's answer"));
    assert_eq!(sleeper.waits().len(), 1);
    // The two failed attempts behind the stale answer were real API traffic.
    assert_eq!(r.meta.attempts, 2);
    let t = stack.accounting().totals();
    assert_eq!(
        (t.calls, t.stale_answers, t.attempts, t.retries),
        (1, 1, 3, 1)
    );
    // Past the stale window the failure shows.
    clock.advance(Duration::from_secs(7200));
    let e = stack.complete(&ask()).await.unwrap_err();
    assert_eq!(e.status(), Some(503));
}

#[tokio::test]
async fn a_permanent_error_is_never_masked_by_a_stale_answer() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion("old")))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"error": {"message": "revoked", "code": "invalid_api_key"}})),
        )
        .mount(&server)
        .await;
    let (cache, clock) = cache_with_clock();
    let m = cached(&server, cache).with_stale(Duration::from_secs(3600));
    m.complete(&ask()).await.unwrap();
    clock.advance(Duration::from_secs(120));
    let e = m.complete(&ask()).await.unwrap_err();
    assert_eq!(e.status(), Some(401));
}

#[tokio::test]
async fn keys_cover_scope_model_messages_parameters_and_schema() {
    let server = MockServer::start().await;
    let (cache, _clock) = cache_with_clock();
    let a = cached(&server, cache.clone());
    let b = Cached::new(client(&server), cache, "https://elsewhere/v1").unwrap();
    let base = ask();
    let key = a.key(&base).unwrap();
    assert_eq!(
        key,
        a.key(&base.clone().with_timeout(Duration::from_secs(3)))
            .unwrap(),
        "options are not part of the key"
    );
    let variants = [
        ChatRequest::new("gpt-4.1").message(Message::user("Is issue #12 resolved?")),
        ChatRequest::new("gpt-4o-mini").message(Message::user("Is issue #13 resolved?")),
        base.clone().with_temperature(0.0),
        base.clone()
            .with_response_format(ResponseFormat::JsonObject),
    ];
    for v in &variants {
        assert_ne!(a.key(v).unwrap(), key, "{v:?}");
    }
    assert_ne!(b.key(&base).unwrap(), key);
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct Answer {
    resolved: bool,
}

#[tokio::test]
async fn an_answer_that_fails_validation_is_not_served_again() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion("not json at all")))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion(r#"{"resolved":true}"#)))
        .mount(&server)
        .await;
    let (cache, _clock) = cache_with_clock();
    let m = cached(&server, cache);
    let first = flow_llm::delegate::<Answer>(&m, ask()).await.unwrap();
    assert_eq!(first.asks, 2);
    assert!(first.value.resolved);
    // The invalid first answer was dropped: the same delegation asks the API once and
    // gets a valid answer, instead of being served the invalid one and asking again.
    let again = flow_llm::delegate::<Answer>(&m, ask()).await.unwrap();
    assert_eq!(
        (again.asks, again.response.meta.cache),
        (1, CacheStatus::Miss)
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
    // And now the valid answer is the one kept.
    let third = flow_llm::delegate::<Answer>(&m, ask()).await.unwrap();
    assert_eq!(
        (third.asks, third.response.meta.cache),
        (1, CacheStatus::Hit)
    );
}

#[tokio::test]
async fn the_in_process_tier_never_outlives_the_store_entry() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion("yes")))
        .expect(3)
        .mount(&server)
        .await;
    let (cache, _clock) = cache_with_clock();
    let m = cached(&server, cache);
    assert_eq!(
        m.complete(&ask()).await.unwrap().meta.cache,
        CacheStatus::Miss
    );
    assert_eq!(
        m.complete(&ask()).await.unwrap().meta.cache,
        CacheStatus::Hit
    );
    // Removed behind the decorator's back (another handle, another process): not served.
    m.cache().remove(&m.key(&ask()).unwrap()).await;
    assert_eq!(
        m.complete(&ask()).await.unwrap().meta.cache,
        CacheStatus::Miss
    );
    assert_eq!(
        m.complete(&ask()).await.unwrap().meta.cache,
        CacheStatus::Hit
    );
    // Invalidated through the decorator: not served either.
    m.invalidate(&ask()).await;
    assert_eq!(
        m.complete(&ask()).await.unwrap().meta.cache,
        CacheStatus::Miss
    );
}

#[tokio::test]
async fn a_spent_budget_still_serves_cache_hits() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion("yes")))
        .expect(2)
        .mount(&server)
        .await;
    let other = ask().message(Message::user("And #13?"));

    // The call budget: one API call, then only answers the cache holds.
    let (cache, _clock) = cache_with_clock();
    let m = cached(&server, cache).with_budget(Budget::unlimited().with_max_calls(1));
    assert_eq!(
        m.complete(&ask()).await.unwrap().meta.cache,
        CacheStatus::Miss
    );
    let refused = m.complete(&other).await.unwrap_err();
    assert_eq!(refused.kind(), &flow_llm::ErrorKind::BudgetExceeded);
    for _ in 0..2 {
        let hit = m.complete(&ask()).await.unwrap();
        assert_eq!(
            (hit.meta.cache, hit.text()),
            (CacheStatus::Hit, Some("yes"))
        );
    }
    // The refused call never reached the API: not a failure.
    let t = m.accounting().totals();
    assert_eq!((t.calls, t.cache_hits, t.failures), (1, 2, 0));

    // The token budget, with the cache under a fallback chain (the look-up passes through).
    let (cache, _clock) = cache_with_clock();
    let m = flow_llm::Fallback::new(cached(&server, cache))
        .with_budget(Budget::unlimited().with_max_tokens(1000));
    assert_eq!(
        m.complete(&ask()).await.unwrap().meta.cache,
        CacheStatus::Miss
    );
    assert_eq!(
        m.complete(&other).await.unwrap_err().kind(),
        &flow_llm::ErrorKind::BudgetExceeded
    );
    assert_eq!(
        m.complete(&ask()).await.unwrap().meta.cache,
        CacheStatus::Hit
    );
}
