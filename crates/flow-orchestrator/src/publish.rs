//! `publish`: validate the action metadata, package the archives, release them.

use std::path::{Path, PathBuf};

use flow_publish::{
    ActionMetadata, ArchiveSpec, Asset, Finding, Manifest, ReleasePlan, ReleaseReport,
};
use tracing::Instrument;

use crate::error::{Error, Result};
use crate::orchestrator::Orchestrator;

/// What to publish.
#[derive(Debug, Clone)]
pub struct PublishRequest {
    /// The action metadata to validate first (`action.yml`), if any.
    pub metadata: Option<ActionMetadata>,
    /// One archive per target, built here.
    pub archives: Vec<ArchiveSpec>,
    /// Files built elsewhere (a release matrix's archives and the merged `manifest.json`),
    /// uploaded as they are after the archives built here.
    pub assets: Vec<Asset>,
    /// Where the archives and `manifest.json` are written.
    pub out_dir: PathBuf,
    /// Repository owner.
    pub owner: String,
    /// Repository name.
    pub repo: String,
    /// The version without `v`; every archive must carry it.
    pub version: String,
    /// The 40-hex commit the release and the major tag point at.
    pub commit: String,
    /// Release notes (Markdown), e.g. from flow-publish's `changelog_section`.
    pub notes: String,
    /// Move the major tag (`v1`) to the commit (default true).
    pub move_major_tag: bool,
}

impl PublishRequest {
    /// A request for `owner/repo` at `version` and `commit`, with no metadata, archives or
    /// notes yet; output to `out_dir`.
    pub fn new(
        owner: impl Into<String>,
        repo: impl Into<String>,
        version: impl Into<String>,
        commit: impl Into<String>,
        out_dir: impl Into<PathBuf>,
    ) -> Self {
        Self {
            metadata: None,
            archives: Vec::new(),
            assets: Vec::new(),
            out_dir: out_dir.into(),
            owner: owner.into(),
            repo: repo.into(),
            version: version.into(),
            commit: commit.into(),
            notes: String::new(),
            move_major_tag: true,
        }
    }

    /// Validates `metadata` before anything is built.
    #[must_use]
    pub fn with_metadata(mut self, metadata: ActionMetadata) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// Adds an archive.
    #[must_use]
    pub fn with_archive(mut self, spec: ArchiveSpec) -> Self {
        self.archives.push(spec);
        self
    }

    /// Adds a file built elsewhere, uploaded as it is (see [`Asset::from_file`]). A
    /// `manifest.json` among them is the release's manifest when nothing is built here.
    #[must_use]
    pub fn with_asset(mut self, asset: Asset) -> Self {
        self.assets.push(asset);
        self
    }

    /// Sets the release notes.
    #[must_use]
    pub fn with_notes(mut self, notes: impl Into<String>) -> Self {
        self.notes = notes.into();
        self
    }

    /// Whether to move the major tag.
    #[must_use]
    pub fn with_major_tag(mut self, move_it: bool) -> Self {
        self.move_major_tag = move_it;
        self
    }
}

/// What `publish` did.
#[derive(Debug, Clone)]
pub struct PublishReport {
    /// Warning-level findings of the metadata validation.
    pub warnings: Vec<Finding>,
    /// The archives and `manifest.json`, as uploaded.
    pub assets: Vec<Asset>,
    /// The manifest.
    pub manifest: Manifest,
    /// What the publisher did.
    pub release: ReleaseReport,
}

