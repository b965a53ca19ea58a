//! Where alerts go: the [`IssueSink`] trait, the GitHub issues sink and a dry-run sink.

pub mod github;

use std::io::Write;
use std::sync::Mutex;

use crate::alert::{Alert, Fingerprint};
use crate::error::Result;

/// What a sink did with an alert or a recovery.
///
/// Serializes as an object tagged by `action`: `{"action": "opened", "number": 4}`,
/// `{"action": "nothing"}`, `{"action": "dry_run", "description": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
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

impl std::fmt::Display for IssueAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Opened { number } => write!(f, "opened #{number}"),
            Self::Commented { number } => write!(f, "commented on #{number}"),
            Self::Closed { number } => write!(f, "closed #{number}"),
            Self::Nothing => f.write_str("nothing to do"),
            Self::DryRun { description } => f.write_str(description),
        }
    }
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

    /// As [`IssueSink::raise`], with `notes` (Markdown, e.g. a triage) added to the new issue's
    /// body or to the recurrence comment. The default ignores the notes.
    ///
    /// # Errors
    /// Transport or HTTP failures of the underlying tracker.
    async fn raise_with_notes(&self, alert: &Alert, notes: &str) -> Result<IssueAction> {
        let _ = notes;
        self.raise(alert).await
    }

    /// The problem `fingerprint` recovered: comment and close its open issue, if any.
    ///
    /// # Errors
    /// Transport or HTTP failures of the underlying tracker.
    async fn resolve(&self, fingerprint: &Fingerprint) -> Result<IssueAction>;

    /// Opens an issue for `alert` with `notes`, unless one for its fingerprint is open already:
    /// then that one is adopted and nothing is posted (so a redo after a crash posts nothing
    /// twice). The default raises with notes.
    ///
    /// # Errors
    /// Transport or HTTP failures of the underlying tracker.
    async fn open(&self, alert: &Alert, notes: &str) -> Result<IssueAction> {
        self.raise_with_notes(alert, notes).await
    }

    /// Comments `text` on issue `number` of `fingerprint`, unless a comment carrying the same
    /// hidden marker is there already.
    ///
    /// No default: a sink that cannot post the text must say so, not report a comment it
    /// never made.
    ///
    /// # Errors
    /// Transport or HTTP failures of the underlying tracker.
    async fn comment(
        &self,
        fingerprint: &Fingerprint,
        number: u64,
        text: &str,
    ) -> Result<IssueAction>;

    /// Comments `text` on issue `number` (as [`IssueSink::comment`]) and closes it.
    ///
    /// No default, for the same reason as [`IssueSink::comment`]: the closing text (the
    /// recovering run, the accepted change) is the point of the write.
    ///
    /// # Errors
    /// Transport or HTTP failures of the underlying tracker.
    async fn close(
        &self,
        fingerprint: &Fingerprint,
        number: u64,
        text: &str,
    ) -> Result<IssueAction>;
}

/// A shared sink is a sink: every method is forwarded.
#[async_trait::async_trait]
impl<S: IssueSink + ?Sized> IssueSink for std::sync::Arc<S> {
    async fn raise(&self, alert: &Alert) -> Result<IssueAction> {
        (**self).raise(alert).await
    }

    async fn raise_with_notes(&self, alert: &Alert, notes: &str) -> Result<IssueAction> {
        (**self).raise_with_notes(alert, notes).await
    }

    async fn resolve(&self, fingerprint: &Fingerprint) -> Result<IssueAction> {
        (**self).resolve(fingerprint).await
    }

    async fn open(&self, alert: &Alert, notes: &str) -> Result<IssueAction> {
        (**self).open(alert, notes).await
    }

    async fn comment(
        &self,
        fingerprint: &Fingerprint,
        number: u64,
        text: &str,
    ) -> Result<IssueAction> {
        (**self).comment(fingerprint, number, text).await
    }

    async fn close(
        &self,
        fingerprint: &Fingerprint,
        number: u64,
        text: &str,
    ) -> Result<IssueAction> {
        (**self).close(fingerprint, number, text).await
    }
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

    async fn raise_with_notes(&self, alert: &Alert, notes: &str) -> Result<IssueAction> {
        let action = self.raise(alert).await?;
        if !notes.trim().is_empty() {
            self.say(format!(
                "dry-run: with notes: {}",
                notes.trim().replace('\n', " ")
            ));
        }
        Ok(action)
    }

    async fn resolve(&self, fingerprint: &Fingerprint) -> Result<IssueAction> {
        Ok(self.say(format!(
            "dry-run: would close the open issue for {fingerprint}, if any"
        )))
    }

    async fn open(&self, alert: &Alert, notes: &str) -> Result<IssueAction> {
        self.raise_with_notes(alert, notes).await
    }

    async fn comment(
        &self,
        fingerprint: &Fingerprint,
        number: u64,
        text: &str,
    ) -> Result<IssueAction> {
        Ok(self.say(format!(
            "dry-run: would comment on #{number} ({fingerprint}): {}",
            first_line(text)
        )))
    }

    async fn close(
        &self,
        fingerprint: &Fingerprint,
        number: u64,
        text: &str,
    ) -> Result<IssueAction> {
        Ok(self.say(format!(
            "dry-run: would close #{number} ({fingerprint}): {}",
            first_line(text)
        )))
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

/// Sends what an observation changed to `sink`: recoveries first, then new incidents, then
/// open incidents that gained a signal (a recurrence comment on their issue).
///
/// # Errors
/// The sink's first failure; earlier actions stay done.
pub async fn dispatch(
    sink: &dyn IssueSink,
    observation: &crate::monitor::Observation,
) -> Result<Vec<IssueAction>> {
    let mut actions = Vec::with_capacity(
        observation.alerts.len() + observation.updated.len() + observation.recovered.len(),
    );
    for fp in &observation.recovered {
        actions.push(sink.resolve(fp).await?);
    }
    for alert in observation.alerts.iter().chain(&observation.updated) {
        actions.push(sink.raise(alert).await?);
    }
    Ok(actions)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::alert::{AlertKind, Evidence, Severity};
    use crate::monitor::Observation;

    #[tokio::test]
    async fn dispatch_resolves_then_raises() {
        let fp_old = Fingerprint::incident("Nightly", "main");
        let alert = Alert {
            fingerprint: Fingerprint::incident("CI", "main"),
            workflow: "CI".into(),
            branch: "main".into(),
            signals: vec![],
            kind: AlertKind::FailureRate,
            severity: Severity::Warning,
            summary: "s".into(),
            evidence: Evidence {
                metric: "m".into(),
                value: 1.0,
                baseline: 0.0,
                threshold: 0.5,
                score: None,
                runs: vec![],
            },
            run_id: 1,
            at_ms: 0,
        };
        let mut sink = MockIssueSink::new();
        let mut seq = mockall::Sequence::new();
        let want = fp_old.clone();
        sink.expect_resolve()
            .withf(move |fp| *fp == want)
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| Ok(IssueAction::Nothing));
        let want = alert.fingerprint.clone();
        sink.expect_raise()
            .withf(move |a| a.fingerprint == want)
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| Ok(IssueAction::Opened { number: 7 }));
        let obs = Observation {
            alerts: vec![alert],
            updated: vec![],
            recovered: vec![fp_old],
        };
        let actions = dispatch(&sink, &obs).await.unwrap();
        assert_eq!(
            actions,
            vec![IssueAction::Nothing, IssueAction::Opened { number: 7 }]
        );
    }
}
