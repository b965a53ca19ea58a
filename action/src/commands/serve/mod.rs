//! `flow serve`: the long-running service. GitHub's `workflow_run` and `workflow_job`
//! webhooks in, the same monitoring as `flow monitor` per repository (state, detectors, one
//! issue per problem, optional triage), Prometheus metrics out.
//!
//! - [`http`] has the routes; the webhook verifies, parses, reserves a place in the bounded
//!   queue, has the [`Coordinator`] accept the delivery, and answers 202.
//! - [`queue`] is the work queue: repositories, each at most once, bounded by the deliveries
//!   accepted and not yet picked up by a worker.
//! - [`worker`] has the workers: each takes a repository's lease, processes its inbox through
//!   the monitor's orchestrator for the repository, acknowledges, releases. Reconciliation
//!   polls each watched repository periodically, and a sweep picks up inboxes left behind.
//! - [`metrics`] serves `/metrics`.
//!
//! SIGTERM or SIGINT: `/readyz` and the webhook answer 503, the listener closes once the
//! requests in flight are answered, the workers drain the queue and every accepted delivery
//! (each saves its repository's state), and the process exits 0.

mod http;
mod metrics;
mod queue;
mod worker;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context as _;
use flow_telemetry::serve::{Coordinator, MemoryCoordinator, RedisCoordinator, WebhookSecret};
use flow_telemetry::{Clock, SecretString, SystemClock};
use secrecy::ExposeSecret as _;
use tokio_util::sync::CancellationToken;

use crate::cli::ServeArgs;
use crate::report::Outcome;
use crate::settings::Ctx;

pub(crate) fn serve(args: &ServeArgs, ctx: &Ctx<'_>) -> anyhow::Result<Outcome> {
    // A workflow step ends; a service does not.
    anyhow::ensure!(
        ctx.mode != crate::report::Mode::Actions,
        "flow serve is a long-running service, not a workflow step: run it on a host or in a \
         container (README: Running `flow serve`)"
    );
    let settings = ctx.settings()?;
    let secret = webhook_secret(&settings)?;
    let config = &settings.config;
    let addr: SocketAddr = config
        .serve
        .listen
        .parse()
        .with_context(|| format!("serve.listen {:?}", config.serve.listen))?;
    if args.open_issues {
        anyhow::ensure!(
            settings.credentials.github_token.is_some(),
            "--open-issues needs --github-token (or GITHUB_TOKEN)"
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let summary = rt.block_on(run(settings.clone(), secret, addr, args.open_issues))?;
    Ok(Outcome {
        text: format!(
            "flow serve: stopped; {} deliveries accepted, {} processed\n",
            summary.accepted, summary.processed
        ),
        json: serde_json::json!({
            "accepted": summary.accepted,
            "processed": summary.processed,
        }),
        ..Outcome::default()
    })
}

/// The webhook secret: `FLOW_WEBHOOK_SECRET`, else the file `serve.webhook_secret_file`.
fn webhook_secret(settings: &flow_orchestrator::Settings) -> anyhow::Result<WebhookSecret> {
    let secret = match (
        &settings.credentials.webhook_secret,
        &settings.config.serve.webhook_secret_file,
    ) {
        (Some(s), _) => s.clone(),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the webhook secret file {path}"))?;
            SecretString::from(text.trim_end_matches(['\r', '\n']).to_owned())
        }
        (None, None) => anyhow::bail!(
            "flow serve needs the webhook secret: set FLOW_WEBHOOK_SECRET or --webhook-secret-file \
             (the secret configured on the GitHub webhook)"
        ),
    };
    anyhow::ensure!(
        !secret.expose_secret().trim().is_empty(),
        "the webhook secret is empty: expected the secret configured on the GitHub webhook"
    );
    Ok(WebhookSecret::new(secret)?)
}

/// What the service did before it stopped.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Summary {
    accepted: u64,
    processed: u64,
}

