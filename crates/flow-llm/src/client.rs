//! The HTTP client for Chat Completions servers.

use std::fmt;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use http::HeaderMap;
use secrecy::ExposeSecret;
use tracing::Instrument;

use crate::config::{ClientConfig, Provider};
use crate::error::{ApiFailure, Error, ErrorKind, Result};
use crate::model::ChatModel;
use crate::prompt;
use crate::protocol::{ChatRequest, ChatResponse, parse_error_body, truncate};
use crate::redact::redact;

/// Headers that carry a request id, in order of preference.
const REQUEST_ID_HEADERS: &[&str] = &[
    "x-request-id",
    "apim-request-id",
    "x-ms-request-id",
    "x-github-request-id",
];

/// The HTTP implementation of [`ChatModel`] for OpenAI, GitHub Models, Azure OpenAI and any
/// compatible server. It keeps connections alive; clone it freely (clones share the pool).
#[derive(Clone)]
pub struct HttpClient {
    config: ClientConfig,
    endpoint: String,
    /// The password of a `user:pass@` base URL, as it appears in URLs (percent-encoded), so
    /// that transport errors quoting the URL can be redacted.
    url_password: Option<String>,
    http: reqwest::Client,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// Builds a client from `config`.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when the base URL is not an http(s) URL or the TLS stack fails to
    /// initialise.
    pub fn new(config: ClientConfig) -> Result<Self> {
        let endpoint = config.endpoint();
        let parsed = url::Url::parse(&endpoint).map_err(|e| {
            Error::config(format!(
                "base URL {:?} is not a valid URL: {e}",
                config.base_url
            ))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Error::config(format!(
                "base URL {:?}: expected an http or https URL",
                config.base_url
            )));
        }
        // ring as the process's crypto provider (see [workspace.dependencies] reqwest); a
        // no-op when one is installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .user_agent(concat!("flow-llm/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::config("the HTTP client could not be built").with_source(e))?;
        let url_password = parsed.password().map(str::to_owned);
        Ok(Self {
            config,
            endpoint,
            url_password,
            http,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    fn secrets(&self) -> Vec<&str> {
        self.config
            .api_key
            .as_ref()
            .map(|k| k.expose_secret())
            .into_iter()
            .chain(self.url_password.as_deref())
            .collect()
    }

    /// Applies the default model and the quirks, and validates the prompt; borrows when
    /// nothing changes.
    fn prepare<'r>(&self, request: &'r ChatRequest) -> Result<std::borrow::Cow<'r, ChatRequest>> {
        let mut req = std::borrow::Cow::Borrowed(request);
        if req.model.is_empty() {
            req.to_mut().model.clone_from(&self.config.model);
        }
        let quirks = self.config.quirks.lookup(&req.model);
        if quirks.reasoning || quirks.legacy_max_tokens {
            let mut owned = req.into_owned();
            let changed = self.config.quirks.apply(&mut owned);
            if !changed.is_empty() {
                tracing::warn!(
                    model = %owned.model,
                    changed = ?changed,
                    "model quirks: dropped or renamed parameters the model does not accept"
                );
            }
            req = std::borrow::Cow::Owned(owned);
        }
        prompt::validate_messages(
            &req.messages,
            quirks.context_window,
            req.max_completion_tokens,
        )?;
        Ok(req)
    }

    fn auth(&self, builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let Some(key) = &self.config.api_key else {
            return builder;
        };
        match self.config.provider {
            Provider::AzureOpenAi => builder.header("api-key", key.expose_secret()),
            Provider::GitHubModels { .. } => builder
                .bearer_auth(key.expose_secret())
                .header("accept", "application/vnd.github+json")
                .header("x-github-api-version", "2022-11-28"),
            _ => builder.bearer_auth(key.expose_secret()),
        }
    }

    fn transport_error(&self, e: &reqwest::Error, what: &str) -> Error {
        let (kind, text) = if e.is_timeout() {
            (ErrorKind::Timeout, "timed out")
        } else if e.is_connect() {
            (ErrorKind::Connection, "could not connect")
        } else {
            (ErrorKind::Connection, "was cut off")
        };
        Error::new(
            kind,
            format!(
                "{what} to {} {text}: {}",
                self.config.provider.name(),
                redact(&e.to_string(), &self.secrets())
            ),
        )
    }

    fn api_error(&self, status: u16, headers: &HeaderMap, body: &[u8], model: &str) -> Error {
        let parsed = parse_error_body(body);
        let secrets = self.secrets();
        let server = parsed
            .message
            .as_deref()
            .map(|m| redact(m, &secrets))
            .unwrap_or_else(|| "no message".to_owned());
        let failure = ApiFailure {
            status,
            code: parsed.code,
            error_type: parsed.error_type,
            request_id: request_id(headers),
            retry_after: retry_after(headers, SystemTime::now()),
            should_retry: header_str(headers, "x-should-retry").and_then(|v| match v {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            }),
        };
        let provider = self.config.provider.name();
        let advice = match (&self.config.provider, status) {
            (Provider::GitHubModels { .. }, 401 | 403) => {
                " (give the workflow `permissions: models: read`, or use a token with access to GitHub Models)"
            }
            (Provider::GitHubModels { .. }, 413) => {
                " (the request is over the model's token cap on GitHub Models: shorten the prompt or choose a model with a larger limit)"
            }
            (_, 413) => {
                " (the request is too large: shorten the prompt or choose a model with a larger context window)"
            }
            (_, 401) => " (check the API key)",
            (_, 404) => " (check the base URL and the model or deployment name)",
            (_, 429) if failure.code.as_deref() == Some("insufficient_quota") => {
                " (the account's quota is used up: add credit or fall back to another provider)"
            }
            _ => "",
        };
        let code = failure
            .code
            .as_deref()
            .map(|c| format!(" [{c}]"))
            .unwrap_or_default();
        Error::new(
            ErrorKind::Api(failure),
            format!("{provider} answered HTTP {status}{code} for model {model}: {server}{advice}"),
        )
    }

    async fn send(&self, req: &ChatRequest) -> Result<ChatResponse> {
        let span = tracing::Span::current();
        let body = serde_json::to_vec(req).map_err(|e| {
            Error::new(
                ErrorKind::InvalidPrompt,
                "the request could not be encoded as JSON",
            )
            .with_source(e)
        })?;
        if tracing::enabled!(tracing::Level::TRACE) {
            tracing::trace!(request = %redact(&String::from_utf8_lossy(&body), &self.secrets()), "prompt");
        }
        let mut builder = self
            .http
            .post(&self.endpoint)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(deadline) = req.options.deadline {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    "the deadline passed before the request was sent",
                ));
            }
            builder = builder.timeout(left.min(self.config.timeout));
        }
        let started = tokio::time::Instant::now();
        let response = self
            .auth(builder)
            .send()
            .await
            .map_err(|e| self.transport_error(&e, "the request"))?;
        let status = response.status().as_u16();
        let id = request_id(response.headers());
        // Only an error needs the headers after the body is read.
        let error_headers = (!(200..300).contains(&status)).then(|| response.headers().clone());
        span.record("status", status);
        if let Some(id) = &id {
            span.record("request_id", id.as_str());
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(&e, "the response body"))?;
        let latency = started.elapsed();
        span.record("latency_ms", latency.as_millis() as u64);
        if let Some(headers) = error_headers {
            return Err(self.api_error(status, &headers, &bytes, &req.model));
        }
        let mut parsed: ChatResponse = serde_json::from_slice(&bytes).map_err(|e| {
            Error::new(
                ErrorKind::InvalidResponse,
                format!(
                    "{} answered HTTP {status} with a body that is not a chat completion ({e}): {}",
                    self.config.provider.name(),
                    redact(
                        &truncate(&String::from_utf8_lossy(&bytes), 200),
                        &self.secrets()
                    )
                ),
            )
        })?;
        if let Some(u) = parsed.usage {
            span.record("prompt_tokens", u.prompt_tokens);
            span.record("completion_tokens", u.completion_tokens);
            span.record("cached_tokens", u.cached_tokens());
        }
        if tracing::enabled!(tracing::Level::TRACE) {
            tracing::trace!(answer = %redact(parsed.text().unwrap_or_default(), &self.secrets()), "answer");
        }
        parsed.meta.provider = self.config.provider.name().to_owned();
        parsed.meta.model.clone_from(&req.model);
        parsed.meta.attempts = 1;
        parsed.meta.request_id = id;
        parsed.meta.latency = latency;
        Ok(parsed)
    }
}

