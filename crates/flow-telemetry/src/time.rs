//! Injected time: a [`Clock`] for "now" and a [`Sleeper`] for back-off waits.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Source of the current time, in unix milliseconds.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Milliseconds since the unix epoch.
    fn now_ms(&self) -> i64;
}

/// A shared clock is a clock.
impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now_ms(&self) -> i64 {
        (**self).now_ms()
    }
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }
}

/// A clock that only moves when told; for tests.
#[derive(Debug, Default, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock reading `now_ms`.
    pub fn new(now_ms: i64) -> Self {
        Self(Arc::new(AtomicI64::new(now_ms)))
    }

    /// Moves the clock forward by `ms` milliseconds.
    pub fn advance_ms(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }

    /// Sets the clock to `now_ms`.
    pub fn set_ms(&self, now_ms: i64) {
        self.0.store(now_ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Waits for a duration; injected so tests of back-off never really wait.
#[async_trait::async_trait]
pub trait Sleeper: Send + Sync + std::fmt::Debug {
    /// Returns after `duration` has passed.
    async fn sleep(&self, duration: Duration);
}

/// Sleeps with `tokio::time::sleep`.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioSleeper;

#[async_trait::async_trait]
impl Sleeper for TokioSleeper {
    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// Records requested sleeps and returns at once, advancing an optional [`ManualClock`]; for tests.
#[derive(Debug, Default, Clone)]
pub struct RecordingSleeper {
    slept: Arc<std::sync::Mutex<Vec<Duration>>>,
    clock: Option<ManualClock>,
}

impl RecordingSleeper {
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
}

#[async_trait::async_trait]
impl Sleeper for RecordingSleeper {
    async fn sleep(&self, duration: Duration) {
        if let Ok(mut v) = self.slept.lock() {
            v.push(duration);
        }
        if let Some(clock) = &self.clock {
            clock.advance_ms(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX));
        }
    }
}
