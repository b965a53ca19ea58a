//! The REST source against a wiremock GitHub: paging, rate limits, 304s, API economy.

use std::sync::Arc;
use std::time::Duration;

use flow_telemetry::github::{GitHubClient, GitHubConfig};
use flow_telemetry::source::github::GitHubSource;
use flow_telemetry::source::sync::{Poller, PollerState};
use flow_telemetry::time::{ManualClock, RecordingSleeper, Timing};
use flow_telemetry::{Clock, ErrorKind, RunId, RunQuery, RunSource};
use secrecy::SecretString;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::fake_github::{ListRuns, Runs};
use crate::fixture;

const RUNS: &str = "/repos/octo-org/octo-repo/actions/runs";

struct Rig {
    server: MockServer,
    runs: Runs,
    source: GitHubSource,
    sleeper: RecordingSleeper,
    clock: ManualClock,
}

async fn rig(prefix: &str) -> Rig {
    let server = MockServer::start().await;
    let runs = Runs::default();
    Mock::given(method("GET"))
        .and(path(format!("{prefix}{RUNS}")))
        .respond_with(ListRuns {
            runs: runs.clone(),
            base: server.uri(),
        })
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(format!("^{prefix}{RUNS}/[0-9]+/jobs$")))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture("job-paginated.json")))
        .mount(&server)
        .await;
    let clock = ManualClock::new(1_700_000_000_000);
    let sleeper = RecordingSleeper::with_clock(clock.clone());
    let cfg = GitHubConfig::new("octo-org", "octo-repo")
        .with_base_url(format!("{}{prefix}", server.uri()))
        .with_token(SecretString::from("ghs_not_a_real_token"));
    // Back-off at its ceiling: full jitter made deterministic.
    let client = GitHubClient::new(cfg)
        .unwrap()
        .with_timing(Timing::manual(clock.clone(), sleeper.clone()));
    Rig {
        server,
        runs,
        source: GitHubSource::new(client),
        sleeper,
        clock,
    }
}

/// Another client and source on the same server, as a new process would build.
async fn rig_on(server: &MockServer, prefix: &str) -> GitHubSource {
    let clock = ManualClock::new(1_700_000_000_000);
    let cfg = GitHubConfig::new("octo-org", "octo-repo")
        .with_base_url(format!("{}{prefix}", server.uri()))
        .with_token(SecretString::from("ghs_not_a_real_token"));
    let client = GitHubClient::new(cfg).unwrap().with_timing(Timing::manual(
        clock.clone(),
        RecordingSleeper::with_clock(clock),
    ));
    GitHubSource::new(client)
}

async fn list_requests(server: &MockServer) -> usize {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().ends_with("/actions/runs"))
        .count()
}

#[tokio::test]
async fn pages_through_link_headers() {
    let r = rig("").await;
    r.runs.add(1..=250, Some("success"));
    let first = r.source.runs(&RunQuery::new()).await.unwrap();
    assert_eq!(first.runs.len(), 100);
    assert_eq!(first.runs[0].id, RunId(250));
    assert_eq!(first.total_count, Some(250));
    assert_eq!(first.next_page, Some(2));
    let mut poller = Poller::new(r.source.clone(), RunQuery::new()).with_first_pages(10);
    let batch = poller.poll().await.unwrap();
    assert_eq!(batch.completed.len(), 250);
    assert_eq!(batch.list_requests, 3);
    assert_eq!(poller.last_seen(), Some(RunId(250)));
    let reqs = r.server.received_requests().await.unwrap();
    assert!(reqs.iter().all(|q| {
        q.url
            .query_pairs()
            .any(|(k, v)| k == "per_page" && v == "100")
    }));
    let auth = reqs[0]
        .headers
        .get("authorization")
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(auth, "Bearer ghs_not_a_real_token");
}

