//! Key performance indicators over a window of runs. Pure functions, no I/O.
//!
//! The formulas are in the crate documentation ([`crate`] § KPI formulas).

use std::collections::HashMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::model::{Job, Outcome, Run};

/// Nearest-rank quantiles and mean of a set of durations, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Summary {
    /// Number of values.
    pub n: u64,
    /// Arithmetic mean, ms.
    pub mean: f64,
    /// Median, ms.
    pub p50: i64,
    /// 90th percentile, ms.
    pub p90: i64,
    /// 95th percentile, ms.
    pub p95: i64,
    /// 99th percentile, ms.
    pub p99: i64,
}

impl Summary {
    /// Summarises `values` (reordered in place). `None` when empty. Linear time: the four
    /// ranks are selected in ascending order, each within what lies right of the previous.
    pub fn of(values: &mut [i64]) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        let n = values.len();
        let sum: i128 = values.iter().map(|&v| i128::from(v)).sum();
        let ranks = [50, 90, 95, 99].map(|p| rank(n, p) - 1);
        let mut out = [0i64; 4];
        let mut lo = 0;
        for (i, &k) in ranks.iter().enumerate() {
            if i > 0 && k == ranks[i - 1] {
                out[i] = out[i - 1];
                continue;
            }
            let (_, v, _) = values[lo..].select_nth_unstable(k - lo);
            out[i] = *v;
            lo = k + 1;
        }
        Some(Self {
            n: n as u64,
            mean: sum as f64 / n as f64,
            p50: out[0],
            p90: out[1],
            p95: out[2],
            p99: out[3],
        })
    }
}

/// The 1-based nearest rank of the `pct`-th percentile among `n` values: `ceil(pct/100 · n)`.
fn rank(n: usize, pct: usize) -> usize {
    (pct * n).div_ceil(100).clamp(1, n)
}

/// The few numbers of a run that the KPIs and detectors need; `Copy`, so windows of them are
/// cheap and bounded.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RunFacts {
    /// Run id.
    pub id: u64,
    /// Creation, unix ms (0 when unknown).
    pub created_at: i64,
    /// Completion (`updated_at`), unix ms (0 when unknown).
    pub completed_at: i64,
    /// [`Run::duration_ms`].
    pub duration_ms: Option<i64>,
    /// [`Run::queue_ms`].
    pub queue_ms: Option<i64>,
    /// [`Run::outcome`].
    pub outcome: Outcome,
    /// `run_attempt`.
    pub attempt: u32,
    /// FNV-1a hash of `head_sha`; 0 when the SHA is unknown.
    pub sha: u64,
    /// True when `head_branch` is the default branch.
    pub on_default_branch: bool,
}

