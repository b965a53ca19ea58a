//! Integration tests of flow-telemetry.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

mod coord;
mod events;
mod evidence;
mod fake_github;
mod github_source;
mod history;
mod ingest;
mod issue_sink;
mod kpi_props;
mod otlp;
mod quality;
/// The Redis test harness of flow-cache (starts its own `redis-server`), shared by path.
#[path = "../../../flow-cache/tests/it/redis_server.rs"]
#[allow(unreachable_pub, dead_code)]
mod redis_server;
mod reports;
mod rules;
mod sample;
mod session;
mod state_lock;
mod watch;

/// Reads a fixture from `tests/fixtures`.
pub(crate) fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}
