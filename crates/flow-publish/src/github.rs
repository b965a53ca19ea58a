//! The GitHub REST implementation of [`Publisher`].
//!
//! Idempotent: the release is looked up by tag among all releases (drafts included), so a rerun
//! reuses it. An asset already on the release is kept when its digest equals the local SHA-256
//! and deleted and uploaded again otherwise (including a failed upload left in state `starter`).
//! A published immutable release is never edited: its assets are only verified, and a difference
//! is an [`ErrorKind::ImmutableRelease`] error.
//!
//! Digests come from the asset's `digest: "sha256:<hex>"` field; when GitHub omits it, the asset
//! is downloaded and hashed.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Method, RequestBuilder, Response};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;
use tracing::Instrument;

use crate::error::{Error, ErrorKind, Result};
use crate::package::{Asset, sha256_hex};
use crate::release::{Publisher, ReleasePlan, ReleaseReport, ReleaseStep};

/// GitHub's public API.
pub const DEFAULT_API_BASE: &str = "https://api.github.com";

/// Releases through the GitHub REST API.
#[derive(Debug, Clone)]
pub struct GitHubPublisher {
    client: reqwest::Client,
    token: SecretString,
    api_base: String,
    upload_base: Option<String>,
}

#[derive(Debug, Deserialize)]
struct GhRelease {
    id: u64,
    tag_name: String,
    #[serde(default)]
    draft: bool,
    #[serde(default)]
    immutable: bool,
    upload_url: String,
    #[serde(default)]
    html_url: Option<String>,
    #[serde(default)]
    assets: Vec<GhAsset>,
}

#[derive(Debug, Clone, Deserialize)]
struct GhAsset {
    id: u64,
    name: String,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    digest: Option<String>,
}

#[derive(Debug, Deserialize)]
struct GhRef {
    object: GhObject,
}

#[derive(Debug, Deserialize)]
struct GhObject {
    sha: String,
}

impl GitHubPublisher {
    /// A publisher for `https://api.github.com` authenticating with `token`.
    ///
    /// # Errors
    /// [`ErrorKind::Http`] when the HTTP client cannot be built (no TLS backend).
    pub fn new(token: SecretString) -> Result<Self> {
        // ring as the process's crypto provider (see [workspace.dependencies] reqwest); a
        // no-op when one is installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .user_agent(concat!("flow-publish/", env!("CARGO_PKG_VERSION")))
            .timeout(Duration::from_secs(300))
            .build()
            .map_err(|e| Error::new(http_error("build http client", None, e.to_string())))?;
        Ok(Self {
            client,
            token,
            api_base: DEFAULT_API_BASE.to_owned(),
            upload_base: None,
        })
    }

    /// Uses another API base URL (GitHub Enterprise's `https://host/api/v3`, a test server).
    #[must_use]
    pub fn with_api_base(mut self, base: impl Into<String>) -> Self {
        self.api_base = base.into().trim_end_matches('/').to_owned();
        self
    }

    /// Sends uploads to this scheme, host and port instead of the host of the release's
    /// `upload_url` (whose path is kept). By default the `upload_url` is used as given.
    #[must_use]
    pub fn with_upload_base(mut self, base: impl Into<String>) -> Self {
        self.upload_base = Some(base.into().trim_end_matches('/').to_owned());
        self
    }

    /// Uses this HTTP client (timeouts, proxies); it should set a `User-Agent`.
    #[must_use]
    pub fn with_client(mut self, client: reqwest::Client) -> Self {
        self.client = client;
        self
    }

    fn request(&self, method: Method, url: &str) -> RequestBuilder {
        self.request_accepting(method, url, "application/vnd.github+json")
    }

    fn request_accepting(&self, method: Method, url: &str, accept: &str) -> RequestBuilder {
        self.client
            .request(method, url)
            .bearer_auth(self.token.expose_secret())
            .header("Accept", accept)
            .header("X-GitHub-Api-Version", "2022-11-28")
    }

