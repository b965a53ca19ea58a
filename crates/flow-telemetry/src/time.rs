//! Injected time: a [`Clock`] for "now" (unix ms) and a [`Sleeper`] for back-off waits.
//!
//! The types live in flow-core, shared with flow-cache, flow-llm and flow-github; these
//! re-exports keep the paths `flow_telemetry::time::*` and `flow_telemetry::Clock` working.

pub use flow_core::{
    Clock, FixedJitter, Jitter, ManualClock, RandomJitter, RecordingSleeper, SeededJitter, Sleeper,
    SystemClock, TokioSleeper,
};
