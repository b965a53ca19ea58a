//! Detection quality on seeded histories of different character (failure rates 1–20 %, heavy
//! tails, weekly seasonality, queueing bursts, mixed outcomes, three branches): scored on
//! incidents, asserted on held-out seeds that were not used in tuning.
//!
//! The table in BENCHMARKS.md comes from the `quality_report` example:
//! `cargo run --release -p flow-examples --example quality_report`

use flow_telemetry::Rules;
use flow_telemetry::generator::{GeneratorConfig, generate};
use flow_telemetry::quality::{HELD_OUT_SEEDS, Quality, SETTINGS, evaluate, measure, table};

/// Runs per held-out history: enough for every kind at every rate, quick in a debug build.
const RUNS: usize = 9_000;

fn check(label: &str, q: &Quality) {
    for k in &q.kinds {
        assert!(
            k.injected >= 3,
            "{label} {:?}: only {} injected",
            k.kind,
            k.injected
        );
        assert!(
            k.f1 >= 0.95,
            "{label} {:?}: F1 {:.3} < 0.95\n{}",
            k.kind,
            k.f1,
            table(&[(label.to_string(), q.clone())])
        );
    }
    assert_eq!(
        q.duplicate_incidents, 0,
        "{label}: one incident per injected problem"
    );
    assert!(
        q.false_incidents_per_1000 <= 0.5,
        "{label}: {:.3} false incidents per 1,000 normal runs",
        q.false_incidents_per_1000
    );
}

#[test]
fn held_out_seeds_meet_the_targets_at_every_failure_rate() {
    let rules = Rules::default();
    let mut rows = Vec::new();
    for s in &SETTINGS {
        let q = measure(s, &HELD_OUT_SEEDS, RUNS, &rules);
        rows.push((s.name.to_string(), q));
    }
    println!("{}", table(&rows));
    for (label, q) in &rows {
        check(label, q);
    }
}

#[test]
fn a_quiet_history_raises_almost_nothing() {
    let h = generate(&GeneratorConfig {
        anomaly_every: 0,
        ..GeneratorConfig::realistic(9, 20_000, 0.10)
    });
    assert!(h.anomalies.is_empty());
    let q = evaluate(&h, &Rules::default());
    assert_eq!(q.normal_runs, 20_000);
    assert!(
        q.false_incidents <= 10,
        "{} false incidents in 20,000 normal runs",
        q.false_incidents
    );
}
