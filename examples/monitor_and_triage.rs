//! The whole loop through the facade, offline: the bundled sample history cut while its
//! failure burst is still going on, the detectors, an LLM triage of each open alert, and a
//! dry-run issue sink that prints the issue it would open with the triage in it.
//!
//! ```sh
//! # A canned stand-in answers the triage (no network):
//! cargo run -p flow-examples --example monitor_and_triage
//! # A real model answers (any Chat Completions server):
//! OPENAI_API_KEY=sk-... cargo run -p flow-examples --example monitor_and_triage
//! ```
#![allow(clippy::print_stdout)]

use std::sync::Arc;

use async_trait::async_trait;
use flow_llm::{ChatModel, ChatRequest, ChatResponse};
use flow_orchestrator::{FlowConfig, Orchestrator};
use flow_telemetry::source::file::FileSource;
use flow_telemetry::{DryRunSink, ManualClock, sample};

/// Runs of the sample kept: the burst in `CI` has begun and not yet ended.
const CUT: usize = 234;

/// Answers every request with the same triage, standing in for a model when none is set.
struct CannedTriage;

#[async_trait]
impl ChatModel for CannedTriage {
    async fn complete(&self, _: &ChatRequest) -> flow_llm::Result<ChatResponse> {
        let answer = serde_json::json!({
            "category": "test",
            "confidence": "low",
            "likely_cause": "(canned) the failing job's failing step, from the run's jobs",
            "evidence_quote": "(canned) no quote: this model reads nothing",
            "suggested_next_step": "(canned) set OPENAI_API_KEY to ask a real model"
        });
        let body = serde_json::json!({
            "model": "canned",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": answer.to_string()}}]
        });
        serde_json::from_value(body)
            .map_err(|e| flow_llm::Error::new(flow_llm::ErrorKind::InvalidResponse, e.to_string()))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let runs: Vec<_> = sample::history()?.into_iter().take(CUT).collect();
    let last = runs.iter().filter_map(|r| r.updated_at).max().unwrap_or(0);

    // The file and the environment choose the model and the cache, as in the binary; the
    // run source and the sink are replaced for an offline, dry run.
    let env = |k: &str| std::env::var(k).ok();
    let config = FlowConfig::discover(".")?.0.apply_env(env)?;
    let mut builder = Orchestrator::configure(&config, env)?
        .with_run_source(Arc::new(FileSource::new(runs)))
        .with_issue_sink(Arc::new(DryRunSink::new(Box::new(std::io::stdout()))))
        .with_clock(Arc::new(ManualClock::new(last)));
    if config.llm.provider.is_none()
        && env("OPENAI_API_KEY").is_none()
        && env("OPENAI_BASE_URL").is_none()
    {
        builder = builder.with_chat_model(Arc::new(CannedTriage));
    }
    let report = builder.build()?.monitor().await?;

    println!("\n{}", report.to_markdown());
    for a in report.triage_failures() {
        println!(
            "triage failed for {}: {}",
            a.alert.title(),
            a.triage_error.as_deref().unwrap_or("")
        );
    }
    Ok(())
}
