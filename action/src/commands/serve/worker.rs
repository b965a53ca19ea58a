//! The workers of `flow serve`: per repository, take the lease, process the accepted
//! deliveries through the repository's orchestrator (the same wiring as `flow monitor`),
//! acknowledge them once the state is saved, release. Plus the background ticks: the
//! reconciliation poll of the watched repositories and the sweep of inboxes left behind.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use flow_orchestrator::{Orchestrator, Settings};
use flow_telemetry::github::{GitHubClient, GitHubConfig};
use flow_telemetry::model::RunStatus;
use flow_telemetry::serve::{
    Coordinator, EntryId, InboxEntry, JobContext, Lease, WebhookEvent, parse_delivery,
};
use flow_telemetry::source::event::Event;
use flow_telemetry::state::{FileStateStore, StateStore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::http::DEDUP_TTL_MS;
use super::metrics::Metrics;
use super::queue::{Claim, WorkQueue};
use crate::commands::{llm, monitor};

/// The first-seen key of a run attempt's status, whichever path (delivery or poll) sees it
/// first: each is counted once (repository names are case-insensitive on GitHub).
fn run_key(repo: &str, run: &flow_telemetry::Run) -> String {
    format!(
        "run:{}:{}:{}:{}",
        repo.to_ascii_lowercase(),
        run.id.0,
        run.run_attempt,
        run.status.as_str()
    )
}

/// Whether `e` says the lease was lost (a stale holder's save refused by the fence).
fn lease_lost(e: &flow_orchestrator::Error) -> bool {
    matches!(
        e.kind(),
        flow_orchestrator::ErrorKind::Telemetry(t)
            if matches!(t.kind(), flow_telemetry::ErrorKind::LeaseLost { .. })
    )
}

/// Deliveries read from an inbox at once.
const BATCH: usize = 32;

/// How often inboxes without a worker are looked for (a token lost to a lease held elsewhere,
/// a replica that died).
const SWEEP: Duration = Duration::from_secs(5);

/// How often an organisation's repositories are listed again.
const ORG_REFRESH: Duration = Duration::from_secs(3600);

/// One orchestrator per repository, built on first use from the settings as `flow monitor`
/// builds its own: run source, issues, triage, rules, options, state.
pub(crate) struct Repos {
    settings: Settings,
    open_issues: bool,
    built: tokio::sync::Mutex<HashMap<String, Arc<Orchestrator>>>,
}

impl std::fmt::Debug for Repos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repos").finish_non_exhaustive()
    }
}

/// `owner/name` made of GitHub's name characters only (it becomes a path and a key).
fn split_repo(repo: &str) -> Option<(&str, &str)> {
    let (owner, name) = repo.split_once('/')?;
    let ok = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    (ok(owner) && ok(name)).then_some((owner, name))
}

impl Repos {
    pub(crate) fn new(settings: Settings, open_issues: bool) -> Self {
        Self {
            settings,
            open_issues,
            built: tokio::sync::Mutex::default(),
        }
    }

    /// The orchestrator of `repo`.
    pub(crate) async fn orchestrator(&self, repo: &str) -> anyhow::Result<Arc<Orchestrator>> {
        let mut built = self.built.lock().await;
        if let Some(o) = built.get(repo) {
            return Ok(o.clone());
        }
        let (owner, name) = split_repo(repo)
            .with_context(|| format!("repository {repo:?}: expected owner/name"))?;
        let mut settings = self.settings.clone();
        settings.config.telemetry.repository = Some(repo.to_owned());
        let builder =
            monitor::configure(llm::builder(&settings)?, &settings, self.open_issues, false);
        let builder = match &settings.config.telemetry.state {
            // The Redis coordinator's store, fenced by each lease (`Pool::leased`).
            Some(spec) if spec.starts_with("redis://") || spec.starts_with("rediss://") => builder,
            // A directory: one state file per repository.
            Some(dir) => {
                let path = Path::new(dir).join(owner).join(format!("{name}.json"));
                builder.with_state_store(Arc::new(FileStateStore::new(path)) as Arc<dyn StateStore>)
            }
            None => builder,
        };
        let o = Arc::new(builder.build()?);
        built.insert(repo.to_owned(), o.clone());
        Ok(o)
    }
}

