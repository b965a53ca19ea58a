//! The release flow against local wiremock servers speaking GitHub's wire format (bodies from
//! GitHub's OpenAPI examples in `tests/fixtures/github`). The API and the upload host are two
//! servers, as `api.github.com` and `uploads.github.com` are.

use flow_publish::{
    ArchiveSpec, Asset, DryRunPublisher, ErrorKind, GitHubPublisher, Publisher, ReleasePlan,
    ReleaseStep, changelog_section, package, sha256_hex,
};
use secrecy::SecretString;
use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::samples::fixture;

const SHA: &str = "aa218f56b14c9653891f9e74264a383fa43fefbd";
const OLD_SHA: &str = "0000000000000000000000000000000000000001";
const RELEASES: &str = "/repos/octo/tool/releases";

struct Setup {
    _dir: tempfile::TempDir,
    plan: ReleasePlan,
    api: MockServer,
    uploads: MockServer,
}

impl Setup {
    fn a(&self) -> &Asset {
        &self.plan.assets[0]
    }
    fn b(&self) -> &Asset {
        &self.plan.assets[1]
    }
    fn publisher(&self) -> GitHubPublisher {
        GitHubPublisher::new(SecretString::from("t0ken-value"))
            .unwrap()
            .with_api_base(self.api.uri())
    }
    fn upload_url(&self) -> String {
        format!("{}{RELEASES}/7/assets{{?name,label}}", self.uploads.uri())
    }
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    for (name, text) in [
        ("bin", "binary"),
        ("LICENSE", "MIT"),
        ("README.md", "# tool"),
    ] {
        std::fs::write(src.join(name), text).unwrap();
    }
    let specs: Vec<ArchiveSpec> = ["x86_64-unknown-linux-musl", "x86_64-pc-windows-msvc"]
        .iter()
        .map(|t| {
            ArchiveSpec::new(
                "tool",
                "1.2.3",
                *t,
                src.join("bin"),
                src.join("LICENSE"),
                src.join("README.md"),
            )
            .with_mtime(0)
        })
        .collect();
    let (mut assets, _) = package(&specs, &dir.path().join("dist")).unwrap();
    assets.pop(); // the manifest; two archives are enough here
    let changelog = "## [Unreleased]\n\n## [1.2.3] - 2026-11-25\n\n### Added\n- a tool\n";
    let notes = changelog_section(changelog, "1.2.3").unwrap();
    let plan = ReleasePlan::new("octo", "tool", "1.2.3", SHA, notes, assets).unwrap();
    Setup {
        _dir: dir,
        plan,
        api: MockServer::start().await,
        uploads: MockServer::start().await,
    }
}

/// A release body from GitHub's example, adjusted.
fn release_json(s: &Setup, draft: bool, immutable: bool, assets: Vec<Value>) -> Value {
    let mut v: Value = serde_json::from_str(&fixture("github/release.json")).unwrap();
    v["id"] = json!(7);
    v["tag_name"] = json!("v1.2.3");
    v["draft"] = json!(draft);
    v["immutable"] = json!(immutable);
    v["upload_url"] = json!(s.upload_url());
    v["html_url"] = json!("https://github.com/octo/tool/releases/tag/v1.2.3");
    v["assets"] = Value::Array(assets);
    v
}

/// An asset body from GitHub's example, adjusted.
fn asset_json(id: u64, name: &str, state: &str, digest: Option<&str>) -> Value {
    let mut v: Value = serde_json::from_str(&fixture("github/release-asset.json")).unwrap();
    v["id"] = json!(id);
    v["name"] = json!(name);
    v["state"] = json!(state);
    v["digest"] = digest.map_or(Value::Null, |d| json!(format!("sha256:{d}")));
    v
}

fn ref_json(sha: &str) -> Value {
    let mut v: Value = serde_json::from_str(&fixture("github/git-ref.json")).unwrap();
    v["ref"] = json!("refs/tags/v1");
    v["object"]["sha"] = json!(sha);
    v
}

/// Upload endpoint answering like GitHub: the asset, with the digest of the bytes it received.
async fn mount_uploads(s: &Setup, name: &str, times: u64) {
    let asset_name = name.to_owned();
    Mock::given(method("POST"))
        .and(path(format!("{RELEASES}/7/assets")))
        .and(query_param("name", name))
        .and(header("authorization", "Bearer t0ken-value"))
        .respond_with(move |req: &Request| {
            let digest = sha256_hex(&req.body);
            ResponseTemplate::new(201).set_body_json(asset_json(
                100,
                &asset_name,
                "uploaded",
                Some(&digest),
            ))
        })
        .expect(times)
        .mount(&s.uploads)
        .await;
}

