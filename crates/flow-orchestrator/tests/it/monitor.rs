//! monitor: collect → KPIs → anomalies → triage → issue, with every seam mocked.

use std::sync::{Arc, Mutex};

use flow_orchestrator::{MonitorOptions, Orchestrator};
use flow_telemetry::{AlertKind, IssueAction, RunId, RunPage, RunQuery};

use crate::mocks::{
    MockModel, MockSink, MockSource, answer, failing_jobs, history, one_page, server_down, text_of,
};

const TRIAGE: &str = r#"{"category":"test","confidence":"medium","likely_cause":"`cargo test` fails in job test since run 1030","evidence_quote":"step 2 `cargo test`: failure","suggested_next_step":"Bisect the commits of run 1030"}"#;

/// A source serving `healthy` successes then `failing` failures, with failing jobs.
fn source(healthy: u64, failing: u64) -> MockSource {
    let mut s = MockSource::new();
    s.expect_runs()
        .returning(move |_| Ok(one_page(history(healthy, failing))));
    s.expect_jobs().returning(|run| Ok(failing_jobs(run)));
    s
}

/// The alerts a sink saw, with the notes they were raised with.
type Seen = Arc<Mutex<Vec<(AlertKind, Option<String>)>>>;

/// A sink that opens issue 1, 2, ... and records the alerts it saw with their notes.
fn opening_sink(seen: Seen) -> MockSink {
    let mut sink = MockSink::new();
    let plain = seen.clone();
    sink.expect_raise().returning(move |alert| {
        let mut seen = plain.lock().unwrap();
        seen.push((alert.kind, None));
        Ok(IssueAction::Opened {
            number: seen.len() as u64,
        })
    });
    sink.expect_raise_with_notes()
        .returning(move |alert, notes| {
            let mut seen = seen.lock().unwrap();
            seen.push((alert.kind, Some(notes.to_owned())));
            Ok(IssueAction::Opened {
                number: seen.len() as u64,
            })
        });
    sink
}

#[tokio::test]
async fn a_failure_burst_is_triaged_and_raised_once_per_fingerprint() {
    let mut model = MockModel::new();
    model
        .expect_complete()
        .withf(|req| {
            let t = text_of(req);
            t.contains("step 2 `cargo test`: failure") && t.contains("[flow-telemetry] CI:")
        })
        .returning(|_| Ok(answer(TRIAGE)));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let o = Orchestrator::builder()
        .with_chat_model(Arc::new(model))
        .with_run_source(Arc::new(source(30, 5)))
        .with_issue_sink(Arc::new(opening_sink(seen.clone())))
        .with_clock(Arc::new(flow_telemetry::ManualClock::new(
            1_767_225_600_000,
        )))
        .build()
        .unwrap();
    let report = o.monitor().await.unwrap();

    assert_eq!((report.runs, report.pages), (35, 1));
    assert_eq!(report.telemetry.workflows.len(), 1);
    assert_eq!(report.telemetry.workflows[0].kpis.values.count, 35);
    assert_eq!(report.telemetry.generated_at_ms, 1_767_225_600_000);
    let kinds: Vec<AlertKind> = report.alerts.iter().map(|a| a.alert.kind).collect();
    assert!(kinds.contains(&AlertKind::ConsecutiveFailures), "{kinds:?}");
    // One issue for the problem (the failing streak and the failure rate are one burst),
    // raised once, with the triage as notes.
    let raised = seen.lock().unwrap().clone();
    assert_eq!(raised.len(), 1, "{raised:?}");
    let notes = raised[0]
        .1
        .as_deref()
        .expect("raised with the triage as notes");
    assert!(
        notes.contains("**Likely cause:**") && notes.contains("cargo test"),
        "{notes}"
    );
    let opened: Vec<_> = report.alerts.iter().filter(|a| a.issue.is_some()).collect();
    assert!(!opened.is_empty());
    for a in &opened {
        let t = a.triage.as_ref().expect("triaged");
        assert!(t.likely_cause.contains("cargo test"));
        assert!(a.triage_error.is_none());
        assert!(matches!(a.issue, Some(IssueAction::Opened { .. })));
    }
    assert!(report.alerts.iter().all(|a| a.tracked_in == Some(1)));
    assert!(report.issues_ok());
    assert_eq!(report.triage_failures().count(), 0);

    let md = report.to_markdown();
    assert!(
        md.contains("**Likely cause:**") && md.contains("opened #"),
        "{md}"
    );
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["alerts"][0]["issue"]["action"], "opened");
    assert!(json["alerts"][0]["triage"]["suggested_next_step"].is_string());
}