impl Orchestrator {
    /// Validates the metadata (error findings stop here), packages every archive with its
    /// SHA-256 and `manifest.json`, adds the assets built elsewhere, then releases them through the publisher (draft, upload,
    /// verify, publish, major tag). A dry-run publisher makes this a dry run.
    ///
    /// # Errors
    /// [`ErrorKind::Missing`](crate::ErrorKind::Missing) without a publisher;
    /// [`ErrorKind::Publish`](crate::ErrorKind::Publish) for invalid metadata (listing every
    /// error finding), an invalid version or commit, packaging and release failures.
    pub async fn publish(&self, request: &PublishRequest) -> Result<PublishReport> {
        let publisher = self.publisher.as_ref().ok_or_else(|| {
            Error::missing("publisher", "set GITHUB_TOKEN, or call with_publisher")
        })?;
        async {
            let warnings = match &request.metadata {
                Some(m) => m.validate().into_result()?,
                None => Vec::new(),
            };
            if let Some(other) = request
                .archives
                .iter()
                .find(|a| a.version != request.version)
            {
                return Err(Error::config(
                    format!("archives[{}].version", other.target),
                    format!(
                        "expected {}, the version released, got {}",
                        request.version, other.version
                    ),
                ));
            }
            // The plan checks the repository, version and commit before anything is built.
            let mut plan = ReleasePlan::new(
                request.owner.clone(),
                request.repo.clone(),
                request.version.clone(),
                request.commit.clone(),
                request.notes.clone(),
                Vec::new(),
            )?;
            if !request.move_major_tag {
                plan = plan.with_major_tag(None);
            }
            let (mut assets, manifest) = if request.archives.is_empty() {
                (Vec::new(), None)
            } else {
                let (assets, manifest) =
                    package_blocking(&request.archives, &request.out_dir).await?;
                (assets, Some(manifest))
            };
            for asset in &request.assets {
                if assets.iter().any(|a| a.name == asset.name) {
                    return Err(Error::config(
                        format!("assets[{}]", asset.name),
                        "each asset name once (it is also built here, or given twice)",
                    ));
                }
                assets.push(asset.clone());
            }
            if assets.is_empty() {
                return Err(Error::config(
                    "archives",
                    "an archive to build or an asset to upload",
                ));
            }
            let manifest = match manifest {
                Some(m) => m,
                None => prebuilt_manifest(&request.assets, &request.version)?,
            };
            plan.assets.clone_from(&assets);
            let release = publisher.release(&plan).await?;
            Ok(PublishReport {
                warnings,
                assets,
                manifest,
                release,
            })
        }
        .instrument(tracing::info_span!("flow.publish", version = %request.version))
        .await
    }
}

/// The `manifest.json` among assets built elsewhere (it must be of the version released), or an
/// empty manifest when there is none.
fn prebuilt_manifest(assets: &[Asset], version: &str) -> Result<Manifest> {
    let Some(asset) = assets
        .iter()
        .find(|a| a.name == flow_publish::MANIFEST_NAME)
    else {
        return Ok(Manifest::empty(version));
    };
    let text = std::fs::read_to_string(&asset.path).map_err(|e| {
        Error::new(crate::ErrorKind::Io {
            path: asset.path.display().to_string(),
            detail: e.to_string(),
        })
    })?;
    let manifest = Manifest::from_json_named(&asset.path.display().to_string(), &text)?;
    if manifest.version != version {
        return Err(Error::config(
            format!("{}: version", asset.path.display()),
            format!(
                "expected {version}, the version released, got {}",
                manifest.version
            ),
        ));
    }
    Ok(manifest)
}

/// Creates `out_dir` and packages `archives` into it on the blocking pool: reading the sources,
/// compressing and hashing them is file and CPU work that must not stall the runtime's workers.
async fn package_blocking(
    archives: &[ArchiveSpec],
    out_dir: &Path,
) -> Result<(Vec<Asset>, Manifest)> {
    let archives = archives.to_vec();
    let out_dir = out_dir.to_path_buf();
    let io_error = |path: &Path, detail: String| {
        Error::new(crate::ErrorKind::Io {
            path: path.display().to_string(),
            detail,
        })
    };
    let joined = tokio::task::spawn_blocking({
        let out_dir = out_dir.clone();
        move || -> Result<(Vec<Asset>, Manifest)> {
            std::fs::create_dir_all(&out_dir).map_err(|e| io_error(&out_dir, e.to_string()))?;
            Ok(flow_publish::package(&archives, &out_dir)?)
        }
    })
    .await;
    joined.map_err(|e| io_error(&out_dir, format!("packaging task failed: {e}")))?
}
