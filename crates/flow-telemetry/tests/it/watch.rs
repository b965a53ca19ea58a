//! The whole loop against one wiremock GitHub: runs in, issues out.

use std::sync::{Arc, Mutex};

use flow_telemetry::github::{GitHubClient, GitHubConfig};
use flow_telemetry::sink::github::GitHubIssueSink;
use flow_telemetry::source::github::GitHubSource;
use flow_telemetry::source::sync::Poller;
use flow_telemetry::watch::Watcher;
use flow_telemetry::{AlertKind, IssueAction, Monitor, Rules, RunQuery};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::fake_github::{IssueState, Issues, ListRuns, Runs};
use crate::fixture;

#[tokio::test]
async fn failures_open_issues_and_recovery_closes_them() {
    let server = MockServer::start().await;
    let runs = Runs::default();
    let issues = Arc::new(Mutex::new(IssueState::default()));
    Mock::given(method("GET"))
        .and(path("/repos/octo-org/octo-repo/actions/runs"))
        .respond_with(ListRuns {
            runs: runs.clone(),
            base: server.uri(),
        })
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(
            "^/repos/octo-org/octo-repo/actions/runs/[0-9]+/jobs$",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture("job-paginated.json")))
        .mount(&server)
        .await;
    Mock::given(path_regex("^/repos/octo-org/octo-repo/(issues|labels)"))
        .respond_with(Issues(issues.clone()))
        .mount(&server)
        .await;
    let client =
        GitHubClient::new(GitHubConfig::new("octo-org", "octo-repo").with_base_url(server.uri()))
            .unwrap();
    let poller =
        Poller::new(GitHubSource::new(client.clone()), RunQuery::new()).with_first_pages(5);
    let mut w = Watcher::new(
        poller,
        Monitor::new(Rules::default()),
        Arc::new(GitHubIssueSink::new(client.clone())),
    );

    runs.add(1..=30, Some("success"));
    let c = w.cycle().await.unwrap();
    assert_eq!((c.new_runs, c.alerts.len(), c.list_requests), (30, 0, 1));

    // A burst: against a spotless baseline of 20 runs the streak fires on the fourth failure,
    // the failure-rate test on the fifth. One incident, carrying both signals, one issue.
    runs.add(31..=36, Some("failure"));
    let c = w.cycle().await.unwrap();
    assert_eq!(c.alerts.len(), 1, "{:#?}", c.alerts);
    assert_eq!(
        c.alerts[0].kinds(),
        vec![AlertKind::ConsecutiveFailures, AlertKind::FailureRate]
    );
    assert_eq!(c.actions, vec![IssueAction::Opened { number: 1 }]);
    {
        let st = issues.lock().unwrap();
        assert_eq!(st.issues.len(), 1);
        let body = st.issues[0]["body"].as_str().unwrap();
        assert!(
            body.contains("`consecutive_failures`, `failure_rate`")
                && body.contains("the last 4 runs all failed")
                && body.contains("5 of the last 5 runs failed, which at that rate has a chance of"),
            "{body}"
        );
    }
    assert_eq!(c.job_requests, 6, "jobs only for the failed runs");

    let before = client.counts();
    let c = w.cycle().await.unwrap();
    assert_eq!((c.new_runs, c.list_requests), (0, 1));
    assert_eq!(
        client.counts().requests - before.requests,
        1,
        "a quiet cycle is one request"
    );
    assert_eq!(
        client.counts().not_modified - before.not_modified,
        1,
        "answered 304"
    );

    // Back to passing: the incident resolves once both signals have recovered.
    runs.add(37..=66, Some("success"));
    let c = w.cycle().await.unwrap();
    assert_eq!(c.recovered.len(), 1);
    assert_eq!(c.actions, vec![IssueAction::Closed { number: 1 }]);
    let st = issues.lock().unwrap();
    assert_eq!(st.created, 1, "one burst, one issue");
    assert!(st.issues.iter().all(|i| i["state"] == "closed"));
    assert_eq!(w.monitor().active_alerts().count(), 0);
}
