//! The GitHub REST client shared by the run source and the issue sink: octocrab's raw
//! requests plus what its typed API does not give — `Link` paging, `x-ratelimit-*` headers,
//! back-off on primary and secondary rate limits, and conditional requests with ETags.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::{HeaderMap, HeaderValue, StatusCode};
use octocrab::Octocrab;
use secrecy::SecretString;
use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::time::{Clock, Sleeper, SystemClock, TokioSleeper};

/// Where and how to reach GitHub.
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
        Self {
            base_url: "https://api.github.com".into(),
            owner: owner.into(),
            repo: repo.into(),
            token: None,
            max_retries: 5,
            max_wait: Duration::from_secs(900),
            conditional: true,
        }
    }

    /// Parses `owner/repo` (as in `GITHUB_REPOSITORY`).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] when it is not `owner/repo`.
    pub fn from_slug(slug: &str) -> Result<Self> {
        match slug.split_once('/') {
            Some((o, r)) if !o.is_empty() && !r.is_empty() && !r.contains('/') => {
                Ok(Self::new(o, r))
            }
            _ => Err(Error::invalid(
                "repository",
                format!("expected `owner/repo`, got `{slug}`"),
            )),
        }
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
}

/// Request counters, for the API-economy checks.
#[derive(Debug, Default)]
pub struct ApiStats {
    requests: AtomicU64,
    not_modified: AtomicU64,
    rate_limit_waits: AtomicU64,
    retries: AtomicU64,
}

/// A snapshot of [`ApiStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ApiCounts {
    /// HTTP requests sent, retries included.
    pub requests: u64,
    /// 304 answers.
    pub not_modified: u64,
    /// Waits for a primary or secondary rate limit.
    pub rate_limit_waits: u64,
    /// Retries (after a rate limit or a server error).
    pub retries: u64,
}

/// The last rate-limit state GitHub reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RateLimit {
    /// `x-ratelimit-limit`.
    pub limit: Option<u64>,
    /// `x-ratelimit-remaining`.
    pub remaining: Option<u64>,
    /// `x-ratelimit-reset`, unix ms.
    pub reset_ms: Option<i64>,
}

/// URLs whose last answer is kept for conditional requests.
const ETAG_CACHE_CAP: usize = 256;

/// A cached answer: its ETag, body and headers.
type Cached = (HeaderValue, String, HeaderMap);

/// One answered GET.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub(crate) body: String,
    pub(crate) headers: HeaderMap,
    pub(crate) not_modified: bool,
}

impl Answer {
    /// The URL of `rel="next"` in the `Link` header.
    pub(crate) fn next_link(&self) -> Option<String> {
        let link = self.headers.get(http::header::LINK)?.to_str().ok()?;
        link.split(',').find_map(|part| {
            let (url, params) = part.split_once(';')?;
            params
                .split(';')
                .any(|p| p.trim() == "rel=\"next\"")
                .then(|| {
                    url.trim()
                        .trim_start_matches('<')
                        .trim_end_matches('>')
                        .to_string()
                })
        })
    }
}

/// The shared GitHub client.
#[derive(Debug, Clone)]
pub struct GitHubClient {
    octo: Octocrab,
    cfg: Arc<GitHubConfig>,
    clock: Arc<dyn Clock>,
    sleeper: Arc<dyn Sleeper>,
    etags: Arc<Mutex<HashMap<String, Cached>>>,
    stats: Arc<ApiStats>,
    rate: Arc<Mutex<RateLimit>>,
}

impl GitHubClient {
    /// Builds the client. Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] when the base URL is invalid.
    pub fn new(cfg: GitHubConfig) -> Result<Self> {
        // ring as the process's crypto provider (see [workspace.dependencies] reqwest); a
        // no-op when one is installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut b = Octocrab::builder()
            .base_uri(cfg.base_url.as_str())
            .map_err(|e| Error::invalid("base_url", format!("expected an http(s) URL: {e}")))?;
        if let Some(t) = &cfg.token {
            b = b.personal_token(t.clone());
        }
        let octo = b
            .build()
            .map_err(|e| Error::invalid("base_url", format!("cannot build the client: {e}")))?;
        Ok(Self {
            octo,
            cfg: Arc::new(cfg),
            clock: Arc::new(SystemClock),
            sleeper: Arc::new(TokioSleeper),
            etags: Arc::default(),
            stats: Arc::default(),
            rate: Arc::default(),
        })
    }

