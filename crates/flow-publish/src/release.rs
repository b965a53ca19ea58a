//! The release plan, the `Publisher` trait, its report, and the dry run.
//!
//! A release goes, in order: (1) a draft release for `vX.Y.Z` with the notes of that version's
//! CHANGELOG.md section, (2) the assets uploaded, (3) each asset's digest checked against the
//! local SHA-256, (4) the release published, (5) the major tag (`v1`) moved to the release commit.
//! Implementations are idempotent: a rerun after a failure resumes where the last one stopped.

use std::fmt;
use std::io::Write;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::{Error, ErrorKind, Result};
use crate::package::Asset;

/// What to release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleasePlan {
    /// Repository owner.
    pub owner: String,
    /// Repository name.
    pub repo: String,
    /// The version without `v`, e.g. `1.2.3` or `2.0.0-rc.1`.
    pub version: String,
    /// The commit the release (and the major tag) point at: a full 40-hex SHA.
    pub commit: String,
    /// Release notes (Markdown).
    pub notes: String,
    /// Files to attach, each with its SHA-256.
    pub assets: Vec<Asset>,
    /// The moving major tag (`v1`), or `None` to leave tags alone.
    pub major_tag: Option<String>,
}

impl ReleasePlan {
    /// A plan; the major tag is `v<major>` of `version`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when `owner/repo` is empty, `version` is not `X.Y.Z[-pre]`, or
    /// `commit` is not a 40-hex SHA.
    pub fn new(
        owner: impl Into<String>,
        repo: impl Into<String>,
        version: impl Into<String>,
        commit: impl Into<String>,
        notes: impl Into<String>,
        assets: Vec<Asset>,
    ) -> Result<Self> {
        let owner = owner.into();
        let repo = repo.into();
        let version = version.into();
        let commit = commit.into();
        if owner.is_empty() || repo.is_empty() || owner.contains('/') || repo.contains('/') {
            return Err(Error::input("repository", "non-empty `owner` and `repo`"));
        }
        let major = parse_major(&version)?;
        if commit.len() != 40 || !commit.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::input("commit", "a full 40-hex commit SHA"));
        }
        Ok(Self {
            owner,
            repo,
            major_tag: Some(format!("v{major}")),
            version,
            commit,
            notes: notes.into(),
            assets,
        })
    }

    /// Sets or clears the moving major tag.
    #[must_use]
    pub fn with_major_tag(mut self, tag: Option<String>) -> Self {
        self.major_tag = tag;
        self
    }

    /// The release tag, `v<version>`.
    #[must_use]
    pub fn tag(&self) -> String {
        format!("v{}", self.version)
    }

    /// Whether the version has a pre-release part (`-rc.1`).
    #[must_use]
    pub fn is_prerelease(&self) -> bool {
        self.version.contains('-')
    }
}

fn parse_major(version: &str) -> Result<u64> {
    let core = version.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    let numeric = |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if parts.len() != 3 || !parts.iter().all(numeric) {
        return Err(Error::input(
            "version",
            format!("`X.Y.Z` or `X.Y.Z-pre` without a leading `v`, found `{version}`"),
        ));
    }
    parts[0]
        .parse()
        .map_err(|_| Error::input("version", "a major version that fits in 64 bits"))
}

/// The notes of `version` in a keep-a-changelog file: the lines under its `## [X.Y.Z]` (or
/// `## X.Y.Z`, `## [vX.Y.Z]`, with or without a date) heading, up to the next `## ` heading,
/// trimmed.
///
/// # Errors
/// [`ErrorKind::Changelog`] when there is no such section or it is empty.
pub fn changelog_section(changelog: &str, version: &str) -> Result<String> {
    let v = version.trim_start_matches('v');
    let is_heading = |line: &str| {
        let Some(rest) = line.strip_prefix("## ") else {
            return false;
        };
        let title = rest.trim().trim_start_matches('[');
        let title = title.trim_start_matches('v');
        title
            .strip_prefix(v)
            .is_some_and(|after| after.is_empty() || after.starts_with([']', ' ']))
    };
    let mut lines = changelog.lines();
    if !lines.by_ref().any(is_heading) {
        return Err(Error::new(ErrorKind::Changelog {
            version: v.to_owned(),
        }));
    }
    let body: Vec<&str> = lines.take_while(|l| !l.starts_with("## ")).collect();
    let text = body.join("\n").trim().to_owned();
    if text.is_empty() {
        return Err(Error::new(ErrorKind::Changelog {
            version: v.to_owned(),
        }));
    }
    Ok(text)
}

