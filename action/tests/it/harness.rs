//! Runs the committed composite action's steps with bash, as the runner would, against a local
//! HTTP server that serves a release archive built by flow-publish from the real `flow` binary.
//!
//! The mini-runner below evaluates exactly the expressions `action.yml` uses (`inputs.*`,
//! `github.*`, `runner.*`, `steps.*.outputs.*`, `||`, `!=`, `==`) and runs exactly the actions it
//! uses (actions/cache/restore and save at the pinned commit, against a local cache directory
//! that outlives the runner's tool cache, like GitHub's cache service outlives a hosted VM); an
//! expression or an action it does not know fails the test, so action.yml cannot grow a construct
//! the harness silently ignores.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use flow_publish::{ActionMetadata, ArchiveSpec, Manifest, ManifestEntry};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TARGET: &str = "x86_64-unknown-linux-musl";
const VERSION: &str = "0.1.0";

/// A temporary copy of the action (action.yml + scripts) with a fixture manifest, and the
/// runner's directories.
pub(crate) struct Runner {
    dir: tempfile::TempDir,
    meta: ActionMetadata,
    inputs: HashMap<String, String>,
    pub(crate) extra_path: Option<PathBuf>,
    /// `runner.os` / `RUNNER_OS` and `runner.arch` / `RUNNER_ARCH`.
    pub(crate) os: String,
    pub(crate) arch: String,
    /// The Actions cache: one entry (a directory or a file) per key.
    pub(crate) cache_store: PathBuf,
    /// `github.run_id` of the next run (each run is a new workflow run).
    run_id: std::cell::Cell<u64>,
}

/// What one run of the action left behind.
#[derive(Debug)]
pub(crate) struct Run {
    /// Per step id: exit code (None when skipped by `if:`).
    pub(crate) codes: Vec<(String, Option<i32>)>,
    /// Per step id: its outputs.
    pub(crate) step_outputs: HashMap<String, HashMap<String, String>>,
    /// The action's outputs.
    pub(crate) outputs: HashMap<String, String>,
    /// Everything the steps printed on stdout.
    pub(crate) stdout: String,
    /// The step summary.
    pub(crate) summary: String,
}

impl Run {
    pub(crate) fn code(&self, step: &str) -> Option<i32> {
        self.codes
            .iter()
            .find(|(s, _)| s == step)
            .and_then(|(_, c)| *c)
    }
    pub(crate) fn ran(&self, step: &str) -> bool {
        self.codes.iter().any(|(s, c)| s == step && c.is_some())
    }
}

pub(crate) fn action_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

impl Runner {
    pub(crate) fn new(manifest: &Manifest) -> Self {
        Self::with_manifest_text(&manifest.to_json().unwrap())
    }

