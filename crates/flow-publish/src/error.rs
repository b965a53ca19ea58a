//! The crate's one error type.

use std::fmt;

use crate::validate::Finding;

/// Any failure of flow-publish: reading or writing metadata, validation, packaging or releasing.
///
/// Match on [`Error::kind`] to act on it; [`Error::is_retryable`] says whether the same call may
/// succeed later (a 5xx, a 429 or a transport error from GitHub).
#[derive(Debug, thiserror::Error)]
#[error("{kind}")]
pub struct Error {
    kind: ErrorKind,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// What went wrong. New kinds may be added.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// An action.yml could not be parsed or written; `message` says where.
    Yaml {
        /// The parser's message, with line and column when known.
        message: String,
    },
    /// The metadata breaks one or more rules; each finding says where and what was expected.
    Invalid {
        /// Error-level findings (warnings are not included).
        findings: Vec<Finding>,
    },
    /// A JSON Schema could not be turned into action inputs or outputs.
    Schema {
        /// What was expected of the schema.
        message: String,
    },
    /// A README lacks the generated-section markers or its section is out of date.
    Readme {
        /// What was expected of the README.
        message: String,
    },
    /// CHANGELOG.md has no section for the version.
    Changelog {
        /// The version whose `## [X.Y.Z]` section was expected.
        version: String,
    },
    /// A file could not be read or written.
    Io {
        /// The file or directory.
        path: String,
        /// The operating system's message.
        message: String,
    },
    /// An archive could not be built.
    Archive {
        /// What failed.
        message: String,
    },
    /// An input to the release (version, tag, asset name, plan) is not of the expected form.
    InvalidInput {
        /// The field that is wrong.
        field: String,
        /// What was expected.
        expected: String,
    },
    /// The GitHub API answered with an unexpected status, or could not be reached.
    Http {
        /// The operation, e.g. `create release v1.2.3`.
        operation: String,
        /// The HTTP status, if a response arrived.
        status: Option<u16>,
        /// GitHub's message or the transport error.
        message: String,
    },
    /// GitHub's rate limit, and the client's retry budget or longest wait is spent.
    RateLimited {
        /// The operation, e.g. `list releases`.
        operation: String,
        /// How long GitHub asked to wait, in milliseconds.
        retry_after_ms: u64,
    },
    /// An uploaded asset's digest differs from the local SHA-256.
    DigestMismatch {
        /// The asset's file name.
        asset: String,
        /// The local SHA-256, hex.
        expected: String,
        /// What GitHub reports (or what the download hashed to), hex.
        actual: String,
    },
    /// A published immutable release holds an asset that differs from ours; it cannot be replaced.
    ImmutableRelease {
        /// The release tag.
        tag: String,
        /// What differs.
        message: String,
    },
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Yaml { message } => write!(f, "action metadata yaml: {message}"),
            Self::Invalid { findings } => {
                write!(f, "action metadata is invalid ({} error", findings.len())?;
                if findings.len() != 1 {
                    f.write_str("s")?;
                }
                f.write_str(")")?;
                for finding in findings {
                    write!(f, "\n  {finding}")?;
                }
                Ok(())
            }
            Self::Schema { message } => write!(f, "input schema: {message}"),
            Self::Readme { message } => write!(f, "readme: {message}"),
            Self::Changelog { version } => write!(
                f,
                "changelog: expected a `## [{version}]` section in CHANGELOG.md"
            ),
            Self::Io { path, message } => write!(f, "{path}: {message}"),
            Self::Archive { message } => write!(f, "archive: {message}"),
            Self::InvalidInput { field, expected } => write!(f, "{field}: expected {expected}"),
            Self::Http {
                operation,
                status,
                message,
            } => match status {
                Some(status) => write!(f, "github: {operation}: status {status}: {message}"),
                None => write!(f, "github: {operation}: {message}"),
            },
            Self::RateLimited {
                operation,
                retry_after_ms,
            } => write!(
                f,
                "github: {operation}: rate limited, retry after {retry_after_ms} ms"
            ),
            Self::DigestMismatch {
                asset,
                expected,
                actual,
            } => write!(
                f,
                "asset {asset}: expected digest sha256:{expected}, github has sha256:{actual}"
            ),
            Self::ImmutableRelease { tag, message } => {
                write!(f, "release {tag} is published and immutable: {message}")
            }
        }
    }
}

impl Error {
    /// An error of this kind with no underlying cause.
    #[must_use]
    pub fn new(kind: ErrorKind) -> Self {
        Self { kind, source: None }
    }

    /// An error of this kind caused by `source`.
    #[must_use]
    pub fn with_source(
        kind: ErrorKind,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            kind,
            source: Some(Box::new(source)),
        }
    }

    /// What went wrong.
    #[must_use]
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// Whether retrying the same call later may succeed: a GitHub 5xx or 429, a rate limit, or
    /// no response.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match &self.kind {
            ErrorKind::Http { status: None, .. } | ErrorKind::RateLimited { .. } => true,
            ErrorKind::Http {
                status: Some(status),
                ..
            } => *status == 429 || *status >= 500,
            _ => false,
        }
    }

    pub(crate) fn yaml(err: serde_norway::Error) -> Self {
        let message = err.to_string();
        Self::with_source(ErrorKind::Yaml { message }, err)
    }

    pub(crate) fn io(path: impl AsRef<std::path::Path>, err: std::io::Error) -> Self {
        let kind = ErrorKind::Io {
            path: path.as_ref().display().to_string(),
            message: err.to_string(),
        };
        Self::with_source(kind, err)
    }

    pub(crate) fn input(field: impl Into<String>, expected: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput {
            field: field.into(),
            expected: expected.into(),
        })
    }

    pub(crate) fn archive(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Archive {
            message: message.into(),
        })
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_only_for_transient_http() {
        let http = |status| {
            Error::new(ErrorKind::Http {
                operation: "x".into(),
                status,
                message: "m".into(),
            })
        };
        assert!(http(None).is_retryable());
        assert!(http(Some(502)).is_retryable());
        assert!(http(Some(429)).is_retryable());
        assert!(!http(Some(404)).is_retryable());
        assert!(!Error::archive("x").is_retryable());
    }
}
