//! The crate's one error type.

use std::fmt;
use std::sync::Arc;

/// An error from `flow-cache`.
///
/// Backend failures (Redis down, a corrupt stored value) are never errors: a backend logs a
/// warning and reports a miss. What reaches a caller is a failed fetch, a value that could not
/// be encoded or decoded, or invalid configuration.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind}")]
pub struct Error {
    kind: ErrorKind,
}

/// What went wrong; see [`Error::kind`].
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The caller's fetch failed and no usable stale value existed (or the error was permanent).
    #[error("fetch failed ({kind}): {source}", kind = if .0.is_transient() { "transient" } else { "permanent" }, source = .0)]
    Fetch(#[source] FetchError),
    /// The fetch task ended without a result (it panicked or its runtime shut down).
    #[error("fetch task ended without a result: {0}")]
    FetchAborted(String),
    /// A value could not be encoded to JSON before storing it.
    #[error("value: could not encode as JSON: {0}")]
    Encode(String),
    /// A fetched value could not be decoded from JSON into the requested type.
    #[error("value: could not decode JSON into the requested type: {0}")]
    Decode(String),
    /// A namespace was empty or held characters other than `[A-Za-z0-9_.-]`.
    #[error("namespace {0:?}: expected 1 to 64 characters from [A-Za-z0-9_.-]")]
    InvalidNamespace(String),
    /// A configuration value was out of range.
    #[error("{field}: expected {expected}")]
    InvalidConfig {
        /// The field that was wrong.
        field: &'static str,
        /// What was expected instead.
        expected: &'static str,
    },
}

impl Error {
    /// What went wrong.
    #[must_use]
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The fetch error, when this error is a failed fetch.
    #[must_use]
    pub fn fetch_error(&self) -> Option<&FetchError> {
        match &self.kind {
            ErrorKind::Fetch(e) => Some(e),
            _ => None,
        }
    }

    /// True when a later attempt may succeed: a transient fetch error or an aborted fetch.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match &self.kind {
            ErrorKind::Fetch(e) => e.is_transient(),
            ErrorKind::FetchAborted(_) => true,
            _ => false,
        }
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Self { kind }
    }
}

/// The error a fetch closure returns, marked transient or permanent.
///
/// Only a *transient* error lets [`Cache`](crate::Cache) serve a stale value instead
/// (stale-if-error). The source is shared (`Arc`) because one fetch may answer many coalesced
/// callers; recover the concrete type with [`FetchError::downcast_ref`].
#[derive(Clone)]
pub struct FetchError {
    transient: bool,
    source: Arc<dyn std::error::Error + Send + Sync + 'static>,
}

impl FetchError {
    /// A failure that may go away (timeout, 5xx, rate limit): stale values may be served.
    pub fn transient(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            transient: true,
            source: Arc::new(source),
        }
    }

    /// A failure that will not go away by retrying (bad request, refusal): never masked by stale.
    pub fn permanent(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            transient: false,
            source: Arc::new(source),
        }
    }

    /// Whether the fetch marked this error transient.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        self.transient
    }

    /// The error the fetch returned.
    #[must_use]
    pub fn inner(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.source
    }

    /// The error the fetch returned, shared.
    #[must_use]
    pub fn inner_arc(&self) -> Arc<dyn std::error::Error + Send + Sync + 'static> {
        Arc::clone(&self.source)
    }

    /// The error the fetch returned, if it is an `E`.
    #[must_use]
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.source.downcast_ref::<E>()
    }
}

impl fmt::Debug for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FetchError")
            .field("transient", &self.transient)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.source, f)
    }
}

impl std::error::Error for FetchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
