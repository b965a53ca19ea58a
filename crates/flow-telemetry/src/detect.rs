//! Streaming detectors: constant work per observation (bounded by a fixed window), no I/O.
//!
//! Each detector has hysteresis: it reports [`Signal::Fire`] once when its condition starts to
//! hold and [`Signal::Recover`] once when it has cleared, so one problem gives one alert.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// What one observation did to a detector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Signal {
    /// Nothing changed.
    Quiet,
    /// The condition started to hold.
    Fire {
        /// The statistic that crossed (z-score, EWMA, CUSUM, count, value).
        score: f64,
        /// The baseline it was compared with.
        baseline: f64,
        /// The threshold crossed.
        threshold: f64,
    },
    /// The condition cleared.
    Recover,
}

/// Median and MAD of the last `cap` values, updated in `O(cap)` memory moves per value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollingMedian {
    ring: VecDeque<f64>,
    sorted: Vec<f64>,
    cap: usize,
}

impl RollingMedian {
    /// A window of `cap` (at least 1) values.
    pub fn new(cap: usize) -> Self {
        let cap = cap.max(1);
        Self {
            ring: VecDeque::with_capacity(cap),
            sorted: Vec::with_capacity(cap),
            cap,
        }
    }

    /// Adds `x`, evicting the oldest value when full.
    pub fn push(&mut self, x: f64) {
        if self.ring.len() == self.cap
            && let Some(old) = self.ring.pop_front()
        {
            let i = self.sorted.partition_point(|v| *v < old);
            if i < self.sorted.len() {
                self.sorted.remove(i);
            }
        }
        self.ring.push_back(x);
        let i = self.sorted.partition_point(|v| *v < x);
        self.sorted.insert(i, x);
    }

    /// Values held.
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// The median (lower median for even counts); 0 when empty.
    pub fn median(&self) -> f64 {
        match self.sorted.len() {
            0 => 0.0,
            n => self.sorted[(n - 1) / 2],
        }
    }

    /// Median absolute deviation from the median; 0 when empty. `O(n)`: the deviations below
    /// and above the median are two sorted runs, merged up to the middle rank.
    pub fn mad(&self) -> f64 {
        let n = self.sorted.len();
        if n == 0 {
            return 0.0;
        }
        let m = (n - 1) / 2;
        let med = self.sorted[m];
        // Left deviations grow as i goes down from m; right ones as j goes up from m+1.
        let (mut i, mut j) = (m as isize, m + 1);
        let target = (n - 1) / 2;
        let mut last = 0.0;
        for _ in 0..=target {
            let l = if i >= 0 {
                Some(med - self.sorted[i as usize])
            } else {
                None
            };
            let r = if j < n {
                Some(self.sorted[j] - med)
            } else {
                None
            };
            match (l, r) {
                (Some(a), Some(b)) if a <= b => {
                    last = a;
                    i -= 1;
                }
                (Some(a), None) => {
                    last = a;
                    i -= 1;
                }
                (_, Some(b)) => {
                    last = b;
                    j += 1;
                }
                (None, None) => break,
            }
        }
        last
    }
}

/// Robust z-score of each value against the rolling median and MAD of the values before it:
/// `z = 0.6745 · (x − median) / MAD`. Fires after `min_consecutive` values with `z > threshold`
/// (upward only: faster is never a problem), recovers after `recovery` values in a row below
/// it (by default `2 · min_consecutive + 3`, see [`RobustZ::with_recovery`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RobustZ {
    window: RollingMedian,
    threshold: f64,
    min_consecutive: u32,
    warmup: usize,
    streak: u32,
    calm: u32,
    recovery: u32,
    active: bool,
    last: Option<(f64, f64)>,
}

impl RobustZ {
    /// A detector over a `window`-value baseline, silent for the first `warmup` values.
    pub fn new(window: usize, threshold: f64, min_consecutive: u32, warmup: usize) -> Self {
        Self {
            window: RollingMedian::new(window),
            threshold,
            min_consecutive: min_consecutive.max(1),
            warmup: warmup.max(3),
            streak: 0,
            calm: 0,
            recovery: 2 * min_consecutive.max(1) + 3,
            active: false,
            last: None,
        }
    }

