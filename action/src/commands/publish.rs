//! `flow publish metadata | package | manifest | release`.

use anyhow::Context as _;
use serde_json::json;

use crate::action_yml;
use crate::cli::{GlobalArgs, ManifestArgs, MetadataArgs, PackageArgs, ReleaseArgs};
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
        failure: None,
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
    let (assets, mut manifest) = flow_publish::package(&[spec], &args.out_dir)?;
    if let Some(base) = &args.download_base_url {
        // The entry carries its absolute URL from here on; `publish manifest` keeps it.
        manifest = manifest.with_download_base(base)?;
        let path = args.out_dir.join(flow_publish::MANIFEST_NAME);
        std::fs::write(&path, manifest.to_json()?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
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
        failure: None,
    })
}

/// Merges per-target manifests into the release manifest (or prints its JSON Schema).
pub(crate) fn manifest(args: &ManifestArgs) -> anyhow::Result<Outcome> {
    if args.print_schema {
        let schema = serde_json::to_string_pretty(&flow_publish::manifest_schema())?;
        return Ok(Outcome {
            text: format!("{schema}\n"),
            json: flow_publish::manifest_schema(),
            ..Outcome::default()
        });
    }
    anyhow::ensure!(
        !args.entry.is_empty(),
        "--entry is required: the per-target manifest.json files `flow publish package` wrote"
    );
    let parts = args
        .entry
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Ok(flow_publish::ManifestPart::parse(
                path.display().to_string(),
                &text,
            )?)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let merged = flow_publish::merge(&parts, args.download_base_url.as_deref())?;
    let json = merged.to_json()?;
    let target = args.manifest_out.display().to_string();
    let targets: Vec<&str> = merged.targets.keys().map(String::as_str).collect();
    let value = json!({
        "path": target,
        "version": merged.version,
        "targets": targets,
        "manifest": serde_json::to_value(&merged)?,
    });
    if target == "-" {
        return Ok(Outcome {
            text: json,
            json: value,
            outputs: vec![("path".into(), "-".into())],
            ..Outcome::default()
        });
    }
    if let Some(dir) = args
        .manifest_out
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&args.manifest_out, &json).with_context(|| format!("writing {target}"))?;
    let mut table = String::from("| target | asset | sha256 |\n|---|---|---|\n");
    for (triple, e) in &merged.targets {
        table.push_str(&format!(
            "| `{triple}` | `{}` | `{}` |\n",
            e.asset, e.sha256
        ));
    }
    Ok(Outcome {
        text: format!(
            "{target}: version {}, {} targets: {}\n",
            merged.version,
            targets.len(),
            targets.join(", ")
        ),
        json: value,
        outputs: vec![("path".into(), target.clone())],
        summary: Some(format!(
            "### flow publish manifest\n\n`{target}`, version {}:\n\n{table}",
            merged.version
        )),
        annotations: Vec::new(),
        failure: None,
    })
}

/// Packages this binary for `--target`, validates the generated metadata, and releases it
/// through the orchestrator: a GitHub release (draft, upload, verify, publish, major tag), or
/// with `--dry-run` the plan printed and nothing changed.
pub(crate) fn release(args: &ReleaseArgs, global: &GlobalArgs) -> anyhow::Result<Outcome> {
    let p = &args.package;
    let tag = p
        .tag
        .as_deref()
        .context("--tag is required: the release, e.g. v1.2.3")?;
    let version = tag.trim_start_matches('v').to_owned();
    let target = p
        .target
        .clone()
        .context("--target is required: the triple the binary was built for")?;
    let binary = match &p.binary {
        Some(b) => b.clone(),
        None => std::env::current_exe().context("locating this binary (pass --binary)")?,
    };
    let mut overlay = super::llm::Overlay::default();
    overlay.github(&args.github);
    let config = super::llm::config(global, &overlay)?;
    let (owner, repo) = config
        .repository()
        .context("--repo is required: the repository to release in (owner/name)")?;
    let commit = args
        .commit
        .clone()
        .context("--commit (or GITHUB_SHA) is required: the commit the tag points at")?;
    let notes = args
        .notes
        .as_deref()
        .map(super::llm::text_or_file)
        .transpose()?
        .unwrap_or_default();
    let request = flow_orchestrator::PublishRequest::new(owner, repo, &version, commit, &p.out_dir)
        .with_metadata(action_yml::action_metadata()?)
        .with_archive(flow_publish::ArchiveSpec::new(
            "flow", version, target, binary, &p.license, &p.readme,
        ))
        .with_notes(notes);
    let rt = super::llm::runtime()?;
    let _guard = rt.enter();
    let mut builder = super::llm::builder(&config, &overlay)?;
    let dry_run = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    if args.dry_run {
        builder = builder.with_publisher(std::sync::Arc::new(flow_publish::DryRunPublisher::new(
            SharedBuf(dry_run.clone()),
        )));
    }
    let report = rt.block_on(builder.build()?.publish(&request))?;
    let plan = dry_run
        .lock()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let url = report.release.html_url.clone().unwrap_or_default();
    let mut text = plan.clone();
    for a in &report.assets {
        text.push_str(&format!(
            "{}  sha256 {}  {} bytes\n",
            a.name, a.sha256, a.size
        ));
    }
    if !url.is_empty() {
        text.push_str(&format!("released: {url}\n"));
    }
    Ok(Outcome {
        summary: Some(format!(
            "### flow publish release {tag}\n\n{}\n",
            if args.dry_run {
                format!("Dry run:\n\n```\n{plan}```")
            } else {
                format!("Released: {url}")
            }
        )),
        json: json!({
            "tag": tag,
            "dry_run": args.dry_run,
            "url": url,
            "plan": plan.lines().collect::<Vec<_>>(),
            "assets": report.assets.iter().map(|a| json!({"name": a.name, "sha256": a.sha256, "size": a.size})).collect::<Vec<_>>(),
            "warnings": report.warnings.iter().map(|w| format!("{w:?}")).collect::<Vec<_>>(),
        }),
        outputs: vec![(
            "path".into(),
            if url.is_empty() { tag.to_owned() } else { url },
        )],
        text,
        annotations: Vec::new(),
        failure: None,
    })
}

/// A writer into a shared buffer, for the dry-run publisher.
#[derive(Debug)]
struct SharedBuf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("dry-run buffer poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