    /// Uses `clock` for rate-limit resets.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Uses `sleeper` for back-off waits.
    #[must_use]
    pub fn with_sleeper(mut self, sleeper: Arc<dyn Sleeper>) -> Self {
        self.sleeper = sleeper;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &GitHubConfig {
        &self.cfg
    }

    /// `/repos/{owner}/{repo}`.
    pub(crate) fn repo_path(&self) -> String {
        format!("/repos/{}/{}", self.cfg.owner, self.cfg.repo)
    }

    /// Request counters so far.
    pub fn counts(&self) -> ApiCounts {
        ApiCounts {
            requests: self.stats.requests.load(Ordering::Relaxed),
            not_modified: self.stats.not_modified.load(Ordering::Relaxed),
            rate_limit_waits: self.stats.rate_limit_waits.load(Ordering::Relaxed),
            retries: self.stats.retries.load(Ordering::Relaxed),
        }
    }

    /// The last rate-limit state GitHub reported.
    pub fn rate_limit(&self) -> RateLimit {
        self.rate.lock().map(|r| *r).unwrap_or_default()
    }

    fn record_rate(&self, h: &HeaderMap) {
        let num = |name: &str| h.get(name)?.to_str().ok()?.trim().parse::<i64>().ok();
        if let Ok(mut r) = self.rate.lock() {
            if let Some(v) = num("x-ratelimit-limit") {
                r.limit = u64::try_from(v).ok();
            }
            if let Some(v) = num("x-ratelimit-remaining") {
                r.remaining = u64::try_from(v).ok();
            }
            if let Some(v) = num("x-ratelimit-reset") {
                // Saturating: the header is the server's word, and must not overflow.
                r.reset_ms = Some(v.saturating_mul(1000));
            }
        }
    }

    /// How long to wait before retrying a 403/429, or `None` when it is not a rate limit.
    fn rate_limit_wait(&self, status: StatusCode, h: &HeaderMap, body: &str) -> Option<Duration> {
        if status != StatusCode::FORBIDDEN && status != StatusCode::TOO_MANY_REQUESTS {
            return None;
        }
        let header = |name: &str| h.get(name)?.to_str().ok()?.trim().parse::<i64>().ok();
        // Secondary limits say `retry-after` (seconds).
        if let Some(secs) = header("retry-after") {
            return Some(Duration::from_secs(u64::try_from(secs.max(0)).unwrap_or(0)));
        }
        // Primary limit: nothing remains until the reset (epoch seconds).
        if header("x-ratelimit-remaining") == Some(0)
            && let Some(reset) = header("x-ratelimit-reset")
        {
            let ms = reset
                .saturating_mul(1000)
                .saturating_sub(self.clock.now_ms())
                .max(0)
                .saturating_add(1000);
            return Some(Duration::from_millis(u64::try_from(ms).unwrap_or(0)));
        }
        // A secondary limit without `retry-after`: GitHub asks for at least a minute.
        let lower = body.to_ascii_lowercase();
        if lower.contains("secondary rate limit") || status == StatusCode::TOO_MANY_REQUESTS {
            return Some(Duration::from_secs(60));
        }
        None
    }

    fn path_only(uri: &str) -> String {
        // Errors carry the path, never a query that could hold anything sensitive.
        let no_scheme = uri.split_once("://").map_or(uri, |(_, rest)| rest);
        let path = no_scheme.find('/').map_or("/", |i| &no_scheme[i..]);
        path.split('?').next().unwrap_or(path).to_string()
    }

    /// The error for a failed request, quoting GitHub's `message` with the token (should a proxy
    /// or server echo it) replaced by `[redacted]`.
    fn http_error(&self, method: &str, uri: &str, status: StatusCode, body: &str) -> Error {
        let mut message = serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|v| {
                v.get("message")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
            })
            .unwrap_or_default();
        if let Some(token) = &self.cfg.token {
            let token = secrecy::ExposeSecret::expose_secret(token);
            if !token.is_empty() && message.contains(token) {
                message = message.replace(token, "[redacted]");
            }
        }
        Error::new(ErrorKind::Http {
            method: method.into(),
            path: Self::path_only(uri),
            status: status.as_u16(),
            message,
        })
    }

