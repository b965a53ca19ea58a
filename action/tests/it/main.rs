//! Integration tests of the `flow` binary and the composite action.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod action_yml;
mod cache;
mod cli;
mod harness;
mod llm;
mod monitor;
mod otlp;
/// The workspace's harness that starts a real `redis-server` (FLOW_REDIS_SERVER, else PATH).
#[path = "../../../crates/flow-cache/tests/it/redis_server.rs"]
#[allow(unreachable_pub, dead_code)]
mod redis_server;
mod rehearsal;
mod wiring;
mod workflows;
