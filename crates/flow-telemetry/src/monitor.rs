//! The streaming monitor: feeds each completed run to its workflow's detectors and keeps a
//! bounded window of facts for the KPIs.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use serde::{Deserialize, Serialize};

/// FNV-1a: workflow names are short, trusted keys, where SipHash's cost shows per run.
#[derive(Debug, Clone, Copy)]
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

use crate::alert::{Alert, AlertKind, Evidence, Fingerprint, Severity};
use crate::detect::{Consecutive, Cusum, Ewma, RobustZ, Signal};
use crate::kpi::{self, GroupKey, Kpis, RunFacts};
use crate::model::Run;
use crate::problem::Problem;
use crate::rules::{Rules, Thresholds};

/// What one observed run changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observation {
    /// Alerts that started with this run.
    pub alerts: Vec<Alert>,
    /// Problems that cleared with this run.
    pub recovered: Vec<Fingerprint>,
}

impl Observation {
    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty() && self.recovered.is_empty()
    }
}

/// Where a duration change point started: the last run before the excursion of the CUSUM
/// that fired, and the first run of it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeStart {
    /// Id of the last run before the change (0 when unknown).
    pub before_run: u64,
    /// Head SHA of that run (empty when unknown).
    pub before_sha: String,
    /// Id of the first run after the change.
    pub after_run: u64,
    /// Head SHA of that run.
    pub after_sha: String,
    /// Link to that run.
    pub after_url: String,
}

impl ChangeStart {
    /// `https://github.com/o/r/compare/<before>...<after>`, from the run's link, when both SHAs
    /// are known.
    pub fn compare_url(&self) -> Option<String> {
        if self.before_sha.is_empty() || self.after_sha.is_empty() {
            return None;
        }
        let (repo, _) = self.after_url.split_once("/actions/runs/")?;
        Some(format!(
            "{repo}/compare/{}...{}",
            self.before_sha, self.after_sha
        ))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct WorkflowState {
    th: Thresholds,
    window: VecDeque<RunFacts>,
    window_failures: u32,
    seen: u64,
    duration: RobustZ,
    queue: RobustZ,
    cusum: Cusum,
    failure: Ewma,
    rerun: Ewma,
    consecutive: Consecutive,
    over_duration: Consecutive,
    over_queue: Consecutive,
    over_failure_rate: bool,
    streak_start_url: Option<String>,
    /// The last run observed: id and head SHA (for change-point commit ranges).
    #[serde(default)]
    last_run: (u64, String),
    /// The excursion of the CUSUM under way, if any.
    #[serde(default)]
    excursion: Option<ChangeStart>,
    /// Where the active change point started.
    #[serde(default)]
    change: Option<ChangeStart>,
}

impl WorkflowState {
    fn new(th: Thresholds) -> Self {
        let w = th.baseline_window as usize;
        let warm = th.warmup as usize;
        Self {
            duration: RobustZ::new(w, th.duration_z, th.z_min_consecutive, warm)
                .with_recovery(th.recovery_runs),
            queue: RobustZ::new(w, th.queue_z, th.z_min_consecutive, warm)
                .with_recovery(th.recovery_runs),
            cusum: Cusum::new(
                th.change_point_k,
                th.change_point_h,
                th.change_point_clip,
                th.baseline_window,
            )
            .with_recovery(th.recovery_runs),
            failure: Ewma::new(th.failure_ewma_lambda, th.failure_ewma_threshold, th.warmup),
            rerun: Ewma::new(th.rerun_ewma_lambda, th.rerun_ewma_threshold, th.warmup),
            consecutive: Consecutive::new(th.consecutive_failures),
            over_duration: Consecutive::new(if th.max_duration_ms.is_some() {
                th.z_min_consecutive
            } else {
                0
            }),
            over_queue: Consecutive::new(if th.max_queue_ms.is_some() {
                th.z_min_consecutive
            } else {
                0
            }),
            over_failure_rate: false,
            streak_start_url: None,
            last_run: (0, String::new()),
            excursion: None,
            change: None,
            window: VecDeque::new(),
            window_failures: 0,
            seen: 0,
            th,
        }
    }
}

/// Streaming monitor over many workflows. Memory is bounded by the number of workflows times
/// the rules' `window` and `baseline_window`, never by the history.
///
/// It is `Serialize` and `Deserialize`: the whole detector state (windows, baselines, EWMA
/// and CUSUM accumulators, open alerts) survives a process through [`crate::state`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Monitor {
    rules: Rules,
    /// The branch the monitored runs are on; part of every fingerprint when set.
    #[serde(default)]
    branch: Option<String>,
    states: HashMap<String, WorkflowState, BuildHasherDefault<Fnv>>,
    active: BTreeMap<Fingerprint, Alert>,
    /// Every problem that fired, bounded by workflows × alert kinds.
    problems: BTreeMap<Fingerprint, Problem>,
}

impl Monitor {
    /// A monitor applying `rules` (assumed validated, as [`Rules::from_yaml`] does).
    pub fn new(rules: Rules) -> Self {
        Self {
            rules,
            branch: None,
            states: HashMap::default(),
            active: BTreeMap::new(),
            problems: BTreeMap::new(),
        }
    }

