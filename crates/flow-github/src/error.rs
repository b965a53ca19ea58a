//! The one error shape of the GitHub layer: a kind to match on, the request it happened to
//! (method and path, never a query or a credential), and the cause kept as `source`.

use std::fmt;
use std::time::Duration;

/// The request an error happened to: its method and path (no query string, no host).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Context {
    /// HTTP method, `GET`; empty when no request was made.
    pub method: String,
    /// Path of the request (queries dropped: they may hold anything).
    pub path: String,
}

impl Context {
    /// The context of `method` on `uri` (a path or an absolute URL; only its path is kept).
    pub fn new(method: impl Into<String>, uri: &str) -> Self {
        Self {
            method: method.into(),
            path: path_only(uri),
        }
    }
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

/// The path of `uri` without scheme, host or query.
pub(crate) fn path_only(uri: &str) -> String {
    let no_scheme = uri.split_once("://").map_or(uri, |(_, rest)| rest);
    let path = if uri.contains("://") {
        no_scheme.find('/').map_or("/", |i| &no_scheme[i..])
    } else {
        no_scheme
    };
    let path = path.split(['?', '#']).next().unwrap_or(path);
    if path.is_empty() {
        "/".into()
    } else {
        path.into()
    }
}

/// What went wrong; match on it through [`Error::kind`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// GitHub answered with an unexpected status.
    Status {
        /// The HTTP status code.
        status: u16,
        /// GitHub's `message` (or the start of a non-JSON body), the token redacted.
        message: String,
    },
    /// A primary or secondary rate limit, and the retry budget or the longest wait is spent.
    RateLimited {
        /// The status that said so (403 or 429), `None` when an exhausted quota was known
        /// before sending.
        status: Option<u16>,
        /// How long GitHub asked to wait.
        retry_after: Duration,
    },
    /// No response arrived (connection, TLS, timeout); the cause is the source.
    Transport,
    /// The response body could not be read or decoded; the cause is the source.
    Body,
    /// An argument or setting is not of the expected form.
    InvalidArgument {
        /// The argument or setting.
        name: String,
        /// What was expected.
        expected: String,
    },
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status { status, message } if message.is_empty() => write!(f, "status {status}"),
            Self::Status { status, message } => write!(f, "status {status}: {message}"),
            Self::RateLimited { retry_after, .. } => {
                write!(
                    f,
                    "rate limited: retry after {} ms",
                    retry_after.as_millis()
                )
            }
            Self::Transport => f.write_str("no response"),
            Self::Body => f.write_str("unreadable response body"),
            Self::InvalidArgument { name, expected } => write!(f, "`{name}`: expected {expected}"),
        }
    }
}

/// A failure of the GitHub layer.
#[derive(Debug, thiserror::Error)]
pub struct Error {
    kind: ErrorKind,
    context: Context,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// An error of `kind` on `context`, without a cause.
    pub fn new(kind: ErrorKind, context: Context) -> Self {
        Self {
            kind,
            context,
            source: None,
        }
    }

    /// The same error caused by `source`.
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    pub(crate) fn invalid(name: impl Into<String>, expected: impl Into<String>) -> Self {
        Self::new(
            ErrorKind::InvalidArgument {
                name: name.into(),
                expected: expected.into(),
            },
            Context::default(),
        )
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The request it happened to.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// The HTTP status, when a response arrived.
    pub fn status(&self) -> Option<u16> {
        match &self.kind {
            ErrorKind::Status { status, .. } => Some(*status),
            ErrorKind::RateLimited { status, .. } => *status,
            _ => None,
        }
    }

    /// True for a 404 or 410: GitHub has nothing there.
    pub fn is_not_found(&self) -> bool {
        matches!(self.status(), Some(404 | 410)) && matches!(self.kind, ErrorKind::Status { .. })
    }

    /// True when the same request may succeed later: rate limits, 5xx, no response.
    pub fn is_retryable(&self) -> bool {
        match &self.kind {
            ErrorKind::RateLimited { .. } | ErrorKind::Transport => true,
            ErrorKind::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }

    /// How long GitHub asked to wait, for a rate limit.
    pub fn retry_after(&self) -> Option<Duration> {
        match &self.kind {
            ErrorKind::RateLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.context.method.is_empty() {
            write!(f, "github: {}", self.kind)
        } else {
            write!(f, "github: {}: {}", self.context, self.kind)
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn context_keeps_the_path_only() {
        assert_eq!(
            path_only("/repos/o/r/actions/runs?page=2"),
            "/repos/o/r/actions/runs"
        );
        assert_eq!(
            path_only("https://api.github.com/api/v3/repos/o/r?sig=secret#x"),
            "/api/v3/repos/o/r"
        );
        assert_eq!(path_only("https://host"), "/");
        assert_eq!(path_only(""), "/");
        assert_eq!(Context::new("GET", "https://h/p?q=1").to_string(), "GET /p");
    }

    #[test]
    fn display_names_the_request_and_the_cause_stays_a_source() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        let e = Error::new(ErrorKind::Transport, Context::new("GET", "/repos/o/r")).with_source(io);
        assert_eq!(e.to_string(), "github: GET /repos/o/r: no response");
        let cause = std::error::Error::source(&e).map(ToString::to_string);
        assert_eq!(cause.as_deref(), Some("reset by peer"));
        assert!(e.is_retryable());
    }

    #[test]
    fn predicates() {
        let status = |s: u16| {
            Error::new(
                ErrorKind::Status {
                    status: s,
                    message: String::new(),
                },
                Context::default(),
            )
        };
        assert!(status(502).is_retryable() && status(429).is_retryable());
        assert!(!status(401).is_retryable() && !status(403).is_retryable());
        assert!(status(404).is_not_found() && status(410).is_not_found());
        assert_eq!(status(404).to_string(), "github: status 404");
        assert_eq!(
            Error::invalid("base_url", "an http(s) URL").to_string(),
            "github: `base_url`: expected an http(s) URL"
        );
        let rl = Error::new(
            ErrorKind::RateLimited {
                status: Some(403),
                retry_after: Duration::from_secs(5),
            },
            Context::default(),
        );
        assert_eq!(
            (rl.status(), rl.retry_after()),
            (Some(403), Some(Duration::from_secs(5)))
        );
        assert!(rl.is_retryable() && !rl.is_not_found());
        assert!(!Error::invalid("base_url", "a URL").is_retryable());
    }
}
