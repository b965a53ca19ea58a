//! The common types of every crate, for `use flow_orchestrator::prelude::*;`.
//!
//! - The facade: [`Orchestrator`], [`FlowConfig`], [`MonitorOptions`], [`MonitorReport`],
//!   [`Triage`].
//! - flow-llm: the client ([`HttpClient`], [`ClientConfig`]), the decorators through
//!   [`ChatModelExt`] (`with_retry`, `or_fallback_model`, `with_memory_cache`,
//!   `with_budget`), [`RetryPolicy`], [`Budget`], requests and typed answers ([`delegate`]).
//! - flow-cache: [`Cache`], [`MemoryStore`], [`MemoryConfig`], [`RedisStore`].
//! - flow-telemetry: the sources ([`FileSource`], [`GitHubSource`]), the sinks
//!   ([`DryRunSink`], [`GitHubIssueSink`]), [`Monitor`], [`Report`], [`Rules`], [`Run`],
//!   [`Alert`].
//! - flow-publish: [`Publisher`], [`GitHubPublisher`].
//! - [`macro@async_trait`], [`macro@Deserialize`], [`macro@Serialize`] and [`macro@JsonSchema`].
//!
//! The error types keep their crate's path (`flow_orchestrator::Error`,
//! `flow_llm::Error`...), so the prelude never shadows a program's own `Error` or `Result`.
//!
//! # Typed answers without a dependency on serde or schemars
//!
//! The derives of serde and schemars name their crate by path; point them at the re-exports:
//!
//! ```
//! use flow_orchestrator::prelude::*;
//!
//! #[derive(Debug, Deserialize, JsonSchema)]
//! #[serde(crate = "flow_orchestrator::serde")]
//! #[schemars(crate = "flow_orchestrator::schemars")]
//! struct Next {
//!     /// What to fix first.
//!     fix: String,
//!     urgent: bool,
//! }
//!
//! let schema = flow_orchestrator::schemars::schema_for!(Next);
//! assert!(schema.as_value()["properties"]["fix"].is_object());
//! ```
//!
//! A program that already depends on serde and schemars needs neither attribute.

pub use crate::{
    FlowConfig, MonitorOptions, MonitorReport, Orchestrator, OrchestratorBuilder, Triage,
};

pub use flow_llm::{
    Budget, Cached, ChatModel, ChatModelExt, ChatRequest, ChatResponse, ClientConfig, Decision,
    Enforcement, Fallback, HttpClient, Message, Retry, RetryPolicy, SecretString, Usage, delegate,
};

pub use flow_cache::{Cache, CacheStore, MemoryConfig, MemoryStore, RedisConfig, RedisStore};

pub use flow_telemetry::{
    Alert, AlertKind, DryRunSink, FileSource, GitHubIssueSink, GitHubSource, IssueSink, Monitor,
    Problem, ProblemStatus, Report, Rules, Run, RunQuery, RunSource, Severity, SystemClock,
};

pub use flow_publish::{GitHubPublisher, Publisher};

pub use async_trait::async_trait;
pub use schemars::JsonSchema;
pub use serde::{Deserialize, Serialize};
