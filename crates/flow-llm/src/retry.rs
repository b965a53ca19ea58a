//! The retry decorator: exponential backoff with full jitter, honouring the server's wait.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use flow_orchestrator_core::Backoff;
use tracing::Instrument;

use crate::error::Result;
use crate::model::ChatModel;
use crate::protocol::{ChatRequest, ChatResponse};

pub use flow_orchestrator_core::{Sleeper, Timing, TokioSleeper};

/// When and how long to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// The first backoff ceiling; it doubles each retry.
    pub base_delay: Duration,
    /// The largest backoff ceiling.
    pub max_delay: Duration,
    /// The longest server-requested wait (`Retry-After`) we honour; longer asks fall back to
    /// our own backoff.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// No retries.
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }

    /// Sets the number of retries.
    #[must_use]
    pub fn with_max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// Sets the first backoff ceiling.
    #[must_use]
    pub fn with_base_delay(mut self, d: Duration) -> Self {
        self.base_delay = d;
        self
    }

    /// Sets the largest backoff ceiling.
    #[must_use]
    pub fn with_max_delay(mut self, d: Duration) -> Self {
        self.max_delay = d;
        self
    }

    /// The backoff ceiling before retry number `retry` (1-based): `base * 2^(retry-1)`,
    /// capped at `max_delay`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        self.backoff().ceiling(retry)
    }

    /// The back-off these settings describe (flow-orchestrator-core's, shared with flow-github).
    pub fn backoff(&self) -> Backoff {
        Backoff::new(self.base_delay, self.max_delay)
    }

    /// The wait before retry number `retry`: the server's `retry_after` when it is at most
    /// `max_retry_after`, else full jitter, `unit * ceiling` with `unit` in `[0, 1]`.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>, unit: f64) -> Duration {
        match retry_after {
            Some(d) if d <= self.max_retry_after => d,
            _ => self.backoff().delay_with_unit(retry, unit),
        }
    }
}

/// Retries the inner model on retryable errors ([`crate::Error::is_retryable`]), never
/// sleeping past the request's deadline. The response's `meta.attempts` counts the attempts,
/// and so does a final error's [`crate::Error::attempts`]. Cloning a `Retry` over a cloneable
/// model (such as [`crate::HttpClient`]) shares the connection pool and the [`Timing`].
#[derive(Clone)]
pub struct Retry<M> {
    inner: M,
    policy: RetryPolicy,
    timing: Timing,
}

impl<M> fmt::Debug for Retry<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<M: ChatModel> Retry<M> {
    /// Wraps `inner` with `policy`.
    pub fn new(inner: M, policy: RetryPolicy) -> Self {
        Self {
            inner,
            policy,
            timing: Timing::default(),
        }
    }

    /// Uses `timing`'s sleeper for the waits (tests record them: [`Timing::manual`]) and its
    /// jitter for the back-off. (Its clock is unused: deadlines are tokio instants.)
    #[must_use]
    pub fn with_timing(mut self, timing: Timing) -> Self {
        self.timing = timing;
        self
    }

    /// The wrapped model.
    pub fn inner(&self) -> &M {
        &self.inner
    }
}

#[async_trait]
impl<M: ChatModel> ChatModel for Retry<M> {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse> {
        let mut attempt = 1u32;
        // API attempts of the failed tries so far (an inner layer may report several).
        let mut spent = 0u32;
        loop {
            let span = tracing::debug_span!("flow.llm.attempt", attempt);
            match self.inner.complete(request).instrument(span).await {
                Ok(mut r) => {
                    r.meta.attempts = spent.saturating_add(r.meta.attempts.max(1));
                    return Ok(r);
                }
                Err(e) => {
                    spent = spent.saturating_add(e.attempts().max(1));
                    if !(e.is_retryable() && attempt <= self.policy.max_retries) {
                        return Err(e.with_attempts(spent));
                    }
                    let unit = self.timing.jitter.unit();
                    let delay = self.policy.delay(attempt, e.retry_after(), unit);
                    if let Some(deadline) = request.options.deadline
                        && tokio::time::Instant::now()
                            .checked_add(delay)
                            .is_none_or(|at| at >= deadline)
                    {
                        tracing::warn!(attempt, delay_ms = delay.as_millis() as u64, error = %e,
                            "not retrying: the wait would pass the deadline");
                        return Err(e.with_attempts(spent));
                    }
                    tracing::warn!(attempt, delay_ms = delay.as_millis() as u64, error = %e, "retrying");
                    self.timing.sleeper.sleep(delay).await;
                    attempt += 1;
                }
            }
        }
    }

    async fn invalidate(&self, request: &ChatRequest) {
        self.inner.invalidate(request).await;
    }

    async fn peek(&self, request: &ChatRequest) -> Option<ChatResponse> {
        self.inner.peek(request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ceiling_doubles_and_caps() {
        let p = RetryPolicy::default();
        assert_eq!(p.ceiling(1), Duration::from_millis(500));
        assert_eq!(p.ceiling(2), Duration::from_secs(1));
        assert_eq!(p.ceiling(5), Duration::from_secs(8));
        assert_eq!(p.ceiling(40), Duration::from_secs(8));
    }

    #[test]
    fn server_wait_wins_unless_too_long() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(3)), 0.5),
            Duration::from_secs(3)
        );
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(600)), 0.5),
            Duration::from_millis(250)
        );
    }

    proptest! {
        #[test]
        fn full_jitter_stays_under_the_ceiling(retry in 1u32..100, unit in 0.0f64..=1.0) {
            let p = RetryPolicy::default();
            let d = p.delay(retry, None, unit);
            prop_assert!(d <= p.ceiling(retry) && d <= p.max_delay);
        }
    }
}
