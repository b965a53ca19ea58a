//! `flow-llm`: Delegate decisions to an LLM over Chat Completions: typed answers, retries, fallback, cache, budgets.
//!
//! This crate is being built; see the workspace `ARCHITECTURE.md` for what it will hold.
