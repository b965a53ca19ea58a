//! Settings resolved once, at the top: defaults < configuration file < environment < flags and
//! action inputs. Each value remembers where it came from ([`Origin`]), so `flow config` can
//! say it, and an invalid value is an error naming the flag, variable or file key that gave it.
//!
//! One table, [`SPECS`], says for every setting its file key, its kind, its flag and its
//! environment variables (names from the [`env`](crate::env::ALL) registry). Adding a setting is
//! one row there plus its field in [`FlowConfig`] (and, when it has a flag, the clap field in
//! the binary, which is also the action input). Nothing below this module reads the
//! environment or parses a string: the binary builds the orchestrator from
//! [`Settings`] with [`Orchestrator::from_settings`](crate::Orchestrator::from_settings).
//!
//! ```
//! use flow_orchestrator::settings::{Given, Origin, Settings, Sources};
//!
//! let env = |k: &str| (k == "FLOW_LLM_MODEL").then(|| "gpt-4.1".to_owned());
//! let flag = Given::new("llm.timeout_secs", "5", Origin::flag("timeout-secs"));
//! let s = Settings::resolve(&Sources::new(&env).without_file().with_given(vec![flag]))?;
//! assert_eq!(s.config.llm.model.as_deref(), Some("gpt-4.1"));
//! assert_eq!(s.origin("llm.model").to_string(), "env FLOW_LLM_MODEL");
//! assert_eq!(s.config.llm.timeout_secs, Some(5));
//! assert_eq!(s.origin("llm.timeout_secs").to_string(), "flag --timeout-secs");
//! assert_eq!(s.origin("llm.max_retries").to_string(), "default");
//! # Ok::<(), flow_orchestrator::Error>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret as _, SecretString};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::config::{CONFIG_PATHS, FlowConfig, LlmProvider};
use crate::env::{self, *};
use crate::error::{Error, ErrorKind, Result};

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum Origin {
    /// Nobody set it: the built-in default.
    Default,
    /// The configuration file, at `key`.
    File {
        /// The file.
        path: String,
        /// The dotted key (`llm.model`).
        key: String,
    },
    /// An environment variable.
    Env {
        /// Its name.
        var: String,
    },
    /// A command-line flag.
    Flag {
        /// `--model`.
        flag: String,
    },
    /// A GitHub Actions input (`INPUT_MODEL`).
    Input {
        /// The variable the runner set.
        var: String,
    },
    /// Guessed from another setting.
    Inferred {
        /// What it was guessed from.
        from: String,
    },
}

impl Origin {
    /// A flag, from its long name without dashes.
    pub fn flag(long: &str) -> Self {
        Self::Flag {
            flag: format!("--{long}"),
        }
    }

    /// Whether somebody set the value (anything but the default).
    pub fn is_set(&self) -> bool {
        !matches!(self, Self::Default)
    }

    /// The name to put in an error about the value: the variable, flag or file key.
    fn label(&self, key: &str) -> String {
        match self {
            Self::Env { var } | Self::Input { var } => var.clone(),
            Self::Flag { flag } => flag.clone(),
            Self::File { key, .. } => key.clone(),
            Self::Default | Self::Inferred { .. } => key.to_owned(),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("default"),
            Self::File { path, key } => write!(f, "file {path}: {key}"),
            Self::Env { var } => write!(f, "env {var}"),
            Self::Flag { flag } => write!(f, "flag {flag}"),
            Self::Input { var } => write!(f, "input {var}"),
            Self::Inferred { from } => write!(f, "inferred from {from}"),
        }
    }
}

/// How a value given as text (a variable, a flag) becomes the file's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Text as is.
    Text,
    /// A whole number.
    Number,
    /// `true`/`false` (also 1/0, yes/no, on/off).
    Bool,
    /// Comma-separated, blanks dropped.
    List,
    /// The path of a telemetry rules file (YAML or TOML), read into the value.
    RulesFile,
    /// A secret: kept in [`Credentials`], never in the configuration, never printed.
    Secret,
}

/// One setting: where it lives in the file and who else may set it.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// The dotted key in the configuration file (`llm.model`); secrets have a key too, but
    /// the file may not set them.
    pub key: &'static str,
    /// How text becomes the value.
    pub kind: Kind,
    /// The long flag (and action input) that sets it, without dashes.
    pub flag: Option<&'static str>,
    /// Variables that win over the file, first set wins.
    pub env: &'static [&'static str],
    /// Variables the file wins over (the runner's `GITHUB_REPOSITORY`).
    pub weak_env: &'static [&'static str],
    /// Printed as `[redacted]`.
    pub secret: bool,
}