async fn mount_list(s: &Setup, releases: Value) {
    Mock::given(method("GET"))
        .and(path(RELEASES))
        .and(query_param("page", "1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(releases))
        .expect(1)
        .mount(&s.api)
        .await;
}

async fn mount_publish(s: &Setup, times: u64) {
    Mock::given(method("PATCH"))
        .and(path(format!("{RELEASES}/7")))
        .and(body_partial_json(json!({"draft": false})))
        .respond_with(ResponseTemplate::new(200).set_body_json(release_json(
            s,
            false,
            false,
            vec![],
        )))
        .expect(times)
        .mount(&s.api)
        .await;
}

async fn mount_tag_missing(s: &Setup) {
    Mock::given(method("GET"))
        .and(path("/repos/octo/tool/git/ref/tags/v1"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})))
        .expect(1)
        .mount(&s.api)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/octo/tool/git/refs"))
        .and(body_partial_json(
            json!({"ref": "refs/tags/v1", "sha": SHA}),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(ref_json(SHA)))
        .expect(1)
        .mount(&s.api)
        .await;
}

async fn mount_tag_at(s: &Setup, sha: &str, expect_patch: u64) {
    Mock::given(method("GET"))
        .and(path("/repos/octo/tool/git/ref/tags/v1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(ref_json(sha)))
        .expect(1)
        .mount(&s.api)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/repos/octo/tool/git/refs/tags/v1"))
        .and(body_partial_json(json!({"sha": SHA, "force": true})))
        .respond_with(ResponseTemplate::new(200).set_body_json(ref_json(SHA)))
        .expect(expect_patch)
        .mount(&s.api)
        .await;
}

fn names(steps: &[ReleaseStep]) -> Vec<String> {
    steps.iter().map(ToString::to_string).collect()
}

#[tokio::test]
async fn fresh_release_creates_uploads_verifies_publishes_and_tags() {
    let s = setup().await;
    mount_list(&s, json!([])).await;
    Mock::given(method("POST"))
        .and(path(RELEASES))
        .and(header("authorization", "Bearer t0ken-value"))
        .and(body_partial_json(json!({
            "tag_name": "v1.2.3",
            "target_commitish": SHA,
            "draft": true,
            "prerelease": false,
            "body": "### Added\n- a tool",
        })))
        .respond_with(ResponseTemplate::new(201).set_body_json(release_json(
            &s,
            true,
            false,
            vec![],
        )))
        .expect(1)
        .mount(&s.api)
        .await;
    mount_uploads(&s, &s.a().name, 1).await;
    mount_uploads(&s, &s.b().name, 1).await;
    mount_publish(&s, 1).await;
    mount_tag_missing(&s).await;

    let report = s.publisher().release(&s.plan).await.unwrap();
    let (a, b) = (&s.a().name, &s.b().name);
    assert_eq!(
        names(&report.steps),
        [
            "created draft release v1.2.3".to_owned(),
            format!("uploaded {a}"),
            format!("verified {a} sha256:{}", s.a().sha256),
            format!("uploaded {b}"),
            format!("verified {b} sha256:{}", s.b().sha256),
            "published v1.2.3".to_owned(),
            format!("created tag v1 at {SHA}"),
        ]
    );
    assert_eq!(
        report.html_url.as_deref(),
        Some("https://github.com/octo/tool/releases/tag/v1.2.3")
    );
}

#[tokio::test]
async fn rerun_after_a_failed_upload_resumes() {
    let s = setup().await;
    // Run 1: the second upload fails with a 502.
    mount_list(&s, json!([])).await;
    Mock::given(method("POST"))
        .and(path(RELEASES))
        .respond_with(ResponseTemplate::new(201).set_body_json(release_json(
            &s,
            true,
            false,
            vec![],
        )))
        .expect(1)
        .mount(&s.api)
        .await;
    mount_uploads(&s, &s.a().name, 1).await;
    Mock::given(method("POST"))
        .and(path(format!("{RELEASES}/7/assets")))
        .and(query_param("name", s.b().name.as_str()))
        .respond_with(ResponseTemplate::new(502).set_body_json(json!({"message": "Bad Gateway"})))
        .expect(1)
        .mount(&s.uploads)
        .await;
    mount_publish(&s, 0).await;

    let err = s.publisher().release(&s.plan).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("upload {}: status 502", s.b().name)),
        "{err}"
    );
    s.api.verify().await;
    s.uploads.verify().await;
    s.api.reset().await;
    s.uploads.reset().await;

    // Run 2: the draft exists with the first asset done and the second left in `starter`.
    let existing = vec![
        asset_json(1, &s.a().name, "uploaded", Some(&s.a().sha256)),
        asset_json(2, &s.b().name, "starter", None),
    ];
    mount_list(&s, json!([release_json(&s, true, false, existing)])).await;
    Mock::given(method("DELETE"))
        .and(path("/repos/octo/tool/releases/assets/2"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&s.api)
        .await;
    mount_uploads(&s, &s.a().name, 0).await;
    mount_uploads(&s, &s.b().name, 1).await;
    mount_publish(&s, 1).await;
    mount_tag_at(&s, OLD_SHA, 1).await;

    let report = s.publisher().release(&s.plan).await.unwrap();
    let (a, b) = (&s.a().name, &s.b().name);
    assert_eq!(
        names(&report.steps),
        [
            "reused draft release v1.2.3".to_owned(),
            format!("kept {a} (digest matches)"),
            format!("verified {a} sha256:{}", s.a().sha256),
            format!("deleted {b} (digest differs or upload failed)"),
            format!("uploaded {b}"),
            format!("verified {b} sha256:{}", s.b().sha256),
            "published v1.2.3".to_owned(),
            format!("moved tag v1 to {SHA}"),
        ]
    );
}

#[tokio::test]
async fn an_existing_asset_with_another_digest_is_replaced() {
    let s = setup().await;
    let wrong = "f".repeat(64);
    let existing = vec![
        asset_json(1, &s.a().name, "uploaded", Some(&wrong)),
        asset_json(2, &s.b().name, "uploaded", Some(&s.b().sha256)),
    ];
    mount_list(&s, json!([release_json(&s, true, false, existing)])).await;
    Mock::given(method("DELETE"))
        .and(path("/repos/octo/tool/releases/assets/1"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&s.api)
        .await;
    mount_uploads(&s, &s.a().name, 1).await;
    mount_uploads(&s, &s.b().name, 0).await;
    mount_publish(&s, 1).await;
    mount_tag_at(&s, SHA, 0).await;

    let report = s.publisher().release(&s.plan).await.unwrap();
    let steps = names(&report.steps);
    assert!(steps.contains(&format!(
        "deleted {} (digest differs or upload failed)",
        s.a().name
    )));
    assert!(steps.contains(&format!("kept {} (digest matches)", s.b().name)));
    assert_eq!(steps.last().unwrap(), "tag v1 already at the commit");
}

#[tokio::test]
async fn a_digest_mismatch_after_upload_stops_before_publishing() {
    let s = setup().await;
    mount_list(&s, json!([release_json(&s, true, false, vec![])])).await;
    let name = s.a().name.clone();
    Mock::given(method("POST"))
        .and(path(format!("{RELEASES}/7/assets")))
        .respond_with(move |_: &Request| {
            // GitHub stored other bytes than were sent (a corrupted transfer).
            ResponseTemplate::new(201).set_body_json(asset_json(
                100,
                &name,
                "uploaded",
                Some(&"0".repeat(64)),
            ))
        })
        .expect(1)
        .mount(&s.uploads)
        .await;
    mount_publish(&s, 0).await;

    let err = s.publisher().release(&s.plan).await.unwrap_err();
    match err.kind() {
        ErrorKind::DigestMismatch {
            asset,
            expected,
            actual,
        } => {
            assert_eq!(asset, &s.a().name);
            assert_eq!(expected, &s.a().sha256);
            assert_eq!(actual, &"0".repeat(64));
        }
        other => panic!("expected a digest mismatch, got {other:?}"),
    }
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn without_a_digest_field_the_asset_is_downloaded_and_hashed() {
    let s = setup().await;
    let existing = vec![
        asset_json(1, &s.a().name, "uploaded", None),
        asset_json(2, &s.b().name, "uploaded", Some(&s.b().sha256)),
    ];
    mount_list(&s, json!([release_json(&s, true, false, existing)])).await;
    Mock::given(method("GET"))
        .and(path("/repos/octo/tool/releases/assets/1"))
        .and(header("accept", "application/vnd.github+json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(asset_json(
            1,
            &s.a().name,
            "uploaded",
            None,
        )))
        .expect(1)
        .mount(&s.api)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/octo/tool/releases/assets/1"))
        .and(header("accept", "application/octet-stream"))
        .respond_with(
            ResponseTemplate::new(200).set_body_bytes(std::fs::read(&s.a().path).unwrap()),
        )
        .expect(1)
        .mount(&s.api)
        .await;
    mount_uploads(&s, &s.a().name, 0).await;
    mount_uploads(&s, &s.b().name, 0).await;
    mount_publish(&s, 1).await;
    mount_tag_missing(&s).await;

    let report = s.publisher().release(&s.plan).await.unwrap();
    assert!(names(&report.steps).contains(&format!("kept {} (digest matches)", s.a().name)));
}

#[tokio::test]
async fn a_published_immutable_release_is_only_verified() {
    let s = setup().await;
    let existing = vec![
        asset_json(1, &s.a().name, "uploaded", Some(&s.a().sha256)),
        asset_json(2, &s.b().name, "uploaded", Some(&s.b().sha256)),
    ];
    mount_list(&s, json!([release_json(&s, false, true, existing)])).await;
    mount_uploads(&s, &s.a().name, 0).await;
    mount_publish(&s, 0).await;
    mount_tag_at(&s, OLD_SHA, 1).await;

    let report = s.publisher().release(&s.plan).await.unwrap();
    let steps = names(&report.steps);
    assert_eq!(steps[0], "reused published release v1.2.3");
    assert!(steps.contains(&"v1.2.3 was already published".to_owned()));
    assert_eq!(steps.last().unwrap(), &format!("moved tag v1 to {SHA}"));
}

#[tokio::test]
async fn a_published_immutable_release_with_other_assets_is_an_error_not_an_edit() {
    let s = setup().await;
    let existing = vec![
        asset_json(1, &s.a().name, "uploaded", Some(&"e".repeat(64))),
        asset_json(2, &s.b().name, "uploaded", Some(&s.b().sha256)),
    ];
    mount_list(&s, json!([release_json(&s, false, true, existing)])).await;
    Mock::given(method("DELETE"))
        .respond_with(ResponseTemplate::new(204))
        .expect(0)
        .mount(&s.api)
        .await;
    mount_uploads(&s, &s.a().name, 0).await;

    let err = s.publisher().release(&s.plan).await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::ImmutableRelease { .. }),
        "{err}"
    );
    assert!(err.to_string().contains(&s.a().name), "{err}");
}

#[tokio::test]
async fn the_upload_host_can_be_overridden() {
    let s = setup().await;
    let mut release = release_json(&s, true, false, vec![]);
    release["upload_url"] =
        json!("https://uploads.github.com/repos/octo/tool/releases/7/assets{?name,label}");
    mount_list(&s, json!([release])).await;
    mount_uploads(&s, &s.a().name, 1).await;
    mount_uploads(&s, &s.b().name, 1).await;
    mount_publish(&s, 1).await;
    mount_tag_missing(&s).await;
    let publisher = s.publisher().with_upload_base(s.uploads.uri());
    publisher.release(&s.plan).await.unwrap();
}

#[tokio::test]
async fn errors_name_the_operation_and_never_the_token() {
    let s = setup().await;
    Mock::given(method("GET"))
        .and(path(RELEASES))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(json!({"message": "Bad credentials"})),
        )
        .mount(&s.api)
        .await;
    let publisher = s.publisher();
    let err = publisher.release(&s.plan).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "github: list releases: status 401: Bad credentials"
    );
    assert!(!err.is_retryable());
    assert!(!format!("{publisher:?}{err:?}").contains("t0ken-value"));
}

#[tokio::test]
async fn a_server_echoing_the_authorization_header_does_not_leak_the_token() {
    let s = setup().await;
    Mock::given(method("GET"))
        .and(path(RELEASES))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_string("bad request; you sent: Authorization: Bearer t0ken-value"),
        )
        .mount(&s.api)
        .await;
    let err = s.publisher().release(&s.plan).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "github: list releases: status 400: bad request; you sent: Authorization: Bearer [redacted]"
    );
}

#[tokio::test]
async fn dry_run_prints_each_step() {
    let s = setup().await;
    let dry = DryRunPublisher::new(Vec::new());
    let report = dry.release(&s.plan).await.unwrap();
    assert_eq!(report.steps.len(), 7);
    let out = String::from_utf8(dry.into_inner().unwrap()).unwrap();
    insta::assert_snapshot!("dry_run", out);
    // Nothing was sent anywhere.
    assert!(s.api.received_requests().await.unwrap().is_empty());
}
