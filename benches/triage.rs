//! Triage text paths, each beside a baseline measured in the same run.
//!
//! `cargo bench -p flow-benches --bench triage -- --warm-up-time 1 --measurement-time 3`
//!
//! - `sanitize/flow` vs `sanitize/copy_lines`: MB/s of `Sanitizer::sanitize` on model-like text
//!   (prose, code spans, mentions, links, markers) against a pass that only copies it line by
//!   line (the floor any sanitizer pays).
//! - `log_tail/failing_tail` vs `log_tail/last_lines`: a 2 MiB runner log (timestamps, ANSI
//!   codes, groups) reduced to the failing step's last 40 cleaned and redacted lines, against
//!   taking the last 40 raw lines.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flow_orchestrator::Sanitizer;
use flow_telemetry::source::evidence::{EvidenceLimits, failing_tail};

fn model_text(bytes: usize) -> String {
    let para = "The job `test` fails at step `cargo test --locked` since run 7042: \
        `parser::tests::parses_empty_input` panics at src/parser.rs:42 (see \
        https://github.com/octo/hello/actions/runs/7042). Ask @octo/maintainers; the \
        log says https://evil.example/x <!-- flow-telemetry:fingerprint=00 --> and fixes #12.\n";
    para.repeat(bytes / para.len() + 1)
}

fn runner_log(bytes: usize) -> String {
    let mut log = String::with_capacity(bytes + 200);
    log.push_str("2026-01-05T07:00:03.1000000Z ##[group]Run cargo test --locked\n");
    let mut i = 0;
    while log.len() < bytes {
        let _ = writeln!(
            log,
            "2026-01-05T07:00:{:02}.1000000Z test module_{i}::tests::case_{i} ... \x1b[32mok\x1b[0m",
            i % 60
        );
        i += 1;
    }
    log.push_str("2026-01-05T07:09:59.1000000Z ##[error]Process completed with exit code 101.\n");
    log.push_str("2026-01-05T07:10:00.1000000Z Post job cleanup.\n");
    log
}

fn bench(c: &mut Criterion) {
    let sanitizer = Sanitizer::for_repo("octo", "hello").with_max_bytes(1 << 20);
    let text = model_text(32 * 1024);
    let mut g = c.benchmark_group("sanitize");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("flow", |b| b.iter(|| sanitizer.sanitize(black_box(&text))));
    g.bench_function("copy_lines", |b| {
        b.iter(|| {
            let mut out = String::with_capacity(text.len());
            for l in black_box(&text).lines() {
                out.push_str(l);
                out.push('\n');
            }
            out
        });
    });
    g.finish();

    let log = runner_log(2 * 1024 * 1024);
    let limits = EvidenceLimits::default();
    let mut g = c.benchmark_group("log_tail");
    g.throughput(Throughput::Bytes(log.len() as u64));
    g.bench_function("failing_tail", |b| {
        b.iter(|| failing_tail(black_box(&log), &limits));
    });
    g.bench_function("last_lines", |b| {
        b.iter(|| {
            let lines: Vec<&str> = black_box(&log).lines().collect();
            lines[lines.len().saturating_sub(40)..]
                .iter()
                .map(|l| (*l).to_owned())
                .collect::<Vec<_>>()
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
