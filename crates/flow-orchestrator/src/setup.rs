//! Building an [`Orchestrator`] from resolved [`Settings`] (typed: nothing here reads the
//! environment or parses a string), or, for library users, from a configuration and the
//! environment.

use std::sync::Arc;
use std::time::Duration;

use flow_cache::{CacheStore, MemoryConfig, MemoryStore, RedisConfig, RedisStore};
use flow_llm::{Budget, ChatModel, ChatModelExt, ClientConfig, Fallback, HttpClient, RetryPolicy};
use flow_publish::GitHubPublisher;
use flow_telemetry::RunQuery;
use flow_telemetry::github::{GitHubClient, GitHubConfig};
use flow_telemetry::lifecycle::LifecycleOptions;
use flow_telemetry::otlp::{OtlpConfig, OtlpExporter};
use flow_telemetry::session::BranchScope;
use flow_telemetry::sink::github::GitHubIssueSink;
use flow_telemetry::source::github::GitHubSource;
use secrecy::{ExposeSecret as _, SecretString};

use crate::config::{CacheBackend, FlowConfig, LlmProvider};
use crate::error::{Error, ErrorKind, Result};
use crate::orchestrator::{MonitorOptions, Orchestrator, OrchestratorBuilder};
use crate::sanitize::Sanitizer;
use crate::settings::{Settings, Sources};

impl Orchestrator {
    /// Resolves the settings from the process environment and the configuration file
    /// (`FLOW_CONFIG`, else `.github/flow.yml` or `flow.toml` here) and builds the
    /// orchestrator ([`Orchestrator::from_settings`]).
    ///
    /// # Errors
    /// As [`Settings::resolve`] and [`Orchestrator::from_settings`].
    pub fn from_env() -> Result<Self> {
        let env = |k: &str| std::env::var(k).ok();
        Self::from_settings(&Settings::resolve(&Sources::new(&env))?)?.build()
    }

