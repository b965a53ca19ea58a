//! The streaming monitor: feeds each completed run to its workflow's detectors and keeps a
//! bounded window of facts for the KPIs.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasherDefault;

use serde::{Deserialize, Serialize};

use crate::alert::{Alert, AlertKind, AlertSignal, Evidence, Fingerprint, Severity};
use crate::detect::{Signal, binomial_tail, normal_tail, one_in};
use crate::kpi::{self, GroupKey, Kpis, RunFacts};
use crate::model::{Outcome, Run};
use crate::problem::Problem;
use crate::rules::Rules;

use self::signal::*;
use self::stream::{Fnv, RateTest, Stream, WorkflowState};

/// Runs a rate baseline waits before learning a run, so a problem's first runs are judged
/// against the baseline from before it rather than absorbed into it.
const BASELINE_LAG: usize = 10;

/// Branches with their own detectors per workflow; the least recently seen one without an open
/// incident is forgotten beyond this, so memory stays bounded under many short-lived branches.
pub const MAX_BRANCHES: usize = 64;

/// The run-outcome tests sharing the false-alarm budget: streak, failure rate, re-run rate.
const OUTCOME_TESTS: f64 = 3.0;

/// What one observed run changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observation {
    /// Incidents opened with this run (each with the signals that fired on it).
    pub alerts: Vec<Alert>,
    /// Open incidents that gained a signal or a higher severity with this run, as they now are.
    pub updated: Vec<Alert>,
    /// Incidents that resolved with this run: all their signals recovered.
    pub recovered: Vec<Fingerprint>,
}

impl Observation {
    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty() && self.updated.is_empty() && self.recovered.is_empty()
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

    fn between(last: &(u64, String), run: &Run) -> Self {
        Self {
            before_run: last.0,
            before_sha: last.1.clone(),
            after_run: run.id.0,
            after_sha: run.head_sha.clone(),
            after_url: run.html_url.clone(),
        }
    }
}

/// Where a workflow on a branch stands: its baselines, or that it has too little history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BaselineStatus {
    /// The workflow.
    pub workflow: String,
    /// The branch.
    pub branch: String,
    /// Completed runs observed.
    pub runs: u64,
    /// Runs in the failure baseline.
    pub baseline_runs: u64,
    /// Runs needed in it before the rate tests judge (`warmup`).
    pub needed: u64,
    /// The baseline failure rate, once there is enough history.
    pub failure_rate: Option<f64>,
    /// Failed runs in a row that fire the streak signal, once there is enough history.
    pub streak_needed: Option<u32>,
    /// The baseline re-run rate, once there is enough history.
    pub rerun_rate: Option<f64>,
}

impl std::fmt::Display for BaselineStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = stream_name(&self.workflow, &self.branch);
        match (self.failure_rate, self.streak_needed) {
            (Some(p), Some(k)) => write!(
                f,
                "{name}: {:.1} % of runs fail (baseline of {} runs); {k} failures in a row alert",
                p * 100.0,
                self.baseline_runs
            ),
            _ => write!(
                f,
                "{name}: too little history to judge failures ({} of {} runs); no failure alert yet",
                self.baseline_runs, self.needed
            ),
        }
    }
}

