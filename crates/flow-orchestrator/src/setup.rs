//! Building an [`Orchestrator`] from the configuration file and the environment.

use std::sync::Arc;
use std::time::Duration;

use flow_cache::{CacheStore, MemoryConfig, MemoryStore, RedisConfig, RedisStore};
use flow_llm::{ChatModel, ChatModelExt, ClientConfig, HttpClient, RetryPolicy};
use flow_publish::GitHubPublisher;
use flow_telemetry::RunQuery;
use flow_telemetry::github::{GitHubClient, GitHubConfig};
use flow_telemetry::lifecycle::LifecycleOptions;
use flow_telemetry::session::BranchScope;
use flow_telemetry::sink::github::GitHubIssueSink;
use flow_telemetry::source::github::GitHubSource;
use secrecy::SecretString;

use crate::config::{CacheBackend, FlowConfig};
use crate::error::{Error, ErrorKind, Result};
use crate::orchestrator::{MonitorOptions, Orchestrator, OrchestratorBuilder};
use crate::sanitize::Sanitizer;

/// Variables that let flow-llm choose a provider on its own.
const PROVIDER_HINTS: [&str; 5] = [
    "FLOW_LLM_PROVIDER",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "AZURE_OPENAI_ENDPOINT",
    "GITHUB_TOKEN",
];

impl Orchestrator {
    /// Reads the configuration file named by `FLOW_CONFIG`, else the first of
    /// `.github/flow.yml` and `flow.toml` in the current directory, applies the process
    /// environment, and builds the orchestrator ([`Orchestrator::configure`]).
    ///
    /// # Errors
    /// As [`FlowConfig::from_path`], [`FlowConfig::apply_env`] and [`Orchestrator::configure`].
    pub fn from_env() -> Result<Self> {
        let env = |k: &str| std::env::var(k).ok();
        let config = match env("FLOW_CONFIG").filter(|p| !p.is_empty()) {
            Some(path) => FlowConfig::from_path(path)?,
            None => FlowConfig::discover(".")?.0,
        };
        Self::configure(&config.apply_env(env)?, env)?.build()
    }

