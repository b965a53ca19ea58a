//! The GitHub REST client of the run source and the issue sink: flow-github's [`Client`]
//! (paging, rate limits, ETags, retries, redaction) bound to one repository.
//!
//! [`Client`]: flow_github::Client

use std::sync::Arc;
use std::time::Duration;

use flow_github::{Client, Repo, Request, Response};
use http::Method;
use secrecy::SecretString;

pub use flow_github::{ApiCounts, RateLimit};

use crate::error::{Error, Result};
use crate::time::Timing;

/// Where and how to reach GitHub, and which repository.
#[derive(Debug, Clone)]
pub struct GitHubConfig {
    /// API base URL: `https://api.github.com`, or `https://HOST/api/v3` for GitHub Enterprise
    /// Server (the `GITHUB_API_URL` of a runner).
    pub base_url: String,
    /// Repository owner.
    pub owner: String,
    /// Repository name.
    pub repo: String,
    /// Token (a `GITHUB_TOKEN` or a PAT); `None` for anonymous access.
    pub token: Option<SecretString>,
    /// Rate-limit and server-error retries per request.
    pub max_retries: u32,
    /// Longest single wait the client accepts; a longer reset is an error.
    pub max_wait: Duration,
    /// Send `If-None-Match` with the last ETag of the same URL (long-running mode).
    pub conditional: bool,
}

impl GitHubConfig {
    /// Settings for `owner/repo` on github.com, conditional requests on.
    pub fn new(owner: impl Into<String>, repo: impl Into<String>) -> Self {
        let defaults = flow_github::Config::default();
        Self {
            base_url: defaults.base_url,
            owner: owner.into(),
            repo: repo.into(),
            token: None,
            max_retries: defaults.max_retries,
            max_wait: defaults.max_wait,
            conditional: defaults.conditional,
        }
    }

