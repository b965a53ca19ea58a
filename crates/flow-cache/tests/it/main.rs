//! Integration tests for flow-cache: the `Cache` front over the memory store, model-based
//! proptests, and the Redis backend against a real `redis-server` the tests start.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod front;
mod model;
mod redis_backend;
mod redis_server;
