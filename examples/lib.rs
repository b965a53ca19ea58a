//! Runnable examples live beside this file as `[[example]]` targets; run one with
//! `cargo run -p flow-examples --example NAME`.
