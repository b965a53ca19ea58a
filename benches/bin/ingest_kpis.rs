//! Reads an export with flow-telemetry's streaming ingest and prints its whole-history KPIs as
//! JSON: the Rust side of the Python side-by-side in BENCHMARKS.md (`benches/kpis.py` computes
//! the same figures with `json.load`).
//!
//! `cargo run --release -p flow-benches --bin ingest-kpis -- EXPORT.json [THREADS]`
#![allow(clippy::print_stdout, clippy::print_stderr)]

use flow_telemetry::source::file::{IngestOptions, ingest_path};
use flow_telemetry::source::stream::ReadOptions;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: ingest-kpis EXPORT.json [THREADS]")?;
    let threads: usize = args.next().map_or(Ok(1), |s| s.parse())?;
    let start = std::time::Instant::now();
    let got = ingest_path(
        &path,
        &IngestOptions {
            read: ReadOptions::default().threads(threads),
            ..IngestOptions::default()
        },
    )?;
    let secs = start.elapsed().as_secs_f64();
    println!("{}", got.history.to_json());
    eprintln!(
        "{} runs, {:.1} MB in {secs:.3} s: {:.0} MB/s ({threads} thread(s)); {} kept for detection",
        got.stats.runs,
        got.stats.bytes as f64 / 1e6,
        got.stats.bytes as f64 / 1e6 / secs,
        got.source.all().len()
    );
    Ok(())
}
