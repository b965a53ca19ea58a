//! Whole-history KPIs: exact counts and rates over every run seen, and duration percentiles
//! from a mergeable quantile sketch, alongside the windowed figures detection uses.
//!
//! A [`History`] folds runs one at a time in constant memory per workflow (counts, exact sums,
//! two DDSketches), in any order. Histories of shards or repositories [`merge`](History::merge)
//! into one, and merging equals folding every run at once: counts, sums and extremes exactly,
//! percentiles within the sketch's bound. They serialize (the sketches in DDSketch's standard
//! binary encoding, hex), so `flow report merge` can roll many up.
//!
//! # Figures and their bounds
//!
//! Per workflow ([`Run::workflow_key`]): `count` (completed), `in_progress`, the outcome rates
//! of the KPI table in the [crate documentation](crate) — exact; `rerun_rate` — exact;
//! `throughput_per_day` — completed runs per day between the first and last `created_at` (at
//! least one day); duration and queue time `n`, `mean`, `min`, `max` — exact; `p50`, `p90`,
//! `p95`, `p99` — the nearest-rank value (rank `⌈p/100 · n⌉`, the windowed definition) within a
//! relative error of [`RELATIVE_ERROR`] (1 %), rounded to the millisecond. Flakiness, MTTR and
//! streaks depend on order and stay windowed figures.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sketches_ddsketch::{Config, DDSketch};

use crate::error::{Error, Result};
use crate::model::{Outcome, Run};

/// The sketches' relative-error bound on a percentile.
pub const RELATIVE_ERROR: f64 = 0.01;

/// Version of the serialized [`History`].
pub const HISTORY_SCHEMA: &str = "flow-telemetry/history/1";

/// A mergeable distribution of millisecond values: exact count, sum and extremes, and a
/// DDSketch for percentiles.
#[derive(Clone)]
pub struct Distribution {
    n: u64,
    sum: i128,
    min: i64,
    max: i64,
    sketch: DDSketch,
}

impl std::fmt::Debug for Distribution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Distribution")
            .field("n", &self.n)
            .field("sum", &self.sum)
            .field("min", &self.min)
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

impl Default for Distribution {
    fn default() -> Self {
        Self {
            n: 0,
            sum: 0,
            min: i64::MAX,
            max: i64::MIN,
            sketch: DDSketch::new(Config::new(RELATIVE_ERROR, 2048, 1e-9)),
        }
    }
}

impl PartialEq for Distribution {
    fn eq(&self, other: &Self) -> bool {
        (self.n, self.sum, self.min, self.max) == (other.n, other.sum, other.min, other.max)
            && self.sketch.to_java_bytes() == other.sketch.to_java_bytes()
    }
}

impl Distribution {
    /// Adds one value (ms, non-negative in practice).
    pub fn add(&mut self, ms: i64) {
        self.n += 1;
        self.sum += i128::from(ms);
        self.min = self.min.min(ms);
        self.max = self.max.max(ms);
        self.sketch.add(ms as f64);
    }

    /// Folds `other` in.
    pub fn merge(&mut self, other: &Self) {
        if other.n == 0 {
            return;
        }
        self.n += other.n;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        // Both sketches are built with the same configuration, so merging cannot fail.
        let _ = self.sketch.merge(&other.sketch);
    }

    /// Number of values.
    pub fn count(&self) -> u64 {
        self.n
    }

    /// The nearest-rank `pct`-th percentile (rank `⌈pct/100 · n⌉`), within
    /// [`RELATIVE_ERROR`]; exact at the extremes. `None` when empty.
    pub fn percentile(&self, pct: f64) -> Option<i64> {
        if self.n == 0 {
            return None;
        }
        let n = self.n as f64;
        let rank = (pct / 100.0 * n).ceil().clamp(1.0, n); // 1-based
        if rank <= 1.0 {
            return Some(self.min);
        }
        if rank >= n {
            return Some(self.max);
        }
        // DDSketch reads rank ⌊q·(n−1)⌋ (0-based); aim at the middle of the wanted one.
        let q = ((rank - 1.0 + 0.5) / (n - 1.0)).min(1.0);
        let v = self.sketch.quantile(q).ok().flatten()?;
        Some((v.round() as i64).clamp(self.min, self.max))
    }