    fn repo_url(&self, plan: &ReleasePlan, path: &str) -> String {
        format!(
            "{}/repos/{}/{}/{path}",
            self.api_base, plan.owner, plan.repo
        )
    }

    async fn send(&self, operation: &str, request: RequestBuilder) -> Result<Response> {
        let response = request
            .send()
            .await
            .map_err(|e| Error::new(http_error(operation, None, e.to_string())))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
            .unwrap_or_else(|| body.chars().take(200).collect());
        // A proxy or server that echoes the request's headers must not put the token in the
        // error.
        let token = self.token.expose_secret();
        let message = if token.len() >= 4 && message.contains(token) {
            message.replace(token, "[redacted]")
        } else {
            message
        };
        Err(Error::new(http_error(operation, Some(status), message)))
    }

    async fn json<T: for<'de> Deserialize<'de>>(
        &self,
        operation: &str,
        request: RequestBuilder,
    ) -> Result<T> {
        let response = self.send(operation, request).await?;
        response.json().await.map_err(|e| {
            Error::new(http_error(
                operation,
                None,
                format!("unexpected response body: {e}"),
            ))
        })
    }

    async fn find_release(&self, plan: &ReleasePlan) -> Result<Option<GhRelease>> {
        // `GET /releases/tags/{tag}` does not see drafts, so list them.
        let tag = plan.tag();
        for page in 1..=10u32 {
            let url = self.repo_url(plan, "releases");
            let request = self
                .request(Method::GET, &url)
                .query(&[("per_page", "100"), ("page", &page.to_string())]);
            let releases: Vec<GhRelease> = self.json("list releases", request).await?;
            let count = releases.len();
            if let Some(found) = releases.into_iter().find(|r| r.tag_name == tag) {
                return Ok(Some(found));
            }
            if count < 100 {
                break;
            }
        }
        Ok(None)
    }

    async fn create_release(&self, plan: &ReleasePlan) -> Result<GhRelease> {
        let tag = plan.tag();
        let body = json!({
            "tag_name": tag,
            "target_commitish": plan.commit,
            "name": tag,
            "body": plan.notes,
            "draft": true,
            "prerelease": plan.is_prerelease(),
        });
        let request = self
            .request(Method::POST, &self.repo_url(plan, "releases"))
            .json(&body);
        self.json(&format!("create release {tag}"), request).await
    }

    fn upload_url(&self, release: &GhRelease) -> Result<String> {
        let template = release.upload_url.as_str();
        let bare = template.split('{').next().unwrap_or(template);
        let Some(base) = &self.upload_base else {
            return Ok(bare.to_owned());
        };
        let parsed = url::Url::parse(bare)
            .map_err(|e| Error::input("release.upload_url", format!("an absolute URL: {e}")))?;
        Ok(format!("{base}{}", parsed.path()))
    }

    async fn upload(&self, release: &GhRelease, asset: &Asset) -> Result<GhAsset> {
        // Read without blocking the runtime: archives can be tens of megabytes.
        let bytes = tokio::fs::read(&asset.path)
            .await
            .map_err(|e| Error::io(&asset.path, e))?;
        let request = self
            .request(Method::POST, &self.upload_url(release)?)
            .query(&[("name", asset.name.as_str())])
            .header("Content-Type", asset.content_type.as_str())
            .body(bytes);
        self.json(&format!("upload {}", asset.name), request).await
    }

    async fn delete_asset(&self, plan: &ReleasePlan, remote: &GhAsset) -> Result<()> {
        let url = self.repo_url(plan, &format!("releases/assets/{}", remote.id));
        self.send(
            &format!("delete asset {}", remote.name),
            self.request(Method::DELETE, &url),
        )
        .await
        .map(drop)
    }

