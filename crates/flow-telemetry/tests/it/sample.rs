//! The bundled sample is what the seeded generator produces, and it shows its failure burst.

use flow_telemetry::generator::generate;
use flow_telemetry::source::file::to_ndjson;
use flow_telemetry::{AlertKind, Monitor, Rules, sample};

#[test]
fn bundled_sample_is_the_generator_output() {
    let want = to_ndjson(&generate(&sample::config()).runs).unwrap();
    let ndjson = sample::ndjson().unwrap();
    assert_eq!(ndjson, want);
    assert_eq!(ndjson.lines().count(), 300);
    assert_eq!(sample::history().unwrap().len(), 300);
    // The history every offline run and demo shows stays the same across releases: its size
    // and its digest are pinned (a generator change that moves them is a visible change).
    assert_eq!(ndjson.len(), 143_650);
    assert_eq!(sha256_hex(ndjson.as_bytes()), SAMPLE_SHA256);
}

/// SHA-256 of the bundled history as stored in `data/sample-runs.ndjson` before it was generated
/// on demand.
const SAMPLE_SHA256: &str = "870aade2a328065e4b7014e220fd971f151c83fd10fc5fe4d046050a3c43467c";

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[test]
fn monitoring_the_sample_finds_the_burst() {
    let h = generate(&sample::config());
    assert_eq!(h.anomalies.len(), 1);
    let burst = &h.anomalies[0];
    let mut monitor = Monitor::new(Rules::default());
    let mut kinds = Vec::new();
    for run in sample::history().unwrap() {
        for a in monitor.observe(&run).alerts {
            kinds.push((a.workflow.clone(), a.kind));
        }
    }
    assert!(
        kinds.iter().any(|(w, k)| *w == burst.workflow
            && matches!(k, AlertKind::FailureRate | AlertKind::ConsecutiveFailures)),
        "{kinds:?}"
    );
}