async fn run(
    settings: flow_orchestrator::Settings,
    secret: WebhookSecret,
    addr: SocketAddr,
    open_issues: bool,
) -> anyhow::Result<Summary> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let serve = settings.config.serve.clone();
    let coordinator = coordinator(&settings, clock.clone()).await?;
    let capacity = usize::try_from(serve.queue_capacity).unwrap_or(usize::MAX >> 4);
    let queue = Arc::new(queue::WorkQueue::new(capacity));
    let metrics = Arc::new(metrics::Metrics::new());
    let stopping = Arc::new(AtomicBool::new(false));
    let stop = CancellationToken::new();
    let settings_state = settings.config.telemetry.state.clone();
    let repos = Arc::new(worker::Repos::new(settings, open_issues));
    let watched = worker::Watched::new(&repos)?;
    let pool = worker::Pool {
        coordinator: coordinator.clone(),
        repos: repos.clone(),
        metrics: metrics.clone(),
        queue: queue.clone(),
        lease_ms: serve.lease_secs.saturating_mul(1000),
    };
    let workers = pool.start(usize::try_from(serve.workers).unwrap_or(1).clamp(1, 256));
    let background = pool.background(watched, serve.reconcile_secs, stop.clone());
    let app = Arc::new(http::App {
        secret,
        coordinator: coordinator.clone(),
        queue: queue.clone(),
        metrics: metrics.clone(),
        clock,
        stopping: stopping.clone(),
        state_dir: state_dir(settings_state.as_deref()),
    });
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr} (serve.listen)"))?;
    let bound = listener.local_addr()?;
    tracing::info!(target: "flow.serve", address = %bound, coordinator = %coordinator.describe(), "listening");
    announce(bound);
    let shutdown = {
        let stop = stop.clone();
        let stopping = stopping.clone();
        async move {
            signal().await;
            tracing::info!(target: "flow.serve", "stopping: no new deliveries; draining the queue");
            stopping.store(true, std::sync::atomic::Ordering::SeqCst);
            stop.cancel();
        }
    };
    axum::serve(listener, http::router(app))
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving HTTP")?;
    // The router is gone; the background tasks stop on `stop`: once they have, the queue
    // closes and the workers finish what it holds.
    let _ = background.await;
    queue.close();
    for w in workers {
        let _ = w.await;
    }
    // Deliveries accepted but not yet drained (a token lost to a lease held at the time).
    pool.sweep_now().await;
    tracing::info!(target: "flow.serve", "stopped");
    Ok(Summary {
        accepted: metrics.accepted(),
        processed: metrics.processed_count(),
    })
}

/// The state directory of `--state DIR` (none for Redis or memory).
fn state_dir(state: Option<&str>) -> Option<std::path::PathBuf> {
    state
        .filter(|s| !s.starts_with("redis://") && !s.starts_with("rediss://"))
        .map(std::path::PathBuf::from)
}

/// Says where the service listens, on stderr whatever the log filter (supervisors and tests
/// read it; `--listen 127.0.0.1:0` picks a free port).
#[allow(clippy::print_stderr)]
fn announce(bound: SocketAddr) {
    eprintln!("flow serve: listening on http://{bound}");
}

/// What the processes of this deployment share: with the state in Redis (`--state
/// redis://…`), the replicas share that server's coordination too (`RedisCoordinator`: delivery
/// de-dup, durable inboxes, leases, under the `flow` key prefix) — replicas sharing a state
/// must share their work; otherwise one process, in memory.
async fn coordinator(
    settings: &flow_orchestrator::Settings,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Arc<dyn Coordinator>> {
    match settings.config.telemetry.state.as_deref() {
        Some(url) if url.starts_with("redis://") || url.starts_with("rediss://") => Ok(Arc::new(
            RedisCoordinator::connect(url, COORDINATION_PREFIX)
                .await
                .context("connecting the coordination of replicas (telemetry.state)")?
                .with_clock(clock),
        )),
        _ => Ok(Arc::new(MemoryCoordinator::new(clock))),
    }
}

/// The Redis key prefix of the replicas' coordination.
const COORDINATION_PREFIX: &str = "flow:serve";

/// Resolves on SIGTERM or SIGINT.
async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = ctrl_c => {}
            () = term => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await;
}
