//! The detection-quality report of BENCHMARKS.md: every setting of flow-telemetry's quality
//! harness, scored on incidents, with tuning and held-out seeds apart (20,000 runs each).
//! `--breakdown` lists every missed anomaly and extra incident on the tuning seeds instead,
//! as a tuning aid. The targets themselves are asserted by the held-out test in
//! `crates/flow-telemetry/tests/it/quality.rs`.
//!
//! `cargo run --release -p flow-examples --example quality_report [-- --breakdown]`
#![allow(clippy::print_stdout)]

use flow_telemetry::Rules;
use flow_telemetry::generator::generate;
use flow_telemetry::quality::{
    HELD_OUT_SEEDS, Quality, SETTINGS, TUNING_SEEDS, measure, misses, table,
};

/// Runs per history in the report.
const RUNS: usize = 20_000;
/// Runs per history in the breakdown (as the held-out test).
const BREAKDOWN_RUNS: usize = 9_000;

fn main() {
    let rules = Rules::default();
    if std::env::args().any(|a| a == "--breakdown") {
        for s in &SETTINGS {
            for &seed in &TUNING_SEEDS {
                for line in misses(&generate(&s.config(seed, BREAKDOWN_RUNS)), &rules) {
                    println!("{} seed {seed}: {line}", s.name);
                }
            }
            let q = measure(s, &TUNING_SEEDS, BREAKDOWN_RUNS, &rules);
            println!("{}", table(&[(s.name.to_string(), q)]));
        }
        return;
    }
    for (which, seeds) in [
        ("tuning", &TUNING_SEEDS[..]),
        ("held-out", &HELD_OUT_SEEDS[..]),
    ] {
        let rows: Vec<(String, Quality)> = SETTINGS
            .iter()
            .map(|s| (s.name.to_string(), measure(s, seeds, RUNS, &rules)))
            .collect();
        println!(
            "\n{which} seeds {seeds:?}, {RUNS} runs each\n\n{}",
            table(&rows)
        );
        for (label, q) in &rows {
            println!(
                "{label}: {} incidents, {} false over {} normal runs = {:.3} per 1,000, {} duplicates",
                q.incidents,
                q.false_incidents,
                q.normal_runs,
                q.false_incidents_per_1000,
                q.duplicate_incidents
            );
        }
    }
}