/// Streaming monitor over many workflows and branches. Memory is bounded by the number of
/// workflows times the rules' `window`, plus at most [`MAX_BRANCHES`] detector sets per
/// workflow (each bounded by `baseline_window`), never by the history.
///
/// Detectors run per workflow and branch; their signals form incidents: while an incident of a
/// workflow on a branch is open, every signal there joins it (one fingerprint, one issue), and
/// it resolves once all of its signals have recovered.
///
/// It is `Serialize` and `Deserialize`: the whole detector state (windows, baselines, CUSUM
/// accumulators, open incidents) survives a process through [`crate::state`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Monitor {
    rules: Rules,
    /// The branch every run is taken to be on (its incidents are scoped to it), when set.
    #[serde(default)]
    branch: Option<String>,
    states: HashMap<String, WorkflowState, BuildHasherDefault<Fnv>>,
    active: BTreeMap<Fingerprint, Alert>,
    /// Every incident that opened, bounded by workflows × branches.
    #[serde(default)]
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

    /// Takes every run to be on `branch` (feed it the runs of that branch only): one set of
    /// detectors per workflow, incidents scoped to `branch`. Without it each run's own branch
    /// is used.
    #[must_use]
    pub fn with_branch(mut self, branch: impl Into<String>) -> Self {
        self.branch = Some(branch.into()).filter(|b: &String| !b.is_empty());
        self
    }

    /// The branch every run is taken to be on, when set.
    pub fn branch(&self) -> Option<&str> {
        self.branch.as_deref()
    }

    /// The stream of `workflow` the per-workflow accessors read: the scoped branch, else the
    /// default branch, else the one with the most runs.
    fn stream_of(&self, workflow: &str) -> Option<(&String, &Stream)> {
        let st = self.states.get(workflow)?;
        let want = self
            .branch
            .as_deref()
            .unwrap_or(self.rules.default_branch.as_str());
        st.branches.get_key_value(want).or_else(|| {
            st.branches
                .iter()
                .max_by(|a, b| (a.1.seen, b.0).cmp(&(b.1.seen, a.0)))
        })
    }

    /// The rolling median duration (ms) of `workflow`'s baseline, once warmed up.
    pub fn duration_median(&self, workflow: &str) -> Option<f64> {
        let (_, s) = self.stream_of(workflow)?;
        (!s.duration.is_empty()).then(|| s.duration.baseline().0)
    }

    /// Where the active duration change point of `workflow` started.
    pub fn change_start(&self, workflow: &str) -> Option<&ChangeStart> {
        self.stream_of(workflow)?.1.change.as_ref()
    }

    /// Runs observed for `workflow` so far (all branches).
    pub fn seen(&self, workflow: &str) -> u64 {
        self.states.get(workflow).map_or(0, |s| s.seen)
    }

    /// Accepts the current duration level of `workflow` (on the stream [`Monitor::
    /// duration_median`] reads) as its new normal: its duration signals are cleared without a
    /// recovery, and its incident with them when no other signal is active. Returns the
    /// fingerprints of incidents so cleared.
    pub fn accept_duration(&mut self, workflow: &str) -> Vec<Fingerprint> {
        let Some(branch) = self.stream_of(workflow).map(|(b, _)| b.clone()) else {
            return Vec::new();
        };
        if let Some(s) = self
            .states
            .get_mut(workflow)
            .and_then(|st| st.branches.get_mut(&branch))
        {
            s.duration.accept();
            s.cusum.accept();
            s.change = None;
        }
        let fp = Fingerprint::incident(workflow, &branch);
        let mut cleared = Vec::new();
        if let Some(open) = self.active.get_mut(&fp) {
            open.recover(AlertKind::DurationOutlier);
            open.recover(AlertKind::DurationShift);
            if open.all_recovered() {
                self.active.remove(&fp);
                cleared.push(fp);
            }
        }
        cleared
    }

    /// The rules in force.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// Open incidents, by fingerprint, each with every signal seen so far.
    pub fn active_alerts(&self) -> impl Iterator<Item = &Alert> {
        self.active.values()
    }

    /// Every incident that opened over the observed history, by fingerprint: the open ones and
    /// those that resolved, with how often each opened and resolved. Memory is bounded by
    /// workflows × branches.
    pub fn problems(&self) -> impl Iterator<Item = &Problem> {
        self.problems.values()
    }

    /// Each workflow and branch with its baselines, or the history it still lacks, sorted.
    pub fn baselines(&self) -> Vec<BaselineStatus> {
        let mut out = Vec::new();
        for (workflow, st) in &self.states {
            for (branch, s) in &st.branches {
                let ready = s.failure_base.learned() >= u64::from(st.th.warmup);
                let p = s.failure_base.rate();
                out.push(BaselineStatus {
                    workflow: workflow.clone(),
                    branch: branch.clone(),
                    runs: s.seen,
                    baseline_runs: s.failure_base.learned(),
                    needed: u64::from(st.th.warmup),
                    failure_rate: ready.then_some(p),
                    streak_needed: ready.then(|| streak_for(&st.th, p)),
                    rerun_rate: ready.then(|| s.rerun_base.rate()),
                });
            }
        }
        out.sort_by(|a, b| (&a.workflow, &a.branch).cmp(&(&b.workflow, &b.branch)));
        out
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
        st.seen += 1;

        // KPI window, per workflow.
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

        let branch = self.branch.as_deref().unwrap_or(run.head_branch.as_str());
        if !st.branches.contains_key(branch) {
            if st.branches.len() >= MAX_BRANCHES {
                forget_a_branch(&mut st.branches, &key, &self.active);
            }
            st.branches.insert(branch.to_string(), Stream::new(&st.th));
        }
        let Some(s) = st.branches.get_mut(branch) else {
            return obs;
        };
        s.seen += 1;
        s.last_seen = st.seen;
        let th = &st.th;
        let name = stream_name(&key, branch);

        let mut fired: Vec<AlertSignal> = Vec::new();
        let mut recovered: Vec<AlertKind> = Vec::new();
        // Signals are built only when a detector changes state: formatting on every quiet run
        // would dominate the cost of detection.
        let mut emit =
            |kind: AlertKind,
             sig: Signal,
             metric: &str,
             value: f64,
             runs: &dyn Fn() -> Vec<String>,
             explain: &dyn Fn(f64, f64, f64) -> (Severity, String, String)| {
                match sig {
                    Signal::Fire {
                        score,
                        baseline,
                        threshold,
                    } => {
                        let (severity, summary, explanation) = explain(score, baseline, threshold);
                        fired.push(AlertSignal {
                            kind,
                            severity,
                            summary,
                            explanation,
                            evidence: Evidence {
                                metric: metric.to_string(),
                                value,
                                baseline,
                                threshold,
                                score: Some(score),
                                runs: runs(),
                            },
                            run_id: facts.id,
                            at_ms: facts.completed_at,
                            recovered: false,
                        });
                    }
                    Signal::Recover => recovered.push(kind),
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
            let sig = s.duration.observe(x);
            let m = th.z_min_consecutive;
            let spread = s.duration.last_baseline().map_or(0.0, |b| b.1);
            emit(
                AlertKind::DurationOutlier,
                sig,
                "duration_ms",
                x,
                &link,
                &|z, med, t| {
                    let p = normal_tail(t).powi(m as i32 - 1) * normal_tail(z);
                    (
                        Severity::Warning,
                        format!("runs take {} against a median of {}", dur(x), dur(med)),
                        format!(
                            "Runs of {name} usually take {} (median of the last {} runs, typical spread {}); the last {m} took over {:.1} spreads longer, this one {}, which a normal baseline produces with a chance of {}.",
                            dur(med),
                            th.baseline_window,
                            dur(spread),
                            t,
                            dur(x),
                            one_in(p)
                        ),
                    )
                },
            );
            // The change point uses the same baseline, of the values before this one.
            if th.change_point
                && let Some((med, sigma)) = s.duration.last_baseline()
            {
                let idle = s.cusum.sum() <= 0.0;
                let sig = s.cusum.observe(x, med, sigma);
                // Where a change point started: the run before its excursion, and the first.
                if matches!(sig, Signal::Fire { .. }) {
                    s.change = s
                        .excursion
                        .take()
                        .or_else(|| Some(ChangeStart::between(&s.last_run, run)));
                } else if s.cusum.sum() <= 0.0 {
                    s.excursion = None;
                } else if idle {
                    s.excursion = Some(ChangeStart::between(&s.last_run, run));
                }
                if sig == Signal::Recover {
                    s.change = None;
                }
                let k = th.change_point_k;
                emit(
                    AlertKind::DurationShift,
                    sig,
                    "duration_ms",
                    x,
                    &link,
                    &|score, med, h| {
                        (
                            Severity::Warning,
                            format!(
                                "duration stepped up to {} from a median of {}",
                                dur(x),
                                dur(med)
                            ),
                            format!(
                                "Runs of {name} usually take {} (typical spread {}); recent runs have stayed longer, now {}, a sustained rise (CUSUM {score:.1} over {h:.1}) that the baseline drifts into with a chance of about {}.",
                                dur(med),
                                dur(sigma),
                                dur(x),
                                one_in((-2.0 * k * score).exp())
                            ),
                        )
                    },
                );
            }
            if let Some(max) = th.max_duration_ms {
                let sig = with_threshold(s.over_duration.observe(exceeds(d, max)), max as f64);
                emit(
                    AlertKind::DurationThreshold,
                    sig,
                    "duration_ms",
                    x,
                    &link,
                    &|_, b, _| static_limit(&name, "runs take", x, b, m),
                );
            }
        }
        if let Some(q) = facts.queue_ms {
            let x = q as f64;
            // Queue times are judged on a log scale: a busy hour multiplies them, and a
            // backlog is a large factor, not a number of seconds.
            let sig = unscaled(s.queue.observe(queue_scale(x)));
            let m = th.z_min_consecutive;
            let spread = s
                .queue
                .last_baseline()
                .map_or(1.0, |b| (b.1 / QUEUE_LOG_UNIT).exp());
            emit(
                AlertKind::QueueOutlier,
                sig,
                "queue_ms",
                x,
                &link,
                &|z, med, t| {
                    let p = normal_tail(t).powi(m as i32 - 1) * normal_tail(z);
                    (
                        Severity::Warning,
                        format!(
                            "runs wait {} in queue against a median of {}",
                            dur(x),
                            dur(med)
                        ),
                        format!(
                            "Runs of {name} usually wait {} in queue (median of the last {} runs, typical spread ×{spread:.2}); the last {m} waited over {:.1} spreads longer (on a log scale), this one {}, which a log-normal baseline produces with a chance of {}.",
                            dur(med),
                            th.baseline_window,
                            t,
                            dur(x),
                            one_in(p)
                        ),
                    )
                },
            );
            if th.change_point
                && let Some((med, sigma)) = s.queue.last_baseline()
            {
                let sig = unscaled(s.queue_cusum.observe(queue_scale(x), med, sigma));
                let k = th.queue_change_point_k;
                let factor = (sigma / QUEUE_LOG_UNIT).exp();
                emit(
                    AlertKind::QueueShift,
                    sig,
                    "queue_ms",
                    x,
                    &link,
                    &|score, med, h| {
                        (
                            Severity::Warning,
                            format!(
                                "queue times rose to {} from a median of {}",
                                dur(x),
                                dur(med)
                            ),
                            format!(
                                "Runs of {name} usually wait {} in queue (typical spread ×{factor:.2}); recent runs have waited longer, now {}, a sustained rise (CUSUM {score:.1} over {h:.1}, log scale) that the baseline drifts into with a chance of about {}.",
                                dur(med),
                                dur(x),
                                one_in((-2.0 * k * score).exp())
                            ),
                        )
                    },
                );
            }
            if let Some(max) = th.max_queue_ms {
                let sig = with_threshold(s.over_queue.observe(exceeds(q, max)), max as f64);
                emit(
                    AlertKind::QueueThreshold,
                    sig,
                    "queue_ms",
                    x,
                    &link,
                    &|_, b, _| static_limit(&name, "runs wait in queue", x, b, m),
                );
            }
        }

        // Cancelled and other outcomes say nothing about the workflow's health.
        let counts = !matches!(facts.outcome, Outcome::Cancelled | Outcome::Other);
        if counts {
            let ready = s.failure_base.learned() >= u64::from(th.warmup);
            let p0 = s.failure_base.rate();
            let base_runs = s.failure_base.learned();
            let (sig, value, stretch) = s.failure.observe(failed, &s.failure_base, th.warmup);
            emit(
                AlertKind::FailureRate,
                sig,
                &s.failure.metric("failure_rate"),
                value,
                &link,
                &|score, _, t| {
                    let severity = if value >= 0.6 {
                        Severity::Critical
                    } else {
                        Severity::Warning
                    };
                    let (n, k) = stretch;
                    if n == 0 {
                        return (
                            severity,
                            format!("failure rate rose to {:.0}% (EWMA)", score * 100.0),
                            format!(
                                "{name} fails {:.1} % of runs (baseline of {base_runs} runs); the moving average of failures rose to {:.0} %, over the fixed limit of {:.0} % in the rules.",
                                p0 * 100.0,
                                score * 100.0,
                                t * 100.0
                            ),
                        );
                    }
                    (
                        severity,
                        format!(
                            "failure rate rose to {:.0}% ({k} of {n} runs)",
                            value * 100.0
                        ),
                        format!(
                            "{name} usually fails {:.1} % of runs (baseline of {base_runs} runs); {k} of the last {n} runs failed, which at that rate has a chance of {}.",
                            p0 * 100.0,
                            one_in(binomial_tail(n, k, p0))
                        ),
                    )
                },
            );

            if failed && s.streak.streak() == 0 && !run.html_url.is_empty() {
                s.streak_start_url = Some(run.html_url.clone());
            }
            let needed = if th.consecutive_failures > 0 {
                th.consecutive_failures
            } else if ready {
                streak_for(th, p0)
            } else {
                0
            };
            let p1 = match &s.failure {
                RateTest::Sequential(c) if ready => c.alternative(p0),
                _ => 0.0,
            };
            let sig = s.streak.observe(failed, needed, p0, p1);
            let start = s.streak_start_url.as_ref();
            let links = || {
                let mut links: Vec<String> = start.into_iter().cloned().collect();
                if !run.html_url.is_empty() && links.last() != Some(&run.html_url) {
                    links.push(run.html_url.clone());
                }
                links
            };
            let streak = f64::from(s.streak.streak());
            emit(
                AlertKind::ConsecutiveFailures,
                sig,
                "consecutive_failures",
                streak,
                &links,
                &|_, _, _| {
                    let k = s.streak.streak();
                    let p = (1.0 - p0) * p0.powi(k as i32);
                    (
                        Severity::Critical,
                        format!("{k} consecutive failed runs"),
                        format!(
                            "{name} usually fails {:.1} % of runs (baseline of {base_runs} runs); the last {k} runs all failed, a streak that at that rate starts {}.",
                            p0 * 100.0,
                            per_runs(p)
                        ),
                    )
                },
            );
            // A problem's runs stay out of the baseline it is judged against.
            if s.failure.is_active() || s.streak.is_active() {
                s.failure_base.hold();
            } else {
                s.failure_base.observe(failed);
            }
        }

        let rerun = facts.attempt > 1 && facts.outcome == Outcome::Success;
        {
            let q0 = s.rerun_base.rate();
            let base_runs = s.rerun_base.learned();
            let (sig, value, stretch) = s.rerun.observe(rerun, &s.rerun_base, th.warmup);
            emit(
                AlertKind::RerunRate,
                sig,
                &s.rerun.metric("rerun_rate"),
                value,
                &link,
                &|score, _, t| {
                    let (n, k) = stretch;
                    if n == 0 {
                        return (
                            Severity::Warning,
                            format!(
                                "flaky: {:.0}% of runs pass only on a re-run (EWMA)",
                                score * 100.0
                            ),
                            format!(
                                "{:.1} % of {name}'s runs usually pass only on a re-run; the moving average rose to {:.0} %, over the fixed limit of {:.0} % in the rules.",
                                q0 * 100.0,
                                score * 100.0,
                                t * 100.0
                            ),
                        );
                    }
                    (
                        Severity::Warning,
                        format!("flaky: {k} of {n} runs pass only on a re-run"),
                        format!(
                            "{:.1} % of {name}'s runs usually pass only on a re-run (baseline of {base_runs} runs); {k} of the last {n} did, which at that rate has a chance of {}.",
                            q0 * 100.0,
                            one_in(binomial_tail(n, k, q0))
                        ),
                    )
                },
            );
            if s.rerun.is_active() {
                s.rerun_base.hold();
            } else {
                s.rerun_base.observe(rerun);
            }
        }

        if let Some(max) = th.max_failure_rate
            && st.seen >= u64::from(th.warmup)
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
            let n = st.window.len();
            emit(
                AlertKind::FailureRateThreshold,
                sig,
                "failure_rate_window",
                rate,
                &link,
                &|_, b, _| {
                    (
                        Severity::Critical,
                        format!(
                            "failure rate {:.0}% over the window exceeds {:.0}%",
                            rate * 100.0,
                            b * 100.0
                        ),
                        format!(
                            "{:.0} % of {key}'s last {n} runs failed, over the fixed limit of {:.0} % in the rules.",
                            rate * 100.0,
                            b * 100.0
                        ),
                    )
                },
            );
        }

        if s.last_run.0 != run.id.0 || s.last_run.1 != run.head_sha {
            s.last_run = (run.id.0, run.head_sha.clone());
        }
        merge(&mut self.active, &mut obs, &key, branch, fired, &recovered);
        for a in &obs.alerts {
            match self.problems.get_mut(&a.fingerprint) {
                Some(p) => p.fire(a),
                None => {
                    self.problems.insert(a.fingerprint.clone(), Problem::new(a));
                }
            }
        }
        for a in &obs.updated {
            if let Some(p) = self.problems.get_mut(&a.fingerprint) {
                p.last_alert = a.clone();
            }
        }
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

/// Folds one run's signal changes on `workflow`/`branch` into the open incidents: fired signals
/// open an incident or join the open one; recovered ones are marked; an incident whose signals
/// have all recovered resolves.
fn merge(
    active: &mut BTreeMap<Fingerprint, Alert>,
    obs: &mut Observation,
    workflow: &str,
    branch: &str,
    fired: Vec<AlertSignal>,
    recovered: &[AlertKind],
) {
    if fired.is_empty() && recovered.is_empty() {
        return;
    }
    let fp = Fingerprint::incident(workflow, branch);
    // Signals firing on the same run: the most severe first, the plainest (a streak) before
    // the statistics, so the opening kind and the title read naturally.
    let mut fired = fired;
    fired.sort_by_key(|s| (std::cmp::Reverse(s.severity), kind_rank(s.kind)));
    if !fired.is_empty() {
        match active.get_mut(&fp) {
            Some(open) => {
                let mut changed = false;
                for sig in fired {
                    changed |= open.absorb(sig);
                }
                if changed {
                    obs.updated.push(open.clone());
                }
            }
            None => {
                if let Some(a) = Alert::incident(workflow, branch, fired) {
                    active.insert(fp.clone(), a.clone());
                    obs.alerts.push(a);
                }
            }
        }
    }
    if let Some(open) = active.get_mut(&fp) {
        for kind in recovered {
            open.recover(*kind);
        }
        if open.all_recovered() {
            active.remove(&fp);
            obs.recovered.push(fp);
        }
    }
}

fn kind_rank(kind: AlertKind) -> u8 {
    match kind {
        AlertKind::ConsecutiveFailures => 0,
        AlertKind::FailureRate => 1,
        AlertKind::FailureRateThreshold => 2,
        AlertKind::RerunRate => 3,
        AlertKind::DurationShift => 4,
        AlertKind::DurationOutlier => 5,
        AlertKind::QueueShift => 6,
        AlertKind::QueueOutlier => 7,
        _ => 8,
    }
}

/// Drops the detectors of the least recently seen branch without an open incident.
fn forget_a_branch(
    branches: &mut HashMap<String, Stream, BuildHasherDefault<Fnv>>,
    workflow: &str,
    active: &BTreeMap<Fingerprint, Alert>,
) {
    let victim = branches
        .iter()
        .filter(|(b, _)| !active.contains_key(&Fingerprint::incident(workflow, b)))
        .min_by(|a, b| (a.1.last_seen, a.0).cmp(&(b.1.last_seen, b.0)))
        .map(|(b, _)| b.clone());
    if let Some(b) = victim {
        branches.remove(&b);
    }
}

mod signal;
mod stream;
#[cfg(test)]
mod tests;
