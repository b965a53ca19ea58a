//! Time as unix milliseconds, injectable so tests never sleep.
//!
//! The clock lives in flow-core, shared with the other crates; `flow_cache::{Clock,
//! SystemClock, ManualClock}` stay as re-exports. Envelopes keep unsigned times: the cache reads
//! [`Clock::now_unix_ms`].

pub use flow_core::{Clock, ManualClock, SystemClock};
