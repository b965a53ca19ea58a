//! The release path rehearsed locally, as `release.yml` and a user's runner walk it: package the
//! host's `flow` binary with `flow publish package`, merge its manifest with a second (fixture)
//! entry with `flow publish manifest`, check the result against the JSON Schema flow-publish
//! publishes, serve the archives from a local HTTP server, and run the composite action's steps
//! with the runner's variables. No GitHub, no network beyond loopback.

use std::path::{Path, PathBuf};
use std::process::Command;

use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::harness::{Runner, fake_cargo, run_blocking};

const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The second entry of the manifest: a platform this host is not.
const FIXTURE_TARGET: &str = "x86_64-pc-windows-msvc";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The host's target triple and the runner's `RUNNER_OS` / `RUNNER_ARCH` for it.
fn host() -> (String, &'static str, &'static str) {
    let arch = std::env::consts::ARCH;
    let (triple, os) = match std::env::consts::OS {
        "linux" => (format!("{arch}-unknown-linux-gnu"), "Linux"),
        "macos" => (format!("{arch}-apple-darwin"), "macOS"),
        other => {
            panic!("the rehearsal runs the action's bash steps on Linux or macOS, not {other}")
        }
    };
    let runner_arch = match arch {
        "x86_64" => "X64",
        "aarch64" => "ARM64",
        other => panic!("no GitHub runner architecture for {other}"),
    };
    (triple, os, runner_arch)
}

fn flow(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_flow"))
        .current_dir(dir)
        .env_remove("GITHUB_ACTIONS")
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "flow {args:?}: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

/// `FLOW_CHECK_JSONSCHEMA`, else `<repo>/.venv/bin/check-jsonschema` (from `scripts/tools`).
fn check_jsonschema(schema: &Path, instance: &Path) -> (bool, String) {
    let tool = std::env::var_os("FLOW_CHECK_JSONSCHEMA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv/bin/check-jsonschema"));
    let out = Command::new(&tool)
        .arg("--schemafile")
        .arg(schema)
        .arg(instance)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}): run `scripts/tools`, or set FLOW_CHECK_JSONSCHEMA",
                tool.display()
            )
        });
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// What the release jobs leave behind: the merged manifest and the host archive's bytes.
struct Release {
    _dir: tempfile::TempDir,
    manifest: String,
    asset: String,
    archive: Vec<u8>,
}

/// The build job of the host's matrix entry: `flow publish package` of the host binary, done
/// once per test binary (compressing 60 MB is the slow part). Returns the directory holding
/// `dist/host/{archive,manifest.json}`.
fn packaged_host() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("LICENSE"), "MIT OR Apache-2.0\n").unwrap();
        std::fs::write(d.join("README.md"), "# flow\n").unwrap();
        let (triple, _, _) = host();
        flow(
            d,
            &[
                "publish",
                "package",
                "--binary",
                env!("CARGO_BIN_EXE_flow"),
                "--target",
                &triple,
                "--tag",
                &format!("v{VERSION}"),
                "--out-dir",
                "dist/host",
            ],
        );
        dir
    })
    .path()
}

/// The host's packaged entry plus the fixture entry, merged with URLs into `server`, as the
/// release workflow's merge job does.
fn release_for(server: &MockServer) -> Release {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let host_dist = packaged_host().join("dist/host");
    let (triple, _, _) = host();
    let base = server.uri();
    // Another matrix entry, as its job would have uploaded it.
    std::fs::create_dir_all(d.join("dist/windows")).unwrap();
    std::fs::write(
        d.join("dist/windows/manifest.json"),
        serde_json::json!({"format": 1, "version": VERSION, "targets": {FIXTURE_TARGET: {
            "asset": format!("flow-v{VERSION}-{FIXTURE_TARGET}.zip"),
            "sha256": "0".repeat(64)}}})
        .to_string(),
    )
    .unwrap();
    // The merge job.
    let host_manifest = host_dist.join("manifest.json");
    let text = flow(
        d,
        &[
            "publish",
            "manifest",
            "--entry",
            host_manifest.to_str().unwrap(),
            "dist/windows/manifest.json",
            "--download-base-url",
            &base,
            "--manifest-out",
            "action/manifest.json",
        ],
    );
    assert_eq!(
        text,
        format!("action/manifest.json: version {VERSION}, 2 targets: {FIXTURE_TARGET}, {triple}\n")
    );
    let manifest_path = d.join("action/manifest.json");
    let (ok, report) = check_jsonschema(
        &repo().join("crates/flow-publish/manifest.schema.json"),
        &manifest_path,
    );
    assert!(
        ok,
        "the merged manifest does not match the published schema: {report}"
    );
    let manifest = std::fs::read_to_string(&manifest_path).unwrap();
    let parsed = flow_publish::Manifest::from_json(&manifest).unwrap();
    let asset = parsed.targets[&triple].asset.clone();
    assert_eq!(
        parsed.targets[&triple].url.as_deref(),
        Some(format!("{base}/v{VERSION}/{asset}").as_str())
    );
    let archive = std::fs::read(host_dist.join(&asset)).unwrap();
    assert_eq!(
        parsed.targets[&triple].sha256,
        flow_publish::sha256_hex(&archive)
    );
    Release {
        _dir: dir,
        manifest,
        asset,
        archive,
    }
}

async fn serve(server: &MockServer, asset: &str, bytes: Vec<u8>, times: u64) {
    Mock::given(method("GET"))
        .and(path(format!("/v{VERSION}/{asset}")))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(bytes))
        .expect(times)
        .mount(server)
        .await;
}

