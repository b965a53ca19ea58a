//! Merging per-target manifests into the release manifest, and its published JSON Schema.

use std::path::PathBuf;

use flow_publish::{
    ArchiveSpec, MANIFEST_FORMAT, Manifest, ManifestPart, manifest_schema, merge, package,
};
use serde_json::json;

const BASE: &str = "https://github.com/flow-orchestrator/flow-orchestrator/releases/download";

fn hex(c: char) -> String {
    std::iter::repeat_n(c, 64).collect()
}

/// A per-target manifest as `flow publish package` writes it (no URL).
fn part(source: &str, version: &str, targets: &[(&str, char)]) -> ManifestPart {
    let targets: serde_json::Map<String, serde_json::Value> = targets
        .iter()
        .map(|(t, c)| {
            (
                (*t).to_owned(),
                json!({"asset": format!("flow-v{version}-{t}.tar.gz"), "sha256": hex(*c)}),
            )
        })
        .collect();
    let text = json!({"format": 1, "version": version, "targets": targets}).to_string();
    ManifestPart::parse(source, &text).unwrap()
}

fn err_of(parts: &[ManifestPart], base: Option<&str>) -> String {
    merge(parts, base).unwrap_err().to_string()
}

#[test]
fn merges_targets_with_absolute_urls_and_digests() {
    let parts = [
        part(
            "linux/manifest.json",
            "1.2.3",
            &[("x86_64-unknown-linux-musl", 'a')],
        ),
        part(
            "mac/manifest.json",
            "1.2.3",
            &[("aarch64-apple-darwin", 'b'), ("x86_64-apple-darwin", 'c')],
        ),
    ];
    let merged = merge(&parts, Some(&format!("{BASE}/"))).unwrap();
    assert_eq!(merged.format, MANIFEST_FORMAT);
    assert_eq!(merged.version, "1.2.3");
    assert_eq!(
        merged.targets.keys().collect::<Vec<_>>(),
        [
            "aarch64-apple-darwin",
            "x86_64-apple-darwin",
            "x86_64-unknown-linux-musl"
        ]
    );
    let linux = &merged.targets["x86_64-unknown-linux-musl"];
    assert_eq!(
        linux.url.as_deref(),
        Some(format!("{BASE}/v1.2.3/flow-v1.2.3-x86_64-unknown-linux-musl.tar.gz").as_str())
    );
    assert_eq!(linux.sha256, hex('a'));
    assert_eq!(merged.targets["aarch64-apple-darwin"].sha256, hex('b'));
    // What is written reads back the same, and passes the release checks.
    let text = merged.to_json().unwrap();
    assert_eq!(Manifest::from_json(&text).unwrap(), merged);
    merged.validate_release().unwrap();
    insta::assert_snapshot!("merged_manifest", text);
}

#[test]
fn an_entry_url_given_at_packaging_is_kept() {
    let mut p = part("a.json", "1.0.0", &[("x86_64-pc-windows-msvc", 'd')]);
    p.manifest = p
        .manifest
        .with_download_base("http://127.0.0.1:8080/rel")
        .unwrap();
    // No base at merge time: the packaged URL is enough.
    let merged = merge(std::slice::from_ref(&p), None).unwrap();
    assert_eq!(
        merged.targets["x86_64-pc-windows-msvc"].url.as_deref(),
        Some("http://127.0.0.1:8080/rel/v1.0.0/flow-v1.0.0-x86_64-pc-windows-msvc.tar.gz")
    );
    // ... and a merge-time base does not override it.
    let merged = merge(&[p], Some(BASE)).unwrap();
    assert!(
        merged.targets["x86_64-pc-windows-msvc"]
            .url
            .as_deref()
            .unwrap()
            .starts_with("http://127.0.0.1:8080/rel/")
    );
}

#[test]
fn a_target_in_two_manifests_is_rejected() {
    let parts = [
        part("one.json", "1.2.3", &[("x86_64-unknown-linux-musl", 'a')]),
        part("two.json", "1.2.3", &[("x86_64-unknown-linux-musl", 'b')]),
    ];
    let err = err_of(&parts, Some(BASE));
    assert_eq!(
        err,
        "two.json: targets.x86_64-unknown-linux-musl: expected each target in one manifest \
         only, but one.json has it too"
    );
}