    /// This detector recovering after `runs` (at least 1) values in a row at or below the
    /// threshold.
    #[must_use]
    pub fn with_recovery(mut self, runs: u32) -> Self {
        self.recovery = runs.max(1);
        self
    }

    /// The baseline `(median, sigma)` the last observation was scored against; `None` while
    /// warming up.
    pub fn last_baseline(&self) -> Option<(f64, f64)> {
        self.last
    }

    /// The baseline median and a robust standard deviation (`1.4826 · MAD`, floored at 1% of
    /// the median or 1).
    pub fn baseline(&self) -> (f64, f64) {
        let med = self.window.median();
        let sigma = (1.4826 * self.window.mad()).max(med.abs() * 0.01).max(1.0);
        (med, sigma)
    }

    /// Values seen so far (up to the window).
    pub fn len(&self) -> usize {
        self.window.len()
    }

    /// True when no value was seen.
    pub fn is_empty(&self) -> bool {
        self.window.is_empty()
    }

    /// True while an alarm is raised and not recovered.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Clears a raised alarm without a [`Signal::Recover`]: the current level is accepted.
    pub fn accept(&mut self) {
        self.active = false;
        self.streak = 0;
        self.calm = 0;
    }

    /// Observes `x`.
    pub fn observe(&mut self, x: f64) -> Signal {
        let mut signal = Signal::Quiet;
        self.last = None;
        if self.window.len() >= self.warmup {
            let (med, sigma) = self.baseline();
            self.last = Some((med, sigma));
            // 0.6745 · (x − med) / MAD = (x − med) / (1.4826 · MAD).
            let z = (x - med) / sigma;
            if z > self.threshold {
                self.streak += 1;
                self.calm = 0;
                if !self.active && self.streak >= self.min_consecutive {
                    self.active = true;
                    signal = Signal::Fire {
                        score: z,
                        baseline: med,
                        threshold: self.threshold,
                    };
                }
            } else {
                self.streak = 0;
                self.calm += 1;
                if self.active && self.calm >= self.recovery {
                    self.active = false;
                    signal = Signal::Recover;
                }
            }
        }
        self.window.push(x);
        signal
    }
}

/// One-sided (upward) CUSUM on values standardized by a baseline:
/// `S = max(0, S + clip(z, ±c) − k)`, fires when `S > h`, then resets and stays silent for
/// `cooldown` values while the baseline adapts to the new level.
///
/// It recovers once `recovery` values in a row (see [`Cusum::with_recovery`]) are back within
/// the baseline from before the shift: at most `2·k` of its standard deviations above its mean
/// (`k` is half the shift the detector is tuned for, so such values are no longer shifted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cusum {
    k: f64,
    h: f64,
    clip: f64,
    s: f64,
    cooldown: u32,
    left: u32,
    recovery: u32,
    calm: u32,
    /// The `(mean, sigma)` in force when it fired, while the alarm is active.
    before: Option<(f64, f64)>,
}

impl Cusum {
    /// A detector with slack `k`, threshold `h`, clip `clip` and `cooldown` values of silence
    /// after an alarm.
    pub fn new(k: f64, h: f64, clip: f64, cooldown: u32) -> Self {
        Self {
            k,
            h,
            clip,
            s: 0.0,
            cooldown,
            left: 0,
            recovery: 9,
            calm: 0,
            before: None,
        }
    }

    /// This detector recovering after `runs` (at least 1, default 9) values in a row back
    /// within the pre-shift baseline.
    #[must_use]
    pub fn with_recovery(mut self, runs: u32) -> Self {
        self.recovery = runs.max(1);
        self
    }

    /// True between an alarm and its recovery.
    pub fn is_active(&self) -> bool {
        self.before.is_some()
    }

    /// The accumulated statistic `S` (0 when no excursion is under way).
    pub fn sum(&self) -> f64 {
        self.s
    }

    /// The `(mean, sigma)` from before the shift, while the alarm is active.
    pub fn before(&self) -> Option<(f64, f64)> {
        self.before
    }

    /// Clears an active alarm without a [`Signal::Recover`]: the shifted level becomes the
    /// new normal.
    pub fn accept(&mut self) {
        self.before = None;
        self.calm = 0;
    }

