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
//! Environment (it wins over the file): `FLOW_LLM_PROVIDER`, `FLOW_LLM_MODEL`,
//! `OPENAI_BASE_URL`, `FLOW_LLM_TIMEOUT_SECS`, `FLOW_LLM_MAX_RETRIES`, `FLOW_CACHE_BACKEND`,
//! `FLOW_CACHE_URL`, `FLOW_CACHE_TTL_SECS`, `FLOW_REPOSITORY` (else `GITHUB_REPOSITORY`),
//! `FLOW_WORKFLOW`, `FLOW_MAX_PAGES`, `FLOW_TRIAGE`, `FLOW_RULES` (a rules file replacing
//! `telemetry.rules`), `FLOW_ISSUE_LABELS` (comma-separated). Secrets (`OPENAI_API_KEY`,
//! `GITHUB_TOKEN`, ...) only come from the environment, never from the file.

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
}

/// Which Chat Completions server to ask.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LlmConfig {
    /// `openai`, `github-models`, `azure` or `compatible`; unset: chosen from the environment
    /// (see flow-llm's `ClientConfig::from_lookup`).
    pub provider: Option<String>,
    /// The default model (deployment name for Azure).
    pub model: Option<String>,
    /// The base URL, the part before `/chat/completions` (OpenAI and compatible servers).
    pub base_url: Option<String>,
    /// Total timeout of one HTTP attempt, seconds.
    pub timeout_secs: Option<u64>,
    /// Retries after the first attempt, for retryable failures.
    pub max_retries: u32,
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            provider: None,
            model: None,
            base_url: None,
            timeout_secs: None,
            max_retries: 3,
        }
    }
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
    /// Ask the LLM for a triage of each new problem (when a model is configured).
    pub triage: bool,
    /// Close a problem's issue, naming the recovering run, when it recovers (default true).
    pub close_on_recovery: bool,
    /// GitHub writes (issues, comments, closes) per invocation; the rest is done next time.
    pub max_writes: u32,
    /// Where the monitor state lives between invocations: a file path or `redis://…`.
    pub state: Option<String>,
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
            triage: true,
            close_on_recovery: true,
            max_writes: 10,
            state: None,
            rules: Rules::default(),
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
        let de = serde_norway::Deserializer::from_str(text);
        let config: Self = serde_path_to_error::deserialize(de)
            .map_err(|e| Error::config(key_of(e.path()), e.inner().to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Parses and validates TOML.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] naming the unknown or invalid key.
    pub fn from_toml(text: &str) -> Result<Self> {
        let de = toml::Deserializer::parse(text)
            .map_err(|e| Error::config("(document)", e.message().to_string()))?;
        let config: Self = serde_path_to_error::deserialize(de)
            .map_err(|e| Error::config(key_of(e.path()), e.inner().message().to_string()))?;
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
        if let Some(p) = &self.llm.provider
            && ![
                "openai",
                "github-models",
                "github",
                "azure",
                "azure-openai",
                "compatible",
            ]
            .contains(&p.to_ascii_lowercase().as_str())
        {
            return Err(Error::config(
                "llm.provider",
                format!("expected openai, github-models, azure or compatible, got {p:?}"),
            ));
        }
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
            && split_repository(r).is_none()
        {
            return Err(Error::config(
                "telemetry.repository",
                format!("expected owner/name, got {r:?}"),
            ));
        }
        if self.telemetry.max_pages == 0 {
            return Err(Error::config(
                "telemetry.max_pages",
                "expected an integer >= 1, got 0",
            ));
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

    /// Applies the environment overrides read through `var` (see the [module docs](self)).
    ///
    /// # Errors
    /// [`ErrorKind::Config`] naming the variable whose value is invalid, or the rules file's
    /// errors for `FLOW_RULES`.
    pub fn apply_env(mut self, var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let var = |k: &str| var(k).filter(|v| !v.trim().is_empty());
        if let Some(v) = var("FLOW_LLM_PROVIDER") {
            self.llm.provider = Some(v);
        }
        if let Some(v) = var("FLOW_LLM_MODEL") {
            self.llm.model = Some(v);
        }
        if let Some(v) = var("OPENAI_BASE_URL") {
            self.llm.base_url = Some(v);
        }
        if let Some(v) = var("FLOW_LLM_TIMEOUT_SECS") {
            self.llm.timeout_secs = Some(number("FLOW_LLM_TIMEOUT_SECS", &v)?);
        }
        if let Some(v) = var("FLOW_LLM_MAX_RETRIES") {
            self.llm.max_retries = number("FLOW_LLM_MAX_RETRIES", &v)?;
        }
        if let Some(v) = var("FLOW_CACHE_BACKEND") {
            self.cache.backend = match v.to_ascii_lowercase().as_str() {
                "memory" => CacheBackend::Memory,
                "redis" => CacheBackend::Redis,
                "none" | "off" => CacheBackend::None,
                _ => {
                    return Err(Error::config(
                        "FLOW_CACHE_BACKEND",
                        format!("expected memory, redis or none, got {v:?}"),
                    ));
                }
            };
        }
        if let Some(v) = var("FLOW_CACHE_URL") {
            self.cache.url = Some(v);
            if var("FLOW_CACHE_BACKEND").is_none() {
                self.cache.backend = CacheBackend::Redis;
            }
        }
        if let Some(v) = var("FLOW_CACHE_TTL_SECS") {
            self.cache.ttl_secs = number("FLOW_CACHE_TTL_SECS", &v)?;
        }
        if let Some(v) = var("FLOW_REPOSITORY").or_else(|| {
            self.telemetry
                .repository
                .is_none()
                .then(|| var("GITHUB_REPOSITORY"))
                .flatten()
        }) {
            self.telemetry.repository = Some(v);
        }
        if let Some(v) = var("FLOW_WORKFLOW") {
            self.telemetry.workflow = Some(v);
        }
        if let Some(v) = var("FLOW_MAX_PAGES") {
            self.telemetry.max_pages = number("FLOW_MAX_PAGES", &v)?;
        }
        if let Some(v) = var("FLOW_TRIAGE") {
            self.telemetry.triage = boolean("FLOW_TRIAGE", &v)?;
        }
        if let Some(v) = var("FLOW_RULES") {
            self.telemetry.rules = Rules::from_path(&v).map_err(|e| match e.kind() {
                flow_telemetry::ErrorKind::Config { key, detail } => {
                    Error::config(format!("FLOW_RULES ({v}): {key}"), detail.clone())
                }
                _ => Error::config("FLOW_RULES", e.to_string()),
            })?;
        }
        if let Some(v) = var("FLOW_ISSUE_LABELS") {
            self.issues.labels = v
                .split(',')
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect();
        }
        self.validate().map_err(|e| match e.kind() {
            // Name the variable that most likely caused it when the file alone was valid.
            ErrorKind::Config { key, detail } => Error::config(
                format!("{key} (after the environment overrides)"),
                detail.clone(),
            ),
            _ => e,
        })?;
        Ok(self)
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

fn split_repository(r: &str) -> Option<(&str, &str)> {
    let (owner, name) = r.split_once('/')?;
    (!owner.is_empty() && !name.is_empty() && !name.contains('/')).then_some((owner, name))
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

fn number<T: std::str::FromStr>(name: &str, v: &str) -> Result<T> {
    v.trim()
        .parse()
        .map_err(|_| Error::config(name, format!("expected a whole number, got {v:?}")))
}

fn boolean(name: &str, v: &str) -> Result<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(Error::config(
            name,
            format!("expected true or false, got {v:?}"),
        )),
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
        assert!(!c.telemetry.triage);
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