const fn spec(key: &'static str, kind: Kind, flag: Option<&'static str>) -> Spec {
    Spec {
        key,
        kind,
        flag,
        env: &[],
        weak_env: &[],
        secret: matches!(kind, Kind::Secret),
    }
}

impl Spec {
    const fn env(mut self, vars: &'static [&'static str]) -> Self {
        self.env = vars;
        self
    }
    const fn weak_env(mut self, vars: &'static [&'static str]) -> Self {
        self.weak_env = vars;
        self
    }
    const fn secret(mut self) -> Self {
        self.secret = true;
        self
    }
}

/// Every setting, in the order `flow config` prints them.
pub const SPECS: &[Spec] = &[
    spec("llm.provider", Kind::Text, Some("provider")).env(&[FLOW_LLM_PROVIDER]),
    spec("llm.model", Kind::Text, Some("model")).env(&[
        FLOW_LLM_MODEL,
        OPENAI_MODEL,
        AZURE_OPENAI_DEPLOYMENT,
    ]),
    spec("llm.base_url", Kind::Text, Some("base-url"))
        .env(&[OPENAI_BASE_URL, AZURE_OPENAI_ENDPOINT]),
    spec("llm.api_key", Kind::Secret, Some("api-key")).env(&[OPENAI_API_KEY, AZURE_OPENAI_API_KEY]),
    spec("llm.github_org", Kind::Text, None).env(&[FLOW_LLM_GITHUB_ORG]),
    spec("llm.timeout_secs", Kind::Number, Some("timeout-secs")).env(&[FLOW_LLM_TIMEOUT_SECS]),
    spec("llm.max_retries", Kind::Number, Some("max-retries")).env(&[FLOW_LLM_MAX_RETRIES]),
    spec("llm.fallback_models", Kind::List, Some("fallback-model"))
        .env(&[FLOW_LLM_FALLBACK_MODELS]),
    spec("llm.max_tokens", Kind::Number, Some("max-tokens")).env(&[FLOW_LLM_MAX_TOKENS]),
    spec("llm.token_budget", Kind::Number, Some("token-budget")).env(&[FLOW_LLM_TOKEN_BUDGET]),
    spec("cache.backend", Kind::Text, Some("cache")).env(&[FLOW_CACHE_BACKEND]),
    spec("cache.url", Kind::Text, Some("redis-url"))
        .env(&[FLOW_CACHE_URL])
        .secret(),
    spec("cache.ttl_secs", Kind::Number, Some("cache-ttl-secs")).env(&[FLOW_CACHE_TTL_SECS]),
    spec("cache.stale_secs", Kind::Number, None),
    spec("cache.max_bytes", Kind::Number, None),
    spec("github.api_url", Kind::Text, Some("api-url")).env(&[GITHUB_API_URL]),
    spec("github.server_url", Kind::Text, None).env(&[GITHUB_SERVER_URL]),
    spec("github.token", Kind::Secret, Some("github-token")).env(&[GITHUB_TOKEN]),
    spec("telemetry.repository", Kind::Text, Some("repo"))
        .env(&[FLOW_REPOSITORY])
        .weak_env(&[GITHUB_REPOSITORY]),
    spec("telemetry.workflow", Kind::Text, Some("workflow")).env(&[FLOW_WORKFLOW]),
    spec("telemetry.branch", Kind::Text, Some("branch")),
    // The flag is --max-runs (runs, not pages): the binary gives it as pages.
    spec("telemetry.max_pages", Kind::Number, None).env(&[FLOW_MAX_PAGES]),
    spec("telemetry.triage", Kind::Bool, Some("triage")).env(&[FLOW_TRIAGE]),
    spec(
        "telemetry.close_on_recovery",
        Kind::Bool,
        Some("close-on-recovery"),
    )
    .env(&[FLOW_CLOSE_ON_RECOVERY]),
    spec("telemetry.max_writes", Kind::Number, Some("max-writes")).env(&[FLOW_MAX_WRITES]),
    // A Redis URL may carry a password: printed redacted.
    spec("telemetry.state", Kind::Text, Some("state"))
        .env(&[FLOW_STATE])
        .secret(),
    spec("telemetry.rules", Kind::RulesFile, Some("rules")).env(&[FLOW_RULES]),
    spec("telemetry.otlp_endpoint", Kind::Text, Some("otlp-endpoint")).env(&[FLOW_OTLP_ENDPOINT]),
    spec("telemetry.otlp_headers", Kind::Secret, Some("otlp-header")).env(&[FLOW_OTLP_HEADERS]),
    spec("issues.labels", Kind::List, Some("label")).env(&[FLOW_ISSUE_LABELS]),
    spec("serve.listen", Kind::Text, Some("listen")).env(&[FLOW_SERVE_LISTEN]),
    spec("serve.webhook_secret", Kind::Secret, None).env(&[FLOW_WEBHOOK_SECRET]),
    spec(
        "serve.webhook_secret_file",
        Kind::Text,
        Some("webhook-secret-file"),
    )
    .env(&[FLOW_WEBHOOK_SECRET_FILE]),
    spec("serve.repositories", Kind::List, Some("repos")).env(&[FLOW_SERVE_REPOSITORIES]),
    spec("serve.org", Kind::Text, Some("org")).env(&[FLOW_SERVE_ORG]),
    spec("serve.reconcile_secs", Kind::Number, Some("reconcile-secs"))
        .env(&[FLOW_SERVE_RECONCILE_SECS]),
    spec("serve.queue_capacity", Kind::Number, Some("queue-capacity"))
        .env(&[FLOW_SERVE_QUEUE_CAPACITY]),
    spec("serve.workers", Kind::Number, Some("workers")).env(&[FLOW_SERVE_WORKERS]),
    spec("serve.lease_secs", Kind::Number, Some("lease-secs")).env(&[FLOW_SERVE_LEASE_SECS]),
];

