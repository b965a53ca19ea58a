//! The crate's one error type and the predicates callers act on.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A boxed cause kept behind an [`Error`].
type Source = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong, in terms a caller can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The configuration is incomplete or contradictory (a missing key, a bad URL).
    Config,
    /// A prompt or template failed validation before anything was sent.
    InvalidPrompt,
    /// The server answered with an HTTP error status.
    Api(ApiFailure),
    /// The connection failed or was cut before a whole response arrived.
    Connection,
    /// The request or the delegation ran out of time.
    Timeout,
    /// The server's answer was not valid Chat Completions JSON.
    InvalidResponse,
    /// The model refused to answer; the refusal text is in the message.
    Refused,
    /// The answer was cut off because it reached the token limit (`finish_reason = length`).
    Truncated,
    /// The answer was blocked by the provider's content filter.
    ContentFiltered,
    /// The answer did not match the requested schema, even after asking again.
    InvalidAnswer,
    /// A budget limit (tokens or calls per run) refuses further calls.
    BudgetExceeded,
    /// Every model in a fallback chain failed; the last error is the source.
    Exhausted,
    /// The cache backend failed.
    Cache,
}

/// The details of an HTTP error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiFailure {
    /// The HTTP status code.
    pub status: u16,
    /// The error `code` from the body, as text whether the server sent a string or a number.
    pub code: Option<String>,
    /// The error `type` from the body.
    pub error_type: Option<String>,
    /// The request id header the server returned, if any.
    pub request_id: Option<String>,
    /// How long the server asked us to wait (`retry-after-ms` or `Retry-After`).
    pub retry_after: Option<Duration>,
    /// The server's `x-should-retry` verdict, when it sent one.
    pub should_retry: Option<bool>,
}

/// The error of every fallible operation in `flow-llm`. Cloning is cheap (the source is
/// shared), so one failure can answer many coalesced callers.
///
/// The message never holds an API key: messages that come from servers are redacted first.
#[derive(Clone)]
pub struct Error {
    inner: Box<Inner>,
}

#[derive(Clone)]
struct Inner {
    kind: ErrorKind,
    message: String,
    source: Option<Source>,
    attempts: u32,
}

impl Error {
    /// Creates an error of `kind` with a lower-case `message` that names what was expected.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            inner: Box::new(Inner {
                kind,
                message: message.into(),
                source: None,
                attempts: 0,
            }),
        }
    }

    /// Attaches the underlying cause.
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.inner.source = Some(Arc::new(source));
        self
    }

    /// Records that the failure took `attempts` API attempts (set by [`crate::Retry`] and
    /// [`crate::Fallback`]; a custom decorator that retries should set it too).
    #[must_use]
    pub fn with_attempts(mut self, attempts: u32) -> Self {
        self.inner.attempts = attempts;
        self
    }

    /// The API attempts this failure took, retries and earlier models of a fallback chain
    /// included, as recorded by the decorators; 0 when none recorded it (a bare client's
    /// failure, which [`crate::Accounting`] counts as one attempt).
    pub fn attempts(&self) -> u32 {
        self.inner.attempts
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.inner.kind
    }

    /// The human-readable message (without the source chain).
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// The HTTP status, when the server answered with an error status.
    pub fn status(&self) -> Option<u16> {
        match &self.inner.kind {
            ErrorKind::Api(f) => Some(f.status),
            _ => None,
        }
    }

    /// The API error code (`insufficient_quota`, `context_length_exceeded`, ...), if any.
    pub fn code(&self) -> Option<&str> {
        match &self.inner.kind {
            ErrorKind::Api(f) => f.code.as_deref(),
            _ => None,
        }
    }

    /// Whether trying the same request again may succeed: 408, 409, 429 (not for
    /// `insufficient_quota`), 5xx, connection errors and timeouts. The server's
    /// `x-should-retry` header overrides the status.
    pub fn is_retryable(&self) -> bool {
        match &self.inner.kind {
            ErrorKind::Api(f) => {
                if let Some(verdict) = f.should_retry {
                    return verdict && !self.is_quota();
                }
                if self.is_quota() {
                    return false;
                }
                matches!(f.status, 408 | 409 | 429) || f.status >= 500
            }
            ErrorKind::Connection | ErrorKind::Timeout => true,
            _ => false,
        }
    }

    /// Whether the quota of the account is used up (retrying cannot help).
    pub fn is_quota(&self) -> bool {
        matches!(self.code(), Some("insufficient_quota"))
            || matches!(&self.inner.kind, ErrorKind::Api(f) if f.error_type.as_deref() == Some("insufficient_quota"))
    }

    /// Whether the prompt is over the model's context window or token cap.
    pub fn is_context_length(&self) -> bool {
        matches!(
            self.code(),
            Some("context_length_exceeded" | "tokens_limit_reached" | "string_above_max_length")
        ) || self.status() == Some(413)
    }

    /// Whether another model or provider in a fallback chain should be tried: quota, rate
    /// limits and 5xx that survived retries, connection errors, timeouts and context length.
    pub fn is_fallbackable(&self) -> bool {
        if self.is_quota() || self.is_context_length() {
            return true;
        }
        match &self.inner.kind {
            ErrorKind::Api(f) => f.status == 429 || f.status >= 500 || f.status == 408,
            ErrorKind::Connection | ErrorKind::Timeout | ErrorKind::Exhausted => true,
            _ => false,
        }
    }

    /// How long the server asked us to wait before trying again.
    pub fn retry_after(&self) -> Option<Duration> {
        match &self.inner.kind {
            ErrorKind::Api(f) => f.retry_after,
            _ => None,
        }
    }

    /// The request id the server returned with the error, if any.
    pub fn request_id(&self) -> Option<&str> {
        match &self.inner.kind {
            ErrorKind::Api(f) => f.request_id.as_deref(),
            _ => None,
        }
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }

    pub(crate) fn prompt(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidPrompt, message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.inner.kind)
            .field("message", &self.inner.message)
            .field("source", &self.inner.source)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: Option<&str>, should_retry: Option<bool>) -> Error {
        Error::new(
            ErrorKind::Api(ApiFailure {
                status,
                code: code.map(str::to_owned),
                error_type: None,
                request_id: None,
                retry_after: None,
                should_retry,
            }),
            "x",
        )
    }

    #[test]
    fn retryable_statuses_follow_the_policy() {
        for s in [408, 409, 429, 500, 502, 503, 504] {
            assert!(api(s, None, None).is_retryable(), "{s}");
        }
        for s in [400, 401, 403, 404, 413, 422] {
            assert!(!api(s, None, None).is_retryable(), "{s}");
        }
        assert!(!api(429, Some("insufficient_quota"), None).is_retryable());
        assert!(!api(429, Some("insufficient_quota"), Some(true)).is_retryable());
        assert!(api(400, None, Some(true)).is_retryable());
        assert!(!api(503, None, Some(false)).is_retryable());
    }

    #[test]
    fn fallback_classes() {
        assert!(api(429, Some("insufficient_quota"), None).is_fallbackable());
        assert!(api(503, None, None).is_fallbackable());
        assert!(api(400, Some("context_length_exceeded"), None).is_fallbackable());
        assert!(api(413, None, None).is_fallbackable());
        assert!(!api(401, None, None).is_fallbackable());
        assert!(!api(400, None, None).is_fallbackable());
    }
}
