//! `flow-cache`: TTL cache for LLM responses: in memory (cached) or Redis, with single-flight and stale-if-error.
//!
//! This crate is being built; see the workspace `ARCHITECTURE.md` for what it will hold.
