//! The client: octocrab's connection, base URI, auth and timeouts, plus what its raw calls do
//! not give — retries on rate limits and server errors with jittered back-off through the
//! injected clock and sleeper, conditional requests with ETags, request counting and token
//! redaction in errors.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use flow_orchestrator_core::Timing;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use http_body_util::BodyExt;
use octocrab::{OctoBody, Octocrab};
use secrecy::ExposeSecret;
use serde::Serialize;

use crate::config::{Config, redact_token};
use crate::error::{Context, Error, ErrorKind, Result};
use crate::response::Response;

/// GitHub's JSON media type.
pub const JSON: &str = "application/vnd.github+json";

/// Request counters, for API-economy checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ApiCounts {
    /// HTTP requests sent, retries included.
    pub requests: u64,
    /// 304 answers.
    pub not_modified: u64,
    /// Waits for a primary or secondary rate limit.
    pub rate_limit_waits: u64,
    /// Retries (after a rate limit, a server error or no response).
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

#[derive(Debug, Default)]
struct Stats {
    requests: AtomicU64,
    not_modified: AtomicU64,
    rate_limit_waits: AtomicU64,
    retries: AtomicU64,
}

fn bump(n: &AtomicU64) {
    n.fetch_add(1, Ordering::Relaxed);
}

/// URLs whose last answer is kept for conditional requests.
const ETAG_CACHE_CAP: usize = 256;

/// Redirects followed by [`Client::download_tail`].
const MAX_REDIRECTS: usize = 3;

#[derive(Debug, Clone)]
struct Cached {
    etag: HeaderValue,
    body: Bytes,
    headers: HeaderMap,
}

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// A path under the base URL, or an absolute URL on its host: octocrab adds the token.
    Api,
    /// An absolute URL GitHub named (a release's `upload_url`): sent as is, with the token.
    Named,
}

/// One request to send with [`Client::send`].
#[derive(Clone)]
pub struct Request {
    method: Method,
    uri: String,
    accept: HeaderValue,
    body: Option<(String, Bytes)>,
    conditional: bool,
    target: Target,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("path", &crate::error::path_only(&self.uri))
            .field("body_bytes", &self.body.as_ref().map(|(_, b)| b.len()))
            .finish_non_exhaustive()
    }
}

impl Request {
    /// `method` on `uri`: a path under the base URL (`/repos/o/r/issues?state=open`), or an
    /// absolute URL on the base URL's host (a `Link` header's).
    pub fn new(method: Method, uri: impl Into<String>) -> Self {
        Self {
            method,
            uri: uri.into(),
            accept: HeaderValue::from_static(JSON),
            body: None,
            conditional: true,
            target: Target::Api,
        }
    }

    /// A GET.
    pub fn get(uri: impl Into<String>) -> Self {
        Self::new(Method::GET, uri)
    }

    /// A POST.
    pub fn post(uri: impl Into<String>) -> Self {
        Self::new(Method::POST, uri)
    }

    /// A PATCH.
    pub fn patch(uri: impl Into<String>) -> Self {
        Self::new(Method::PATCH, uri)
    }

    /// A DELETE.
    pub fn delete(uri: impl Into<String>) -> Self {
        Self::new(Method::DELETE, uri)
    }

    /// An upload to `url`, an absolute URL GitHub gave (a release's `upload_url` without its
    /// template): the token is sent to that host, so pass only URLs from GitHub's answers.
    pub fn upload(url: impl Into<String>, content_type: impl Into<String>, body: Bytes) -> Self {
        let mut r = Self::new(Method::POST, url);
        r.body = Some((content_type.into(), body));
        r.target = Target::Named;
        r
    }

    /// Sends `body` as JSON.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] when it does not serialize.
    pub fn with_json<T: Serialize + ?Sized>(mut self, body: &T) -> Result<Self> {
        let bytes = serde_json::to_vec(body).map_err(|e| {
            Error::new(
                ErrorKind::InvalidArgument {
                    name: "body".into(),
                    expected: "a value that serializes to JSON".into(),
                },
                Context::new(self.method.as_str(), &self.uri),
            )
            .with_source(e)
        })?;
        self.body = Some(("application/json".into(), Bytes::from(bytes)));
        Ok(self)
    }