    /// The ETag of the last answer to `uri` kept for conditional requests.
    pub(crate) fn etag_of(&self, uri: &str) -> Option<String> {
        let m = self.etags.lock().ok()?;
        let (etag, _, _) = m.get(uri)?;
        etag.to_str().ok().map(str::to_string)
    }

    /// Sends `If-None-Match: etag` on the next GET of `uri` (an ETag persisted by another
    /// process); a 304 then answers with an empty body. Ignored when `etag` is not a valid
    /// header value or `uri` already has a cached answer.
    pub(crate) fn seed_etag(&self, uri: &str, etag: &str) {
        if let Ok(v) = HeaderValue::from_str(etag)
            && let Ok(mut m) = self.etags.lock()
        {
            if m.len() >= ETAG_CACHE_CAP && !m.contains_key(uri) {
                m.clear();
            }
            m.entry(uri.to_string())
                .or_insert_with(|| (v, String::new(), HeaderMap::new()));
        }
    }

    /// GETs `uri` (a path under the base URL, or an absolute URL from a `Link` header),
    /// conditionally when enabled, retrying rate limits and server errors.
    pub(crate) async fn get(&self, uri: &str) -> Result<Answer> {
        let cached = if self.cfg.conditional {
            self.etags.lock().ok().and_then(|m| m.get(uri).cloned())
        } else {
            None
        };
        let mut headers = HeaderMap::new();
        if let Some((etag, _, _)) = &cached {
            headers.insert(http::header::IF_NONE_MATCH, etag.clone());
        }
        let (status, h, body) = self.send("GET", uri, Some(headers), None).await?;
        if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
            return Err(self.http_error("GET", uri, status, &body));
        }
        if status == StatusCode::NOT_MODIFIED {
            self.stats.not_modified.fetch_add(1, Ordering::Relaxed);
            if let Some((_, body, headers)) = cached {
                // A 304 carries no `Link`; the cached page's headers still apply.
                return Ok(Answer {
                    body,
                    headers,
                    not_modified: true,
                });
            }
            return Err(self.http_error("GET", uri, status, ""));
        }
        if self.cfg.conditional
            && let Some(etag) = h.get(http::header::ETAG)
            && let Ok(mut m) = self.etags.lock()
        {
            // Bounded: job listings of failed runs are fetched once and would pile up.
            if m.len() >= ETAG_CACHE_CAP && !m.contains_key(uri) {
                m.clear();
            }
            m.insert(uri.to_string(), (etag.clone(), body.clone(), h.clone()));
        }
        Ok(Answer {
            body,
            headers: h,
            not_modified: false,
        })
    }

    /// The repositories of the organisation `org` (`owner/name`, archived ones left out),
    /// every page (`GET /orgs/{org}/repos`, 100 per page), at most `max_pages` pages.
    ///
    /// # Errors
    /// The API's errors (404 for an unknown organisation); [`ErrorKind::Parse`] for a body
    /// that is not a list of repositories.
    pub async fn org_repositories(&self, org: &str, max_pages: u32) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct Repo {
            full_name: String,
            #[serde(default)]
            archived: bool,
        }
        let mut out = Vec::new();
        let mut uri = format!("/orgs/{org}/repos?per_page=100&type=all");
        for _ in 0..max_pages.max(1) {
            let answer = self.get(&uri).await?;
            let page: Vec<Repo> = serde_json::from_str(&answer.body)
                .map_err(|e| Error::parse(format!("GET /orgs/{org}/repos"), e))?;
            out.extend(
                page.into_iter()
                    .filter(|r| !r.archived)
                    .map(|r| r.full_name),
            );
            match answer.next_link() {
                Some(next) => uri = next,
                None => break,
            }
        }
        Ok(out)
    }

    /// POSTs or PATCHes `body` as JSON to `uri`; returns the response body.
    pub(crate) async fn write(
        &self,
        method: &str,
        uri: &str,
        body: &serde_json::Value,
    ) -> Result<String> {
        let (status, _, text) = self.send(method, uri, None, Some(body)).await?;
        if status.is_redirection() {
            return Err(self.http_error(method, uri, status, &text));
        }
        Ok(text)
    }

    /// GETs `uri`, which answers with a redirect (job and run logs): the `Location`, or
    /// `None` when GitHub has nothing there (404, 410).
    pub(crate) async fn get_redirect(&self, uri: &str) -> Result<Option<String>> {
        match self.send("GET", uri, None, None).await {
            Ok((status, h, body)) if status.is_redirection() => h
                .get(http::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .map(|l| Some(l.to_owned()))
                .ok_or_else(|| self.http_error("GET", uri, status, &body)),
            Ok((status, _, body)) => Err(self.http_error("GET", uri, status, &body)),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::Http {
                        status: 404 | 410,
                        ..
                    }
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    async fn send(
        &self,
        method: &str,
        uri: &str,
        headers: Option<HeaderMap>,
        body: Option<&serde_json::Value>,
    ) -> Result<(StatusCode, HeaderMap, String)> {
        let mut attempt = 0u32;
        loop {
            // Wait out a primary limit we already know is exhausted.
            let known = self.rate_limit();
            if known.remaining == Some(0)
                && let Some(reset) = known.reset_ms
            {
                let wait = reset.saturating_sub(self.clock.now_ms());
                if wait > 0 {
                    let wait = Duration::from_millis(u64::try_from(wait).unwrap_or(0) + 1000);
                    if wait > self.cfg.max_wait {
                        return Err(Error::new(ErrorKind::RateLimited {
                            retry_after_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                        }));
                    }
                    self.stats.rate_limit_waits.fetch_add(1, Ordering::Relaxed);
                    self.sleeper.sleep(wait).await;
                }
            }
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let mut hm = headers.clone().unwrap_or_default();
            hm.insert(
                http::header::ACCEPT,
                HeaderValue::from_static("application/vnd.github+json"),
            );
            hm.insert(
                "x-github-api-version",
                HeaderValue::from_static("2022-11-28"),
            );
            let result = match method {
                "GET" => self.octo._get_with_headers(uri, Some(hm)).await,
                "POST" => self.octo._post(uri, body).await,
                "PATCH" => self.octo._patch(uri, body).await,
                other => return Err(Error::invalid("method", format!("unsupported `{other}`"))),
            };
            let response = match result {
                Ok(r) => r,
                Err(e) => {
                    if attempt < self.cfg.max_retries {
                        attempt += 1;
                        self.stats.retries.fetch_add(1, Ordering::Relaxed);
                        self.sleeper.sleep(backoff(attempt)).await;
                        continue;
                    }
                    return Err(Error::new(ErrorKind::Transport(format!(
                        "{method} {}: {e}",
                        Self::path_only(uri)
                    ))));
                }
            };
            let status = response.status();
            let h = response.headers().clone();
            self.record_rate(&h);
            let text =
                self.octo.body_to_string(response).await.map_err(|e| {
                    Error::new(ErrorKind::Transport(format!("reading the body: {e}")))
                })?;
            if status.is_success() || status.is_redirection() {
                return Ok((status, h, text));
            }
            if let Some(wait) = self.rate_limit_wait(status, &h, &text) {
                if attempt >= self.cfg.max_retries || wait > self.cfg.max_wait {
                    return Err(Error::new(ErrorKind::RateLimited {
                        retry_after_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    }));
                }
                attempt += 1;
                tracing::warn!(target: "flow.monitor", status = status.as_u16(), wait_ms = wait.as_millis() as u64, "github rate limit; waiting");
                self.stats.rate_limit_waits.fetch_add(1, Ordering::Relaxed);
                self.stats.retries.fetch_add(1, Ordering::Relaxed);
                // The wait covers the reset; forget the exhausted state so we do not wait twice.
                if let Ok(mut r) = self.rate.lock() {
                    r.remaining = None;
                }
                self.sleeper.sleep(wait).await;
                continue;
            }
            if status.is_server_error() && attempt < self.cfg.max_retries {
                attempt += 1;
                self.stats.retries.fetch_add(1, Ordering::Relaxed);
                self.sleeper.sleep(backoff(attempt)).await;
                continue;
            }
            return Err(self.http_error(method, uri, status, &text));
        }
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(500u64.saturating_mul(1 << attempt.min(6)))
}