impl RunFacts {
    /// Extracts the facts of `run`; `default_branch` decides [`RunFacts::on_default_branch`].
    pub fn from_run(run: &Run, default_branch: &str) -> Self {
        Self {
            id: run.id.0,
            created_at: run.created_at.unwrap_or(0),
            completed_at: run.updated_at.unwrap_or(0),
            duration_ms: run.duration_ms(),
            queue_ms: run.queue_ms(),
            outcome: run.outcome(),
            attempt: run.run_attempt,
            sha: fnv1a(run.head_sha.as_bytes()),
            on_default_branch: run.head_branch == default_branch,
        }
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    if bytes.is_empty() {
        return 0;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h.max(1)
}

/// The KPI values of one group of runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct KpiValues {
    /// Completed runs.
    pub count: u64,
    /// Runs not yet completed (excluded from every other figure).
    pub in_progress: u64,
    /// Share of completed runs that succeeded, 0 to 1.
    pub success_rate: f64,
    /// Share that failed with a failed step (test or build failures), 0 to 1.
    pub failure_rate: f64,
    /// Share cancelled, 0 to 1.
    pub cancelled_rate: f64,
    /// Share timed out, 0 to 1.
    pub timed_out_rate: f64,
    /// Share of errors: `startup_failure` and runner errors, 0 to 1.
    pub error_rate: f64,
    /// Run duration (latest attempt), ms.
    pub duration_ms: Option<Summary>,
    /// Queue time of first attempts, ms.
    pub queue_ms: Option<Summary>,
    /// Share of completed runs with `run_attempt > 1`.
    pub rerun_rate: f64,
    /// Share of distinct head SHAs that are flaky (a failure followed by a success).
    pub flaky_rate: f64,
    /// Mean time to recovery on the default branch, ms; `None` without a recovered incident.
    pub mttr_ms: Option<f64>,
    /// Recovered incidents on the default branch that MTTR averages.
    pub recoveries: u64,
    /// Longest run of consecutive failed runs.
    pub longest_failing_streak: u64,
    /// Completed runs per day of the window (the window counts as at least one day).
    pub throughput_per_day: f64,
}

impl KpiValues {
    /// The share of each outcome of completed runs, labelled as the reports and `/metrics`
    /// name them (`success`, `failure`, `cancelled`, `timed_out`, `error`).
    pub fn outcome_rates(&self) -> [(&'static str, f64); 5] {
        [
            ("success", self.success_rate),
            ("failure", self.failure_rate),
            ("cancelled", self.cancelled_rate),
            ("timed_out", self.timed_out_rate),
            ("error", self.error_rate),
        ]
    }
}

const DAY_MS: f64 = 86_400_000.0;

/// Computes the KPIs of `facts` (any order; they are sorted by creation time, then id, then
/// attempt).
pub fn compute(facts: &[RunFacts]) -> KpiValues {
    let mut done: Vec<RunFacts> = facts
        .iter()
        .filter(|f| f.outcome != Outcome::InProgress)
        .copied()
        .collect();
    let in_progress = (facts.len() - done.len()) as u64;
    // Windows arrive in order; sorting is only needed for out-of-order input.
    if !done.is_sorted_by_key(|f| (f.created_at, f.id, f.attempt)) {
        done.sort_by_key(|f| (f.created_at, f.id, f.attempt));
    }

    let mut counts = [0u64; 6];
    let mut durations = Vec::with_capacity(done.len());
    let mut queues = Vec::with_capacity(done.len());
    let mut reruns = 0u64;
    let mut streak = 0u64;
    let mut longest = 0u64;
    let mut incident_start: Option<i64> = None;
    let mut recovery_sum = 0f64;
    let mut recoveries = 0u64;
    // (sha, position, outcome, attempt), grouped by sha below; a sort beats hashing here.
    let mut by_sha: Vec<(u64, usize, Outcome, u32)> = Vec::with_capacity(done.len());

    for (pos, f) in done.iter().enumerate() {
        let slot = match f.outcome {
            Outcome::Success => 0,
            Outcome::Failure => 1,
            Outcome::Cancelled => 2,
            Outcome::TimedOut => 3,
            Outcome::Error => 4,
            _ => 5,
        };
        counts[slot] += 1;
        if let Some(d) = f.duration_ms {
            durations.push(d);
        }
        if let Some(q) = f.queue_ms {
            queues.push(q);
        }
        if f.attempt > 1 {
            reruns += 1;
        }
        if f.outcome.is_failed() {
            streak += 1;
            longest = longest.max(streak);
        } else if f.outcome == Outcome::Success {
            streak = 0;
        }
        if f.on_default_branch {
            if f.outcome.is_failed() && incident_start.is_none() {
                incident_start = Some(f.completed_at);
            } else if f.outcome == Outcome::Success
                && let Some(start) = incident_start.take()
            {
                recovery_sum += (f.completed_at - start).max(0) as f64;
                recoveries += 1;
            }
        }
        if f.sha != 0 {
            by_sha.push((f.sha, pos, f.outcome, f.attempt));
        }
    }
    by_sha.sort_unstable_by_key(|e| (e.0, e.1));
    let (mut distinct, mut flaky) = (0usize, 0usize);
    let mut i = 0;
    while i < by_sha.len() {
        let sha = by_sha[i].0;
        let (mut failed_before, mut is_flaky) = (false, false);
        while i < by_sha.len() && by_sha[i].0 == sha {
            let (_, _, outcome, attempt) = by_sha[i];
            if outcome.is_failed() {
                failed_before = true;
            } else if outcome == Outcome::Success && (failed_before || attempt > 1) {
                is_flaky = true;
            }
            i += 1;
        }
        distinct += 1;
        flaky += usize::from(is_flaky);
    }

    let count = done.len() as u64;
    let rate = |c: u64| {
        if count == 0 {
            0.0
        } else {
            c as f64 / count as f64
        }
    };
    let span_days = match (done.first(), done.last()) {
        (Some(a), Some(b)) => ((b.created_at - a.created_at) as f64 / DAY_MS).max(1.0),
        _ => 1.0,
    };
    KpiValues {
        count,
        in_progress,
        success_rate: rate(counts[0]),
        failure_rate: rate(counts[1]),
        cancelled_rate: rate(counts[2]),
        timed_out_rate: rate(counts[3]),
        error_rate: rate(counts[4]),
        duration_ms: Summary::of(&mut durations),
        queue_ms: Summary::of(&mut queues),
        rerun_rate: rate(reruns),
        flaky_rate: if distinct == 0 {
            0.0
        } else {
            flaky as f64 / distinct as f64
        },
        mttr_ms: (recoveries > 0).then(|| recovery_sum / recoveries as f64),
        recoveries,
        longest_failing_streak: longest,
        throughput_per_day: count as f64 / span_days,
    }
}

/// How to split runs into groups; every grouping is within a workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// One group per workflow.
    #[default]
    Workflow,
    /// One group per workflow and branch.
    Branch,
    /// One group per workflow and event.
    Event,
}

/// Identifies a group of runs.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub struct GroupKey {
    /// Workflow name (see [`Run::workflow_key`]).
    pub workflow: String,
    /// Branch, when grouped by branch.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub branch: Option<String>,
    /// Event, when grouped by event.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub event: Option<String>,
}