    /// A builder holding what `config` and the environment (read through `var`, secrets
    /// included) describe; add or replace parts before [`OrchestratorBuilder::build`].
    ///
    /// - chat model: flow-llm's [`HttpClient`] from [`ClientConfig::from_lookup`] (the file's
    ///   `llm.*` stand in for `FLOW_LLM_PROVIDER`, `FLOW_LLM_MODEL`, `OPENAI_BASE_URL` and
    ///   `FLOW_LLM_TIMEOUT_SECS`), with `llm.max_retries` retries; none when no provider is
    ///   configured anywhere;
    /// - cache store: memory or Redis per `cache.*`, caching the model's answers for
    ///   `cache.ttl_secs`;
    /// - run source and issue sink: flow-telemetry's [`GitHubSource`] and [`GitHubIssueSink`]
    ///   on `telemetry.repository` (else `GITHUB_REPOSITORY`), at `GITHUB_API_URL` (default
    ///   `https://api.github.com`), with `GITHUB_TOKEN` when set; the sink puts all of
    ///   `issues.labels` on new issues (creating missing labels), finds open ones by the first,
    ///   and closes them on recovery per `telemetry.close_on_recovery`;
    /// - publisher: flow-publish's [`GitHubPublisher`] when `GITHUB_TOKEN` is set, on
    ///   `GITHUB_API_URL` when set;
    /// - rules and monitor options from `telemetry.*`.
    ///
    /// Must be called inside a tokio runtime (the GitHub client needs one).
    ///
    /// `config` should already carry the environment ([`FlowConfig::apply_env`]).
    ///
    /// # Errors
    /// [`ErrorKind::Llm`] when the provider is configured but incomplete (naming the missing
    /// variable); [`ErrorKind::Cache`] for a bad Redis URL; [`ErrorKind::Publish`] when the
    /// HTTP client cannot be built; [`ErrorKind::Telemetry`] for an invalid `GITHUB_API_URL`.
    pub fn configure(
        config: &FlowConfig,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<OrchestratorBuilder> {
        let var = |k: &str| var(k).filter(|v| !v.trim().is_empty());
        let mut builder = Orchestrator::builder()
            .with_rules(config.telemetry.rules.clone())
            .with_monitor_options(monitor_options(config));

        if let Some((model, name, scope)) = chat_model(config, &var)? {
            // The request carries its model from the top: the cache key (and every other
            // decorator) sees the model that will answer, never an empty placeholder.
            builder = builder
                .with_chat_model(model)
                .with_model_name(name)
                .with_cache_scope(scope);
            if let Some(store) = cache_store(config)? {
                builder = builder
                    .with_cache_store(store)
                    .with_cache_ttl(Duration::from_secs(config.cache.ttl_secs))
                    .with_cache_stale(Duration::from_secs(config.cache.stale_secs));
            }
        }
        if let Some((owner, repo)) = config.repository() {
            let server = var("GITHUB_SERVER_URL").unwrap_or_else(|| "https://github.com".into());
            builder = builder.with_sanitizer(Sanitizer::default().with_repo(&server, owner, repo));
            let mut gh = GitHubConfig::new(owner, repo);
            if let Some(api) = var("GITHUB_API_URL") {
                gh = gh.with_base_url(api);
            }
            if let Some(token) = var("GITHUB_TOKEN") {
                gh = gh.with_token(SecretString::from(token));
            }
            let client = GitHubClient::new(gh)?;
            let sink = GitHubIssueSink::new(client.clone())
                .with_close_on_recovery(config.telemetry.close_on_recovery)
                .with_labels(config.issues.labels.iter().cloned());
            builder = builder
                .with_run_source(Arc::new(GitHubSource::new(client)))
                .with_issue_sink(Arc::new(sink));
        }
        if let Some(token) = var("GITHUB_TOKEN") {
            let mut publisher = GitHubPublisher::new(SecretString::from(token))?;
            if let Some(api) = var("GITHUB_API_URL") {
                publisher = publisher.with_api_base(api);
            }
            builder = builder.with_publisher(Arc::new(publisher));
        }
        Ok(builder)
    }
}

/// The monitor options `config` gives (what [`Orchestrator::configure`] sets).
pub fn monitor_options(config: &FlowConfig) -> MonitorOptions {
    let t = &config.telemetry;
    let mut query = RunQuery::new();
    if let Some(w) = &t.workflow {
        query = query.with_workflow(w.clone());
    }
    let branch = t
        .branch
        .as_deref()
        .or(t.rules.branch.as_deref())
        .map_or(BranchScope::Default, BranchScope::parse);
    MonitorOptions {
        query,
        max_pages: t.max_pages,
        triage: t.triage,
        branch,
        lifecycle: LifecycleOptions {
            close_on_recovery: t.close_on_recovery,
            renotify_after_ms: i64::from(t.rules.renotify_after_hours) * 3_600_000,
            accept_after_runs: t.rules.accept_after_runs,
            max_writes: t.max_writes,
        },
        event: None,
        reset_state: false,
    }
}

/// A chat model with the model name its requests carry and its cache scope.
type ConfiguredModel = (Arc<dyn ChatModel>, String, String);

/// The chat model, its model name and its cache scope (provider and base URL), or `None` when
/// no provider is set.
fn chat_model(
    config: &FlowConfig,
    var: &impl Fn(&str) -> Option<String>,
) -> Result<Option<ConfiguredModel>> {
    let llm = &config.llm;
    let configured = llm.provider.is_some() || PROVIDER_HINTS.iter().any(|k| var(k).is_some());
    if !configured {
        return Ok(None);
    }
    let timeout = llm.timeout_secs.map(|t| t.to_string());
    // The file's values stand in for flow-llm's variables; the environment was already
    // applied to `config`, so it wins.
    let lookup = |k: &str| -> Option<String> {
        let from_file = match k {
            "FLOW_LLM_PROVIDER" => llm.provider.clone(),
            "FLOW_LLM_MODEL" => llm.model.clone(),
            "OPENAI_BASE_URL" => llm.base_url.clone(),
            "FLOW_LLM_TIMEOUT_SECS" => timeout.clone(),
            _ => None,
        };
        from_file.or_else(|| var(k))
    };
    let client_config = ClientConfig::from_lookup(lookup)?;
    let scope = cache_scope(&client_config);
    let name = client_config.model().to_owned();
    let client = HttpClient::new(client_config)?;
    let policy = RetryPolicy::default().with_max_retries(llm.max_retries);
    Ok(Some((Arc::new(client.with_retry(policy)), name, scope)))
}

/// The cache scope of a client: its provider and base URL (the organization of GitHub Models
/// and the Azure endpoint are part of the URL), so two servers never share answers.
pub(crate) fn cache_scope(config: &ClientConfig) -> String {
    format!("{} {}", config.provider().name(), config.base_url())
}

fn cache_store(config: &FlowConfig) -> Result<Option<Arc<dyn CacheStore>>> {
    let c = &config.cache;
    Ok(match c.backend {
        CacheBackend::None => None,
        CacheBackend::Memory => Some(Arc::new(MemoryStore::new(
            MemoryConfig::new().with_max_bytes(c.max_bytes),
        )?)),
        CacheBackend::Redis => {
            let url = c.url.as_deref().ok_or_else(|| {
                Error::new(ErrorKind::Config {
                    key: "cache.url".into(),
                    detail: "expected a redis:// URL when cache.backend is redis".into(),
                })
            })?;
            Some(Arc::new(RedisStore::new(&RedisConfig::new(url))?))
        }
    })
}
