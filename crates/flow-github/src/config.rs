//! Where and how to reach GitHub, and which repository.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use flow_core::Backoff;
use secrecy::{ExposeSecret, SecretString};

use crate::error::{Error, Result};

/// GitHub's public API.
pub const DEFAULT_API_URL: &str = "https://api.github.com";

/// The REST API version sent as `X-GitHub-Api-Version`.
pub const API_VERSION: &str = "2022-11-28";

/// The client's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// API base URL: `https://api.github.com`, or `https://HOST/api/v3` for GitHub Enterprise
    /// Server (a runner's `GITHUB_API_URL`), or a test server.
    pub base_url: String,
    /// Token (a `GITHUB_TOKEN` or a PAT); `None` for anonymous access. Its `Debug` is redacted.
    pub token: Option<SecretString>,
    /// The `X-GitHub-Api-Version` header.
    pub api_version: String,
    /// Retries per request after a rate limit, a 5xx or no response (5xx and no response only
    /// for idempotent methods: a POST that may have been carried out is not sent twice).
    pub max_retries: u32,
    /// Longest single wait accepted; a longer rate-limit reset is an error at once.
    pub max_wait: Duration,
    /// Send `If-None-Match` with the last ETag of the same URL on GETs.
    pub conditional: bool,
    /// Back-off before retrying a 5xx or a lost connection (full jitter).
    pub backoff: Backoff,
    /// Connect and read timeout of each request.
    pub timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            base_url: DEFAULT_API_URL.into(),
            token: None,
            api_version: API_VERSION.into(),
            max_retries: 5,
            max_wait: Duration::from_secs(900),
            conditional: true,
            backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(32)),
            timeout: Duration::from_secs(60),
        }
    }
}

impl Config {
    /// github.com, anonymous, 5 retries, conditional requests on.
    pub fn new() -> Self {
        Self::default()
    }

    /// Uses `base_url` (trailing slashes dropped).
    #[must_use]
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into().trim_end_matches('/').to_owned();
        self
    }

    /// Authenticates with `token`.
    #[must_use]
    pub fn with_token(mut self, token: SecretString) -> Self {
        self.token = Some(token);
        self
    }

    /// Sets the retry budget per request.
    #[must_use]
    pub fn with_max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// Sets the longest single wait.
    #[must_use]
    pub fn with_max_wait(mut self, wait: Duration) -> Self {
        self.max_wait = wait;
        self
    }

    /// Turns conditional requests on or off.
    #[must_use]
    pub fn with_conditional(mut self, on: bool) -> Self {
        self.conditional = on;
        self
    }

    /// Sets the back-off of 5xx and connection retries.
    #[must_use]
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Sets the connect and read timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Checks the settings without connecting: the base URL is an absolute http(s) URL, and
    /// the API version and the token can be sent in headers.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidArgument`] naming the setting (never quoting the token).
    pub fn check(&self) -> Result<()> {
        let uri: http::Uri = self.base_url.parse().map_err(|e: http::uri::InvalidUri| {
            Error::invalid(
                "base_url",
                format!("an http(s) URL, got `{}`", self.base_url),
            )
            .with_source(e)
        })?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.authority().is_none() {
            return Err(Error::invalid(
                "base_url",
                format!("an http(s) URL, got `{}`", self.base_url),
            ));
        }
        http::HeaderValue::from_str(&self.api_version).map_err(|e| {
            Error::invalid("api_version", "a header value such as `2022-11-28`").with_source(e)
        })?;
        if let Some(token) = &self.token {
            crate::client::bearer(token.expose_secret())?;
        }
        Ok(())
    }

    /// Replaces every occurrence of the token in `text` with `[redacted]` (should a server or a
    /// proxy echo it).
    pub fn redact(&self, text: &str) -> String {
        redact_token(text, self.token.as_ref())
    }
}

