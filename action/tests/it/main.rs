//! Integration tests of the `flow` binary and the composite action.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod action_yml;
mod cache;
mod cli;
/// flow-telemetry's fake GitHub (runs, issues, labels in GitHub's wire format).
#[path = "../../../crates/flow-telemetry/tests/it/fake_github.rs"]
#[allow(unreachable_pub, dead_code)]
mod fake_github;
mod harness;
mod llm;
mod monitor;
/// The binary, the sample, the jobs endpoint and invocations of the `flow monitor` tests.
mod monitor_support;
mod otlp;
/// The workspace's harness that starts a real `redis-server` (FLOW_REDIS_SERVER, else PATH).
#[path = "../../../crates/flow-cache/tests/it/redis_server.rs"]
#[allow(unreachable_pub, dead_code)]
mod redis_server;
mod rehearsal;
mod serve;
mod serve_replicas;
/// Harness of the `flow serve` tests (processes, HTTP, signed deliveries, Prometheus).
mod serve_support;
mod wiring;
mod workflows;

/// Reads one of flow-telemetry's fixtures (GitHub REST answers and webhook payloads, MIT,
/// GitHub: see its `NOTICE.md`).
pub(crate) fn telemetry_fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/flow-telemetry/tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// The name the fake GitHub reads its fixtures by.
pub(crate) fn fixture(name: &str) -> String {
    telemetry_fixture(name)
}