    /// Asks for `accept` instead of GitHub's JSON (`application/octet-stream` downloads a
    /// release asset). Unconditional: the ETag cache is keyed by URL and holds JSON.
    #[must_use]
    pub fn with_accept(mut self, accept: &'static str) -> Self {
        self.accept = HeaderValue::from_static(accept);
        self.conditional = false;
        self
    }

    /// Never sends `If-None-Match` nor caches the answer (one-off reads).
    #[must_use]
    pub fn unconditional(mut self) -> Self {
        self.conditional = false;
        self
    }
}

/// The GitHub REST client. Clones share the connection pool, counters, rate-limit state and
/// ETag cache.
#[derive(Clone)]
pub struct Client {
    octo: Octocrab,
    /// Without base path or credentials: downloads from other hosts and uploads.
    bare: Arc<OnceLock<Option<Octocrab>>>,
    cfg: Arc<Config>,
    /// `Bearer …` for [`Target::Named`] requests; sensitive.
    named_auth: Option<HeaderValue>,
    timing: Timing,
    etags: Arc<Mutex<HashMap<String, Cached>>>,
    stats: Arc<Stats>,
    rate: Arc<Mutex<RateLimit>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.cfg)
            .field("counts", &self.counts())
            .finish_non_exhaustive()
    }
}

fn octocrab(cfg: &Config, api: bool) -> Result<Octocrab> {
    // ring as the process's crypto provider (see [workspace.dependencies] reqwest); a no-op
    // when one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    cfg.check()?;
    if tokio::runtime::Handle::try_current().is_err() {
        // octocrab spawns its request buffer on the current runtime (and panics without one).
        return Err(Error::invalid(
            "runtime",
            "to be called inside a tokio runtime",
        ));
    }
    let mut b = Octocrab::builder()
        .set_connect_timeout(Some(cfg.timeout))
        .set_read_timeout(Some(cfg.timeout));
    if api {
        b = b
            .base_uri(cfg.base_url.as_str())
            .map_err(|e| Error::invalid("base_url", "an http(s) URL").with_source(e))?;
        b = b.add_header(
            HeaderName::from_static("x-github-api-version"),
            cfg.api_version.clone(),
        );
        if let Some(token) = &cfg.token {
            // Checked above: octocrab panics on a token that is not a header value.
            b = b.personal_token(token.clone());
        }
    }
    b.build()
        .map_err(|e| Error::invalid("base_url", "a URL octocrab can use").with_source(e))
}

pub(crate) fn bearer(token: &str) -> Result<HeaderValue> {
    let mut v = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
        // The value is not quoted: it is the secret.
        Error::invalid("token", "printable ASCII without line breaks")
    })?;
    v.set_sensitive(true);
    Ok(v)
}

impl Client {
    /// Builds the client. Must be called inside a tokio runtime, the one that will use it
    /// (octocrab's request buffer runs on it).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] when the base URL, the API version or the token is not
    /// usable ([`Config::check`]), or when no tokio runtime is running.
    pub fn new(cfg: Config) -> Result<Self> {
        let octo = octocrab(&cfg, true)?;
        let named_auth = cfg
            .token
            .as_ref()
            .map(|t| bearer(t.expose_secret()))
            .transpose()?;
        Ok(Self {
            octo,
            bare: Arc::default(),
            cfg: Arc::new(cfg),
            named_auth,
            timing: Timing::default(),
            etags: Arc::default(),
            stats: Arc::default(),
            rate: Arc::default(),
        })
    }

    /// Uses `timing` for rate-limit resets and HTTP dates (its clock), every wait (its sleeper)
    /// and the back-off of retries (its jitter); [`Timing::manual`] in tests.
    #[must_use]
    pub fn with_timing(mut self, timing: Timing) -> Self {
        self.timing = timing;
        self
    }