#[test]
fn versions_that_differ_are_rejected() {
    let parts = [
        part("one.json", "1.2.3", &[("x86_64-unknown-linux-musl", 'a')]),
        part("two.json", "1.2.4", &[("aarch64-apple-darwin", 'b')]),
    ];
    assert_eq!(
        err_of(&parts, Some(BASE)),
        "two.json: version: expected 1.2.3 (the version of one.json), found 1.2.4"
    );
}

#[test]
fn missing_and_malformed_fields_are_named() {
    let cases = [
        (
            json!({"format": 1, "version": "1.2.3", "targets": {"x86_64-apple-darwin": {"asset": "a.tar.gz"}}}),
            "in.json: targets.x86_64-apple-darwin: expected a manifest",
            "missing field `sha256`",
        ),
        (
            json!({"format": 1, "targets": {}}),
            "in.json: expected a manifest",
            "missing field `version`",
        ),
        (
            json!({"version": "1.2.3", "targets": {}}),
            "in.json: expected a manifest",
            "missing field `format`",
        ),
        (
            json!({"format": 1, "version": "1.2.3", "targets": {}, "extra": true}),
            "in.json",
            "unknown field `extra`",
        ),
        (
            json!({"format": 1, "version": "1.2.3", "targets": {"x86_64-apple-darwin": {"asset": 7, "sha256": "x"}}}),
            "in.json: targets.x86_64-apple-darwin.asset",
            "invalid type",
        ),
        (
            json!({"format": 2, "version": "1.2.3", "targets": {}}),
            "in.json: format: expected manifest format 1, found 2",
            "newer",
        ),
    ];
    for (value, field, detail) in cases {
        let err = ManifestPart::parse("in.json", &value.to_string())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with(field), "{value}: {err}");
        assert!(err.contains(detail), "{value}: {err}");
    }
    assert!(
        ManifestPart::parse("in.json", "not json")
            .unwrap_err()
            .to_string()
            .starts_with("in.json: expected a manifest")
    );
}

#[test]
fn entries_must_be_complete_and_well_formed() {
    let good = || part("in.json", "1.2.3", &[("x86_64-apple-darwin", 'a')]);
    // No URL and no base to make one.
    assert_eq!(
        err_of(&[good()], None),
        "in.json: targets.x86_64-apple-darwin.url: expected an absolute download URL: package \
         with --download-base-url, or give one to the merge"
    );
    // A base that is not an absolute https URL.
    for base in ["releases/download", "http://example.com/r", "ftp://x/y"] {
        let err = err_of(&[good()], Some(base));
        assert!(
            err.starts_with("download base URL: expected an absolute https URL"),
            "{base}: {err}"
        );
    }
    let mut bad = good();
    bad.manifest
        .targets
        .get_mut("x86_64-apple-darwin")
        .unwrap()
        .sha256 = hex('A');
    assert_eq!(
        err_of(&[bad], Some(BASE)),
        "in.json: targets.x86_64-apple-darwin.sha256: expected 64 lower-case hex digits"
    );
    let mut bad = good();
    bad.manifest
        .targets
        .get_mut("x86_64-apple-darwin")
        .unwrap()
        .asset = "../flow.tar.gz".into();
    assert!(
        err_of(&[bad], Some(BASE))
            .starts_with("in.json: targets.x86_64-apple-darwin.asset: expected a plain file name")
    );
    let mut bad = good();
    let entry = bad.manifest.targets.remove("x86_64-apple-darwin").unwrap();
    bad.manifest.targets.insert("Linux".into(), entry);
    assert!(
        err_of(&[bad], Some(BASE))
            .starts_with("in.json: targets.Linux: expected a Rust target triple")
    );
    let mut bad = good();
    bad.manifest
        .targets
        .get_mut("x86_64-apple-darwin")
        .unwrap()
        .url = Some("http://evil.example/flow.tar.gz".into());
    assert!(
        err_of(&[bad], Some(BASE)).starts_with(
            "in.json: targets.x86_64-apple-darwin.url: expected an absolute https URL"
        )
    );
    assert_eq!(
        err_of(&[], Some(BASE)),
        "manifests: expected at least one per-target manifest to merge"
    );
    let empty = part("in.json", "1.2.3", &[]);
    assert_eq!(
        err_of(&[empty], Some(BASE)),
        "targets: expected at least one target"
    );
    let v = part("in.json", "v1.2.3", &[("x86_64-apple-darwin", 'a')]);
    assert!(
        err_of(&[v], Some(BASE)).starts_with("in.json: version: expected a version without `v`")
    );
}

