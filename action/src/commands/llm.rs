//! The LLM stack built from `LlmArgs`: HTTP client, retries, model fallback.

use std::time::Duration;

use anyhow::Context as _;
use flow_llm::{ChatModel, ChatModelExt as _, ClientConfig, Fallback, HttpClient, RetryPolicy};

use crate::cli::{CacheBackend, LlmArgs, Provider};

/// A ready model and the request defaults that go with it.
pub(crate) struct Llm {
    /// The stack: retrying clients, chained by fallback when several models are named.
    pub(crate) model: Box<dyn ChatModel>,
    /// The primary model's name.
    pub(crate) name: String,
    /// The whole decision's deadline.
    pub(crate) timeout: Duration,
}

/// Builds the stack. Secrets are read from the options (or the variables clap fell back to).
pub(crate) fn build(args: &LlmArgs) -> anyhow::Result<Llm> {
    let models: Vec<String> = args
        .model
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
        .collect();
    let key = args
        .api_key
        .as_ref()
        .map(crate::cli::Secret::to_secret_string);
    let base = args.base_url.as_deref();
    let mut config = match args.provider {
        Provider::Openai => {
            let key = key.context(
                "--api-key (or OPENAI_API_KEY) is required for provider openai; use --provider \
                 compatible for a local server",
            )?;
            let c = ClientConfig::openai(key);
            match base {
                Some(b) => c.with_base_url(b),
                None => c,
            }
        }
        Provider::GithubModels => {
            let token = key
                .or_else(|| std::env::var("GITHUB_TOKEN").ok().map(Into::into))
                .context("--api-key or GITHUB_TOKEN is required for provider github-models")?;
            let c = ClientConfig::github_models(token);
            match base {
                Some(b) => c.with_base_url(b),
                None => c,
            }
        }
        Provider::Azure => {
            let endpoint = base
                .context("--base-url (the Azure OpenAI endpoint) is required for provider azure")?;
            let key = key.context("--api-key is required for provider azure")?;
            let deployment = models
                .first()
                .context("--model (the deployment name) is required for provider azure")?;
            ClientConfig::azure(endpoint, key, deployment.clone())
        }
        Provider::Compatible => {
            let url = base.context("--base-url is required for provider compatible")?;
            let model = models
                .first()
                .context("--model is required for provider compatible")?;
            ClientConfig::compatible(url, key, model.clone())
        }
    };
    if let Some(first) = models.first() {
        config = config.with_model(first.clone());
    }
    let timeout = Duration::from_secs(args.timeout_secs.max(1));
    config = config.with_timeout(timeout);
    let name = config.model().to_owned();
    let scope = format!("{}:{}", config.provider().name(), config.base_url());
    let client = || -> anyhow::Result<_> {
        Ok(HttpClient::new(config.clone())?.with_retry(RetryPolicy::default()))
    };
    let model: Box<dyn ChatModel> = if models.len() > 1 {
        let mut chain = Fallback::new(client()?);
        for m in &models[1..] {
            chain = chain.then_model(client()?, m.clone());
        }
        Box::new(chain)
    } else {
        Box::new(client()?)
    };
    let cache = match args.cache {
        CacheBackend::Off => None,
        CacheBackend::Memory => Some(flow_cache::Cache::in_memory(
            flow_cache::MemoryConfig::new().with_max_bytes(64 << 20),
        )?),
        CacheBackend::Redis => {
            let url = args
                .redis_url
                .as_ref()
                .context("--redis-url (or FLOW_REDIS_URL) is required for --cache redis")?;
            let store = flow_cache::RedisStore::new(&flow_cache::RedisConfig::new(url.expose()))?;
            Some(flow_cache::Cache::new(store))
        }
    };
    let model: Box<dyn ChatModel> = match cache {
        Some(cache) => Box::new(
            flow_llm::Cached::new(model, cache, scope)?
                .with_ttl(Duration::from_secs(args.cache_ttl_secs)),
        ),
        None => model,
    };
    Ok(Llm {
        model,
        name,
        timeout,
    })
}

/// Reads `@path` as the file's text; any other value is itself.
pub(crate) fn text_or_file(value: &str) -> anyhow::Result<String> {
    match value.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {path}")),
        None => Ok(value.to_owned()),
    }
}

/// A current-thread runtime for one subcommand (built after parsing, so `--help` stays fast).
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}
