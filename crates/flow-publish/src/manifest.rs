//! The release manifest: which archive to download for each target, from where, and its SHA-256.
//!
//! # Format (version 1)
//! `manifest.json`, pretty-printed JSON with sorted keys:
//!
//! ```json
//! {
//!   "format": 1,
//!   "version": "1.2.3",
//!   "targets": {
//!     "x86_64-unknown-linux-musl": {
//!       "asset": "flow-v1.2.3-x86_64-unknown-linux-musl.tar.gz",
//!       "url": "https://github.com/o/r/releases/download/v1.2.3/flow-v1.2.3-x86_64-unknown-linux-musl.tar.gz",
//!       "sha256": "<64 lower-case hex digits>"
//!     }
//!   }
//! }
//! ```
//!
//! `format` is the version of this layout: a reader refuses a format it does not know (the
//! composite action's `install.sh` fails rather than guess). `version` has no leading `v`;
//! `asset` is the release asset's file name; `url` is where to download it, absolute; `sha256`
//! is the archive's digest, the same that GitHub reports as `digest: "sha256:<hex>"`.
//!
//! [`package()`](crate::package()) writes one manifest per build (often one target, and without
//! `url` unless [`Manifest::with_download_base`] is applied); [`merge`] joins those per-target
//! manifests into the one the action commits, checking that nothing is missing, repeated or
//! inconsistent. [`manifest_schema`] is the JSON Schema of a merged (release) manifest.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The manifest's asset name.
pub const MANIFEST_NAME: &str = "manifest.json";

/// The manifest format this crate writes and reads.
pub const MANIFEST_FORMAT: u32 = 1;

/// The manifest the composite action reads; see the [module docs](self) for its format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "flow-publish release manifest",
    description = "Per target triple: the release archive, its absolute download URL and its SHA-256."
)]
pub struct Manifest {
    /// The version of this file's layout; readers refuse a format they do not know.
    #[schemars(range(min = 1, max = 1))]
    pub format: u32,
    /// The release version, without `v` (e.g. `1.2.3`).
    #[schemars(pattern(r"^[0-9][0-9A-Za-z.+-]*$"))]
    pub version: String,
    /// Per Rust target triple, its archive.
    #[schemars(extend("propertyNames" = {"pattern": "^[a-z0-9_]+(-[a-z0-9_.]+)+$"}))]
    pub targets: BTreeMap<String, ManifestEntry>,
}

/// One target of the [`Manifest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ManifestEntry {
    /// The release asset's file name (no directories).
    #[schemars(pattern(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$"))]
    pub asset: String,
    /// Where to download the archive: an absolute `https` URL (`http` only on a loopback host,
    /// for tests). Required in a merged manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^https?://[^\s]+$"))]
    pub url: Option<String>,
    /// The archive's SHA-256, lower-case hex.
    #[schemars(pattern(r"^[0-9a-f]{64}$"))]
    pub sha256: String,
}

impl Manifest {
    /// An empty manifest of the current format.
    #[must_use]
    pub fn empty(version: impl Into<String>) -> Self {
        Self {
            format: MANIFEST_FORMAT,
            version: version.into(),
            targets: BTreeMap::new(),
        }
    }