/// One thing a release did (or, in a dry run, would do).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReleaseStep {
    /// A draft release was created.
    DraftCreated {
        /// The tag.
        tag: String,
    },
    /// An existing release for the tag was found and reused.
    ReleaseReused {
        /// The tag.
        tag: String,
        /// Whether it was still a draft.
        draft: bool,
    },
    /// An asset was uploaded.
    AssetUploaded {
        /// Its name.
        name: String,
    },
    /// An asset already on the release had the right digest and was kept.
    AssetReused {
        /// Its name.
        name: String,
    },
    /// An asset on the release had another digest (or was a failed upload) and was deleted.
    AssetDeleted {
        /// Its name.
        name: String,
    },
    /// An asset's digest on GitHub equals the local SHA-256.
    AssetVerified {
        /// Its name.
        name: String,
        /// The SHA-256, hex.
        sha256: String,
    },
    /// The release was published.
    Published {
        /// The tag.
        tag: String,
    },
    /// The release was already published.
    AlreadyPublished {
        /// The tag.
        tag: String,
    },
    /// The major tag was created at the commit.
    MajorTagCreated {
        /// The tag (`v1`).
        tag: String,
        /// The commit.
        sha: String,
    },
    /// The major tag was moved (forced) to the commit.
    MajorTagMoved {
        /// The tag (`v1`).
        tag: String,
        /// The commit.
        sha: String,
    },
    /// The major tag already pointed at the commit.
    MajorTagUnchanged {
        /// The tag (`v1`).
        tag: String,
    },
}

impl fmt::Display for ReleaseStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DraftCreated { tag } => write!(f, "created draft release {tag}"),
            Self::ReleaseReused { tag, draft: true } => write!(f, "reused draft release {tag}"),
            Self::ReleaseReused { tag, draft: false } => {
                write!(f, "reused published release {tag}")
            }
            Self::AssetUploaded { name } => write!(f, "uploaded {name}"),
            Self::AssetReused { name } => write!(f, "kept {name} (digest matches)"),
            Self::AssetDeleted { name } => {
                write!(f, "deleted {name} (digest differs or upload failed)")
            }
            Self::AssetVerified { name, sha256 } => write!(f, "verified {name} sha256:{sha256}"),
            Self::Published { tag } => write!(f, "published {tag}"),
            Self::AlreadyPublished { tag } => write!(f, "{tag} was already published"),
            Self::MajorTagCreated { tag, sha } => write!(f, "created tag {tag} at {sha}"),
            Self::MajorTagMoved { tag, sha } => write!(f, "moved tag {tag} to {sha}"),
            Self::MajorTagUnchanged { tag } => write!(f, "tag {tag} already at the commit"),
        }
    }
}

/// What a release did, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReleaseReport {
    /// The release's web page, when known (not in a dry run).
    pub html_url: Option<String>,
    /// The steps taken.
    pub steps: Vec<ReleaseStep>,
}

/// Carries out a [`ReleasePlan`]. Object-safe; implementations must be idempotent.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait Publisher: Send + Sync {
    /// Creates (or resumes) the release, uploads and verifies the assets, publishes it and moves
    /// the major tag.
    ///
    /// # Errors
    /// Any [`ErrorKind`]: HTTP failures ([`Error::is_retryable`] says whether to rerun),
    /// [`ErrorKind::DigestMismatch`] when GitHub's copy differs after upload,
    /// [`ErrorKind::ImmutableRelease`] when a published immutable release holds different assets.
    async fn release(&self, plan: &ReleasePlan) -> Result<ReleaseReport>;
}

/// A shared publisher is a publisher.
#[async_trait]
impl<P: Publisher + ?Sized> Publisher for std::sync::Arc<P> {
    async fn release(&self, plan: &ReleasePlan) -> Result<ReleaseReport> {
        (**self).release(plan).await
    }
}

/// A [`Publisher`] that changes nothing and writes each step it would take, one per line, to a
/// writer (e.g. stderr in the binary, a `Vec<u8>` in tests).
#[derive(Debug)]
pub struct DryRunPublisher<W> {
    out: Mutex<W>,
}

impl<W: Write + Send> DryRunPublisher<W> {
    /// A dry run writing to `out`.
    pub fn new(out: W) -> Self {
        Self {
            out: Mutex::new(out),
        }
    }

    /// The writer back.
    ///
    /// # Errors
    /// [`ErrorKind::Io`] if a previous write panicked while holding the writer.
    pub fn into_inner(self) -> Result<W> {
        self.out.into_inner().map_err(|_| {
            Error::new(ErrorKind::Io {
                path: "dry-run output".into(),
                message: "the writer was poisoned by a panic".into(),
            })
        })
    }
}