/// The repositories the reconciliation polls: the configured ones and an organisation's.
pub(crate) struct Watched {
    fixed: Vec<String>,
    org: Option<(String, GitHubClient)>,
    org_repos: Vec<String>,
    listed_at: Option<Instant>,
}

impl std::fmt::Debug for Watched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watched")
            .field("fixed", &self.fixed)
            .finish_non_exhaustive()
    }
}

impl Watched {
    /// Must be called inside the runtime (it builds the GitHub client).
    pub(crate) fn new(repos: &Repos) -> anyhow::Result<Self> {
        let config = &repos.settings.config;
        let mut fixed: Vec<String> = config.telemetry.repository.iter().cloned().collect();
        for r in &config.serve.repositories {
            if !fixed.contains(r) {
                fixed.push(r.clone());
            }
        }
        let org = match &config.serve.org {
            Some(org) => {
                let mut gh = GitHubConfig::new(org.clone(), "-");
                if let Some(api) = &config.github.api_url {
                    gh = gh.with_base_url(api.trim_end_matches('/'));
                }
                if let Some(token) = &repos.settings.credentials.github_token {
                    gh = gh.with_token(token.clone());
                }
                Some((org.clone(), GitHubClient::new(gh)?))
            }
            None => None,
        };
        Ok(Self {
            fixed,
            org,
            org_repos: Vec::new(),
            listed_at: None,
        })
    }

    /// The repositories to poll now, listing the organisation's again when due (a failed
    /// listing keeps the last one).
    async fn current(&mut self) -> Vec<String> {
        if let Some((org, client)) = &self.org
            && self.listed_at.is_none_or(|t| t.elapsed() >= ORG_REFRESH)
        {
            match client.org_repositories(org, 50).await {
                Ok(list) => {
                    tracing::info!(target: "flow.serve", org = %org, repositories = list.len(), "organisation listed");
                    self.org_repos = list;
                    self.listed_at = Some(Instant::now());
                }
                Err(e) => {
                    tracing::error!(target: "flow.serve", org = %org, error = %e, "listing the organisation's repositories failed");
                }
            }
        }
        let mut all = self.fixed.clone();
        all.extend(
            self.org_repos
                .iter()
                .filter(|r| !self.fixed.contains(r))
                .cloned(),
        );
        all
    }
}

/// What the workers share.
#[derive(Clone)]
pub(crate) struct Pool {
    pub(crate) coordinator: Arc<dyn Coordinator>,
    pub(crate) repos: Arc<Repos>,
    pub(crate) metrics: Arc<Metrics>,
    /// The work queue: repositories, each at most once.
    pub(crate) queue: Arc<WorkQueue>,
    /// A repository's lease lasts this long unless renewed (renewed every third of it while
    /// working): a replica that dies holds its repositories at most this long
    /// (`serve.lease_secs`).
    pub(crate) lease_ms: u64,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").finish_non_exhaustive()
    }
}

/// How a worker left a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Left {
    /// Its inbox was empty.
    Drained,
    /// Another holder has its lease (it drains the inbox).
    Elsewhere,
}

impl Pool {
    /// Starts `n` workers on the queue; they end when it is closed and empty.
    pub(crate) fn start(&self, n: usize) -> Vec<JoinHandle<()>> {
        let me = format!("{}-{:08x}", std::process::id(), rand::random::<u32>());
        (0..n)
            .map(|i| {
                let pool = self.clone();
                let holder = format!("{me}-w{i}");
                tokio::spawn(async move {
                    while let Some(claim) = pool.queue.next().await {
                        pool.work_on(&claim, &holder).await;
                    }
                })
            })
            .collect()
    }

    /// Works on a repository taken from the queue, then gives it back: queued again when
    /// deliveries arrived meanwhile.
    async fn work_on(&self, claim: &Claim, holder: &str) {
        let repo = &claim.repository;
        match self.drain(repo, holder, claim.reconcile).await {
            Ok(Left::Drained) => self.queue.finish(repo),
            Ok(Left::Elsewhere) => self.queue.abandon(repo),
            Err(e) => {
                // What is left in the inbox waits for the next sweep.
                self.queue.abandon(repo);
                tracing::error!(target: "flow.serve", repository = %repo, error = format!("{e:#}"), "working on the repository failed");
            }
        }
    }

