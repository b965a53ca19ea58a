//! The [`Orchestrator`], its builder, and the LLM operations (`delegate`, `review_issue`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use flow_cache::{Cache, CacheStore};
use flow_llm::{
    Accounting, Budget, Budgeted, ChatModel, ChatRequest, Decision, Message, ReviewVerdict, Totals,
};
use flow_publish::Publisher;
use flow_telemetry::lifecycle::LifecycleOptions;
use flow_telemetry::otlp::TraceExporter;
use flow_telemetry::session::BranchScope;
use flow_telemetry::source::event::Event;
use flow_telemetry::state::{MemoryStateStore, StateStore};
use flow_telemetry::{Clock, EvidenceSource, IssueSink, Rules, RunQuery, RunSource, SystemClock};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::error::{Error, Result};
use crate::sanitize::Sanitizer;

/// How `monitor` reads runs and what it does with alerts.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorOptions {
    /// The runs to list: the workflow as typed (display name, file name or id) and filters.
    pub query: RunQuery,
    /// Pages read by the first invocation (the backfill); later ones read only what is new.
    pub max_pages: u32,
    /// Ask the chat model (when there is one) for a triage of each new problem.
    pub triage: bool,
    /// The branch observed (default: the repository's default branch).
    pub branch: BranchScope,
    /// The issue lifecycle: close on recovery, renotify, accept after, max writes.
    pub lifecycle: LifecycleOptions,
    /// The `workflow_run` / `workflow_job` event that triggered the invocation.
    pub event: Option<Event>,
    /// Discard the saved state first.
    pub reset_state: bool,
}

impl Default for MonitorOptions {
    fn default() -> Self {
        Self {
            query: RunQuery::default(),
            max_pages: 10,
            triage: true,
            branch: BranchScope::Default,
            lifecycle: LifecycleOptions::default(),
            event: None,
            reset_state: false,
        }
    }
}

/// The facade: wires a chat model, a cache, a run source, an issue sink and a publisher
/// together, each behind its trait. Build it with [`Orchestrator::builder`], or from the
/// configuration file and the environment with [`Orchestrator::from_env`] or
/// [`Orchestrator::configure`].
///
/// Each operation needs only its own components: `delegate` and `review_issue` the chat
/// model, `monitor` the run source (the chat model, for triage, and the issue sink are
/// optional: without a sink the alerts are only reported), `publish` the publisher. A
/// missing one is an [`ErrorKind::Missing`](crate::ErrorKind::Missing).
#[derive(Clone)]
pub struct Orchestrator {
    pub(crate) model: Option<Arc<dyn ChatModel>>,
    pub(crate) model_name: String,
    pub(crate) max_tokens: Option<u32>,
    pub(crate) accounting: Accounting,
    pub(crate) source: Option<Arc<dyn RunSource>>,
    pub(crate) sink: Option<Arc<dyn IssueSink>>,
    pub(crate) publisher: Option<Arc<dyn Publisher>>,
    pub(crate) rules: Rules,
    pub(crate) monitor: MonitorOptions,
    pub(crate) state: Arc<dyn StateStore>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) sanitizer: Sanitizer,
    pub(crate) evidence: Option<Arc<dyn EvidenceSource>>,
    pub(crate) triage_cache: Option<Cache>,
    pub(crate) triage_budget: usize,
    pub(crate) exporter: Option<Arc<dyn TraceExporter>>,
}

impl fmt::Debug for Orchestrator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Orchestrator")
            .field("model", &self.model.is_some())
            .field("model_name", &self.model_name)
            .field("source", &self.source.is_some())
            .field("sink", &self.sink.is_some())
            .field("publisher", &self.publisher.is_some())
            .field("evidence", &self.evidence.is_some())
            .field("rules", &self.rules)
            .field("monitor", &self.monitor)
            .field("state", &self.state.describe())
            .field("exporter", &self.exporter)
            .finish()
    }
}

/// Builds an [`Orchestrator`]; every part is optional. Each `with_*` takes its part by
/// value (`HttpClient`, `FileSource`, `DryRunSink`...) or already shared (`Arc<T>`, `Arc<dyn
/// Trait>`): the builder shares it itself.
#[derive(Default)]
pub struct OrchestratorBuilder {
    model: Option<Arc<dyn ChatModel>>,
    model_name: String,
    max_tokens: Option<u32>,
    budget: Option<Budget>,
    cache: Option<Arc<dyn CacheStore>>,
    cache_scope: Option<String>,
    cache_ttl: Option<Duration>,
    cache_stale: Option<Duration>,
    source: Option<Arc<dyn RunSource>>,
    sink: Option<Arc<dyn IssueSink>>,
    publisher: Option<Arc<dyn Publisher>>,
    rules: Rules,
    monitor: MonitorOptions,
    state: Option<Arc<dyn StateStore>>,
    clock: Option<Arc<dyn Clock>>,
    sanitizer: Option<Sanitizer>,
    evidence: Option<Arc<dyn EvidenceSource>>,
    triage_budget: Option<usize>,
    exporter: Option<Arc<dyn TraceExporter>>,
}

