//! The bundled sample is what the seeded generator produces, and it shows its failure burst.

use flow_telemetry::generator::generate;
use flow_telemetry::source::file::to_ndjson;
use flow_telemetry::{AlertKind, Monitor, Rules, sample};

#[test]
fn bundled_sample_is_the_generator_output() {
    let want = to_ndjson(&generate(&sample::config()).runs).unwrap();
    if std::env::var_os("FLOW_TELEMETRY_REGEN").is_some() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sample-runs.ndjson");
        std::fs::write(path, &want).unwrap();
        return;
    }
    assert_eq!(
        sample::NDJSON,
        want,
        "regenerate with FLOW_TELEMETRY_REGEN=1"
    );
    assert_eq!(sample::history().unwrap().len(), 300);
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