    /// The reconciliation ticks and the sweep, until `stop`.
    pub(crate) fn background(
        &self,
        mut watched: Watched,
        reconcile_secs: u64,
        stop: CancellationToken,
    ) -> JoinHandle<()> {
        let pool = self.clone();
        tokio::spawn(async move {
            let mut sweep = tokio::time::interval(SWEEP);
            sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut reconcile = (reconcile_secs > 0)
                .then(|| tokio::time::interval(Duration::from_secs(reconcile_secs)));
            loop {
                let due = async {
                    match &mut reconcile {
                        Some(i) => {
                            i.tick().await;
                        }
                        None => std::future::pending::<()>().await,
                    }
                };
                tokio::select! {
                    () = stop.cancelled() => break,
                    _ = sweep.tick() => pool.sweep().await,
                    () = due => {
                        for repo in watched.current().await {
                            pool.queue.arm(&repo, true);
                        }
                    }
                }
            }
        })
    }

    /// Queues the repositories whose inbox has deliveries (a repository queued or worked on
    /// already is not queued twice).
    async fn sweep(&self) {
        let backlog = match self.coordinator.backlog().await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(target: "flow.serve", error = %e, "backlog unavailable");
                return;
            }
        };
        for repo in backlog {
            self.queue.arm(&repo, false);
        }
    }

    /// Drains every inbox with deliveries, here and now (at shutdown, the workers gone).
    pub(crate) async fn sweep_now(&self) {
        let Ok(backlog) = self.coordinator.backlog().await else {
            return;
        };
        let holder = format!("{}-final", std::process::id());
        for repo in backlog {
            if let Err(e) = self.drain(&repo, &holder, false).await {
                tracing::error!(target: "flow.serve", repository = %repo, error = format!("{e:#}"), "working on the repository failed");
            }
        }
    }

    /// Takes `repo`'s lease and processes its inbox (and, with `reconcile`, polls it) until
    /// the inbox is empty; checks again after releasing, so a delivery accepted elsewhere
    /// while this worker held the lease is not left behind.
    async fn drain(&self, repo: &str, holder: &str, mut reconcile: bool) -> anyhow::Result<Left> {
        let base = self.repos.orchestrator(repo).await?;
        let mut left = Left::Elsewhere;
        loop {
            let Some(mut lease) = self.coordinator.lease(repo, holder, self.lease_ms).await? else {
                return Ok(left);
            };
            let result = match self.leased(&base, &lease) {
                Ok(orchestrator) => {
                    self.drain_leased(&orchestrator, &mut lease, &mut reconcile)
                        .await
                }
                Err(e) => Err(e),
            };
            if let Err(e) = self.coordinator.release(&lease).await {
                tracing::warn!(target: "flow.serve", repository = %repo, error = %e, "releasing the lease failed; it expires");
            }
            left = Left::Drained;
            if !result? {
                return Ok(left);
            }
        }
    }

    /// The repository's orchestrator for the time of `lease`: saving through the
    /// coordinator's state store fenced by the lease when it keeps the states (Redis: once
    /// the lease has passed to another holder, the save fails with `LeaseLost` and writes
    /// nothing), else through its own store.
    fn leased(&self, base: &Arc<Orchestrator>, lease: &Lease) -> anyhow::Result<Arc<Orchestrator>> {
        Ok(match self.coordinator.state_store(lease)? {
            Some(store) => Arc::new(base.as_ref().clone().with_state_store(store)),
            None => base.clone(),
        })
    }

    /// Returns whether there was anything to do.
    async fn drain_leased(
        &self,
        orchestrator: &Orchestrator,
        lease: &mut Lease,
        reconcile: &mut bool,
    ) -> anyhow::Result<bool> {
        let mut worked = false;
        loop {
            // Before the read: every delivery counted so far is in the inbox it reads.
            self.queue.pick_up(&lease.repository);
            let batch = self.coordinator.inbox(lease, BATCH).await?;
            if batch.is_empty() && !*reconcile {
                return Ok(worked);
            }
            worked = true;
            let repo = lease.repository.clone();
            let poll = std::mem::take(reconcile);
            let ids = self
                .renewing(lease, self.process(&repo, orchestrator, &batch, poll))
                .await??;
            if !ids.is_empty() {
                self.coordinator.ack(lease, &ids).await?;
            }
        }
    }

    /// Runs `work` while renewing `lease` every third of its life; a lost lease abandons the
    /// work (the next holder redoes it from the saved state).
    async fn renewing<T>(
        &self,
        lease: &mut Lease,
        work: impl Future<Output = T>,
    ) -> anyhow::Result<T> {
        tokio::pin!(work);
        let every = Duration::from_millis((self.lease_ms / 3).max(1));
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            tokio::select! {
                out = &mut work => return Ok(out),
                _ = tick.tick() => {
                    *lease = self.coordinator.renew(lease, self.lease_ms).await?;
                }
            }
        }
    }

    /// Processes a batch (every delivery is attempted: a failure is logged, and the
    /// reconciliation catches the runs up) and returns the ids to acknowledge.
    ///
    /// # Errors
    /// The lease was lost (a save refused by the fence): nothing more is done or acknowledged
    /// here; the lease's new holder reads the same deliveries from its saved state.
    async fn process(
        &self,
        repo: &str,
        orchestrator: &Orchestrator,
        batch: &[InboxEntry],
        reconcile: bool,
    ) -> anyhow::Result<Vec<EntryId>> {
        for entry in batch {
            self.deliver(repo, orchestrator, entry).await?;
        }
        if reconcile {
            self.monitor(repo, orchestrator, None).await?;
        }
        Ok(batch.iter().map(|e| e.id.clone()).collect())
    }

    async fn deliver(
        &self,
        repo: &str,
        orchestrator: &Orchestrator,
        entry: &InboxEntry,
    ) -> anyhow::Result<()> {
        let d = &entry.delivery;
        match parse_delivery(&d.event, d.body.as_bytes()) {
            Ok(WebhookEvent::Workflow {
                event, job_context, ..
            }) => {
                self.count(repo, &event, job_context.as_ref()).await;
                // A completed run is what the detectors observe; a job's completion only
                // feeds the metrics (its run's own delivery follows).
                if let Event::WorkflowRun { action, .. } = &event
                    && action == "completed"
                {
                    self.monitor(repo, orchestrator, Some(&event)).await?;
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(target: "flow.serve", delivery = %d.id, error = %e, "an accepted delivery does not parse; dropped");
            }
        }
        Ok(())
    }

    async fn first(&self, key: &str) -> bool {
        self.coordinator
            .first_seen(key, DEDUP_TTL_MS)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(target: "flow.serve", error = %e, "first-seen check failed: counted");
                true
            })
    }

    async fn count(&self, repo: &str, event: &Event, context: Option<&JobContext>) {
        match event {
            Event::WorkflowRun { run, .. } if self.first(&run_key(repo, run)).await => {
                self.metrics.run(repo, run, true);
            }
            Event::WorkflowJob { job, .. } => {
                let key = format!("job:{repo}:{}:{}", job.id, job.status.as_str());
                if self.first(&key).await {
                    let started =
                        matches!(job.status, RunStatus::InProgress | RunStatus::Completed);
                    let queued_once =
                        started && self.first(&format!("job-queue:{repo}:{}", job.id)).await;
                    let context = context.cloned().unwrap_or_default();
                    self.metrics.job(repo, &context, job, queued_once, true);
                }
            }
            _ => {}
        }
    }

    /// Counts the runs an invocation observed newly completed that no delivery counted (their
    /// delivery was lost, or not yet received: a later one is not counted again), through the
    /// same first-seen key as a delivery. Not the history a repository's first invocation
    /// reads (a fresh state, up to `telemetry.max_pages` pages of old runs): the counters and
    /// histograms start with the service.
    async fn count_completed(&self, repo: &str, report: &flow_orchestrator::MonitorReport) {
        if report.state.fresh {
            return;
        }
        for run in &report.completed {
            if self.first(&run_key(repo, run)).await {
                self.metrics.run(repo, run, true);
            }
        }
    }

    /// One monitoring invocation; its failure is logged and counted (the reconciliation
    /// catches up), except a lost lease, returned: the repository is no longer this
    /// worker's.
    async fn monitor(
        &self,
        repo: &str,
        orchestrator: &Orchestrator,
        event: Option<&Event>,
    ) -> anyhow::Result<()> {
        match orchestrator.monitor_event(event).await {
            Ok(report) => {
                self.count_completed(repo, &report).await;
                self.metrics.report(repo, &report);
                self.metrics.processed(true);
                tracing::info!(
                    target: "flow.serve",
                    repository = %repo,
                    runs = report.runs,
                    from_event = report.from_event,
                    alerts = report.alerts.len(),
                    writes = report.writes,
                    deferred = report.deferred,
                    "monitored"
                );
            }
            Err(e) if lease_lost(&e) => {
                self.metrics.processed(false);
                return Err(anyhow::Error::new(e).context(format!(
                    "the lease of {repo} passed to another holder: its state save was refused"
                )));
            }
            Err(e) => {
                self.metrics.processed(false);
                tracing::error!(target: "flow.serve", repository = %repo, error = %e, "monitoring failed; the reconciliation catches up");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use flow_telemetry::serve::{Accepted, Delivery, MemoryCoordinator};
    use flow_telemetry::state::{MemoryStateStore, MonitorState};
    use flow_telemetry::{ManualClock, Result as TResult};
    use serde_json::{Value, json};
    use wiremock::matchers::path_regex;
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;

    /// The store a lease's holder saves through: refuses every save once `lost` is set, as
    /// the Redis fence does for a stale holder.
    #[derive(Debug, Default)]
    struct Fence {
        inner: MemoryStateStore,
        lost: AtomicBool,
        saves: AtomicUsize,
        refused: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl StateStore for Fence {
        async fn load(&self) -> TResult<Option<MonitorState>> {
            self.inner.load().await
        }
        async fn save(&self, state: &MonitorState) -> TResult<u64> {
            if self.lost.load(Ordering::SeqCst) {
                self.refused.fetch_add(1, Ordering::SeqCst);
                return Err(flow_telemetry::Error::new(
                    flow_telemetry::ErrorKind::LeaseLost {
                        repository: "octo-org/octo-repo".into(),
                    },
                ));
            }
            self.saves.fetch_add(1, Ordering::SeqCst);
            self.inner.save(state).await
        }
        async fn reset(&self) -> TResult<()> {
            self.inner.reset().await
        }
        fn describe(&self) -> String {
            "fence".into()
        }
    }

    /// A coordinator keeping the states itself (as Redis does), with `Fence` as the store.
    #[derive(Debug)]
    struct Keeping {
        inner: MemoryCoordinator,
        store: Arc<Fence>,
        handed: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl Coordinator for Keeping {
        async fn accept(&self, d: &Delivery, ttl: u64) -> TResult<Accepted> {
            self.inner.accept(d, ttl).await
        }
        async fn first_seen(&self, key: &str, ttl: u64) -> TResult<bool> {
            self.inner.first_seen(key, ttl).await
        }
        async fn lease(&self, r: &str, h: &str, ttl: u64) -> TResult<Option<Lease>> {
            self.inner.lease(r, h, ttl).await
        }
        async fn renew(&self, l: &Lease, ttl: u64) -> TResult<Lease> {
            self.inner.renew(l, ttl).await
        }
        async fn release(&self, l: &Lease) -> TResult<()> {
            self.inner.release(l).await
        }
        async fn inbox(&self, l: &Lease, max: usize) -> TResult<Vec<InboxEntry>> {
            self.inner.inbox(l, max).await
        }
        async fn ack(&self, l: &Lease, ids: &[EntryId]) -> TResult<()> {
            self.inner.ack(l, ids).await
        }
        async fn backlog(&self) -> TResult<Vec<String>> {
            self.inner.backlog().await
        }
        async fn ping(&self) -> TResult<()> {
            self.inner.ping().await
        }
        fn describe(&self) -> String {
            "keeping".into()
        }
        fn state_store(&self, _: &Lease) -> TResult<Option<Arc<dyn StateStore>>> {
            self.handed.fetch_add(1, Ordering::SeqCst);
            Ok(Some(self.store.clone()))
        }
    }

    fn serve_settings(vars: &[(&str, &str)]) -> Settings {
        crate::settings::resolve_in_terminal(&["flow", "serve"], vars)
    }

    /// GitHub's `workflow_run` `completed` payload (MIT) for run `id`.
    fn payload(id: u64) -> Value {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../crates/flow-telemetry/tests/fixtures/workflow_run.completed.1.json");
        let mut body: Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        body["workflow_run"]["id"] = json!(id);
        body["workflow_run"]["run_number"] = json!(id);
        body
    }

    /// The delivery of run `id`.
    fn delivery(id: u64) -> Delivery {
        let body = payload(id);
        Delivery {
            id: format!("d-{id}"),
            event: "workflow_run".into(),
            repository: "octo-org/octo-repo".into(),
            received_at_ms: 0,
            body: body.to_string(),
        }
    }

    #[tokio::test]
    async fn workers_save_through_the_leases_store_and_a_refused_save_stops_them() {
        let gh = MockServer::start().await;
        for (re, body) in [
            (
                "/actions/(workflows/[^/]+/)?runs$",
                // The history: run 1.
                json!({"total_count": 1, "workflow_runs": [payload(1)["workflow_run"]]}),
            ),
            (
                "/actions/runs/[0-9]+/jobs",
                json!({"total_count": 0, "jobs": []}),
            ),
            (
                "/actions/workflows$",
                json!({"total_count": 0, "workflows": []}),
            ),
        ] {
            Mock::given(path_regex(format!("^/repos/octo-org/octo-repo{re}")))
                .respond_with(ResponseTemplate::new(200).set_body_json(body))
                .mount(&gh)
                .await;
        }
        let settings = serve_settings(&[
            ("GITHUB_TOKEN", "ghs_test"),
            ("GITHUB_API_URL", &gh.uri()),
            ("FLOW_WEBHOOK_SECRET", "s"),
        ]);
        let store = Arc::new(Fence::default());
        let coordinator = Arc::new(Keeping {
            inner: MemoryCoordinator::new(Arc::new(ManualClock::new(1_700_000_000_000))),
            store: store.clone(),
            handed: AtomicUsize::new(0),
        });
        let metrics = Arc::new(Metrics::new());
        let pool = Pool {
            coordinator: coordinator.clone(),
            repos: Arc::new(Repos::new(settings, false)),
            metrics: metrics.clone(),
            queue: Arc::new(WorkQueue::new(8)),
            lease_ms: 60_000,
        };
        let repo = "octo-org/octo-repo";

        // The holder saves through the store the coordinator hands out with the lease.
        coordinator.accept(&delivery(1), 60_000).await.unwrap();
        assert_eq!(pool.drain(repo, "w0", false).await.unwrap(), Left::Drained);
        assert!(coordinator.handed.load(Ordering::SeqCst) >= 1);
        let saved = store.saves.load(Ordering::SeqCst);
        assert!(saved >= 1, "no save reached the lease's store");
        assert!(coordinator.backlog().await.unwrap().is_empty());

        // The lease passed to another holder: the save is refused, the worker stops and
        // acknowledges nothing (the new holder reads the delivery again).
        store.lost.store(true, Ordering::SeqCst);
        coordinator.accept(&delivery(2), 60_000).await.unwrap();
        let e = pool.drain(repo, "w0", false).await.unwrap_err();
        assert!(
            format!("{e:#}").contains("passed to another holder"),
            "{e:#}"
        );
        assert_eq!(store.refused.load(Ordering::SeqCst), 1);
        assert_eq!(store.saves.load(Ordering::SeqCst), saved);
        assert_eq!(coordinator.backlog().await.unwrap(), [repo]);
        assert_eq!(metrics.processed_count(), 2);
        assert!(
            metrics
                .encode()
                .contains(r#"flow_serve_processed_total{result="error"} 1"#)
        );
    }

    #[test]
    fn repository_names_from_deliveries_cannot_escape_the_state_directory() {
        assert_eq!(
            split_repo("octo-org/octo.repo_1"),
            Some(("octo-org", "octo.repo_1"))
        );
        for bad in ["../etc", "o/..", "o/r/x", "o", "/r", "o/", "o/r\n", "o/r x"] {
            assert_eq!(split_repo(bad), None, "{bad:?}");
        }
    }
}