#[async_trait]
impl ChatModel for HttpClient {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse> {
        let req = self.prepare(request)?;
        let span = tracing::info_span!(
            "flow.llm.call",
            provider = self.config.provider.name(),
            model = %req.model,
            status = tracing::field::Empty,
            latency_ms = tracing::field::Empty,
            request_id = tracing::field::Empty,
            prompt_tokens = tracing::field::Empty,
            completion_tokens = tracing::field::Empty,
            cached_tokens = tracing::field::Empty,
        );
        self.send(&req).instrument(span).await
    }
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

fn request_id(headers: &HeaderMap) -> Option<String> {
    REQUEST_ID_HEADERS
        .iter()
        .find_map(|h| header_str(headers, h))
        .map(str::to_owned)
}

/// The wait the server asks for: `retry-after-ms`, else `Retry-After` (flow-orchestrator-core's one parser).
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    flow_orchestrator_core::retry_after(|name| header_str(headers, name), now)
}
#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn a_huge_retry_after_is_capped_not_a_panic() {
        let now = SystemTime::UNIX_EPOCH;
        let day = Some(Duration::from_secs(86_400));
        assert_eq!(
            retry_after(&headers(&[("retry-after-ms", "1e300")]), now),
            day
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "1e300")]), now), day);
    }

    #[test]
    fn retry_after_in_all_three_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            retry_after(&headers(&[("retry-after-ms", "250")]), now),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "3")]), now),
            Some(Duration::from_secs(3))
        );
        let date = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            retry_after(&headers(&[("retry-after", &date)]), now),
            Some(Duration::from_secs(30))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(
            retry_after(&headers(&[("retry-after", &past)]), now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")]), now), None);
        assert_eq!(
            retry_after(
                &headers(&[("retry-after-ms", "100"), ("retry-after", "9")]),
                now
            ),
            Some(Duration::from_millis(100))
        );
    }
}
