//! `flow-orchestrator-core`: the small pieces every flow-orchestrator crate that waits or retries shares.
//!
//! - Time: [`Clock`] (unix milliseconds; [`SystemClock`], and [`ManualClock`] for tests) and
//!   [`Sleeper`] ([`TokioSleeper`], and [`RecordingSleeper`] for tests, which never waits).
//! - Retries: [`retry_after`] reads a server's requested wait (`retry-after-ms`, `Retry-After`
//!   in seconds or as an HTTP date), [`rate_limit_reset`] the wait until an exhausted
//!   `x-ratelimit-*` quota resets, and [`Backoff`] computes exponential back-off with full
//!   jitter from an injectable [`Jitter`] source ([`RandomJitter`], [`SeededJitter`],
//!   [`FixedJitter`]).
//! - [`Timing`] bundles the three (clock, sleeper, jitter) that every retrying client holds:
//!   `Timing::default()` for the real world, [`Timing::manual`] for tests.
//!
//! It knows nothing of HTTP clients: header lookups are closures, so flow-cache can use the
//! clock without pulling in an HTTP stack.
//!
//! # Example
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use flow_orchestrator_core::{Backoff, Clock, FixedJitter, ManualClock, retry_after};
//!
//! let clock = ManualClock::new(1_700_000_000_000);
//! clock.advance(Duration::from_secs(2));
//! assert_eq!(clock.now_ms(), 1_700_000_002_000);
//!
//! // The server's word first...
//! let headers = [("retry-after", "7")];
//! let get = |name: &str| headers.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
//! assert_eq!(retry_after(get, SystemTime::UNIX_EPOCH), Some(Duration::from_secs(7)));
//!
//! // ...else our own back-off: full jitter under a doubling ceiling.
//! let backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(8));
//! assert_eq!(backoff.ceiling(3), Duration::from_secs(2));
//! assert_eq!(backoff.delay(3, &FixedJitter::new(0.5)), Duration::from_secs(1));
//! ```

// The README's example, compiled and run with the doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod backoff;
mod clock;
mod retry_after;
mod sleep;
mod timing;

pub use backoff::{Backoff, FixedJitter, Jitter, RandomJitter, SeededJitter};
pub use clock::{Clock, ManualClock, SystemClock};
pub use retry_after::{MAX_SERVER_WAIT, rate_limit_reset, retry_after};
pub use sleep::{RecordingSleeper, Sleeper, TokioSleeper};
pub use timing::Timing;