    /// Parses `owner/repo` (as in `GITHUB_REPOSITORY`) with [`Repo::parse`].
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidArgument`] naming `repository` when it is not `owner/repo`.
    pub fn from_slug(slug: &str) -> Result<Self> {
        let repo = Repo::parse(slug)?;
        Ok(Self::new(repo.owner(), repo.name()))
    }

    /// Uses `base_url` (GitHub Enterprise Server or a test server).
    #[must_use]
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
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

    /// Turns conditional requests on or off.
    #[must_use]
    pub fn with_conditional(mut self, on: bool) -> Self {
        self.conditional = on;
        self
    }

    fn client_config(&self) -> flow_github::Config {
        let mut c = flow_github::Config::new()
            .with_base_url(self.base_url.clone())
            .with_max_retries(self.max_retries)
            .with_max_wait(self.max_wait)
            .with_conditional(self.conditional);
        c.token.clone_from(&self.token);
        c
    }
}

/// The shared GitHub client of one repository.
#[derive(Debug, Clone)]
pub struct GitHubClient {
    inner: Client,
    repo: Arc<Repo>,
    cfg: Arc<GitHubConfig>,
}

impl GitHubClient {
    /// Builds the client. Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidArgument`] when the repository, the base URL or the token is
    /// not usable.
    pub fn new(cfg: GitHubConfig) -> Result<Self> {
        let repo = Repo::new(cfg.owner.clone(), cfg.repo.clone())?;
        Ok(Self {
            inner: Client::new(cfg.client_config())?,
            repo: Arc::new(repo),
            cfg: Arc::new(cfg),
        })
    }

    /// Uses `timing` (clock, sleeper, jitter) for rate-limit resets, waits and the back-off of
    /// server-error retries ([`Client::with_timing`]).
    #[must_use]
    pub fn with_timing(mut self, timing: Timing) -> Self {
        self.inner = self.inner.with_timing(timing);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &GitHubConfig {
        &self.cfg
    }

    /// The repository.
    pub fn repo(&self) -> &Repo {
        &self.repo
    }

    /// The flow-github client underneath.
    pub fn client(&self) -> &Client {
        &self.inner
    }

    /// `/repos/{owner}/{repo}`.
    pub(crate) fn repo_path(&self) -> String {
        self.repo.path()
    }

    /// Request counters so far.
    pub fn counts(&self) -> ApiCounts {
        self.inner.counts()
    }

    /// The last rate-limit state GitHub reported.
    pub fn rate_limit(&self) -> RateLimit {
        self.inner.rate_limit()
    }

    /// The ETag of the last answer to `uri` kept for conditional requests.
    pub(crate) fn etag_of(&self, uri: &str) -> Option<String> {
        self.inner.etag_of(uri)
    }

    /// Sends `If-None-Match: etag` on the next GET of `uri` (an ETag persisted by another
    /// process).
    pub(crate) fn seed_etag(&self, uri: &str, etag: &str) {
        self.inner.seed_etag(uri, etag);
    }

    /// GETs `uri` (a path under the base URL, or an absolute URL from a `Link` header).
    pub(crate) async fn get(&self, uri: &str) -> Result<Response> {
        Ok(self.inner.get(uri).await?)
    }

    /// The pages of a listing from `uri`, at most `max_pages`.
    pub(crate) fn pages(&self, uri: &str, max_pages: usize) -> flow_github::Pages<'_> {
        self.inner.pages(uri, max_pages)
    }

    /// The repositories of the organisation `org` (`owner/name`, archived ones left out),
    /// every page (`GET /orgs/{org}/repos`, 100 per page), at most `max_pages` pages.
    ///
    /// # Errors
    /// The API's errors (404 for an unknown organisation); [`crate::ErrorKind::Parse`] for a
    /// body that is not a list of repositories.
    pub async fn org_repositories(&self, org: &str, max_pages: u32) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct Repo {
            full_name: String,
            #[serde(default)]
            archived: bool,
        }
        let uri = format!("/orgs/{org}/repos?per_page=100&type=all");
        let max_pages = usize::try_from(max_pages.max(1)).unwrap_or(usize::MAX);
        let mut pages = self.inner.pages(&uri, max_pages);
        let mut out = Vec::new();
        while let Some(answer) = pages.next().await? {
            let page: Vec<Repo> = serde_json::from_slice(answer.body())
                .map_err(|e| Error::parse(format!("GET /orgs/{org}/repos"), e))?;
            out.extend(
                page.into_iter()
                    .filter(|r| !r.archived)
                    .map(|r| r.full_name),
            );
        }
        Ok(out)
    }

    /// POSTs or PATCHes `body` as JSON to `uri`.
    pub(crate) async fn write(
        &self,
        method: Method,
        uri: &str,
        body: &serde_json::Value,
    ) -> Result<Response> {
        Ok(self
            .inner
            .send(Request::new(method, uri).with_json(body)?)
            .await?)
    }

    /// The `Location` of a redirecting GET (job logs), or `None` on 404/410.
    pub(crate) async fn get_redirect(&self, uri: &str) -> Result<Option<String>> {
        Ok(self.inner.redirect_location(uri).await?)
    }

    /// The last `max_bytes` of a signed download link, fetched without credentials.
    pub(crate) async fn download_tail(
        &self,
        url: &str,
        label: &str,
        max_bytes: usize,
    ) -> Result<Option<Vec<u8>>> {
        Ok(self.inner.download_tail(url, label, max_bytes).await?)
    }
}

impl From<flow_github::Error> for Error {
    fn from(e: flow_github::Error) -> Self {
        use crate::error::ErrorKind;
        use flow_github::ErrorKind as Gh;
        let ctx = e.context().clone();
        let kind = match e.kind() {
            Gh::Status { status, message } => ErrorKind::Http {
                method: ctx.method,
                path: ctx.path,
                status: *status,
                message: message.clone(),
            },
            Gh::RateLimited { retry_after, .. } => ErrorKind::RateLimited {
                retry_after_ms: u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX),
            },
            Gh::InvalidArgument { name, expected } => ErrorKind::InvalidArgument {
                name: name.clone(),
                detail: format!("expected {expected}"),
            },
            // No response, an unreadable body, or a kind added later: the request's context
            // here, the cause as the source.
            _ => ErrorKind::Transport(format!("{ctx}: {}", e.kind())),
        };
        Error::new(kind).with_source(e)
    }
}
