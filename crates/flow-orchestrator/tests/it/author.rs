//! The facade as a tool author uses it: parts by value, the crates through the prelude, no
//! silent caps.

use flow_orchestrator::prelude::*;
use flow_telemetry::ManualClock;

use crate::mocks::history;

fn monitor_over(runs: Vec<Run>, max_pages: u32) -> Orchestrator {
    Orchestrator::builder()
        .with_run_source(FileSource::new(runs))
        .with_monitor_options(MonitorOptions {
            max_pages,
            triage: false,
            ..MonitorOptions::default()
        })
        .with_clock(ManualClock::new(1_767_571_200_000))
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_page_limit_that_cuts_the_runs_is_reported_not_silent() {
    // 1,200 runs and the default 10 pages of 100: 1,000 are read, and the report says so.
    let o = monitor_over(history(1_200, 0), MonitorOptions::default().max_pages);
    let report = o.monitor().await.unwrap();
    assert_eq!((report.runs, report.pages), (1_000, 10));
    assert!(report.truncated);
    assert!(report.telemetry.truncated);
    assert_eq!(report.telemetry.generated_at_ms, 1_767_571_200_000);
    assert!(report.to_json().contains("\"truncated\": true"));
    assert!(
        report
            .to_markdown()
            .contains("**truncated** by the page limit")
    );

    // Twelve pages hold them all: nothing is cut, and the JSON has no flag.
    let report = monitor_over(history(1_200, 0), 12).monitor().await.unwrap();
    assert_eq!((report.runs, report.pages), (1_200, 12));
    assert!(!report.truncated && !report.telemetry.truncated);
    assert!(!report.to_json().contains("truncated"));
}

#[tokio::test]
async fn monitoring_needs_no_issue_sink() {
    let report = monitor_over(history(40, 5), 10).monitor().await.unwrap();
    assert!(!report.alerts.is_empty(), "the failure burst is open");
    assert!(
        report
            .alerts
            .iter()
            .all(|a| a.issue.is_none() && a.issue_error.is_none())
    );
    assert!(report.issues_ok());
}

#[test]
fn shared_parts_are_still_accepted() {
    use std::sync::Arc;
    let source: Arc<dyn RunSource> = Arc::new(FileSource::new(Vec::new()));
    let sink: Arc<dyn IssueSink> = Arc::new(DryRunSink::new(Box::new(std::io::sink())));
    let store: Arc<dyn CacheStore> = Arc::new(MemoryStore::new(MemoryConfig::default()).unwrap());
    let o = Orchestrator::builder()
        .with_run_source(source)
        .with_issue_sink(sink)
        .with_cache_store(store)
        .build()
        .unwrap();
    assert!(format!("{o:?}").contains("source: true"));
}