/// The spec of `key`.
pub fn spec_of(key: &str) -> Option<&'static Spec> {
    SPECS.iter().find(|s| s.key == key)
}

/// The spec set by the flag `--long`.
pub fn spec_of_flag(long: &str) -> Option<&'static Spec> {
    SPECS.iter().find(|s| s.flag == Some(long))
}

/// A value given above the environment: a flag or an action input, as text.
#[derive(Clone)]
pub struct Given {
    /// The setting's key.
    pub key: &'static str,
    /// The text (lists comma-separated).
    pub text: String,
    /// Who gave it.
    pub origin: Origin,
}

impl fmt::Debug for Given {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secret = spec_of(self.key).is_some_and(|s| s.secret);
        f.debug_struct("Given")
            .field("key", &self.key)
            .field("text", &if secret { "[redacted]" } else { &self.text })
            .field("origin", &self.origin)
            .finish()
    }
}

impl Given {
    /// `text` for the setting `key`, given by `origin`.
    ///
    /// # Panics
    /// Never; an unknown key is reported by [`Settings::resolve`].
    pub fn new(key: &str, text: impl Into<String>, origin: Origin) -> Self {
        let key = spec_of(key).map_or("(unknown)", |s| s.key);
        Self {
            key,
            text: text.into(),
            origin,
        }
    }
}

/// Where the configuration file is.
#[derive(Debug, Clone)]
enum FileChoice {
    /// This file (given by a flag, an input or `FLOW_CONFIG`).
    Path(PathBuf, Origin),
    /// The first of [`CONFIG_PATHS`] under this directory, if any (after `FLOW_CONFIG`).
    Discover(PathBuf),
    /// No file: the given configuration stands in for it.
    Parsed(Box<FlowConfig>),
    /// No file at all.
    None,
}

/// The inputs of [`Settings::resolve`].
pub struct Sources<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    file: FileChoice,
    given: Vec<Given>,
}

impl fmt::Debug for Sources<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sources")
            .field("file", &self.file)
            .field("given", &self.given)
            .finish_non_exhaustive()
    }
}

impl<'a> Sources<'a> {
    /// The environment read through `env` (empty values count as unset), the configuration
    /// file from `FLOW_CONFIG` or found in the current directory, nothing given.
    pub fn new(env: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self {
            env,
            file: FileChoice::Discover(PathBuf::from(".")),
            given: Vec::new(),
        }
    }

    /// Reads the configuration from `path` (given by `origin`).
    #[must_use]
    pub fn with_file(mut self, path: impl Into<PathBuf>, origin: Origin) -> Self {
        self.file = FileChoice::Path(path.into(), origin);
        self
    }

    /// Looks for the configuration under `root` (after `FLOW_CONFIG`).
    #[must_use]
    pub fn discover_in(mut self, root: impl Into<PathBuf>) -> Self {
        self.file = FileChoice::Discover(root.into());
        self
    }

    /// No configuration file.
    #[must_use]
    pub fn without_file(mut self) -> Self {
        self.file = FileChoice::None;
        self
    }

    /// An already parsed configuration stands for the file.
    #[must_use]
    pub fn with_config(mut self, config: FlowConfig) -> Self {
        self.file = FileChoice::Parsed(Box::new(config));
        self
    }

