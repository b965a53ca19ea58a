//! Monitors a real repository: lists its recent workflow runs through the REST API, runs the
//! detectors, and prints the Markdown report. Issues are only opened with
//! `FLOW_TELEMETRY_OPEN_ISSUES=1`; otherwise a dry-run sink prints what it would do.
//!
//! ```sh
//! GITHUB_TOKEN=… GITHUB_REPOSITORY=owner/repo cargo run -p flow-examples --example monitor_repo
//! ```
//!
//! `GITHUB_API_URL` selects GitHub Enterprise Server. Needs the network: not run in CI.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use flow_telemetry::github::{GitHubClient, GitHubConfig};
use flow_telemetry::report::Report;
use flow_telemetry::sink::github::GitHubIssueSink;
use flow_telemetry::sink::{IssueSink, dispatch};
use flow_telemetry::source::github::GitHubSource;
use flow_telemetry::source::sync::Poller;
use flow_telemetry::{DryRunSink, Monitor, Rules, RunQuery, SecretString};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let slug = std::env::var("GITHUB_REPOSITORY")
        .map_err(|_| anyhow::anyhow!("GITHUB_REPOSITORY must be set to owner/repo"))?;
    let mut cfg = GitHubConfig::from_slug(&slug)?;
    if let Ok(url) = std::env::var("GITHUB_API_URL") {
        cfg = cfg.with_base_url(url);
    }
    if let Ok(token) = std::env::var("GITHUB_TOKEN") {
        cfg = cfg.with_token(SecretString::from(token));
    }
    let client = GitHubClient::new(cfg)?;
    let source = GitHubSource::new(client.clone());
    // Backfill five pages (500 runs), oldest completion first.
    let mut poller = Poller::new(source, RunQuery::new()).with_first_pages(5);
    let batch = poller.poll().await?;
    let sink: Box<dyn IssueSink> =
        if std::env::var("FLOW_TELEMETRY_OPEN_ISSUES").as_deref() == Ok("1") {
            Box::new(GitHubIssueSink::new(client.clone()))
        } else {
            Box::new(DryRunSink::new(Box::new(std::io::stderr())))
        };
    let mut monitor = Monitor::new(Rules::default());
    for run in &batch.completed {
        let obs = monitor.observe(run);
        if !obs.is_empty() {
            dispatch(sink.as_ref(), &obs).await?;
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let jobs: Vec<_> = batch
        .jobs
        .iter()
        .flat_map(|(_, j)| j.iter().cloned())
        .collect();
    let report = Report::from_monitor(&monitor, now).with_jobs(&jobs);
    print!("{}", report.to_markdown());
    eprintln!(
        "{} runs, {} list and {} job requests; rate limit remaining: {:?}",
        batch.completed.len(),
        batch.list_requests,
        batch.job_requests,
        client.rate_limit().remaining
    );
    Ok(())
}