    /// The clock, sleeper and jitter in use.
    pub fn timing(&self) -> &Timing {
        &self.timing
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Request counters so far.
    pub fn counts(&self) -> ApiCounts {
        let s = &self.stats;
        ApiCounts {
            requests: s.requests.load(Ordering::Relaxed),
            not_modified: s.not_modified.load(Ordering::Relaxed),
            rate_limit_waits: s.rate_limit_waits.load(Ordering::Relaxed),
            retries: s.retries.load(Ordering::Relaxed),
        }
    }

    /// The last rate-limit state GitHub reported.
    pub fn rate_limit(&self) -> RateLimit {
        self.rate.lock().map(|r| *r).unwrap_or_default()
    }

    /// GETs `uri` (a path under the base URL or an absolute URL on its host), conditionally
    /// when enabled.
    ///
    /// # Errors
    /// See [`Client::send`].
    pub async fn get(&self, uri: &str) -> Result<Response> {
        self.send(Request::get(uri)).await
    }

    /// Sends `method` with `body` as JSON to `uri`.
    ///
    /// # Errors
    /// See [`Client::send`].
    pub async fn send_json<T: Serialize + ?Sized>(
        &self,
        method: Method,
        uri: &str,
        body: &T,
    ) -> Result<Response> {
        self.send(Request::new(method, uri).with_json(body)?).await
    }

    /// Every page of a listing, following `rel="next"` links, at most `max_pages`.
    pub fn pages(&self, uri: &str, max_pages: usize) -> Pages<'_> {
        Pages {
            client: self,
            next: Some(uri.to_owned()),
            left: max_pages,
        }
    }

    /// The ETag of the last answer to `uri` kept for conditional requests.
    pub fn etag_of(&self, uri: &str) -> Option<String> {
        let m = self.etags.lock().ok()?;
        m.get(uri)?.etag.to_str().ok().map(str::to_owned)
    }

    /// Sends `If-None-Match: etag` on the next GET of `uri` (an ETag persisted by another
    /// process); a 304 then answers with an empty body. Ignored when `etag` is not a header
    /// value or `uri` already has a cached answer.
    pub fn seed_etag(&self, uri: &str, etag: &str) {
        if let Ok(etag) = HeaderValue::from_str(etag) {
            self.remember(
                uri,
                Cached {
                    etag,
                    body: Bytes::new(),
                    headers: HeaderMap::new(),
                },
                false,
            );
        }
    }