#[tokio::test]
async fn when_the_llm_fails_the_issue_is_still_raised_and_the_report_says_so() {
    let mut model = MockModel::new();
    model.expect_complete().returning(|_| Err(server_down()));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let o = Orchestrator::builder()
        .with_chat_model(Arc::new(model))
        .with_run_source(Arc::new(source(30, 5)))
        .with_issue_sink(Arc::new(opening_sink(seen.clone())))
        .build()
        .unwrap();
    let report = o.monitor().await.unwrap();
    assert!(!report.alerts.is_empty());
    // Raised without notes: there is no triage to add.
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert!(
        seen.iter().all(|(_, notes)| notes.as_deref() == Some("")),
        "{seen:?}"
    );
    let opened: Vec<_> = report.alerts.iter().filter(|a| a.issue.is_some()).collect();
    for a in &opened {
        assert!(a.triage.is_none());
        let e = a.triage_error.as_deref().unwrap();
        assert!(e.contains("connection refused"), "{e}");
        assert!(matches!(a.issue, Some(IssueAction::Opened { .. })));
    }
    assert_eq!(report.triage_failures().count(), opened.len());
    assert!(report.to_markdown().contains("triage: **unavailable**"));
}

#[tokio::test]
async fn without_triage_the_model_is_not_asked() {
    let mut model = MockModel::new();
    model.expect_complete().times(0);
    let mut source = MockSource::new();
    source
        .expect_runs()
        .returning(|_| Ok(one_page(history(30, 5))));
    // The poller reads the jobs of failed runs (runner errors); the model is not asked.
    source
        .expect_jobs()
        .returning(|run: RunId| Ok(failing_jobs(run)));
    let o = Orchestrator::builder()
        .with_chat_model(Arc::new(model))
        .with_run_source(Arc::new(source))
        .with_issue_sink(Arc::new(opening_sink(Arc::default())))
        .with_triage(false)
        .build()
        .unwrap();
    let report = o.monitor().await.unwrap();
    assert!(
        report
            .alerts
            .iter()
            .all(|a| a.triage.is_none() && a.triage_error.is_none())
    );
}

#[tokio::test]
async fn a_failing_sink_is_reported_not_fatal() {
    let mut sink = MockSink::new();
    sink.expect_raise_with_notes().returning(|_, _| {
        Err(flow_telemetry::Error::new(
            flow_telemetry::ErrorKind::Transport("connection reset".into()),
        ))
    });
    let o = Orchestrator::builder()
        .with_run_source(Arc::new(source(30, 5)))
        .with_issue_sink(Arc::new(sink))
        .build()
        .unwrap();
    let report = o.monitor().await.unwrap();
    assert!(!report.alerts.is_empty());
    assert!(!report.issues_ok());
    let failed = report
        .alerts
        .iter()
        .find_map(|a| a.issue_error.as_deref())
        .unwrap();
    assert!(failed.contains("connection reset"), "{failed}");
    assert!(report.to_markdown().contains("issue: **failed**"));
    // The write stays queued for the next invocation.
    assert_eq!(report.deferred, 1);
}

#[tokio::test]
async fn a_healthy_history_raises_nothing() {
    let mut sink = MockSink::new();
    sink.expect_raise().times(0);
    sink.expect_resolve().times(0);
    let o = Orchestrator::builder()
        .with_run_source(Arc::new(source(40, 0)))
        .with_issue_sink(Arc::new(sink))
        .build()
        .unwrap();
    let report = o.monitor().await.unwrap();
    assert_eq!(
        (report.runs, report.alerts.len(), report.recovered.len()),
        (40, 0, 0)
    );
}

