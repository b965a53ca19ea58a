//! The crate's one error type.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong; callers match on this through [`Error::kind`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Input (a file, a payload, an API body) could not be parsed.
    #[error("cannot parse {what}: {detail}")]
    Parse {
        /// What was being parsed (file name, payload kind, endpoint).
        what: String,
        /// What was expected and what was found.
        detail: String,
    },
    /// A rules file has an unknown key or an invalid value.
    #[error("invalid rules: `{key}`: {detail}")]
    Config {
        /// Dotted path of the offending key.
        key: String,
        /// What was expected.
        detail: String,
    },
    /// The GitHub API answered with an unexpected status.
    #[error("github api: {method} {path} answered {status}: {message}")]
    Http {
        /// HTTP method.
        method: String,
        /// Request path (never carries credentials).
        path: String,
        /// HTTP status code.
        status: u16,
        /// GitHub's `message` field, if any.
        message: String,
    },
    /// Rate limited and the retry budget is spent.
    #[error("github api rate limit: retry after {retry_after_ms} ms")]
    RateLimited {
        /// How long GitHub asked to wait, in milliseconds.
        retry_after_ms: u64,
    },
    /// The connection failed before a response arrived, or its body could not be read.
    #[error("github api transport: {0}")]
    Transport(
        /// The request (method and path) and what failed; the cause is the error's source.
        String,
    ),
    /// A local file could not be read or written.
    #[error("io on {path}: {detail}")]
    Io {
        /// The file path.
        path: String,
        /// The OS error.
        detail: String,
    },
    /// The monitor state (a file or a Redis key) cannot be read, parsed or written.
    #[error("monitor state {origin}: {detail}")]
    State {
        /// The file path or Redis key (without credentials).
        origin: String,
        /// What is wrong and what to do.
        detail: String,
    },
    /// Another monitor saved the state since it was loaded: reload and redo.
    #[error(
        "monitor state {origin}: saved by another monitor meanwhile (revision {found}, expected {expected})"
    )]
    StateConflict {
        /// The file path or Redis key.
        origin: String,
        /// The revision the state was loaded at.
        expected: u64,
        /// The revision found.
        found: u64,
    },
    /// The coordination backend of `flow serve` replicas failed (unreachable, refused).
    #[error("coordination {backend}: {detail}")]
    Coordination {
        /// Where the coordination lives (`memory`, a Redis URL without credentials).
        backend: String,
        /// What went wrong.
        detail: String,
    },
    /// A repository's work lease expired and may be held by another process: stop working on
    /// the repository (the next holder redoes what was not acknowledged).
    #[error("work lease of {repository} lost: it expired and may be held by another process")]
    LeaseLost {
        /// The repository, `owner/name`.
        repository: String,
    },
    /// A webhook delivery's signature was refused.
    #[error("webhook signature: {0}")]
    Signature(crate::serve::webhook::SignatureProblem),
    /// An argument was out of its documented range.
    #[error("invalid argument `{name}`: {detail}")]
    InvalidArgument {
        /// Argument name.
        name: String,
        /// What was expected.
        detail: String,
    },
}

/// The error of every fallible operation in this crate: a kind to match on and, when another
/// layer failed (flow-github, the file system, Redis), that failure as the
/// [`source`](std::error::Error::source). Equality compares the kinds.
#[derive(Debug, Clone)]
pub struct Error {
    kind: Box<ErrorKind>,
    source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

impl PartialEq for Error {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.kind.fmt(f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl Error {
    /// Builds an error of the given kind.
    pub fn new(kind: ErrorKind) -> Self {
        Self {
            kind: Box::new(kind),
            source: None,
        }
    }

    /// The same error caused by `source`.
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// The kind of failure.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// True when retrying the same call later may succeed (rate limits, 5xx, transport).
    pub fn is_retryable(&self) -> bool {
        match &*self.kind {
            ErrorKind::RateLimited { .. }
            | ErrorKind::Transport(_)
            | ErrorKind::Coordination { .. } => true,
            ErrorKind::Http { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }

    /// How long the server asked to wait before retrying, when it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match &*self.kind {
            ErrorKind::RateLimited { retry_after_ms } => {
                Some(Duration::from_millis(*retry_after_ms))
            }
            _ => None,
        }
    }

    pub(crate) fn parse(what: impl Into<String>, detail: impl std::fmt::Display) -> Self {
        Self::new(ErrorKind::Parse {
            what: what.into(),
            detail: detail.to_string(),
        })
    }

    pub(crate) fn state(origin: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::State {
            origin: origin.into(),
            detail: detail.into(),
        })
    }

    pub(crate) fn config(key: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config {
            key: key.into(),
            detail: detail.into(),
        })
    }

    pub(crate) fn invalid(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument {
            name: name.into(),
            detail: detail.into(),
        })
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Self::new(kind)
    }
}
