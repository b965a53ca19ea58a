//! What a long-running `flow serve` needs below the HTTP layer: the [`Coordinator`] seam that
//! replicas share ([`coord`]) and the verification and parsing of GitHub webhook deliveries
//! ([`webhook`]).
//!
//! The HTTP server itself lives in the binary; this module knows nothing of HTTP frameworks.

pub mod coord;
pub mod webhook;

pub use coord::{Accepted, Coordinator, Delivery, EntryId, InboxEntry, Lease, MemoryCoordinator};
pub use webhook::{JobContext, SignatureProblem, WebhookEvent, WebhookSecret, parse_delivery};
