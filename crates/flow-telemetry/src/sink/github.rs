//! GitHub issues sink (in progress).
