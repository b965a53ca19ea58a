//! Provider configuration, in code: a constructor per provider and `with_*` setters.
//!
//! Nothing here reads the environment: a program resolves its settings at its top and passes
//! typed values (`flow_orchestrator::Settings::client_config` does it from the environment
//! and the configuration file, with the variable names of its `env` registry).

use std::fmt;
use std::time::Duration;

use secrecy::SecretString;

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

    /// Whether requests carry an API key (a compatible server may need none).
    pub fn has_api_key(&self) -> bool {
        self.api_key.is_some()
    }

    /// The total timeout of one HTTP attempt.
    pub fn timeout(&self) -> Duration {
        self.timeout
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

    #[test]
    fn constructors_name_the_endpoint_and_setters_replace_one_field() {
        let c = ClientConfig::azure("https://x.openai.azure.com/", "k".into(), "prod-4o")
            .with_timeout(Duration::from_secs(7));
        assert_eq!(
            c.endpoint(),
            "https://x.openai.azure.com/openai/v1/chat/completions"
        );
        assert_eq!(
            (c.model(), c.timeout()),
            ("prod-4o", Duration::from_secs(7))
        );
        let c = ClientConfig::compatible("http://localhost:11434/v1/", None, "llama3.2");
        assert_eq!(c.provider(), &Provider::Compatible);
        assert!(!c.has_api_key());
        assert_eq!(c.endpoint(), "http://localhost:11434/v1/chat/completions");
        let c = ClientConfig::github_models_org("t".into(), "acme").with_model("openai/gpt-4.1");
        assert_eq!(
            (c.endpoint().as_str(), c.model()),
            (
                "https://models.github.ai/orgs/acme/inference/chat/completions",
                "openai/gpt-4.1"
            )
        );
    }

    #[test]
    fn debug_hides_the_key() {
        let c = ClientConfig::openai(SecretString::from("sk-very-secret-key"));
        assert!(!format!("{c:?}").contains("very-secret"));
    }
}