    /// A runner whose copy of the action holds `manifest` as its manifest.json, verbatim.
    pub(crate) fn with_manifest_text(manifest: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        // GITHUB_ACTION_PATH/.. is the action's repository, as on a runner (`_actions/o/r/ref`).
        let action = dir.path().join("repo/action");
        std::fs::create_dir_all(action.join("scripts")).unwrap();
        std::fs::copy(action_dir().join("action.yml"), action.join("action.yml")).unwrap();
        for entry in std::fs::read_dir(action_dir().join("scripts")).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), action.join("scripts").join(entry.file_name())).unwrap();
        }
        std::fs::write(action.join("manifest.json"), manifest).unwrap();
        for d in ["toolcache", "temp", "workspace", "actions-cache"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        let meta = ActionMetadata::read(action.join("action.yml")).unwrap();
        let cache_store = dir.path().join("actions-cache");
        Self {
            dir,
            meta,
            inputs: HashMap::new(),
            extra_path: None,
            os: "Linux".into(),
            arch: "X64".into(),
            cache_store,
            run_id: std::cell::Cell::new(1000),
        }
    }

    pub(crate) fn input(mut self, id: &str, value: impl Into<String>) -> Self {
        assert!(
            self.meta.inputs.contains_key(id),
            "action.yml has no input {id}"
        );
        self.inputs.insert(id.to_owned(), value.into());
        self
    }

    pub(crate) fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// Evaluates one expression (without `${{ }}`).
    fn eval(&self, expr: &str, steps: &HashMap<String, HashMap<String, String>>) -> String {
        let expr = expr.trim();
        if let Some((a, b)) = expr.split_once("||") {
            let a = self.eval(a, steps);
            return if a.is_empty() { self.eval(b, steps) } else { a };
        }
        if let Some((a, b)) = expr.split_once("!=") {
            return (self.eval(a, steps) != self.eval(b, steps)).to_string();
        }
        if let Some((a, b)) = expr.split_once("==") {
            return (self.eval(a, steps) == self.eval(b, steps)).to_string();
        }
        if let Some(lit) = expr.strip_prefix('\'').and_then(|e| e.strip_suffix('\'')) {
            return lit.to_owned();
        }
        let parts: Vec<&str> = expr.split('.').collect();
        match parts.as_slice() {
            ["inputs", id] => {
                let input = self
                    .meta
                    .inputs
                    .get(*id)
                    .unwrap_or_else(|| panic!("unknown input {id}"));
                match self.inputs.get(*id) {
                    Some(v) => v.clone(),
                    None => self.interpolate(input.default.as_deref().unwrap_or(""), steps),
                }
            }
            ["steps", id, "outputs", name] => steps
                .get(*id)
                .and_then(|o| o.get(*name))
                .cloned()
                .unwrap_or_default(),
            // Empty inside composite steps (actions/runner#2473): nothing may depend on it.
            ["github", "action_repository"] => String::new(),
            ["github", "repository"] => "octo/app".into(),
            ["github", "run_id"] => self.run_id.get().to_string(),
            ["github", "run_attempt"] => "1".into(),
            ["github", "token"] => "ghs_harness_token".into(),
            ["runner", "os"] => self.os.clone(),
            ["runner", "arch"] => self.arch.clone(),
            _ => panic!("the harness does not know the expression `{expr}`"),
        }
    }

    /// Replaces every `${{ … }}` in `text`.
    fn interpolate(&self, text: &str, steps: &HashMap<String, HashMap<String, String>>) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${{") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find("}}").expect("unclosed ${{") + start;
            out.push_str(&self.eval(&rest[start + 3..end], steps));
            rest = &rest[end + 2..];
        }
        out.push_str(rest);
        out
    }

    /// What actions/cache/restore and actions/cache/save do, against `cache_store`.
    /// actions/cache/restore and actions/cache/save on the harness's cache store: an exact
    /// `key` is a hit; else the newest entry whose key starts with one of `restore-keys` is
    /// restored (not a hit). A relative `path` is in the workspace; a file or a directory.
    fn run_action(
        &self,
        uses: &str,
        with: &HashMap<String, String>,
        stdout: &mut String,
    ) -> (Option<i32>, HashMap<String, String>) {
        let key = with.get("key").cloned().unwrap_or_default();
        let path = self
            .path("workspace")
            .join(with.get("path").cloned().unwrap_or_default());
        assert!(!key.is_empty(), "{uses}: {with:?}");
        let entry = |k: &str| self.cache_store.join(k.replace('/', "%"));
        // Save order, beside the store (not an entry): "newest" without relying on mtimes.
        let order = self.cache_store.with_extension("order");
        let mut outputs = HashMap::new();
        match uses {
            flow_action::action_yml::CACHE_RESTORE => {
                let saved = std::fs::read_to_string(&order).unwrap_or_default();
                let hit = entry(&key).exists();
                let found = if hit {
                    Some(key.clone())
                } else {
                    with.get("restore-keys")
                        .into_iter()
                        .flat_map(|p| p.lines())
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .find_map(|prefix| {
                            saved
                                .lines()
                                .rev()
                                .find(|k| k.starts_with(prefix))
                                .map(str::to_owned)
                        })
                };
                match &found {
                    Some(k) => {
                        let stored = entry(k);
                        if stored.is_dir() {
                            copy_dir(&stored, &path);
                        } else {
                            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                            std::fs::copy(&stored, &path).unwrap();
                        }
                        stdout.push_str(&format!("Cache restored from key: {k}\n"));
                        outputs.insert("cache-matched-key".to_owned(), k.clone());
                    }
                    None => stdout.push_str(&format!("Cache not found for input keys: {key}\n")),
                }
                outputs.insert("cache-hit".to_owned(), hit.to_string());
                outputs.insert("cache-primary-key".to_owned(), key);
            }
            flow_action::action_yml::CACHE_SAVE => {
                let stored = entry(&key);
                if !path.exists() {
                    // actions/cache warns and succeeds.
                    stdout.push_str(&format!(
                        "Warning: Path Validation Error: {} does not exist\n",
                        path.display()
                    ));
                } else if stored.exists() {
                    stdout.push_str(&format!("Cache already exists for key: {key}\n"));
                } else {
                    if path.is_dir() {
                        copy_dir(&path, &stored);
                    } else {
                        std::fs::copy(&path, &stored).unwrap();
                    }
                    let mut saved = std::fs::read_to_string(&order).unwrap_or_default();
                    saved.push_str(&key);
                    saved.push('\n');
                    std::fs::write(&order, saved).unwrap();
                    stdout.push_str(&format!("Cache saved with key: {key}\n"));
                }
            }
            other => panic!("the harness does not know the action `{other}`"),
        }
        (Some(0), outputs)
    }

    pub(crate) fn run(&self) -> Run {
        let action = self.path("repo/action");
        let summary = self.path("summary.md");
        std::fs::write(&summary, "").unwrap();
        let mut steps: HashMap<String, HashMap<String, String>> = HashMap::new();
        let mut codes = Vec::new();
        let mut stdout = String::new();
        let mut failed = false;
        for (i, step) in self.meta.steps().iter().enumerate() {
            let id = step.id.clone().unwrap_or_else(|| format!("step{i}"));
            // Composite steps run only while all before succeeded (`success()` is implied).
            let wanted = step
                .if_
                .as_deref()
                .is_none_or(|cond| self.eval(cond, &steps) == "true");
            if failed || !wanted {
                codes.push((id, None));
                continue;
            }
            if let Some(uses) = &step.uses {
                let with = step
                    .with
                    .iter()
                    .map(|(k, v)| (k.clone(), self.interpolate(v, &steps)))
                    .collect();
                let (code, outputs) = self.run_action(uses, &with, &mut stdout);
                steps.insert(id.clone(), outputs);
                codes.push((id, code));
                continue;
            }
            let output_file = self.path(&format!("output-{id}"));
            std::fs::write(&output_file, "").unwrap();
            let script = self.path(&format!("{id}.sh"));
            std::fs::write(&script, step.run.as_deref().expect("a run step")).unwrap();
            assert_eq!(step.shell.as_deref(), Some("bash"));
            let mut path_var = std::env::var("PATH").unwrap_or_default();
            if let Some(extra) = &self.extra_path {
                path_var = format!("{}:{path_var}", extra.display());
            }
            let mut cmd = Command::new("bash");
            cmd.args(["--noprofile", "--norc", "-eo", "pipefail"])
                .arg(&script)
                .current_dir(self.path("workspace"))
                .env_clear()
                .env("PATH", path_var)
                .env("HOME", self.dir.path())
                .env("GITHUB_ACTIONS", "true")
                .env("GITHUB_ACTION_PATH", &action)
                .env("GITHUB_OUTPUT", &output_file)
                .env("GITHUB_STEP_SUMMARY", &summary)
                .env("GITHUB_WORKSPACE", self.path("workspace"))
                .env("RUNNER_OS", &self.os)
                .env("RUNNER_ARCH", &self.arch)
                .env("RUNNER_TEMP", self.path("temp"))
                .env("RUNNER_TOOL_CACHE", self.path("toolcache"));
            for (k, v) in &step.env {
                cmd.env(k, self.interpolate(v, &steps));
            }
            let out = cmd.output().unwrap();
            stdout.push_str(&String::from_utf8_lossy(&out.stdout));
            stdout.push_str(&String::from_utf8_lossy(&out.stderr));
            let code = out.status.code();
            failed = code != Some(0);
            let text = std::fs::read_to_string(&output_file).unwrap();
            steps.insert(id.clone(), parse_output_file(&text));
            codes.push((id, code));
        }
        let outputs = self
            .meta
            .outputs
            .iter()
            .map(|(k, o)| {
                (
                    k.clone(),
                    self.interpolate(o.value.as_deref().unwrap_or(""), &steps),
                )
            })
            .collect();
        let run = Run {
            codes,
            step_outputs: steps,
            outputs,
            stdout,
            summary: std::fs::read_to_string(&summary).unwrap(),
        };
        self.run_id.set(self.run_id.get() + 1);
        run
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The runner's reading of a GITHUB_OUTPUT file: `name=value` lines and `name<<DELIM` heredocs.
fn parse_output_file(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((name, delim)) = line.split_once("<<") {
            let mut value = Vec::new();
            for l in lines.by_ref() {
                if l == delim {
                    break;
                }
                value.push(l);
            }
            out.insert(name.to_owned(), value.join("\n"));
        } else if let Some((name, value)) = line.split_once('=') {
            out.insert(name.to_owned(), value.to_owned());
        }
    }
    out
}

