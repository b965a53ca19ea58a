//! Integration tests of the `flow` binary and the composite action.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod action_yml;
mod cli;
mod harness;
mod llm;
mod monitor;
mod rehearsal;
mod workflows;
