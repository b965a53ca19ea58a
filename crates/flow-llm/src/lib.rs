//! `flow-llm`: delegate decisions to an LLM over Chat Completions, and get back a typed answer
//! or a clear error, quickly and cheaply, even when the API misbehaves.
//!
//! - [`protocol`]: the wire types ([`ChatRequest`], [`ChatResponse`], [`Usage`]...), lenient
//!   where servers differ.
//! - [`ChatModel`]: the seam. [`HttpClient`] implements it for OpenAI, GitHub Models, Azure
//!   OpenAI and any compatible server ([`ClientConfig`], also from the environment); the
//!   decorators [`Retry`], [`Fallback`], [`Cached`] and [`Budgeted`] wrap any `ChatModel`.
//!   Two provided methods reach layers that keep answers through the whole stack:
//!   [`ChatModel::invalidate`] drops a rejected answer, [`ChatModel::peek`] finds a kept one
//!   (a spent budget still serves cache hits).
//! - [`delegate()`]: a typed answer `T: JsonSchema + DeserializeOwned`, with the schema in
//!   OpenAI's strict subset ([`schema`]), checked locally and asked again once on a mismatch;
//!   [`review_issue`] is a ready-made decision.
//! - [`prompt`]: validation, auto-conversion, `{{variable}}` templates and `.prompt.yml` files.
//! - [`Quirks`]: reasoning models get `max_completion_tokens` and no sampling knobs.
//!
//! A stack reads like tower layers: `Budgeted<Cached<Fallback>>` over `Retry<HttpClient>`s,
//! built with [`ChatModelExt`]: `client.clone().or_fallback_model(client, "gpt-4o-mini")
//! .with_memory_cache(base_url)?.with_budget(Budget::unlimited().with_max_tokens(n).hard())`.
//! The cache types it takes ([`Cache`], [`MemoryStore`], [`RedisStore`]) are re-exported.
//!
//! Usage adds up: [`Decision::usage`] and [`ChatResponse::spent_usage`] count the tokens a
//! call spent (zero for an answer served from the cache), the same as [`Budgeted`] counts;
//! the original call's usage stays in [`Decision::original_usage`] and the response. Token
//! budgets are soft by default and hard with [`Budget::hard`] (see [`Budget`]).
//!
//! # Example
//!
//! A typed decision from a model; here a stand-in `ChatModel`, where a program would use
//! `HttpClient::new(ClientConfig::openai(key))?.with_retry(RetryPolicy::default())` with the
//! key its own settings hold. The crate reads no environment variable: [`ClientConfig`] is
//! built from typed values (`openai`, `github_models`, `azure`, `compatible`, then `with_*`);
//! `flow_orchestrator::Settings::client_config` builds one from the environment and the
//! configuration file for programs that want that.
//!
//! ```
//! use async_trait::async_trait;
//! use flow_llm::{ChatModel, ChatRequest, ChatResponse, Message, ResponseFormat, delegate};
//!
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! struct Next {
//!     fix: String,
//!     urgent: bool,
//! }
//!
//! struct Canned;
//!
//! #[async_trait]
//! impl ChatModel for Canned {
//!     async fn complete(&self, req: &ChatRequest) -> flow_llm::Result<ChatResponse> {
//!         // The request carries the strict schema of `Next`.
//!         assert!(matches!(req.response_format, Some(ResponseFormat::JsonSchema { .. })));
//!         Ok(serde_json::from_str(r#"{"choices":[{"message":{"content":
//!             "{\"fix\":\"the flaky test\",\"urgent\":true}"},"finish_reason":"stop"}]}"#)
//!             .map_err(|e| flow_llm::Error::new(flow_llm::ErrorKind::InvalidResponse, e.to_string()))?)
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let request = ChatRequest::new("gpt-4o-mini").message(Message::user("What should be fixed next?"));
//! let decision = delegate::<Next>(&Canned, request).await?;
//! assert_eq!(decision.value.fix, "the flaky test");
//! assert!(decision.value.urgent);
//! # Ok::<(), flow_llm::Error>(())
//! # }).unwrap();
//! ```

// The README's example, compiled and run with the doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod budget;
mod cached;
mod client;
mod config;
mod delegate;
mod error;
mod fallback;
mod model;
mod preset;
pub mod prompt;
pub mod protocol;
mod quirks;
pub mod redact;
mod retry;
pub mod schema;

pub use budget::{Accounting, Budget, Budgeted, Enforcement, Totals, worst_case_tokens};
pub use cached::{Cached, DEFAULT_CACHE_TTL, DEFAULT_STALE};
pub use client::HttpClient;
pub use config::{
    ClientConfig, DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, GITHUB_MODELS_BASE_URL,
    OPENAI_BASE_URL, Provider,
};
pub use delegate::{AnswerMode, Decision, delegate, delegate_with};
pub use error::{ApiFailure, Error, ErrorKind, Result};
pub use fallback::Fallback;
pub use model::{ChatModel, ChatModelExt};
pub use preset::{REVIEW_ISSUE_SYSTEM_PROMPT, ReviewVerdict, review_issue, review_issue_with};
pub use protocol::{
    CacheStatus, CallOptions, ChatRequest, ChatResponse, Choice, FinishReason, JsonSchemaFormat,
    Message, ReasoningEffort, ResponseFormat, ResponseMeta, Role, Tool, ToolCall, ToolChoice,
    Usage,
};
pub use quirks::{ModelQuirks, Quirks};
pub use retry::{Retry, RetryPolicy, Sleeper, Timing, TokioSleeper};

/// The redacting secret type [`ClientConfig`] takes keys in (re-exported so that callers
/// need no extra dependency).
pub use secrecy::SecretString;

/// The cache crate behind [`Cached`], re-exported so that one dependency is enough.
pub use flow_cache;
/// The cache types [`ChatModelExt::with_cache`] takes: a [`Cache`] over a [`MemoryStore`]
/// (see [`ChatModelExt::with_memory_cache`]), a [`RedisStore`] shared by runners, or both
/// ([`TwoTier`]).
pub use flow_cache::{
    Cache, CacheStore, MemoryConfig, MemoryStore, RedisConfig, RedisStore, TwoTier,
};