    /// Exact mean.
    pub fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum as f64 / self.n as f64)
    }

    fn figures(&self) -> Option<DistributionFigures> {
        (self.n > 0).then(|| DistributionFigures {
            n: self.n,
            mean: self.mean().unwrap_or_default(),
            min: self.min,
            max: self.max,
            p50: self.percentile(50.0).unwrap_or_default(),
            p90: self.percentile(90.0).unwrap_or_default(),
            p95: self.percentile(95.0).unwrap_or_default(),
            p99: self.percentile(99.0).unwrap_or_default(),
            sum: self.sum.to_string(),
            sketch: hex::encode(self.sketch.to_java_bytes()),
        })
    }

    fn from_figures(f: &DistributionFigures) -> Result<Self> {
        let bad = |why: &str| Error::parse("history distribution", why);
        let bytes = hex::decode(&f.sketch).map_err(|e| bad(&format!("`sketch`: {e}")))?;
        // The decoder is a third party's; a corrupt summary must be an error, never a crash.
        let sketch = std::panic::catch_unwind(|| DDSketch::from_java_bytes(&bytes))
            .map_err(|_| bad("`sketch` is corrupt"))?
            .map_err(|e| bad(&format!("`sketch`: {e:?}")))?;
        if sketch.count() as u64 != f.n {
            return Err(bad("`sketch` does not hold `n` values"));
        }
        let fresh = Self::default();
        let mut d = Self {
            n: f.n,
            sum: f.sum.parse().map_err(|_| bad("`sum` must be an integer"))?,
            min: f.min,
            max: f.max,
            sketch: fresh.sketch,
        };
        d.sketch
            .merge(&sketch)
            .map_err(|_| bad("`sketch` has another relative error"))?;
        Ok(d)
    }
}

/// A distribution as serialized: figures for readers, and what merging needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct DistributionFigures {
    n: u64,
    mean: f64,
    min: i64,
    max: i64,
    p50: i64,
    p90: i64,
    p95: i64,
    p99: i64,
    /// Exact sum, as a decimal string (it may exceed 2⁵³).
    sum: String,
    /// DDSketch standard binary encoding, hex.
    sketch: String,
}

/// Counts of one workflow over its whole history.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Completed runs.
    pub count: u64,
    /// Runs not completed.
    pub in_progress: u64,
    /// Concluded `success`.
    pub success: u64,
    /// `failure` with a failed step.
    pub failure: u64,
    /// `cancelled`.
    pub cancelled: u64,
    /// `timed_out`.
    pub timed_out: u64,
    /// `startup_failure` and runner errors.
    pub error: u64,
    /// Neutral, skipped, stale, unknown.
    pub other: u64,
    /// Completed runs with `run_attempt > 1`.
    pub reruns: u64,
}

impl Counts {
    fn merge(&mut self, o: &Self) {
        self.count += o.count;
        self.in_progress += o.in_progress;
        self.success += o.success;
        self.failure += o.failure;
        self.cancelled += o.cancelled;
        self.timed_out += o.timed_out;
        self.error += o.error;
        self.other += o.other;
        self.reruns += o.reruns;
    }
}

/// One workflow's whole history.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkflowHistory {
    /// Exact counts.
    pub counts: Counts,
    /// Earliest `created_at` of a completed run, unix ms (0 when unknown, as in the KPIs).
    pub first_created_at: Option<i64>,
    /// Latest `created_at` of a completed run, unix ms.
    pub last_created_at: Option<i64>,
    /// Durations of completed runs ([`Run::duration_ms`]).
    pub duration: Distribution,
    /// Queue times of first attempts ([`Run::queue_ms`]).
    pub queue: Distribution,
}

impl WorkflowHistory {
    fn add(&mut self, run: &Run) {
        let c = &mut self.counts;
        match run.outcome() {
            Outcome::InProgress => c.in_progress += 1,
            o => {
                c.count += 1;
                *match o {
                    Outcome::Success => &mut c.success,
                    Outcome::Failure => &mut c.failure,
                    Outcome::Cancelled => &mut c.cancelled,
                    Outcome::TimedOut => &mut c.timed_out,
                    Outcome::Error => &mut c.error,
                    _ => &mut c.other,
                } += 1;
                if run.run_attempt > 1 {
                    c.reruns += 1;
                }
                if let Some(d) = run.duration_ms() {
                    self.duration.add(d);
                }
                if let Some(q) = run.queue_ms() {
                    self.queue.add(q);
                }
                let t = run.created_at.unwrap_or(0);
                self.first_created_at = Some(self.first_created_at.map_or(t, |f| f.min(t)));
                self.last_created_at = Some(self.last_created_at.map_or(t, |l| l.max(t)));
            }
        }
    }

