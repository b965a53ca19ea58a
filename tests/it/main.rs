//! Cross-crate end-to-end tests: one binary, modules per scenario.
//!
//! `monitor_loop` runs the whole loop — GitHub REST run source → KPIs → detectors → LLM
//! triage → GitHub issue sink — through the real HTTP clients of flow-telemetry and flow-llm,
//! against a local GitHub-shaped server (`github`) and a local OpenAI-shaped server (`openai`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub
)]

mod delegate;
mod github;
mod monitor_loop;
mod openai;
mod triage;
