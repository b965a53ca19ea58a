//! Rate limits and retries, waited through the injected clock and sleeper: nothing sleeps.

use std::sync::Arc;
use std::time::Duration;

use flow_github::{ErrorKind, Request};
use flow_orchestrator_core::{Backoff, Clock, RecordingSleeper};
use proptest::prelude::*;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::{requests, rig, rig_with};

const RUNS: &str = "/repos/octo-org/octo-repo/actions/runs";

fn ok() -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("x-ratelimit-limit", "5000")
        .insert_header("x-ratelimit-remaining", "4999")
        .set_body_json(json!({"total_count": 0, "workflow_runs": []}))
}

async fn then_ok(server: &wiremock::MockServer) {
    Mock::given(method("GET"))
        .and(path(RUNS))
        .respond_with(ok())
        .mount(server)
        .await;
}

async fn first(server: &wiremock::MockServer, times: u64, answer: ResponseTemplate) {
    Mock::given(method("GET"))
        .and(path(RUNS))
        .respond_with(answer)
        .up_to_n_times(times)
        .with_priority(1)
        .mount(server)
        .await;
}

#[tokio::test]
async fn a_spent_primary_limit_waits_until_the_reset() {
    let r = rig().await;
    then_ok(&r.server).await;
    let reset = 1_700_000_000 + 42;
    first(
        &r.server,
        1,
        ResponseTemplate::new(403)
            .insert_header("x-ratelimit-remaining", "0")
            .insert_header("x-ratelimit-reset", reset.to_string().as_str())
            .set_body_json(json!({"message": "API rate limit exceeded for installation ID 1."})),
    )
    .await;
    r.client.get(RUNS).await.unwrap();
    // 42 s to the reset and one of margin, on the manual clock.
    assert_eq!(r.sleeper.slept(), vec![Duration::from_secs(43)]);
    assert_eq!(r.clock.now_ms(), 1_700_000_043_000);
    let c = r.client.counts();
    assert_eq!((c.requests, c.rate_limit_waits, c.retries), (2, 1, 1));
    assert_eq!(r.client.rate_limit().remaining, Some(4999));
}

#[tokio::test]
async fn a_quota_spent_on_a_success_is_waited_out_before_the_next_request() {
    let r = rig().await;
    then_ok(&r.server).await;
    first(
        &r.server,
        1,
        ok().insert_header("x-ratelimit-remaining", "0")
            .insert_header(
                "x-ratelimit-reset",
                (1_700_000_000 + 10).to_string().as_str(),
            ),
    )
    .await;
    r.client.get(RUNS).await.unwrap();
    assert!(r.sleeper.slept().is_empty());
    r.client.get(RUNS).await.unwrap();
    assert_eq!(r.sleeper.slept(), vec![Duration::from_secs(11)]);
    assert_eq!(requests(&r.server).await.len(), 2, "no request drew a 403");
}

#[tokio::test]
async fn secondary_limits_honour_retry_after_in_seconds_and_as_a_date() {
    let r = rig().await;
    then_ok(&r.server).await;
    let in_30s =
        httpdate::fmt_http_date(std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + 30));
    for (status, retry_after) in [(403, "7".to_owned()), (429, in_30s)] {
        first(
            &r.server,
            1,
            ResponseTemplate::new(status)
                .insert_header("retry-after", retry_after.as_str())
                .set_body_json(json!({"message": "You have exceeded a secondary rate limit."})),
        )
        .await;
        r.client.get(RUNS).await.unwrap();
    }
    // The date is read against the injected clock, already 7 s on.
    assert_eq!(
        r.sleeper.slept(),
        vec![Duration::from_secs(7), Duration::from_secs(23)]
    );
}

#[tokio::test]
async fn a_secondary_limit_without_retry_after_waits_a_minute() {
    let r = rig().await;
    then_ok(&r.server).await;
    first(
        &r.server,
        1,
        ResponseTemplate::new(403).set_body_json(
            json!({"message": "You have exceeded a secondary rate limit and have been temporarily blocked from content creation."}),
        ),
    )
    .await;
    r.client.get(RUNS).await.unwrap();
    assert_eq!(r.sleeper.slept(), vec![Duration::from_secs(60)]);
}

