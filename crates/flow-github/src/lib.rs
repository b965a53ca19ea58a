//! `flow-github`: the one GitHub REST client of flow-orchestrator, shared by flow-telemetry
//! (runs, jobs, logs, issues) and flow-publish (releases and their assets).
//!
//! It is built on octocrab, which gives the connection (hyper + rustls), the base URL (GitHub
//! Enterprise Server's `/api/v3` path kept), token auth, the `X-GitHub-Api-Version` header
//! and timeouts. [`Client`] adds what octocrab's raw calls leave to the caller:
//!
//! - paging through `Link: rel="next"` ([`Client::pages`]);
//! - conditional requests: the ETag of each GET is kept and sent as `If-None-Match`; a 304
//!   answers with the cached page and is counted ([`ApiCounts::not_modified`]);
//! - primary rate limits (`x-ratelimit-remaining: 0` → wait until `x-ratelimit-reset`, capped
//!   by [`Config::max_wait`]) and secondary ones (403/429 with `retry-after`, else a minute),
//!   waited through the injected [`flow_orchestrator_core::Timing`] (clock and sleeper;
//!   [`Client::with_timing`]);
//! - 5xx and lost connections of idempotent methods retried with exponential back-off and full
//!   jitter ([`flow_orchestrator_core::Backoff`], the timing's [`flow_orchestrator_core::Jitter`]);
//! - errors of one shape ([`Error`]: a [`ErrorKind`], the request's method and path, the cause
//!   as `source`) with the token redacted from any text GitHub echoes;
//! - downloads of signed links without credentials ([`Client::download_tail`]) and uploads
//!   to the host GitHub names ([`Request::upload`]);
//! - [`Repo`]: `owner/repo` parsed in one place.
//!
//! # Example
//!
//! ```
//! use flow_github::{Client, Config, ErrorKind, Repo};
//! use secrecy::SecretString;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), flow_github::Error> {
//! let repo = Repo::parse("octo-org/octo-repo")?;
//! let client = Client::new(
//!     Config::new()
//!         .with_base_url("https://ghe.example.com/api/v3")
//!         .with_token(SecretString::from("ghp_not_a_real_token")),
//! )?;
//! assert_eq!(repo.path(), "/repos/octo-org/octo-repo");
//! assert!(!format!("{client:?}").contains("ghp_not_a_real_token"));
//!
//! let bad = Repo::parse("octo-org").unwrap_err();
//! assert!(matches!(bad.kind(), ErrorKind::InvalidArgument { .. }));
//! # Ok(())
//! # }
//! ```

// The README's example, compiled and run with the doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod client;
mod config;
mod error;
mod response;

pub use client::{ApiCounts, Client, JSON, Pages, RateLimit, Request};
pub use config::{API_VERSION, Config, DEFAULT_API_URL, Repo};
pub use error::{Context, Error, ErrorKind, Result};
pub use response::Response;
pub use secrecy::SecretString;
