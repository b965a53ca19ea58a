//! Detection quality on a generated history: precision, recall, F1 and delay per anomaly kind,
//! and false alarms per 1,000 normal runs.
//!
//! An alert *matches* an injected anomaly when it is on the same workflow, its class fits the
//! kind (step change ← duration outlier or shift; failure burst ← failure rate or consecutive
//! failures; queue backlog ← queue outlier; flaky ← re-run rate) and it fires between the
//! anomaly's first run and [`GRACE_RUNS`] runs after its last. Precision of a kind: matching
//! alerts of its class / all alerts of its class. Recall: anomalies with a matching alert /
//! anomalies injected. Delay: workflow runs from the anomaly's first run to its first matching
//! alert (0 = on the first affected run). A false alarm is an alert outside every anomaly
//! (and its grace); normal runs are the runs outside every anomaly and its grace.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::alert::AlertKind;
use crate::generator::{AnomalyKind, History};
use crate::monitor::Monitor;
use crate::rules::Rules;

/// Runs after an anomaly's end during which its alerts still count as matching.
pub const GRACE_RUNS: u64 = 30;

/// The anomaly kind an alert kind detects, if any.
pub fn class_of(kind: AlertKind) -> Option<AnomalyKind> {
    match kind {
        AlertKind::DurationOutlier | AlertKind::DurationShift => Some(AnomalyKind::StepChange),
        AlertKind::FailureRate | AlertKind::ConsecutiveFailures => Some(AnomalyKind::FailureBurst),
        AlertKind::QueueOutlier => Some(AnomalyKind::QueueBacklog),
        AlertKind::RerunRate => Some(AnomalyKind::Flaky),
        _ => None,
    }
}

/// Figures for one anomaly kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KindQuality {
    /// The kind.
    pub kind: AnomalyKind,
    /// Anomalies injected.
    pub injected: u64,
    /// Anomalies with at least one matching alert.
    pub detected: u64,
    /// Alerts of this kind's class.
    pub alerts: u64,
    /// Of those, alerts that match an anomaly of this kind.
    pub true_alerts: u64,
    /// `true_alerts / alerts` (1 when no alert).
    pub precision: f64,
    /// `detected / injected` (1 when none injected).
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
    /// Mean detection delay in workflow runs.
    pub mean_delay_runs: f64,
    /// Largest detection delay in workflow runs.
    pub max_delay_runs: u64,
}

/// The whole evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quality {
    /// Runs observed.
    pub runs: u64,
    /// Runs outside every anomaly and its grace.
    pub normal_runs: u64,
    /// Alerts outside every anomaly and its grace.
    pub false_alarms: u64,
    /// `false_alarms / normal_runs · 1000`.
    pub false_alarms_per_1000: f64,
    /// Per kind, in the order step change, failure burst, queue backlog, flaky.
    pub kinds: Vec<KindQuality>,
}

impl Quality {
    /// The figures of `kind`.
    pub fn kind(&self, kind: AnomalyKind) -> Option<&KindQuality> {
        self.kinds.iter().find(|k| k.kind == kind)
    }
}

/// Runs `history` through a [`Monitor`] with `rules` and scores the alerts.
pub fn evaluate(history: &History, rules: &Rules) -> Quality {
    let mut monitor = Monitor::new(rules.clone());
    let mut seq: HashMap<&str, u64> = HashMap::new();
    let by_wf: HashMap<&str, Vec<usize>> =
        history
            .anomalies
            .iter()
            .enumerate()
            .fold(HashMap::new(), |mut m, (i, a)| {
                m.entry(a.workflow.as_str()).or_default().push(i);
                m
            });
    let mut first_delay: Vec<Option<u64>> = vec![None; history.anomalies.len()];
    let mut alerts_of: HashMap<AnomalyKind, (u64, u64)> = HashMap::new();
    let (mut normal, mut false_alarms) = (0u64, 0u64);

    for run in &history.runs {
        let s = {
            let e = seq.entry(run.name.as_str()).or_insert(0);
            *e += 1;
            *e - 1
        };
        let within = |i: &usize| {
            let a = &history.anomalies[*i];
            s >= a.start_seq && s < a.start_seq + a.len + GRACE_RUNS
        };
        let here: Vec<usize> = by_wf
            .get(run.name.as_str())
            .map(|v| v.iter().copied().filter(within).collect())
            .unwrap_or_default();
        if here.is_empty() {
            normal += 1;
        }
        for alert in monitor.observe(run).alerts {
            if here.is_empty() {
                false_alarms += 1;
            }
            let Some(class) = class_of(alert.kind) else {
                continue;
            };
            let e = alerts_of.entry(class).or_insert((0, 0));
            e.0 += 1;
            if let Some(&i) = here.iter().find(|i| history.anomalies[**i].kind == class) {
                e.1 += 1;
                if first_delay[i].is_none() {
                    first_delay[i] = Some(s - history.anomalies[i].start_seq);
                }
            }
        }
    }

    let kinds = [
        AnomalyKind::StepChange,
        AnomalyKind::FailureBurst,
        AnomalyKind::QueueBacklog,
        AnomalyKind::Flaky,
    ]
    .into_iter()
    .map(|kind| {
        let idx: Vec<usize> = (0..history.anomalies.len())
            .filter(|i| history.anomalies[*i].kind == kind)
            .collect();
        let delays: Vec<u64> = idx.iter().filter_map(|i| first_delay[*i]).collect();
        let (alerts, true_alerts) = alerts_of.get(&kind).copied().unwrap_or((0, 0));
        let precision = if alerts == 0 {
            1.0
        } else {
            true_alerts as f64 / alerts as f64
        };
        let recall = if idx.is_empty() {
            1.0
        } else {
            delays.len() as f64 / idx.len() as f64
        };
        KindQuality {
            kind,
            injected: idx.len() as u64,
            detected: delays.len() as u64,
            alerts,
            true_alerts,
            precision,
            recall,
            f1: if precision + recall == 0.0 {
                0.0
            } else {
                2.0 * precision * recall / (precision + recall)
            },
            mean_delay_runs: if delays.is_empty() {
                0.0
            } else {
                delays.iter().sum::<u64>() as f64 / delays.len() as f64
            },
            max_delay_runs: delays.iter().copied().max().unwrap_or(0),
        }
    })
    .collect();
    Quality {
        runs: history.runs.len() as u64,
        normal_runs: normal,
        false_alarms,
        false_alarms_per_1000: if normal == 0 {
            0.0
        } else {
            false_alarms as f64 * 1000.0 / normal as f64
        },
        kinds,
    }
}
