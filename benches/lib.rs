//! Benchmarks live beside this file as `[[bench]]` targets (criterion, `harness = false`).
