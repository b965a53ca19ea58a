//! Detection quality on generated histories: per anomaly kind, incidents injected, found and
//! extra, precision, recall, F1 and delay; false incidents per 1,000 normal runs.
//!
//! The monitor raises *incidents* (one per problem of a workflow on a branch), so quality is
//! scored on incidents, not detector hits. An incident *matches* an injected anomaly when it is
//! on the anomaly's workflow and branch (any branch of the workflow for a workflow-wide
//! anomaly), one of its opening signals detects that kind (step change ← duration outlier or
//! shift; failure burst ← failure rate or streak; queue backlog ← queue outlier or shift; flaky ←
//! re-run rate), and it opens between the anomaly's first run and [`GRACE_RUNS`] runs after its
//! last. The first matching incident *finds* the anomaly; a later one is an *extra* incident of
//! that kind (a second issue for one problem). A signal of the right class joining an incident
//! that was already open (the problems overlap in time) also finds the anomaly, without a new
//! incident. An incident outside every anomaly window is a *false* incident.
//!
//! Per kind: precision = matching first incidents / incidents whose opening class is that kind;
//! recall = anomalies found / injected; delay = runs of the workflow (on the branch) from the
//! anomaly's first run to the run that found it (0 = the first affected run). Normal runs are the
//! runs outside every anomaly window (with grace).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::alert::{Alert, AlertKind};
use crate::generator::{AnomalyKind, GeneratorConfig, History, generate};
use crate::monitor::Monitor;
use crate::rules::Rules;

/// Runs after an anomaly's end during which its incidents still count as matching.
pub const GRACE_RUNS: u64 = 30;

/// Seeds the detectors were tuned on.
pub const TUNING_SEEDS: [u64; 6] = [1, 2, 3, 4, 5, 6];

/// Seeds kept out of tuning: the targets are asserted on these.
pub const HELD_OUT_SEEDS: [u64; 4] = [1001, 1002, 1003, 1004];

/// The anomaly kinds in report order.
pub const KINDS: [AnomalyKind; 4] = [
    AnomalyKind::StepChange,
    AnomalyKind::FailureBurst,
    AnomalyKind::QueueBacklog,
    AnomalyKind::Flaky,
];

/// The anomaly kind an alert kind detects, if any.
pub fn class_of(kind: AlertKind) -> Option<AnomalyKind> {
    match kind {
        AlertKind::DurationOutlier | AlertKind::DurationShift => Some(AnomalyKind::StepChange),
        AlertKind::FailureRate | AlertKind::ConsecutiveFailures => Some(AnomalyKind::FailureBurst),
        AlertKind::QueueOutlier | AlertKind::QueueShift => Some(AnomalyKind::QueueBacklog),
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
    /// Anomalies found (by a new incident or a signal joining an open one).
    pub found: u64,
    /// Incidents whose opening class is this kind.
    pub incidents: u64,
    /// Of those, the first incident of an anomaly of this kind.
    pub true_incidents: u64,
    /// Of those, incidents that were not the first of an anomaly of this kind: duplicates and
    /// false incidents.
    pub extra_incidents: u64,
    /// `true_incidents / incidents` (1 when none).
    pub precision: f64,
    /// `found / injected` (1 when none injected).
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
    /// Mean detection delay in runs.
    pub mean_delay_runs: f64,
    /// Largest detection delay in runs.
    pub max_delay_runs: u64,
}

/// The whole evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quality {
    /// Runs observed.
    pub runs: u64,
    /// Runs outside every anomaly and its grace.
    pub normal_runs: u64,
    /// Incidents opened.
    pub incidents: u64,
    /// Incidents opened outside every anomaly and its grace.
    pub false_incidents: u64,
    /// `false_incidents / normal_runs · 1000`.
    pub false_incidents_per_1000: f64,
    /// Incidents opened for an anomaly that already had one (second issues for one problem).
    pub duplicate_incidents: u64,
    /// Per kind, in [`KINDS`] order.
    pub kinds: Vec<KindQuality>,
}