#[tokio::test]
async fn pages_are_followed_up_to_max_pages() {
    let all = history(30, 5);
    let mut source = MockSource::new();
    let pages = Arc::new(Mutex::new(Vec::new()));
    let asked = pages.clone();
    source.expect_runs().returning(move |q: &RunQuery| {
        asked.lock().unwrap().push(q.page);
        // Newest first, 10 per page.
        let mut newest: Vec<_> = all.clone();
        newest.reverse();
        let start = (q.page as usize - 1) * 10;
        let runs: Vec<_> = newest.iter().skip(start).take(10).cloned().collect();
        Ok(RunPage {
            runs,
            total_count: Some(35),
            next_page: (start + 10 < 35).then_some(q.page + 1),
            not_modified: false,
        })
    });
    source
        .expect_jobs()
        .returning(|run: RunId| Ok(failing_jobs(run)));
    let o = Orchestrator::builder()
        .with_run_source(Arc::new(source))
        .with_monitor_options(MonitorOptions {
            max_pages: 3,
            ..MonitorOptions::default()
        })
        .build()
        .unwrap();
    let report = o.monitor().await.unwrap();
    assert_eq!(*pages.lock().unwrap(), [1, 2, 3]);
    assert_eq!((report.pages, report.runs), (3, 30));
    // Without a sink the alerts are reported only.
    assert!(
        report
            .alerts
            .iter()
            .all(|a| a.issue.is_none() && a.issue_error.is_none())
    );
}

#[tokio::test]
async fn a_recovery_in_a_later_invocation_closes_the_issue() {
    // A burst, then health again: the issue opened by the first invocation is closed by the
    // second, which sees only the new runs. The incident recovers once the failure tests have
    // 99:1 odds that the baseline rate is back (13 passing runs here).
    let runs = Arc::new(Mutex::new(history(30, 5)));
    let mut source = MockSource::new();
    let served = runs.clone();
    source
        .expect_runs()
        .returning(move |_| Ok(one_page(served.lock().unwrap().clone())));
    source
        .expect_jobs()
        .returning(|run: RunId| Ok(failing_jobs(run)));
    let mut sink = MockSink::new();
    sink.expect_raise_with_notes()
        .times(1)
        .returning(|_, _| Ok(IssueAction::Opened { number: 9 }));
    let resolved = Arc::new(Mutex::new(Vec::new()));
    let r = resolved.clone();
    sink.expect_close()
        .times(1)
        .returning(move |fp, number, text| {
            r.lock()
                .unwrap()
                .push((fp.clone(), number, text.to_owned()));
            Ok(IssueAction::Closed { number })
        });
    let o = Orchestrator::builder()
        .with_run_source(Arc::new(source))
        .with_issue_sink(Arc::new(sink))
        .build()
        .unwrap();
    let first = o.monitor().await.unwrap();
    assert_eq!((first.runs, first.writes), (35, 1));
    assert!(first.state.fresh);
    runs.lock()
        .unwrap()
        .extend((35..55).map(|i| crate::mocks::run(i, flow_telemetry::Conclusion::Success)));
    let report = o.monitor().await.unwrap();
    assert_eq!(report.runs, 20, "only the new runs");
    assert!(!report.state.fresh);
    assert!(report.alerts.is_empty(), "{:?}", report.alerts);
    // One incident per workflow and branch: the issue key is the incident's fingerprint.
    let fp = flow_telemetry::Fingerprint::incident("CI", "main");
    let key = flow_telemetry::lifecycle::issue_key("CI", "main");
    assert_eq!(key, fp);
    let closed = resolved.lock().unwrap().clone();
    assert_eq!(closed.len(), 1, "{closed:?}");
    assert_eq!((&closed[0].0, closed[0].1), (&key, 9));
    // The closing comment names the recovering run (the sink gets the text to post).
    assert!(closed[0].2.contains("Recovered"), "{}", closed[0].2);
    let r = report
        .recovered
        .iter()
        .find(|r| r.fingerprint == fp)
        .unwrap();
    assert_eq!(r.issue, Some(IssueAction::Closed { number: 9 }));
    let fired = r.alert.as_ref().unwrap();
    assert_eq!(
        (fired.workflow.as_str(), fired.kind),
        ("CI", AlertKind::ConsecutiveFailures)
    );
    let md = report.to_markdown();
    assert!(md.contains("- recovered CI consecutive_failures"), "{md}");
    // A third invocation with nothing new says nothing and asks the model nothing.
    let quiet = o.monitor().await.unwrap();
    assert_eq!((quiet.runs, quiet.writes), (0, 0));
}