/// A release archive built by flow-publish, and its manifest; built once per test binary.
fn fixture_archive(_dir: &Path) -> (Vec<u8>, Manifest) {
    static FIXTURE: std::sync::OnceLock<(Vec<u8>, Manifest)> = std::sync::OnceLock::new();
    FIXTURE
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            build_fixture_archive(dir.path())
        })
        .clone()
}

fn build_fixture_archive(dir: &Path) -> (Vec<u8>, Manifest) {
    std::fs::write(dir.join("LICENSE"), "MIT OR Apache-2.0\n").unwrap();
    std::fs::write(dir.join("README.md"), "# flow\n").unwrap();
    // The archived `flow` execs the binary under test: the archive stays small (compressing
    // the 60 MB debug binary would dominate the test's time) and the steps run the real thing.
    let launcher = dir.join("flow");
    std::fs::write(
        &launcher,
        // bash, not sh: dash drops variables whose names hold a hyphen (INPUT_API-KEY).
        format!(
            "#!/usr/bin/env bash\nexec '{}' \"$@\"\n",
            env!("CARGO_BIN_EXE_flow")
        ),
    )
    .unwrap();
    let spec = ArchiveSpec::new(
        "flow",
        VERSION,
        TARGET,
        &launcher,
        dir.join("LICENSE"),
        dir.join("README.md"),
    )
    .with_mtime(0);
    let out = dir.join("dist");
    std::fs::create_dir_all(&out).unwrap();
    let (assets, manifest) = flow_publish::package(&[spec], &out).unwrap();
    let bytes = std::fs::read(&assets[0].path).unwrap();
    (bytes, manifest)
}

