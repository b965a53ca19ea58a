//! flow-telemetry: ingest (NDJSON parse), KPIs and streaming detection over 1,000,000
//! synthetic runs on one core, each beside a baseline measured in the same run.
//!
//! `cargo bench -p flow-benches --bench telemetry -- --warm-up-time 1 --measurement-time 3`
//!
//! - `parse/typed_run` vs `parse/serde_value`: MB/s of turning NDJSON lines into `Run`s, against
//!   parsing the same lines into untyped `serde_json::Value`s.
//! - `kpis_detection/monitor` vs `kpis_detection/baseline_sum`: runs/s of `Monitor::observe`
//!   (all detectors, bounded windows) with KPIs computed every 1,000 runs, against a loop that
//!   only sums durations of the same runs.
//! - `ingest_end_to_end/ndjson_to_alerts`: parse + detect + KPIs streaming line by line, so
//!   memory is the window, not the history.
//!
//! Under `cargo test` (no `--bench`), sizes shrink to 20,000 runs so the smoke run is quick.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout
)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flow_telemetry::generator::{GeneratorConfig, generate};
use flow_telemetry::source::file::{parse_ndjson_line, to_ndjson};
use flow_telemetry::{Monitor, Rules, Run};

fn sizes() -> (usize, usize) {
    if std::env::args().any(|a| a == "--bench") {
        (1_000_000, 100_000)
    } else {
        (20_000, 5_000)
    }
}

fn observe_all<'a>(runs: impl Iterator<Item = &'a Run>, rules: &Rules) -> (usize, usize) {
    let mut m = Monitor::new(rules.clone());
    let mut alerts = 0;
    let mut kpi_groups = 0;
    for (i, r) in runs.enumerate() {
        alerts += m.observe(r).alerts.len();
        if i % 1_000 == 999 {
            kpi_groups += m.kpis().len();
        }
    }
    (alerts, kpi_groups)
}

fn bench(c: &mut Criterion) {
    let (n, parse_n) = sizes();
    let history = generate(&GeneratorConfig {
        seed: 11,
        runs: n,
        ..GeneratorConfig::default()
    });
    let runs = history.runs;
    let ndjson = to_ndjson(&runs).unwrap();
    let lines: Vec<&str> = ndjson.lines().collect();
    let parse_lines = &lines[..parse_n.min(lines.len())];
    let parse_bytes: usize = parse_lines.iter().map(|l| l.len() + 1).sum();
    let rules = Rules::default();
    println!(
        "telemetry bench: {} runs, NDJSON {:.1} MB ({} B/run), {} anomalies injected",
        runs.len(),
        ndjson.len() as f64 / 1e6,
        ndjson.len() / runs.len().max(1),
        history.anomalies.len()
    );

    let mut g = c.benchmark_group("parse");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(parse_bytes as u64));
    g.bench_function("typed_run", |b| {
        b.iter(|| {
            let mut ok = 0usize;
            for l in parse_lines {
                ok += usize::from(parse_ndjson_line(black_box(l)).is_ok());
            }
            ok
        })
    });
    g.bench_function("serde_value", |b| {
        b.iter(|| {
            let mut ok = 0usize;
            for l in parse_lines {
                ok += usize::from(serde_json::from_str::<serde_json::Value>(black_box(l)).is_ok());
            }
            ok
        })
    });
    g.finish();

    let mut g = c.benchmark_group("kpis_detection");
    g.sample_size(10);
    g.throughput(Throughput::Elements(runs.len() as u64));
    g.bench_function("monitor", |b| {
        b.iter(|| observe_all(black_box(&runs).iter(), &rules))
    });
    g.bench_function("baseline_sum", |b| {
        b.iter(|| {
            black_box(&runs)
                .iter()
                .filter_map(Run::duration_ms)
                .sum::<i64>()
        })
    });
    g.finish();

    let mut g = c.benchmark_group("ingest_end_to_end");
    g.sample_size(10);
    g.throughput(Throughput::Elements(runs.len() as u64));
    g.bench_function("ndjson_to_alerts", |b| {
        b.iter(|| {
            let mut m = Monitor::new(rules.clone());
            let mut alerts = 0usize;
            for (i, l) in ndjson.lines().enumerate() {
                let run = parse_ndjson_line(l).unwrap();
                alerts += m.observe(&run).alerts.len();
                if i % 1_000 == 999 {
                    black_box(m.kpis());
                }
            }
            alerts
        })
    });
    g.finish();

    let mut m = Monitor::new(rules.clone());
    let mut alerts = 0usize;
    for r in &runs {
        alerts += m.observe(r).alerts.len();
    }
    println!(
        "alerts raised over the history: {alerts}; the monitor retains {} run facts ({} bytes) after {} runs",
        m.retained(),
        m.retained() * std::mem::size_of::<flow_telemetry::RunFacts>(),
        runs.len()
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
