//! The HTTP side of `flow serve`: `POST /webhook`, `/healthz`, `/readyz`, `/metrics`.
//!
//! The webhook answers within milliseconds: it verifies the signature, parses the delivery,
//! reserves a place in the bounded work queue (deliveries accepted and not yet picked up by a
//! worker), has the coordinator accept the delivery (first-seen check and durable inbox),
//! queues its repository unless it is queued or being worked on already, and answers 202.
//! The work itself happens in the workers ([`super::worker`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use flow_telemetry::serve::{
    Accepted, Coordinator, Delivery, SignatureProblem, WebhookEvent, WebhookSecret, parse_delivery,
};
use flow_telemetry::{Clock, ErrorKind};

use super::metrics::Metrics;
use super::queue::WorkQueue;

/// How long a delivery id is remembered: GitHub's redeliveries (manual or through the API)
/// come within days.
pub(crate) const DEDUP_TTL_MS: u64 = 7 * 24 * 3_600_000;

/// What the handlers share.
pub(crate) struct App {
    pub(crate) secret: WebhookSecret,
    pub(crate) coordinator: Arc<dyn Coordinator>,
    pub(crate) queue: Arc<WorkQueue>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) clock: Arc<dyn Clock>,
    /// Set when shutting down: no new work is accepted.
    pub(crate) stopping: Arc<AtomicBool>,
    /// The state directory (`--state DIR`), checked writable by `/readyz`; a Redis state is
    /// the coordinator's server, checked by its ping.
    pub(crate) state_dir: Option<PathBuf>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("coordinator", &self.coordinator.describe())
            .finish_non_exhaustive()
    }
}

/// The routes.
pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/webhook", post(webhook))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(app)
}

fn text(status: StatusCode, body: &'static str) -> Response {
    (status, body).into_response()
}

async fn webhook(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let event = headers
        .get("x-github-event")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    // The signature first: nothing of an unsigned body is read.
    if let Err(e) = app.secret.verify(
        &body,
        headers.get("x-hub-signature-256").map(|v| v.as_bytes()),
    ) {
        let result = match e.kind() {
            ErrorKind::Signature(SignatureProblem::Missing) => "unsigned",
            _ => "bad_signature",
        };
        app.metrics.delivery(&event, result);
        tracing::warn!(target: "flow.serve", event = %event, error = %e, "webhook delivery refused");
        return text(StatusCode::UNAUTHORIZED, "signature refused\n");
    }
    if app.stopping.load(Ordering::SeqCst) {
        app.metrics.delivery(&event, "unavailable");
        return text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
    }
    let Some(id) = headers
        .get("x-github-delivery")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map(str::to_owned)
    else {
        app.metrics.delivery(&event, "invalid");
        return text(
            StatusCode::BAD_REQUEST,
            "expected an X-GitHub-Delivery header\n",
        );
    };
    let parsed = match parse_delivery(&event, &body) {
        Ok(p) => p,
        Err(e) => {
            app.metrics.delivery(&event, "invalid");
            tracing::warn!(target: "flow.serve", delivery = %id, error = %e, "unreadable delivery");
            return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response();
        }
    };
    let repository = match parsed {
        WebhookEvent::Ping => {
            app.metrics.delivery(&event, "ping");
            return text(StatusCode::OK, "pong\n");
        }
        WebhookEvent::Workflow { repository, .. } => repository,
        _ => {
            app.metrics.delivery(&event, "ignored");
            return StatusCode::NO_CONTENT.into_response();
        }
    };
    // A place in the queue before accepting: a delivery accepted is always worked on.
    let permit = match app.queue.reserve() {
        Some(p) => p,
        None => {
            app.metrics.delivery(&event, "queue_full");
            tracing::warn!(target: "flow.serve", delivery = %id, "work queue full: answered 503");
            return text(StatusCode::SERVICE_UNAVAILABLE, "queue full\n");
        }
    };
    let delivery = Delivery {
        id,
        event: event.clone(),
        repository: repository.clone(),
        received_at_ms: app.clock.now_ms(),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    match app.coordinator.accept(&delivery, DEDUP_TTL_MS).await {
        Ok(Accepted::New) => {
            permit.commit(&repository);
            app.metrics.delivery(&event, "accepted");
            text(StatusCode::ACCEPTED, "accepted\n")
        }
        Ok(_) => {
            app.metrics.delivery(&event, "duplicate");
            text(StatusCode::OK, "duplicate delivery: already accepted\n")
        }
        Err(e) => {
            app.metrics.delivery(&event, "unavailable");
            tracing::error!(target: "flow.serve", error = %e, "the coordinator refused a delivery: answered 503");
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                "coordination unavailable\n",
            )
        }
    }
}

async fn healthz() -> Response {
    text(StatusCode::OK, "ok\n")
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    if app.stopping.load(Ordering::SeqCst) {
        return text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
    }
    if let Err(e) = app.coordinator.ping().await {
        tracing::warn!(target: "flow.serve", error = %e, "not ready");
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "coordination unavailable\n",
        );
    }
    if let Some(dir) = &app.state_dir {
        let probe = dir.clone();
        let writable = tokio::task::spawn_blocking(move || writable(&probe))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        if let Err(e) = writable {
            tracing::warn!(target: "flow.serve", state = %dir.display(), error = %e, "not ready: the state directory is not writable");
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                "state directory not writable\n",
            );
        }
    }
    text(StatusCode::OK, "ready\n")
}

/// Whether a state can be saved in `dir`: created if missing (as a save does), a file
/// written and removed.
fn writable(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let probe = dir.join(format!(".flow-ready-{}", std::process::id()));
    std::fs::write(&probe, b"ready\n")?;
    std::fs::remove_file(&probe)
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let (waiting, queued) = app.queue.depth();
    app.metrics.set_queue_depth(waiting, queued);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.encode(),
    )
        .into_response()
}