#[tokio::test]
async fn a_wait_past_the_longest_accepted_is_an_error_at_once() {
    let r = rig_with("", |c| c.with_max_wait(Duration::from_secs(60))).await;
    first(
        &r.server,
        1,
        ResponseTemplate::new(403)
            .insert_header("x-ratelimit-remaining", "0")
            .insert_header("x-ratelimit-reset", i64::MAX.to_string().as_str()),
    )
    .await;
    let e = r.client.get(RUNS).await.unwrap_err();
    assert!(
        matches!(
            e.kind(),
            ErrorKind::RateLimited {
                status: Some(403),
                ..
            }
        ),
        "{e}"
    );
    assert!(e.is_retryable() && e.retry_after().is_some());
    assert!(r.sleeper.slept().is_empty());
}

#[tokio::test]
async fn a_rate_limit_beyond_the_budget_is_a_retryable_error() {
    let r = rig_with("", |c| c.with_max_retries(2)).await;
    first(
        &r.server,
        10,
        ResponseTemplate::new(429).insert_header("retry-after", "5"),
    )
    .await;
    let e = r.client.get(RUNS).await.unwrap_err();
    assert_eq!(e.retry_after(), Some(Duration::from_secs(5)));
    assert_eq!(e.status(), Some(429));
    assert_eq!(r.sleeper.slept().len(), 2);
    assert_eq!(requests(&r.server).await.len(), 3);
}

#[tokio::test]
async fn server_errors_are_retried_with_back_off_then_succeed() {
    let r = rig().await;
    then_ok(&r.server).await;
    first(&r.server, 2, ResponseTemplate::new(502)).await;
    r.client.get(RUNS).await.unwrap();
    // Full jitter at its ceiling (FixedJitter 1.0): 1 s, then 2 s.
    assert_eq!(
        r.sleeper.slept(),
        vec![Duration::from_secs(1), Duration::from_secs(2)]
    );
    assert_eq!(r.client.counts().retries, 2);
}

#[tokio::test]
async fn a_post_that_may_have_been_carried_out_is_not_sent_twice() {
    let r = rig().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(502))
        .expect(1)
        .mount(&r.server)
        .await;
    let req = Request::post("/repos/o/r/issues")
        .with_json(&json!({"title": "t"}))
        .unwrap();
    let e = r.client.send(req).await.unwrap_err();
    assert_eq!(e.status(), Some(502));
    assert!(
        e.is_retryable(),
        "the caller may retry: it knows whether that is safe"
    );
    assert!(r.sleeper.slept().is_empty());
    r.server.verify().await;
}

#[tokio::test]
async fn no_response_is_a_transport_error_with_its_cause_after_the_retries() {
    let r = rig_with("", |c| c.with_max_retries(1)).await;
    // A port nothing listens on (wiremock pools its servers: a dropped one still answers).
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let client = flow_github::Client::new(
        flow_github::Config::new()
            .with_base_url(closed)
            .with_max_retries(1),
    )
    .unwrap()
    .with_timing(r.client.timing().clone());
    let e = client.get(RUNS).await.unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::Transport);
    assert!(std::error::Error::source(&e).is_some(), "the cause is kept");
    assert_eq!(e.to_string(), format!("github: GET {RUNS}: no response"));
    assert_eq!(r.sleeper.slept().len(), 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]
    #[test]
    fn jittered_waits_stay_under_each_ceiling(seed in any::<u64>(), failures in 1u64..5) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let slept = rt.block_on(async {
            let r = rig().await;
            then_ok(&r.server).await;
            first(&r.server, failures, ResponseTemplate::new(503)).await;
            let sleeper = RecordingSleeper::new();
            let timing = r
                .client
                .timing()
                .clone()
                .with_sleeper(Arc::new(sleeper.clone()))
                .with_seeded_jitter(seed);
            let client = r.client.clone().with_timing(timing);
            client.get(RUNS).await.unwrap();
            sleeper.slept()
        });
        let backoff: Backoff = flow_github::Config::default().backoff;
        prop_assert_eq!(slept.len() as u64, failures);
        for (i, d) in slept.iter().enumerate() {
            prop_assert!(*d <= backoff.ceiling(i as u32 + 1), "{:?} > ceiling {}", d, i + 1);
        }
    }
}