/// KPIs of one group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Kpis {
    /// The group.
    #[serde(flatten)]
    pub key: GroupKey,
    /// Its figures.
    #[serde(flatten)]
    pub values: KpiValues,
}

/// Computes the KPIs of `runs` per group, sorted by group key. MTTR uses `default_branch`.
pub fn kpis(runs: &[Run], group_by: GroupBy, default_branch: &str) -> Vec<Kpis> {
    let mut groups: HashMap<GroupKey, Vec<RunFacts>> = HashMap::new();
    for r in runs {
        let key = GroupKey {
            workflow: r.workflow_key().into_owned(),
            branch: (group_by == GroupBy::Branch).then(|| r.head_branch.clone()),
            event: (group_by == GroupBy::Event).then(|| r.event.clone()),
        };
        groups
            .entry(key)
            .or_default()
            .push(RunFacts::from_run(r, default_branch));
    }
    let mut out: Vec<Kpis> = groups
        .into_iter()
        .map(|(key, facts)| Kpis {
            key,
            values: compute(&facts),
        })
        .collect();
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

/// Duration figures of one job name, with its steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct JobKpis {
    /// Job name.
    pub name: String,
    /// Completed jobs of that name.
    pub count: u64,
    /// Job duration (`completed_at - started_at`), ms.
    pub duration_ms: Option<Summary>,
    /// Job queue time (`started_at - created_at`), ms.
    pub queue_ms: Option<Summary>,
    /// Runner errors: failed jobs without a failed step.
    pub runner_errors: u64,
    /// Step durations by step name, in first-seen order.
    pub steps: Vec<StepKpis>,
}

/// Duration figures of one step name within a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StepKpis {
    /// Step name.
    pub name: String,
    /// Step duration, ms.
    pub duration_ms: Option<Summary>,
}

/// Job and step duration KPIs per job name, sorted by name.
pub fn job_kpis(jobs: &[Job]) -> Vec<JobKpis> {
    let mut by_name: std::collections::BTreeMap<&str, Vec<&Job>> = Default::default();
    for j in jobs {
        by_name.entry(j.name.as_str()).or_default().push(j);
    }
    by_name
        .into_iter()
        .map(|(name, js)| {
            let mut d: Vec<i64> = js.iter().filter_map(|j| j.duration_ms()).collect();
            let mut q: Vec<i64> = js.iter().filter_map(|j| j.queue_ms()).collect();
            let mut step_names: Vec<&str> = Vec::new();
            let mut step_d: HashMap<&str, Vec<i64>> = HashMap::new();
            for s in js.iter().flat_map(|j| j.steps.iter()) {
                if !step_d.contains_key(s.name.as_str()) {
                    step_names.push(s.name.as_str());
                }
                let v = step_d.entry(s.name.as_str()).or_default();
                if let Some(x) = s.duration_ms() {
                    v.push(x);
                }
            }
            JobKpis {
                name: name.to_string(),
                count: js.iter().filter(|j| j.conclusion.is_some()).count() as u64,
                duration_ms: Summary::of(&mut d),
                queue_ms: Summary::of(&mut q),
                runner_errors: js.iter().filter(|j| j.is_runner_error()).count() as u64,
                steps: step_names
                    .into_iter()
                    .map(|n| StepKpis {
                        name: n.to_string(),
                        duration_ms: step_d.get_mut(n).and_then(|v| Summary::of(v)),
                    })
                    .collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    proptest::proptest! {
        #[test]
        fn selection_matches_a_full_sort(mut v in proptest::collection::vec(-50i64..50, 1..300)) {
            let mut sorted = v.clone();
            sorted.sort_unstable();
            let at = |p: f64| sorted[((p * sorted.len() as f64) - 1e-9).ceil().max(1.0) as usize - 1];
            let s = Summary::of(&mut v).unwrap();
            proptest::prop_assert_eq!((s.p50, s.p90, s.p95, s.p99), (at(0.5), at(0.9), at(0.95), at(0.99)));
        }
    }

    #[test]
    fn nearest_rank_matches_definition() {
        let mut v: Vec<i64> = (1..=100).rev().collect();
        let s = Summary::of(&mut v).unwrap();
        assert_eq!((s.p50, s.p90, s.p95, s.p99), (50, 90, 95, 99));
        assert!((s.mean - 50.5).abs() < 1e-9);
        let s1 = Summary::of(&mut [7]).unwrap();
        assert_eq!((s1.p50, s1.p99), (7, 7));
        assert!(Summary::of(&mut []).is_none());
    }
}
