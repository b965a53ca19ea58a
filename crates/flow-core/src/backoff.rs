//! Exponential back-off with full jitter, from an injectable source of randomness.
//!
//! Full jitter (a uniformly random wait between zero and a doubling ceiling) spreads the
//! retries of many clients that failed together, which plain exponential back-off keeps in
//! lockstep (AWS Architecture Blog, "Exponential Backoff and Jitter").

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A source of jitter: numbers in `[0, 1]` scaling a back-off ceiling.
pub trait Jitter: Send + Sync + fmt::Debug {
    /// A number in `[0, 1]`; values outside are clamped by [`Backoff::delay`].
    fn unit(&self) -> f64;
}

/// Jitter from the thread-local random generator (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomJitter;

impl Jitter for RandomJitter {
    fn unit(&self) -> f64 {
        rand::rng().random::<f64>()
    }
}

/// Reproducible jitter from a seed; for tests and simulations.
#[derive(Debug)]
pub struct SeededJitter(Mutex<StdRng>);

impl SeededJitter {
    /// A generator seeded with `seed`: the same seed gives the same sequence.
    pub fn new(seed: u64) -> Self {
        Self(Mutex::new(StdRng::seed_from_u64(seed)))
    }
}

impl Jitter for SeededJitter {
    fn unit(&self) -> f64 {
        self.0.lock().map_or(1.0, |mut rng| rng.random::<f64>())
    }
}

/// The same number every time: `FixedJitter::new(1.0)` makes back-off deterministic (the
/// ceiling itself).
#[derive(Debug, Clone, Copy)]
pub struct FixedJitter(f64);

impl FixedJitter {
    /// Always `unit` (clamped to `[0, 1]`; NaN is 1).
    pub fn new(unit: f64) -> Self {
        Self(if unit.is_nan() {
            1.0
        } else {
            unit.clamp(0.0, 1.0)
        })
    }
}

impl Jitter for FixedJitter {
    fn unit(&self) -> f64 {
        self.0
    }
}

/// Exponential back-off: before retry number `n` (1-based) the ceiling is
/// `base * 2^(n-1)`, capped at `max`; the wait is a jittered fraction of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first ceiling.
    pub base: Duration,
    /// The largest ceiling.
    pub max: Duration,
}

impl Default for Backoff {
    /// 500 ms doubling up to 8 s.
    fn default() -> Self {
        Self::new(Duration::from_millis(500), Duration::from_secs(8))
    }
}

impl Backoff {
    /// Ceilings from `base`, doubling, capped at `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        Self { base, max }
    }

    /// The ceiling before retry number `retry` (1-based; 0 counts as 1), saturating.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32
            .checked_shl(retry.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// The wait before retry number `retry`: `unit * ceiling` with `unit` from `jitter`
    /// (full jitter), never above [`Backoff::ceiling`].
    pub fn delay(&self, retry: u32, jitter: &dyn Jitter) -> Duration {
        self.delay_with_unit(retry, jitter.unit())
    }

    /// [`Backoff::delay`] with the jitter's number given (clamped to `[0, 1]`; NaN is 1).
    pub fn delay_with_unit(&self, retry: u32, unit: f64) -> Duration {
        let unit = if unit.is_nan() {
            1.0
        } else {
            unit.clamp(0.0, 1.0)
        };
        self.ceiling(retry).mul_f64(unit).min(self.ceiling(retry))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ceiling_doubles_and_caps() {
        let b = Backoff::default();
        assert_eq!(b.ceiling(0), Duration::from_millis(500));
        assert_eq!(b.ceiling(1), Duration::from_millis(500));
        assert_eq!(b.ceiling(2), Duration::from_secs(1));
        assert_eq!(b.ceiling(5), Duration::from_secs(8));
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(8));
        let huge = Backoff::new(Duration::MAX, Duration::MAX);
        assert_eq!(huge.ceiling(40), Duration::MAX, "saturates");
    }

    #[test]
    fn fixed_jitter_of_one_is_the_ceiling_and_zero_is_no_wait() {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        assert_eq!(b.delay(2, &FixedJitter::new(1.0)), Duration::from_secs(2));
        assert_eq!(b.delay(2, &FixedJitter::new(0.0)), Duration::ZERO);
        assert_eq!(
            b.delay(2, &FixedJitter::new(f64::NAN)),
            Duration::from_secs(2)
        );
        assert_eq!(b.delay_with_unit(3, 7.0), Duration::from_secs(4));
    }

    #[test]
    fn seeded_jitter_repeats_and_random_jitter_varies() {
        let (a, b) = (SeededJitter::new(7), SeededJitter::new(7));
        let xs: Vec<f64> = (0..8).map(|_| a.unit()).collect();
        let ys: Vec<f64> = (0..8).map(|_| b.unit()).collect();
        assert_eq!(xs, ys);
        assert!(xs.iter().all(|x| (0.0..=1.0).contains(x)));
        let r: Vec<f64> = (0..16).map(|_| RandomJitter.unit()).collect();
        assert!(r.iter().any(|x| (x - r[0]).abs() > f64::EPSILON), "{r:?}");
    }

    proptest! {
        #[test]
        fn jitter_stays_within_zero_and_the_ceiling(
            base_ms in 0u64..10_000,
            max_ms in 0u64..600_000,
            retry in 0u32..200,
            seed in any::<u64>(),
            unit in prop::num::f64::ANY,
        ) {
            let b = Backoff::new(Duration::from_millis(base_ms), Duration::from_millis(max_ms));
            let seeded = SeededJitter::new(seed);
            for d in [b.delay(retry, &seeded), b.delay(retry, &RandomJitter), b.delay_with_unit(retry, unit)] {
                prop_assert!(d <= b.ceiling(retry));
                prop_assert!(d <= b.max);
            }
        }
    }
}