    /// Pretty JSON with sorted keys and a final newline.
    ///
    /// # Errors
    /// [`ErrorKind::Archive`](crate::ErrorKind::Archive) if serialization fails (it does not).
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self)
            .map(|mut s| {
                s.push('\n');
                s
            })
            .map_err(|e| Error::archive(format!("manifest: {e}")))
    }

    /// Parses a manifest of a known format.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) naming the field that is
    /// missing, unknown or of the wrong type (`manifest.json: targets.x86_64-….sha256: …`), or a
    /// `format` other than [`MANIFEST_FORMAT`].
    pub fn from_json(text: &str) -> Result<Self> {
        Self::from_json_named(MANIFEST_NAME, text)
    }

    /// As [`Manifest::from_json`], naming the file as `name` in errors.
    ///
    /// # Errors
    /// As [`Manifest::from_json`].
    pub fn from_json_named(name: &str, text: &str) -> Result<Self> {
        // The format first, so that a newer layout says so instead of "unknown field".
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(text)
            && let Some(format) = value.get("format")
            && format.as_u64() != Some(u64::from(MANIFEST_FORMAT))
        {
            return Err(Error::input(
                format!("{name}: format"),
                format!(
                    "manifest format {MANIFEST_FORMAT}, found {format} (a newer flow-publish wrote it?)"
                ),
            ));
        }
        let de = &mut serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." || path.is_empty() {
                name.to_owned()
            } else {
                format!("{name}: {path}")
            };
            Error::input(
                field,
                format!(
                    "a manifest {{format, version, targets: {{<triple>: {{asset, url, sha256}}}}}}: {}",
                    e.inner()
                ),
            )
        })
    }

    /// Gives every entry without a `url` the URL `<base>/v<version>/<asset>` (GitHub's
    /// `https://github.com/<owner>/<repo>/releases/download` is such a base).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when `base` is not an
    /// absolute `https` URL (or `http` on a loopback host).
    pub fn with_download_base(mut self, base: &str) -> Result<Self> {
        check_url("download base URL", base)?;
        let base = base.trim_end_matches('/');
        for entry in self.targets.values_mut() {
            if entry.url.is_none() {
                entry.url = Some(format!("{base}/v{}/{}", self.version, entry.asset));
            }
        }
        Ok(self)
    }

    /// Checks what a release manifest must hold: the current format, a version, at least one
    /// target, and for each a plain asset name, an absolute URL and a SHA-256 of 64 lower-case
    /// hex digits.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) naming the first field that is
    /// wrong and what was expected.
    pub fn validate_release(&self) -> Result<()> {
        if self.format != MANIFEST_FORMAT {
            return Err(Error::input(
                "format",
                format!("{MANIFEST_FORMAT}, found {}", self.format),
            ));
        }
        check_version(&self.version)?;
        if self.targets.is_empty() {
            return Err(Error::input("targets", "at least one target"));
        }
        for (triple, entry) in &self.targets {
            check_entry(triple, entry)?;
            let url = entry.url.as_deref().ok_or_else(|| {
                Error::input(
                    format!("targets.{triple}.url"),
                    "an absolute download URL (give a download base URL)",
                )
            })?;
            check_url(&format!("targets.{triple}.url"), url)?;
        }
        Ok(())
    }
}

/// One input of [`merge`]: a manifest and the name it is reported under (its file path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestPart {
    /// Where it came from, for error messages.
    pub source: String,
    /// The manifest.
    pub manifest: Manifest,
}

impl ManifestPart {
    /// Parses `text` read from `source`.
    ///
    /// # Errors
    /// As [`Manifest::from_json`], naming `source`.
    pub fn parse(source: impl Into<String>, text: &str) -> Result<Self> {
        let source = source.into();
        let manifest = Manifest::from_json_named(&source, text)?;
        Ok(Self { source, manifest })
    }
}

/// Merges per-target manifests into one release manifest. Entries without a `url` get
/// `<download_base>/v<version>/<asset>`; the result passes [`Manifest::validate_release`].
///
/// # Errors
/// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput), naming the input and field: no
/// inputs; versions that differ; a target in two inputs; an entry whose asset, URL or SHA-256 is
/// missing or malformed; a URL missing and no `download_base` given.
pub fn merge(parts: &[ManifestPart], download_base: Option<&str>) -> Result<Manifest> {
    let Some(first) = parts.first() else {
        return Err(Error::input(
            "manifests",
            "at least one per-target manifest to merge",
        ));
    };
    if let Some(base) = download_base {
        check_url("download base URL", base)?;
    }
    let version = first.manifest.version.clone();
    check_version(&version).map_err(|_| {
        Error::input(
            format!("{}: version", first.source),
            format!("a version without `v` (e.g. 1.2.3), found {version:?}"),
        )
    })?;
    let mut merged = Manifest::empty(version.clone());
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for part in parts {
        let m = &part.manifest;
        if m.version != version {
            return Err(Error::input(
                format!("{}: version", part.source),
                format!(
                    "{version} (the version of {}), found {}",
                    first.source, m.version
                ),
            ));
        }
        for (triple, entry) in &m.targets {
            if let Some(other) = seen.get(triple) {
                return Err(Error::input(
                    format!("{}: targets.{triple}", part.source),
                    format!("each target in one manifest only, but {other} has it too"),
                ));
            }
            let mut entry = entry.clone();
            if entry.url.is_none()
                && let Some(base) = download_base
            {
                entry.url = Some(format!(
                    "{}/v{version}/{}",
                    base.trim_end_matches('/'),
                    entry.asset
                ));
            }
            let named = |e: Error| match e.kind() {
                crate::ErrorKind::InvalidInput { field, expected } => {
                    Error::input(format!("{}: {field}", part.source), expected.clone())
                }
                _ => e,
            };
            check_entry(triple, &entry).map_err(named)?;
            let url = entry.url.as_deref().ok_or_else(|| {
                Error::input(
                    format!("{}: targets.{triple}.url", part.source),
                    "an absolute download URL: package with --download-base-url, or give one to the merge",
                )
            })?;
            check_url(&format!("targets.{triple}.url"), url).map_err(named)?;
            seen.insert(triple.clone(), &part.source);
            merged.targets.insert(triple.clone(), entry);
        }
    }
    merged.validate_release()?;
    Ok(merged)
}

