//! Integration tests of flow-publish.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    missing_docs,
    unreachable_pub
)]

mod manifest;
mod metadata;
mod package;
mod release;
mod samples;
mod schema_check;
