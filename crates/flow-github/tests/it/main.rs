//! flow-github against local wiremock servers speaking GitHub's wire format: paging,
//! conditional requests, rate limits, retries, redaction, downloads and uploads.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod client;
mod limits;
mod transfer;

use flow_github::{Client, Config, SecretString};
use flow_orchestrator_core::{ManualClock, RecordingSleeper, Timing};
use wiremock::MockServer;

/// The token every rig uses; no test output may contain it.
pub(crate) const TOKEN: &str = "ghs_flowgithubtesttoken0123456789";

/// A client of `server` (under `prefix`), with a manual clock at 1,700,000,000 s, a recording
/// sleeper that advances it, and back-off at its ceiling.
pub(crate) struct Rig {
    pub(crate) server: MockServer,
    pub(crate) client: Client,
    pub(crate) clock: ManualClock,
    pub(crate) sleeper: RecordingSleeper,
}

pub(crate) async fn rig_with(prefix: &str, config: impl FnOnce(Config) -> Config) -> Rig {
    let server = MockServer::start().await;
    let clock = ManualClock::new(1_700_000_000_000);
    let sleeper = RecordingSleeper::with_clock(clock.clone());
    let cfg = config(
        Config::new()
            .with_base_url(format!("{}{prefix}", server.uri()))
            .with_token(SecretString::from(TOKEN)),
    );
    let client = Client::new(cfg)
        .unwrap()
        .with_timing(Timing::manual(clock.clone(), sleeper.clone()));
    Rig {
        server,
        client,
        clock,
        sleeper,
    }
}

pub(crate) async fn rig() -> Rig {
    rig_with("", |c| c).await
}

pub(crate) async fn requests(server: &MockServer) -> Vec<wiremock::Request> {
    server.received_requests().await.unwrap()
}