/// `text` with `token` replaced by `[redacted]`.
pub(crate) fn redact_token(text: &str, token: Option<&SecretString>) -> String {
    match token.map(ExposeSecret::expose_secret) {
        Some(t) if !t.is_empty() && text.contains(t) => text.replace(t, "[redacted]"),
        _ => text.to_owned(),
    }
}

/// A repository, `owner/name`: parsed in this one place.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Repo {
    owner: String,
    name: String,
}

fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl Repo {
    /// `owner` and `name`, each made of ASCII letters, digits, `-`, `_` and `.`.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidArgument`] naming `repository` otherwise.
    pub fn new(owner: impl Into<String>, name: impl Into<String>) -> Result<Self> {
        let (owner, name) = (owner.into(), name.into());
        if valid_segment(&owner) && valid_segment(&name) {
            Ok(Self { owner, name })
        } else {
            Err(Error::invalid(
                "repository",
                format!("`owner/repo` of letters, digits, `-`, `_` and `.`, got `{owner}/{name}`"),
            ))
        }
    }

    /// Parses `owner/repo` (as in `GITHUB_REPOSITORY`).
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidArgument`] naming `repository` when it is not `owner/repo`.
    pub fn parse(slug: &str) -> Result<Self> {
        match slug.split_once('/') {
            Some((owner, name)) if !name.contains('/') => Self::new(owner, name),
            _ => Err(Error::invalid(
                "repository",
                format!("`owner/repo`, got `{slug}`"),
            )),
        }
    }

    /// The owner (user or organization).
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The repository's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/repos/{owner}/{name}`, the prefix of every repository endpoint.
    pub fn path(&self) -> String {
        format!("/repos/{}/{}", self.owner, self.name)
    }
}

impl FromStr for Repo {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl fmt::Display for Repo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn parses_owner_slash_repo_and_names_the_field_otherwise() {
        let r = Repo::parse("octo-org/octo.repo_1").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((r.owner(), r.name()), ("octo-org", "octo.repo_1"));
        assert_eq!(r.path(), "/repos/octo-org/octo.repo_1");
        assert_eq!(r.to_string(), "octo-org/octo.repo_1");
        assert_eq!("a/b".parse::<Repo>().ok(), Repo::new("a", "b").ok());
        for bad in ["", "a", "a/", "/b", "a/b/c", "a b/c", "a/..", "a/b?x=1"] {
            let e = Repo::parse(bad)
                .err()
                .unwrap_or_else(|| panic!("{bad} parsed"));
            assert!(
                matches!(e.kind(), ErrorKind::InvalidArgument { name, .. } if name == "repository"),
                "{e}"
            );
            assert!(e.to_string().contains("expected `owner/repo`"), "{e}");
        }
    }

    #[test]
    fn check_names_the_bad_setting_and_never_quotes_the_token() {
        assert!(Config::new().check().is_ok());
        for (c, name) in [
            (Config::new().with_base_url("api.github.com"), "base_url"),
            (Config::new().with_base_url("ftp://x"), "base_url"),
            (
                Config::new().with_token(SecretString::from("ghp_bad\nvalue")),
                "token",
            ),
        ] {
            let e = c.check().err().unwrap_or_else(|| panic!("{c:?} passed"));
            assert!(
                matches!(e.kind(), ErrorKind::InvalidArgument { name: n, .. } if n == name),
                "{e}"
            );
            assert!(!e.to_string().contains("ghp_bad"), "{e}");
        }
    }

    #[test]
    fn debug_and_redact_never_show_the_token() {
        let c = Config::new()
            .with_base_url("https://ghe.example.com/api/v3/")
            .with_token(SecretString::from("ghp_secret_value"));
        assert_eq!(c.base_url, "https://ghe.example.com/api/v3");
        assert!(!format!("{c:?}").contains("ghp_secret_value"));
        assert_eq!(c.redact("Bearer ghp_secret_value!"), "Bearer [redacted]!");
        assert_eq!(Config::new().redact("no token"), "no token");
    }
}
