//! The configuration file (`.github/flow.yml` or `flow.toml`) and its environment overrides.
//!
//! Every key is optional. An unknown key or a bad value is an error that names the key
//! (`cache.ttl_secs`) or the variable (`FLOW_CACHE_TTL_SECS`). [`json_schema`] gives the JSON
//! Schema of the file.
//!
//! ```yaml
//! llm:
//!   provider: openai        # openai | github-models | azure | compatible
//!   model: gpt-4o-mini
//!   base_url: https://api.openai.com/v1
//!   timeout_secs: 60
//!   max_retries: 3
//! cache:
//!   backend: memory         # memory | redis
//!   url: redis://127.0.0.1:6379   # when backend is redis
//!   ttl_secs: 3600
//!   stale_secs: 604800
//! telemetry:
//!   repository: octo/hello  # default: GITHUB_REPOSITORY
//!   workflow: ci.yml
//!   max_pages: 10
//!   triage: true
//!   close_on_recovery: false
//!   rules:                  # flow-telemetry's rules file, inline
//!     defaults:
//!       consecutive_failures: 3
//! issues:
//!   labels: [flow-telemetry]
//! ```
//!
//! The environment wins over the file and flags win over both: see
//! [`settings`](crate::settings) for the layering and the origin of each value, and
//! [`env::ALL`](crate::env::ALL) for every variable name. Secrets (`OPENAI_API_KEY`, `GITHUB_TOKEN`, ...)
//! only come from the environment or flags, never from the file.

use std::path::{Path, PathBuf};

use flow_telemetry::Rules;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

/// The whole configuration file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct FlowConfig {
    /// The LLM provider and model.
    pub llm: LlmConfig,
    /// The cache of LLM answers.
    pub cache: CacheConfig,
    /// What `monitor` watches and how.
    pub telemetry: TelemetryConfig,
    /// The issues `monitor` opens.
    pub issues: IssuesConfig,
    /// The GitHub REST API.
    pub github: GithubConfig,
    /// The long-running service, `flow serve`.
    pub serve: ServeConfig,
}

/// Which Chat Completions service to call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LlmProvider {
    /// api.openai.com (or `llm.base_url`), key from `OPENAI_API_KEY`.
    #[serde(alias = "open-ai")]
    Openai,
    /// GitHub Models, authenticated with a GitHub token (`permissions: models: read`).
    #[serde(alias = "github")]
    GithubModels,
    /// Azure OpenAI: `llm.base_url` is the resource endpoint, `llm.model` the deployment.
    #[serde(alias = "azure-openai")]
    Azure,
    /// Any compatible server (Ollama, vLLM, LiteLLM) at `llm.base_url`; the key is optional.
    Compatible,
}

impl LlmProvider {
    /// The name as written in the file and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Openai => "openai",
            Self::GithubModels => "github-models",
            Self::Azure => "azure",
            Self::Compatible => "compatible",
        }
    }
}

impl std::fmt::Display for LlmProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which Chat Completions server to ask, and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LlmConfig {
    /// `openai`, `github-models`, `azure` or `compatible`; unset: guessed from the credentials
    /// and the base URL.
    pub provider: Option<LlmProvider>,
    /// The model every request names (deployment name for Azure); unset: the provider's
    /// default.
    pub model: Option<String>,
    /// The base URL, the part before `/chat/completions` (Azure: the resource endpoint).
    pub base_url: Option<String>,
    /// GitHub Models: bill the calls to this organization.
    pub github_org: Option<String>,
    /// Total timeout of one HTTP attempt, seconds.
    pub timeout_secs: Option<u64>,
    /// Retries after the first attempt, for retryable failures.
    pub max_retries: u32,
    /// Models tried in order when the model fails in a way another model may not (5xx or 429
    /// after the retries, `insufficient_quota`, timeouts); a 401 or a bad request never falls
    /// back.
    pub fallback_models: Vec<String>,
    /// The most completion tokens one answer may use (`max_completion_tokens`).
    pub max_tokens: Option<u32>,
    /// The most tokens (prompt plus completion) one invocation may spend; cache hits are free.
    pub token_budget: Option<u64>,
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            provider: None,
            model: None,
            base_url: None,
            github_org: None,
            timeout_secs: None,
            max_retries: 3,
            fallback_models: Vec::new(),
            max_tokens: None,
            token_budget: None,
        }
    }
}

