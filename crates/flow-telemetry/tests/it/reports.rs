//! Reports of the bundled sample: JSON and Markdown snapshots, the JSON Schema pinned,
//! Prometheus text checked by a parser.

use flow_telemetry::report::{self, Report};
use flow_telemetry::{Rules, sample};
use prometheus_parse::{Scrape, Value};

const AT: i64 = 1_767_571_200_000; // 2026-01-05T00:00:00Z

/// The sample's report a few runs into its failure burst, so it shows active alerts.
fn sample_report() -> Report {
    let runs = sample::history().unwrap();
    let mut monitor = flow_telemetry::Monitor::new(Rules::default());
    let mut first_alert = None;
    for (i, r) in runs.iter().enumerate() {
        if !monitor.observe(r).alerts.is_empty() && first_alert.is_none() {
            first_alert = Some(i);
        }
    }
    let end = first_alert.expect("the sample has a failure burst") + 3;
    Report::from_runs(&runs[..end], &Rules::default(), AT)
}

#[test]
fn json_report_snapshot() {
    let r = sample_report();
    assert_eq!(r.schema_version, 1);
    assert_eq!(r.workflows.len(), 3);
    assert!(!r.alerts.is_empty());
    let back: Report = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(back.alerts.len(), r.alerts.len(), "the JSON reads back");
    assert_eq!(
        back.workflows[0].kpis.values.count,
        r.workflows[0].kpis.values.count
    );
    insta::assert_snapshot!("report_json", r.to_json());
}

#[test]
fn json_schema_snapshot() {
    let schema = serde_json::to_string_pretty(&report::json_schema()).unwrap();
    insta::assert_snapshot!("report_schema", schema);
}

#[test]
fn markdown_report_snapshot() {
    let md = sample_report().to_markdown();
    assert!(md.contains("```mermaid\nxychart-beta"));
    assert!(md.contains("| CI |"));
    insta::assert_snapshot!("report_markdown", md);
}

#[test]
fn prometheus_text_parses() {
    let r = sample_report();
    let text = r.to_prometheus();
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    let data_lines = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .count();
    let quantile_lines = text.lines().filter(|l| l.contains("quantile=")).count();
    // Each summary folds its quantile lines into one sample per series.
    let summaries = scrape
        .samples
        .iter()
        .filter(|s| matches!(s.value, Value::Summary(_)))
        .count();
    assert_eq!(
        scrape.samples.len(),
        data_lines - quantile_lines + summaries,
        "every line parsed"
    );
    for w in &r.workflows {
        let runs = scrape
            .samples
            .iter()
            .find(|s| {
                s.metric == "flow_telemetry_runs"
                    && s.labels.get("workflow") == Some(w.kpis.key.workflow.as_str())
            })
            .unwrap();
        assert_eq!(runs.value, Value::Gauge(w.kpis.values.count as f64));
        let d = scrape
            .samples
            .iter()
            .find(|s| {
                s.metric == "flow_telemetry_run_duration_seconds"
                    && s.labels.get("workflow") == Some(w.kpis.key.workflow.as_str())
            })
            .unwrap();
        let Value::Summary(q) = &d.value else {
            panic!("{:?}", d.value)
        };
        assert_eq!(q.len(), 4);
        assert_eq!(
            q[0].count,
            w.kpis.values.duration_ms.unwrap().p50 as f64 / 1000.0
        );
    }
    let active = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "flow_telemetry_alert_active")
        .count();
    assert_eq!(active, r.alerts.len());
    assert!(scrape.docs.contains_key("flow_telemetry_outcome_ratio"));
}

#[test]
fn prometheus_labels_are_escaped() {
    let mut r = sample_report();
    r.workflows[0].kpis.key.workflow = "say \"hi\"\\now".into();
    let text = r.to_prometheus();
    assert!(text.contains(r#"workflow="say \"hi\"\\now""#));
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.labels.get("workflow") == Some(r#"say \"hi\"\\now"#)
                || s.labels.get("workflow") == Some("say \"hi\"\\now"))
    );
}

#[test]
fn job_and_step_kpis_reach_the_reports() {
    let mut jobs =
        flow_telemetry::source::file::parse_jobs(&crate::fixture("job-paginated.json")).unwrap();
    let mut failed = jobs[0].clone();
    failed.id += 1;
    failed.conclusion = Some(flow_telemetry::Conclusion::Failure);
    jobs.push(failed);
    let r = sample_report().with_jobs(&jobs);
    assert_eq!(r.jobs.len(), 1);
    assert_eq!(r.jobs[0].count, 2);
    assert_eq!(r.jobs[0].runner_errors, 1, "failed without a failed step");
    let md = r.to_markdown();
    assert!(
        md.contains("### Jobs") && md.contains("| build | 2 |"),
        "{md}"
    );
    assert!(r.to_json().contains("\"jobs\""));
    assert!(
        !sample_report().to_json().contains("\"jobs\""),
        "omitted when empty"
    );
}