fn host_runner(manifest: &str) -> Runner {
    let (_, os, arch) = host();
    let mut runner = Runner::with_manifest_text(manifest)
        .input("command", "publish metadata")
        .input("output", "-");
    runner.os = os.into();
    runner.arch = arch.into();
    runner
}

#[tokio::test(flavor = "multi_thread")]
async fn the_released_host_binary_installs_from_the_merged_manifest_and_runs() {
    let server = MockServer::start().await;
    let release = release_for(&server);
    serve(&server, &release.asset, release.archive.clone(), 1).await;

    let (runner, run) = run_blocking(host_runner(&release.manifest)).await;
    assert_eq!(run.code("install"), Some(0), "{}", run.stdout);
    assert_eq!(run.step_outputs["install"]["found"], "true");
    assert!(!run.ran("restore") && !run.ran("fallback") && !run.ran("save"));
    assert_eq!(run.code("run"), Some(0), "{}", run.stdout);
    // The binary that ran is the one packaged, byte for byte.
    let installed = PathBuf::from(&run.step_outputs["install"]["bin"]);
    assert!(installed.starts_with(runner.path("toolcache/flow")));
    assert_eq!(
        std::fs::read(&installed).unwrap(),
        std::fs::read(env!("CARGO_BIN_EXE_flow")).unwrap()
    );
    assert!(
        run.stdout.contains("name: flow-orchestrator"),
        "{}",
        run.stdout
    );
    server.verify().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tampered_archive_fails_closed() {
    let server = MockServer::start().await;
    let release = release_for(&server);
    let mut tampered = release.archive.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    serve(&server, &release.asset, tampered, 1).await;

    let (runner, run) = run_blocking(host_runner(&release.manifest)).await;
    assert_eq!(run.code("install"), Some(1), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("::error title=flow install::SHA-256 mismatch"),
        "{}",
        run.stdout
    );
    // Nothing after it ran (no build from source either), nothing was installed.
    for step in ["restore", "fallback", "save", "run"] {
        assert!(!run.ran(step), "{step}: {run:?}");
    }
    assert!(!runner.path(&format!("toolcache/flow/{VERSION}")).exists());
    server.verify().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_platform_without_an_archive_takes_the_cache_and_build_path() {
    let server = MockServer::start().await;
    let release = release_for(&server);
    serve(&server, &release.asset, release.archive.clone(), 0).await;
    let fixtures = tempfile::tempdir().unwrap();
    let (bin_dir, log) = fake_cargo(fixtures.path());

    // Linux on ARM64: a platform the project releases for, but this manifest has no entry.
    let mut runner = host_runner(&release.manifest);
    runner.os = "Linux".into();
    runner.arch = "ARM64".into();
    runner.extra_path = Some(bin_dir);
    let (_runner, run) = run_blocking(runner).await;
    assert_eq!(run.code("install"), Some(0), "{}", run.stdout);
    assert_eq!(run.step_outputs["install"]["found"], "false");
    assert!(
        run.stdout.contains(
            "the release manifest has no archive for aarch64-unknown-linux-musl \
             aarch64-unknown-linux-gnu"
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.step_outputs["install"]["cache-key"].starts_with("flow-bin-v1-Linux-ARM64-"),
        "{:?}",
        run.step_outputs
    );
    assert_eq!(run.step_outputs["restore"]["cache-hit"], "false");
    assert_eq!(run.step_outputs["fallback"]["built"], "true");
    assert_eq!(run.code("save"), Some(0));
    assert_eq!(run.code("run"), Some(0), "{}", run.stdout);
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("--profile dist")
    );
    // And a platform nobody builds for takes the same path.
    let mut runner = host_runner(&release.manifest);
    runner.os = "FreeBSD".into();
    runner.extra_path = Some(fixtures.path().join("fake-bin"));
    let (_runner, run) = run_blocking(runner).await;
    assert_eq!(run.step_outputs["install"]["found"], "false");
    assert!(
        run.stdout
            .contains("no release archive is built for FreeBSD/"),
        "{}",
        run.stdout
    );
    assert_eq!(run.code("run"), Some(0), "{}", run.stdout);
    server.verify().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manifest_of_an_unknown_format_is_an_error() {
    let server = MockServer::start().await;
    let release = release_for(&server);
    serve(&server, &release.asset, release.archive.clone(), 0).await;
    let mut value: serde_json::Value = serde_json::from_str(&release.manifest).unwrap();
    for format in [serde_json::json!(2), serde_json::Value::Null] {
        match &format {
            serde_json::Value::Null => value.as_object_mut().unwrap().remove("format"),
            f => value
                .as_object_mut()
                .unwrap()
                .insert("format".into(), f.clone()),
        };
        let (runner, run) = run_blocking(host_runner(&value.to_string())).await;
        assert_eq!(run.code("install"), Some(1), "{}", run.stdout);
        let expected = match format {
            serde_json::Value::Null => "has manifest format missing",
            _ => "has manifest format 2; this install script reads format 1",
        };
        assert!(run.stdout.contains(expected), "{}", run.stdout);
        for step in ["restore", "fallback", "save", "run"] {
            assert!(!run.ran(step), "{step}: {run:?}");
        }
        assert!(!runner.path(&format!("toolcache/flow/{VERSION}")).exists());
    }
    server.verify().await;
}
