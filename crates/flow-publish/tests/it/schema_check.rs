//! External validation: `check-jsonschema --builtin-schema vendor.github-actions` must accept
//! every action.yml this crate writes. The tool is installed by `scripts/tools` into
//! `<workspace>/.venv`; when it cannot be found these tests FAIL (they are never skipped).

use std::path::{Path, PathBuf};
use std::process::Command;

use flow_publish::{
    ActionMetadata, BRANDING_COLORS, BRANDING_ICONS, Branding, Runs, Step, is_branding_color,
    is_branding_icon,
};

use crate::samples::{fixture, generated_action, workspace_root};

/// `FLOW_CHECK_JSONSCHEMA`, else `<workspace>/.venv/bin/check-jsonschema`, else PATH.
fn check_jsonschema() -> PathBuf {
    if let Some(path) = std::env::var_os("FLOW_CHECK_JSONSCHEMA") {
        return PathBuf::from(path);
    }
    let venv = workspace_root().join(".venv/bin/check-jsonschema");
    if venv.is_file() {
        return venv;
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("check-jsonschema"))
            .find(|p| p.is_file())
    });
    on_path.unwrap_or_else(|| {
        panic!(
            "check-jsonschema not found: run `scripts/tools` (installs it into {}), or set FLOW_CHECK_JSONSCHEMA, or put it on PATH",
            workspace_root().join(".venv").display()
        )
    })
}

/// Runs the vendored GitHub Actions schema over `files`; returns (success, combined output).
fn run_schema(files: &[PathBuf]) -> (bool, String) {
    let tool = check_jsonschema();
    let out = Command::new(&tool)
        .arg("--builtin-schema")
        .arg("vendor.github-actions")
        .args(files)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", tool.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn write(dir: &Path, name: &str, meta: &ActionMetadata) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, meta.to_yaml().unwrap()).unwrap();
    path
}

/// Every action.yml shape this crate writes in its tests and docs.
fn written_samples() -> Vec<(&'static str, ActionMetadata)> {
    let read = |p: &str| ActionMetadata::from_yaml(&fixture(p)).unwrap();
    vec![
        ("generated.yml", generated_action()),
        ("composite.yml", read("actions/composite.yml")),
        ("node.yml", read("actions/node.yml")),
        ("docker.yml", read("actions/docker.yml")),
        (
            "minimal.yml",
            ActionMetadata::new("m", "minimal")
                .with_runs(Runs::composite(vec![Step::run("s", "bash", "true")])),
        ),
    ]
}

#[test]
fn vendored_schema_accepts_every_written_action() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = written_samples()
        .iter()
        .map(|(name, meta)| write(dir.path(), name, meta))
        .collect();
    let (ok, output) = run_schema(&files);
    assert!(
        ok,
        "check-jsonschema rejected a written action.yml:\n{output}"
    );
}

#[test]
fn vendored_schema_rejects_a_broken_action() {
    // Guards the test above against a tool that accepts anything.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.yml");
    std::fs::write(&path, "name: x\nruns:\n  using: composite\n").unwrap();
    let (ok, output) = run_schema(&[path]);
    assert!(
        !ok,
        "expected a rejection (description missing), got:\n{output}"
    );
}

/// The schema vendored in check-jsonschema has lagged GitHub's docs on branding (the color
/// `black`, some icons). This test checks the documented table on both sides: our validator
/// accepts every documented value, and the pinned check-jsonschema (see `scripts/tools`) does
/// too. If a schema version lags again, the failure lists the values it rejects.
#[test]
fn branding_table_matches_githubs_docs_and_the_vendored_schema() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let base = |branding| {
        ActionMetadata::new("b", "branding sample")
            .with_branding(branding)
            .with_runs(Runs::composite(vec![Step::run("s", "bash", "true")]))
    };
    for color in BRANDING_COLORS {
        let meta = base(Branding::new("zap", *color));
        assert!(
            meta.validate().is_ok(),
            "our validator rejects documented color {color}"
        );
        files.push(write(dir.path(), &format!("color-{color}.yml"), &meta));
    }
    for icon in BRANDING_ICONS {
        let meta = base(Branding::new(*icon, "blue"));
        assert!(
            meta.validate().is_ok(),
            "our validator rejects documented icon {icon}"
        );
        files.push(write(dir.path(), &format!("icon-{icon}.yml"), &meta));
    }
    assert!(is_branding_color("black") && is_branding_icon("zap"));
    let (ok, output) = run_schema(&files);
    if !ok {
        let rejected: Vec<String> = files
            .iter()
            .filter_map(|f| f.file_name()?.to_str().map(str::to_owned))
            .filter(|name| output.contains(name.as_str()))
            .collect();
        panic!(
            "check-jsonschema's vendored schema lags GitHub's docs; it rejects: {rejected:?}\n{output}"
        );
    }
}

/// The repository's own action metadata, once the action issue has written it.
#[test]
fn repository_action_yml_is_valid_when_present() {
    let path = workspace_root().join("action/action.yml");
    if !path.is_file() {
        eprintln!("{} does not exist yet; nothing to check", path.display());
        return;
    }
    let meta = ActionMetadata::read(&path).unwrap();
    let v = meta.validate();
    assert!(v.is_ok(), "{}", meta.validate().into_result().unwrap_err());
    let (ok, output) = run_schema(&[path]);
    assert!(ok, "check-jsonschema rejected action/action.yml:\n{output}");
}
