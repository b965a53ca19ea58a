//! Reproducible release archives, their SHA-256 and the manifest the composite action reads.
//!
//! # Archives
//! One archive per target: `<name>-v<version>-<triple>.tar.gz` for unix targets and
//! `<name>-v<version>-<triple>.zip` for Windows ones. Each holds, flat at its root, the binary
//! (`<name>` or `<name>.exe`, mode 0755), `LICENSE` and `README.md` (mode 0644), plus any extra
//! files given. Entries are sorted by name, every timestamp is the fixed `mtime` (by default
//! `SOURCE_DATE_EPOCH`, else 0; zip clamps to its 1980-01-01 minimum), uid/gid are 0 with empty
//! owner names, and the gzip header carries no name and mtime 0, so the same inputs give
//! byte-identical archives.
//!
//! # Manifest
//! `manifest.json` beside the archives: per target, the asset name and its SHA-256; its format
//! is documented in [`crate::manifest`].

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
pub use crate::manifest::{MANIFEST_NAME, Manifest, ManifestEntry};

/// The targets the project releases for.
pub const DEFAULT_TARGETS: &[&str] = &[
    "x86_64-unknown-linux-musl",
    "aarch64-unknown-linux-musl",
    "x86_64-apple-darwin",
    "aarch64-apple-darwin",
    "x86_64-pc-windows-msvc",
];

/// The archive format of a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// `.tar.gz`, for unix targets.
    TarGz,
    /// `.zip`, for Windows targets.
    Zip,
}

impl ArchiveFormat {
    /// Zip for `*-windows-*` triples, tar.gz otherwise.
    #[must_use]
    pub fn for_target(triple: &str) -> Self {
        if triple.contains("-windows") {
            Self::Zip
        } else {
            Self::TarGz
        }
    }

    /// The file extension, without the dot.
    #[must_use]
    pub fn extension(self) -> &'static str {
        match self {
            Self::TarGz => "tar.gz",
            Self::Zip => "zip",
        }
    }
}

/// One file to put in an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveEntry {
    /// The name inside the archive (no directories).
    pub name: String,
    /// Where its bytes are read from.
    pub source: PathBuf,
    /// Whether it is executable (mode 0755, else 0644).
    pub executable: bool,
}

/// What to package for one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveSpec {
    /// Binary and asset name prefix, e.g. `flow`.
    pub name: String,
    /// The version, without `v`.
    pub version: String,
    /// The Rust target triple.
    pub target: String,
    /// The files, in any order (they are sorted).
    pub entries: Vec<ArchiveEntry>,
    /// Unix seconds used for every timestamp.
    pub mtime: u64,
}

impl ArchiveSpec {
    /// The usual archive: the binary, `LICENSE` and `README.md`; `mtime` from
    /// [`source_date_epoch`].
    #[must_use]
    pub fn new(
        name: impl Into<String>,
        version: impl Into<String>,
        target: impl Into<String>,
        binary: impl Into<PathBuf>,
        license: impl Into<PathBuf>,
        readme: impl Into<PathBuf>,
    ) -> Self {
        let name = name.into();
        let target = target.into();
        let exe = if ArchiveFormat::for_target(&target) == ArchiveFormat::Zip {
            format!("{name}.exe")
        } else {
            name.clone()
        };
        Self {
            entries: vec![
                ArchiveEntry {
                    name: exe,
                    source: binary.into(),
                    executable: true,
                },
                ArchiveEntry {
                    name: "LICENSE".into(),
                    source: license.into(),
                    executable: false,
                },
                ArchiveEntry {
                    name: "README.md".into(),
                    source: readme.into(),
                    executable: false,
                },
            ],
            name,
            version: version.into(),
            target,
            mtime: source_date_epoch(),
        }
    }

    /// Sets the timestamp of every entry (unix seconds).
    #[must_use]
    pub fn with_mtime(mut self, mtime: u64) -> Self {
        self.mtime = mtime;
        self
    }

    /// Adds a file.
    #[must_use]
    pub fn with_entry(mut self, entry: ArchiveEntry) -> Self {
        self.entries.push(entry);
        self
    }

    /// The archive format for the target.
    #[must_use]
    pub fn format(&self) -> ArchiveFormat {
        ArchiveFormat::for_target(&self.target)
    }

    /// `<name>-v<version>-<target>.<ext>`.
    #[must_use]
    pub fn asset_name(&self) -> String {
        format!(
            "{}-v{}-{}.{}",
            self.name,
            self.version,
            self.target,
            self.format().extension()
        )
    }
}

