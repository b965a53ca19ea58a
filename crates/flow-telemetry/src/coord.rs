//! Coordination of `flow serve` replicas: which replica works on which repository, and where
//! accepted deliveries wait until one does.
//!
//! - [`redis`]: the shared primitives on Redis ([`redis::RedisCoordinator`]): delivery
//!   de-duplication, a durable inbox per repository, the set of repositories with pending
//!   work, and per-repository leases with fencing tokens that guard the state saves.

pub mod redis;