#[tokio::test]
async fn api_economy_new_runs_and_quiet_cycles() {
    let r = rig("").await;
    r.runs.add(1..=100, Some("success"));
    let mut poller = Poller::new(r.source.clone(), RunQuery::new());
    let b = poller.poll().await.unwrap();
    assert_eq!((b.completed.len(), b.list_requests), (100, 1));

    let mut next_id = 101;
    for n in [150u64, 100, 1, 0, 99, 250] {
        let before = list_requests(&r.server).await;
        let before_304 = r.source.client().counts().not_modified;
        r.runs.add(next_id..next_id + n, Some("success"));
        next_id += n;
        let b = poller.poll().await.unwrap();
        let made = list_requests(&r.server).await - before;
        assert_eq!(b.completed.len() as u64, n, "n={n}");
        assert_eq!(b.list_requests as usize, made);
        assert!(
            made as u64 <= n.div_ceil(100) + 1,
            "n={n}: {made} list requests"
        );
        assert_eq!(b.job_requests, 0, "no failed run, no job request");
        if n == 0 {
            assert_eq!(made, 1, "a quiet cycle costs one request");
            assert_eq!(
                r.source.client().counts().not_modified,
                before_304 + 1,
                "and it is a 304"
            );
        }
    }
}

#[tokio::test]
async fn jobs_are_fetched_only_for_failed_runs() {
    let r = rig("").await;
    r.runs.add(1..=10, Some("success"));
    let mut poller = Poller::new(r.source.clone(), RunQuery::new()).with_concurrency(2);
    poller.poll().await.unwrap();
    r.runs.add(11..=15, Some("success"));
    r.runs.add(16..=18, Some("failure"));
    r.runs.add(19..=20, None);
    let b = poller.poll().await.unwrap();
    assert_eq!(b.completed.len(), 8, "in-progress runs wait");
    assert_eq!(b.job_requests, 3);
    let job_calls = r
        .server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|q| q.url.path().ends_with("/jobs"))
        .count();
    assert_eq!(job_calls, 3);
    // The in-progress runs are reported once they complete.
    r.runs.complete(19, "success");
    r.runs.complete(20, "cancelled");
    let b = poller.poll().await.unwrap();
    let ids: Vec<u64> = b.completed.iter().map(|r| r.id.0).collect();
    assert_eq!(ids, vec![19, 20]);
}

#[tokio::test]
async fn conditional_request_returns_the_cached_page_on_304() {
    let r = rig("").await;
    r.runs.add(1..=5, Some("success"));
    let a = r.source.runs(&RunQuery::new()).await.unwrap();
    let b = r.source.runs(&RunQuery::new()).await.unwrap();
    assert!(!a.not_modified);
    assert!(b.not_modified);
    assert_eq!(a.runs, b.runs);
    let reqs = r.server.received_requests().await.unwrap();
    assert!(reqs[1].headers.get("if-none-match").is_some());
}

#[tokio::test]
async fn primary_rate_limit_waits_until_the_reset() {
    let r = rig("").await;
    r.runs.add(1..=3, Some("success"));
    let reset_s = 1_700_000_000 + 42;
    Mock::given(method("GET"))
        .and(path(RUNS))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("x-ratelimit-limit", "5000")
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-reset", reset_s.to_string().as_str())
                .set_body_string(r#"{"message":"API rate limit exceeded for installation ID 1.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}"#),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&r.server)
        .await;
    let page = r.source.runs(&RunQuery::new()).await.unwrap();
    assert_eq!(page.runs.len(), 3);
    // 42 s to the reset plus one second of margin; never really slept.
    assert_eq!(r.sleeper.slept(), vec![Duration::from_secs(43)]);
    assert_eq!(r.clock.now_ms(), 1_700_000_043_000);
    assert_eq!(r.source.client().counts().rate_limit_waits, 1);
    assert_eq!(r.source.client().rate_limit().remaining, Some(4999));
}

#[tokio::test]
async fn an_absurd_reset_header_is_a_rate_limit_error_not_an_overflow() {
    let r = rig("").await;
    Mock::given(method("GET"))
        .and(path(RUNS))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-reset", i64::MAX.to_string().as_str())
                .set_body_string(r#"{"message":"API rate limit exceeded"}"#),
        )
        .with_priority(1)
        .mount(&r.server)
        .await;
    let err = r.source.runs(&RunQuery::new()).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::RateLimited { .. }), "{err}");
    assert!(r.sleeper.slept().is_empty());
}

