//! Waiting, injectable so tests of back-off never really wait.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clock::ManualClock;

/// Waits for a duration.
#[async_trait::async_trait]
pub trait Sleeper: Send + Sync + fmt::Debug {
    /// Returns after `duration` has passed.
    async fn sleep(&self, duration: Duration);
}

/// Sleeps with `tokio::time::sleep` (so it honours tokio's paused test time).
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioSleeper;

#[async_trait::async_trait]
impl Sleeper for TokioSleeper {
    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// Records requested sleeps and returns at once, advancing an optional [`ManualClock`] by each;
/// for tests. Clones share the record.
#[derive(Debug, Default, Clone)]
pub struct RecordingSleeper {
    slept: Arc<Mutex<Vec<Duration>>>,
    clock: Option<ManualClock>,
}

impl RecordingSleeper {
    /// A sleeper that only records.
    pub fn new() -> Self {
        Self::default()
    }

    /// A sleeper that advances `clock` by each requested duration.
    pub fn with_clock(clock: ManualClock) -> Self {
        Self {
            slept: Arc::default(),
            clock: Some(clock),
        }
    }

    /// Every duration requested so far, in order.
    pub fn slept(&self) -> Vec<Duration> {
        self.slept.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// The sum of every duration requested so far.
    pub fn total(&self) -> Duration {
        self.slept().iter().sum()
    }
}

#[async_trait::async_trait]
impl Sleeper for RecordingSleeper {
    async fn sleep(&self, duration: Duration) {
        if let Ok(mut v) = self.slept.lock() {
            v.push(duration);
        }
        if let Some(clock) = &self.clock {
            clock.advance(duration);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::Clock;

    #[tokio::test]
    async fn recording_sleeper_records_and_moves_its_clock() {
        let clock = ManualClock::new(0);
        let s = RecordingSleeper::with_clock(clock.clone());
        s.sleep(Duration::from_secs(2)).await;
        s.clone().sleep(Duration::from_millis(5)).await;
        assert_eq!(
            s.slept(),
            vec![Duration::from_secs(2), Duration::from_millis(5)]
        );
        assert_eq!(s.total(), Duration::from_millis(2_005));
        assert_eq!(clock.now_ms(), 2_005);
    }

    #[tokio::test(start_paused = true)]
    async fn tokio_sleeper_follows_tokio_time() {
        let start = tokio::time::Instant::now();
        TokioSleeper.sleep(Duration::from_secs(30)).await;
        assert!(start.elapsed() >= Duration::from_secs(30));
    }
}
