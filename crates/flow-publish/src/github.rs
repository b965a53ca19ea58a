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

use async_trait::async_trait;
use bytes::Bytes;
use flow_github::{Client, Config, Request, Response};
use flow_orchestrator_core::Timing;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;
use tracing::Instrument;

use crate::error::{Error, ErrorKind, Result};
use crate::package::{Asset, sha256_hex};
use crate::release::{Publisher, ReleasePlan, ReleaseReport, ReleaseStep};

/// GitHub's public API.
pub const DEFAULT_API_BASE: &str = flow_github::DEFAULT_API_URL;

/// Releases through the GitHub REST API (flow-github's client: rate limits waited out, reads
/// retried on server errors; uploads, which may have been carried out, are not sent twice).
#[derive(Debug, Clone)]
pub struct GitHubPublisher {
    token: SecretString,
    api_base: String,
    upload_base: Option<String>,
    timing: Timing,
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
    /// [`ErrorKind::InvalidInput`] naming `token` when it cannot be sent in a header.
    pub fn new(token: SecretString) -> Result<Self> {
        let publisher = Self {
            token,
            api_base: DEFAULT_API_BASE.to_owned(),
            upload_base: None,
            timing: Timing::default(),
        };
        publisher
            .config()
            .check()
            .map_err(|e| github("check the settings", e))?;
        Ok(publisher)
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

    /// Uses `timing` for rate-limit and retry waits and their back-off (tests never really
    /// wait: [`Timing::manual`]).
    #[must_use]
    pub fn with_timing(mut self, timing: Timing) -> Self {
        self.timing = timing;
        self
    }

    fn config(&self) -> Config {
        // One-shot: ETags would save nothing, and an asset's JSON and bytes share a URL.
        Config::new()
            .with_base_url(self.api_base.clone())
            .with_token(self.token.clone())
            .with_conditional(false)
            .with_timeout(std::time::Duration::from_secs(300))
    }

    /// The client of one release run, built in the runtime that runs it.
    fn client(&self) -> Result<Client> {
        Ok(Client::new(self.config())
            .map_err(|e| github("connect to the github api", e))?
            .with_timing(self.timing.clone()))
    }

    fn repo_path(plan: &ReleasePlan, path: &str) -> String {
        format!("/repos/{}/{}/{path}", plan.owner, plan.repo)
    }

    async fn send(client: &Client, operation: &str, request: Request) -> Result<Response> {
        client.send(request).await.map_err(|e| github(operation, e))
    }

    async fn json<T: for<'de> Deserialize<'de>>(
        client: &Client,
        operation: &str,
        request: Request,
    ) -> Result<T> {
        let response = Self::send(client, operation, request).await?;
        response.json().map_err(|e| github(operation, e))
    }

    fn with_json(operation: &str, request: Request, body: &serde_json::Value) -> Result<Request> {
        request.with_json(body).map_err(|e| github(operation, e))
    }

    async fn find_release(client: &Client, plan: &ReleasePlan) -> Result<Option<GhRelease>> {
        // `GET /releases/tags/{tag}` does not see drafts, so list them.
        let tag = plan.tag();
        let operation = "list releases";
        let first = Self::repo_path(plan, "releases?per_page=100&page=1");
        let mut pages = client.pages(&first, 10);
        while let Some(page) = pages.next().await.map_err(|e| github(operation, e))? {
            let releases: Vec<GhRelease> = page.json().map_err(|e| github(operation, e))?;
            if let Some(found) = releases.into_iter().find(|r| r.tag_name == tag) {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    async fn create_release(client: &Client, plan: &ReleasePlan) -> Result<GhRelease> {
        let tag = plan.tag();
        let operation = format!("create release {tag}");
        let body = json!({
            "tag_name": tag,
            "target_commitish": plan.commit,
            "name": tag,
            "body": plan.notes,
            "draft": true,
            "prerelease": plan.is_prerelease(),
        });
        let request = Self::with_json(
            &operation,
            Request::post(Self::repo_path(plan, "releases")),
            &body,
        )?;
        Self::json(client, &operation, request).await
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

    async fn upload(&self, client: &Client, release: &GhRelease, asset: &Asset) -> Result<GhAsset> {
        // Read without blocking the runtime: archives can be tens of megabytes.
        let bytes = tokio::fs::read(&asset.path)
            .await
            .map_err(|e| Error::io(&asset.path, e))?;
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("name", &asset.name)
            .finish();
        let url = format!("{}?{query}", self.upload_url(release)?);
        let request = Request::upload(url, asset.content_type.as_str(), Bytes::from(bytes));
        Self::json(client, &format!("upload {}", asset.name), request).await
    }

    async fn delete_asset(client: &Client, plan: &ReleasePlan, remote: &GhAsset) -> Result<()> {
        let path = Self::repo_path(plan, &format!("releases/assets/{}", remote.id));
        Self::send(
            client,
            &format!("delete asset {}", remote.name),
            Request::delete(path),
        )
        .await
        .map(drop)
    }

    /// The asset's SHA-256 as GitHub has it: the `digest` field, else its metadata fetched again,
    /// else its bytes downloaded and hashed.
    async fn remote_sha256(
        client: &Client,
        plan: &ReleasePlan,
        remote: &GhAsset,
    ) -> Result<String> {
        if let Some(hex) = remote
            .digest
            .as_deref()
            .and_then(|d| d.strip_prefix("sha256:"))
        {
            return Ok(hex.to_ascii_lowercase());
        }
        let path = Self::repo_path(plan, &format!("releases/assets/{}", remote.id));
        let fresh: GhAsset = Self::json(
            client,
            &format!("get asset {}", remote.name),
            Request::get(path.as_str()),
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
        let response = Self::send(
            client,
            &operation,
            Request::get(path).with_accept("application/octet-stream"),
        )
        .await?;
        // GitHub redirects to a signed link on another host: fetched without the token.
        if let Some(location) = response
            .location()
            .filter(|_| response.status().is_redirection())
        {
            let bytes = client
                .download_tail(location, "release asset download", usize::MAX)
                .await
                .map_err(|e| github(&operation, e))?
                .ok_or_else(|| Error::new(http_error(&operation, Some(404), "not found".into())))?;
            return Ok(sha256_hex(&bytes));
        }
        Ok(sha256_hex(response.body()))
    }

    async fn publish(
        client: &Client,
        plan: &ReleasePlan,
        release: &GhRelease,
    ) -> Result<GhRelease> {
        let operation = format!("publish release {}", plan.tag());
        let path = Self::repo_path(plan, &format!("releases/{}", release.id));
        let request =
            Self::with_json(&operation, Request::patch(path), &json!({ "draft": false }))?;
        Self::json(client, &operation, request).await
    }

    async fn move_major_tag(client: &Client, plan: &ReleasePlan, tag: &str) -> Result<ReleaseStep> {
        let get = format!("get tag {tag}");
        let current: Result<GhRef> = Self::json(
            client,
            &get,
            Request::get(Self::repo_path(plan, &format!("git/ref/tags/{tag}"))),
        )
        .await;
        match current {
            Ok(current) => {
                if current.object.sha.eq_ignore_ascii_case(&plan.commit) {
                    return Ok(ReleaseStep::MajorTagUnchanged {
                        tag: tag.to_owned(),
                    });
                }
                let operation = format!("move tag {tag}");
                let request = Self::with_json(
                    &operation,
                    Request::patch(Self::repo_path(plan, &format!("git/refs/tags/{tag}"))),
                    &json!({ "sha": plan.commit, "force": true }),
                )?;
                Self::send(client, &operation, request).await?;
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
                let operation = format!("create tag {tag}");
                let request = Self::with_json(
                    &operation,
                    Request::post(Self::repo_path(plan, "git/refs")),
                    &json!({ "ref": format!("refs/tags/{tag}"), "sha": plan.commit }),
                )?;
                Self::send(client, &operation, request).await?;
                Ok(ReleaseStep::MajorTagCreated {
                    tag: tag.to_owned(),
                    sha: plan.commit.clone(),
                })
            }
            Err(e) => Err(e),
        }
    }

    async fn verify_immutable(
        client: &Client,
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
            let actual = Self::remote_sha256(client, plan, remote).await?;
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
        let client = self.client()?;
        let client = &client;
        let mut steps = Vec::new();
        let release = match Self::find_release(client, plan).await? {
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
                let created = Self::create_release(client, plan).await?;
                note(&mut steps, ReleaseStep::DraftCreated { tag: tag.clone() });
                created
            }
        };

        if !release.draft && release.immutable {
            Self::verify_immutable(client, plan, &release, &mut steps).await?;
        } else {
            for asset in &plan.assets {
                let existing = release.assets.iter().find(|a| a.name == asset.name);
                if let Some(remote) = existing {
                    let uploaded = remote.state.as_deref().is_none_or(|s| s == "uploaded");
                    if uploaded && Self::remote_sha256(client, plan, remote).await? == asset.sha256
                    {
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
                    Self::delete_asset(client, plan, remote).await?;
                    note(
                        &mut steps,
                        ReleaseStep::AssetDeleted {
                            name: asset.name.clone(),
                        },
                    );
                }
                let remote = self.upload(client, &release, asset).await?;
                note(
                    &mut steps,
                    ReleaseStep::AssetUploaded {
                        name: asset.name.clone(),
                    },
                );
                let actual = Self::remote_sha256(client, plan, &remote).await?;
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
            let published = Self::publish(client, plan, &release).await?;
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
            let step = Self::move_major_tag(client, plan, major).await?;
            note(&mut steps, step);
        }
        Ok(ReleaseReport { html_url, steps })
    }
}

fn note(steps: &mut Vec<ReleaseStep>, step: ReleaseStep) {
    tracing::info!(step = %step, "release step");
    steps.push(step);
}

/// A flow-github error as this crate's, naming `operation` and keeping the cause as source.
fn github(operation: &str, e: flow_github::Error) -> Error {
    use flow_github::ErrorKind as Gh;
    let kind = match e.kind() {
        Gh::Status { status, message } => http_error(operation, Some(*status), message.clone()),
        Gh::RateLimited { retry_after, .. } => ErrorKind::RateLimited {
            operation: operation.to_owned(),
            retry_after_ms: u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX),
        },
        Gh::InvalidArgument { name, expected } => ErrorKind::InvalidInput {
            field: name.clone(),
            expected: expected.clone(),
        },
        // No response or an unreadable body: the cause is the source.
        other => http_error(operation, None, other.to_string()),
    };
    Error::with_source(kind, e)
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