impl fmt::Debug for OrchestratorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OrchestratorBuilder")
            .field("model", &self.model.is_some())
            .field("cache", &self.cache.is_some())
            .field("source", &self.source.is_some())
            .field("sink", &self.sink.is_some())
            .field("publisher", &self.publisher.is_some())
            .finish_non_exhaustive()
    }
}

impl OrchestratorBuilder {
    /// The chat model answering `delegate`, `review_issue` and triage (with its own retry or
    /// fallback decorators, if any).
    #[must_use]
    pub fn with_chat_model(mut self, model: impl ChatModel + 'static) -> Self {
        self.model = Some(Arc::new(model));
        self
    }

    /// The model name put in requests; empty (the default) lets the chat model use its own
    /// default model.
    #[must_use]
    pub fn with_model_name(mut self, name: impl Into<String>) -> Self {
        self.model_name = name.into();
        self
    }

    /// The most completion tokens of each answer (`max_completion_tokens` on every request).
    #[must_use]
    pub fn with_max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = Some(max_tokens);
        self
    }

    /// Limits what this orchestrator may spend (flow-llm's `Budgeted`, outside the cache:
    /// cache hits are free). Usage is counted either way ([`Orchestrator::usage`]).
    #[must_use]
    pub fn with_budget(mut self, budget: Budget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Caches the chat model's answers in `store` (flow-llm's `Cached` decorator).
    #[must_use]
    pub fn with_cache_store(mut self, store: impl CacheStore + 'static) -> Self {
        self.cache = Some(Arc::new(store));
        self
    }

    /// Cache keys are scoped to `scope` (use the server's base URL); default `flow-orchestrator`.
    #[must_use]
    pub fn with_cache_scope(mut self, scope: impl Into<String>) -> Self {
        self.cache_scope = Some(scope.into());
        self
    }

    /// How long a cached answer is fresh (default flow-llm's `DEFAULT_CACHE_TTL`).
    #[must_use]
    pub fn with_cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = Some(ttl);
        self
    }

    /// How long after its TTL a stale answer may stand in when the model fails.
    #[must_use]
    pub fn with_cache_stale(mut self, stale: Duration) -> Self {
        self.cache_stale = Some(stale);
        self
    }

    /// Where `monitor` reads runs and jobs.
    #[must_use]
    pub fn with_run_source(mut self, source: impl RunSource + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// Where `monitor` opens and updates issues.
    #[must_use]
    pub fn with_issue_sink(mut self, sink: impl IssueSink + 'static) -> Self {
        self.sink = Some(Arc::new(sink));
        self
    }

    /// What `publish` releases with.
    #[must_use]
    pub fn with_publisher(mut self, publisher: impl Publisher + 'static) -> Self {
        self.publisher = Some(Arc::new(publisher));
        self
    }

    /// The detector thresholds (validated by [`OrchestratorBuilder::build`]).
    #[must_use]
    pub fn with_rules(mut self, rules: Rules) -> Self {
        self.rules = rules;
        self
    }

    /// How `monitor` reads runs and handles alerts.
    #[must_use]
    pub fn with_monitor_options(mut self, options: MonitorOptions) -> Self {
        self.monitor = options;
        self
    }

    /// The monitor options set so far (to adjust one and set them again).
    pub fn monitor_options(&self) -> &MonitorOptions {
        &self.monitor
    }

    /// Whether `monitor` asks the chat model for a triage of each alert (default true).
    #[must_use]
    pub fn with_triage(mut self, triage: bool) -> Self {
        self.monitor.triage = triage;
        self
    }

    /// Where `monitor` remembers its state between invocations (a file, Redis); default in
    /// memory, shared by the clones of the orchestrator.
    #[must_use]
    pub fn with_state_store(mut self, store: Arc<dyn StateStore>) -> Self {
        self.state = Some(store);
        self
    }

    /// The clock that dates reports (default the system clock).
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// How model-written text is made safe before it reaches GitHub (triage, review
    /// messages). Default: no link stays live; [`Orchestrator::configure`] keeps the
    /// repository's own links.
    #[must_use]
    pub fn with_sanitizer(mut self, sanitizer: Sanitizer) -> Self {
        self.sanitizer = Some(sanitizer);
        self
    }

    /// Where triage reads the evidence of a failing run (annotations, log tails, commits);
    /// without one, triage sees only the jobs from the run source.
    #[must_use]
    pub fn with_evidence_source(mut self, evidence: Arc<dyn EvidenceSource>) -> Self {
        self.evidence = Some(evidence);
        self
    }

    /// The byte budget of a triage prompt (default
    /// [`DEFAULT_PROMPT_BUDGET`](crate::triage::DEFAULT_PROMPT_BUDGET); at least 2,048).
    #[must_use]
    pub fn with_triage_budget(mut self, bytes: usize) -> Self {
        self.triage_budget = Some(bytes.max(2_048));
        self
    }

    /// Where `monitor` exports the trace of each run it observes newly completed (OTLP:
    /// flow-telemetry's [`OtlpExporter`](flow_telemetry::otlp::OtlpExporter)); export failures
    /// are reported in [`MonitorReport::otlp`](crate::MonitorReport::otlp), never an error.
    #[must_use]
    pub fn with_trace_exporter(mut self, exporter: Arc<dyn TraceExporter>) -> Self {
        self.exporter = Some(exporter);
        self
    }

    /// The orchestrator.
    ///
    /// # Errors
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) for invalid rules,
    /// `max_pages == 0`, or a cache without a model name (the cache key must cover the model); [`ErrorKind::Llm`](crate::ErrorKind::Llm) if the cache decorator
    /// cannot be set up.
    pub fn build(self) -> Result<Orchestrator> {
        self.rules.validate().map_err(|e| match e.kind() {
            flow_telemetry::ErrorKind::Config { key, detail } => {
                Error::config(format!("rules.{key}"), detail.clone())
            }
            _ => Error::config("rules", e.to_string()),
        })?;
        if self.monitor.max_pages == 0 {
            return Err(Error::config(
                "max_pages",
                "expected an integer >= 1, got 0",
            ));
        }
        // Triages are cached by (fingerprint, run) in the same store as the answers.
        let triage_cache = self.cache.as_ref().map(|s| Cache::from_arc(Arc::clone(s)));
        let model = match (self.model, self.cache) {
            (Some(_), Some(_)) if self.model_name.trim().is_empty() => {
                // The cache key is taken from the request: without the model in it, two models
                // would share (and serve each other) the same answers.
                return Err(Error::config(
                    "model_name",
                    "expected the model name (with_model_name) when answers are cached: the \
                     cache key must cover the model",
                ));
            }
            (Some(model), Some(store)) => {
                let mut cached = flow_llm::Cached::new(
                    model,
                    Cache::from_arc(store),
                    self.cache_scope
                        .unwrap_or_else(|| "flow-orchestrator".to_owned()),
                )?;
                if let Some(ttl) = self.cache_ttl {
                    cached = cached.with_ttl(ttl);
                }
                if let Some(stale) = self.cache_stale {
                    cached = cached.with_stale(stale);
                }
                Some(Arc::new(cached) as Arc<dyn ChatModel>)
            }
            (model, _) => model,
        };
        // Outermost: every call, cache hits included, is counted.
        let accounting = Accounting::new();
        let model = model.map(|m| {
            Arc::new(
                Budgeted::new(m, self.budget.unwrap_or_default())
                    .with_accounting(accounting.clone()),
            ) as Arc<dyn ChatModel>
        });
        Ok(Orchestrator {
            model,
            model_name: self.model_name,
            max_tokens: self.max_tokens,
            accounting,
            source: self.source,
            sink: self.sink,
            publisher: self.publisher,
            rules: self.rules,
            monitor: self.monitor,
            state: self
                .state
                .unwrap_or_else(|| Arc::new(MemoryStateStore::new())),
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            sanitizer: self.sanitizer.unwrap_or_default(),
            evidence: self.evidence,
            triage_cache,
            triage_budget: self
                .triage_budget
                .unwrap_or(crate::triage::DEFAULT_PROMPT_BUDGET),
            exporter: self.exporter,
        })
    }
}