    /// Scopes the fingerprints to `branch` ([`Fingerprint::scoped`]): feed it the runs of
    /// that branch only.
    #[must_use]
    pub fn with_branch(mut self, branch: impl Into<String>) -> Self {
        self.branch = Some(branch.into()).filter(|b: &String| !b.is_empty());
        self
    }

    /// The branch the fingerprints are scoped to.
    pub fn branch(&self) -> Option<&str> {
        self.branch.as_deref()
    }

    /// The rolling median duration (ms) of `workflow`'s baseline, once warmed up.
    pub fn duration_median(&self, workflow: &str) -> Option<f64> {
        let st = self.states.get(workflow)?;
        (!st.duration.is_empty()).then(|| st.duration.baseline().0)
    }

    /// Where the active duration change point of `workflow` started.
    pub fn change_start(&self, workflow: &str) -> Option<&ChangeStart> {
        self.states.get(workflow)?.change.as_ref()
    }

    /// Runs observed for `workflow` so far.
    pub fn seen(&self, workflow: &str) -> u64 {
        self.states.get(workflow).map_or(0, |s| s.seen)
    }

    /// Accepts the current duration level of `workflow` as its new normal: its active
    /// duration outlier and change-point alerts are cleared without a recovery. Returns the
    /// fingerprints cleared.
    pub fn accept_duration(&mut self, workflow: &str) -> Vec<Fingerprint> {
        let Some(st) = self.states.get_mut(workflow) else {
            return Vec::new();
        };
        st.duration.accept();
        st.cusum.accept();
        st.change = None;
        let mut cleared = Vec::new();
        for kind in [AlertKind::DurationOutlier, AlertKind::DurationShift] {
            let fp = Fingerprint::scoped(workflow, self.branch.as_deref().unwrap_or(""), kind);
            if self.active.remove(&fp).is_some() {
                cleared.push(fp);
            }
        }
        cleared
    }

    /// The rules in force.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// Alerts raised and not yet recovered, by fingerprint.
    pub fn active_alerts(&self) -> impl Iterator<Item = &Alert> {
        self.active.values()
    }

    /// Every problem that fired over the observed history, by fingerprint: the open ones and
    /// those that recovered, with how often each fired and recovered. Memory is bounded by
    /// workflows × alert kinds.
    pub fn problems(&self) -> impl Iterator<Item = &Problem> {
        self.problems.values()
    }

