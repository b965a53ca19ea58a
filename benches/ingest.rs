//! flow-telemetry: ingest of a real-shaped export — full REST run objects (~11.7 KB each, every
//! field of GitHub's official example) as `GET /actions/runs` pages in a JSON array — from a
//! file, each beside baselines measured in the same run.
//!
//! `cargo bench -p flow-benches --bench ingest -- --warm-up-time 1 --measurement-time 5`
//!
//! - `ingest/read_bytes` (baseline): reading the file in 4 MiB chunks, nothing else.
//! - `ingest/serde_value` (baseline): `serde_json::from_slice::<Value>` of the same bytes (the
//!   first step of the old parser), the file already in memory.
//! - `ingest/tree_parser` (baseline): the old parser, `parse_runs_tree` (Value tree, then runs).
//! - `ingest/stream_1_thread`, `ingest/stream_2_threads`: the streaming typed parser reading the
//!   file, folding every run into whole-history KPIs ([`History`]), one or two parsing threads.
//! - `ingest/end_to_end_1_thread`: `ingest_path` — read, filter, whole-history KPIs and the
//!   bounded retention of the newest runs per workflow for detection — on one core.
//!
//! Under `cargo test` (no `--bench`) the file shrinks to 200 runs so the smoke run is quick.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout
)]

use std::hint::black_box;
use std::io::Read;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flow_telemetry::generator::{GeneratorConfig, generate, write_rest_pages};
use flow_telemetry::history::History;
use flow_telemetry::source::file::{IngestOptions, ingest_path, parse_runs_tree};
use flow_telemetry::source::stream::{ReadOptions, read_runs};

fn runs() -> usize {
    if std::env::args().any(|a| a == "--bench") {
        4_400
    } else {
        200
    }
}

fn bench(c: &mut Criterion) {
    let n = runs();
    let history = generate(&GeneratorConfig {
        seed: 7,
        runs: n,
        ..GeneratorConfig::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("export.json");
    write_rest_pages(
        &history.runs,
        100,
        std::io::BufWriter::new(std::fs::File::create(&path).unwrap()),
    )
    .unwrap();
    let bytes = std::fs::read(&path).unwrap();
    println!(
        "ingest bench: {n} runs, {:.1} MB ({} B/run)",
        bytes.len() as f64 / 1e6,
        bytes.len() / n
    );

    let mut g = c.benchmark_group("ingest");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("read_bytes", |b| {
        let mut buf = vec![0u8; 4 << 20];
        b.iter(|| {
            let mut f = std::fs::File::open(&path).unwrap();
            let mut total = 0usize;
            loop {
                let k = f.read(&mut buf).unwrap();
                if k == 0 {
                    break;
                }
                total += usize::from(buf[k - 1]) + k;
            }
            black_box(total)
        });
    });
    g.bench_function("serde_value", |b| {
        b.iter(|| black_box(serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()));
    });
    let text = std::str::from_utf8(&bytes).unwrap();
    g.bench_function("tree_parser", |b| {
        // The old parser reads one page or an array of runs: hand it the runs as an array.
        let runs: Vec<serde_json::Value> = serde_json::from_str::<Vec<serde_json::Value>>(text)
            .unwrap()
            .into_iter()
            .flat_map(|p| p["workflow_runs"].as_array().cloned().unwrap_or_default())
            .collect();
        let array = serde_json::to_string(&runs).unwrap();
        assert_eq!(parse_runs_tree(&array).unwrap().len(), n);
        b.iter(|| black_box(parse_runs_tree(black_box(&array)).unwrap().len()));
    });
    for threads in [1, 2] {
        let name = if threads == 1 {
            "stream_1_thread"
        } else {
            "stream_2_threads"
        };
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut h = History::new();
                let f = std::fs::File::open(&path).unwrap();
                read_runs(f, &ReadOptions::default().threads(threads), |r| h.add(&r)).unwrap();
                assert_eq!(h.runs(), n as u64);
                black_box(h)
            });
        });
    }
    g.bench_function("end_to_end_1_thread", |b| {
        let opts = IngestOptions {
            read: ReadOptions::default().threads(1),
            ..IngestOptions::default()
        };
        b.iter(|| black_box(ingest_path(&path, &opts).unwrap().history.runs()));
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