impl LlmConfig {
    /// Whether an LLM was asked for: a provider, a model or a base URL is set. Credentials
    /// alone (the workflow's `GITHUB_TOKEN`) do not turn the LLM on for `monitor`.
    pub fn is_explicit(&self) -> bool {
        self.provider.is_some() || self.model.is_some() || self.base_url.is_some()
    }
}

/// The GitHub REST API.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct GithubConfig {
    /// The REST API base URL (GitHub Enterprise Server, or a test server); unset:
    /// `https://api.github.com`.
    pub api_url: Option<String>,
    /// The web server (links in sanitized LLM text); unset: `https://github.com`.
    pub server_url: Option<String>,
}

/// The cache backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CacheBackend {
    /// In process memory (gone when the process exits).
    #[default]
    Memory,
    /// A Redis server shared by runners (`cache.url`).
    Redis,
    /// No cache.
    None,
}

/// The cache of LLM answers.
#[derive(Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// `memory`, `redis` or `none`.
    pub backend: CacheBackend,
    /// The Redis URL (`redis://host:6379/0`), required when `backend` is `redis`.
    pub url: Option<String>,
    /// How long an answer stays fresh, seconds.
    pub ttl_secs: u64,
    /// How long after that a stale answer may stand in when the model fails, seconds.
    pub stale_secs: u64,
    /// Memory backend bound, bytes.
    pub max_bytes: u64,
}

impl std::fmt::Debug for CacheConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A Redis URL may carry a password: show only its scheme.
        let url = self
            .url
            .as_deref()
            .map(|u| format!("{}://[redacted]", u.split("://").next().unwrap_or("?")));
        f.debug_struct("CacheConfig")
            .field("backend", &self.backend)
            .field("url", &url)
            .field("ttl_secs", &self.ttl_secs)
            .field("stale_secs", &self.stale_secs)
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            backend: CacheBackend::Memory,
            url: None,
            ttl_secs: flow_llm::DEFAULT_CACHE_TTL.as_secs(),
            stale_secs: flow_llm::DEFAULT_STALE.as_secs(),
            max_bytes: 64 << 20,
        }
    }
}

/// What `monitor` watches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// `owner/name`; unset: `GITHUB_REPOSITORY`.
    pub repository: Option<String>,
    /// Only runs of this workflow: its display name (`CI`, resolved once through the
    /// workflows list and remembered in the state), file name (`ci.yml`) or numeric id.
    pub workflow: Option<String>,
    /// The branch whose runs are observed and raise issues; unset: the repository's default
    /// branch (else the rules' `branch`); `*`: every branch.
    pub branch: Option<String>,
    /// At most this many pages of 100 runs are read by the first invocation (the backfill).
    pub max_pages: u32,
    /// Ask the LLM for a triage of each new problem; unset: only when an LLM is configured
    /// explicitly (`llm.provider`, `llm.model` or `llm.base_url`).
    pub triage: Option<bool>,
    /// Close a problem's issue, naming the recovering run, when it recovers (default true).
    pub close_on_recovery: bool,
    /// GitHub writes (issues, comments, closes) per invocation; the rest is done next time.
    pub max_writes: u32,
    /// Where the monitor state lives between invocations: a file path or `redis://…`.
    pub state: Option<String>,
    /// Export each run newly completed in an invocation as an OpenTelemetry trace to this
    /// OTLP/HTTP collector (`http://localhost:4318`; `/v1/traces` is appended). Credentials
    /// go in the headers (`--otlp-header`, `FLOW_OTLP_HEADERS`), never in the URL.
    pub otlp_endpoint: Option<String>,
    /// Detector thresholds: flow-telemetry's rules file, inline.
    pub rules: Rules,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            repository: None,
            workflow: None,
            branch: None,
            max_pages: 10,
            triage: None,
            close_on_recovery: true,
            max_writes: 10,
            state: None,
            otlp_endpoint: None,
            rules: Rules::default(),
        }
    }
}