    fn merge(&mut self, o: &Self) {
        self.counts.merge(&o.counts);
        self.first_created_at = match (self.first_created_at, o.first_created_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_created_at = match (self.last_created_at, o.last_created_at) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.duration.merge(&o.duration);
        self.queue.merge(&o.queue);
    }

    /// Share of completed runs with `outcome`'s count `c`, 0 to 1.
    fn rate(&self, c: u64) -> f64 {
        if self.counts.count == 0 {
            0.0
        } else {
            c as f64 / self.counts.count as f64
        }
    }

    /// Completed runs per day between the first and last creation (at least one day).
    pub fn throughput_per_day(&self) -> f64 {
        let span = match (self.first_created_at, self.last_created_at) {
            (Some(a), Some(b)) => ((b - a) as f64 / 86_400_000.0).max(1.0),
            _ => 1.0,
        };
        self.counts.count as f64 / span
    }
}

/// Whole-history KPIs of every workflow seen, mergeable.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// By workflow key.
    pub workflows: BTreeMap<String, WorkflowHistory>,
    /// Malformed records skipped while reading (`--skip-invalid`).
    pub invalid: u64,
    /// Sources folded in (files, shards; 1 for one read).
    pub sources: u64,
}

impl History {
    /// An empty history of one source.
    pub fn new() -> Self {
        Self {
            sources: 1,
            ..Self::default()
        }
    }

    /// Folds one run in.
    pub fn add(&mut self, run: &Run) {
        let key = run.workflow_key();
        if let Some(w) = self.workflows.get_mut(key.as_ref()) {
            w.add(run);
        } else {
            let mut w = WorkflowHistory::default();
            w.add(run);
            self.workflows.insert(key.into_owned(), w);
        }
    }

    /// Folds `other` in (an organisation roll-up of repositories, or shards of one history).
    pub fn merge(&mut self, other: &Self) {
        for (k, w) in &other.workflows {
            self.workflows.entry(k.clone()).or_default().merge(w);
        }
        self.invalid += other.invalid;
        self.sources += other.sources;
    }

    /// Runs folded in, completed or not.
    pub fn runs(&self) -> u64 {
        self.workflows
            .values()
            .map(|w| w.counts.count + w.counts.in_progress)
            .sum()
    }

    /// Pretty JSON (see [`HISTORY_SCHEMA`]).
    pub fn to_json(&self) -> String {
        // Plain data: serializing cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Reads a history from JSON: a serialized [`History`], or any JSON object holding one under
    /// `history` (the `--json` output of `flow monitor`).
    ///
    /// # Errors
    /// [`ErrorKind::Parse`](crate::ErrorKind::Parse) naming the field that is wrong.
    pub fn from_json(text: &str) -> Result<Self> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| Error::parse("history", e))?;
        let v = match v.get("history") {
            Some(h) if v.get("schema").is_none() => h.clone(),
            _ => v,
        };
        serde_path_to_error::deserialize(v)
            .map_err(|e| Error::parse(format!("history at `{}`", e.path()), e.inner().to_string()))
    }
}

#[derive(Serialize, Deserialize)]
struct WorkflowWire {
    workflow: String,
    #[serde(flatten)]
    counts: Counts,
    #[serde(default)]
    success_rate: f64,
    #[serde(default)]
    failure_rate: f64,
    #[serde(default)]
    cancelled_rate: f64,
    #[serde(default)]
    timed_out_rate: f64,
    #[serde(default)]
    error_rate: f64,
    #[serde(default)]
    rerun_rate: f64,
    #[serde(default)]
    throughput_per_day: f64,
    first_created_at: Option<String>,
    last_created_at: Option<String>,
    duration_ms: Option<DistributionFigures>,
    queue_ms: Option<DistributionFigures>,
}