    /// Observes one run. Runs that are not completed are ignored (observe them again once
    /// they complete). Runs should arrive in completion order per workflow.
    pub fn observe(&mut self, run: &Run) -> Observation {
        let mut obs = Observation::default();
        if !run.is_completed() {
            return obs;
        }
        let key = run.workflow_key();
        if !self.states.contains_key(key.as_ref()) {
            let th = self.rules.for_workflow(&key);
            self.states.insert(key.to_string(), WorkflowState::new(th));
        }
        let Some(st) = self.states.get_mut(key.as_ref()) else {
            return obs;
        };
        let facts = RunFacts::from_run(run, &self.rules.default_branch);
        let cap = self.rules.window as usize;
        let branch = self.branch.as_deref().unwrap_or("");
        st.seen += 1;

        // KPI window.
        if st.window.len() == cap
            && let Some(old) = st.window.pop_front()
            && old.outcome.is_failed()
        {
            st.window_failures -= 1;
        }
        st.window.push_back(facts);
        let failed = facts.outcome.is_failed();
        if failed {
            st.window_failures += 1;
        }

        // Fingerprints and links are built only when a detector changes state: hashing and
        // allocating on every quiet run would dominate the cost of detection.
        let mut emit = |kind: AlertKind,
                        sig: Signal,
                        metric: &str,
                        value: f64,
                        links: &dyn Fn() -> Vec<String>| {
            if sig == Signal::Quiet {
                return;
            }
            let fp = Fingerprint::scoped(&key, branch, kind);
            match sig {
                Signal::Fire {
                    score,
                    baseline,
                    threshold,
                } => {
                    let (severity, summary) = describe(kind, value, baseline, score);
                    obs.alerts.push(Alert {
                        fingerprint: fp,
                        workflow: key.to_string(),
                        kind,
                        severity,
                        summary,
                        evidence: Evidence {
                            metric: metric.to_string(),
                            value,
                            baseline,
                            threshold,
                            score: Some(score),
                            runs: links(),
                        },
                        run_id: facts.id,
                        at_ms: facts.completed_at,
                    });
                }
                Signal::Recover => obs.recovered.push(fp),
                Signal::Quiet => {}
            }
        };
        let link = || {
            if run.html_url.is_empty() {
                Vec::new()
            } else {
                vec![run.html_url.clone()]
            }
        };

        if let Some(d) = facts.duration_ms {
            let x = d as f64;
            let sig = st.duration.observe(x);
            emit(AlertKind::DurationOutlier, sig, "duration_ms", x, &link);
            // The change point uses the same baseline, of the values before this one.
            if st.th.change_point
                && let Some((m, s)) = st.duration.last_baseline()
            {
                let idle = st.cusum.sum() <= 0.0;
                let sig = st.cusum.observe(x, m, s);
                if matches!(sig, Signal::Fire { .. }) {
                    st.change = st.excursion.take().or_else(|| {
                        Some(ChangeStart {
                            before_run: st.last_run.0,
                            before_sha: st.last_run.1.clone(),
                            after_run: run.id.0,
                            after_sha: run.head_sha.clone(),
                            after_url: run.html_url.clone(),
                        })
                    });
                } else if st.cusum.sum() <= 0.0 {
                    st.excursion = None;
                } else if idle {
                    st.excursion = Some(ChangeStart {
                        before_run: st.last_run.0,
                        before_sha: st.last_run.1.clone(),
                        after_run: run.id.0,
                        after_sha: run.head_sha.clone(),
                        after_url: run.html_url.clone(),
                    });
                }
                if sig == Signal::Recover {
                    st.change = None;
                }
                emit(AlertKind::DurationShift, sig, "duration_ms", x, &link);
            }
            if let Some(max) = st.th.max_duration_ms {
                let sig = st.over_duration.observe(exceeds(d, max));
                let sig = with_threshold(sig, max as f64);
                emit(AlertKind::DurationThreshold, sig, "duration_ms", x, &link);
            }
        }
        if let Some(q) = facts.queue_ms {
            let x = q as f64;
            let sig = st.queue.observe(x);
            emit(AlertKind::QueueOutlier, sig, "queue_ms", x, &link);
            if let Some(max) = st.th.max_queue_ms {
                let sig = with_threshold(st.over_queue.observe(exceeds(q, max)), max as f64);
                emit(AlertKind::QueueThreshold, sig, "queue_ms", x, &link);
            }
        }
        let counts = !matches!(
            facts.outcome,
            crate::model::Outcome::Cancelled | crate::model::Outcome::Other
        );
        if counts {
            let sig = st.failure.observe(failed);
            let v = st.failure.value();
            emit(AlertKind::FailureRate, sig, "failure_rate_ewma", v, &link);
            if failed && st.consecutive.streak() == 0 && !run.html_url.is_empty() {
                st.streak_start_url = Some(run.html_url.clone());
            }
            let sig = st.consecutive.observe(failed);
            let start = st.streak_start_url.as_ref();
            let links = || {
                let mut links: Vec<String> = start.into_iter().cloned().collect();
                if !run.html_url.is_empty() && links.last() != Some(&run.html_url) {
                    links.push(run.html_url.clone());
                }
                links
            };
            let streak = f64::from(st.consecutive.streak());
            emit(
                AlertKind::ConsecutiveFailures,
                sig,
                "consecutive_failures",
                streak,
                &links,
            );
        }
        let sig = st
            .rerun
            .observe(facts.attempt > 1 && facts.outcome == crate::model::Outcome::Success);
        let v = st.rerun.value();
        emit(AlertKind::RerunRate, sig, "rerun_rate_ewma", v, &link);
        if let Some(max) = st.th.max_failure_rate
            && st.seen >= u64::from(st.th.warmup)
        {
            let rate = f64::from(st.window_failures) / st.window.len().max(1) as f64;
            let sig = match (st.over_failure_rate, rate > max) {
                (false, true) => {
                    st.over_failure_rate = true;
                    Signal::Fire {
                        score: rate,
                        baseline: max,
                        threshold: max,
                    }
                }
                (true, false) => {
                    st.over_failure_rate = false;
                    Signal::Recover
                }
                _ => Signal::Quiet,
            };
            emit(
                AlertKind::FailureRateThreshold,
                sig,
                "failure_rate_window",
                rate,
                &link,
            );
        }

        if st.last_run.1 != run.head_sha || st.last_run.0 != run.id.0 {
            st.last_run = (run.id.0, run.head_sha.clone());
        }
        for a in &obs.alerts {
            self.active.insert(a.fingerprint.clone(), a.clone());
            match self.problems.get_mut(&a.fingerprint) {
                Some(p) => p.fire(a),
                None => {
                    self.problems.insert(a.fingerprint.clone(), Problem::new(a));
                }
            }
        }
        obs.recovered.retain(|fp| self.active.remove(fp).is_some());
        for fp in &obs.recovered {
            if let Some(p) = self.problems.get_mut(fp) {
                p.recover(facts.completed_at);
            }
        }
        obs
    }

