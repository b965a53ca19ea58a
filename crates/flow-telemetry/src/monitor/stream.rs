//! The detectors of one workflow on one branch, and of one workflow.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use serde::{Deserialize, Serialize};

use super::{BASELINE_LAG, ChangeStart, OUTCOME_TESTS};
use crate::detect::{
    BernoulliCusum, Consecutive, Cusum, Ewma, RateBaseline, RobustZ, Signal, Streak,
};
use crate::kpi::RunFacts;
use crate::rules::Thresholds;

/// FNV-1a: workflow names are short, trusted keys, where SipHash's cost shows per run.
#[derive(Debug, Clone, Copy)]
pub(super) struct Fnv(u64);

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

/// A rate test: the sequential test from the budget, or an expert's fixed EWMA threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) enum RateTest {
    Sequential(BernoulliCusum),
    Ewma(Ewma),
}

impl RateTest {
    pub(super) fn new(
        shift: f64,
        ewma: Option<(f64, f64)>,
        warmup: u32,
        budget_per_1000: f64,
    ) -> Self {
        match ewma {
            Some((lambda, threshold)) => Self::Ewma(Ewma::new(lambda, threshold, warmup)),
            None => Self::Sequential(BernoulliCusum::new(shift, budget_per_1000)),
        }
    }

    pub(super) fn is_active(&self) -> bool {
        match self {
            Self::Sequential(c) => c.is_active(),
            Self::Ewma(e) => e.is_active(),
        }
    }

    /// Observes one indicator against `base` (the sequential test judges only once the base
    /// has `warmup` runs). Returns the signal, the rate seen and the stretch `(runs, hits)`
    /// behind it (`(0, 0)` for the EWMA).
    pub(super) fn observe(
        &mut self,
        hit: bool,
        base: &RateBaseline,
        warmup: u32,
    ) -> (Signal, f64, (u32, u32)) {
        let ready = base.learned() >= u64::from(warmup);
        match self {
            Self::Sequential(c) => {
                let sig = if ready {
                    c.observe(hit, base.rate())
                } else {
                    Signal::Quiet
                };
                let (n, k) = c.stretch();
                (sig, f64::from(k) / f64::from(n.max(1)), (n, k))
            }
            Self::Ewma(e) => {
                let sig = e.observe(hit);
                (sig, e.value(), (0, 0))
            }
        }
    }

    /// `name`, or `name_ewma` for the expert's EWMA.
    pub(super) fn metric(&self, name: &str) -> String {
        match self {
            Self::Sequential(_) => name.to_string(),
            Self::Ewma(_) => format!("{name}_ewma"),
        }
    }
}

/// The detectors of one workflow on one branch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Stream {
    pub(super) seen: u64,
    pub(super) last_seen: u64,
    pub(super) duration: RobustZ,
    pub(super) queue: RobustZ,
    pub(super) cusum: Cusum,
    pub(super) queue_cusum: Cusum,
    pub(super) failure_base: RateBaseline,
    pub(super) failure: RateTest,
    pub(super) streak: Streak,
    pub(super) streak_start_url: Option<String>,
    pub(super) rerun_base: RateBaseline,
    pub(super) rerun: RateTest,
    pub(super) over_duration: Consecutive,
    pub(super) over_queue: Consecutive,
    /// The last run observed: id and head SHA (for change-point commit ranges).
    #[serde(default)]
    pub(super) last_run: (u64, String),
    /// The duration CUSUM excursion under way, if any.
    #[serde(default)]
    pub(super) excursion: Option<ChangeStart>,
    /// Where the active duration change point started.
    #[serde(default)]
    pub(super) change: Option<ChangeStart>,
}

impl Stream {
    pub(super) fn new(th: &Thresholds) -> Self {
        let w = th.baseline_window as usize;
        let warm = th.warmup as usize;
        let share = th.false_alarms_per_1000_runs / OUTCOME_TESTS;
        Self {
            seen: 0,
            last_seen: 0,
            duration: RobustZ::new(w, th.duration_z, th.z_min_consecutive, warm)
                .with_recovery(th.recovery_runs),
            queue: RobustZ::new(w, th.queue_z, th.z_min_consecutive, warm)
                .with_recovery(th.recovery_runs)
                .with_lag(BASELINE_LAG),
            cusum: Cusum::new(
                th.change_point_k,
                th.change_point_h,
                th.change_point_clip,
                th.baseline_window,
            )
            .with_recovery(th.recovery_runs),
            queue_cusum: Cusum::new(
                th.queue_change_point_k,
                th.queue_change_point_h,
                th.change_point_clip,
                th.baseline_window,
            )
            .with_recovery(th.recovery_runs),
            failure_base: RateBaseline::new(BASELINE_LAG, th.rate_baseline_runs),
            failure: RateTest::new(
                th.failure_rate_shift,
                th.failure_ewma_threshold
                    .map(|t| (th.failure_ewma_lambda, t)),
                th.warmup,
                share,
            ),
            streak: Streak::new(),
            streak_start_url: None,
            rerun_base: RateBaseline::new(BASELINE_LAG, th.rate_baseline_runs),
            rerun: RateTest::new(
                th.rerun_rate_shift,
                th.rerun_ewma_threshold.map(|t| (th.rerun_ewma_lambda, t)),
                th.warmup,
                share,
            ),
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
            last_run: (0, String::new()),
            excursion: None,
            change: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct WorkflowState {
    pub(super) th: Thresholds,
    pub(super) window: VecDeque<RunFacts>,
    pub(super) window_failures: u32,
    pub(super) seen: u64,
    pub(super) over_failure_rate: bool,
    pub(super) branches: HashMap<String, Stream, BuildHasherDefault<Fnv>>,
}

impl WorkflowState {
    pub(super) fn new(th: Thresholds) -> Self {
        Self {
            window: VecDeque::new(),
            window_failures: 0,
            seen: 0,
            over_failure_rate: false,
            branches: HashMap::default(),
            th,
        }
    }
}
