//! Detection quality on seeded synthetic histories: prints the figures recorded in
//! BENCHMARKS.md and asserts the targets (F1 ≥ 0.9 on step changes and failure bursts,
//! ≤ 1 false alarm per 1,000 normal runs).
//!
//! `cargo test -p flow-telemetry --test it quality -- --nocapture --test-threads 1`

use flow_telemetry::generator::{AnomalyKind, GeneratorConfig, History, generate};
use flow_telemetry::quality::{Quality, evaluate};
use flow_telemetry::rules::Rules;

fn merged(seeds: &[u64], runs: usize, rules: &Rules) -> Vec<Quality> {
    seeds
        .iter()
        .map(|&seed| {
            let h: History = generate(&GeneratorConfig {
                seed,
                runs,
                ..GeneratorConfig::default()
            });
            evaluate(&h, rules)
        })
        .collect()
}

#[test]
fn detectors_meet_the_quality_targets() {
    measure_and_check(&Rules::default(), "default rules");
}

#[test]
fn the_default_failure_ewma_threshold_is_the_measured_one() {
    assert!((Rules::default().defaults.failure_ewma_threshold - 0.5).abs() < f64::EPSILON);
}

#[test]
fn a_looser_failure_ewma_trades_precision_for_delay() {
    let mut rules = Rules::default();
    rules.defaults.failure_ewma_threshold = 0.4;
    measure_and_check(&rules, "failure_ewma_threshold 0.4 (the pre-0.5 default)");
}

fn measure_and_check(rules: &Rules, label: &str) {
    let seeds = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    let results = merged(&seeds, 20_000, rules);
    let mut normal = 0;
    let mut false_alarms = 0;
    println!("seeds {seeds:?}, 20,000 runs each, {label}");
    println!(
        "kind | injected | detected | alerts | true | precision | recall | F1 | mean delay | max delay"
    );
    for kind in [
        AnomalyKind::StepChange,
        AnomalyKind::FailureBurst,
        AnomalyKind::QueueBacklog,
        AnomalyKind::Flaky,
    ] {
        let (mut inj, mut det, mut al, mut tr, mut delay_sum, mut max_delay) = (0, 0, 0, 0, 0.0, 0);
        for q in &results {
            let k = q.kind(kind).unwrap();
            inj += k.injected;
            det += k.detected;
            al += k.alerts;
            tr += k.true_alerts;
            delay_sum += k.mean_delay_runs * k.detected as f64;
            max_delay = max_delay.max(k.max_delay_runs);
        }
        let p = if al == 0 { 1.0 } else { tr as f64 / al as f64 };
        let r = det as f64 / inj as f64;
        let f1 = 2.0 * p * r / (p + r);
        let mean_delay = delay_sum / det.max(1) as f64;
        println!(
            "{kind:?} | {inj} | {det} | {al} | {tr} | {p:.3} | {r:.3} | {f1:.3} | {mean_delay:.2} | {max_delay}"
        );
        if matches!(kind, AnomalyKind::StepChange | AnomalyKind::FailureBurst) {
            assert!(f1 >= 0.9, "{kind:?}: F1 {f1:.3} < 0.9");
            assert!(inj >= 20, "{kind:?}: too few injected ({inj}) to measure");
        }
    }
    for q in &results {
        normal += q.normal_runs;
        false_alarms += q.false_alarms;
    }
    let per_1000 = false_alarms as f64 * 1000.0 / normal as f64;
    println!("false alarms: {false_alarms} over {normal} normal runs = {per_1000:.3} per 1,000");
    assert!(
        per_1000 <= 1.0,
        "{per_1000:.3} false alarms per 1,000 normal runs"
    );
}

#[test]
fn a_quiet_history_raises_nothing_much() {
    let h = generate(&GeneratorConfig {
        seed: 9,
        runs: 20_000,
        anomaly_every: 0,
        ..GeneratorConfig::default()
    });
    assert!(h.anomalies.is_empty());
    let q = evaluate(&h, &Rules::default());
    assert_eq!(q.normal_runs, 20_000);
    assert!(
        q.false_alarms <= 20,
        "{} false alarms in 20,000 normal runs",
        q.false_alarms
    );
}
