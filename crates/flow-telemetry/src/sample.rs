//! A small bundled history for offline runs and demos, made by [`crate::generator`] with
//! [`config`]: 300 runs of three workflows with one injected failure burst in `CI`.

use crate::error::Result;
use crate::generator::{AnomalyKind, GeneratorConfig};
use crate::model::Run;

/// The bundled NDJSON, one REST-shaped run per line.
pub const NDJSON: &str = include_str!("../data/sample-runs.ndjson");

/// The generator settings that produced [`NDJSON`].
pub fn config() -> GeneratorConfig {
    GeneratorConfig {
        seed: 2026,
        runs: 300,
        anomaly_kinds: vec![AnomalyKind::FailureBurst],
        first_anomaly_at: 120,
        anomaly_every: 100_000,
        ..GeneratorConfig::default()
    }
}

/// The bundled runs, in creation order.
///
/// # Errors
/// Never for the bundled file (a test parses it); the `Result` covers the general parser.
pub fn history() -> Result<Vec<Run>> {
    crate::source::file::parse_runs(NDJSON)
}
