//! `flow publish metadata | package | release`.

use anyhow::Context as _;
use serde_json::json;

use crate::action_yml;
use crate::cli::{MetadataArgs, PackageArgs};
use crate::report::Outcome;

/// Generates `action.yml` from the binary's inputs: writes it, prints it (`-`), or checks it.
pub(crate) fn metadata(args: &MetadataArgs) -> anyhow::Result<Outcome> {
    let meta = action_yml::action_metadata()?;
    let validation = meta.validate();
    if !validation.is_ok() {
        let errors: Vec<String> = validation.errors().map(|f| format!("{f:?}")).collect();
        anyhow::bail!("the generated action.yml is invalid: {}", errors.join("; "));
    }
    let yaml = action_yml::action_yml()?;
    let (inputs, outputs) = (meta.inputs.len(), meta.outputs.len());
    let target = args.output.display().to_string();
    if target == "-" {
        return Ok(Outcome {
            text: yaml,
            json: json!({"path": "-", "inputs": inputs, "outputs": outputs, "changed": false}),
            outputs: vec![("path".into(), "-".into())],
            ..Outcome::default()
        });
    }
    let current = std::fs::read_to_string(&args.output).ok();
    let changed = current.as_deref() != Some(yaml.as_str());
    if args.check {
        anyhow::ensure!(
            !changed,
            "{target} is out of date: run `flow publish metadata --output {target}`"
        );
    } else if changed {
        std::fs::write(&args.output, &yaml).with_context(|| format!("writing {target}"))?;
    }
    let verb = match (args.check, changed) {
        (true, _) => "is up to date",
        (false, true) => "written",
        (false, false) => "unchanged",
    };
    Ok(Outcome {
        text: format!("{target} {verb}: {inputs} inputs, {outputs} outputs\n"),
        json: json!({"path": target, "inputs": inputs, "outputs": outputs, "changed": changed}),
        outputs: vec![("path".into(), target.clone())],
        summary: Some(format!(
            "### flow publish metadata\n\n`{target}` {verb}: {inputs} inputs, {outputs} outputs.\n"
        )),
        annotations: Vec::new(),
    })
}

/// Builds the reproducible archive for one target and writes `manifest.json` beside it.
pub(crate) fn package(args: &PackageArgs) -> anyhow::Result<Outcome> {
    let target = args
        .target
        .clone()
        .context("--target is required: the triple the binary was built for")?;
    let binary = match &args.binary {
        Some(b) => b.clone(),
        None => std::env::current_exe().context("locating this binary (pass --binary)")?,
    };
    let version = args
        .tag
        .as_deref()
        .map_or(env!("CARGO_PKG_VERSION"), |t| t.trim_start_matches('v'))
        .to_owned();
    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("creating {}", args.out_dir.display()))?;
    let spec = flow_publish::ArchiveSpec::new(
        "flow",
        version,
        target.clone(),
        binary,
        &args.license,
        &args.readme,
    );
    let (assets, manifest) = flow_publish::package(&[spec], &args.out_dir)?;
    let archive = assets
        .iter()
        .find(|a| a.target == target)
        .context("flow-publish returned no archive for the target")?;
    let path = archive.path.display().to_string();
    Ok(Outcome {
        text: format!(
            "{path}\n  sha256 {}\n  {} bytes\nmanifest: {}\n",
            archive.sha256,
            archive.size,
            args.out_dir.join(flow_publish::MANIFEST_NAME).display()
        ),
        json: json!({
            "path": path,
            "sha256": archive.sha256,
            "size": archive.size,
            "manifest": serde_json::to_value(&manifest)?,
        }),
        outputs: vec![("path".into(), path)],
        summary: Some(format!(
            "### flow publish package\n\n| archive | sha256 | bytes |\n|---|---|---|\n| `{}` | `{}` | {} |\n",
            archive.name, archive.sha256, archive.size
        )),
        annotations: Vec::new(),
    })
}