#[derive(Serialize, Deserialize)]
struct HistoryWire {
    schema: String,
    relative_error: f64,
    runs: u64,
    #[serde(default)]
    invalid: u64,
    #[serde(default)]
    sources: u64,
    workflows: Vec<WorkflowWire>,
}

impl Serialize for History {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let t = |ms: Option<i64>| ms.map(crate::model::ts::format_ms);
        HistoryWire {
            schema: HISTORY_SCHEMA.into(),
            relative_error: RELATIVE_ERROR,
            runs: self.runs(),
            invalid: self.invalid,
            sources: self.sources,
            workflows: self
                .workflows
                .iter()
                .map(|(k, w)| WorkflowWire {
                    workflow: k.clone(),
                    counts: w.counts.clone(),
                    success_rate: w.rate(w.counts.success),
                    failure_rate: w.rate(w.counts.failure),
                    cancelled_rate: w.rate(w.counts.cancelled),
                    timed_out_rate: w.rate(w.counts.timed_out),
                    error_rate: w.rate(w.counts.error),
                    rerun_rate: w.rate(w.counts.reruns),
                    throughput_per_day: w.throughput_per_day(),
                    first_created_at: t(w.first_created_at),
                    last_created_at: t(w.last_created_at),
                    duration_ms: w.duration.figures(),
                    queue_ms: w.queue.figures(),
                })
                .collect(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for History {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let w = HistoryWire::deserialize(d)?;
        if w.schema != HISTORY_SCHEMA {
            return Err(D::Error::custom(format!(
                "schema `{}`: expected `{HISTORY_SCHEMA}`",
                w.schema
            )));
        }
        let ts = |s: Option<String>| -> std::result::Result<Option<i64>, D::Error> {
            s.map(|s| {
                crate::model::ts::parse_rfc3339_ms(&s)
                    .ok_or_else(|| D::Error::custom(format!("`{s}` is not an RFC 3339 time")))
            })
            .transpose()
        };
        let dist = |f: Option<DistributionFigures>| -> std::result::Result<Distribution, D::Error> {
            f.map_or_else(
                || Ok(Distribution::default()),
                |f| Distribution::from_figures(&f).map_err(D::Error::custom),
            )
        };
        let mut workflows = BTreeMap::new();
        for wf in w.workflows {
            workflows.insert(
                wf.workflow,
                WorkflowHistory {
                    counts: wf.counts,
                    first_created_at: ts(wf.first_created_at)?,
                    last_created_at: ts(wf.last_created_at)?,
                    duration: dist(wf.duration_ms)?,
                    queue: dist(wf.queue_ms)?,
                },
            );
        }
        Ok(Self {
            workflows,
            invalid: w.invalid,
            sources: w.sources.max(1),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn extremes_are_exact_and_percentiles_close() {
        let mut d = Distribution::default();
        for v in 1..=1000 {
            d.add(v * 1000);
        }
        assert_eq!(d.percentile(0.0), Some(1000));
        assert_eq!(d.percentile(100.0), Some(1_000_000));
        let p90 = d.percentile(90.0).unwrap() as f64;
        assert!((p90 - 900_000.0).abs() <= 9_000.5, "{p90}");
        assert_eq!(d.mean(), Some(500_500.0));
    }

    #[test]
    fn serialized_history_merges_like_the_original() {
        let mut h = History::new();
        let run = |id: u64, d: i64| Run {
            id: crate::RunId(id),
            name: "CI".into(),
            status: crate::RunStatus::Completed,
            conclusion: Some(crate::Conclusion::Success),
            created_at: Some(0),
            run_started_at: Some(0),
            updated_at: Some(d),
            ..Run::default()
        };
        for i in 0..50 {
            h.add(&run(i, i as i64 * 37));
        }
        let back = History::from_json(&h.to_json()).unwrap();
        assert_eq!(back, h);
        let wrapped = format!("{{\"runs\":3,\"history\":{}}}", h.to_json());
        assert_eq!(History::from_json(&wrapped).unwrap(), h);
        let err = History::from_json(&h.to_json().replace("\"sketch\": \"", "\"sketch\": \"zz"))
            .unwrap_err();
        assert!(err.to_string().contains("sketch"), "{err}");
    }
}
