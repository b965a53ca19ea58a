//! Alerts raised by the detectors.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What kind of problem an alert reports; with the workflow it forms the fingerprint.
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
    /// Queue times far above the rolling median (robust z-score).
    QueueOutlier,
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
            Self::FailureRate => "failure_rate",
            Self::ConsecutiveFailures => "consecutive_failures",
            Self::RerunRate => "rerun_rate",
            Self::DurationThreshold => "duration_threshold",
            Self::QueueThreshold => "queue_threshold",
            Self::FailureRateThreshold => "failure_rate_threshold",
        }
    }

    /// Every kind, in declaration order.
    pub const ALL: [AlertKind; 9] = [
        Self::DurationOutlier,
        Self::DurationShift,
        Self::QueueOutlier,
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

/// Stable identity of a problem: 16 hex digits of SHA-256 over `workflow \0 kind`, or
/// `workflow \0 branch \0 kind` when scoped to a branch ([`Fingerprint::scoped`]).
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(transparent)]
pub struct Fingerprint(pub String);

impl Fingerprint {
    /// The fingerprint of `kind` on `workflow`, all branches: `scoped(workflow, "", kind)`.
    pub fn of(workflow: &str, kind: AlertKind) -> Self {
        Self::scoped(workflow, "", kind)
    }

    /// The fingerprint of `kind` on `workflow` and `branch`: the one function every
    /// fingerprint comes from. An empty branch means all branches (the unscoped hash).
    pub fn scoped(workflow: &str, branch: &str, kind: AlertKind) -> Self {
        Self::of_parts(&[workflow, branch, kind.as_str()])
    }

    /// The fingerprint of a problem named by `parts` (e.g. workflow, branch, family); empty
    /// parts are left out, so unscoped keys keep their hash.
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

/// One alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Alert {
    /// `workflow` + `kind` identity.
    pub fingerprint: Fingerprint,
    /// The workflow.
    pub workflow: String,
    /// The problem.
    pub kind: AlertKind,
    /// How urgent.
    pub severity: Severity,
    /// One line for a title.
    pub summary: String,
    /// The evidence.
    pub evidence: Evidence,
    /// Id of the run that triggered it.
    pub run_id: u64,
    /// When it fired: the triggering run's completion, unix ms.
    pub at_ms: i64,
}

impl Alert {
    /// An issue title: `[flow-telemetry] <workflow>: <summary>`.
    pub fn title(&self) -> String {
        format!("[flow-telemetry] {}: {}", self.workflow, self.summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_stable_and_distinct() {
        let a = Fingerprint::of("CI", AlertKind::FailureRate);
        assert_eq!(a, Fingerprint::of("CI", AlertKind::FailureRate));
        assert_eq!(a.as_str().len(), 16);
        assert_ne!(a, Fingerprint::of("CI", AlertKind::DurationShift));
        assert_ne!(a, Fingerprint::of("CI2", AlertKind::FailureRate));
    }
}
