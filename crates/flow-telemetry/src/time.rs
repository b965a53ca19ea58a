//! Injected time: a [`Clock`] for "now" (unix ms) and a [`Sleeper`] for back-off waits, bundled
//! with the back-off's [`Jitter`] as a [`Timing`].
//!
//! The types live in flow-orchestrator-core, shared with flow-cache, flow-llm and flow-github; these
//! re-exports keep the paths `flow_telemetry::time::*` and `flow_telemetry::Clock` working.

pub use flow_orchestrator_core::{
    Clock, FixedJitter, Jitter, ManualClock, RandomJitter, RecordingSleeper, SeededJitter, Sleeper,
    SystemClock, Timing, TokioSleeper,
};
