//! The clock, sleeper and jitter a retrying client waits with, as one value.

use std::sync::Arc;

use crate::backoff::{FixedJitter, Jitter, RandomJitter, SeededJitter};
use crate::clock::{Clock, ManualClock, SystemClock};
use crate::sleep::{RecordingSleeper, Sleeper, TokioSleeper};

/// Everything a client that waits and retries reads time through: the [`Clock`] ("now", for
/// `Retry-After` dates and rate-limit resets), the [`Sleeper`] (every wait) and the [`Jitter`]
/// (the back-off's randomness).
///
/// [`Timing::default`] is the real world: [`SystemClock`], [`TokioSleeper`], [`RandomJitter`].
/// Tests use [`Timing::manual`]: a [`ManualClock`], a [`RecordingSleeper`] (usually advancing
/// that clock) and [`FixedJitter`] `1.0`, so every back-off wait is its ceiling. Cloning shares
/// the three parts.
///
/// ```
/// use std::time::Duration;
/// use flow_orchestrator_core::{Clock, ManualClock, RecordingSleeper, Timing};
///
/// let clock = ManualClock::new(1_000);
/// let sleeper = RecordingSleeper::with_clock(clock.clone());
/// let timing = Timing::manual(clock.clone(), sleeper.clone()).with_seeded_jitter(7);
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// timing.sleeper.sleep(Duration::from_secs(2)).await;
/// # });
/// assert_eq!(timing.clock.now_ms(), 3_000);
/// assert_eq!(sleeper.slept(), vec![Duration::from_secs(2)]);
/// ```
#[derive(Debug, Clone)]
pub struct Timing {
    /// "Now" in unix milliseconds.
    pub clock: Arc<dyn Clock>,
    /// Every wait (back-off, `Retry-After`, rate-limit resets).
    pub sleeper: Arc<dyn Sleeper>,
    /// The randomness of the back-off.
    pub jitter: Arc<dyn Jitter>,
}

impl Default for Timing {
    /// The system clock, tokio's sleep and random jitter.
    fn default() -> Self {
        Self::new(
            Arc::new(SystemClock),
            Arc::new(TokioSleeper),
            Arc::new(RandomJitter),
        )
    }
}

impl Timing {
    /// The three parts given.
    pub fn new(clock: Arc<dyn Clock>, sleeper: Arc<dyn Sleeper>, jitter: Arc<dyn Jitter>) -> Self {
        Self {
            clock,
            sleeper,
            jitter,
        }
    }

    /// Deterministic timing for tests: `clock`, `sleeper` (which never waits; build it with
    /// [`RecordingSleeper::with_clock`] to move the clock by each wait) and [`FixedJitter`]
    /// `1.0` (every back-off wait is its ceiling). Keep clones of `clock` and `sleeper` to move
    /// time and read the waits.
    pub fn manual(clock: ManualClock, sleeper: RecordingSleeper) -> Self {
        Self::new(
            Arc::new(clock),
            Arc::new(sleeper),
            Arc::new(FixedJitter::new(1.0)),
        )
    }

    /// Replaces the clock.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Replaces the sleeper.
    #[must_use]
    pub fn with_sleeper(mut self, sleeper: Arc<dyn Sleeper>) -> Self {
        self.sleeper = sleeper;
        self
    }

    /// Replaces the jitter.
    #[must_use]
    pub fn with_jitter(mut self, jitter: Arc<dyn Jitter>) -> Self {
        self.jitter = jitter;
        self
    }

    /// Replaces the jitter with a [`SeededJitter`] from `seed` (reproducible back-off).
    #[must_use]
    pub fn with_seeded_jitter(self, seed: u64) -> Self {
        self.with_jitter(Arc::new(SeededJitter::new(seed)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use std::time::Duration;

    use super::*;
    use crate::Backoff;

    #[tokio::test]
    async fn manual_timing_never_waits_moves_its_clock_and_backs_off_to_the_ceiling() {
        let clock = ManualClock::new(10);
        let sleeper = RecordingSleeper::with_clock(clock.clone());
        let t = Timing::manual(clock.clone(), sleeper.clone());
        let backoff = Backoff::default();
        let wait = backoff.delay(2, t.jitter.as_ref());
        assert_eq!(wait, backoff.ceiling(2));
        t.clone().sleeper.sleep(wait).await;
        assert_eq!(sleeper.slept(), vec![Duration::from_secs(1)]);
        assert_eq!(t.clock.now_ms(), 1_010);
        clock.advance_ms(5);
        assert_eq!(
            t.clock.now_ms(),
            1_015,
            "the timing reads the caller's clock"
        );
    }

    #[test]
    fn seeded_jitter_repeats_and_setters_replace_one_part() {
        let a = Timing::default().with_seeded_jitter(3);
        let b = Timing::default().with_seeded_jitter(3);
        let xs: Vec<f64> = (0..4).map(|_| a.jitter.unit()).collect();
        let ys: Vec<f64> = (0..4).map(|_| b.jitter.unit()).collect();
        assert_eq!(xs, ys);
        assert!(xs.iter().any(|x| *x != xs[0]), "not a constant: {xs:?}");
        let fixed = Timing::default()
            .with_jitter(Arc::new(FixedJitter::new(0.25)))
            .with_clock(Arc::new(ManualClock::new(-4)));
        assert_eq!((fixed.jitter.unit(), fixed.clock.now_ms()), (0.25, -4));
    }

    #[test]
    fn the_default_is_the_real_world() {
        let t = Timing::default();
        assert!(t.clock.now_ms() > 1_577_836_800_000);
        let d = format!("{t:?}");
        assert!(
            d.contains("SystemClock") && d.contains("TokioSleeper") && d.contains("RandomJitter"),
            "{d}"
        );
    }
}
