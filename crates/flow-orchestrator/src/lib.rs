//! `flow-orchestrator`: the facade that composes flow-llm, flow-cache, flow-telemetry and
//! flow-publish through their traits. It holds no logic of its own beyond the wiring and
//! the one thing no crate below may know: the LLM triage of a telemetry alert.
//!
//! # Map
//!
//! - [`Orchestrator`], built with [`Orchestrator::builder`] from trait objects
//!   (`Arc<dyn ChatModel>`, `Arc<dyn CacheStore>`, `Arc<dyn RunSource>`,
//!   `Arc<dyn IssueSink>`, `Arc<dyn Publisher>`), or from the configuration file plus the
//!   environment with [`Orchestrator::from_env`] / [`Orchestrator::configure`].
//! - Operations: [`Orchestrator::delegate_text`] and [`Orchestrator::delegate`] (typed),
//!   [`Orchestrator::review_issue`], [`Orchestrator::monitor`] (returns a [`MonitorReport`]
//!   with JSON and Markdown renderings) and [`Orchestrator::publish`].
//! - [`config`]: [`FlowConfig`], the file `.github/flow.yml` or `flow.toml`, its JSON
//!   Schema, and the `FLOW_*` environment overrides.
//! - [`Triage`]: `{likely_cause, suggested_next_step}`, asked of the model for each alert
//!   from the failing jobs and steps of its run.
//!
//! # Example
//!
//! A typed decision through the facade; a program would pass flow-llm's `HttpClient` where
//! this example uses a canned model.
//!
//! ```
//! use std::sync::Arc;
//! use async_trait::async_trait;
//! use flow_llm::{ChatModel, ChatRequest, ChatResponse};
//! use flow_orchestrator::{FlowConfig, Orchestrator};
//!
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! struct Label {
//!     label: String,
//! }
//!
//! struct Canned;
//!
//! #[async_trait]
//! impl ChatModel for Canned {
//!     async fn complete(&self, _: &ChatRequest) -> flow_llm::Result<ChatResponse> {
//!         let body = r#"{"choices":[{"message":{"content":"{\"label\":\"bug\"}"},"finish_reason":"stop"}]}"#;
//!         serde_json::from_str(body).map_err(|e| {
//!             flow_llm::Error::new(flow_llm::ErrorKind::InvalidResponse, e.to_string())
//!         })
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let orchestrator = Orchestrator::builder()
//!     .with_chat_model(Arc::new(Canned))
//!     .build()?;
//! let decision = orchestrator
//!     .delegate::<Label>(None, "Label this issue: the app crashes on start")
//!     .await?;
//! assert_eq!(decision.value.label, "bug");
//!
//! // The same wiring from a configuration file; unknown keys are named.
//! let config = FlowConfig::from_yaml("cache:\n  backend: memory\n  ttl_secs: 600\n")?;
//! assert_eq!(config.cache.ttl_secs, 600);
//! let err = FlowConfig::from_yaml("cache:\n  ttl: 600\n").unwrap_err();
//! assert!(err.to_string().contains("`cache.ttl`"), "{err}");
//! # Ok::<(), flow_orchestrator::Error>(())
//! # }).unwrap();
//! ```

pub mod config;
mod error;
mod monitor;
mod orchestrator;
mod publish;
pub mod sanitize;
mod setup;
mod triage;

pub use config::{
    CONFIG_PATHS, CacheBackend, CacheConfig, FlowConfig, IssuesConfig, LlmConfig, TelemetryConfig,
};
pub use error::{Error, ErrorKind, Result};
pub use monitor::{AlertOutcome, MonitorReport, Recovery, StateInfo};
pub use orchestrator::{MonitorOptions, Orchestrator, OrchestratorBuilder};
pub use publish::{PublishReport, PublishRequest};
pub use sanitize::Sanitizer;
pub use setup::monitor_options;
pub use triage::{TRIAGE_SYSTEM_PROMPT, Triage, triage_prompt};

// The traits and types a caller needs to build an orchestrator, so one dependency suffices.
pub use flow_cache::CacheStore;
pub use flow_llm::{ChatModel, Decision, ReviewVerdict};
pub use flow_publish::Publisher;
pub use flow_telemetry::{IssueAction, IssueSink, Rules, RunSource};
