//! Generates an action.yml from a Rust input type, validates it, packages a (stand-in) binary
//! into reproducible archives with a manifest, and dry-runs the release flow.
//!
//! Run with `cargo run -p flow-examples --example publish_dry_run`.

use std::io::Write;

use flow_publish::{
    ActionMetadata, ArchiveSpec, Branding, DEFAULT_TARGETS, DryRunPublisher, Publisher,
    ReleasePlan, Runs, Step, changelog_section, package,
};

/// Inputs of the example binary.
#[derive(schemars::JsonSchema, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code)]
struct Inputs {
    /// The question to decide.
    prompt: String,
    /// Retries before giving up.
    #[serde(default)]
    max_retries: u32,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();

    // 1. action.yml from the input type; inputs reach the script only through env.
    let meta = ActionMetadata::from_inputs::<Inputs>("example", "An example action")?;
    let env = meta.inputs_env();
    let meta = meta
        .with_branding(Branding::new("zap", "blue"))
        .with_runs(Runs::composite(vec![
            Step::run(
                "Run",
                "bash",
                "set -euo pipefail\nexample \"$INPUT_PROMPT\"\n",
            )
            .with_envs(env),
        ]));
    let warnings = meta.validate().into_result()?;
    writeln!(out, "{}", meta.to_yaml()?)?;
    writeln!(out, "validation: ok, {} warning(s)\n", warnings.len())?;

    // 2. Reproducible archives and the manifest.
    let work = std::env::temp_dir().join(format!("flow-publish-example-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    for (name, text) in [
        ("example", "#!/bin/sh\necho hi\n"),
        ("LICENSE", "MIT\n"),
        ("README.md", "# example\n"),
    ] {
        std::fs::write(work.join(name), text)?;
    }
    let specs: Vec<ArchiveSpec> = DEFAULT_TARGETS
        .iter()
        .map(|t| {
            ArchiveSpec::new(
                "example",
                "1.0.0",
                *t,
                work.join("example"),
                work.join("LICENSE"),
                work.join("README.md"),
            )
            .with_mtime(0)
        })
        .collect();
    let (assets, manifest) = package(&specs, &work.join("dist"))?;
    writeln!(out, "{}", manifest.to_json()?)?;

    // 3. The release flow, printed instead of sent.
    let notes = changelog_section("## [1.0.0]\n\n- First release.\n", "1.0.0")?;
    let plan = ReleasePlan::new(
        "octo",
        "example",
        "1.0.0",
        "aa218f56b14c9653891f9e74264a383fa43fefbd",
        notes,
        assets,
    )?;
    drop(out);
    DryRunPublisher::new(std::io::stdout())
        .release(&plan)
        .await?;
    std::fs::remove_dir_all(&work)?;
    Ok(())
}