#[tokio::test]
async fn secondary_rate_limit_honours_retry_after() {
    let r = rig("").await;
    r.runs.add(1..=3, Some("success"));
    for status in [403, 429] {
        Mock::given(method("GET"))
            .and(path(RUNS))
            .respond_with(
                ResponseTemplate::new(status)
                    .insert_header("retry-after", "7")
                    .set_body_string(r#"{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}"#),
            )
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&r.server)
            .await;
        r.source.runs(&RunQuery::new()).await.unwrap();
    }
    assert_eq!(
        r.sleeper.slept(),
        vec![Duration::from_secs(7), Duration::from_secs(7)]
    );
}

#[tokio::test]
async fn rate_limit_beyond_the_budget_is_a_retryable_error() {
    let r = rig("").await;
    Mock::given(method("GET"))
        .and(path(RUNS))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "5"))
        .with_priority(1)
        .mount(&r.server)
        .await;
    let cfg = r.source.client().config().clone().with_max_retries(2);
    let src = GitHubSource::new(
        GitHubClient::new(cfg)
            .unwrap()
            .with_timing(Timing::default().with_sleeper(Arc::new(r.sleeper.clone()))),
    );
    let err = src.runs(&RunQuery::new()).await.unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::RateLimited {
                retry_after_ms: 5000
            }
        ),
        "{err}"
    );
    assert!(err.is_retryable());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(5)));
    assert_eq!(r.sleeper.slept().len(), 2);
}

#[tokio::test]
async fn not_found_names_the_path_and_message() {
    let r = rig("").await;
    Mock::given(method("GET"))
        .and(path(RUNS))
        .respond_with(ResponseTemplate::new(404).set_body_string(r#"{"message":"Not Found"}"#))
        .with_priority(1)
        .mount(&r.server)
        .await;
    let err = r.source.runs(&RunQuery::new()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "github api: GET /repos/octo-org/octo-repo/actions/runs answered 404: Not Found"
    );
    assert!(!err.to_string().contains("ghs_"));
}

#[tokio::test]
async fn an_echoed_token_in_the_error_message_is_redacted() {
    let r = rig("").await;
    Mock::given(method("GET"))
        .and(path(RUNS))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_string(r#"{"message":"Bad credentials: Bearer ghs_not_a_real_token"}"#),
        )
        .with_priority(1)
        .mount(&r.server)
        .await;
    let err = r.source.runs(&RunQuery::new()).await.unwrap_err();
    assert!(!err.to_string().contains("ghs_not_a_real_token"), "{err}");
    assert!(
        !format!("{err:?}").contains("ghs_not_a_real_token"),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("Bad credentials: Bearer [redacted]"),
        "{err}"
    );
}

#[tokio::test]
async fn enterprise_base_url_keeps_its_path() {
    let r = rig("/api/v3").await;
    r.runs.add(1..=2, Some("success"));
    let page = r.source.runs(&RunQuery::new()).await.unwrap();
    assert_eq!(page.runs.len(), 2);
}

#[tokio::test]
async fn splits_created_windows_past_the_1000_cap() {
    let r = rig("").await;
    r.runs.add(1..=2_500, Some("success"));
    let from = 1_700_000_000_000 + 60_000;
    let to = 1_700_000_000_000 + 2_500 * 60_000;
    let q = RunQuery::new().with_branch("main");
    let all = r.source.runs_between(&q, from, to).await.unwrap();
    assert_eq!(all.len(), 2_500);
    let mut ids: Vec<u64> = all.iter().map(|r| r.id.0).collect();
    ids.dedup();
    assert_eq!(ids.len(), 2_500);
    let reqs = r.server.received_requests().await.unwrap();
    assert!(
        reqs.iter()
            .all(|q| q.url.query_pairs().any(|(k, _)| k == "created"))
    );
}

#[test]
fn debug_output_redacts_the_token() {
    let cfg = GitHubConfig::new("o", "r").with_token(SecretString::from("ghp_secret_value"));
    assert!(!format!("{cfg:?}").contains("ghp_secret_value"));
}

#[tokio::test]
async fn secondary_limit_without_retry_after_waits_a_minute() {
    let r = rig("").await;
    r.runs.add(1..=1, Some("success"));
    Mock::given(method("GET"))
        .and(path(RUNS))
        .respond_with(ResponseTemplate::new(403).set_body_string(
            r#"{"message":"You have exceeded a secondary rate limit and have been temporarily blocked from content creation."}"#,
        ))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&r.server)
        .await;
    r.source.runs(&RunQuery::new()).await.unwrap();
    assert_eq!(r.sleeper.slept(), vec![Duration::from_secs(60)]);
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff_and_plain_403_is_not() {
    let r = rig("").await;
    r.runs.add(1..=1, Some("success"));
    Mock::given(method("GET"))
        .and(path(RUNS))
        .respond_with(ResponseTemplate::new(502))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&r.server)
        .await;
    r.source.runs(&RunQuery::new()).await.unwrap();
    assert_eq!(
        r.sleeper.slept(),
        vec![Duration::from_secs(1), Duration::from_secs(2)]
    );
    Mock::given(method("GET"))
        .and(path(RUNS))
        .respond_with(
            ResponseTemplate::new(403)
                .set_body_string(r#"{"message":"Resource not accessible by integration"}"#),
        )
        .with_priority(1)
        .mount(&r.server)
        .await;
    let err = r.source.runs(&RunQuery::new()).await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Http { status: 403, .. }),
        "{err}"
    );
    assert!(!err.is_retryable());
    assert_eq!(
        r.sleeper.slept().len(),
        2,
        "a permission error is not waited on"
    );
}

