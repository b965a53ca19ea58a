//! The built binary, driven as a user or a runner would.

use std::process::Command;

fn flow() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_flow"));
    c.env_remove("GITHUB_ACTIONS")
        .env_remove("OPENAI_API_KEY")
        .env_remove("GITHUB_TOKEN")
        .env_remove("GITHUB_REPOSITORY")
        .env_remove("FLOW_REPOSITORY")
        .env_remove("FLOW_CONFIG")
        .env_remove("FLOW_LLM_PROVIDER");
    c
}

#[test]
fn version_and_help() {
    let out = flow().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("flow {}\n", env!("CARGO_PKG_VERSION"))
    );
    let out = flow().arg("--help").output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for sub in ["delegate", "review-issue", "monitor", "publish"] {
        assert!(help.contains(sub), "{help}");
    }
}

#[test]
fn help_texts() {
    let get = |args: &[&str]| {
        let out = flow().args(args).env("COLUMNS", "100").output().unwrap();
        assert!(out.status.success(), "{args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    insta::assert_snapshot!("help", get(&["--help"]));
    insta::assert_snapshot!("help_monitor", get(&["monitor", "--help"]));
    insta::assert_snapshot!("help_delegate", get(&["delegate", "--help"]));
    insta::assert_snapshot!("help_publish", get(&["publish", "--help"]));
}

#[test]
fn actions_mode_failure_is_an_error_command_and_exit_1() {
    let out = flow()
        .env("GITHUB_ACTIONS", "true")
        .env("INPUT_COMMAND", "delegate")
        .env("INPUT_API-KEY", "sk-very-secret")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("::add-mask::sk-very-secret"));
    let err = lines.next().unwrap();
    assert!(err.starts_with("::error::"), "{stdout}");
    assert!(err.contains("--prompt"), "{stdout}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!stderr.contains("sk-very-secret"), "{stderr}");
}

#[test]
fn actions_mode_reads_inputs_in_both_spellings() {
    for var in ["INPUT_MAX-RUNS", "INPUT_MAX_RUNS"] {
        let out = flow()
            .env("GITHUB_ACTIONS", "true")
            .env("INPUT_COMMAND", "monitor")
            .env(var, "lots")
            .output()
            .unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_eq!(out.status.code(), Some(1), "{var}: {stdout}");
        assert!(
            stdout.starts_with("::error::")
                && stdout.contains("lots")
                && stdout.contains("max-runs"),
            "{var}: {stdout}"
        );
    }
}

#[test]
fn publish_release_dry_run_packages_and_prints_the_plan() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("LICENSE"), "MIT\n").unwrap();
    std::fs::write(dir.path().join("README.md"), "# flow\n").unwrap();
    let out = flow()
        .current_dir(dir.path())
        .args([
            "publish",
            "release",
            "--dry-run",
            "--json",
            "--tag",
            "v1.2.3",
            "--target",
            "x86_64-unknown-linux-musl",
            "--repo",
            "octo/app",
            "--commit",
            "0123456789abcdef0123456789abcdef01234567",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["dry_run"], true);
    let plan: Vec<&str> = v["plan"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(
        plan[0].starts_with("dry run: release v1.2.3 of octo/app"),
        "{plan:?}"
    );
    assert!(
        plan.iter().any(|l| l.contains("point tag v1 at")),
        "{plan:?}"
    );
    assert!(
        dir.path()
            .join("dist/flow-v1.2.3-x86_64-unknown-linux-musl.tar.gz")
            .exists()
    );
    let manifest = std::fs::read_to_string(dir.path().join("dist/manifest.json")).unwrap();
    assert!(
        flow_publish::Manifest::from_json(&manifest)
            .unwrap()
            .targets["x86_64-unknown-linux-musl"]
            .sha256
            .len()
            == 64
    );
}

#[test]
fn publish_package_then_manifest_merges_the_entries() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("bin"), b"fake binary").unwrap();
    std::fs::write(d.join("LICENSE"), "MIT\n").unwrap();
    std::fs::write(d.join("README.md"), "# flow\n").unwrap();
    for (target, out) in [
        ("x86_64-unknown-linux-musl", "linux"),
        ("x86_64-pc-windows-msvc", "windows"),
    ] {
        let mut cmd = flow();
        cmd.current_dir(d).args([
            "publish",
            "package",
            "--binary",
            "bin",
            "--tag",
            "v1.2.3",
            "--target",
            target,
            "--out-dir",
            out,
        ]);
        if out == "linux" {
            // One entry gets its URL when packaged, the other at the merge.
            cmd.args(["--download-base-url", "https://downloads.example/rel"]);
        }
        let status = cmd.status().unwrap();
        assert!(status.success());
    }
    let out = flow()
        .current_dir(d)
        .args([
            "publish",
            "manifest",
            "--entry",
            "linux/manifest.json",
            "windows/manifest.json",
            "--download-base-url",
            "https://github.com/o/r/releases/download",
            "--manifest-out",
            "action/manifest.json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "action/manifest.json: version 1.2.3, 2 targets: x86_64-pc-windows-msvc, \
         x86_64-unknown-linux-musl\n"
    );
    let text = std::fs::read_to_string(d.join("action/manifest.json")).unwrap();
    let m = flow_publish::Manifest::from_json(&text).unwrap();
    assert_eq!(m.format, flow_publish::MANIFEST_FORMAT);
    assert_eq!(
        m.targets["x86_64-unknown-linux-musl"].url.as_deref(),
        Some("https://downloads.example/rel/v1.2.3/flow-v1.2.3-x86_64-unknown-linux-musl.tar.gz")
    );
    assert_eq!(
        m.targets["x86_64-pc-windows-msvc"].url.as_deref(),
        Some(
            "https://github.com/o/r/releases/download/v1.2.3/flow-v1.2.3-x86_64-pc-windows-msvc.zip"
        )
    );

    // The same entry twice: exit 1, naming the file and the target; nothing written.
    let out = flow()
        .current_dir(d)
        .args([
            "publish",
            "manifest",
            "--entry",
            "linux/manifest.json",
            "linux/manifest.json",
            "--manifest-out",
            "again.json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(
            "linux/manifest.json: targets.x86_64-unknown-linux-musl: expected each target in one manifest only"
        ),
        "{stderr}"
    );
    assert!(!d.join("again.json").exists());

    // The schema the crate publishes, printed.
    let out = flow()
        .args(["publish", "manifest", "--print-schema"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(schema, flow_publish::manifest_schema());
}