    /// Values from flags and action inputs, above the environment.
    #[must_use]
    pub fn with_given(mut self, given: Vec<Given>) -> Self {
        self.given = given;
        self
    }

    fn var(&self, name: &str) -> Option<String> {
        (self.env)(name).filter(|v| !v.trim().is_empty())
    }
}

/// The secrets: only from flags, inputs and the environment, never from the file.
#[derive(Clone, Default)]
pub struct Credentials {
    /// The LLM API key (for github-models, a GitHub token that wins over `github_token`).
    pub api_key: Option<SecretString>,
    /// The GitHub token.
    pub github_token: Option<SecretString>,
    /// The OTLP exporter's headers, `name=value` pairs separated by commas (API keys).
    pub otlp_headers: Option<SecretString>,
    /// The secret of the GitHub webhook `flow serve` verifies deliveries with.
    pub webhook_secret: Option<SecretString>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = |s: &Option<SecretString>| s.as_ref().map(|_| "[redacted]");
        f.debug_struct("Credentials")
            .field("api_key", &r(&self.api_key))
            .field("github_token", &r(&self.github_token))
            .field("otlp_headers", &r(&self.otlp_headers))
            .field("webhook_secret", &r(&self.webhook_secret))
            .finish()
    }
}

/// The effective settings: the typed configuration, the secrets, and where each came from.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The configuration, every layer applied and validated.
    pub config: FlowConfig,
    /// The secrets.
    pub credentials: Credentials,
    /// The configuration file read, if any, and who named it.
    pub file: Option<(PathBuf, Origin)>,
    origins: BTreeMap<&'static str, Origin>,
    provider: Option<(LlmProvider, Origin)>,
}

/// One line of `flow config`.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// The dotted key.
    pub key: &'static str,
    /// The value (`"[redacted]"` for secrets that are set).
    pub value: Value,
    /// Where it came from.
    pub origin: Origin,
}

