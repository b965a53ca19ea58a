//! `flow-telemetry`: Real-time monitoring of GitHub Actions workflows: KPIs, anomaly detection, deduplicated issues.
//!
//! This crate is being built; see the workspace `ARCHITECTURE.md` for what it will hold.
