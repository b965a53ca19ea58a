//! Provider configuration, in code or from the environment.

use std::fmt;
use std::time::Duration;

use secrecy::SecretString;

use crate::error::{Error, Result};
use crate::quirks::Quirks;

/// The OpenAI API base URL.
pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
/// The GitHub Models inference base URL.
pub const GITHUB_MODELS_BASE_URL: &str = "https://models.github.ai/inference";
/// The default total timeout of one HTTP attempt.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// The default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Which kind of server the client talks to; it decides the URL, headers and error advice.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Provider {
    /// OpenAI (`Authorization: Bearer`).
    OpenAi,
    /// GitHub Models with a GitHub token (`permissions: models: read` in a workflow).
    GitHubModels {
        /// Bill the calls to this organization (`/orgs/{org}/inference`).
        org: Option<String>,
    },
    /// Azure OpenAI's v1 API (`api-key` header; the model is the deployment name).
    AzureOpenAi,
    /// Any Chat Completions server: Ollama, vLLM, a LiteLLM proxy.
    Compatible,
}

impl Provider {
    /// The name used in logs and in [`crate::ResponseMeta::provider`].
    pub fn name(&self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::GitHubModels { .. } => "github-models",
            Self::AzureOpenAi => "azure-openai",
            Self::Compatible => "compatible",
        }
    }
}

/// Everything the HTTP client needs.
#[derive(Clone)]
pub struct ClientConfig {
    pub(crate) provider: Provider,
    pub(crate) base_url: String,
    pub(crate) api_key: Option<SecretString>,
    pub(crate) model: String,
    pub(crate) timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) quirks: Quirks,
}

/// `url` with the password of a `user:pass@` part replaced, for `Debug`.
fn redacted_url(url: &str) -> std::borrow::Cow<'_, str> {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            // Setting a password fails only for URLs that cannot have one, which this has.
            let _ = u.set_password(Some("[redacted]"));
            std::borrow::Cow::Owned(u.to_string())
        }
        _ => std::borrow::Cow::Borrowed(url),
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("provider", &self.provider)
            .field("base_url", &redacted_url(&self.base_url))
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("model", &self.model)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish_non_exhaustive()
    }
}

impl ClientConfig {
    fn base(
        provider: Provider,
        base_url: &str,
        api_key: Option<SecretString>,
        model: String,
    ) -> Self {
        Self {
            provider,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
            model,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            quirks: Quirks::default(),
        }
    }

    /// OpenAI with `api_key`; the model defaults to `gpt-4o-mini`.
    pub fn openai(api_key: SecretString) -> Self {
        Self::base(
            Provider::OpenAi,
            OPENAI_BASE_URL,
            Some(api_key),
            "gpt-4o-mini".into(),
        )
    }

    /// GitHub Models with a GitHub token; the model defaults to `openai/gpt-4o-mini`.
    pub fn github_models(token: SecretString) -> Self {
        Self::base(
            Provider::GitHubModels { org: None },
            GITHUB_MODELS_BASE_URL,
            Some(token),
            "openai/gpt-4o-mini".into(),
        )
    }

    /// GitHub Models billed to organization `org` (`https://models.github.ai/orgs/{org}/inference`).
    pub fn github_models_org(token: SecretString, org: &str) -> Self {
        Self {
            provider: Provider::GitHubModels {
                org: Some(org.to_owned()),
            },
            base_url: format!("https://models.github.ai/orgs/{org}/inference"),
            ..Self::github_models(token)
        }
    }

    /// Azure OpenAI's v1 API at `endpoint` (`https://NAME.openai.azure.com`), calling
    /// `deployment`.
    pub fn azure(endpoint: &str, api_key: SecretString, deployment: impl Into<String>) -> Self {
        Self::base(
            Provider::AzureOpenAi,
            &format!("{}/openai/v1", endpoint.trim_end_matches('/')),
            Some(api_key),
            deployment.into(),
        )
    }

    /// Any compatible server at `base_url` (the part before `/chat/completions`), with an
    /// optional key.
    pub fn compatible(
        base_url: &str,
        api_key: Option<SecretString>,
        model: impl Into<String>,
    ) -> Self {
        Self::base(Provider::Compatible, base_url, api_key, model.into())
    }

