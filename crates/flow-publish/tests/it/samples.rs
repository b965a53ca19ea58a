//! Shared samples: fixtures and a generated action shaped like the `flow` binary's.

use std::path::PathBuf;

use flow_publish::{ActionMetadata, Branding, Runs, Step};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The crate's test fixtures directory.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A fixture's text.
pub fn fixture(path: &str) -> String {
    std::fs::read_to_string(fixtures_dir().join(path)).unwrap()
}

/// The workspace root (`CARGO_MANIFEST_DIR/../..`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn default_retries() -> u32 {
    3
}

/// Which operation to run.
#[derive(Debug, Default, JsonSchema, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verb {
    /// Ask the model for a decision.
    #[default]
    Delegate,
    /// Watch the workflow's health.
    Monitor,
}

/// Inputs of a binary like `flow`.
#[derive(Debug, JsonSchema, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code)]
pub struct Args {
    /// What to do.
    #[serde(default)]
    pub verb: Verb,
    /// The question to decide.
    ///
    /// Multi-line prompts are fine: the action passes them through `env:`.
    pub prompt: String,
    /// The model name.
    ///
    /// Any Chat Completions model your endpoint serves.
    #[serde(default)]
    pub model: Option<String>,
    /// Retries before giving up.
    #[serde(default = "default_retries")]
    pub max_retries: u32,
    /// Answer without calling the model (for tests).
    #[serde(default)]
    pub dry_run: bool,
}

/// Outputs of a binary like `flow`.
#[derive(Debug, JsonSchema, Serialize)]
#[allow(dead_code)]
pub struct Decision {
    /// The decision, as JSON.
    pub decision: String,
    /// Whether the answer came from the cache.
    pub cached: bool,
}

/// A composite action generated from [`Args`] and [`Decision`], as the action issue builds one.
pub fn generated_action() -> ActionMetadata {
    let meta = ActionMetadata::from_inputs::<Args>(
        "flow-orchestrator",
        "Delegate decisions to an LLM, watch workflow health,\nand ship releases.",
    )
    .unwrap()
    .with_outputs_from::<Decision>("run")
    .unwrap();
    let env = meta.inputs_env();
    meta.with_author("flow-orchestrator developers")
        .with_branding(Branding::new("zap", "purple"))
        .with_runs(Runs::composite(vec![
            Step::run(
                "Install flow",
                "bash",
                "set -euo pipefail\n\"$GITHUB_ACTION_PATH/install.sh\" \"$FLOW_VERSION\"\n",
            )
            .with_env("FLOW_VERSION", "${{ github.action_ref }}"),
            Step::run(
                "Run flow",
                "bash",
                "set -euo pipefail\nflow \"$INPUT_VERB\" --github-output\n",
            )
            .with_id("run")
            .with_envs(env),
        ]))
}
