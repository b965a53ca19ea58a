//! Archive reproducibility, contents and the manifest.

use std::io::Read;
use std::path::Path;

use flow_publish::{ArchiveSpec, MANIFEST_NAME, Manifest, package, sha256_file};

struct Inputs {
    _dir: tempfile::TempDir,
    bin: std::path::PathBuf,
    license: std::path::PathBuf,
    readme: std::path::PathBuf,
}

fn inputs() -> Inputs {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("flow-bin");
    let license = dir.path().join("LICENSE-MIT");
    let readme = dir.path().join("README.md");
    std::fs::write(&bin, b"\x7fELF fake binary \x00\x01\x02").unwrap();
    std::fs::write(&license, "MIT License\n").unwrap();
    std::fs::write(&readme, "# flow\n").unwrap();
    Inputs {
        _dir: dir,
        bin,
        license,
        readme,
    }
}

fn specs(i: &Inputs, version: &str, mtime: u64) -> Vec<ArchiveSpec> {
    flow_publish::DEFAULT_TARGETS
        .iter()
        .map(|t| {
            ArchiveSpec::new("flow", version, *t, &i.bin, &i.license, &i.readme).with_mtime(mtime)
        })
        .collect()
}

fn read_tar(path: &Path) -> Vec<(String, u32, u64, Vec<u8>)> {
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap());
    let mut archive = tar::Archive::new(gz);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let h = e.header().clone();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
            (
                e.path().unwrap().to_string_lossy().into_owned(),
                h.mode().unwrap(),
                h.mtime().unwrap(),
                data,
            )
        })
        .collect()
}

#[test]
fn archives_are_byte_identical_across_runs() {
    let i = inputs();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (assets_a, manifest_a) = package(&specs(&i, "1.2.3", 1_700_000_000), a.path()).unwrap();
    // Touch the inputs so that file system timestamps differ between the runs.
    std::fs::write(&i.readme, "# flow\n").unwrap();
    let (assets_b, manifest_b) = package(&specs(&i, "1.2.3", 1_700_000_000), b.path()).unwrap();
    assert_eq!(manifest_a, manifest_b);
    assert_eq!(assets_a.len(), 6, "five archives and the manifest");
    for (x, y) in assets_a.iter().zip(&assets_b) {
        assert_eq!(
            std::fs::read(&x.path).unwrap(),
            std::fs::read(&y.path).unwrap(),
            "{}",
            x.name
        );
        assert_eq!(x.sha256, y.sha256);
        assert_eq!(sha256_file(&x.path).unwrap(), (x.sha256.clone(), x.size));
    }
    // A different mtime changes the bytes: the timestamp really is the one given.
    let c = tempfile::tempdir().unwrap();
    let (assets_c, _) = package(&specs(&i, "1.2.3", 1_600_000_000), c.path()).unwrap();
    assert_ne!(assets_a[0].sha256, assets_c[0].sha256);
}

#[test]
fn tar_gz_holds_sorted_entries_with_fixed_metadata() {
    let i = inputs();
    let out = tempfile::tempdir().unwrap();
    let (assets, _) = package(&specs(&i, "1.2.3", 1_700_000_000), out.path()).unwrap();
    let linux = assets
        .iter()
        .find(|a| a.target == "x86_64-unknown-linux-musl")
        .unwrap();
    assert_eq!(linux.name, "flow-v1.2.3-x86_64-unknown-linux-musl.tar.gz");
    let entries = read_tar(&linux.path);
    let names: Vec<_> = entries.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(names, ["LICENSE", "README.md", "flow"]);
    assert_eq!(entries[2].1, 0o755);
    assert_eq!(entries[0].1, 0o644);
    assert!(entries.iter().all(|e| e.2 == 1_700_000_000));
    assert_eq!(entries[2].3, std::fs::read(&i.bin).unwrap());
    // gzip header: no file name, mtime 0.
    let bytes = std::fs::read(&linux.path).unwrap();
    assert_eq!(&bytes[..4], &[0x1f, 0x8b, 8, 0]);
    assert_eq!(&bytes[4..8], &[0, 0, 0, 0]);
}

#[test]
fn zip_for_windows_holds_the_exe() {
    let i = inputs();
    let out = tempfile::tempdir().unwrap();
    let (assets, _) = package(&specs(&i, "1.2.3", 0), out.path()).unwrap();
    let win = assets
        .iter()
        .find(|a| a.target.contains("windows"))
        .unwrap();
    assert_eq!(win.content_type, "application/zip");
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&win.path).unwrap()).unwrap();
    let names: Vec<String> = (0..zip.len())
        .map(|k| zip.by_index(k).unwrap().name().unwrap().into_owned())
        .collect();
    assert_eq!(names, ["LICENSE", "README.md", "flow.exe"]);
    let exe = zip.by_name("flow.exe").unwrap();
    assert_eq!(exe.unix_mode().map(|m| m & 0o777), Some(0o755));
    assert_eq!(
        exe.last_modified().map(|t| t.year()),
        Some(1980),
        "clamped to zip's minimum"
    );
}

