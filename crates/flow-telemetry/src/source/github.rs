//! GitHub REST source (in progress).
