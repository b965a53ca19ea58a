//! Integration tests of flow-publish.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod metadata;
