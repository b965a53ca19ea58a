//! Shared by the subcommands: the orchestrator from the resolved settings, `@path` values and
//! the runtime.

use anyhow::Context as _;
use flow_orchestrator::{Orchestrator, OrchestratorBuilder, Settings};

/// The orchestrator builder for `settings`. Must run inside a tokio runtime.
pub(crate) fn builder(settings: &Settings) -> anyhow::Result<OrchestratorBuilder> {
    Ok(Orchestrator::from_settings(settings)?)
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
    use secrecy::ExposeSecret as _;

    fn settings_of(args: &[&str], vars: &[(&str, &str)]) -> flow_orchestrator::Settings {
        let mut argv = vec!["flow", "delegate", "--prompt", "p"];
        argv.extend_from_slice(args);
        crate::settings::resolve_in_terminal(&argv, vars)
    }

    #[test]
    fn flags_become_typed_settings_without_passing_through_variables() {
        let s = settings_of(
            &[
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
            ],
            // The flags win over the environment.
            &[("FLOW_LLM_MODEL", "env-model"), ("FLOW_CONFIG", "")],
        );
        let llm = &s.config.llm;
        assert_eq!(
            llm.provider,
            Some(flow_orchestrator::LlmProvider::Compatible)
        );
        assert_eq!(llm.base_url.as_deref(), Some("http://x/v1"));
        assert_eq!(llm.model.as_deref(), Some("m"));
        assert_eq!(s.origin("llm.model").to_string(), "flag --model");
        assert_eq!(
            s.credentials.api_key.as_ref().unwrap().expose_secret(),
            "sk"
        );
        assert_eq!(
            s.config.cache.backend,
            flow_orchestrator::CacheBackend::None
        );
        assert_eq!(llm.timeout_secs, Some(5));
        assert!(!format!("{s:?}").contains("\"sk\""), "{s:?}");
    }

    #[test]
    fn azure_and_github_models_take_the_key_flag() {
        let s = settings_of(
            &[
                "--provider",
                "azure",
                "--base-url",
                "https://a.openai.azure.com",
                "--model",
                "dep",
                "--api-key",
                "k",
            ],
            &[],
        );
        assert_eq!(
            s.config.llm.base_url.as_deref(),
            Some("https://a.openai.azure.com")
        );
        assert_eq!(s.credentials.api_key.as_ref().unwrap().expose_secret(), "k");
        assert_eq!(s.config.llm.model.as_deref(), Some("dep"));
        let s = settings_of(&["--provider", "github-models", "--api-key", "ghs_x"], &[]);
        assert_eq!(
            s.credentials.api_key.as_ref().unwrap().expose_secret(),
            "ghs_x"
        );
        assert_eq!(
            s.provider(),
            Some(flow_orchestrator::LlmProvider::GithubModels)
        );
    }
}
