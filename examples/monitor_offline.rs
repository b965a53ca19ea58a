//! Monitors the bundled sample history offline: streams its runs through the detectors,
//! prints what a dry-run issue sink would do, then the Markdown report (or JSON with `--json`,
//! Prometheus text with `--prometheus`).
//!
//! `cargo run -p flow-examples --example monitor_offline [-- --json | --prometheus]`
#![allow(clippy::print_stdout)]

use flow_telemetry::report::Report;
use flow_telemetry::sink::dispatch;
use flow_telemetry::{DryRunSink, Monitor, Rules, sample};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let runs = sample::history()?;
    let rules = Rules::default();
    let mut monitor = Monitor::new(rules);
    // Dry-run actions go to stderr so that stdout holds only the report.
    let sink = DryRunSink::new(Box::new(std::io::stderr()));
    for run in &runs {
        let obs = monitor.observe(run);
        if !obs.is_empty() {
            dispatch(&sink, &obs).await?;
        }
    }
    let generated_at = runs.iter().filter_map(|r| r.updated_at).max().unwrap_or(0);
    let report = Report::from_monitor(&monitor, generated_at);
    let arg = std::env::args().nth(1);
    match arg.as_deref() {
        Some("--json") => println!("{}", report.to_json()),
        Some("--prometheus") => print!("{}", report.to_prometheus()),
        _ => print!("{}", report.to_markdown()),
    }
    Ok(())
}