impl Quality {
    /// The figures of `kind`.
    pub fn kind(&self, kind: AnomalyKind) -> Option<&KindQuality> {
        self.kinds.iter().find(|k| k.kind == kind)
    }

    /// Several evaluations added up (rates recomputed from the sums).
    pub fn sum(all: &[Quality]) -> Quality {
        let mut counts: BTreeMap<usize, Counts> = BTreeMap::new();
        let (mut runs, mut normal, mut incidents, mut false_incidents, mut dups) = (0, 0, 0, 0, 0);
        for q in all {
            runs += q.runs;
            normal += q.normal_runs;
            incidents += q.incidents;
            false_incidents += q.false_incidents;
            dups += q.duplicate_incidents;
            for (i, k) in q.kinds.iter().enumerate() {
                let c = counts.entry(i).or_default();
                c.injected += k.injected;
                c.found += k.found;
                c.incidents += k.incidents;
                c.true_incidents += k.true_incidents;
                c.delay_sum += (k.mean_delay_runs * k.found as f64).round() as u64;
                c.max_delay = c.max_delay.max(k.max_delay_runs);
            }
        }
        let kinds = KINDS
            .iter()
            .enumerate()
            .map(|(i, kind)| counts.get(&i).copied().unwrap_or_default().quality(*kind))
            .collect();
        Quality {
            runs,
            normal_runs: normal,
            incidents,
            false_incidents,
            false_incidents_per_1000: per_1000(false_incidents, normal),
            duplicate_incidents: dups,
            kinds,
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    injected: u64,
    found: u64,
    incidents: u64,
    true_incidents: u64,
    delay_sum: u64,
    max_delay: u64,
}

impl Counts {
    fn quality(self, kind: AnomalyKind) -> KindQuality {
        let precision = if self.incidents == 0 {
            1.0
        } else {
            self.true_incidents as f64 / self.incidents as f64
        };
        let recall = if self.injected == 0 {
            1.0
        } else {
            self.found as f64 / self.injected as f64
        };
        KindQuality {
            kind,
            injected: self.injected,
            found: self.found,
            incidents: self.incidents,
            true_incidents: self.true_incidents,
            extra_incidents: self.incidents - self.true_incidents,
            precision,
            recall,
            f1: if precision + recall == 0.0 {
                0.0
            } else {
                2.0 * precision * recall / (precision + recall)
            },
            mean_delay_runs: if self.found == 0 {
                0.0
            } else {
                self.delay_sum as f64 / self.found as f64
            },
            max_delay_runs: self.max_delay,
        }
    }
}

fn per_1000(n: u64, of: u64) -> f64 {
    if of == 0 {
        0.0
    } else {
        n as f64 * 1000.0 / of as f64
    }
}

/// The opening class of an incident: its first signal with one.
fn class_of_incident(a: &Alert) -> Option<AnomalyKind> {
    a.kinds().into_iter().find_map(class_of)
}

/// Runs `history` through a [`Monitor`] with `rules` and scores its incidents.
pub fn evaluate(history: &History, rules: &Rules) -> Quality {
    evaluate_logged(history, rules, &mut None)
}

/// As [`evaluate`], with one line per anomaly missed and per extra or false incident: what to
/// look at when tuning.
pub fn misses(history: &History, rules: &Rules) -> Vec<String> {
    let mut log = Some(Vec::new());
    evaluate_logged(history, rules, &mut log);
    log.unwrap_or_default()
}

fn evaluate_logged(history: &History, rules: &Rules, log: &mut Option<Vec<String>>) -> Quality {
    let mut monitor = Monitor::new(rules.clone());
    let mut wf_seq: HashMap<&str, u64> = HashMap::new();
    let mut stream_seq: HashMap<(&str, &str), u64> = HashMap::new();
    let n = history.anomalies.len();
    let mut found_at: Vec<Option<u64>> = vec![None; n];
    let mut counts = [Counts::default(); 4];
    let kind_index = |k: AnomalyKind| KINDS.iter().position(|x| *x == k).unwrap_or(0);
    // Anomalies cut short by the end of the history are left out: a problem a few runs old
    // when the history stops cannot be held against the detectors.
    let complete = complete_anomalies(history);
    for (i, a) in history.anomalies.iter().enumerate() {
        if complete[i] {
            counts[kind_index(a.kind)].injected += 1;
        }
    }
    let (mut normal, mut false_incidents, mut incidents, mut dups) = (0u64, 0u64, 0u64, 0u64);
    // Kinds each open incident already listed, to see which ones a later signal adds.
    let mut listed: BTreeMap<String, BTreeSet<AlertKind>> = BTreeMap::new();

    for run in &history.runs {
        let ws = {
            let e = wf_seq.entry(run.name.as_str()).or_insert(0);
            *e += 1;
            *e - 1
        };
        let ss = {
            let e = stream_seq
                .entry((run.name.as_str(), run.head_branch.as_str()))
                .or_insert(0);
            *e += 1;
            *e - 1
        };
        // Anomalies whose window (with grace) holds this run, with the run's position in them.
        let here: Vec<(usize, u64)> = history
            .anomalies
            .iter()
            .enumerate()
            .filter(|(_, a)| a.workflow == run.name)
            .filter_map(|(i, a)| {
                let s = if a.branch.is_empty() {
                    ws
                } else if a.branch == run.head_branch {
                    ss
                } else {
                    return None;
                };
                (s >= a.start_seq && s < a.start_seq + a.len + GRACE_RUNS)
                    .then(|| (i, s - a.start_seq))
            })
            .collect();
        if here.is_empty() {
            normal += 1;
        }
        let obs = monitor.observe(run);
        for alert in &obs.alerts {
            incidents += 1;
            listed.insert(
                alert.fingerprint.0.clone(),
                alert.kinds().into_iter().collect(),
            );
            let class = class_of_incident(alert);
            let fits = here
                .iter()
                .find(|(i, _)| Some(history.anomalies[*i].kind) == class && found_at[*i].is_none());
            let attributed = class.map(kind_index);
            if let Some(c) = attributed {
                counts[c].incidents += 1;
            }
            // A second incident for an anomaly already found is a duplicate; one that fits no
            // anomaly in whose window it opens is false.
            let duplicate = fits.is_none()
                && here.iter().any(|(i, _)| {
                    Some(history.anomalies[*i].kind) == class && found_at[*i].is_some()
                });
            match fits {
                Some(&(i, _)) if !complete[i] => {
                    // Found a truncated anomaly: neither true nor false.
                    found_at[i] = Some(0);
                    if let Some(c) = attributed {
                        counts[c].incidents -= 1;
                    }
                    incidents -= 1;
                }
                Some(&(i, delay)) => {
                    found_at[i] = Some(delay);
                    if let Some(c) = attributed {
                        counts[c].true_incidents += 1;
                    }
                }
                None if duplicate => dups += 1,
                None => false_incidents += 1,
            }
            if fits.is_none()
                && let Some(log) = log.as_mut()
            {
                let inside: Vec<String> = here
                    .iter()
                    .map(|(i, d)| format!("{:?}+{d}", history.anomalies[*i].kind))
                    .collect();
                log.push(format!(
                    "extra incident {}@{} run {ss}: {:?} [{}] inside {inside:?}",
                    alert.workflow,
                    alert.branch,
                    alert.kinds(),
                    alert.summary
                ));
            }
        }
        for alert in &obs.updated {
            let before = listed.entry(alert.fingerprint.0.clone()).or_default();
            for kind in alert.kinds() {
                if before.insert(kind)
                    && let Some(class) = class_of(kind)
                    && let Some(&(i, delay)) = here.iter().find(|(i, _)| {
                        history.anomalies[*i].kind == class && found_at[*i].is_none()
                    })
                {
                    found_at[i] = Some(delay);
                }
            }
        }
        for fp in &obs.recovered {
            listed.remove(&fp.0);
        }
    }
    for (i, a) in history.anomalies.iter().enumerate() {
        if !complete[i] {
            continue;
        }
        if found_at[i].is_none()
            && let Some(log) = log.as_mut()
        {
            log.push(format!(
                "missed {:?} on {}@{} from run {}",
                a.kind, a.workflow, a.branch, a.start_seq
            ));
        }
        if let Some(d) = found_at[i] {
            let c = &mut counts[kind_index(a.kind)];
            c.found += 1;
            c.delay_sum += d;
            c.max_delay = c.max_delay.max(d);
        }
    }
    Quality {
        runs: history.runs.len() as u64,
        normal_runs: normal,
        incidents,
        false_incidents,
        false_incidents_per_1000: per_1000(false_incidents, normal),
        duplicate_incidents: dups,
        kinds: KINDS
            .iter()
            .enumerate()
            .map(|(i, k)| counts[i].quality(*k))
            .collect(),
    }
}

/// For each anomaly, whether the history holds all of its runs (and its grace).
fn complete_anomalies(history: &History) -> Vec<bool> {
    let mut wf: HashMap<&str, u64> = HashMap::new();
    let mut stream: HashMap<(&str, &str), u64> = HashMap::new();
    for r in &history.runs {
        *wf.entry(r.name.as_str()).or_default() += 1;
        *stream
            .entry((r.name.as_str(), r.head_branch.as_str()))
            .or_default() += 1;
    }
    history
        .anomalies
        .iter()
        .map(|a| {
            let total = if a.branch.is_empty() {
                wf.get(a.workflow.as_str()).copied()
            } else {
                stream
                    .get(&(a.workflow.as_str(), a.branch.as_str()))
                    .copied()
            };
            total.unwrap_or(0) >= a.start_seq + a.len + GRACE_RUNS
        })
        .collect()
}

/// A generator of one character, by seed and length.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// Its name in reports.
    pub name: &'static str,
    /// The normal failure rate of its default branch.
    pub failure_rate: f64,
}

impl Setting {
    /// The generator settings for `seed` and `runs`.
    pub fn config(&self, seed: u64, runs: usize) -> GeneratorConfig {
        GeneratorConfig::realistic(seed, runs, self.failure_rate)
    }
}

/// The settings the quality report covers: failure rates of 1, 5, 10 and 20 % with heavy-tailed
/// durations, weekly seasonality, queueing bursts, cancellations, time-outs, startup failures
/// and three branches ([`GeneratorConfig::realistic`]).
pub const SETTINGS: [Setting; 4] = [
    Setting {
        name: "1 % failures",
        failure_rate: 0.01,
    },
    Setting {
        name: "5 % failures",
        failure_rate: 0.05,
    },
    Setting {
        name: "10 % failures",
        failure_rate: 0.10,
    },
    Setting {
        name: "20 % failures",
        failure_rate: 0.20,
    },
];

/// `setting` over `seeds`, `runs` runs each, added up.
pub fn measure(setting: &Setting, seeds: &[u64], runs: usize, rules: &Rules) -> Quality {
    let all: Vec<Quality> = seeds
        .iter()
        .map(|&seed| evaluate(&generate(&setting.config(seed, runs)), rules))
        .collect();
    Quality::sum(&all)
}

/// A Markdown table of `rows` (label, quality): one line per setting and anomaly kind.
pub fn table(rows: &[(String, Quality)]) -> String {
    let mut s = String::from(
        "| setting | kind | injected | found | extra incidents | precision | recall | F1 | mean delay | max delay | false incidents / 1,000 normal runs |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for (label, q) in rows {
        for k in &q.kinds {
            s.push_str(&format!(
                "| {label} | {:?} | {} | {} | {} | {:.3} | {:.3} | {:.3} | {:.1} | {} | {:.3} ({} in {}) |\n",
                k.kind,
                k.injected,
                k.found,
                k.extra_incidents,
                k.precision,
                k.recall,
                k.f1,
                k.mean_delay_runs,
                k.max_delay_runs,
                q.false_incidents_per_1000,
                q.false_incidents,
                q.normal_runs
            ));
        }
    }
    s
}