    fn remember(&self, uri: &str, cached: Cached, replace: bool) {
        if let Ok(mut m) = self.etags.lock() {
            // Bounded: job listings of failed runs are fetched once and would pile up.
            if m.len() >= ETAG_CACHE_CAP && !m.contains_key(uri) {
                m.clear();
            }
            if replace {
                m.insert(uri.to_owned(), cached);
            } else {
                m.entry(uri.to_owned()).or_insert(cached);
            }
        }
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

    /// How long to wait before retrying a 403/429, or `None` when it is no rate limit.
    fn rate_limit_wait(&self, status: StatusCode, h: &HeaderMap, body: &[u8]) -> Option<Duration> {
        if status != StatusCode::FORBIDDEN && status != StatusCode::TOO_MANY_REQUESTS {
            return None;
        }
        let header = |name: &str| h.get(name)?.to_str().ok();
        // Secondary limits say `retry-after`; a spent primary quota says when it resets.
        if let Some(wait) =
            flow_orchestrator_core::retry_after(header, self.timing.clock.now_system_time())
        {
            return Some(wait);
        }
        if let Some(wait) =
            flow_orchestrator_core::rate_limit_reset(header, self.timing.clock.now_ms())
        {
            return Some(wait);
        }
        // A secondary limit without `retry-after`: GitHub asks for at least a minute.
        let text = String::from_utf8_lossy(body).to_ascii_lowercase();
        (text.contains("secondary rate limit") || status == StatusCode::TOO_MANY_REQUESTS)
            .then_some(Duration::from_secs(60))
    }

    /// Waits out a primary limit already known to be spent, before sending.
    async fn wait_for_known_reset(&self, ctx: &Context) -> Result<()> {
        let known = self.rate_limit();
        let (Some(0), Some(reset)) = (known.remaining, known.reset_ms) else {
            return Ok(());
        };
        let ms = reset.saturating_sub(self.timing.clock.now_ms());
        if ms <= 0 {
            return Ok(());
        }
        let wait =
            Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX).saturating_add(1000));
        if wait > self.cfg.max_wait {
            return Err(Error::new(
                ErrorKind::RateLimited {
                    status: None,
                    retry_after: wait,
                },
                ctx.clone(),
            ));
        }
        bump(&self.stats.rate_limit_waits);
        tracing::warn!(target: "flow.github", wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX), "github quota spent; waiting for its reset");
        self.timing.sleeper.sleep(wait).await;
        Ok(())
    }

    fn bare(&self, ctx: &Context) -> Result<&Octocrab> {
        self.bare
            .get_or_init(|| octocrab(&self.cfg, false).ok())
            .as_ref()
            .ok_or_else(|| Error::new(ErrorKind::Transport, ctx.clone()))
    }

    fn status_error(&self, ctx: &Context, status: StatusCode, body: &[u8]) -> Error {
        let text = String::from_utf8_lossy(body);
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("message")?.as_str().map(str::to_owned))
            .unwrap_or_else(|| {
                let first: String = text.chars().take(200).collect();
                first.split_whitespace().collect::<Vec<_>>().join(" ")
            });
        Error::new(
            ErrorKind::Status {
                status: status.as_u16(),
                message: redact_token(&message, self.cfg.token.as_ref()),
            },
            ctx.clone(),
        )
    }

    fn http_request(
        &self,
        req: &Request,
        etag: Option<&HeaderValue>,
    ) -> Result<http::Request<OctoBody>> {
        let mut b = http::Request::builder()
            .method(req.method.clone())
            .uri(req.uri.as_str())
            .header(ACCEPT, req.accept.clone());
        if let Some(etag) = etag {
            b = b.header(IF_NONE_MATCH, etag.clone());
        }
        if req.target == Target::Named {
            b = b.header("x-github-api-version", self.cfg.api_version.as_str());
            if let Some(auth) = &self.named_auth {
                b = b.header(AUTHORIZATION, auth.clone());
            }
        }
        let body = match &req.body {
            Some((content_type, bytes)) => {
                b = b.header(CONTENT_TYPE, content_type.as_str());
                OctoBody::from(bytes.clone())
            }
            None => OctoBody::empty(),
        };
        b.body(body).map_err(|e| {
            Error::new(
                ErrorKind::InvalidArgument {
                    name: "request".into(),
                    expected: "a valid URI and header values".into(),
                },
                Context::new(req.method.as_str(), &req.uri),
            )
            .with_source(e)
        })
    }

    /// Sends `request`, waiting out rate limits (primary: until the reset; secondary: the
    /// `retry-after`, else a minute) and retrying server errors and lost connections of
    /// idempotent methods with jittered exponential back-off, within the retry budget. A GET
    /// is conditional when enabled: a 304 answers with the cached page.
    ///
    /// # Errors
    /// [`ErrorKind::Status`] for another status (GitHub's message, token redacted; 401 and a
    /// plain 403 are never retried), [`ErrorKind::RateLimited`] when the budget or the longest
    /// wait is spent, [`ErrorKind::Transport`] when no response arrived.
    pub async fn send(&self, request: Request) -> Result<Response> {
        let ctx = Context::new(request.method.as_str(), &request.uri);
        let idempotent = request.method.is_idempotent();
        let conditional =
            request.method == Method::GET && request.conditional && self.cfg.conditional;
        let cached = if conditional {
            self.etags
                .lock()
                .ok()
                .and_then(|m| m.get(&request.uri).cloned())
        } else {
            None
        };
        let mut attempt = 0u32;
        loop {
            self.wait_for_known_reset(&ctx).await?;
            bump(&self.stats.requests);
            let http_req = self.http_request(&request, cached.as_ref().map(|c| &c.etag))?;
            let client = match request.target {
                Target::Api => &self.octo,
                Target::Named => self.bare(&ctx)?,
            };
            let answer = match client.execute(http_req).await {
                Ok(response) => {
                    let (parts, body) = response.into_parts();
                    match body.collect().await {
                        Ok(body) => Ok((parts.status, parts.headers, body.to_bytes())),
                        Err(e) => Err(Error::new(ErrorKind::Transport, ctx.clone()).with_source(e)),
                    }
                }
                Err(e) => Err(Error::new(ErrorKind::Transport, ctx.clone()).with_source(e)),
            };
            let (status, headers, body) = match answer {
                Ok(a) => a,
                Err(e) if idempotent && attempt < self.cfg.max_retries => {
                    attempt += 1;
                    self.back_off(attempt, &ctx, &e.to_string()).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            self.record_rate(&headers);
            if status == StatusCode::NOT_MODIFIED {
                bump(&self.stats.not_modified);
                return match cached {
                    Some(c) => Ok(Response {
                        context: ctx,
                        status,
                        headers: c.headers,
                        body: c.body,
                        not_modified: true,
                    }),
                    None => Err(self.status_error(&ctx, status, &body)),
                };
            }
            if status.is_success() || status.is_redirection() {
                if conditional
                    && status.is_success()
                    && let Some(etag) = headers.get(ETAG)
                {
                    let entry = Cached {
                        etag: etag.clone(),
                        body: body.clone(),
                        headers: headers.clone(),
                    };
                    self.remember(&request.uri, entry, true);
                }
                return Ok(Response {
                    context: ctx,
                    status,
                    headers,
                    body,
                    not_modified: false,
                });
            }
            if let Some(wait) = self.rate_limit_wait(status, &headers, &body) {
                if attempt >= self.cfg.max_retries || wait > self.cfg.max_wait {
                    return Err(Error::new(
                        ErrorKind::RateLimited {
                            status: Some(status.as_u16()),
                            retry_after: wait,
                        },
                        ctx,
                    ));
                }
                attempt += 1;
                tracing::warn!(target: "flow.github", request = %ctx, status = status.as_u16(), wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX), "github rate limit; waiting");
                bump(&self.stats.rate_limit_waits);
                bump(&self.stats.retries);
                // The wait covers the reset: forget the spent state so it is not waited twice.
                if let Ok(mut r) = self.rate.lock() {
                    r.remaining = None;
                }
                self.timing.sleeper.sleep(wait).await;
                continue;
            }
            if status.is_server_error() && idempotent && attempt < self.cfg.max_retries {
                attempt += 1;
                self.back_off(attempt, &ctx, status.as_str()).await;
                continue;
            }
            return Err(self.status_error(&ctx, status, &body));
        }
    }

    async fn back_off(&self, attempt: u32, ctx: &Context, why: &str) {
        bump(&self.stats.retries);
        let wait = self.cfg.backoff.delay(attempt, self.timing.jitter.as_ref());
        tracing::debug!(target: "flow.github", request = %ctx, attempt, why, wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX), "retrying");
        self.timing.sleeper.sleep(wait).await;
    }

    /// GETs `uri`, which answers with a redirect (job and run logs): its `Location`, or `None`
    /// when GitHub has nothing there (404, 410).
    ///
    /// # Errors
    /// See [`Client::send`]; a 2xx where a redirect was expected is an [`ErrorKind::Status`].
    pub async fn redirect_location(&self, uri: &str) -> Result<Option<String>> {
        match self.send(Request::get(uri).unconditional()).await {
            Ok(r) if r.status().is_redirection() => match r.location() {
                Some(l) => Ok(Some(l.to_owned())),
                None => Err(self.status_error(r.context(), r.status(), r.body())),
            },
            Ok(r) => Err(self.status_error(r.context(), r.status(), r.body())),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Downloads the last `max_bytes` of `url` — a short-lived signed link GitHub redirected
    /// to — WITHOUT credentials (they must not leave GitHub's API host), following up to 3
    /// redirects and streaming so only the tail is kept. `None` on 404 or 410. Errors name
    /// `label`, never the URL (it is a credential while it lasts).
    ///
    /// # Errors
    /// [`ErrorKind::Status`] for another unsuccessful status, [`ErrorKind::Transport`] when
    /// the download breaks off.
    pub async fn download_tail(
        &self,
        url: &str,
        label: &str,
        max_bytes: usize,
    ) -> Result<Option<Vec<u8>>> {
        let ctx = Context {
            method: "GET".into(),
            path: label.to_owned(),
        };
        let bare = self.bare(&ctx)?;
        let mut url = url.to_owned();
        for _ in 0..=MAX_REDIRECTS {
            bump(&self.stats.requests);
            let req = http::Request::builder()
                .method(Method::GET)
                .uri(url.as_str())
                .body(OctoBody::empty())
                .map_err(|e| Error::new(ErrorKind::Transport, ctx.clone()).with_source(e))?;
            let response = bare
                .execute(req)
                .await
                .map_err(|e| Error::new(ErrorKind::Transport, ctx.clone()).with_source(e))?;
            let status = response.status();
            if status.is_redirection()
                && let Some(next) = response
                    .headers()
                    .get(http::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
            {
                url = next.to_owned();
                continue;
            }
            if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
                return Ok(None);
            }
            if !status.is_success() {
                return Err(Error::new(
                    ErrorKind::Status {
                        status: status.as_u16(),
                        message: String::new(),
                    },
                    ctx,
                ));
            }
            let mut body = response.into_body();
            let mut tail: Vec<u8> = Vec::new();
            while let Some(frame) = body.frame().await {
                let frame = frame
                    .map_err(|e| Error::new(ErrorKind::Transport, ctx.clone()).with_source(e))?;
                if let Ok(data) = frame.into_data() {
                    tail.extend_from_slice(&data);
                    if tail.len() > max_bytes.saturating_mul(2) {
                        tail.drain(..tail.len() - max_bytes);
                    }
                }
            }
            if tail.len() > max_bytes {
                tail.drain(..tail.len() - max_bytes);
            }
            return Ok(Some(tail));
        }
        Err(Error::new(
            ErrorKind::Status {
                status: 310,
                message: "too many redirects".into(),
            },
            ctx,
        ))
    }
}

/// The pages of a listing, fetched one by one ([`Client::pages`]).
#[derive(Debug)]
pub struct Pages<'c> {
    client: &'c Client,
    next: Option<String>,
    left: usize,
}

