//! What an author gets from the crate root: a report of a whole history dated from a clock,
//! listing every problem that fired (recovered or still open), and a truncation flag when
//! a page limit cut the runs read.

use flow_telemetry::{
    AlertKind, Conclusion, FileSource, Fingerprint, ManualClock, Poller, ProblemStatus, Report,
    Rules, Run, RunId, RunQuery, RunStatus, SystemClock,
};

const AT: i64 = 1_767_571_200_000; // 2026-01-05T00:00:00Z

fn run(id: u64, workflow: &str, conclusion: Conclusion) -> Run {
    let created = id as i64 * 600_000;
    Run {
        id: RunId(id),
        name: workflow.into(),
        head_branch: "main".into(),
        status: RunStatus::Completed,
        conclusion: Some(conclusion),
        created_at: Some(created),
        run_started_at: Some(created + 5_000),
        updated_at: Some(created + 65_000),
        html_url: format!("https://github.com/o/r/actions/runs/{id}"),
        ..Run::default()
    }
}

/// CI breaks three times, recovers, breaks and recovers again; Deploy breaks and stays broken.
fn history() -> Vec<Run> {
    use Conclusion::{Failure, Success};
    let plan = [
        ("CI", Success),
        ("CI", Failure),
        ("CI", Failure),
        ("CI", Failure),
        ("CI", Success),
        ("CI", Failure),
        ("CI", Failure),
        ("CI", Failure),
        ("CI", Success),
        ("Deploy", Success),
        ("Deploy", Failure),
        ("Deploy", Failure),
        ("Deploy", Failure),
    ];
    plan.iter()
        .enumerate()
        .map(|(i, (w, c))| run(i as u64 + 1, w, *c))
        .collect()
}

#[test]
fn a_report_lists_every_problem_of_the_history_fired_recovered_or_open() {
    let clock = ManualClock::new(AT);
    let report = Report::of_runs(&history(), &Rules::default(), &clock);
    assert_eq!(report.generated_at_ms, AT, "dated by the clock");

    // Only Deploy's problem is active at the end...
    let active: Vec<(&str, AlertKind)> = report
        .alerts
        .iter()
        .map(|a| (a.workflow.as_str(), a.kind))
        .collect();
    assert_eq!(active, [("Deploy", AlertKind::ConsecutiveFailures)]);

    // ...but the history shows CI's, which fired twice and recovered twice.
    let ci = report
        .problems
        .iter()
        .find(|p| p.fingerprint == Fingerprint::of("CI", AlertKind::ConsecutiveFailures))
        .expect("CI's streak is in the history");
    assert_eq!(ci.status, ProblemStatus::Recovered);
    assert_eq!((ci.fired, ci.recovered), (2, 2));
    assert_eq!(
        ci.first_fired_at_ms,
        run(4, "CI", Conclusion::Failure).updated_at.unwrap()
    );
    assert_eq!(
        ci.last_fired_at_ms,
        run(8, "CI", Conclusion::Failure).updated_at.unwrap()
    );
    assert_eq!(
        ci.last_recovered_at_ms,
        run(9, "CI", Conclusion::Success).updated_at
    );
    assert_eq!(ci.last_alert.run_id, 8);

    let deploy = report
        .problems
        .iter()
        .find(|p| p.workflow == "Deploy")
        .unwrap();
    assert!(deploy.is_open());
    assert_eq!((deploy.fired, deploy.recovered), (1, 0));
    assert_eq!(deploy.last_recovered_at_ms, None);
    assert_eq!(
        report.recovered_problems().count(),
        report.problems.len() - 1
    );

    // Every rendering carries it; the JSON round-trips.
    let json = report.to_json();
    assert!(json.contains("\"problems\""), "{json}");
    let back: Report = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report);
    let md = report.to_markdown();
    assert!(md.contains("### Problems over the history"), "{md}");
    assert!(
        md.contains("| recovered | CI | `consecutive_failures` | 2 | 2 |"),
        "{md}"
    );
    assert!(
        md.contains("| open | Deploy | `consecutive_failures` | 1 | 0 |"),
        "{md}"
    );

    // The unix-ms constructor is unchanged: active alerts only, no history.
    let plain = Report::from_runs(&history(), &Rules::default(), AT);
    assert!(plain.problems.is_empty());
    assert!(!plain.to_json().contains("\"problems\""));
}

#[test]
fn the_system_clock_dates_a_report_now() {
    let before = chrono::Utc::now().timestamp_millis();
    let report = Report::of_runs(&history(), &Rules::default(), &SystemClock);
    assert!(report.generated_at_ms >= before);
}

#[test]
fn a_truncated_report_says_so() {
    let report =
        Report::of_runs(&history(), &Rules::default(), &ManualClock::new(AT)).with_truncated(true);
    assert!(report.to_json().contains("\"truncated\": true"));
    assert!(report.to_markdown().contains("**Truncated**"));
    let whole = Report::of_runs(&history(), &Rules::default(), &ManualClock::new(AT));
    assert!(!whole.to_json().contains("truncated"));
}

#[tokio::test]
async fn a_poll_cut_by_its_page_limit_is_flagged_truncated() {
    let runs: Vec<Run> = (1..=250)
        .map(|i| run(i, "CI", Conclusion::Success))
        .collect();
    // The first poll reads one page by default: 100 of 250 runs.
    let mut poller = Poller::new(FileSource::new(runs.clone()), RunQuery::new());
    let batch = poller.poll().await.unwrap();
    assert_eq!(batch.completed.len(), 100);
    assert!(batch.truncated, "150 older runs were not read");

    // Three pages hold them all: not truncated.
    let mut poller = Poller::new(FileSource::new(runs), RunQuery::new()).with_first_pages(3);
    let batch = poller.poll().await.unwrap();
    assert_eq!(batch.completed.len(), 250);
    assert!(!batch.truncated);
}