#[tokio::test]
async fn an_exhausted_quota_is_waited_out_before_the_next_request() {
    let r = rig("").await;
    r.runs.add(1..=1, Some("success"));
    let reset_s = 1_700_000_000 + 10;
    Mock::given(method("GET"))
        .and(path(RUNS))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-reset", reset_s.to_string().as_str())
                .set_body_string(r#"{"total_count":0,"workflow_runs":[]}"#),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&r.server)
        .await;
    r.source.runs(&RunQuery::new()).await.unwrap();
    assert!(r.sleeper.slept().is_empty());
    assert_eq!(r.source.client().rate_limit().remaining, Some(0));
    // The second request waits for the reset first instead of drawing a 403.
    let page = r.source.runs(&RunQuery::new().with_page(1)).await.unwrap();
    assert_eq!(page.runs.len(), 1);
    assert_eq!(r.sleeper.slept(), vec![Duration::from_secs(11)]);
}

#[tokio::test]
async fn poller_state_survives_a_new_process() {
    let r = rig("").await;
    r.runs.add(1..=120, Some("success"));
    r.runs.add(121..=122, None);
    let mut first = Poller::new(r.source.clone(), RunQuery::new()).with_first_pages(5);
    let b = first.poll().await.unwrap();
    assert_eq!(b.completed.len(), 120);
    let state = first.state();
    assert_eq!(state.last_seen, Some(RunId(122)));
    assert_eq!(state.pending, vec![RunId(121), RunId(122)]);
    assert!(state.last_created_at.is_some());
    assert!(state.etag.as_deref().is_some_and(|e| !e.is_empty()));
    // Persisted as JSON (a file or an actions/cache entry), read back by the next process.
    let json = serde_json::to_string(&state).unwrap();
    let restored: PollerState = serde_json::from_str(&json).unwrap();
    assert_eq!(restored, state);
    drop(first);

    // A new process: a new client (empty ETag cache) and a new poller.
    let fresh = rig_on(&r.server, "").await;
    let mut second = Poller::new(fresh.clone(), RunQuery::new()).with_state(restored.clone());
    assert_eq!(second.last_seen(), Some(RunId(122)));
    let before = list_requests(&r.server).await;
    let b = second.poll().await.unwrap();
    assert!(b.completed.is_empty());
    assert_eq!(b.list_requests, 1);
    assert_eq!(list_requests(&r.server).await - before, 1, "one request");
    assert_eq!(fresh.client().counts().not_modified, 1, "and it is a 304");
    assert_eq!(second.state(), restored, "a quiet cycle changes nothing");

    // The runs seen in progress by the first process are reported once they complete.
    for id in 121..=122 {
        r.runs.complete(id, "success");
    }
    r.runs.add(123..=123, Some("success"));
    let mut third = Poller::new(rig_on(&r.server, "").await, RunQuery::new()).with_state(restored);
    let b = third.poll().await.unwrap();
    let ids: Vec<RunId> = b.completed.iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert_eq!(third.state().pending, Vec::<RunId>::new());
    assert_eq!(third.state().last_seen, Some(RunId(123)));
}