/// The JSON Schema (draft 2020-12) of a release manifest, as [`merge`] writes it: every entry
/// has its `url`.
#[must_use]
pub fn manifest_schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(Manifest).to_value();
    schema["$id"] = serde_json::json!(
        "https://github.com/flow-orchestrator/flow-orchestrator/manifest.schema.json"
    );
    if let Some(entry) = schema
        .get_mut("$defs")
        .and_then(|d| d.get_mut("ManifestEntry"))
    {
        entry["properties"]["url"]["type"] = serde_json::json!("string");
        if let Some(required) = entry
            .get_mut("required")
            .and_then(serde_json::Value::as_array_mut)
            && !required.iter().any(|r| r == "url")
        {
            required.push(serde_json::json!("url"));
        }
    }
    schema
}

fn check_version(version: &str) -> Result<()> {
    let ok = version.chars().next().is_some_and(|c| c.is_ascii_digit())
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::input(
            "version",
            format!("a version without `v` (e.g. 1.2.3), found {version:?}"),
        ))
    }
}

fn check_entry(triple: &str, entry: &ManifestEntry) -> Result<()> {
    let triple_ok = triple.contains('-')
        && triple
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.'));
    if !triple_ok {
        return Err(Error::input(
            format!("targets.{triple}"),
            "a Rust target triple such as x86_64-unknown-linux-musl",
        ));
    }
    let asset_ok = entry
        .asset
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && entry
            .asset
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-'));
    if !asset_ok {
        return Err(Error::input(
            format!("targets.{triple}.asset"),
            format!("a plain file name, found {:?}", entry.asset),
        ));
    }
    if entry.sha256.len() != 64
        || !entry
            .sha256
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    {
        return Err(Error::input(
            format!("targets.{triple}.sha256"),
            "64 lower-case hex digits",
        ));
    }
    Ok(())
}

/// An absolute `https` URL, or `http` on a loopback host (local rehearsals and tests).
fn check_url(field: &str, text: &str) -> Result<()> {
    let expected = || {
        Error::input(
            field,
            format!("an absolute https URL (http only on localhost or 127.0.0.1), found {text:?}"),
        )
    };
    let url = url::Url::parse(text).map_err(|_| expected())?;
    let loopback = matches!(
        url.host(),
        Some(url::Host::Domain("localhost")) | Some(url::Host::Ipv4(std::net::Ipv4Addr::LOCALHOST))
    ) || matches!(url.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback());
    match url.scheme() {
        "https" if url.host().is_some() => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(expected()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn urls_must_be_absolute_https_or_loopback_http() {
        for ok in [
            "https://github.com/o/r/releases/download",
            "http://127.0.0.1:8080",
            "http://localhost/x",
            "http://[::1]:9/",
        ] {
            assert!(check_url("u", ok).is_ok(), "{ok}");
        }
        for bad in [
            "/relative",
            "github.com/o/r",
            "http://example.com/a",
            "ftp://example.com/a",
            "file:///etc/passwd",
            "",
        ] {
            let err = check_url("u", bad).unwrap_err().to_string();
            assert!(
                err.starts_with("u: expected an absolute https URL"),
                "{err}"
            );
        }
    }

    #[test]
    fn versions_have_no_v() {
        assert!(check_version("1.2.3-rc.1+b").is_ok());
        for bad in ["v1.2.3", "", "1 2", "../1"] {
            assert!(check_version(bad).is_err(), "{bad}");
        }
    }
}
