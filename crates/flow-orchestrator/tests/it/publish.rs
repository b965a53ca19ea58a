//! publish: validate → package → release, with a mocked publisher.

use std::sync::Arc;

use flow_orchestrator::{ErrorKind, Orchestrator, PublishRequest};
use flow_publish::{ActionMetadata, ArchiveSpec, ReleaseReport, ReleaseStep, Runs, Step};

use crate::mocks::MockPub;

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

fn request(dir: &std::path::Path, meta: ActionMetadata) -> PublishRequest {
    for f in ["flow", "LICENSE", "README.md"] {
        std::fs::write(dir.join(f), format!("{f} contents")).unwrap();
    }
    let spec = |target: &str| {
        ArchiveSpec::new(
            "flow",
            "1.2.3",
            target,
            dir.join("flow"),
            dir.join("LICENSE"),
            dir.join("README.md"),
        )
        .with_mtime(1_700_000_000)
    };
    PublishRequest::new("octo", "hello", "1.2.3", COMMIT, dir.join("dist"))
        .with_metadata(meta)
        .with_archive(spec("x86_64-unknown-linux-gnu"))
        .with_archive(spec("x86_64-pc-windows-msvc"))
        .with_notes("### Added\n- everything")
}

fn good_metadata() -> ActionMetadata {
    ActionMetadata::new("flow", "Delegate decisions to an LLM").with_runs(Runs::composite(vec![
        Step::run("Run flow", "bash", "flow monitor\n"),
    ]))
}

#[tokio::test]
async fn valid_metadata_is_packaged_and_released() {
    let dir = tempfile::tempdir().unwrap();
    let mut publisher = MockPub::new();
    publisher
        .expect_release()
        .withf(|plan| {
            plan.tag() == "v1.2.3"
                && plan.major_tag.as_deref() == Some("v1")
                && plan.commit == COMMIT
                // Two archives and the manifest, each hashed.
                && plan.assets.len() == 3
                && plan.assets.iter().all(|a| a.sha256.len() == 64)
                && plan.assets.iter().any(|a| a.name == "manifest.json")
        })
        .times(1)
        .returning(|plan| {
            Ok(ReleaseReport {
                html_url: Some("https://github.com/octo/hello/releases/tag/v1.2.3".into()),
                steps: vec![ReleaseStep::Published { tag: plan.tag() }],
            })
        });
    let o = Orchestrator::builder()
        .with_publisher(Arc::new(publisher))
        .build()
        .unwrap();
    let report = o
        .publish(&request(dir.path(), good_metadata()))
        .await
        .unwrap();
    assert_eq!(report.manifest.version, "1.2.3");
    assert_eq!(report.manifest.targets.len(), 2);
    assert!(dir.path().join("dist/manifest.json").is_file());
    assert_eq!(report.release.steps.len(), 1);
}

#[tokio::test]
async fn invalid_metadata_stops_before_anything_is_built_or_released() {
    let dir = tempfile::tempdir().unwrap();
    let mut publisher = MockPub::new();
    publisher.expect_release().times(0);
    let o = Orchestrator::builder()
        .with_publisher(Arc::new(publisher))
        .build()
        .unwrap();
    let bad = ActionMetadata::new("", "no name").with_runs(Runs::composite(vec![Step::run(
        "Run",
        "bash",
        "echo ${{ github.event.issue.title }}\n",
    )]));
    let e = o.publish(&request(dir.path(), bad)).await.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Publish(_)), "{e}");
    assert!(e.to_string().contains("name"), "{e}");
    assert!(!dir.path().join("dist").exists());

    // A bad commit is caught before packaging too.
    let mut req = request(dir.path(), good_metadata());
    req.commit = "main".into();
    let e = o.publish(&req).await.unwrap_err();
    assert!(e.to_string().contains("commit"), "{e}");
    assert!(!dir.path().join("dist").exists());
}

#[tokio::test]
async fn publish_without_a_publisher_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let o = Orchestrator::builder().build().unwrap();
    let e = o
        .publish(&request(dir.path(), good_metadata()))
        .await
        .unwrap_err();
    assert!(matches!(
        e.kind(),
        ErrorKind::Missing {
            component: "publisher",
            ..
        }
    ));
}

#[tokio::test]
async fn assets_built_elsewhere_are_released_with_their_merged_manifest() {
    let dir = tempfile::tempdir().unwrap();
    // What a release matrix leaves: archives built per target and the merged manifest.
    let built = request(dir.path(), good_metadata());
    let (assets, manifest) =
        flow_publish::package(&built.archives, &dir.path().join("matrix")).unwrap();
    let merged = flow_publish::merge(
        &[flow_publish::ManifestPart {
            source: "matrix/manifest.json".into(),
            manifest,
        }],
        Some("https://github.com/octo/hello/releases/download"),
    )
    .unwrap();
    let merged_path = dir.path().join("merged/manifest.json");
    std::fs::create_dir_all(merged_path.parent().unwrap()).unwrap();
    std::fs::write(&merged_path, merged.to_json().unwrap()).unwrap();
    let mut req = PublishRequest::new("octo", "hello", "1.2.3", COMMIT, dir.path().join("dist"))
        .with_metadata(good_metadata());
    for a in assets.iter().filter(|a| a.name != "manifest.json") {
        req = req.with_asset(a.clone());
    }
    req = req.with_asset(
        flow_publish::Asset::from_file("manifest", &merged_path, "application/json").unwrap(),
    );

    let mut publisher = MockPub::new();
    let expected_sha = flow_publish::sha256_file(&merged_path).unwrap().0;
    publisher
        .expect_release()
        .withf(move |plan| {
            plan.assets.len() == 3
                && plan
                    .assets
                    .iter()
                    .any(|a| a.name == "manifest.json" && a.sha256 == expected_sha)
        })
        .times(1)
        .returning(|plan| {
            Ok(ReleaseReport {
                html_url: None,
                steps: vec![ReleaseStep::Published { tag: plan.tag() }],
            })
        });
    let o = Orchestrator::builder()
        .with_publisher(Arc::new(publisher))
        .build()
        .unwrap();
    let report = o.publish(&req).await.unwrap();
    assert_eq!(report.manifest, merged);
    // Nothing was built here.
    assert!(!dir.path().join("dist").exists());

    // The same asset twice, or a manifest of another version, is refused before any release.
    let o = Orchestrator::builder()
        .with_publisher(Arc::new(MockPub::new()))
        .build()
        .unwrap();
    let twice = req.clone().with_asset(req.assets[0].clone());
    let e = o.publish(&twice).await.unwrap_err();
    assert!(e.to_string().contains("each asset name once"), "{e}");
    let mut other = req.clone();
    other.version = "1.2.4".into();
    let e = o.publish(&other).await.unwrap_err();
    assert!(e.to_string().contains("expected 1.2.4"), "{e}");
}
