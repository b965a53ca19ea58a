//! Incidents raised by the detectors: one [`Alert`] per problem of a workflow on a branch,
//! listing every [`AlertSignal`] that fired for it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What kind of signal fired (a detector's view of a problem).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AlertKind {
    /// Durations far above the rolling median (robust z-score over median and MAD).
    DurationOutlier,
    /// A step change in duration (CUSUM change point).
    DurationShift,
    /// Queue times far above the rolling median (robust z-score, log scale).
    QueueOutlier,
    /// A sustained rise of queue times (CUSUM change point, log scale).
    QueueShift,
    /// The EWMA of the failure indicator crossed its threshold.
    FailureRate,
    /// Too many consecutive failed runs.
    ConsecutiveFailures,
    /// The EWMA of re-runs (flaky runs passing on a later attempt) crossed its threshold.
    RerunRate,
    /// Durations above the static `max_duration_ms`.
    DurationThreshold,
    /// Queue times above the static `max_queue_ms`.
    QueueThreshold,
    /// The window's failure rate above the static `max_failure_rate`.
    FailureRateThreshold,
}

impl AlertKind {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DurationOutlier => "duration_outlier",
            Self::DurationShift => "duration_shift",
            Self::QueueOutlier => "queue_outlier",
            Self::QueueShift => "queue_shift",
            Self::FailureRate => "failure_rate",
            Self::ConsecutiveFailures => "consecutive_failures",
            Self::RerunRate => "rerun_rate",
            Self::DurationThreshold => "duration_threshold",
            Self::QueueThreshold => "queue_threshold",
            Self::FailureRateThreshold => "failure_rate_threshold",
        }
    }

    /// Every kind, in declaration order.
    pub const ALL: [AlertKind; 10] = [
        Self::DurationOutlier,
        Self::DurationShift,
        Self::QueueOutlier,
        Self::QueueShift,
        Self::FailureRate,
        Self::ConsecutiveFailures,
        Self::RerunRate,
        Self::DurationThreshold,
        Self::QueueThreshold,
        Self::FailureRateThreshold,
    ];
}

impl std::fmt::Display for AlertKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How urgent an alert is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth a look.
    Warning,
    /// Something is broken.
    Critical,
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Warning => "warning",
            Self::Critical => "critical",
        })
    }
}

/// Stable identity of an incident: 16 hex digits of SHA-256 over `workflow \0 branch`
/// ([`Fingerprint::incident`]). Every signal of a workflow on a branch belongs to its one open
/// incident, so a problem seen by several detectors is one issue.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(transparent)]
pub struct Fingerprint(pub String);

impl Fingerprint {
    /// The fingerprint of the incidents of `workflow` on `branch` (empty when unknown): the
    /// one place an incident's identity, and so its issue's, is computed.
    pub fn incident(workflow: &str, branch: &str) -> Self {
        Self::of_parts(&[workflow, branch])
    }

    /// The hash of `parts` joined by NUL bytes; empty parts are left out.
    pub fn of_parts(parts: &[&str]) -> Self {
        let mut h = Sha256::new();
        let mut first = true;
        for p in parts.iter().filter(|p| !p.is_empty()) {
            if !first {
                h.update([0]);
            }
            h.update(p.as_bytes());
            first = false;
        }
        Self(hex::encode(&h.finalize()[..8]))
    }

    /// The hex string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why an alert fired: the observed value against its baseline, and the runs involved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Evidence {
    /// The metric, e.g. `duration_ms`, `failure_rate_ewma`, `consecutive_failures`.
    pub metric: String,
    /// The observed value.
    pub value: f64,
    /// The baseline it is compared to (rolling median, EWMA start, threshold...).
    pub baseline: f64,
    /// The threshold crossed.
    pub threshold: f64,
    /// The score, when the detector has one (robust z, CUSUM statistic).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub score: Option<f64>,
    /// Links to the runs that triggered it, oldest first.
    pub runs: Vec<String>,
}

/// One signal of an incident: what one detector saw, and why it is unlikely under the
/// workflow's baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AlertSignal {
    /// The detector.
    pub kind: AlertKind,
    /// How urgent this signal is on its own.
    pub severity: Severity,
    /// A few words for a title.
    pub summary: String,
    /// One plain sentence: the baseline, what was seen, and how unlikely that is under it.
    pub explanation: String,
    /// The numbers.
    pub evidence: Evidence,
    /// Id of the run that fired it.
    pub run_id: u64,
    /// When it fired: that run's completion, unix ms.
    pub at_ms: i64,
    /// True once this signal has recovered (the incident resolves when all have).
    #[serde(default)]
    pub recovered: bool,
}