/// `SOURCE_DATE_EPOCH` if set to unix seconds, else 0.
#[must_use]
pub fn source_date_epoch() -> u64 {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// A built archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asset {
    /// The target triple it is for.
    pub target: String,
    /// The file name (the release asset name).
    pub name: String,
    /// Where it was written.
    pub path: PathBuf,
    /// Its SHA-256, lower-case hex.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its MIME type (`application/gzip` or `application/zip`).
    pub content_type: String,
}

impl Asset {
    /// Describes an existing file (e.g. the manifest) as an asset, hashing it.
    ///
    /// # Errors
    /// [`ErrorKind::Io`](crate::ErrorKind::Io) when it cannot be read.
    pub fn from_file(
        target: impl Into<String>,
        path: impl Into<PathBuf>,
        content_type: impl Into<String>,
    ) -> Result<Self> {
        let path = path.into();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| Error::input("asset path", "a file name in UTF-8"))?
            .to_owned();
        let (sha256, size) = sha256_file(&path)?;
        Ok(Self {
            target: target.into(),
            name,
            path,
            sha256,
            size,
            content_type: content_type.into(),
        })
    }
}

/// The SHA-256 (lower-case hex) and size of a file, read in a stream.
///
/// # Errors
/// [`ErrorKind::Io`](crate::ErrorKind::Io) when it cannot be read.
pub fn sha256_file(path: &Path) -> Result<(String, u64)> {
    let mut file = BufReader::new(File::open(path).map_err(|e| Error::io(path, e))?);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// The SHA-256 of bytes, lower-case hex.
#[must_use]
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Builds the archive for `spec` in `out_dir` and hashes it.
///
/// # Errors
/// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) for an entry name with a `/` or a
/// repeated name; [`ErrorKind::Io`](crate::ErrorKind::Io) when a file cannot be read or written;
/// [`ErrorKind::Archive`](crate::ErrorKind::Archive) when the archive writer fails.
pub fn build_archive(spec: &ArchiveSpec, out_dir: &Path) -> Result<Asset> {
    let mut entries = spec.entries.clone();
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    for pair in entries.windows(2) {
        if pair[0].name == pair[1].name {
            return Err(Error::input(
                format!("entries[{}]", pair[1].name),
                "unique names inside the archive",
            ));
        }
    }
    if let Some(bad) = entries
        .iter()
        .find(|e| matches!(e.name.as_str(), "" | "." | "..") || e.name.contains(['/', '\\']))
    {
        return Err(Error::input(
            format!("entries[{}]", bad.name),
            "a plain file name without directories",
        ));
    }
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let path = out_dir.join(spec.asset_name());
    let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
    let content_type = match spec.format() {
        ArchiveFormat::TarGz => {
            write_tar_gz(&entries, spec.mtime, file)?;
            "application/gzip"
        }
        ArchiveFormat::Zip => {
            write_zip(&entries, spec.mtime, file)?;
            "application/zip"
        }
    };
    let (sha256, size) = sha256_file(&path)?;
    Ok(Asset {
        target: spec.target.clone(),
        name: spec.asset_name(),
        path,
        sha256,
        size,
        content_type: content_type.to_owned(),
    })
}

fn read_entry(entry: &ArchiveEntry) -> Result<Vec<u8>> {
    std::fs::read(&entry.source).map_err(|e| Error::io(&entry.source, e))
}

fn mode(entry: &ArchiveEntry) -> u32 {
    if entry.executable { 0o755 } else { 0o644 }
}

fn write_tar_gz(entries: &[ArchiveEntry], mtime: u64, file: File) -> Result<()> {
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(file, flate2::Compression::new(9));
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    for entry in entries {
        let data = read_entry(entry)?;
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(mode(entry));
        header.set_mtime(mtime);
        header.set_uid(0);
        header.set_gid(0);
        header
            .set_username("")
            .and_then(|()| header.set_groupname(""))
            .map_err(|e| Error::archive(format!("tar header: {e}")))?;
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, &entry.name, data.as_slice())
            .map_err(|e| Error::archive(format!("tar entry {}: {e}", entry.name)))?;
    }
    let gz = tar
        .into_inner()
        .map_err(|e| Error::archive(format!("tar: {e}")))?;
    let mut file = gz
        .finish()
        .map_err(|e| Error::archive(format!("gzip: {e}")))?;
    file.flush()
        .map_err(|e| Error::archive(format!("flush: {e}")))
}