    /// Observes `x` against a baseline `mean` and `sigma`.
    pub fn observe(&mut self, x: f64, mean: f64, sigma: f64) -> Signal {
        if let Some((m0, s0)) = self.before {
            if (x - m0) / s0.max(f64::MIN_POSITIVE) <= 2.0 * self.k {
                self.calm += 1;
            } else {
                self.calm = 0;
            }
            if self.calm >= self.recovery {
                self.before = None;
                self.calm = 0;
                // The cooldown may still run: the baseline is still adapting back.
                return Signal::Recover;
            }
        }
        if self.left > 0 {
            self.left -= 1;
            return Signal::Quiet;
        }
        let z = ((x - mean) / sigma.max(f64::MIN_POSITIVE)).clamp(-self.clip, self.clip);
        self.s = (self.s + z - self.k).max(0.0);
        if self.s > self.h {
            let score = self.s;
            self.s = 0.0;
            self.left = self.cooldown;
            if self.before.is_none() {
                self.before = Some((mean, sigma));
            }
            self.calm = 0;
            return Signal::Fire {
                score,
                baseline: mean,
                threshold: self.h,
            };
        }
        Signal::Quiet
    }
}

/// Exponentially weighted moving average of a 0/1 indicator: `e = λ·x + (1 − λ)·e`, started at
/// 0. Fires when `e > threshold` after `warmup` values; recovers when `e < threshold / 2`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ewma {
    lambda: f64,
    threshold: f64,
    warmup: u32,
    n: u32,
    value: f64,
    active: bool,
}

impl Ewma {
    /// A detector with smoothing `lambda` and `threshold`.
    pub fn new(lambda: f64, threshold: f64, warmup: u32) -> Self {
        Self {
            lambda,
            threshold,
            warmup,
            n: 0,
            value: 0.0,
            active: false,
        }
    }

    /// The current average.
    pub fn value(&self) -> f64 {
        self.value
    }

    /// Observes one indicator.
    pub fn observe(&mut self, hit: bool) -> Signal {
        let before = self.value;
        self.value = self.lambda * f64::from(u8::from(hit)) + (1.0 - self.lambda) * self.value;
        self.n = self.n.saturating_add(1);
        if self.n < self.warmup {
            return Signal::Quiet;
        }
        if !self.active && self.value > self.threshold {
            self.active = true;
            return Signal::Fire {
                score: self.value,
                baseline: before,
                threshold: self.threshold,
            };
        }
        if self.active && self.value < self.threshold / 2.0 {
            self.active = false;
            return Signal::Recover;
        }
        Signal::Quiet
    }
}

/// Fires when `n` consecutive observations hold; recovers at the first that does not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Consecutive {
    n: u32,
    streak: u32,
    active: bool,
}

impl Consecutive {
    /// A rule needing `n` in a row (0 disables it).
    pub fn new(n: u32) -> Self {
        Self {
            n,
            streak: 0,
            active: false,
        }
    }

    /// The current streak.
    pub fn streak(&self) -> u32 {
        self.streak
    }