impl Orchestrator {
    /// A builder with nothing configured.
    pub fn builder() -> OrchestratorBuilder {
        OrchestratorBuilder::default()
    }

    /// The chat model, cache decorator included.
    pub fn chat_model(&self) -> Option<&Arc<dyn ChatModel>> {
        self.model.as_ref()
    }

    /// The model name every request carries (empty: the chat model's own default).
    pub fn model_name(&self) -> &str {
        &self.model_name
    }

    /// What the chat model has spent so far: calls, attempts, cache hits, tokens.
    pub fn usage(&self) -> Totals {
        self.accounting.totals()
    }

    /// The detector thresholds in force.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// The monitor options.
    pub fn monitor_options(&self) -> &MonitorOptions {
        &self.monitor
    }

    /// The same orchestrator remembering its monitor state in `store` instead: what a
    /// service does per work lease, with a store fenced by the lease (`flow serve`'s workers
    /// and `Coordinator::state_store`), so a stale holder's save is refused.
    #[must_use]
    pub fn with_state_store(mut self, store: Arc<dyn StateStore>) -> Self {
        self.state = store;
        self
    }

    /// The sanitizer applied to model-written text before it is returned for GitHub.
    pub fn sanitizer(&self) -> &Sanitizer {
        &self.sanitizer
    }

