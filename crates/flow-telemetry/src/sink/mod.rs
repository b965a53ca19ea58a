//! Where alerts go: the [`IssueSink`] trait, the GitHub issues sink and a dry-run sink.

pub mod github;

use std::io::Write;
use std::sync::Mutex;

use crate::alert::{Alert, Fingerprint};
use crate::error::Result;

/// What a sink did with an alert or a recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IssueAction {
    /// Opened issue `number`.
    Opened {
        /// Issue number.
        number: u64,
    },
    /// Commented on the already open issue `number` (a recurrence).
    Commented {
        /// Issue number.
        number: u64,
    },
    /// Commented on and closed issue `number` (a recovery).
    Closed {
        /// Issue number.
        number: u64,
    },
    /// Nothing to do (e.g. a recovery without an open issue).
    Nothing,
    /// Dry run: what would have been done.
    DryRun {
        /// A one-line description.
        description: String,
    },
}

/// Raises and resolves one issue per alert fingerprint.
#[cfg_attr(test, mockall::automock)]
#[async_trait::async_trait]
pub trait IssueSink: Send + Sync {
    /// Opens an issue for `alert`, or comments on the open one with the same fingerprint.
    ///
    /// # Errors
    /// Transport or HTTP failures of the underlying tracker.
    async fn raise(&self, alert: &Alert) -> Result<IssueAction>;

    /// The problem `fingerprint` recovered: comment and close its open issue, if any.
    ///
    /// # Errors
    /// Transport or HTTP failures of the underlying tracker.
    async fn resolve(&self, fingerprint: &Fingerprint) -> Result<IssueAction>;
}

/// Writes what it would do, one line per call, and does nothing else.
pub struct DryRunSink {
    out: Mutex<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for DryRunSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DryRunSink").finish_non_exhaustive()
    }
}

impl Default for DryRunSink {
    fn default() -> Self {
        Self::new(Box::new(std::io::stdout()))
    }
}

impl DryRunSink {
    /// A dry-run sink writing to `out`.
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self {
            out: Mutex::new(out),
        }
    }

    fn say(&self, description: String) -> IssueAction {
        if let Ok(mut out) = self.out.lock() {
            // A dry run that cannot print still reports what it would have done.
            let _ = writeln!(out, "{description}");
        }
        IssueAction::DryRun { description }
    }
}

#[async_trait::async_trait]
impl IssueSink for DryRunSink {
    async fn raise(&self, alert: &Alert) -> Result<IssueAction> {
        Ok(self.say(format!(
            "dry-run: would open or comment on the issue for {} ({}, {}): {}",
            alert.fingerprint,
            alert.kind,
            alert.severity,
            alert.title()
        )))
    }

    async fn resolve(&self, fingerprint: &Fingerprint) -> Result<IssueAction> {
        Ok(self.say(format!(
            "dry-run: would close the open issue for {fingerprint}, if any"
        )))
    }
}
