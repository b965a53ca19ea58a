//! Wall-clock time in unix milliseconds, injectable so tests never sleep.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of wall-clock time in unix milliseconds.
///
/// Signed, like `chrono`'s `timestamp_millis` and every timestamp of flow-telemetry: the
/// difference of two readings (a rate-limit reset minus now) may be negative. Stores that keep
/// unsigned times (flow-cache's envelopes) read [`Clock::now_unix_ms`]. Wall-clock, not
/// monotonic: the readings cross process boundaries (Redis, state files).
pub trait Clock: Send + Sync + fmt::Debug {
    /// Milliseconds since the unix epoch.
    fn now_ms(&self) -> i64;

    /// [`Clock::now_ms`] as an unsigned count (0 before the epoch).
    fn now_unix_ms(&self) -> u64 {
        u64::try_from(self.now_ms()).unwrap_or(0)
    }

    /// [`Clock::now_ms`] as a [`SystemTime`] (for HTTP dates).
    fn now_system_time(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.now_unix_ms())
    }
}

/// A shared clock is a clock.
impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now_ms(&self) -> i64 {
        (**self).now_ms()
    }
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            Err(e) => i64::try_from(e.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
        }
    }
}

/// A clock that moves only when told to; clones share the same time.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    now: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock reading `start_ms` unix milliseconds.
    #[must_use]
    pub fn new(start_ms: i64) -> Self {
        Self {
            now: Arc::new(AtomicI64::new(start_ms)),
        }
    }

    /// Moves the clock forward by `by` (saturating).
    pub fn advance(&self, by: Duration) {
        self.advance_ms(i64::try_from(by.as_millis()).unwrap_or(i64::MAX));
    }

    /// Moves the clock by `ms` milliseconds (negative moves it back; saturating).
    pub fn advance_ms(&self, ms: i64) {
        let _ = self
            .now
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t.saturating_add(ms))
            });
    }

    /// Sets the clock to `ms` unix milliseconds (the unsigned form flow-cache's envelopes use;
    /// saturating).
    pub fn set(&self, ms: u64) {
        self.set_ms(i64::try_from(ms).unwrap_or(i64::MAX));
    }

    /// Sets the clock to `ms` unix milliseconds.
    pub fn set_ms(&self, ms: i64) {
        self.now.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told_and_clones_share_time() {
        let c = ManualClock::new(1_000);
        let d = c.clone();
        assert_eq!(c.now_ms(), 1_000);
        c.advance(Duration::from_millis(250));
        assert_eq!(d.now_ms(), 1_250);
        d.advance_ms(-50);
        assert_eq!(c.now_ms(), 1_200);
        d.set(7);
        assert_eq!(c.now_ms(), 7);
        c.set_ms(-5);
        assert_eq!((d.now_ms(), d.now_unix_ms()), (-5, 0));
        c.set_ms(i64::MAX);
        c.advance(Duration::MAX);
        assert_eq!(d.now_ms(), i64::MAX, "saturates");
    }

    #[test]
    fn system_clock_is_after_2020_and_agrees_with_system_time() {
        let ms = SystemClock.now_ms();
        assert!(ms > 1_577_836_800_000);
        let st = SystemClock.now_system_time();
        let back = st
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        assert!(back >= u128::try_from(ms).unwrap_or(0));
    }

    #[test]
    fn a_shared_clock_reads_the_same() {
        let c = Arc::new(ManualClock::new(42));
        let dynamic: Arc<dyn Clock> = c.clone();
        assert_eq!(
            (c.now_ms(), dynamic.now_ms(), dynamic.now_unix_ms()),
            (42, 42, 42)
        );
    }
}