    /// Observes one indicator.
    pub fn observe(&mut self, hit: bool) -> Signal {
        if self.n == 0 {
            return Signal::Quiet;
        }
        if hit {
            self.streak += 1;
            if !self.active && self.streak >= self.n {
                self.active = true;
                return Signal::Fire {
                    score: f64::from(self.streak),
                    baseline: 0.0,
                    threshold: f64::from(self.n),
                };
            }
        } else {
            self.streak = 0;
            if self.active {
                self.active = false;
                return Signal::Recover;
            }
        }
        Signal::Quiet
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    fn naive_median_mad(v: &[f64]) -> (f64, f64) {
        let mut s = v.to_vec();
        s.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let med = s[(s.len() - 1) / 2];
        let mut d: Vec<f64> = s.iter().map(|x| (x - med).abs()).collect();
        d.sort_by(|a, b| a.partial_cmp(b).unwrap());
        (med, d[(d.len() - 1) / 2])
    }

    proptest! {
        #[test]
        fn rolling_median_and_mad_match_naive(values in proptest::collection::vec(0u32..1000, 1..200), cap in 1usize..40) {
            let mut rm = RollingMedian::new(cap);
            for (i, v) in values.iter().enumerate() {
                rm.push(f64::from(*v));
                let lo = (i + 1).saturating_sub(cap);
                let window: Vec<f64> = values[lo..=i].iter().map(|v| f64::from(*v)).collect();
                let (m, d) = naive_median_mad(&window);
                prop_assert_eq!(rm.median(), m);
                prop_assert_eq!(rm.mad(), d);
            }
        }
    }

    #[test]
    fn robust_z_fires_once_on_a_sustained_rise_and_recovers() {
        let mut z = RobustZ::new(31, 3.5, 3, 10);
        let mut fires = 0;
        for i in 0..100 {
            let x = 100.0 + f64::from(i % 7);
            assert_eq!(z.observe(x), Signal::Quiet);
        }
        for _ in 0..5 {
            if matches!(z.observe(300.0), Signal::Fire { .. }) {
                fires += 1;
            }
        }
        assert_eq!(fires, 1);
        let recovered = (0..20).any(|i| z.observe(100.0 + f64::from(i % 7)) == Signal::Recover);
        assert!(recovered);
    }

    #[test]
    fn cusum_recovers_after_runs_back_within_the_pre_shift_baseline() {
        let mut c = Cusum::new(1.0, 12.0, 4.0, 61).with_recovery(5);
        // A 4-sigma shift against a fixed baseline fires within a few runs.
        let fired =
            (0..10).position(|_| matches!(c.observe(140.0, 100.0, 10.0), Signal::Fire { .. }));
        assert!(fired.is_some() && c.is_active());
        // Still shifted: the baseline the caller passes adapts, the pre-shift one does not.
        for _ in 0..50 {
            assert_eq!(c.observe(140.0, 140.0, 10.0), Signal::Quiet);
        }
        // 2·k sigma above the old mean is still "within"; one value above resets the count.
        let back = [
            110.0, 120.0, 100.0, 125.0, 100.0, 100.0, 100.0, 100.0, 100.0,
        ];
        let sigs: Vec<Signal> = back.iter().map(|&x| c.observe(x, 140.0, 10.0)).collect();
        assert_eq!(sigs.iter().position(|s| *s == Signal::Recover), Some(8));
        assert!(!c.is_active());
        for _ in 0..100 {
            assert_eq!(c.observe(100.0, 100.0, 10.0), Signal::Quiet);
        }
    }

    #[test]
    fn robust_z_recovery_runs_are_configurable() {
        let calm_runs = |recovery: u32| {
            let mut z = RobustZ::new(31, 3.5, 3, 10).with_recovery(recovery);
            for i in 0..60 {
                z.observe(100.0 + f64::from(i % 7));
            }
            for _ in 0..3 {
                z.observe(300.0);
            }
            (1..=40).find(|i| z.observe(100.0 + f64::from(i % 7)) == Signal::Recover)
        };
        assert_eq!(calm_runs(9), Some(9));
        assert_eq!(calm_runs(2), Some(2));
    }

    #[test]
    fn single_spike_does_not_fire() {
        let mut z = RobustZ::new(31, 3.5, 3, 10);
        let mut c = Cusum::new(0.5, 10.0, 4.0, 31);
        for i in 0..200 {
            let x = if i % 50 == 49 {
                400.0
            } else {
                100.0 + f64::from(i % 5)
            };
            let (m, s) = z.baseline();
            if z.len() >= 10 {
                assert_eq!(c.observe(x, m, s), Signal::Quiet, "cusum at {i}");
            }
            assert_eq!(z.observe(x), Signal::Quiet, "z at {i}");
        }
    }

    #[test]
    fn ewma_and_consecutive_have_hysteresis() {
        let mut e = Ewma::new(0.2, 0.4, 5);
        let mut c = Consecutive::new(3);
        let seq = [
            false, false, false, false, false, true, true, true, true, false, false, false, false,
            false, false,
        ];
        let ef: Vec<Signal> = seq.iter().map(|&h| e.observe(h)).collect();
        let cf: Vec<Signal> = seq.iter().map(|&h| c.observe(h)).collect();
        assert_eq!(
            ef.iter()
                .filter(|s| matches!(s, Signal::Fire { .. }))
                .count(),
            1
        );
        assert_eq!(ef.iter().filter(|s| **s == Signal::Recover).count(), 1);
        assert!(matches!(cf[7], Signal::Fire { .. }));
        assert_eq!(cf[9], Signal::Recover);
    }
}
