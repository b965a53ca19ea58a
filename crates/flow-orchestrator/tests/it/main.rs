//! Integration tests of the facade, with mockall mocks of every trait it joins.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub
)]

mod author;
mod config;
mod delegate;
mod mocks;
mod monitor;
mod publish;
