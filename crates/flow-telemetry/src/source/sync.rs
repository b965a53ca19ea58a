//! Incremental sync (in progress).