    pub(crate) fn model(&self) -> Result<&Arc<dyn ChatModel>> {
        self.model.as_ref().ok_or_else(|| {
            Error::missing(
                "chat model",
                "set OPENAI_API_KEY, OPENAI_BASE_URL or GITHUB_TOKEN, or call with_chat_model",
            )
        })
    }

    /// A request for the configured model with `prompt` as the user message, after an
    /// optional system message; complete from the start (model, `max_completion_tokens`).
    pub fn request(&self, system: Option<&str>, prompt: &str) -> ChatRequest {
        let mut request = self.empty_request();
        if let Some(system) = system {
            request = request.message(Message::system(system));
        }
        request.message(Message::user(prompt))
    }

    /// A request with no messages yet, carrying the configured model and parameters.
    pub fn empty_request(&self) -> ChatRequest {
        let mut request = ChatRequest::new(self.model_name.clone());
        request.max_completion_tokens = self.max_tokens;
        request
    }

    /// Fills what `request` leaves unset with the configured model and parameters.
    pub fn complete_request(&self, mut request: ChatRequest) -> ChatRequest {
        if request.model.is_empty() {
            request.model.clone_from(&self.model_name);
        }
        if request.max_completion_tokens.is_none() && request.max_tokens.is_none() {
            request.max_completion_tokens = self.max_tokens;
        }
        request
    }

    /// Free-form delegation: the model's text answer to `prompt`.
    ///
    /// # Errors
    /// [`ErrorKind::Missing`](crate::ErrorKind::Missing) without a chat model;
    /// [`ErrorKind::Llm`](crate::ErrorKind::Llm) when the call fails or the answer is empty.
    pub async fn delegate_text(&self, system: Option<&str>, prompt: &str) -> Result<String> {
        let model = self.model()?;
        let response = model
            .complete(&self.request(system, prompt))
            .instrument(tracing::info_span!("flow.delegate"))
            .await?;
        response
            .text()
            .filter(|t| !t.trim().is_empty())
            .map(str::to_owned)
            .ok_or_else(|| {
                flow_llm::Error::new(
                    flow_llm::ErrorKind::InvalidAnswer,
                    format!(
                        "model {} answered with no text: expected a text answer",
                        response.meta.model
                    ),
                )
                .into()
            })
    }

    /// Typed delegation: an answer of type `T` (strict JSON schema, checked locally, asked
    /// again once on a mismatch; see flow-llm's `delegate`).
    ///
    /// # Errors
    /// As [`Orchestrator::delegate_text`].
    pub async fn delegate<T>(&self, system: Option<&str>, prompt: &str) -> Result<Decision<T>>
    where
        T: JsonSchema + DeserializeOwned,
    {
        self.delegate_request(self.request(system, prompt)).await
    }

    /// Typed delegation of a request built by the caller (extra messages, temperature,
    /// deadline, cache TTL...).
    ///
    /// # Errors
    /// As [`Orchestrator::delegate_text`].
    pub async fn delegate_request<T>(&self, request: ChatRequest) -> Result<Decision<T>>
    where
        T: JsonSchema + DeserializeOwned,
    {
        let request = self.complete_request(request);
        Ok(flow_llm::delegate(self.model()?.as_ref(), request)
            .instrument(tracing::info_span!("flow.delegate"))
            .await?)
    }

    /// Whether `issue` is resolved given `evidence` (flow-llm's `review_issue` preset). The
    /// verdict's `message` and `refinement` are sanitized ([`Sanitizer`]): they are meant to be
    /// posted.
    ///
    /// # Errors
    /// As [`Orchestrator::delegate_text`]; an empty issue or evidence is an
    /// [`ErrorKind::Llm`](crate::ErrorKind::Llm) invalid-prompt error.
    pub async fn review_issue(
        &self,
        issue: &str,
        evidence: &str,
    ) -> Result<Decision<ReviewVerdict>> {
        let model = self.model()?;
        let mut decision =
            flow_llm::review_issue_with(model.as_ref(), self.empty_request(), issue, evidence)
                .instrument(tracing::info_span!("flow.review_issue"))
                .await?;
        let v = &mut decision.value;
        v.message = self.sanitizer.sanitize(&v.message);
        v.refinement = self.sanitizer.sanitize(&v.refinement);
        Ok(decision)
    }
}