/// What `flow serve` listens on and watches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// The address the HTTP server binds (`host:port`); default `127.0.0.1:8080`, behind a
    /// reverse proxy that terminates TLS (`0.0.0.0:8080` in a container).
    pub listen: String,
    /// Repositories (`owner/name`) watched by the reconciliation poll, besides
    /// `telemetry.repository` and those of `org`. Deliveries of other repositories are
    /// processed too.
    pub repositories: Vec<String>,
    /// An organisation whose every repository is watched (listed through the REST API and
    /// listed again every hour).
    pub org: Option<String>,
    /// Seconds between reconciliation polls of each watched repository (an incremental poll
    /// catches deliveries GitHub never retries); 0: no reconciliation.
    pub reconcile_secs: u64,
    /// Deliveries accepted and not yet taken by a worker, at most; past it the webhook answers
    /// 503 so GitHub records the failure.
    pub queue_capacity: u64,
    /// Repositories processed at once.
    pub workers: u64,
    /// Seconds a repository's work lease lasts unless renewed (renewed every third of it while
    /// working): how long a replica that died keeps its repositories from the others.
    pub lease_secs: u64,
    /// A file holding the webhook secret (a mounted secret, systemd's `LoadCredential`);
    /// `FLOW_WEBHOOK_SECRET` wins over it.
    pub webhook_secret_file: Option<String>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            repositories: Vec::new(),
            org: None,
            reconcile_secs: 300,
            queue_capacity: 1024,
            workers: 4,
            lease_secs: 60,
            webhook_secret_file: None,
        }
    }
}

/// The issues `monitor` opens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct IssuesConfig {
    /// The labels put on each new issue (each created when missing); the first one finds the
    /// open issues.
    pub labels: Vec<String>,
}

impl Default for IssuesConfig {
    fn default() -> Self {
        Self {
            labels: vec!["flow-telemetry".into()],
        }
    }
}

/// Where [`FlowConfig::discover`] looks, in order, relative to the repository root.
pub const CONFIG_PATHS: [&str; 2] = [".github/flow.yml", "flow.toml"];

impl FlowConfig {
    /// Parses and validates YAML.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] naming the unknown or invalid key.
    pub fn from_yaml(text: &str) -> Result<Self> {
        let tree: serde_json::Value =
            serde_norway::from_str(text).map_err(|e| Error::config("(document)", e.to_string()))?;
        Self::from_tree(tree)
    }

    /// Parses and validates TOML.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] naming the unknown or invalid key.
    pub fn from_toml(text: &str) -> Result<Self> {
        let tree: serde_json::Value = toml::from_str(text)
            .map_err(|e| Error::config("(document)", e.message().to_string()))?;
        Self::from_tree(tree)
    }