fn schema_validator() -> jsonschema::Validator {
    jsonschema::validator_for(&manifest_schema()).unwrap()
}

#[test]
fn the_published_schema_is_the_committed_file_and_accepts_merged_manifests() {
    let committed = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("manifest.schema.json");
    let expected = format!(
        "{}\n",
        serde_json::to_string_pretty(&manifest_schema()).unwrap()
    );
    if std::env::var_os("FLOW_BLESS").is_some() {
        std::fs::write(&committed, &expected).unwrap();
    }
    let text = std::fs::read_to_string(&committed).unwrap_or_default();
    assert!(
        text == expected,
        "{} is out of date: rerun this test with FLOW_BLESS=1 to write it",
        committed.display()
    );

    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("flow");
    std::fs::write(&bin, b"bin").unwrap();
    std::fs::write(dir.path().join("L"), b"l").unwrap();
    let specs: Vec<ArchiveSpec> = ["x86_64-unknown-linux-musl", "x86_64-pc-windows-msvc"]
        .iter()
        .map(|t| {
            ArchiveSpec::new(
                "flow",
                "2.0.0",
                *t,
                &bin,
                dir.path().join("L"),
                dir.path().join("L"),
            )
            .with_mtime(0)
        })
        .collect();
    let (_, manifest) = package(&specs, &dir.path().join("dist")).unwrap();
    let part = ManifestPart {
        source: "dist/manifest.json".into(),
        manifest,
    };
    let merged = merge(std::slice::from_ref(&part), Some(BASE)).unwrap();
    let validator = schema_validator();
    let value: serde_json::Value = serde_json::from_str(&merged.to_json().unwrap()).unwrap();
    assert!(validator.is_valid(&value), "{value}");
    // A per-target manifest without URLs is not a release manifest.
    let unmerged = serde_json::to_value(&part.manifest).unwrap();
    assert!(!validator.is_valid(&unmerged));
}

#[test]
fn the_schema_rejects_what_merge_rejects() {
    let validator = schema_validator();
    let good = json!({"format": 1, "version": "1.2.3", "targets": {"x86_64-apple-darwin": {
        "asset": "flow-v1.2.3-x86_64-apple-darwin.tar.gz",
        "url": format!("{BASE}/v1.2.3/flow-v1.2.3-x86_64-apple-darwin.tar.gz"),
        "sha256": hex('e')}}});
    assert!(validator.is_valid(&good));
    let mut bads = Vec::new();
    for (pointer, value) in [
        ("/format", json!(2)),
        ("/version", json!("v1.2.3")),
        ("/targets/x86_64-apple-darwin/sha256", json!("abc")),
        (
            "/targets/x86_64-apple-darwin/url",
            json!("releases/x.tar.gz"),
        ),
        ("/targets/x86_64-apple-darwin/asset", json!("../x")),
    ] {
        let mut bad = good.clone();
        *bad.pointer_mut(pointer).unwrap() = value;
        bads.push(bad);
    }
    let mut bad = good.clone();
    bad["targets"]["x86_64-apple-darwin"]
        .as_object_mut()
        .unwrap()
        .remove("url");
    bads.push(bad);
    let mut bad = good.clone();
    bad["targets"]["Not A Triple"] = good["targets"]["x86_64-apple-darwin"].clone();
    bads.push(bad);
    for bad in bads {
        assert!(!validator.is_valid(&bad), "{bad}");
    }
}
