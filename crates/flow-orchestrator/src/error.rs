//! The crate's one error type: the failures of the crates below, kept as their own errors, plus
//! configuration and wiring problems of the facade.

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong; match on it through [`Error::kind`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The configuration file or an environment variable has an unknown key or a bad value.
    #[error("invalid configuration: `{key}`: {detail}")]
    Config {
        /// Dotted key in the file (`cache.ttl_secs`) or the variable name (`FLOW_CACHE_TTL_SECS`).
        key: String,
        /// What was expected and what was found.
        detail: String,
    },
    /// The operation needs a component the orchestrator was not given.
    #[error("no {component} configured: {hint}")]
    Missing {
        /// `chat model`, `run source`, `issue sink` or `publisher`.
        component: &'static str,
        /// How to provide it.
        hint: &'static str,
    },
    /// A file could not be read.
    #[error("cannot read {path}: {detail}")]
    Io {
        /// The path.
        path: String,
        /// The OS error.
        detail: String,
    },
    /// The LLM call failed.
    #[error(transparent)]
    Llm(flow_llm::Error),
    /// The cache backend could not be set up.
    #[error(transparent)]
    Cache(flow_cache::Error),
    /// Collecting runs or raising an issue failed.
    #[error(transparent)]
    Telemetry(flow_telemetry::Error),
    /// Validating, packaging or releasing failed.
    #[error(transparent)]
    Publish(flow_publish::Error),
}

/// The error of every fallible operation of the facade.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Error {
    kind: Box<ErrorKind>,
}

impl Error {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind) -> Self {
        Self {
            kind: Box::new(kind),
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// A configuration error naming `key`.
    pub(crate) fn config(key: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config {
            key: key.into(),
            detail: detail.into(),
        })
    }

    pub(crate) fn missing(component: &'static str, hint: &'static str) -> Self {
        Self::new(ErrorKind::Missing { component, hint })
    }

    /// Whether running the same operation again may succeed, as the crate below says.
    pub fn is_retryable(&self) -> bool {
        match self.kind() {
            ErrorKind::Llm(e) => e.is_retryable(),
            ErrorKind::Telemetry(e) => e.is_retryable(),
            ErrorKind::Publish(e) => e.is_retryable(),
            ErrorKind::Cache(e) => e.is_retryable(),
            _ => false,
        }
    }
}

impl From<flow_llm::Error> for Error {
    fn from(e: flow_llm::Error) -> Self {
        Self::new(ErrorKind::Llm(e))
    }
}

impl From<flow_cache::Error> for Error {
    fn from(e: flow_cache::Error) -> Self {
        Self::new(ErrorKind::Cache(e))
    }
}

impl From<flow_telemetry::Error> for Error {
    fn from(e: flow_telemetry::Error) -> Self {
        Self::new(ErrorKind::Telemetry(e))
    }
}

impl From<flow_publish::Error> for Error {
    fn from(e: flow_publish::Error) -> Self {
        Self::new(ErrorKind::Publish(e))
    }
}