/// One incident: a problem of a workflow on a branch. Signals of that workflow and branch that
/// fire while it is open join it; it resolves when all of them have recovered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Alert {
    /// `workflow` + `branch` identity ([`Fingerprint::incident`]).
    pub fingerprint: Fingerprint,
    /// The workflow.
    pub workflow: String,
    /// The branch of the runs it was seen on (empty when unknown).
    #[serde(default)]
    pub branch: String,
    /// The signal that opened it.
    pub kind: AlertKind,
    /// The highest severity of its signals.
    pub severity: Severity,
    /// One line for a title: the opening signals' summaries.
    pub summary: String,
    /// The opening signal's evidence.
    pub evidence: Evidence,
    /// Id of the run that opened it.
    pub run_id: u64,
    /// When it opened: the triggering run's completion, unix ms.
    pub at_ms: i64,
    /// Every signal seen while it was open, in firing order (the opening ones first).
    #[serde(default)]
    pub signals: Vec<AlertSignal>,
}

impl Alert {
    /// An incident opened by `signals` (at least one; the first is the opening kind).
    pub fn incident(workflow: &str, branch: &str, signals: Vec<AlertSignal>) -> Option<Self> {
        let first = signals.first()?;
        let mut a = Self {
            fingerprint: Fingerprint::incident(workflow, branch),
            workflow: workflow.to_string(),
            branch: branch.to_string(),
            kind: first.kind,
            severity: first.severity,
            summary: String::new(),
            evidence: first.evidence.clone(),
            run_id: first.run_id,
            at_ms: first.at_ms,
            signals,
        };
        a.severity = a
            .signals
            .iter()
            .map(|s| s.severity)
            .max()
            .unwrap_or(a.severity);
        a.refresh_summary();
        Some(a)
    }

    /// An issue title: `[flow-telemetry] <workflow>: <summary>`.
    pub fn title(&self) -> String {
        format!("[flow-telemetry] {}: {}", self.workflow, self.summary)
    }

    /// The kinds of its signals, in firing order, without repeats.
    pub fn kinds(&self) -> Vec<AlertKind> {
        let mut out = Vec::new();
        for s in &self.signals {
            if !out.contains(&s.kind) {
                out.push(s.kind);
            }
        }
        if out.is_empty() {
            out.push(self.kind);
        }
        out
    }

    /// Adds a signal that fired while this incident is open; a kind already listed takes the
    /// new figures. True when that changed what the issue should say: a new kind, a kind
    /// firing again after it recovered, or a higher severity.
    pub fn absorb(&mut self, signal: AlertSignal) -> bool {
        let before = self.severity;
        let changed = match self.signals.iter_mut().find(|s| s.kind == signal.kind) {
            Some(s) => {
                let again = s.recovered || signal.severity > s.severity;
                *s = signal;
                again
            }
            None => {
                self.signals.push(signal);
                true
            }
        };
        self.severity = self.severity.max(
            self.signals
                .iter()
                .map(|s| s.severity)
                .max()
                .unwrap_or(before),
        );
        self.refresh_summary();
        changed || self.severity > before
    }

    /// Marks the signals of `kind` recovered.
    pub fn recover(&mut self, kind: AlertKind) {
        for s in self.signals.iter_mut().filter(|s| s.kind == kind) {
            s.recovered = true;
        }
    }

    fn refresh_summary(&mut self) {
        let parts: Vec<&str> = self.signals.iter().map(|s| s.summary.as_str()).collect();
        self.summary = if self.branch.is_empty() {
            parts.join("; ")
        } else {
            format!("{} (on {})", parts.join("; "), self.branch)
        };
    }

    /// Whether every signal has recovered.
    pub fn all_recovered(&self) -> bool {
        self.signals.iter().all(|s| s.recovered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_stable_and_distinct() {
        let a = Fingerprint::incident("CI", "main");
        assert_eq!(a, Fingerprint::incident("CI", "main"));
        assert_eq!(a.as_str().len(), 16);
        assert_ne!(a, Fingerprint::incident("CI", "dev"));
        assert_ne!(a, Fingerprint::incident("CI2", "main"));
        // The separator keeps `a` + `bc` apart from `ab` + `c`.
        assert_ne!(
            Fingerprint::incident("a", "bc"),
            Fingerprint::incident("ab", "c")
        );
    }
}
