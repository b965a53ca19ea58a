//! `flow-orchestrator`: the facade that composes flow-llm, flow-cache, flow-telemetry and
//! flow-publish through their traits. It holds no logic of its own beyond the wiring and
//! the one thing no crate below may know: the LLM triage of a telemetry alert.
//!
//! # One dependency
//!
//! `flow-orchestrator` (plus `tokio` for the runtime) is all a program needs: the crates it
//! composes are re-exported ([`flow_llm`], [`flow_cache`], [`flow_telemetry`],
//! [`flow_publish`]), and [`prelude`] brings the common types into scope: the clients and
//! decorators (`HttpClient`, `RetryPolicy`, `Budget`...), the sources and sinks
//! (`FileSource`, `GitHubSource`, `DryRunSink`...) and the traits. Typed answers derive
//! `Deserialize` and `JsonSchema` through the re-exported [`serde`] and [`schemars`] (see
//! [`prelude`] for the two attributes that point the derives at them).
//!
//! # Map
//!
//! - [`Orchestrator`], built with [`Orchestrator::builder`] from its parts, each by value
//!   or shared (`HttpClient` or `Arc<dyn ChatModel>`, a `CacheStore`, a `RunSource`, an
//!   `IssueSink`, a `Publisher`), or from the configuration file plus the environment with
//!   [`Orchestrator::from_env`] / [`Orchestrator::configure`].
//! - Operations: [`Orchestrator::delegate_text`] and [`Orchestrator::delegate`] (typed),
//!   [`Orchestrator::review_issue`], [`Orchestrator::monitor`] (returns a [`MonitorReport`]
//!   with JSON and Markdown renderings; it needs only a run source: without an issue sink
//!   the alerts are reported, without a chat model they are not triaged) and
//!   [`Orchestrator::publish`].
//! - [`config`]: [`FlowConfig`], the file `.github/flow.yml` or `flow.toml`, its JSON
//!   Schema, and the `FLOW_*` environment overrides.
//! - [`Triage`]: `{category, confidence, likely_cause, evidence_quote, verified,
//!   suggested_next_step}`, asked of the model for each alert from the evidence of its run
//!   (annotations, failing log lines, commits) within one byte budget, the quote checked
//!   against the evidence, cached per (fingerprint, run).
//! - [`Sanitizer`]: what the model wrote is made inert (mentions, foreign links, hidden
//!   comments, closing keywords) before it reaches GitHub.
//!
//! # Example
//!
//! A typed decision through the facade, then a monitoring cycle over an export with no
//! issue sink; a program would pass `HttpClient::new(settings.client_config()?)?`
//! ([`Settings::client_config`]) where this example uses a canned model. Everything comes from this crate.
//!
//! ```
//! use flow_orchestrator::prelude::*;
//!
//! #[derive(Deserialize, JsonSchema)]
//! #[serde(crate = "flow_orchestrator::serde")]
//! #[schemars(crate = "flow_orchestrator::schemars")]
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
//!         flow_orchestrator::serde_json::from_str(body).map_err(|e| {
//!             flow_llm::Error::new(flow_llm::ErrorKind::InvalidResponse, e.to_string())
//!         })
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let orchestrator = Orchestrator::builder()
//!     .with_chat_model(Canned.with_budget(Budget::unlimited().with_max_calls(10)))
//!     .with_run_source(FileSource::new(flow_telemetry::sample::history()?))
//!     .with_triage(false)
//!     .build()?;
//! let decision = orchestrator
//!     .delegate::<Label>(None, "Label this issue: the app crashes on start")
//!     .await?;
//! assert_eq!(decision.value.label, "bug");
//!
//! // Monitoring needs only the run source: the alerts are reported, no issue is raised. By
//! // default only the default branch is observed: main's 186 of the sample's 300 runs.
//! let report = orchestrator.monitor().await?;
//! assert_eq!(report.runs, 186);
//! assert!(report.alerts.iter().all(|a| a.issue.is_none()));
//! assert!(!report.truncated);
//!
//! // The same wiring from a configuration file; unknown keys are named.
//! let config = FlowConfig::from_yaml("cache:\n  backend: memory\n  ttl_secs: 600\n")?;
//! assert_eq!(config.cache.ttl_secs, 600);
//! let err = FlowConfig::from_yaml("cache:\n  ttl: 600\n").unwrap_err();
//! assert!(err.to_string().contains("`cache.ttl`"), "{err}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

// The README's example, compiled and run with the doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub mod config;
pub mod env;
mod error;
mod monitor;
mod orchestrator;
mod publish;
pub mod sanitize;
pub mod settings;
mod setup;
mod triage;

pub use config::{
    CONFIG_PATHS, CacheBackend, CacheConfig, FlowConfig, GithubConfig, IssuesConfig, LlmConfig,
    LlmProvider, ServeConfig, TelemetryConfig,
};
pub use error::{Error, ErrorKind, Result};
pub use monitor::{
    AlertOutcome, MAX_EXPORTED_RUNS, MonitorReport, OtlpOutcome, Recovery, StateInfo,
};
pub use orchestrator::{MonitorOptions, Orchestrator, OrchestratorBuilder};
pub use publish::{PublishReport, PublishRequest};
pub use sanitize::Sanitizer;
pub use settings::{Credentials, Origin, Settings};
pub use setup::monitor_options;
pub use triage::{
    Category, Confidence, DEFAULT_PROMPT_BUDGET, TRIAGE_SYSTEM_PROMPT, Triage, TriageAnswer,
    TriagePrompt, TriageUsage, triage_prompt,
};

pub mod prelude;

// The traits and types a caller needs to build an orchestrator, so one dependency suffices.
pub use flow_cache::CacheStore;
pub use flow_llm::{ChatModel, Decision, ReviewVerdict};
pub use flow_publish::Publisher;
pub use flow_telemetry::{EvidenceSource, IssueAction, IssueSink, Rules, RunSource};

// The crates it composes, whole.
pub use flow_cache;
pub use flow_github;
pub use flow_llm;
pub use flow_orchestrator_core;
pub use flow_publish;
pub use flow_telemetry;

// What typed answers and hand-written models need, so that they need no dependency of their
// own (see [`prelude`] for the derive attributes).
pub use async_trait::async_trait;
pub use schemars;
pub use serde;
pub use serde_json;
