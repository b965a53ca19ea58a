//! Delegate a typed decision to any Chat Completions server.
//!
//! ```sh
//! # OpenAI
//! OPENAI_API_KEY=sk-... cargo run -p flow-examples --example delegate
//! # Any compatible server (Ollama, vLLM, LiteLLM): base URL, key (or "-" for none), model
//! cargo run -p flow-examples --example delegate -- http://localhost:11434/v1 - llama3.2
//! # GitHub Models inside a workflow (permissions: models: read)
//! FLOW_LLM_PROVIDER=github-models GITHUB_TOKEN=... cargo run -p flow-examples --example delegate
//! ```
//!
//! Without arguments the client is configured from the environment (`OPENAI_API_KEY`,
//! `OPENAI_BASE_URL`, `FLOW_LLM_MODEL`, `GITHUB_TOKEN`, `AZURE_OPENAI_*`) and the configuration
//! file, as the `flow` binary resolves them (`flow_orchestrator::Settings::client_config`).

use std::time::Duration;

use anyhow::Context;
use flow_llm::{
    ChatModelExt, ChatRequest, ClientConfig, HttpClient, Message, RetryPolicy, delegate,
};
use flow_orchestrator::settings::{Settings, Sources};
use schemars::JsonSchema;
use serde::Deserialize;

/// The decision we want back.
#[derive(Debug, Deserialize, JsonSchema)]
struct NextStep {
    /// What to fix next, in one sentence.
    fix: String,
    /// Whether it blocks a release.
    blocking: bool,
    /// How sure the model is, from 0 to 1.
    confidence: f64,
}

fn config_from_args() -> anyhow::Result<ClientConfig> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => {
            let env = |k: &str| std::env::var(k).ok();
            Settings::resolve(&Sources::new(&env))
                .and_then(|s| s.client_config())
                .context("configure a provider, or pass BASE_URL KEY [MODEL]")
        }
        [base_url, key, rest @ ..] => {
            let key = (key != "-").then(|| key.as_str().into());
            let model = rest
                .first()
                .cloned()
                .unwrap_or_else(|| "gpt-4o-mini".to_owned());
            Ok(ClientConfig::compatible(base_url, key, model))
        }
        _ => anyhow::bail!("usage: delegate [BASE_URL KEY|- [MODEL]]"),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let client = HttpClient::new(config_from_args()?)?;
    let model = client.with_retry(RetryPolicy::default());
    let request = ChatRequest::new("")
        .message(Message::system("You are a release engineer. Be brief."))
        .message(Message::user(
            "Open issues: (1) flaky test in the cache crate, (2) typo in README, \
             (3) crash when GITHUB_TOKEN is empty. What should be fixed next?",
        ))
        .with_timeout(Duration::from_secs(90));
    let decision = delegate::<NextStep>(&model, request).await?;
    let meta = &decision.response.meta;
    let out = serde_json::json!({
        "fix": decision.value.fix,
        "blocking": decision.value.blocking,
        "confidence": decision.value.confidence,
        "model": meta.model,
        "provider": meta.provider,
        "attempts": meta.attempts,
        "tokens": decision.usage.total(),
    });
    #[allow(clippy::print_stdout)]
    {
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(())
}