impl Settings {
    /// Resolves every layer: defaults < file < environment < given.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] naming the flag, variable or file key whose value is invalid;
    /// [`ErrorKind::Io`] when the configuration file cannot be read.
    pub fn resolve(sources: &Sources<'_>) -> Result<Self> {
        let (tree, file) = file_tree(sources)?;
        let mut tree = match tree {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let mut origins = BTreeMap::new();
        let mut secrets: BTreeMap<&'static str, SecretString> = BTreeMap::new();
        for given in &sources.given {
            if spec_of(given.key).is_none() {
                return Err(Error::config(
                    given.origin.label("(unknown)"),
                    "expected a known setting",
                ));
            }
        }
        let file_origin = |key: &str| match &file {
            Some((path, _)) => Origin::File {
                path: path.display().to_string(),
                key: key.to_owned(),
            },
            None => Origin::Default,
        };
        for spec in SPECS {
            let given = sources
                .given
                .iter()
                .rev()
                .find(|g| g.key == spec.key)
                .map(|g| (g.text.clone(), g.origin.clone()));
            let strong = || {
                spec.env.iter().find_map(|v| {
                    sources.var(v).map(|t| {
                        (
                            t,
                            Origin::Env {
                                var: (*v).to_owned(),
                            },
                        )
                    })
                })
            };
            let weak = || {
                spec.weak_env.iter().find_map(|v| {
                    sources.var(v).map(|t| {
                        (
                            t,
                            Origin::Env {
                                var: (*v).to_owned(),
                            },
                        )
                    })
                })
            };
            let in_file = get_path(&tree, spec.key).is_some_and(|v| !v.is_null());
            let text = given
                .or_else(strong)
                .or_else(|| if in_file { None } else { weak() });
            match text {
                Some((text, origin)) => {
                    if spec.kind == Kind::Secret {
                        secrets.insert(spec.key, SecretString::from(text));
                    } else {
                        let value = convert(spec.kind, &text, &origin.label(spec.key))?;
                        set_path(&mut tree, spec.key, value);
                    }
                    origins.insert(spec.key, origin);
                }
                None if in_file && file.is_some() => {
                    origins.insert(spec.key, file_origin(spec.key));
                }
                None => {
                    origins.insert(spec.key, Origin::Default);
                }
            }
        }
        // A Redis URL given above the file means the Redis backend, unless a backend was
        // given too.
        let above_file = |o: Option<&Origin>| {
            matches!(
                o,
                Some(Origin::Env { .. } | Origin::Flag { .. } | Origin::Input { .. })
            )
        };
        if above_file(origins.get("cache.url")) && !above_file(origins.get("cache.backend")) {
            set_path(&mut tree, "cache.backend", Value::String("redis".into()));
            let from = origins
                .get("cache.url")
                .map(|o| o.label("cache.url"))
                .unwrap_or_default();
            origins.insert("cache.backend", Origin::Inferred { from });
        }
        let label = |key: &str| -> String {
            // The longest known key the error's key starts with names the source.
            SPECS
                .iter()
                .filter(|s| key == s.key || key.starts_with(&format!("{}.", s.key)))
                .max_by_key(|s| s.key.len())
                .and_then(|s| origins.get(s.key))
                .map_or_else(|| key.to_owned(), |o| o.label(key))
        };
        let config: FlowConfig =
            serde_path_to_error::deserialize(Value::Object(tree)).map_err(|e| {
                let key = e.path().to_string();
                Error::config(label(&key), e.inner().to_string())
            })?;
        config.validate().map_err(|e| match e.kind() {
            ErrorKind::Config { key, detail } => Error::config(label(key), detail.clone()),
            _ => e,
        })?;
        // Azure's own variables win over OpenAI's for an Azure provider (both may be set on a
        // runner that talks to both).
        if config.llm.provider == Some(LlmProvider::Azure) {
            let from_openai_var = |key: &str, var: &str| matches!(origins.get(key), Some(Origin::Env { var: v }) if v == var);
            if from_openai_var("llm.api_key", OPENAI_API_KEY)
                && let Some(key) = sources.var(AZURE_OPENAI_API_KEY)
            {
                secrets.insert("llm.api_key", SecretString::from(key));
                origins.insert(
                    "llm.api_key",
                    Origin::Env {
                        var: AZURE_OPENAI_API_KEY.into(),
                    },
                );
            }
        }
        let mut config = config;
        if config.llm.provider == Some(LlmProvider::Azure)
            && matches!(origins.get("llm.base_url"), Some(Origin::Env { var }) if var == OPENAI_BASE_URL)
            && let Some(endpoint) = sources.var(AZURE_OPENAI_ENDPOINT)
        {
            config.llm.base_url = Some(endpoint);
            origins.insert(
                "llm.base_url",
                Origin::Env {
                    var: AZURE_OPENAI_ENDPOINT.into(),
                },
            );
        }
        let credentials = Credentials {
            api_key: secrets.remove("llm.api_key"),
            github_token: secrets.remove("github.token"),
            otlp_headers: secrets.remove("telemetry.otlp_headers"),
            webhook_secret: secrets.remove("serve.webhook_secret"),
        };
        let mut settings = Self {
            config,
            credentials,
            file,
            origins,
            provider: None,
        };
        settings.provider = settings.infer_provider();
        Ok(settings)
    }

    /// Sets `key` with `set` from `origin` (a source below the defaults' override, such as a
    /// prompt file's model) when nobody set it; returns whether it did.
    pub fn fill_default(
        &mut self,
        key: &'static str,
        origin: Origin,
        set: impl FnOnce(&mut FlowConfig),
    ) -> bool {
        if self.origin(key).is_set() {
            return false;
        }
        set(&mut self.config);
        self.origins.insert(key, origin);
        self.provider = self.infer_provider();
        true
    }

    /// Where the value of `key` came from ([`Origin::Default`] for an unknown key).
    pub fn origin(&self, key: &str) -> &Origin {
        static DEFAULT: Origin = Origin::Default;
        if key == "llm.provider"
            && let Some((_, o)) = &self.provider
        {
            return o;
        }
        self.origins.get(key).unwrap_or(&DEFAULT)
    }

    /// The provider that will answer: the configured one, else guessed from the base URL and
    /// the credentials (a base URL other than OpenAI's: compatible; an OpenAI key: openai;
    /// an Azure key or endpoint: azure; a GitHub token: github-models).
    pub fn provider(&self) -> Option<LlmProvider> {
        self.provider.as_ref().map(|(p, _)| *p)
    }

    fn infer_provider(&self) -> Option<(LlmProvider, Origin)> {
        let llm = &self.config.llm;
        if let Some(p) = llm.provider {
            return Some((p, self.origin("llm.provider").clone()));
        }
        let from = |key: &str| Origin::Inferred {
            from: self.origin(key).label(key),
        };
        let var_of = |key: &str| match self.origin(key) {
            Origin::Env { var } => Some(var.as_str()),
            _ => None,
        };
        if var_of("llm.base_url") == Some(AZURE_OPENAI_ENDPOINT)
            || var_of("llm.api_key") == Some(AZURE_OPENAI_API_KEY)
        {
            let key = if var_of("llm.base_url") == Some(AZURE_OPENAI_ENDPOINT) {
                "llm.base_url"
            } else {
                "llm.api_key"
            };
            return Some((LlmProvider::Azure, from(key)));
        }
        if let Some(url) = &llm.base_url {
            let p = if url.contains("api.openai.com") {
                LlmProvider::Openai
            } else {
                LlmProvider::Compatible
            };
            return Some((p, from("llm.base_url")));
        }
        if self.credentials.api_key.is_some() {
            return Some((LlmProvider::Openai, from("llm.api_key")));
        }
        if self.credentials.github_token.is_some() {
            return Some((LlmProvider::GithubModels, from("github.token")));
        }
        None
    }

    /// Whether `monitor` asks the LLM for a triage: as `telemetry.triage` says, else only
    /// when an LLM is configured explicitly (provider, model or base URL); the workflow's
    /// token alone never turns it on.
    pub fn triage(&self) -> bool {
        self.config
            .telemetry
            .triage
            .unwrap_or_else(|| self.config.llm.is_explicit())
    }

    /// Every setting with its value (secrets `[redacted]`) and origin, in [`SPECS`] order.
    pub fn entries(&self) -> Vec<Entry> {
        let tree = serde_json::to_value(&self.config).unwrap_or(Value::Null);
        SPECS
            .iter()
            .map(|spec| {
                let value = match spec.key {
                    "llm.api_key" => secret_value(self.credentials.api_key.as_ref()),
                    "github.token" => secret_value(self.credentials.github_token.as_ref()),
                    "telemetry.otlp_headers" => {
                        secret_value(self.credentials.otlp_headers.as_ref())
                    }
                    "serve.webhook_secret" => {
                        secret_value(self.credentials.webhook_secret.as_ref())
                    }
                    "llm.provider" => self
                        .provider()
                        .map_or(Value::Null, |p| Value::String(p.as_str().into())),
                    key => {
                        let v = tree
                            .as_object()
                            .and_then(|t| get_path(t, key))
                            .cloned()
                            .unwrap_or(Value::Null);
                        if spec.secret && !v.is_null() {
                            Value::String("[redacted]".into())
                        } else {
                            v
                        }
                    }
                };
                Entry {
                    key: spec.key,
                    value,
                    origin: self.origin(spec.key).clone(),
                }
            })
            .collect()
    }
}

fn secret_value(s: Option<&SecretString>) -> Value {
    s.filter(|s| !s.expose_secret().is_empty())
        .map_or(Value::Null, |_| Value::String("[redacted]".into()))
}

/// The configuration file as a JSON tree, validated, and which file it was.
fn file_tree(sources: &Sources<'_>) -> Result<(Value, Option<(PathBuf, Origin)>)> {
    let read_file = |path: &Path, origin: Origin| -> Result<(Value, Option<(PathBuf, Origin)>)> {
        // Parsing into the typed file first names an unknown or invalid key.
        FlowConfig::from_path(path)?;
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::new(ErrorKind::Io {
                path: path.display().to_string(),
                detail: e.to_string(),
            })
        })?;
        let tree = if path.extension().is_some_and(|e| e == "toml") {
            toml::from_str::<Value>(&text)
                .map_err(|e| Error::config("(document)", e.message().to_owned()))?
        } else {
            serde_norway::from_str::<Value>(&text)
                .map_err(|e| Error::config("(document)", e.to_string()))?
        };
        Ok((tree, Some((path.to_path_buf(), origin))))
    };
    match &sources.file {
        FileChoice::Path(path, origin) => read_file(path, origin.clone()),
        FileChoice::Discover(root) => {
            if let Some(path) = sources.var(env::FLOW_CONFIG) {
                return read_file(
                    Path::new(&path),
                    Origin::Env {
                        var: env::FLOW_CONFIG.into(),
                    },
                );
            }
            for rel in CONFIG_PATHS {
                let path = root.join(rel);
                if path.is_file() {
                    return read_file(
                        &path,
                        Origin::Inferred {
                            from: "discovery".into(),
                        },
                    );
                }
            }
            Ok((Value::Null, None))
        }
        FileChoice::Parsed(config) => Ok((
            serde_json::to_value(config.as_ref()).unwrap_or(Value::Null),
            None,
        )),
        FileChoice::None => Ok((Value::Null, None)),
    }
}