#[async_trait]
impl<W: Write + Send> Publisher for DryRunPublisher<W> {
    async fn release(&self, plan: &ReleasePlan) -> Result<ReleaseReport> {
        let tag = plan.tag();
        let mut lines = vec![format!(
            "dry run: release {tag} of {}/{} at {}{}",
            plan.owner,
            plan.repo,
            plan.commit,
            if plan.is_prerelease() {
                " (pre-release)"
            } else {
                ""
            }
        )];
        let mut steps = vec![ReleaseStep::DraftCreated { tag: tag.clone() }];
        lines.push(format!(
            "1. create draft release {tag} (notes: {} lines)",
            plan.notes.lines().count()
        ));
        for asset in &plan.assets {
            lines.push(format!(
                "2. upload {} ({} bytes, {})",
                asset.name, asset.size, asset.content_type
            ));
            steps.push(ReleaseStep::AssetUploaded {
                name: asset.name.clone(),
            });
        }
        for asset in &plan.assets {
            lines.push(format!(
                "3. verify {} is sha256:{}",
                asset.name, asset.sha256
            ));
            steps.push(ReleaseStep::AssetVerified {
                name: asset.name.clone(),
                sha256: asset.sha256.clone(),
            });
        }
        lines.push(format!("4. publish {tag}"));
        steps.push(ReleaseStep::Published { tag });
        if let Some(major) = &plan.major_tag {
            lines.push(format!(
                "5. point tag {major} at {} (update with force, or create)",
                plan.commit
            ));
            steps.push(ReleaseStep::MajorTagMoved {
                tag: major.clone(),
                sha: plan.commit.clone(),
            });
        }
        let mut out = self.out.lock().map_err(|_| {
            Error::new(ErrorKind::Io {
                path: "dry-run output".into(),
                message: "the writer was poisoned by a panic".into(),
            })
        })?;
        for line in lines {
            writeln!(out, "{line}").map_err(|e| Error::io("dry-run output", e))?;
        }
        Ok(ReleaseReport {
            html_url: None,
            steps,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const SHA: &str = "aa218f56b14c9653891f9e74264a383fa43fefbd";

    #[test]
    fn plan_checks_its_inputs() {
        let plan = ReleasePlan::new("o", "r", "1.2.3", SHA, "n", vec![]).unwrap();
        assert_eq!(plan.tag(), "v1.2.3");
        assert_eq!(plan.major_tag.as_deref(), Some("v1"));
        assert!(!plan.is_prerelease());
        let err = ReleasePlan::new("o", "r", "v1.2", SHA, "n", vec![]).unwrap_err();
        assert!(err.to_string().starts_with("version: expected"), "{err}");
        let err = ReleasePlan::new("o", "r", "1.2.3", "abc", "n", vec![]).unwrap_err();
        assert!(err.to_string().contains("40-hex"), "{err}");
        assert!(
            ReleasePlan::new("o", "r", "2.0.0-rc.1", SHA, "n", vec![])
                .unwrap()
                .is_prerelease()
        );
    }

    #[test]
    fn changelog_sections() {
        let text = "# Changelog\n\n## [Unreleased]\n\n- next\n\n## [1.2.3] - 2026-01-02\n\n### Added\n- a thing\n\n## [1.2.2]\n- old\n";
        assert_eq!(
            changelog_section(text, "1.2.3").unwrap(),
            "### Added\n- a thing"
        );
        assert_eq!(changelog_section(text, "v1.2.2").unwrap(), "- old");
        let err = changelog_section(text, "1.2").unwrap_err();
        assert_eq!(
            err.to_string(),
            "changelog: expected a `## [1.2]` section in CHANGELOG.md"
        );
        assert!(
            changelog_section("## 1.0.0\n", "1.0.0").is_err(),
            "empty section"
        );
        assert!(
            changelog_section("## [1.2.30]\n- x\n", "1.2.3").is_err(),
            "prefix is not a match"
        );
        assert!(
            changelog_section("## [1.2.3-rc.1]\n- x\n", "1.2.3").is_err(),
            "pre-release is another version"
        );
    }

    #[tokio::test]
    async fn publisher_is_mockable_and_object_safe() {
        let mut mock = MockPublisher::new();
        mock.expect_release()
            .returning(|_| Ok(ReleaseReport::default()));
        let publisher: Box<dyn Publisher> = Box::new(mock);
        let plan = ReleasePlan::new("o", "r", "1.0.0", SHA, "n", vec![]).unwrap();
        assert!(publisher.release(&plan).await.unwrap().steps.is_empty());
    }
}
