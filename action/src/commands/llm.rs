//! Building the [`Orchestrator`] for one subcommand: the configuration file (`--config`, else
//! `.github/flow.yml` or `flow.toml`), then the environment, then the command line, which the
//! facade reads as the environment variables it already knows.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context as _;
use flow_orchestrator::{FlowConfig, Orchestrator, OrchestratorBuilder};

use crate::cli::{CacheBackend, GithubArgs, GlobalArgs, LlmArgs, Provider, Secret};

/// The process environment with the command line's values laid over it.
#[derive(Default)]
pub(crate) struct Overlay {
    vars: HashMap<&'static str, String>,
}

impl std::fmt::Debug for Overlay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values may be secrets: names only.
        f.debug_list().entries(self.vars.keys()).finish()
    }
}

impl Overlay {
    pub(crate) fn set(&mut self, var: &'static str, value: impl Into<String>) {
        self.vars.insert(var, value.into());
    }

    fn set_opt<T: ToString>(&mut self, var: &'static str, value: Option<&T>) {
        if let Some(v) = value {
            self.set(var, v.to_string());
        }
    }

    fn set_secret(&mut self, var: &'static str, value: Option<&Secret>) {
        if let Some(v) = value {
            self.set(var, v.expose());
        }
    }

    /// A variable: the command line's value, else the process's; empty counts as unset.
    pub(crate) fn get(&self, var: &str) -> Option<String> {
        self.vars
            .get(var)
            .cloned()
            .or_else(|| std::env::var(var).ok())
            .filter(|v| !v.trim().is_empty())
    }

    /// Adds the LLM options.
    pub(crate) fn llm(&mut self, args: &LlmArgs) {
        let provider = args.provider.map(|p| match p {
            Provider::Openai => "openai",
            Provider::GithubModels => "github-models",
            Provider::Azure => "azure",
            Provider::Compatible => "compatible",
        });
        self.set_opt("FLOW_LLM_PROVIDER", provider.as_ref());
        self.set_opt("FLOW_LLM_MODEL", args.model.as_ref());
        self.set_opt("FLOW_LLM_TIMEOUT_SECS", args.timeout_secs.as_ref());
        if args.provider == Some(Provider::Azure) {
            self.set_opt("AZURE_OPENAI_ENDPOINT", args.base_url.as_ref());
            self.set_secret("AZURE_OPENAI_API_KEY", args.api_key.as_ref());
            self.set_opt("AZURE_OPENAI_DEPLOYMENT", args.model.as_ref());
        } else {
            self.set_opt("OPENAI_BASE_URL", args.base_url.as_ref());
            if args.provider == Some(Provider::GithubModels) {
                if !self.vars.contains_key("GITHUB_TOKEN") {
                    self.set_secret("GITHUB_TOKEN", args.api_key.as_ref());
                }
            } else {
                self.set_secret("OPENAI_API_KEY", args.api_key.as_ref());
            }
        }
        let backend = args.cache.map(|c| match c {
            CacheBackend::Memory => "memory",
            CacheBackend::Redis => "redis",
            CacheBackend::None => "none",
        });
        self.set_opt("FLOW_CACHE_BACKEND", backend.as_ref());
        self.set_opt("FLOW_CACHE_TTL_SECS", args.cache_ttl_secs.as_ref());
        self.set_secret("FLOW_CACHE_URL", args.redis_url.as_ref());
    }

    /// Adds the repository and credentials.
    pub(crate) fn github(&mut self, args: &GithubArgs) {
        self.set_opt("FLOW_REPOSITORY", args.repo.as_ref());
        self.set_secret("GITHUB_TOKEN", args.github_token.as_ref());
        self.set_opt("GITHUB_API_URL", args.api_url.as_ref());
    }
}

/// The configuration: `--config`, else `FLOW_CONFIG`, else the first of `.github/flow.yml` and
/// `flow.toml` found here, else the defaults; then the environment and the command line.
pub(crate) fn config(global: &GlobalArgs, overlay: &Overlay) -> anyhow::Result<FlowConfig> {
    let file = match &global.config {
        Some(path) => FlowConfig::from_path(path)
            .with_context(|| format!("reading the configuration {}", path.display()))?,
        None => FlowConfig::discover(Path::new("."))?.0,
    };
    Ok(file.apply_env(|k| overlay.get(k))?)
}

/// The orchestrator builder for `config` and the overlay. Must run inside a tokio runtime.
pub(crate) fn builder(
    config: &FlowConfig,
    overlay: &Overlay,
) -> anyhow::Result<OrchestratorBuilder> {
    Ok(Orchestrator::configure(config, |k| overlay.get(k))?)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use clap::Parser as _;

    fn llm(args: &[&str]) -> LlmArgs {
        let mut argv = vec!["flow", "delegate", "--prompt", "p"];
        argv.extend_from_slice(args);
        match crate::cli::Cli::try_parse_from(argv).unwrap().command {
            Some(crate::cli::Command::Delegate(d)) => d.llm,
            _ => panic!("not delegate"),
        }
    }

    #[test]
    fn flags_become_the_variables_the_facade_reads() {
        let mut o = Overlay::default();
        o.llm(&llm(&[
            "--provider",
            "compatible",
            "--base-url",
            "http://x/v1",
            "--model",
            "m",
            "--api-key",
            "sk",
            "--cache",
            "none",
            "--timeout-secs",
            "5",
        ]));
        assert_eq!(o.get("FLOW_LLM_PROVIDER").as_deref(), Some("compatible"));
        assert_eq!(o.get("OPENAI_BASE_URL").as_deref(), Some("http://x/v1"));
        assert_eq!(o.get("FLOW_LLM_MODEL").as_deref(), Some("m"));
        assert_eq!(o.get("OPENAI_API_KEY").as_deref(), Some("sk"));
        assert_eq!(o.get("FLOW_CACHE_BACKEND").as_deref(), Some("none"));
        assert_eq!(o.get("FLOW_LLM_TIMEOUT_SECS").as_deref(), Some("5"));
        assert!(!format!("{o:?}").contains("sk\""), "{o:?}");
    }

    #[test]
    fn azure_and_github_models_use_their_own_variables() {
        let mut o = Overlay::default();
        o.llm(&llm(&[
            "--provider",
            "azure",
            "--base-url",
            "https://a.openai.azure.com",
            "--model",
            "dep",
            "--api-key",
            "k",
        ]));
        assert_eq!(
            o.get("AZURE_OPENAI_ENDPOINT").as_deref(),
            Some("https://a.openai.azure.com")
        );
        assert_eq!(o.get("AZURE_OPENAI_API_KEY").as_deref(), Some("k"));
        assert_eq!(o.get("AZURE_OPENAI_DEPLOYMENT").as_deref(), Some("dep"));
        let mut o = Overlay::default();
        o.llm(&llm(&["--provider", "github-models", "--api-key", "ghs_x"]));
        assert_eq!(o.get("GITHUB_TOKEN").as_deref(), Some("ghs_x"));
        assert_eq!(o.vars.get("OPENAI_API_KEY"), None);
    }
}
