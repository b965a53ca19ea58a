//! A small bundled history for offline runs and demos, made by [`crate::generator`] with
//! [`config`]: 300 runs of three workflows with one injected failure burst in `CI`.
//!
//! The history is generated when asked for, not stored: as text it is 143 KB of the release
//! binary, the seeded generator's code a fraction of that, and the output is the same on every
//! machine (the generator draws from its own seeded `SplitMix64`). See BENCHMARKS.md "Binary
//! size".

use crate::error::Result;
use crate::generator::{AnomalyKind, GeneratorConfig, generate};
use crate::model::Run;
use crate::source::file::{parse_runs, to_ndjson};

/// The bundled history as NDJSON, one REST-shaped run per line (about 143 KB).
///
/// # Errors
/// Only if a generated run cannot be serialized, which the crate's tests rule out.
pub fn ndjson() -> Result<String> {
    to_ndjson(&generate(&config()).runs)
}

/// The generator settings of the bundled history.
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
/// Read back through the NDJSON parser, exactly as a user's export of the same runs would be.
///
/// # Errors
/// Never for the bundled history (a test parses it); the `Result` covers the general parser.
pub fn history() -> Result<Vec<Run>> {
    parse_runs(&ndjson()?)
}
