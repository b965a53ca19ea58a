//! `flow-publish`: Ship a Rust binary as a GitHub Action: typed action.yml, reproducible archives, idempotent releases.
//!
//! This crate is being built; see the workspace `ARCHITECTURE.md` for what it will hold.