/// Civil date (UTC) of unix seconds: (year, month, day, hour, minute, second).
fn civil(secs: u64) -> (i64, u8, u8, u8, u8, u8) {
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let rem = secs % 86_400;
    // Howard Hinnant's days_from_civil inverse.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // The casts are in range by construction (month 1..=12, day 1..=31, h/m/s < 60).
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    (
        year,
        month as u8,
        day as u8,
        (rem / 3600) as u8,
        (rem % 3600 / 60) as u8,
        (rem % 60) as u8,
    )
}

fn zip_time(mtime: u64) -> zip::DateTime {
    let (y, mo, d, h, mi, s) = civil(mtime);
    u16::try_from(y)
        .ok()
        .and_then(|y| zip::DateTime::from_date_and_time(y, mo, d, h, mi, s).ok())
        .unwrap_or_default()
}

fn write_zip(entries: &[ArchiveEntry], mtime: u64, file: File) -> Result<()> {
    let mut zip = zip::ZipWriter::new(file);
    let time = zip_time(mtime);
    for entry in entries {
        let data = read_entry(entry)?;
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .compression_level(Some(9))
            .last_modified_time(time)
            .unix_permissions(mode(entry));
        zip.start_file(entry.name.as_str(), options)
            .map_err(|e| Error::archive(format!("zip entry {}: {e}", entry.name)))?;
        zip.write_all(&data)
            .map_err(|e| Error::archive(format!("zip entry {}: {e}", entry.name)))?;
    }
    let mut file = zip
        .finish()
        .map_err(|e| Error::archive(format!("zip: {e}")))?;
    file.flush()
        .map_err(|e| Error::archive(format!("flush: {e}")))
}

impl Manifest {
    /// The manifest of these archives (entries without `url`; see
    /// [`Manifest::with_download_base`]).
    #[must_use]
    pub fn new(version: impl Into<String>, assets: &[Asset]) -> Self {
        let mut manifest = Self::empty(version);
        manifest.targets = assets
            .iter()
            .map(|a| {
                (
                    a.target.clone(),
                    ManifestEntry {
                        asset: a.name.clone(),
                        url: None,
                        sha256: a.sha256.clone(),
                    },
                )
            })
            .collect();
        manifest
    }
}

/// Builds every archive and writes `manifest.json` beside them. Returns the archives (sorted by
/// target) followed by the manifest as an asset (target `manifest`), and the manifest.
///
/// # Errors
/// As [`build_archive`]; [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when the
/// specs disagree on the version or repeat a target.
pub fn package(specs: &[ArchiveSpec], out_dir: &Path) -> Result<(Vec<Asset>, Manifest)> {
    let Some(first) = specs.first() else {
        return Err(Error::input("specs", "at least one target to package"));
    };
    let mut specs: Vec<&ArchiveSpec> = specs.iter().collect();
    specs.sort_by(|a, b| a.target.cmp(&b.target));
    for pair in specs.windows(2) {
        if pair[0].target == pair[1].target {
            return Err(Error::input(
                format!("specs[{}]", pair[1].target),
                "each target once",
            ));
        }
    }
    if let Some(other) = specs.iter().find(|s| s.version != first.version) {
        return Err(Error::input(
            format!("specs[{}].version", other.target),
            format!("the same version as the others ({})", first.version),
        ));
    }
    let mut assets = specs
        .iter()
        .map(|spec| build_archive(spec, out_dir))
        .collect::<Result<Vec<_>>>()?;
    let manifest = Manifest::new(first.version.clone(), &assets);
    let path = out_dir.join(MANIFEST_NAME);
    std::fs::write(&path, manifest.to_json()?).map_err(|e| Error::io(&path, e))?;
    assets.push(Asset::from_file("manifest", path, "application/json")?);
    Ok((assets, manifest))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil(951_782_400), (2000, 2, 29, 0, 0, 0));
        assert_eq!(civil(1_700_000_000), (2023, 11, 14, 22, 13, 20));
    }

    #[test]
    fn formats_and_names() {
        let spec = ArchiveSpec::new("flow", "1.2.3", "x86_64-pc-windows-msvc", "b", "l", "r");
        assert_eq!(spec.asset_name(), "flow-v1.2.3-x86_64-pc-windows-msvc.zip");
        assert_eq!(spec.entries[0].name, "flow.exe");
        let spec = ArchiveSpec::new("flow", "1.2.3", "aarch64-apple-darwin", "b", "l", "r");
        assert_eq!(spec.asset_name(), "flow-v1.2.3-aarch64-apple-darwin.tar.gz");
        assert_eq!(spec.entries[0].name, "flow");
    }
}