    /// The asset's SHA-256 as GitHub has it: the `digest` field, else its metadata fetched again,
    /// else its bytes downloaded and hashed.
    async fn remote_sha256(&self, plan: &ReleasePlan, remote: &GhAsset) -> Result<String> {
        if let Some(hex) = remote
            .digest
            .as_deref()
            .and_then(|d| d.strip_prefix("sha256:"))
        {
            return Ok(hex.to_ascii_lowercase());
        }
        let url = self.repo_url(plan, &format!("releases/assets/{}", remote.id));
        let fresh: GhAsset = self
            .json(
                &format!("get asset {}", remote.name),
                self.request(Method::GET, &url),
            )
            .await?;
        if let Some(hex) = fresh
            .digest
            .as_deref()
            .and_then(|d| d.strip_prefix("sha256:"))
        {
            return Ok(hex.to_ascii_lowercase());
        }
        let operation = format!("download asset {}", remote.name);
        let response = self
            .send(
                &operation,
                self.request_accepting(Method::GET, &url, "application/octet-stream"),
            )
            .await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|e| Error::new(http_error(&operation, None, e.to_string())))?;
        Ok(sha256_hex(&bytes))
    }

    async fn publish(&self, plan: &ReleasePlan, release: &GhRelease) -> Result<GhRelease> {
        let url = self.repo_url(plan, &format!("releases/{}", release.id));
        let request = self
            .request(Method::PATCH, &url)
            .json(&json!({ "draft": false }));
        self.json(&format!("publish release {}", plan.tag()), request)
            .await
    }

    async fn move_major_tag(&self, plan: &ReleasePlan, tag: &str) -> Result<ReleaseStep> {
        let get_url = self.repo_url(plan, &format!("git/ref/tags/{tag}"));
        let current = self
            .send(
                &format!("get tag {tag}"),
                self.request(Method::GET, &get_url),
            )
            .await;
        match current {
            Ok(response) => {
                let current: GhRef = response.json().await.map_err(|e| {
                    Error::new(http_error(
                        &format!("get tag {tag}"),
                        None,
                        format!("unexpected response body: {e}"),
                    ))
                })?;
                if current.object.sha.eq_ignore_ascii_case(&plan.commit) {
                    return Ok(ReleaseStep::MajorTagUnchanged {
                        tag: tag.to_owned(),
                    });
                }
                let url = self.repo_url(plan, &format!("git/refs/tags/{tag}"));
                let request = self
                    .request(Method::PATCH, &url)
                    .json(&json!({ "sha": plan.commit, "force": true }));
                self.send(&format!("move tag {tag}"), request).await?;
                Ok(ReleaseStep::MajorTagMoved {
                    tag: tag.to_owned(),
                    sha: plan.commit.clone(),
                })
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::Http {
                        status: Some(404),
                        ..
                    }
                ) =>
            {
                let request = self
                    .request(Method::POST, &self.repo_url(plan, "git/refs"))
                    .json(&json!({ "ref": format!("refs/tags/{tag}"), "sha": plan.commit }));
                self.send(&format!("create tag {tag}"), request).await?;
                Ok(ReleaseStep::MajorTagCreated {
                    tag: tag.to_owned(),
                    sha: plan.commit.clone(),
                })
            }
            Err(e) => Err(e),
        }
    }

    async fn verify_immutable(
        &self,
        plan: &ReleasePlan,
        release: &GhRelease,
        steps: &mut Vec<ReleaseStep>,
    ) -> Result<()> {
        let tag = plan.tag();
        for asset in &plan.assets {
            let Some(remote) = release.assets.iter().find(|a| a.name == asset.name) else {
                return Err(Error::new(ErrorKind::ImmutableRelease {
                    tag,
                    message: format!("asset {} is missing and cannot be added", asset.name),
                }));
            };
            let actual = self.remote_sha256(plan, remote).await?;
            if actual != asset.sha256 {
                return Err(Error::new(ErrorKind::ImmutableRelease {
                    tag,
                    message: format!(
                        "asset {} has sha256:{actual}, expected sha256:{}; publish a new version instead",
                        asset.name, asset.sha256
                    ),
                }));
            }
            steps.push(ReleaseStep::AssetReused {
                name: asset.name.clone(),
            });
            steps.push(ReleaseStep::AssetVerified {
                name: asset.name.clone(),
                sha256: actual,
            });
        }
        Ok(())
    }

    async fn run(&self, plan: &ReleasePlan) -> Result<ReleaseReport> {
        let tag = plan.tag();
        let mut steps = Vec::new();
        let release = match self.find_release(plan).await? {
            Some(found) => {
                note(
                    &mut steps,
                    ReleaseStep::ReleaseReused {
                        tag: tag.clone(),
                        draft: found.draft,
                    },
                );
                found
            }
            None => {
                let created = self.create_release(plan).await?;
                note(&mut steps, ReleaseStep::DraftCreated { tag: tag.clone() });
                created
            }
        };

        if !release.draft && release.immutable {
            self.verify_immutable(plan, &release, &mut steps).await?;
        } else {
            for asset in &plan.assets {
                let existing = release.assets.iter().find(|a| a.name == asset.name);
                if let Some(remote) = existing {
                    let uploaded = remote.state.as_deref().is_none_or(|s| s == "uploaded");
                    if uploaded && self.remote_sha256(plan, remote).await? == asset.sha256 {
                        note(
                            &mut steps,
                            ReleaseStep::AssetReused {
                                name: asset.name.clone(),
                            },
                        );
                        note(
                            &mut steps,
                            ReleaseStep::AssetVerified {
                                name: asset.name.clone(),
                                sha256: asset.sha256.clone(),
                            },
                        );
                        continue;
                    }
                    self.delete_asset(plan, remote).await?;
                    note(
                        &mut steps,
                        ReleaseStep::AssetDeleted {
                            name: asset.name.clone(),
                        },
                    );
                }
                let remote = self.upload(&release, asset).await?;
                note(
                    &mut steps,
                    ReleaseStep::AssetUploaded {
                        name: asset.name.clone(),
                    },
                );
                let actual = self.remote_sha256(plan, &remote).await?;
                if actual != asset.sha256 {
                    return Err(Error::new(ErrorKind::DigestMismatch {
                        asset: asset.name.clone(),
                        expected: asset.sha256.clone(),
                        actual,
                    }));
                }
                note(
                    &mut steps,
                    ReleaseStep::AssetVerified {
                        name: asset.name.clone(),
                        sha256: actual,
                    },
                );
            }
        }

        let html_url = if release.draft {
            let published = self.publish(plan, &release).await?;
            note(&mut steps, ReleaseStep::Published { tag: tag.clone() });
            published.html_url
        } else {
            note(
                &mut steps,
                ReleaseStep::AlreadyPublished { tag: tag.clone() },
            );
            release.html_url.clone()
        };

        if let Some(major) = &plan.major_tag {
            let step = self.move_major_tag(plan, major).await?;
            note(&mut steps, step);
        }
        Ok(ReleaseReport { html_url, steps })
    }
}

fn note(steps: &mut Vec<ReleaseStep>, step: ReleaseStep) {
    tracing::info!(step = %step, "release step");
    steps.push(step);
}

fn http_error(operation: &str, status: Option<u16>, message: String) -> ErrorKind {
    ErrorKind::Http {
        operation: operation.to_owned(),
        status,
        message,
    }
}

#[async_trait]
impl Publisher for GitHubPublisher {
    async fn release(&self, plan: &ReleasePlan) -> Result<ReleaseReport> {
        let span = tracing::info_span!("flow.publish", tag = %plan.tag(), repo = %format!("{}/{}", plan.owner, plan.repo));
        self.run(plan).instrument(span).await
    }
}