fn convert(kind: Kind, text: &str, name: &str) -> Result<Value> {
    let text = text.trim();
    Ok(match kind {
        Kind::Text | Kind::Secret => Value::String(text.to_owned()),
        Kind::Number => text
            .parse::<u64>()
            .map(Value::from)
            .map_err(|_| Error::config(name, format!("expected a whole number, got {text:?}")))?,
        Kind::Bool => match text.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Value::Bool(true),
            "false" | "0" | "no" | "off" => Value::Bool(false),
            _ => {
                return Err(Error::config(
                    name,
                    format!("expected true or false, got {text:?}"),
                ));
            }
        },
        Kind::List => Value::Array(
            text.split(',')
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(|l| Value::String(l.to_owned()))
                .collect(),
        ),
        Kind::RulesFile => {
            let rules = flow_telemetry::Rules::from_path(text).map_err(|e| match e.kind() {
                flow_telemetry::ErrorKind::Config { key, detail } => {
                    Error::config(format!("{name} ({text}): {key}"), detail.clone())
                }
                _ => Error::config(name, e.to_string()),
            })?;
            serde_json::to_value(rules).map_err(|e| Error::config(name, e.to_string()))?
        }
    })
}

fn get_path<'t>(tree: &'t Map<String, Value>, key: &str) -> Option<&'t Value> {
    let mut parts = key.split('.');
    let mut cur = tree.get(parts.next()?)?;
    for p in parts {
        cur = cur.as_object()?.get(p)?;
    }
    Some(cur)
}

