//! What the tests that run `flow monitor` against a GitHub-shaped server share: the binary in
//! a clean environment, the bundled sample as GitHub lists it, a jobs endpoint with no jobs,
//! an invocation off the async runtime (the fake servers keep answering), its JSON.
//!
//! `serve.rs` and `serve_replicas.rs` have their own copies still (edited elsewhere when this
//! was written); flow-telemetry's `fake_github::FakeRepo` is the stateful fake repository.

use std::process::{Command, Output};

use serde_json::Value;
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The `flow` binary without the variables of a developer's shell or a runner that change
/// what it does.
pub(crate) fn flow() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_flow"));
    for var in [
        "GITHUB_ACTIONS",
        "OPENAI_API_KEY",
        "GITHUB_TOKEN",
        "GITHUB_REPOSITORY",
        "FLOW_REPOSITORY",
        "FLOW_CONFIG",
        "FLOW_LLM_PROVIDER",
        "FLOW_OTLP_ENDPOINT",
        "FLOW_OTLP_HEADERS",
        "RUST_LOG",
    ] {
        c.env_remove(var);
    }
    c
}

/// The bundled sample's first `n` runs in GitHub's REST shape, oldest first.
pub(crate) fn sample_runs(n: usize) -> Vec<Value> {
    flow_telemetry::sample::ndjson()
        .unwrap()
        .lines()
        .take(n)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `GET /repos/{repo}/actions/runs/{id}/jobs` answers no jobs, for every run.
pub(crate) async fn mount_no_jobs(server: &MockServer, repo: &str) {
    Mock::given(method("GET"))
        .and(path_regex(format!(
            "^/repos/{repo}/actions/runs/[0-9]+/jobs$"
        )))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"total_count": 0, "jobs": []})),
        )
        .mount(server)
        .await;
}

/// Runs `cmd` on the blocking pool and returns its output.
pub(crate) async fn output(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

/// The JSON on stdout of a successful invocation (its stderr in the failure message).
pub(crate) fn success_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
