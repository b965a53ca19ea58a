//! Writes a synthetic export of full REST run objects (GitHub's real shape, ~11.7 KB each) as
//! `GET /actions/runs` pages in a JSON array, for the ingest benchmarks and the Python
//! side-by-side in BENCHMARKS.md.
//!
//! `cargo run --release -p flow-benches --bin gen-export -- RUNS OUT.json [SEED]`
#![allow(clippy::print_stderr)]

use flow_telemetry::generator::{GeneratorConfig, generate, write_rest_pages};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: gen-export RUNS OUT.json [SEED]";
    let runs: usize = args.next().ok_or(usage)?.parse()?;
    let out = args.next().ok_or(usage)?;
    let seed: u64 = args.next().map_or(Ok(7), |s| s.parse())?;
    let history = generate(&GeneratorConfig {
        seed,
        runs,
        ..GeneratorConfig::default()
    });
    let file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&out)?);
    write_rest_pages(&history.runs, 100, file)?;
    let bytes = std::fs::metadata(&out)?.len();
    eprintln!(
        "{out}: {runs} runs, {:.1} MB ({} B/run)",
        bytes as f64 / 1e6,
        bytes / runs.max(1) as u64
    );
    Ok(())
}