impl Pages<'_> {
    /// The next page, or `None` after the last one or `max_pages`.
    ///
    /// # Errors
    /// See [`Client::send`].
    pub async fn next(&mut self) -> Result<Option<Response>> {
        if self.left == 0 {
            return Ok(None);
        }
        let Some(uri) = self.next.take() else {
            return Ok(None);
        };
        self.left -= 1;
        let page = self.client.get(&uri).await?;
        self.next = page.next_link();
        Ok(Some(page))
    }

    /// True when a page remains but `max_pages` stopped the listing.
    pub fn truncated(&self) -> bool {
        self.left == 0 && self.next.is_some()
    }

    /// The items of every page: each page is a JSON array, or an object whose `field` holds
    /// the array (`"jobs"`, `"workflow_runs"`).
    ///
    /// # Errors
    /// See [`Client::send`]; [`ErrorKind::Body`] when a page is not of that shape.
    pub async fn items<T: serde::de::DeserializeOwned>(
        mut self,
        field: Option<&str>,
    ) -> Result<Vec<T>> {
        let mut all = Vec::new();
        while let Some(page) = self.next().await? {
            let items: Vec<T> = match field {
                None => page.json()?,
                Some(f) => {
                    let mut v: serde_json::Value = page.json()?;
                    let list = v
                        .get_mut(f)
                        .map(serde_json::Value::take)
                        .unwrap_or_default();
                    if list.is_null() {
                        Vec::new()
                    } else {
                        serde_json::from_value(list).map_err(|e| {
                            Error::new(ErrorKind::Body, page.context().clone()).with_source(e)
                        })?
                    }
                }
            };
            all.extend(items);
        }
        Ok(all)
    }
}