fn set_path(tree: &mut Map<String, Value>, key: &str, value: Value) {
    let mut parts: Vec<&str> = key.split('.').collect();
    let Some(last) = parts.pop() else { return };
    let mut cur = tree;
    for p in parts {
        let entry = cur
            .entry(p.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let Value::Object(next) = entry else { return };
        cur = next;
    }
    cur.insert(last.to_owned(), value);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
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
    fn every_spec_key_is_a_key_of_the_file_or_a_secret() {
        let tree = serde_json::to_value(FlowConfig::default()).unwrap();
        for s in SPECS {
            let found = get_path(tree.as_object().unwrap(), s.key).is_some();
            assert_eq!(found, s.kind != Kind::Secret, "{}", s.key);
            for v in s.env.iter().chain(s.weak_env) {
                assert!(env::lookup(v).is_some(), "{v} is not in the registry");
                assert_eq!(env::lookup(v).unwrap().secret, s.secret, "{v}");
            }
        }
    }

    #[test]
    fn layers_win_in_order_and_remember_their_origin() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flow.toml");
        std::fs::write(
            &path,
            "[llm]\nmodel = \"file-model\"\ntimeout_secs = 9\nmax_retries = 1\n[telemetry]\nrepository = \"o/file\"\n",
        )
        .unwrap();
        let e = env(&[
            ("FLOW_LLM_TIMEOUT_SECS", "7"),
            ("GITHUB_REPOSITORY", "o/runner"),
            ("OPENAI_API_KEY", "sk-env"),
        ]);
        let s = Settings::resolve(
            &Sources::new(&e)
                .with_file(&path, Origin::flag("config"))
                .with_given(vec![Given::new(
                    "llm.timeout_secs",
                    "5",
                    Origin::Input {
                        var: "INPUT_TIMEOUT-SECS".into(),
                    },
                )]),
        )
        .unwrap();
        assert_eq!(s.config.llm.model.as_deref(), Some("file-model"));
        assert_eq!(
            s.origin("llm.model").to_string(),
            format!("file {}: llm.model", path.display())
        );
        assert_eq!(s.config.llm.timeout_secs, Some(5));
        assert_eq!(
            s.origin("llm.timeout_secs").to_string(),
            "input INPUT_TIMEOUT-SECS"
        );
        assert_eq!(s.config.llm.max_retries, 1);
        // The file wins over the runner's repository.
        assert_eq!(s.config.repository(), Some(("o", "file")));
        assert_eq!(s.origin("cache.ttl_secs"), &Origin::Default);
        assert_eq!(s.provider(), Some(LlmProvider::Openai));
        assert_eq!(
            s.origin("llm.provider").to_string(),
            "inferred from OPENAI_API_KEY"
        );
        let entries = serde_json::to_string(&s.entries()).unwrap();
        assert!(!entries.contains("sk-env"), "{entries}");
        assert!(entries.contains("[redacted]"), "{entries}");
    }

    #[test]
    fn a_bad_value_names_its_source() {
        let e = env(&[("FLOW_CACHE_BACKEND", "disk")]);
        let err = Settings::resolve(&Sources::new(&e).without_file()).unwrap_err();
        assert_eq!(key(&err), "FLOW_CACHE_BACKEND");
        let e = env(&[]);
        let err = Settings::resolve(&Sources::new(&e).without_file().with_given(vec![Given::new(
            "llm.provider",
            "skynet",
            Origin::flag("provider"),
        )]))
        .unwrap_err();
        assert_eq!(key(&err), "--provider");
        let err = Settings::resolve(&Sources::new(&e).without_file().with_given(vec![Given::new(
            "telemetry.repository",
            "nope",
            Origin::flag("repo"),
        )]))
        .unwrap_err();
        assert_eq!(key(&err), "--repo");
    }

    proptest::proptest! {
        /// For any mix of layers, the value is the highest layer's and the origin names it:
        /// flag > strong variable > file > weak variable > default.
        #[test]
        fn the_highest_layer_wins_and_is_named(
            file in proptest::option::of("[a-z]{1,6}/[a-z]{1,6}"),
            strong in proptest::option::of("[a-z]{1,6}/[a-z]{1,6}"),
            weak in proptest::option::of("[a-z]{1,6}/[a-z]{1,6}"),
            flag in proptest::option::of("[a-z]{1,6}/[a-z]{1,6}"),
        ) {
            let mut config = FlowConfig::default();
            config.telemetry.repository.clone_from(&file);
            let mut vars = Vec::new();
            if let Some(v) = &strong {
                vars.push(("FLOW_REPOSITORY", v.as_str()));
            }
            if let Some(v) = &weak {
                vars.push(("GITHUB_REPOSITORY", v.as_str()));
            }
            let e = env(&vars);
            let given = flag
                .iter()
                .map(|f| Given::new("telemetry.repository", f.clone(), Origin::flag("repo")))
                .collect();
            let s = Settings::resolve(
                &Sources::new(&e).with_config(config).with_given(given),
            )
            .unwrap();
            let (want, origin) = match (&flag, &strong, &file, &weak) {
                (Some(f), ..) => (Some(f), "flag --repo"),
                (None, Some(v), ..) => (Some(v), "env FLOW_REPOSITORY"),
                (None, None, Some(v), _) => (Some(v), "default"),
                (None, None, None, Some(v)) => (Some(v), "env GITHUB_REPOSITORY"),
                (None, None, None, None) => (None, "default"),
            };
            proptest::prop_assert_eq!(s.config.telemetry.repository.as_ref(), want);
            // A parsed configuration stands for the file without a path: its values show as
            // defaults.
            proptest::prop_assert_eq!(s.origin("telemetry.repository").to_string(), origin);
        }
    }

    #[test]
    fn azure_reads_its_own_variables_before_openai_ones() {
        let e = env(&[
            ("FLOW_LLM_PROVIDER", "azure"),
            ("OPENAI_API_KEY", "sk-openai"),
            ("AZURE_OPENAI_API_KEY", "az-key"),
            ("OPENAI_BASE_URL", "https://api.openai.com/v1"),
            ("AZURE_OPENAI_ENDPOINT", "https://x.openai.azure.com"),
        ]);
        let s = Settings::resolve(&Sources::new(&e).without_file()).unwrap();
        assert_eq!(
            s.credentials.api_key.as_ref().unwrap().expose_secret(),
            "az-key"
        );
        assert_eq!(
            s.config.llm.base_url.as_deref(),
            Some("https://x.openai.azure.com")
        );
        assert_eq!(
            s.origin("llm.api_key").to_string(),
            "env AZURE_OPENAI_API_KEY"
        );
    }

    #[test]
    fn a_redis_url_above_the_file_implies_redis_and_the_token_alone_no_triage() {
        let e = env(&[
            ("FLOW_CACHE_URL", "redis://:pw@h:1"),
            ("GITHUB_TOKEN", "ghs_x"),
        ]);
        let s = Settings::resolve(&Sources::new(&e).without_file()).unwrap();
        assert_eq!(s.config.cache.backend, crate::config::CacheBackend::Redis);
        assert_eq!(
            s.origin("cache.backend").to_string(),
            "inferred from FLOW_CACHE_URL"
        );
        assert_eq!(s.provider(), Some(LlmProvider::GithubModels));
        assert!(!s.triage());
        let json = serde_json::to_string(&s.entries()).unwrap();
        assert!(!json.contains("pw@") && !json.contains("ghs_x"), "{json}");
        let e = env(&[("GITHUB_TOKEN", "ghs_x"), ("FLOW_LLM_MODEL", "m")]);
        assert!(
            Settings::resolve(&Sources::new(&e).without_file())
                .unwrap()
                .triage()
        );
    }
}