#[test]
fn manifest_lists_every_target_and_parses_back() {
    let i = inputs();
    let out = tempfile::tempdir().unwrap();
    let (assets, manifest) = package(&specs(&i, "1.2.3", 0), out.path()).unwrap();
    let text = std::fs::read_to_string(out.path().join(MANIFEST_NAME)).unwrap();
    assert_eq!(Manifest::from_json(&text).unwrap(), manifest);
    assert_eq!(manifest.version, "1.2.3");
    assert_eq!(manifest.targets.len(), 5);
    for asset in assets.iter().filter(|a| a.target != "manifest") {
        let entry = &manifest.targets[&asset.target];
        assert_eq!(entry.asset, asset.name);
        assert_eq!(entry.sha256, asset.sha256);
        assert_eq!(entry.sha256.len(), 64);
    }
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    let keys: Vec<_> = value["targets"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "targets are sorted");
    assert!(value["targets"]["x86_64-unknown-linux-musl"]["sha256"].is_string());
    let err = Manifest::from_json("{\"version\": 1}").unwrap_err();
    assert!(err.to_string().contains("manifest.json"), "{err}");
}

#[test]
fn packaging_rejects_inconsistent_specs() {
    let i = inputs();
    let out = tempfile::tempdir().unwrap();
    let mut s = specs(&i, "1.2.3", 0);
    s[1].version = "1.2.4".into();
    let err = package(&s, out.path()).unwrap_err();
    assert!(err.to_string().contains("version"), "{err}");
    let s = vec![
        specs(&i, "1.2.3", 0).remove(0),
        specs(&i, "1.2.3", 0).remove(0),
    ];
    assert!(
        package(&s, out.path())
            .unwrap_err()
            .to_string()
            .contains("each target once")
    );
    for bad in ["dir/LICENSE", "..", "."] {
        let mut s = specs(&i, "1.2.3", 0);
        s[0].entries[1].name = bad.into();
        let err = package(&s, out.path()).unwrap_err();
        assert!(
            err.to_string().contains("without directories"),
            "{bad}: {err}"
        );
    }
}

mod props {
    use super::*;
    use flow_publish::{ArchiveEntry, build_archive};
    use proptest::prelude::*;

    fn entries_strategy() -> impl Strategy<Value = Vec<(String, Vec<u8>, bool)>> {
        prop::collection::btree_map(
            "[A-Za-z0-9_-][A-Za-z0-9_.-]{0,11}",
            (prop::collection::vec(any::<u8>(), 0..2048), any::<bool>()),
            1..6,
        )
        .prop_map(|m| m.into_iter().map(|(k, (d, x))| (k, d, x)).collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Whatever the input order and file timestamps, the archive is the same bytes and holds
        /// exactly the inputs, sorted.
        #[test]
        fn archives_are_a_pure_function_of_names_bytes_modes_and_mtime(
            files in entries_strategy(),
            mtime in 0u64..4_000_000_000,
            windows in any::<bool>(),
        ) {
            let src = tempfile::tempdir().unwrap();
            let entries: Vec<ArchiveEntry> = files
                .iter()
                .map(|(name, data, exec)| {
                    let path = src.path().join(name);
                    std::fs::write(&path, data).unwrap();
                    ArchiveEntry { name: name.clone(), source: path, executable: *exec }
                })
                .collect();
            let target = if windows { "x86_64-pc-windows-msvc" } else { "x86_64-unknown-linux-musl" };
            let spec = |entries: Vec<ArchiveEntry>| ArchiveSpec {
                name: "t".into(),
                version: "1.0.0".into(),
                target: target.into(),
                entries,
                mtime,
            };
            let mut reversed = entries.clone();
            reversed.reverse();
            let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
            let x = build_archive(&spec(entries), a.path()).unwrap();
            let y = build_archive(&spec(reversed), b.path()).unwrap();
            prop_assert_eq!(std::fs::read(&x.path).unwrap(), std::fs::read(&y.path).unwrap());
            if !windows {
                let read = read_tar(&x.path);
                let got: Vec<(String, Vec<u8>, bool)> =
                    read.into_iter().map(|(n, m, t, d)| {
                        assert_eq!(t, mtime);
                        (n, d, m == 0o755)
                    }).collect();
                prop_assert_eq!(got, files);
            }
        }
    }
}
