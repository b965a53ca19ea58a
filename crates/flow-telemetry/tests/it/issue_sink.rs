//! The GitHub issue sink against a wiremock tracker.

use std::sync::{Arc, Mutex};

use flow_telemetry::github::{GitHubClient, GitHubConfig};
use flow_telemetry::sink::github::{GitHubIssueSink, marker};
use flow_telemetry::{
    Alert, AlertKind, DryRunSink, Evidence, Fingerprint, IssueAction, IssueSink, Severity,
};
use wiremock::matchers::{body_partial_json, method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::fake_github::{IssueState, Issues};

fn alert(kind: AlertKind) -> Alert {
    alert_on(kind, "main")
}

fn alert_on(kind: AlertKind, branch: &str) -> Alert {
    Alert {
        fingerprint: Fingerprint::incident("CI", branch),
        workflow: "CI".into(),
        branch: branch.into(),
        signals: vec![],
        kind,
        severity: Severity::Critical,
        summary: "3 consecutive failed runs".into(),
        evidence: Evidence {
            metric: "consecutive_failures".into(),
            value: 3.0,
            baseline: 0.0,
            threshold: 3.0,
            score: Some(3.0),
            runs: vec!["https://github.com/octo-org/octo-repo/actions/runs/1".into()],
        },
        run_id: 1,
        at_ms: 1_767_225_600_000,
    }
}

async fn tracker() -> (MockServer, Arc<Mutex<IssueState>>) {
    let server = MockServer::start().await;
    let state = Arc::new(Mutex::new(IssueState::default()));
    Mock::given(path_regex("^/repos/octo-org/octo-repo/(issues|labels)"))
        .respond_with(Issues(state.clone()))
        .mount(&server)
        .await;
    (server, state)
}

fn sink(server: &MockServer) -> GitHubIssueSink {
    let cfg = GitHubConfig::new("octo-org", "octo-repo").with_base_url(server.uri());
    GitHubIssueSink::new(GitHubClient::new(cfg).unwrap())
}

#[tokio::test]
async fn opens_then_comments_then_closes() {
    let (server, state) = tracker().await;
    let s = sink(&server);
    let a = alert(AlertKind::ConsecutiveFailures);
    assert_eq!(
        s.raise(&a).await.unwrap(),
        IssueAction::Opened { number: 1 }
    );
    {
        let st = state.lock().unwrap();
        assert_eq!(
            st.labels,
            vec!["flow-telemetry".to_string()],
            "label created when missing"
        );
        assert!(
            st.issues[0]["body"]
                .as_str()
                .unwrap()
                .contains(&marker(&a.fingerprint))
        );
        assert_eq!(
            st.issues[0]["title"],
            "[flow-telemetry] CI: 3 consecutive failed runs"
        );
    }
    // A recurrence comments instead of opening a second issue.
    assert_eq!(
        s.raise(&a).await.unwrap(),
        IssueAction::Commented { number: 1 }
    );
    // An incident of the same workflow on another branch gets its own issue.
    assert_eq!(
        s.raise(&alert_on(AlertKind::DurationShift, "release/1.x"))
            .await
            .unwrap(),
        IssueAction::Opened { number: 2 }
    );
    assert_eq!(
        s.resolve(&a.fingerprint).await.unwrap(),
        IssueAction::Closed { number: 1 }
    );
    assert_eq!(
        s.resolve(&a.fingerprint).await.unwrap(),
        IssueAction::Nothing
    );
    let st = state.lock().unwrap();
    assert_eq!(st.issues[0]["state"], "closed");
    assert_eq!(st.issues[1]["state"], "open");
    assert_eq!(st.created, 2);
    assert!(
        st.comments
            .iter()
            .any(|(n, b)| *n == 1 && b.starts_with("Seen again"))
    );
    assert!(
        st.comments
            .iter()
            .any(|(n, b)| *n == 1 && b.starts_with("Recovered"))
    );
}

#[tokio::test]
async fn notes_reach_the_body_and_the_recurrence_comment() {
    let (server, state) = tracker().await;
    let s = sink(&server);
    let a = alert(AlertKind::FailureRate);
    let notes = "### Triage\n**Likely cause:** a flaky network step";
    assert_eq!(
        s.raise_with_notes(&a, notes).await.unwrap(),
        IssueAction::Opened { number: 1 }
    );
    assert_eq!(
        s.raise_with_notes(&a, notes).await.unwrap(),
        IssueAction::Commented { number: 1 }
    );
    let st = state.lock().unwrap();
    let body = st.issues[0]["body"].as_str().unwrap();
    assert!(
        body.contains(&marker(&a.fingerprint)) && body.ends_with("a flaky network step\n"),
        "{body}"
    );
    assert!(st.comments[0].1.contains("**Likely cause:**"));
}

#[tokio::test]
async fn a_competitor_issue_created_meanwhile_is_reconciled() {
    let (server, state) = tracker().await;
    let a = alert(AlertKind::FailureRate);
    // Another monitor opens its issue between our check and our create.
    state.lock().unwrap().competitor = Some(format!("theirs\n{}", marker(&a.fingerprint)));
    let action = sink(&server).raise(&a).await.unwrap();
    let st = state.lock().unwrap();
    assert_eq!(
        st.open_with(&marker(&a.fingerprint)),
        vec![1],
        "only the oldest stays open"
    );
    assert_eq!(action, IssueAction::Commented { number: 1 });
    assert_eq!(st.issues[1]["state"], "closed");
    assert!(
        st.comments
            .iter()
            .any(|(n, b)| *n == 2 && b.starts_with("Duplicate of #1"))
    );
}

#[tokio::test]
async fn several_labels_are_created_put_on_the_issue_and_the_first_finds_it() {
    let (server, state) = tracker().await;
    state.lock().unwrap().labels.push("bot".into());
    let s = sink(&server).with_labels(["ci-health", "bot", "ci-health", "flaky"]);
    assert_eq!(
        s.labels(),
        ["ci-health", "bot", "flaky"],
        "duplicates dropped"
    );
    let a = alert(AlertKind::ConsecutiveFailures);
    assert_eq!(
        s.raise(&a).await.unwrap(),
        IssueAction::Opened { number: 1 }
    );
    {
        let st = state.lock().unwrap();
        assert_eq!(
            st.labels,
            ["bot", "ci-health", "flaky"],
            "the missing labels were created, the existing one left alone"
        );
        let names: Vec<&str> = st.issues[0]["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["ci-health", "bot", "flaky"]);
    }
    // The recurrence is found through the first label.
    assert_eq!(
        s.raise(&a).await.unwrap(),
        IssueAction::Commented { number: 1 }
    );
    assert_eq!(state.lock().unwrap().created, 1);
    // Every search filtered on the first label only.
    let searches: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "GET" && r.url.path().ends_with("/issues"))
        .map(|r| {
            r.url
                .query_pairs()
                .find(|(k, _)| k == "labels")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        })
        .collect();
    assert!(searches.len() >= 2);
    assert!(searches.iter().all(|l| l == "ci-health"), "{searches:?}");
    // A sink whose first label is not on the issue does not find it.
    let other = sink(&server).with_labels(["other", "ci-health"]);
    assert!(other.find_open(&a.fingerprint).await.unwrap().is_empty());
    // An empty list keeps the default; with_label still replaces them all.
    let empty: [&str; 0] = [];
    assert_eq!(
        sink(&server).with_labels(empty).labels(),
        ["flow-telemetry"]
    );
    assert_eq!(
        sink(&server)
            .with_labels(["a", "b"])
            .with_label("c")
            .labels(),
        ["c"]
    );
}

#[tokio::test]
async fn a_label_created_meanwhile_by_another_monitor_is_tolerated() {
    let server = MockServer::start().await;
    let repo = "/repos/octo-org/octo-repo";
    Mock::given(method("GET"))
        .and(path(format!("{repo}/issues")))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!([])))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(format!("^{repo}/labels/")))
        .respond_with(
            ResponseTemplate::new(404).set_body_json(serde_json::json!({"message": "Not Found"})),
        )
        .expect(2)
        .mount(&server)
        .await;
    // GitHub's answer when the label exists by now.
    Mock::given(method("POST"))
        .and(path(format!("{repo}/labels")))
        .respond_with(ResponseTemplate::new(422).set_body_json(serde_json::json!({
            "message": "Validation Failed",
            "errors": [{"resource": "Label", "code": "already_exists", "field": "name"}],
            "documentation_url": "https://docs.github.com/rest/issues/labels#create-a-label"
        })))
        .expect(2)
        .mount(&server)
        .await;
    let mut created: serde_json::Value =
        serde_json::from_str(&crate::fixture("issue.json")).unwrap();
    created["number"] = serde_json::json!(7);
    Mock::given(method("POST"))
        .and(path(format!("{repo}/issues")))
        .and(body_partial_json(
            serde_json::json!({"labels": ["ci-health", "bot"]}),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(created))
        .expect(1)
        .mount(&server)
        .await;
    let s = sink(&server).with_labels(vec!["ci-health".to_string(), "bot".to_string()]);
    let a = alert(AlertKind::ConsecutiveFailures);
    // The re-check finds nothing (the fake list stays empty), so the created issue is kept.
    assert_eq!(
        s.raise(&a).await.unwrap(),
        IssueAction::Opened { number: 7 }
    );
}

#[tokio::test]
async fn two_racing_monitors_leave_one_open_issue() {
    let (server, state) = tracker().await;
    state.lock().unwrap().list_delay_ms = 150;
    let a = alert(AlertKind::ConsecutiveFailures);
    let (s1, s2) = (sink(&server), sink(&server));
    let (r1, r2) = tokio::join!(s1.raise(&a), s2.raise(&a));
    r1.unwrap();
    r2.unwrap();
    let st = state.lock().unwrap();
    assert_eq!(
        st.created, 2,
        "both saw no issue and created one: the race happened"
    );
    assert_eq!(st.open_with(&marker(&a.fingerprint)).len(), 1);
}

#[tokio::test]
async fn dry_run_prints_and_touches_nothing() {
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let s = DryRunSink::new(Box::new(buf.clone()));
    let a = alert(AlertKind::ConsecutiveFailures);
    assert!(matches!(
        s.raise(&a).await.unwrap(),
        IssueAction::DryRun { .. }
    ));
    s.resolve(&a.fingerprint).await.unwrap();
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert_eq!(text.lines().count(), 2);
    assert!(text.contains(a.fingerprint.as_str()) && text.contains("would open"));
}