    /// The typed file from its tree. YAML and TOML both go through one JSON tree, as the
    /// settings do (`Settings::resolve`): one instantiation of the file's `Deserialize` instead
    /// of one per format keeps the release binary smaller (BENCHMARKS.md "Binary size"). An
    /// empty YAML document is the defaults.
    fn from_tree(tree: serde_json::Value) -> Result<Self> {
        let tree = match tree {
            serde_json::Value::Null => serde_json::Value::Object(serde_json::Map::new()),
            other => other,
        };
        let config: Self = serde_path_to_error::deserialize(tree)
            .map_err(|e| Error::config(key_of(e.path()), e.inner().to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Reads `path`: TOML when it ends in `.toml`, else YAML.
    ///
    /// # Errors
    /// [`ErrorKind::Io`] when unreadable, else as [`FlowConfig::from_yaml`].
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = read(path)?;
        if path.extension().is_some_and(|e| e == "toml") {
            Self::from_toml(&text)
        } else {
            Self::from_yaml(&text)
        }
    }

    /// The first of [`CONFIG_PATHS`] under `root` that exists, parsed; the defaults when none
    /// does. Returns the path read, if any.
    ///
    /// # Errors
    /// As [`FlowConfig::from_path`].
    pub fn discover(root: impl AsRef<Path>) -> Result<(Self, Option<PathBuf>)> {
        for rel in CONFIG_PATHS {
            let path = root.as_ref().join(rel);
            if path.is_file() {
                return Ok((Self::from_path(&path)?, Some(path)));
            }
        }
        Ok((Self::default(), None))
    }

    /// Checks the values serde cannot: ranges, the Redis URL, the rules.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] naming the first invalid key.
    pub fn validate(&self) -> Result<()> {
        if self.llm.timeout_secs == Some(0) {
            return Err(Error::config(
                "llm.timeout_secs",
                "expected whole seconds > 0, got 0",
            ));
        }
        if self.cache.backend == CacheBackend::Redis && self.cache.url.is_none() {
            return Err(Error::config(
                "cache.url",
                "expected a redis:// URL when cache.backend is redis",
            ));
        }
        if self.cache.ttl_secs == 0 {
            return Err(Error::config(
                "cache.ttl_secs",
                "expected whole seconds > 0, got 0",
            ));
        }
        if self.cache.max_bytes == 0 {
            return Err(Error::config(
                "cache.max_bytes",
                "expected bytes > 0, got 0",
            ));
        }
        if let Some(r) = &self.telemetry.repository
            && let Err(e) = flow_github::Repo::parse(r)
        {
            return Err(Error::config(
                "telemetry.repository",
                match e.kind() {
                    flow_github::ErrorKind::InvalidArgument { expected, .. } => {
                        format!("expected {expected}")
                    }
                    _ => format!("expected owner/name, got {r:?}"),
                },
            ));
        }
        if let Some(r) = self
            .serve
            .repositories
            .iter()
            .find(|r| split_repository(r).is_none())
        {
            return Err(Error::config(
                "serve.repositories",
                format!("expected owner/name, got {r:?}"),
            ));
        }
        if self.serve.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(Error::config(
                "serve.listen",
                format!(
                    "expected an address and port such as 127.0.0.1:8080, got {:?}",
                    self.serve.listen
                ),
            ));
        }
        if self.serve.queue_capacity == 0 || self.serve.workers == 0 || self.serve.lease_secs == 0 {
            let key = if self.serve.workers == 0 {
                "serve.workers"
            } else if self.serve.lease_secs == 0 {
                "serve.lease_secs"
            } else {
                "serve.queue_capacity"
            };
            return Err(Error::config(key, "expected an integer >= 1, got 0"));
        }
        if self.telemetry.max_pages == 0 {
            return Err(Error::config(
                "telemetry.max_pages",
                "expected an integer >= 1, got 0",
            ));
        }
        if let Some(endpoint) = &self.telemetry.otlp_endpoint {
            flow_telemetry::otlp::OtlpConfig::new(endpoint).map_err(|e| {
                let detail = match e.kind() {
                    flow_telemetry::ErrorKind::InvalidArgument { detail, .. } => detail.clone(),
                    _ => e.to_string(),
                };
                Error::config("telemetry.otlp_endpoint", detail)
            })?;
        }
        if self.issues.labels.iter().any(|l| l.trim().is_empty()) {
            return Err(Error::config(
                "issues.labels",
                "expected non-empty label names",
            ));
        }
        self.telemetry.rules.validate().map_err(|e| match e.kind() {
            flow_telemetry::ErrorKind::Config { key, detail } => {
                Error::config(format!("telemetry.rules.{key}"), detail.clone())
            }
            _ => Error::config("telemetry.rules", e.to_string()),
        })
    }

    /// Applies the environment overrides read through `var` (see the [module docs](self));
    /// the same layering as [`Settings::resolve`](crate::settings::Settings::resolve), with
    /// this configuration standing for the file.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] naming the variable whose value is invalid, or the rules file's
    /// errors for `FLOW_RULES`.
    pub fn apply_env(self, var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        use crate::settings::{Settings, Sources};
        Ok(Settings::resolve(&Sources::new(&var).with_config(self))?.config)
    }

    /// `telemetry.repository` split into owner and name.
    pub fn repository(&self) -> Option<(&str, &str)> {
        self.telemetry
            .repository
            .as_deref()
            .and_then(split_repository)
    }
}

/// The JSON Schema of the configuration file.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(FlowConfig)).unwrap_or_default()
}

