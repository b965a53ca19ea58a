//! Integration tests of flow-llm against local HTTP servers speaking the real wire format.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod cache;
mod client;
mod conformance;
mod delegate;
mod reliability;
mod spend;
mod support;