    /// A builder holding what `config` and the environment (read through `var`: the secrets,
    /// and the provider guessed from them) describe. The environment's other settings are
    /// expected in `config` already ([`FlowConfig::apply_env`]).
    ///
    /// # Errors
    /// As [`Orchestrator::from_settings`].
    pub fn configure(
        config: &FlowConfig,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<OrchestratorBuilder> {
        let settings = Settings::resolve(&Sources::new(&var).with_config(config.clone()))?;
        Self::from_settings(&settings)
    }

    /// A builder holding what the resolved `settings` describe; add or replace parts before
    /// [`OrchestratorBuilder::build`].
    ///
    /// - chat model: flow-llm's [`HttpClient`] for the provider (configured, else guessed from
    ///   the credentials), with `llm.max_retries` retries, then one more client per
    ///   `llm.fallback_models` in a [`Fallback`] chain; every request names `llm.model` (else
    ///   the provider's default) from the start, carries `llm.max_tokens`, and the invocation
    ///   spends at most `llm.token_budget`; none when no provider can be had;
    /// - cache store: memory or Redis per `cache.*`, keyed by provider, base URL, model and
    ///   every parameter;
    /// - run source and issue sink: flow-telemetry's [`GitHubSource`] and [`GitHubIssueSink`]
    ///   on `telemetry.repository`, at `github.api_url`, with the GitHub token when set;
    /// - publisher: flow-publish's [`GitHubPublisher`] when a GitHub token is set;
    /// - trace exporter: flow-telemetry's [`OtlpExporter`] to `telemetry.otlp_endpoint` with
    ///   the `telemetry.otlp_headers` secret, when an endpoint is set;
    /// - rules and monitor options from `telemetry.*`; triage only when asked for
    ///   ([`Settings::triage`]).
    ///
    /// Must be called inside a tokio runtime (the GitHub client needs one).
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when the provider is incomplete (naming the missing setting);
    /// [`ErrorKind::Llm`] when the HTTP client cannot be built; [`ErrorKind::Cache`] for a
    /// bad Redis URL; [`ErrorKind::Publish`] or [`ErrorKind::Telemetry`] for the GitHub
    /// clients.
    pub fn from_settings(settings: &Settings) -> Result<OrchestratorBuilder> {
        let config = &settings.config;
        let creds = &settings.credentials;
        let mut options = monitor_options(config);
        options.triage = settings.triage();
        let mut builder = Orchestrator::builder()
            .with_rules(config.telemetry.rules.clone())
            .with_monitor_options(options);

        if let Some(provider) = settings.provider() {
            let (model, name, scope) = chat_model(config, provider, settings)?;
            // The request carries its model from the top: the cache key (and every other
            // decorator) sees the model that will answer, never an empty placeholder.
            builder = builder
                .with_chat_model(model)
                .with_model_name(name)
                .with_cache_scope(scope);
            if let Some(n) = config.llm.max_tokens {
                builder = builder.with_max_tokens(n);
            }
            if let Some(n) = config.llm.token_budget {
                builder = builder.with_budget(Budget::unlimited().with_max_tokens(n));
            }
            if let Some(store) = cache_store(config)? {
                builder = builder
                    .with_cache_store(store)
                    .with_cache_ttl(Duration::from_secs(config.cache.ttl_secs))
                    .with_cache_stale(Duration::from_secs(config.cache.stale_secs));
            }
        }
        let api_url = config.github.api_url.as_deref();
        if let Some((owner, repo)) = config.repository() {
            let server = config
                .github
                .server_url
                .as_deref()
                .unwrap_or("https://github.com");
            builder = builder.with_sanitizer(Sanitizer::default().with_repo(server, owner, repo));
            let mut gh = GitHubConfig::new(owner, repo);
            if let Some(api) = api_url {
                gh = gh.with_base_url(api.trim_end_matches('/'));
            }
            if let Some(token) = &creds.github_token {
                gh = gh.with_token(token.clone());
            }
            let client = GitHubClient::new(gh)?;
            let sink = GitHubIssueSink::new(client.clone())
                .with_close_on_recovery(config.telemetry.close_on_recovery)
                .with_labels(config.issues.labels.iter().cloned());
            let source = Arc::new(GitHubSource::new(client));
            builder = builder
                .with_run_source(Arc::clone(&source) as Arc<dyn flow_telemetry::RunSource>)
                .with_evidence_source(source)
                .with_issue_sink(Arc::new(sink));
        }
        if let Some(endpoint) = &config.telemetry.otlp_endpoint {
            builder = builder.with_trace_exporter(Arc::new(otlp_exporter(
                endpoint,
                creds.otlp_headers.as_ref(),
            )?));
        }
        if let Some(token) = &creds.github_token {
            let mut publisher = GitHubPublisher::new(token.clone())?;
            if let Some(api) = api_url {
                publisher = publisher.with_api_base(api);
            }
            builder = builder.with_publisher(Arc::new(publisher));
        }
        Ok(builder)
    }
}

/// The OTLP exporter for `endpoint` with the `name=value,…` headers of `headers`.
fn otlp_exporter(endpoint: &str, headers: Option<&SecretString>) -> Result<OtlpExporter> {
    let label = |key: &str, e: flow_telemetry::Error| {
        let detail = match e.kind() {
            flow_telemetry::ErrorKind::InvalidArgument { detail, .. } => detail.clone(),
            _ => e.to_string(),
        };
        Error::config(key, detail)
    };
    let mut config = OtlpConfig::new(endpoint).map_err(|e| label("telemetry.otlp_endpoint", e))?;
    if let Some(h) = headers {
        config = config
            .with_headers_text(h.expose_secret())
            .map_err(|e| label("telemetry.otlp_headers", e))?;
    }
    OtlpExporter::new(config).map_err(|e| label("telemetry.otlp_headers", e))
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
        triage: t.triage.unwrap_or_else(|| config.llm.is_explicit()),
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

/// `what` is missing for `provider`: an error naming the setting and how to give it.
fn missing(key: &str, provider: LlmProvider) -> Error {
    let how = crate::settings::spec_of(key)
        .map(|s| {
            let mut ways: Vec<String> = s.flag.iter().map(|f| format!("--{f}")).collect();
            ways.extend(s.env.iter().map(|v| (*v).to_owned()));
            ways.join(", ")
        })
        .unwrap_or_default();
    Error::config(
        key,
        format!("expected a value for provider {provider} (set it with {how})"),
    )
}

impl Settings {
    /// flow-llm's client configuration for the provider that will answer ([`Settings::provider`]:
    /// configured, else guessed from the credentials), from the resolved values: the one
    /// documented way from the environment (read through the lookup given to [`Sources`]) and
    /// the configuration file to a [`ClientConfig`]; flow-llm itself reads no variable.
    ///
    /// ```
    /// use flow_orchestrator::settings::{Settings, Sources};
    ///
    /// let lookup = |k: &str| (k == "OPENAI_API_KEY").then(|| "sk-test".to_owned());
    /// let config = Settings::resolve(&Sources::new(&lookup).without_file())?.client_config()?;
    /// assert_eq!(config.provider().name(), "openai");
    /// # Ok::<(), flow_orchestrator::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when no provider can be had (naming the variables that give one)
    /// or the provider lacks a value (naming the setting, its flag and its variables).
    pub fn client_config(&self) -> Result<ClientConfig> {
        let provider = self.provider().ok_or_else(|| {
            Error::config(
                "llm.provider",
                "no LLM provider configured: expected OPENAI_API_KEY, OPENAI_BASE_URL, \
                 AZURE_OPENAI_ENDPOINT or GITHUB_TOKEN (or FLOW_LLM_PROVIDER, --provider)",
            )
        })?;
        client_config(&self.config, provider, self)
    }
}

/// The HTTP client's configuration for `provider`, from typed values only.
fn client_config(
    config: &FlowConfig,
    provider: LlmProvider,
    settings: &Settings,
) -> Result<ClientConfig> {
    let llm = &config.llm;
    let key = settings.credentials.api_key.clone();
    let mut c = match provider {
        LlmProvider::Openai => {
            let mut c = ClientConfig::openai(key.ok_or_else(|| missing("llm.api_key", provider))?);
            if let Some(url) = &llm.base_url {
                c = c.with_base_url(url);
            }
            c
        }
        LlmProvider::GithubModels => {
            let token = key
                .or_else(|| settings.credentials.github_token.clone())
                .filter(|t| !t.expose_secret().is_empty())
                .ok_or_else(|| missing("github.token", provider))?;
            let mut c = match &llm.github_org {
                Some(org) => ClientConfig::github_models_org(token, org),
                None => ClientConfig::github_models(token),
            };
            if let Some(url) = &llm.base_url {
                c = c.with_base_url(url);
            }
            c
        }
        LlmProvider::Azure => {
            let endpoint = llm
                .base_url
                .as_deref()
                .ok_or_else(|| missing("llm.base_url", provider))?;
            let key = key.ok_or_else(|| missing("llm.api_key", provider))?;
            let deployment = llm
                .model
                .clone()
                .ok_or_else(|| missing("llm.model", provider))?;
            ClientConfig::azure(endpoint, key, deployment)
        }
        LlmProvider::Compatible => {
            let url = llm
                .base_url
                .as_deref()
                .ok_or_else(|| missing("llm.base_url", provider))?;
            let model = llm
                .model
                .clone()
                .ok_or_else(|| missing("llm.model", provider))?;
            ClientConfig::compatible(url, key, model)
        }
    };
    if let Some(m) = &llm.model {
        c = c.with_model(m.clone());
    }
    if let Some(t) = llm.timeout_secs {
        c = c.with_timeout(Duration::from_secs(t));
    }
    Ok(c)
}

/// The chat model (retries, then the fallback models), the model name every request
/// carries, and the cache scope (provider and base URL).
fn chat_model(
    config: &FlowConfig,
    provider: LlmProvider,
    settings: &Settings,
) -> Result<ConfiguredModel> {
    let client_config = client_config(config, provider, settings)?;
    let scope = cache_scope(&client_config);
    let name = client_config.model().to_owned();
    let client = HttpClient::new(client_config)?;
    let policy = RetryPolicy::default().with_max_retries(config.llm.max_retries);
    let fallbacks = &config.llm.fallback_models;
    if fallbacks.is_empty() {
        return Ok((Arc::new(client.with_retry(policy)), name, scope));
    }
    let mut chain = Fallback::new(client.clone().with_retry(policy));
    for model in fallbacks {
        chain = chain.then_model(client.clone().with_retry(policy), model.clone());
    }
    Ok((Arc::new(chain), name, scope))
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