/// The manifest with absolute URLs into `server`.
fn at(manifest: &Manifest, server: &MockServer) -> Manifest {
    manifest.clone().with_download_base(&server.uri()).unwrap()
}

fn asset_name() -> String {
    format!("flow-v{VERSION}-{TARGET}.tar.gz")
}

async fn serve(bytes: Vec<u8>, times: u64) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/v{VERSION}/{}", asset_name())))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(bytes))
        .expect(times)
        .mount(&server)
        .await;
    server
}

pub(crate) async fn run_blocking(runner: Runner) -> (Runner, Run) {
    tokio::task::spawn_blocking(move || {
        let run = runner.run();
        (runner, run)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn installs_verifies_caches_and_runs_with_outputs_and_summary() {
    let fixtures = tempfile::tempdir().unwrap();
    let (bytes, manifest) = fixture_archive(fixtures.path());
    let server = serve(bytes, 1).await;
    let runner = Runner::new(&at(&manifest, &server))
        .input("command", "publish metadata")
        .input("output", "generated.yml")
        .input("api-key", "sk-harness-secret");
    let (runner, run) = run_blocking(runner).await;

    assert_eq!(run.code("install"), Some(0), "{}", run.stdout);
    assert!(!run.ran("fallback"), "{run:?}");
    assert_eq!(run.code("run"), Some(0), "{}", run.stdout);
    let bin = runner.path(&format!("toolcache/flow/{VERSION}/x64/flow"));
    assert_eq!(
        run.step_outputs["install"]["bin"],
        bin.display().to_string()
    );
    assert!(
        runner
            .path(&format!("toolcache/flow/{VERSION}/x64.complete"))
            .exists()
    );

    // The binary ran in Actions mode: secret masked first, outputs and summary written.
    assert!(
        run.stdout.contains("::add-mask::sk-harness-secret"),
        "{}",
        run.stdout
    );
    assert_eq!(
        run.stdout.matches("sk-harness-secret").count(),
        1,
        "{}",
        run.stdout
    );
    assert_eq!(run.outputs["path"], "generated.yml");
    let json: serde_json::Value = serde_json::from_str(&run.outputs["json"]).unwrap();
    assert_eq!(json["changed"], true);
    assert!(
        run.summary.contains("### flow publish metadata"),
        "{}",
        run.summary
    );
    let generated = std::fs::read_to_string(runner.path("workspace/generated.yml")).unwrap();
    assert_eq!(
        generated,
        std::fs::read_to_string(action_dir().join("action.yml")).unwrap()
    );

    // Second job on the same runner: the tool cache answers, no download (expect(1) above).
    let (_runner, again) = run_blocking(runner).await;
    assert_eq!(again.code("install"), Some(0), "{}", again.stdout);
    assert!(
        again.stdout.contains("found in the tool cache"),
        "{}",
        again.stdout
    );
    assert_eq!(again.code("run"), Some(0), "{}", again.stdout);
    server.verify().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_checksum_mismatch_fails_closed() {
    let fixtures = tempfile::tempdir().unwrap();
    let (mut bytes, manifest) = fixture_archive(fixtures.path());
    // The server hands out a tampered archive: one byte differs.
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    let server = serve(bytes, 1).await;
    let runner = Runner::new(&at(&manifest, &server)).input("command", "publish metadata");
    let (runner, run) = run_blocking(runner).await;

    assert_eq!(run.code("install"), Some(1), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("::error title=flow install::SHA-256 mismatch"),
        "{}",
        run.stdout
    );
    // Nothing after it ran, and nothing was installed.
    assert!(!run.ran("fallback") && !run.ran("run"), "{run:?}");
    assert!(!runner.path(&format!("toolcache/flow/{VERSION}")).exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manifest_digest_that_is_not_hex_fails_closed() {
    let fixtures = tempfile::tempdir().unwrap();
    let (bytes, mut manifest) = fixture_archive(fixtures.path());
    let server = serve(bytes, 0).await;
    manifest.targets.insert(
        TARGET.into(),
        ManifestEntry {
            asset: asset_name(),
            url: None,
            sha256: "not-a-digest".into(),
        },
    );
    let runner = Runner::new(&at(&manifest, &server));
    let (_runner, run) = run_blocking(runner).await;
    assert_eq!(run.code("install"), Some(1), "{}", run.stdout);
    assert!(
        run.stdout.contains("64 lower-case hex digits"),
        "{}",
        run.stdout
    );
    assert!(!run.ran("run"));
    server.verify().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_archive_on_the_server_fails() {
    let fixtures = tempfile::tempdir().unwrap();
    let (_bytes, manifest) = fixture_archive(fixtures.path());
    let server = MockServer::start().await; // answers 404 to everything
    let runner = Runner::new(&at(&manifest, &server));
    let (_runner, run) = run_blocking(runner).await;
    assert_eq!(run.code("install"), Some(1), "{}", run.stdout);
    assert!(run.stdout.contains("downloading"), "{}", run.stdout);
    assert!(!run.ran("fallback") && !run.ran("run"));
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_matching_release_it_builds_once_then_restores_from_the_actions_cache() {
    let fixtures = tempfile::tempdir().unwrap();
    let (bin_dir, log) = fake_cargo(fixtures.path());
    let empty = Manifest::empty(VERSION).to_json().unwrap();
    let new_vm = |store: Option<PathBuf>| {
        let mut runner = Runner::with_manifest_text(&empty)
            .input("command", "publish metadata")
            .input("output", "-");
        runner.extra_path = Some(bin_dir.clone());
        if let Some(store) = store {
            runner.cache_store = store;
        }
        runner
    };
    let (runner, run) = run_blocking(new_vm(None)).await;

    assert_eq!(run.code("install"), Some(0), "{}", run.stdout);
    assert_eq!(run.step_outputs["install"]["found"], "false");
    assert!(
        run.stdout.contains("::notice title=flow::"),
        "{}",
        run.stdout
    );
    let key = run.step_outputs["install"]["cache-key"].clone();
    assert!(key.starts_with("flow-bin-v1-Linux-X64-"), "{key}");
    assert_eq!(run.step_outputs["restore"]["cache-hit"], "false");
    assert_eq!(run.code("fallback"), Some(0), "{}", run.stdout);
    assert_eq!(run.step_outputs["fallback"]["built"], "true");
    assert!(
        run.stdout
            .contains("::notice title=flow::built flow from source in 0m"),
        "{}",
        run.stdout
    );
    assert_eq!(run.code("save"), Some(0), "{}", run.stdout);
    assert!(runner.cache_store.join(&key).join("bin/flow").is_file());
    assert_eq!(run.code("run"), Some(0), "{}", run.stdout);
    let args = std::fs::read_to_string(&log).unwrap();
    assert!(
        args.starts_with(&format!(
            "install --locked --profile dist --path {}",
            runner.path("repo/action").display()
        )),
        "{args}"
    );
    assert!(
        run.stdout.contains("name: flow-orchestrator"),
        "{}",
        run.stdout
    );

    // The next job, on a fresh VM (empty tool cache), same source and platform: the binary
    // comes from the Actions cache under the same key; cargo is not run again, nothing saved.
    let store = runner.cache_store.clone();
    let (_again_runner, again) = run_blocking(new_vm(Some(store))).await;
    assert_eq!(again.step_outputs["install"]["cache-key"], key);
    assert_eq!(again.step_outputs["restore"]["cache-hit"], "true");
    assert_eq!(again.step_outputs["fallback"]["built"], "false");
    assert!(
        again
            .stdout
            .contains("flow restored from the Actions cache"),
        "{}",
        again.stdout
    );
    assert!(!again.ran("save"), "{again:?}");
    assert_eq!(again.code("run"), Some(0), "{}", again.stdout);
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 1);
    drop(runner);
}

/// A fake `cargo` on PATH that records its arguments (one line per call) and "installs" the
/// real binary under `--root`.
pub(crate) fn fake_cargo(dir: &Path) -> (PathBuf, PathBuf) {
    let bin_dir = dir.join("fake-bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let log = dir.join("cargo-args");
    let fake = format!(
        "#!/usr/bin/env bash\nset -eu\necho \"$*\" >> '{log}'\nroot=''\nwhile [ $# -gt 0 ]; do \
         if [ \"$1\" = --root ]; then root=\"$2\"; fi; shift; done\nmkdir -p \"$root/bin\"\ncp \
         '{bin}' \"$root/bin/flow\"\n",
        log = log.display(),
        bin = env!("CARGO_BIN_EXE_flow"),
    );
    std::fs::write(bin_dir.join("cargo"), fake).unwrap();
    Command::new("chmod")
        .arg("+x")
        .arg(bin_dir.join("cargo"))
        .status()
        .unwrap();
    (bin_dir, log)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_flow_run_prints_an_error_command_and_fails_the_step() {
    let fixtures = tempfile::tempdir().unwrap();
    let (bytes, manifest) = fixture_archive(fixtures.path());
    let server = serve(bytes, 1).await;
    let runner = Runner::new(&at(&manifest, &server))
        .input("command", "publish metadata")
        .input("output", "generated.yml")
        .input("check", "true");
    let (_runner, run) = run_blocking(runner).await;
    assert_eq!(run.code("install"), Some(0), "{}", run.stdout);
    assert_eq!(run.code("run"), Some(1), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("::error::flow publish metadata: generated.yml is out of date"),
        "{}",
        run.stdout
    );
}

#[test]
fn the_committed_manifest_is_a_flow_publish_manifest() {
    let text = std::fs::read_to_string(action_dir().join("manifest.json")).unwrap();
    let manifest = Manifest::from_json(&text).unwrap();
    assert_eq!(manifest.version, env!("CARGO_PKG_VERSION"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_default_command_monitors_and_writes_outputs_and_the_summary() {
    let fixtures = tempfile::tempdir().unwrap();
    let (bytes, manifest) = fixture_archive(fixtures.path());
    let server = serve(bytes, 1).await;
    // No repository (the input defaults to the workflow's): the bundled sample, offline.
    let runner = Runner::new(&at(&manifest, &server)).input("repo", "");
    let (_runner, run) = run_blocking(runner).await;
    assert_eq!(run.code("run"), Some(0), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("flow monitor: 300 runs (3 pages) from the bundled sample history"),
        "{}",
        run.stdout
    );
    assert_eq!(run.outputs["alerts"], "0");
    let json: serde_json::Value = serde_json::from_str(&run.outputs["json"]).unwrap();
    assert_eq!(json["runs"], 300);
    assert!(
        run.summary.contains("### Issues and triage"),
        "{}",
        run.summary
    );
    // The masked token (the github-token input's default) never appears in clear.
    assert!(
        run.stdout.contains("::add-mask::ghs_harness_token"),
        "{}",
        run.stdout
    );
    assert_eq!(
        run.stdout.matches("ghs_harness_token").count(),
        1,
        "{}",
        run.stdout
    );
}

/// `state:` keeps the monitor's state between workflow runs through actions/cache: the second
/// run continues where the first stopped (nothing new to observe) instead of starting over.
#[tokio::test(flavor = "multi_thread")]
async fn the_monitor_state_is_restored_and_saved_between_runs() {
    let fixtures = tempfile::tempdir().unwrap();
    let (bytes, manifest) = fixture_archive(fixtures.path());
    let server = serve(bytes, 1).await;
    let runner = Runner::new(&at(&manifest, &server))
        .input("repo", "")
        .input("state", ".flow/monitor-state.json");
    let (runner, first) = run_blocking(runner).await;
    assert_eq!(first.code("run"), Some(0), "{}", first.stdout);
    assert_eq!(first.code("restore-state"), Some(0));
    assert_eq!(first.code("save-state"), Some(0));
    let prefix = &first.step_outputs["state"]["prefix"];
    assert_eq!(prefix, "flow-monitor-state-v1-octo/app-all-default-");
    assert_eq!(
        first.step_outputs["state"]["key"],
        format!("{prefix}1000-1")
    );
    let json: serde_json::Value = serde_json::from_str(&first.outputs["json"]).unwrap();
    assert_eq!(
        (json["runs"].as_u64(), json["state"]["fresh"].as_bool()),
        (Some(300), Some(true))
    );
    // A new workflow run: a fresh workspace, the state restored by prefix.
    std::fs::remove_dir_all(runner.path("workspace")).unwrap();
    std::fs::create_dir_all(runner.path("workspace")).unwrap();
    let (runner, second) = run_blocking(runner).await;
    assert_eq!(second.code("run"), Some(0), "{}", second.stdout);
    let json: serde_json::Value = serde_json::from_str(&second.outputs["json"]).unwrap();
    assert_eq!(
        (json["runs"].as_u64(), json["state"]["fresh"].as_bool()),
        (Some(0), Some(false))
    );
    let saved: Vec<_> = std::fs::read_dir(runner.path("actions-cache"))
        .unwrap()
        .collect();
    assert_eq!(saved.len(), 2, "one entry per run");
    // Another command keeps no state.
    let runner = runner
        .input("command", "publish metadata")
        .input("output", "x.yml");
    let (_runner, third) = run_blocking(runner).await;
    assert!(
        !third.ran("restore-state") && !third.ran("save-state"),
        "{third:?}"
    );
}