    /// Reads the configuration from the process environment; see [`ClientConfig::from_lookup`].
    ///
    /// # Errors
    /// [`crate::ErrorKind::Config`] when no provider can be made from the variables.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    /// Builds the configuration from variables read through `var`:
    ///
    /// - `FLOW_LLM_PROVIDER`: `openai`, `github-models`, `azure` or `compatible`; when unset the
    ///   first match of `OPENAI_BASE_URL` (compatible, or openai for api.openai.com),
    ///   `OPENAI_API_KEY` (openai), `AZURE_OPENAI_ENDPOINT` (azure) and `GITHUB_TOKEN`
    ///   (GitHub Models) wins;
    /// - `OPENAI_API_KEY`, `OPENAI_BASE_URL`; `GITHUB_TOKEN`, `FLOW_LLM_GITHUB_ORG`;
    ///   `AZURE_OPENAI_ENDPOINT`, `AZURE_OPENAI_API_KEY`, `AZURE_OPENAI_DEPLOYMENT`;
    /// - `FLOW_LLM_MODEL` (or `OPENAI_MODEL`) and `FLOW_LLM_TIMEOUT_SECS`.
    ///
    /// # Errors
    /// [`crate::ErrorKind::Config`] naming the missing or invalid variable.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let secret = |k: &str| var(k).map(SecretString::from);
        let provider = match var("FLOW_LLM_PROVIDER").as_deref() {
            Some(p) => p.to_ascii_lowercase(),
            None if var("OPENAI_BASE_URL").is_some_and(|u| !u.contains("api.openai.com")) => {
                "compatible".into()
            }
            None if var("OPENAI_API_KEY").is_some() => "openai".into(),
            None if var("AZURE_OPENAI_ENDPOINT").is_some() => "azure".into(),
            None if var("GITHUB_TOKEN").is_some() => "github-models".into(),
            None => {
                return Err(Error::config(
                    "no LLM provider configured: set OPENAI_API_KEY, OPENAI_BASE_URL, \
                     AZURE_OPENAI_ENDPOINT or GITHUB_TOKEN (or FLOW_LLM_PROVIDER)",
                ));
            }
        };
        let model = var("FLOW_LLM_MODEL").or_else(|| var("OPENAI_MODEL"));
        let missing = |name: &str| {
            Error::config(format!(
                "{name} is not set: expected it for provider {provider}"
            ))
        };
        let mut config = match provider.as_str() {
            "openai" => {
                let mut c = Self::openai(
                    secret("OPENAI_API_KEY").ok_or_else(|| missing("OPENAI_API_KEY"))?,
                );
                if let Some(url) = var("OPENAI_BASE_URL") {
                    c.base_url = url.trim_end_matches('/').to_owned();
                }
                c
            }
            "github" | "github-models" => {
                let token = secret("GITHUB_TOKEN").ok_or_else(|| missing("GITHUB_TOKEN"))?;
                match var("FLOW_LLM_GITHUB_ORG") {
                    Some(org) => Self::github_models_org(token, &org),
                    None => Self::github_models(token),
                }
            }
            "azure" | "azure-openai" => {
                let endpoint =
                    var("AZURE_OPENAI_ENDPOINT").ok_or_else(|| missing("AZURE_OPENAI_ENDPOINT"))?;
                let key = secret("AZURE_OPENAI_API_KEY")
                    .ok_or_else(|| missing("AZURE_OPENAI_API_KEY"))?;
                let deployment = var("AZURE_OPENAI_DEPLOYMENT")
                    .or_else(|| model.clone())
                    .ok_or_else(|| missing("AZURE_OPENAI_DEPLOYMENT"))?;
                Self::azure(&endpoint, key, deployment)
            }
            "compatible" => {
                let url = var("OPENAI_BASE_URL").ok_or_else(|| missing("OPENAI_BASE_URL"))?;
                let m = model.clone().ok_or_else(|| missing("FLOW_LLM_MODEL"))?;
                Self::compatible(&url, secret("OPENAI_API_KEY"), m)
            }
            other => {
                return Err(Error::config(format!(
                    "FLOW_LLM_PROVIDER is {other:?}: expected openai, github-models, azure or compatible"
                )));
            }
        };
        if let Some(m) = model
            && config.provider != Provider::AzureOpenAi
        {
            config.model = m;
        }
        if let Some(t) = var("FLOW_LLM_TIMEOUT_SECS") {
            let secs: u64 = t.parse().map_err(|_| {
                Error::config(format!(
                    "FLOW_LLM_TIMEOUT_SECS is {t:?}: expected whole seconds"
                ))
            })?;
            config.timeout = Duration::from_secs(secs);
        }
        Ok(config)
    }

    /// Sets the default model (used when a request leaves `model` empty).
    #[must_use]
    pub fn with_model(mut self, model: impl Into<String>) -> Self {
        self.model = model.into();
        self
    }

    /// Replaces the base URL (the part before `/chat/completions`).
    #[must_use]
    pub fn with_base_url(mut self, base_url: &str) -> Self {
        self.base_url = base_url.trim_end_matches('/').to_owned();
        self
    }

    /// Sets the total timeout of one HTTP attempt (connect, send and read the whole body).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the connect timeout.
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Replaces the model quirks table.
    #[must_use]
    pub fn with_quirks(mut self, quirks: Quirks) -> Self {
        self.quirks = quirks;
        self
    }

    /// The provider.
    pub fn provider(&self) -> &Provider {
        &self.provider
    }

    /// The base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The default model.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The URL requests are posted to.
    pub fn endpoint(&self) -> String {
        format!("{}/chat/completions", self.base_url)
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

    #[test]
    fn environment_picks_the_provider() {
        let c = ClientConfig::from_lookup(env(&[
            ("OPENAI_API_KEY", "sk-1"),
            ("OPENAI_MODEL", "gpt-4.1"),
        ]))
        .unwrap();
        assert_eq!((c.provider.name(), c.model.as_str()), ("openai", "gpt-4.1"));
        assert_eq!(c.endpoint(), "https://api.openai.com/v1/chat/completions");

        let c = ClientConfig::from_lookup(env(&[
            ("GITHUB_TOKEN", "t"),
            ("FLOW_LLM_GITHUB_ORG", "acme"),
        ]))
        .unwrap();
        assert_eq!(
            c.endpoint(),
            "https://models.github.ai/orgs/acme/inference/chat/completions"
        );

        let c = ClientConfig::from_lookup(env(&[
            ("AZURE_OPENAI_ENDPOINT", "https://x.openai.azure.com/"),
            ("AZURE_OPENAI_API_KEY", "k"),
            ("AZURE_OPENAI_DEPLOYMENT", "prod-4o"),
        ]))
        .unwrap();
        assert_eq!(
            c.endpoint(),
            "https://x.openai.azure.com/openai/v1/chat/completions"
        );
        assert_eq!(c.model, "prod-4o");

        let c = ClientConfig::from_lookup(env(&[
            ("OPENAI_BASE_URL", "http://localhost:11434/v1"),
            ("FLOW_LLM_MODEL", "llama3.2"),
        ]))
        .unwrap();
        assert_eq!(c.provider, Provider::Compatible);
        assert!(c.api_key.is_none());
    }

    #[test]
    fn environment_errors_name_the_variable() {
        let e = ClientConfig::from_lookup(env(&[])).unwrap_err();
        assert!(e.to_string().contains("OPENAI_API_KEY"));
        let e = ClientConfig::from_lookup(env(&[("FLOW_LLM_PROVIDER", "azure")])).unwrap_err();
        assert!(e.to_string().contains("AZURE_OPENAI_ENDPOINT"), "{e}");
        let e = ClientConfig::from_lookup(env(&[
            ("OPENAI_API_KEY", "k"),
            ("FLOW_LLM_TIMEOUT_SECS", "soon"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("FLOW_LLM_TIMEOUT_SECS"), "{e}");
    }

    #[test]
    fn debug_hides_the_key() {
        let c = ClientConfig::openai(SecretString::from("sk-very-secret-key"));
        assert!(!format!("{c:?}").contains("very-secret"));
    }
}
