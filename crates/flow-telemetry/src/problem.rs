//! The history of each problem a [`crate::Monitor`] saw: when it fired, how often, and
//! whether it recovered.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::alert::{Alert, AlertKind, Fingerprint};

/// Where a problem stands at the end of the observed history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProblemStatus {
    /// It fired and has not recovered since: its alert is active.
    Open,
    /// It fired and recovered (possibly several times); it is not active now.
    Recovered,
}

/// One problem (one [`Fingerprint`]: a workflow and an alert kind) over the whole observed
/// history: every time it fired and recovered, not only whether it is open at the end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Problem {
    /// Its fingerprint (the issue a sink keeps for it).
    pub fingerprint: Fingerprint,
    /// The workflow.
    pub workflow: String,
    /// The kind of problem.
    pub kind: AlertKind,
    /// Open or recovered at the end of the history.
    pub status: ProblemStatus,
    /// How many times it fired (each one an alert that started).
    pub fired: u32,
    /// How many times it recovered.
    pub recovered: u32,
    /// Completion time of the run that first fired it, unix ms.
    pub first_fired_at_ms: i64,
    /// Completion time of the run that last fired it, unix ms.
    pub last_fired_at_ms: i64,
    /// Completion time of the run with which it last recovered, unix ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_recovered_at_ms: Option<i64>,
    /// The last alert raised for it (severity, summary, evidence, run).
    pub last_alert: Alert,
}

impl Problem {
    /// A problem that just fired with `alert`.
    pub(crate) fn new(alert: &Alert) -> Self {
        Self {
            fingerprint: alert.fingerprint.clone(),
            workflow: alert.workflow.clone(),
            kind: alert.kind,
            status: ProblemStatus::Open,
            fired: 1,
            recovered: 0,
            first_fired_at_ms: alert.at_ms,
            last_fired_at_ms: alert.at_ms,
            last_recovered_at_ms: None,
            last_alert: alert.clone(),
        }
    }

    /// It fired again with `alert`.
    pub(crate) fn fire(&mut self, alert: &Alert) {
        self.status = ProblemStatus::Open;
        self.fired = self.fired.saturating_add(1);
        self.last_fired_at_ms = alert.at_ms;
        self.last_alert = alert.clone();
    }

    /// It recovered with the run completed at `at_ms`.
    pub(crate) fn recover(&mut self, at_ms: i64) {
        self.status = ProblemStatus::Recovered;
        self.recovered = self.recovered.saturating_add(1);
        self.last_recovered_at_ms = Some(at_ms);
    }

    /// Whether it is still open at the end of the history.
    pub fn is_open(&self) -> bool {
        self.status == ProblemStatus::Open
    }
}
