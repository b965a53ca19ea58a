//! `flow-publish`: ship a Rust binary as a GitHub Action — typed `action.yml`, reproducible
//! release archives with a SHA-256 manifest, and an idempotent GitHub release flow.
//!
//! # Action metadata
//! [`ActionMetadata`] is `action.yml` as types: read with [`ActionMetadata::from_yaml`] (composite,
//! node and docker actions), written with [`ActionMetadata::to_yaml`] (keys in GitHub's order,
//! multi-line strings as block scalars that read back exactly). [`ActionMetadata::from_inputs`]
//! derives the inputs from the schemars schema of the binary's input struct, so the action cannot
//! drift from the binary. [`ActionMetadata::validate`] checks GitHub's rules and script-injection
//! safety; every [`Finding`] says where (`runs.steps[2].run`) and what was expected. [`readme`]
//! renders the inputs/outputs tables between markers and checks them.
//!
//! # Packaging
//! [`package()`] builds one reproducible archive per target (tar.gz, or zip for Windows) holding
//! the binary, `LICENSE` and `README.md`, hashes each with SHA-256 and writes the
//! [`Manifest`] (`manifest.json`) for them; [`merge`] joins the per-target manifests of a release
//! build matrix into the one the composite action commits and reads (absolute URLs, SHA-256, a
//! format version; [`manifest_schema`] is its JSON Schema). The format is documented in
//! [`mod@manifest`].
//!
//! # Releasing
//! A [`ReleasePlan`] (version, commit, notes from [`changelog_section`], assets) is carried out
//! by a [`Publisher`]: [`GitHubPublisher`] (GitHub REST through flow-github, configurable API and
//! upload hosts) or [`DryRunPublisher`] (writes each step to a writer). The flow: draft release →
//! upload assets → check each asset's `digest` against the local SHA-256 (downloading and
//! hashing when GitHub omits it) → publish → move the major tag (`v1`) with a forced ref update,
//! or create it. Reruns resume: the release and matching assets are reused, mismatching or
//! half-uploaded assets are replaced, and a published immutable release is only verified.
//!
//! ```
//! use flow_publish::{ActionMetadata, Branding, Runs, Step};
//!
//! /// Inputs of the binary.
//! #[derive(schemars::JsonSchema)]
//! #[serde(rename_all = "kebab-case")]
//! struct Args {
//!     /// The model to ask.
//!     model: String,
//!     /// Retries before giving up.
//!     #[serde(default)]
//!     max_retries: u32,
//! }
//!
//! let meta = ActionMetadata::from_inputs::<Args>("flow", "Delegate decisions to an LLM")?;
//! let env = meta.inputs_env();
//! let meta = meta
//!     .with_branding(Branding::new("zap", "black"))
//!     .with_runs(Runs::composite(vec![
//!         Step::run("Run flow", "bash", "flow delegate\n").with_envs(env),
//!     ]));
//! assert!(meta.validate().is_ok());
//! assert_eq!(meta.inputs["model"].required, Some(true));
//! assert_eq!(meta.inputs["max-retries"].default.as_deref(), Some("0"));
//! let yaml = meta.to_yaml()?;
//! assert!(yaml.contains("INPUT_MODEL: ${{ inputs.model }}"));
//! assert_eq!(ActionMetadata::from_yaml(&yaml)?, meta);
//! # Ok::<(), flow_publish::Error>(())
//! ```

// The README's example, compiled and run with the doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod branding;
mod error;
mod generate;
mod github;
pub mod manifest;
mod metadata;
pub mod package;
pub mod readme;
mod release;
mod validate;

pub use branding::{
    BRANDING_COLORS, BRANDING_ICONS, OMITTED_ICONS, is_branding_color, is_branding_icon,
};
pub use error::{Error, ErrorKind, Result};
pub use generate::inputs_from_schema;
pub use github::{DEFAULT_API_BASE, GitHubPublisher};
pub use manifest::{
    MANIFEST_FORMAT, MANIFEST_NAME, Manifest, ManifestEntry, ManifestPart, manifest_schema, merge,
};
pub use metadata::{
    ActionMetadata, BoolOrExpression, Branding, CompositeRuns, DockerRuns, Input, NodeRuns, Output,
    Runs, Step, StringMap, input_env_name,
};
pub use package::{
    ArchiveEntry, ArchiveFormat, ArchiveSpec, Asset, DEFAULT_TARGETS, build_archive, package,
    sha256_file, sha256_hex, source_date_epoch,
};
pub use release::{
    DryRunPublisher, Publisher, ReleasePlan, ReleaseReport, ReleaseStep, changelog_section,
};
pub use validate::{Finding, Severity, Validation, injected_expressions, is_valid_id};