    /// KPIs of each workflow over its window, sorted by workflow.
    pub fn kpis(&self) -> Vec<Kpis> {
        let mut out: Vec<Kpis> = self
            .states
            .iter()
            .map(|(name, st)| {
                let facts: Vec<RunFacts> = st.window.iter().copied().collect();
                Kpis {
                    key: GroupKey {
                        workflow: name.clone(),
                        branch: None,
                        event: None,
                    },
                    values: kpi::compute(&facts),
                }
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }

    /// Run facts held across all workflows' KPI windows (bounded by workflows × `window`).
    pub fn retained(&self) -> usize {
        self.states.values().map(|s| s.window.len()).sum()
    }

    /// Facts currently in the window of `workflow`, oldest first.
    pub fn window(&self, workflow: &str) -> Vec<RunFacts> {
        self.states
            .get(workflow)
            .map(|s| s.window.iter().copied().collect())
            .unwrap_or_default()
    }
}

/// Whether a measured `ms` (negative under clock skew) is above the configured `max`, compared
/// without casting: `max as i64` would wrap a `max` above `i64::MAX` to a negative bound that
/// every run exceeds.
fn exceeds(ms: i64, max: u64) -> bool {
    u64::try_from(ms).is_ok_and(|ms| ms > max)
}

fn with_threshold(sig: Signal, threshold: f64) -> Signal {
    match sig {
        Signal::Fire { score, .. } => Signal::Fire {
            score,
            baseline: threshold,
            threshold,
        },
        other => other,
    }
}

fn describe(kind: AlertKind, value: f64, baseline: f64, score: f64) -> (Severity, String) {
    let secs = |ms: f64| ms / 1000.0;
    match kind {
        AlertKind::DurationOutlier => (
            Severity::Warning,
            format!(
                "runs take {:.0}s against a median of {:.0}s (robust z {score:.1})",
                secs(value),
                secs(baseline)
            ),
        ),
        AlertKind::DurationShift => (
            Severity::Warning,
            format!(
                "duration stepped up to {:.0}s from a median of {:.0}s",
                secs(value),
                secs(baseline)
            ),
        ),
        AlertKind::QueueOutlier => (
            Severity::Warning,
            format!(
                "runs wait {:.0}s in queue against a median of {:.0}s",
                secs(value),
                secs(baseline)
            ),
        ),
        AlertKind::FailureRate => (
            if value >= 0.6 {
                Severity::Critical
            } else {
                Severity::Warning
            },
            format!("failure rate rose to {:.0}% (EWMA)", value * 100.0),
        ),
        AlertKind::ConsecutiveFailures => (
            Severity::Critical,
            format!("{value:.0} consecutive failed runs"),
        ),
        AlertKind::RerunRate => (
            Severity::Warning,
            format!(
                "flaky: {:.0}% of runs pass only on a re-run (EWMA)",
                value * 100.0
            ),
        ),
        AlertKind::FailureRateThreshold => (
            Severity::Critical,
            format!(
                "failure rate {:.0}% over the window exceeds {:.0}%",
                value * 100.0,
                baseline * 100.0
            ),
        ),
        _ => (
            Severity::Warning,
            format!(
                "static threshold exceeded: {:.0}s > {:.0}s",
                secs(value),
                secs(baseline)
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::generator::{GeneratorConfig, generate};

    #[test]
    fn a_threshold_above_i64_max_is_never_exceeded() {
        assert!(!exceeds(i64::MAX, u64::MAX));
        assert!(!exceeds(1_000, u64::MAX));
        assert!(!exceeds(-5, 0));
        assert!(exceeds(1_001, 1_000));
        assert!(!exceeds(1_000, 1_000));
    }

    #[test]
    fn memory_is_bounded_by_the_window() {
        let rules = Rules {
            window: 100,
            ..Rules::default()
        };
        let h = generate(&GeneratorConfig {
            runs: 30_000,
            ..GeneratorConfig::default()
        });
        let mut m = Monitor::new(rules);
        for r in &h.runs {
            m.observe(r);
        }
        assert_eq!(
            m.retained(),
            300,
            "3 workflows x 100 runs, whatever the history length"
        );
        assert!(m.kpis().iter().all(|k| k.values.count == 100));
    }

    /// A completed successful run of "CI" taking `dur_s` seconds after `queue_s` in queue.
    fn timed(id: u64, dur_s: i64, queue_s: i64) -> Run {
        let created = id as i64 * 10_000_000;
        Run {
            id: crate::model::RunId(id),
            name: "CI".into(),
            status: crate::model::RunStatus::Completed,
            conclusion: Some(crate::model::Conclusion::Success),
            created_at: Some(created),
            run_started_at: Some(created + queue_s * 1000),
            updated_at: Some(created + (queue_s + dur_s) * 1000),
            ..Run::default()
        }
    }

    #[test]
    fn duration_and_queue_shifts_recover_once_back_within_the_baseline() {
        let rules = Rules::from_yaml("defaults:\n  recovery_runs: 4\n").unwrap();
        let mut m = Monitor::new(rules);
        let mut id = 0;
        let mut feed = |m: &mut Monitor, n: u64, dur: i64, queue: i64| {
            let (mut fired, mut recovered) = (Vec::new(), Vec::new());
            for i in 0..n {
                id += 1;
                let noise = (i % 7) as i64;
                let obs = m.observe(&timed(id, dur + noise, queue + noise));
                fired.extend(obs.alerts.iter().map(|a| a.kind));
                recovered.extend(obs.recovered.iter().map(|f| (id, f.clone())));
            }
            (fired, recovered)
        };
        let (_, early) = feed(&mut m, 80, 100, 10);
        assert!(early.is_empty());
        let (fired, _) = feed(&mut m, 25, 300, 200);
        let kinds = [
            AlertKind::DurationOutlier,
            AlertKind::DurationShift,
            AlertKind::QueueOutlier,
        ];
        for k in kinds {
            assert!(fired.contains(&k), "{k:?} fired: {fired:?}");
        }
        let (_, recovered) = feed(&mut m, 40, 100, 10);
        for k in kinds {
            let fp = Fingerprint::of("CI", k);
            assert!(
                recovered.iter().any(|(_, f)| *f == fp),
                "{k:?} recovered: {recovered:?}"
            );
        }
        // Recovery takes exactly `recovery_runs` calm runs for the change point.
        let fp = Fingerprint::of("CI", AlertKind::DurationShift);
        let at = recovered.iter().find(|(_, f)| *f == fp).unwrap().0;
        assert_eq!(at, 105 + 4);
        assert_eq!(m.active_alerts().count(), 0);
    }

    #[test]
    fn in_progress_runs_are_ignored_and_alerts_recover() {
        let mut m = Monitor::new(Rules::default());
        let mk = |id: u64, c: Option<crate::model::Conclusion>| Run {
            id: crate::model::RunId(id),
            name: "CI".into(),
            status: if c.is_some() {
                crate::model::RunStatus::Completed
            } else {
                crate::model::RunStatus::InProgress
            },
            conclusion: c,
            ..Run::default()
        };
        use crate::model::Conclusion::{Failure, Success};
        assert!(m.observe(&mk(1, None)).is_empty());
        let mut fired = Vec::new();
        for id in 2..5 {
            fired.extend(m.observe(&mk(id, Some(Failure))).alerts);
        }
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].kind, AlertKind::ConsecutiveFailures);
        assert_eq!(m.active_alerts().count(), 1);
        let obs = m.observe(&mk(5, Some(Success)));
        assert_eq!(
            obs.recovered,
            vec![Fingerprint::of("CI", AlertKind::ConsecutiveFailures)]
        );
        assert_eq!(m.active_alerts().count(), 0);
    }
}
