//! `flow-orchestrator`: Facade that composes flow-llm, flow-cache, flow-telemetry and flow-publish through their traits.
//!
//! This crate is being built; see the workspace `ARCHITECTURE.md` for what it will hold.