/// `owner/name` split, when flow-github's one parser ([`flow_github::Repo::parse`]) accepts it.
fn split_repository(r: &str) -> Option<(&str, &str)> {
    flow_github::Repo::parse(r).ok()?;
    r.split_once('/')
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| {
        Error::new(ErrorKind::Io {
            path: path.display().to_string(),
            detail: e.to_string(),
        })
    })
}

fn key_of(p: &serde_path_to_error::Path) -> String {
    let s = p.to_string();
    if s == "." || s.is_empty() {
        "(document)".into()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        move |k| m.get(k).cloned()
    }

    fn key(e: &Error) -> String {
        match e.kind() {
            ErrorKind::Config { key, .. } => key.clone(),
            other => panic!("not a config error: {other}"),
        }
    }

    #[test]
    fn yaml_and_toml_read_the_same_file() {
        let y = FlowConfig::from_yaml(
            "llm:\n  provider: openai\n  model: gpt-4.1\ncache:\n  backend: redis\n  url: redis://127.0.0.1:6379\n  ttl_secs: 60\ntelemetry:\n  repository: octo/hello\n  rules:\n    defaults:\n      consecutive_failures: 2\nissues:\n  labels: [ci-health, bot]\n",
        )
        .unwrap();
        let t = FlowConfig::from_toml(
            "[llm]\nprovider = \"openai\"\nmodel = \"gpt-4.1\"\n[cache]\nbackend = \"redis\"\nurl = \"redis://127.0.0.1:6379\"\nttl_secs = 60\n[telemetry]\nrepository = \"octo/hello\"\n[telemetry.rules.defaults]\nconsecutive_failures = 2\n[issues]\nlabels = [\"ci-health\", \"bot\"]\n",
        )
        .unwrap();
        assert_eq!(y, t);
        assert_eq!(y.cache.backend, CacheBackend::Redis);
        assert_eq!(y.telemetry.rules.for_workflow("CI").consecutive_failures, 2);
        assert_eq!(y.repository(), Some(("octo", "hello")));
        assert_eq!(FlowConfig::from_yaml("").unwrap(), FlowConfig::default());
    }

    #[test]
    fn unknown_and_invalid_keys_are_named() {
        let e = FlowConfig::from_yaml("cache:\n  ttl: 5\n").unwrap_err();
        assert!(key(&e).starts_with("cache"), "{e}");
        assert!(e.to_string().contains("ttl"), "{e}");
        let e = FlowConfig::from_toml("[telemetry.rules.defaults]\nduraton_z = 3.0\n").unwrap_err();
        assert!(key(&e).starts_with("telemetry.rules.defaults"), "{e}");
        assert!(e.to_string().contains("duraton_z"), "{e}");
        let e = FlowConfig::from_yaml("cache:\n  ttl_secs: soon\n").unwrap_err();
        assert_eq!(key(&e), "cache.ttl_secs");
        let e = FlowConfig::from_yaml("cache:\n  backend: redis\n").unwrap_err();
        assert_eq!(key(&e), "cache.url");
        let e = FlowConfig::from_yaml("telemetry:\n  repository: nope\n").unwrap_err();
        assert_eq!(key(&e), "telemetry.repository");
        let e = FlowConfig::from_yaml("llm:\n  provider: skynet\n").unwrap_err();
        assert_eq!(key(&e), "llm.provider");
        let e = FlowConfig::from_yaml(
            "telemetry:\n  rules:\n    defaults:\n      failure_ewma_lambda: 2.0\n",
        )
        .unwrap_err();
        assert_eq!(key(&e), "telemetry.rules.defaults.failure_ewma_lambda");
    }

    #[test]
    fn environment_overrides_the_file_and_names_the_variable() {
        let c = FlowConfig::from_yaml("llm:\n  model: a\ntelemetry:\n  repository: o/file\n")
            .unwrap()
            .apply_env(env(&[
                ("FLOW_LLM_MODEL", "b"),
                ("GITHUB_REPOSITORY", "o/env"),
                ("FLOW_CACHE_URL", "redis://h:1"),
                ("FLOW_TRIAGE", "false"),
                ("FLOW_ISSUE_LABELS", "x, y,"),
            ]))
            .unwrap();
        assert_eq!(c.llm.model.as_deref(), Some("b"));
        // The file's repository wins over GITHUB_REPOSITORY, FLOW_REPOSITORY over both.
        assert_eq!(c.repository(), Some(("o", "file")));
        assert_eq!(c.cache.backend, CacheBackend::Redis);
        assert_eq!(c.telemetry.triage, Some(false));
        assert_eq!(c.issues.labels, ["x", "y"]);
        let c = FlowConfig::default()
            .apply_env(env(&[("GITHUB_REPOSITORY", "o/env")]))
            .unwrap();
        assert_eq!(c.repository(), Some(("o", "env")));

        for (var, value) in [
            ("FLOW_CACHE_TTL_SECS", "soon"),
            ("FLOW_TRIAGE", "maybe"),
            ("FLOW_CACHE_BACKEND", "disk"),
            ("FLOW_MAX_PAGES", "-1"),
        ] {
            let e = FlowConfig::default()
                .apply_env(env(&[(var, value)]))
                .unwrap_err();
            assert_eq!(key(&e), var);
        }
    }

    #[test]
    fn discover_prefers_the_github_file() {
        let dir = std::env::temp_dir().join(format!("flow-orch-discover-{}", std::process::id()));
        std::fs::create_dir_all(dir.join(".github")).unwrap();
        assert_eq!(FlowConfig::discover(&dir).unwrap().1, None);
        std::fs::write(dir.join("flow.toml"), "[llm]\nmodel = \"toml\"\n").unwrap();
        let (c, p) = FlowConfig::discover(&dir).unwrap();
        assert_eq!(
            (c.llm.model.as_deref(), p),
            (Some("toml"), Some(dir.join("flow.toml")))
        );
        std::fs::write(dir.join(".github/flow.yml"), "llm:\n  model: yml\n").unwrap();
        assert_eq!(
            FlowConfig::discover(&dir).unwrap().0.llm.model.as_deref(),
            Some("yml")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn debug_hides_the_redis_password() {
        let c = FlowConfig::default()
            .apply_env(env(&[("FLOW_CACHE_URL", "redis://:hunter2@cache:6379")]))
            .unwrap();
        let d = format!("{c:?}");
        assert!(
            !d.contains("hunter2") && d.contains("redis://[redacted]"),
            "{d}"
        );
    }

    #[test]
    fn schema_covers_every_section() {
        let s = json_schema().to_string();
        for k in [
            "llm",
            "cache",
            "ttl_secs",
            "telemetry",
            "rules",
            "issues",
            "labels",
        ] {
            assert!(s.contains(k), "{k}");
        }
    }
}
