//! One monitoring invocation with state: load → (event or incremental poll) → observe →
//! ledger → save → GitHub writes → save. The pipeline `flow monitor` and the facade run, and
//! what a long-running service repeats.
//!
//! - **State**: loaded from a [`StateStore`] and saved with a revision check; when another
//!   monitor saved meanwhile ([`ErrorKind::StateConflict`]) the invocation reloads and redoes
//!   its work from the newer state before any GitHub write, so none is lost or repeated.
//! - **Runs**: from the `workflow_run` / `workflow_job` event that triggered the job when it
//!   directly follows the last run observed (no request), else from the [`Poller`] (a quiet
//!   poll with a saved ETag is one conditional request answered 304).
//! - **Writes**: queued in the [`Ledger`](crate::lifecycle::Ledger) and saved before they are made, at most
//!   [`LifecycleOptions::max_writes`] per invocation, the rest reported as deferred.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::alert::{Alert, Fingerprint};
use crate::error::{Error, ErrorKind, Result};
use crate::lifecycle::{IntentAction, LifecycleOptions};
use crate::model::{Job, Outcome, Run};
use crate::monitor::Monitor;
use crate::rules::Rules;
use crate::sink::{IssueAction, IssueSink};
use crate::source::event::Event;
use crate::source::sync::Poller;
use crate::source::{RunQuery, RunSource, WorkflowRef};
use crate::state::{MonitorState, StateStore};
use crate::time::Clock;

/// Reloads after a conflicting save before giving up.
const MAX_RELOADS: u32 = 5;

/// A claimed write not finished within this long is taken over (its claimant died).
pub const CLAIM_LEASE_MS: i64 = 10 * 60_000;

static SESSIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Adds notes (Markdown, e.g. an LLM triage) to a new issue.
#[async_trait::async_trait]
pub trait AlertNotes: Send + Sync {
    /// Notes for the issue of `alert`; an error is reported and the issue opened without.
    async fn notes(&self, alert: &Alert) -> std::result::Result<String, String>;
}

/// Which branch's runs are observed and may raise issues.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum BranchScope {
    /// The repository's default branch: the event's `repository.default_branch`, else the
    /// rules' `default_branch`.
    #[default]
    Default,
    /// Every branch, each with its own detectors and incidents (fingerprint per workflow and
    /// branch).
    All,
    /// This branch.
    Only(String),
}

impl BranchScope {
    /// `*` or `all` → [`BranchScope::All`], empty → default, else that branch.
    pub fn parse(s: &str) -> Self {
        match s.trim() {
            "" => Self::Default,
            "*" | "all" => Self::All,
            b => Self::Only(b.to_owned()),
        }
    }
}

/// What an invocation reads and how it speaks.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionOptions {
    /// The runs to list (workflow as typed: display name, file name or id; other filters).
    pub query: RunQuery,
    /// The branch observed.
    pub branch: BranchScope,
    /// Pages read on the first invocation (the backfill).
    pub first_pages: u32,
    /// The issue lifecycle.
    pub lifecycle: LifecycleOptions,
    /// The event that triggered this invocation, if any.
    pub event: Option<Event>,
    /// Start from nothing, discarding the saved state.
    pub reset: bool,
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            query: RunQuery::default(),
            branch: BranchScope::Default,
            first_pages: 10,
            lifecycle: LifecycleOptions::default(),
            event: None,
            reset: false,
        }
    }
}

/// One GitHub write made (or attempted) by the invocation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Write {
    /// The problem's issue key.
    pub key: Fingerprint,
    /// `open`, `comment` or `close`.
    pub kind: &'static str,
    /// For `open`: the alert.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert: Option<Alert>,
    /// The notes added, when any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// Why there are no notes although a notes hook is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes_error: Option<String>,
    /// What the sink did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<IssueAction>,
    /// Why it failed (it is retried next time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What one invocation saw and did.
#[derive(Debug, Clone)]
pub struct SessionReport {
    /// Runs observed.
    pub runs: usize,
    /// The runs observed, completed and new to the saved state (what [`SessionReport::runs`]
    /// counts): each run appears in one invocation's report only, so exporting these (e.g.
    /// as OTLP traces) exports every run once.
    pub completed: Vec<Run>,
    /// List requests made.
    pub list_requests: u32,
    /// Job requests made.
    pub job_requests: u32,
    /// The runs came from the triggering event, without listing.
    pub from_event: bool,
    /// The first invocation's backfill stopped at `first_pages` while the source had more:
    /// older runs were not read.
    pub truncated: bool,
    /// The workflow the query was resolved to, when one was named.
    pub workflow: Option<WorkflowRef>,
    /// The branch observed (`None`: every branch).
    pub branch: Option<String>,
    /// Alerts that started (one per detector).
    pub alerts: Vec<Alert>,
    /// Detector fingerprints that recovered, with the alert they had raised.
    pub recovered: Vec<(Fingerprint, Option<Alert>)>,
    /// The issue ledger after this invocation.
    pub ledger: crate::lifecycle::Ledger,
    /// The writes made or attempted, in order.
    pub writes: Vec<Write>,
    /// GitHub writes made (an open or comment is 1, a close 2).
    pub write_count: u32,
    /// Writes left for the next invocation (cap reached or failure).
    pub deferred: usize,
    /// The detectors after this invocation (for KPIs and reports).
    pub monitor: Monitor,
    /// The revision saved.
    pub revision: u64,
    /// Reloads after another monitor saved meanwhile.
    pub reloads: u32,
    /// The state was discarded first (`reset`), or nothing was saved before.
    pub fresh: bool,
}

/// One stateful monitoring invocation.
pub struct Session {
    source: Arc<dyn RunSource>,
    sink: Option<Arc<dyn IssueSink>>,
    store: Arc<dyn StateStore>,
    notes: Option<Arc<dyn AlertNotes>>,
    rules: Rules,
    options: SessionOptions,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("store", &self.store.describe())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

struct Done {
    id: u64,
    key: Fingerprint,
    issue: Option<u64>,
    /// Made (else failed: unclaimed, redone next time).
    made: bool,
    notes: Option<String>,
}

impl Session {
    /// An invocation reading `source`, remembering in `store`, with `rules`.
    pub fn new(
        source: Arc<dyn RunSource>,
        store: Arc<dyn StateStore>,
        rules: Rules,
        options: SessionOptions,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            source,
            sink: None,
            store,
            notes: None,
            rules,
            options,
            clock,
        }
    }

    /// Issues go to `sink` (without one, writes stay queued).
    #[must_use]
    pub fn with_sink(mut self, sink: Arc<dyn IssueSink>) -> Self {
        self.sink = Some(sink);
        self
    }

    /// New issues get notes from `notes`.
    #[must_use]
    pub fn with_notes(mut self, notes: Arc<dyn AlertNotes>) -> Self {
        self.notes = Some(notes);
        self
    }

    fn branch(&self) -> Option<String> {
        match &self.options.branch {
            BranchScope::All => None,
            BranchScope::Only(b) => Some(b.clone()),
            BranchScope::Default => Some(
                self.options
                    .event
                    .as_ref()
                    .and_then(event_default_branch)
                    .unwrap_or_else(|| self.rules.default_branch.clone()),
            ),
        }
    }

    fn rules_hash(&self, branch: Option<&str>, workflow: Option<&str>) -> String {
        let mut h = Sha256::new();
        h.update(serde_json::to_vec(&self.rules).unwrap_or_default());
        h.update([0]);
        h.update(branch.unwrap_or("*").as_bytes());
        h.update([0]);
        h.update(workflow.unwrap_or("*").as_bytes());
        hex::encode(&h.finalize()[..8])
    }

    /// Runs the invocation.
    ///
    /// # Errors
    /// State errors (unreadable, newer format, unwritable, conflicts past the retries),
    /// an unknown workflow name (listing the known ones), and the source's failures. Sink
    /// failures are not errors: they are in [`SessionReport::writes`] and redone next time.
    pub async fn run(&self) -> Result<SessionReport> {
        if self.options.reset {
            self.store.reset().await?;
        }
        let mut reloads = 0;
        loop {
            match self.attempt(reloads).await {
                Err(e)
                    if matches!(e.kind(), ErrorKind::StateConflict { .. })
                        && reloads < MAX_RELOADS =>
                {
                    tracing::info!(target: "flow.monitor", error = %e, "state saved by another monitor; reloading");
                    reloads += 1;
                }
                other => return other,
            }
        }
    }

    async fn resolve_workflow(&self, state: &mut MonitorState) -> Result<Option<WorkflowRef>> {
        let Some(w) = self.options.query.workflow.as_deref() else {
            return Ok(None);
        };
        if let Some(r) = state.workflows.get(w) {
            return Ok(Some(r.clone()));
        }
        let listed = self.source.workflows().await?;
        let found = if let Ok(id) = w.parse::<u64>() {
            listed
                .iter()
                .find(|r| r.id == id)
                .cloned()
                .or(Some(WorkflowRef {
                    id,
                    ..WorkflowRef::default()
                }))
        } else {
            listed
                .iter()
                .find(|r| r.name == w)
                .or_else(|| listed.iter().find(|r| r.file_name() == w || r.path == w))
                .or_else(|| listed.iter().find(|r| r.name.eq_ignore_ascii_case(w)))
                .cloned()
        };
        match found {
            Some(r) => {
                state.workflows.insert(w.to_owned(), r.clone());
                Ok(Some(r))
            }
            // A source without a workflows list (files, events) filters by name itself.
            None if listed.is_empty() => Ok(None),
            None => {
                let known: Vec<String> = listed
                    .iter()
                    .map(|r| format!("`{}` ({}, id {})", r.name, r.file_name(), r.id))
                    .collect();
                Err(Error::invalid(
                    "workflow",
                    format!(
                        "no workflow named `{w}`: expected a display name, a file name or an id; known workflows: {}",
                        known.join(", ")
                    ),
                ))
            }
        }
    }

    async fn attempt(&self, reloads: u32) -> Result<SessionReport> {
        let now = self.clock.now_ms();
        let loaded = self.store.load().await?;
        let fresh = loaded.is_none();
        let mut state = loaded.unwrap_or_default();
        let before = state.to_json()?;
        let workflow = self.resolve_workflow(&mut state).await?;
        let branch = self.branch();
        let mut query = self.options.query.clone();
        if let Some(r) = &workflow {
            query.workflow = Some(r.id.to_string());
        }
        if let Some(b) = &branch {
            query.branch = Some(b.clone());
        }
        let hash = self.rules_hash(branch.as_deref(), query.workflow.as_deref());
        let mut monitor = match state.monitor.take() {
            Some(m) if state.rules_hash == hash => m,
            previous => {
                if previous.is_some() {
                    tracing::warn!(target: "flow.monitor", "the rules, workflow or branch changed: the detectors start learning again (open issues are kept)");
                }
                let m = Monitor::new(self.rules.clone());
                match &branch {
                    Some(b) => m.with_branch(b.clone()),
                    None => m,
                }
            }
        };
        state.rules_hash = hash;

        // Runs: from the event when it directly follows the last one observed, else listed.
        let mut report_list = 0;
        let mut report_jobs = 0;
        let mut from_event = false;
        let mut truncated = false;
        let mut runs: Vec<Run> = Vec::new();
        match self
            .event_run(&state, workflow.as_ref(), branch.as_deref())
            .await?
        {
            EventRun::Observe(mut run, jobs_asked) => {
                from_event = true;
                report_jobs += jobs_asked;
                let seen = state.poller.last_seen.is_some_and(|l| run.id <= l);
                if !seen || run.run_attempt > 1 {
                    if run.outcome() == Outcome::Failure && jobs_asked == 0 {
                        let jobs = self.source.jobs(run.id).await?;
                        report_jobs += 1;
                        run.runner_error = jobs.iter().any(Job::is_runner_error);
                    }
                    if state.poller.last_seen.is_none_or(|l| run.id > l) {
                        state.poller.last_seen = Some(run.id);
                        state.poller.last_created_at = run.created_at;
                    }
                    runs.push(*run);
                }
            }
            EventRun::Ignore => from_event = true,
            EventRun::Poll => {
                let mut poller = Poller::new(self.source.clone(), query.clone())
                    .with_first_pages(self.options.first_pages)
                    .with_state(state.poller.clone());
                let batch = poller.poll().await?;
                report_list = batch.list_requests;
                report_jobs = batch.job_requests;
                truncated = batch.truncated;
                state.poller = poller.state();
                runs = batch.completed;
            }
        }
        if let Some(b) = &branch {
            runs.retain(|r| r.head_branch == *b || r.head_branch.is_empty());
        }

        let opts = &self.options.lifecycle;
        let mut alerts = Vec::new();
        let mut recovered = Vec::new();
        let mut touched = BTreeSet::new();
        let mut known: std::collections::BTreeMap<Fingerprint, Alert> = monitor
            .active_alerts()
            .map(|a| (a.fingerprint.clone(), a.clone()))
            .collect();
        for run in &runs {
            let key = run.workflow_key().into_owned();
            let n = state.run_numbers.entry(key.clone()).or_insert(0);
            *n = (*n).max(run.run_number);
            touched.insert(key);
            let obs = monitor.observe(run);
            state.ledger.apply(run, &obs, &mut monitor, opts, now);
            for a in &obs.alerts {
                known.insert(a.fingerprint.clone(), a.clone());
            }
            recovered.extend(
                obs.recovered
                    .iter()
                    .map(|fp| (fp.clone(), known.get(fp).cloned())),
            );
            alerts.extend(obs.alerts);
        }
        state.ledger.renotify(&monitor, &touched, opts, now);
        state.monitor = Some(monitor);
        let me = format!(
            "{}-{now}-{}",
            std::process::id(),
            SESSIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        if self.sink.is_some() {
            self.claim(&mut state, &me, now);
        }

        // Save what was observed and the writes it calls for, before making them.
        if state.to_json()? != before || fresh {
            state.saved_at_ms = now;
            state.revision = self.store.save(&state).await?;
        }

        let (writes, done, write_count, deferred) = self.execute(&mut state, &me).await;
        if !done.is_empty() {
            self.save_done(&mut state, &done, now).await?;
        }
        let monitor = state
            .monitor
            .take()
            .unwrap_or_else(|| Monitor::new(self.rules.clone()));
        Ok(SessionReport {
            runs: runs.len(),
            completed: runs,
            list_requests: report_list,
            truncated,
            job_requests: report_jobs,
            from_event,
            workflow,
            branch,
            alerts,
            recovered,
            writes,
            write_count,
            deferred,
            monitor,
            ledger: state.ledger.clone(),
            revision: state.revision,
            reloads,
            fresh: fresh || self.options.reset,
        })
    }

    /// Saves the outcome of the writes; on a conflict, reloads and applies it to the newer
    /// state (the writes are not redone).
    async fn save_done(&self, state: &mut MonitorState, done: &[Done], now: i64) -> Result<()> {
        let mut attempt = 0;
        loop {
            state.saved_at_ms = now;
            match self.store.save(state).await {
                Ok(rev) => {
                    state.revision = rev;
                    return Ok(());
                }
                Err(e)
                    if matches!(e.kind(), ErrorKind::StateConflict { .. })
                        && attempt < MAX_RELOADS =>
                {
                    attempt += 1;
                    let monitor = state.monitor.take();
                    let mut newer = self.store.load().await?.unwrap_or_default();
                    for d in done {
                        if d.made {
                            newer.ledger.pending.retain(|i| i.id != d.id);
                        } else if let Some(i) =
                            newer.ledger.pending.iter_mut().find(|i| i.id == d.id)
                        {
                            i.claim = None;
                            if i.notes.is_none() {
                                i.notes.clone_from(&d.notes);
                            }
                        }
                        if let (Some(n), Some(e)) = (d.issue, newer.ledger.entries.get_mut(&d.key))
                            && e.issue.is_none()
                        {
                            e.issue = Some(n);
                        }
                    }
                    if newer.monitor.is_none() {
                        newer.monitor = monitor;
                    }
                    *state = newer;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Claims the queued writes this invocation will make: in order, up to the cap, skipping
    /// those another live invocation claimed; a problem whose write is skipped keeps its later
    /// writes queued too.
    fn claim(&self, state: &mut MonitorState, me: &str, now: i64) {
        let budget = self.options.lifecycle.max_writes;
        let mut count = 0u32;
        let mut blocked: BTreeSet<Fingerprint> = BTreeSet::new();
        for intent in &mut state.ledger.pending {
            let live = intent
                .claim
                .as_ref()
                .is_some_and(|c| c.by != me && now.saturating_sub(c.at_ms) < CLAIM_LEASE_MS);
            if blocked.contains(&intent.key) || live {
                blocked.insert(intent.key.clone());
                continue;
            }
            let cost = intent.action.writes();
            if count + cost > budget {
                blocked.insert(intent.key.clone());
                continue;
            }
            count += cost;
            intent.claim = Some(crate::lifecycle::Claim {
                by: me.to_owned(),
                at_ms: now,
            });
        }
    }

    /// Makes the writes claimed by `me`, in order; a failure leaves the problem's later writes
    /// for next time.
    async fn execute(
        &self,
        state: &mut MonitorState,
        me: &str,
    ) -> (Vec<Write>, Vec<Done>, u32, usize) {
        let mut writes = Vec::new();
        let mut done = Vec::new();
        let mut count = 0u32;
        let Some(sink) = &self.sink else {
            return (writes, done, 0, state.ledger.pending.len());
        };
        let mut blocked: BTreeSet<Fingerprint> = BTreeSet::new();
        let pending = std::mem::take(&mut state.ledger.pending);
        let mut keep = Vec::new();
        for mut intent in pending {
            let mine = intent.claim.as_ref().is_some_and(|c| c.by == me);
            if !mine || blocked.contains(&intent.key) {
                if mine {
                    intent.claim = None;
                    done.push(Done {
                        id: intent.id,
                        key: intent.key.clone(),
                        issue: None,
                        made: false,
                        notes: intent.notes.clone(),
                    });
                }
                keep.push(intent);
                continue;
            }
            let issue = state.ledger.entries.get(&intent.key).and_then(|e| e.issue);
            // Nothing to comment on or close: the issue was never opened (a dry run).
            if !matches!(intent.action, IntentAction::Open { .. }) && issue.is_none() {
                done.push(Done {
                    id: intent.id,
                    key: intent.key.clone(),
                    issue: None,
                    made: true,
                    notes: None,
                });
                continue;
            }
            let cost = intent.action.writes();
            let mut w = Write {
                key: intent.key.clone(),
                kind: "open",
                alert: None,
                notes: None,
                notes_error: None,
                action: None,
                error: None,
            };
            let result = match &intent.action {
                IntentAction::Open { alert } => {
                    w.alert = Some((**alert).clone());
                    if intent.notes.is_none()
                        && let Some(hook) = &self.notes
                    {
                        match hook.notes(alert).await {
                            Ok(n) => intent.notes = Some(n),
                            Err(e) => w.notes_error = Some(e),
                        }
                    }
                    w.notes.clone_from(&intent.notes);
                    sink.open(alert, intent.notes.as_deref().unwrap_or(""))
                        .await
                }
                IntentAction::Comment { text } => {
                    w.kind = "comment";
                    sink.comment(&intent.key, issue.unwrap_or(0), text).await
                }
                IntentAction::Close { text, .. } => {
                    w.kind = "close";
                    sink.close(&intent.key, issue.unwrap_or(0), text).await
                }
            };
            match result {
                Ok(action) => {
                    count += cost;
                    let number = match action {
                        IssueAction::Opened { number }
                        | IssueAction::Commented { number }
                        | IssueAction::Closed { number } => Some(number),
                        _ => None,
                    };
                    let opened = matches!(intent.action, IntentAction::Open { .. });
                    if opened
                        && let (Some(n), Some(e)) =
                            (number, state.ledger.entries.get_mut(&intent.key))
                    {
                        e.issue = Some(n);
                    }
                    done.push(Done {
                        id: intent.id,
                        key: intent.key.clone(),
                        issue: number.filter(|_| opened),
                        made: true,
                        notes: None,
                    });
                    w.action = Some(action);
                }
                Err(e) => {
                    tracing::error!(target: "flow.monitor", key = %intent.key, error = %e, "issue write failed; redone next time");
                    w.error = Some(e.to_string());
                    blocked.insert(intent.key.clone());
                    intent.claim = None;
                    done.push(Done {
                        id: intent.id,
                        key: intent.key.clone(),
                        issue: None,
                        made: false,
                        notes: intent.notes.clone(),
                    });
                    keep.push(intent);
                }
            }
            writes.push(w);
        }
        let deferred = keep.len();
        state.ledger.pending = keep;
        (writes, done, count, deferred)
    }

    async fn event_run(
        &self,
        state: &MonitorState,
        workflow: Option<&WorkflowRef>,
        branch: Option<&str>,
    ) -> Result<EventRun> {
        let Some(event) = &self.options.event else {
            return Ok(EventRun::Poll);
        };
        let (run, jobs_asked) = match event {
            Event::WorkflowRun { run, .. } => ((**run).clone(), 0),
            Event::WorkflowJob { job, .. } => {
                if job.status != crate::model::RunStatus::Completed {
                    return Ok(EventRun::Ignore);
                }
                match self.source.run(job.run_id).await? {
                    Some(r) => (r, 0),
                    None => return Ok(EventRun::Poll),
                }
            }
        };
        if !run.is_completed() {
            return Ok(EventRun::Ignore);
        }
        let wanted = match (workflow, self.options.query.workflow.as_deref()) {
            (Some(w), _) => {
                run.workflow_id.0 == w.id || (!w.path.is_empty() && run.path.starts_with(&w.path))
            }
            (None, Some(w)) => run.name == w || run.path.ends_with(w),
            (None, None) => true,
        };
        if !wanted || branch.is_some_and(|b| run.head_branch != b) {
            return Ok(EventRun::Ignore);
        }
        let key = run.workflow_key().into_owned();
        let follows = state.poller.last_seen.is_some()
            && state.poller.pending.is_empty()
            && state
                .run_numbers
                .get(&key)
                .is_some_and(|n| run.run_number <= n + 1);
        Ok(if follows {
            EventRun::Observe(Box::new(run), jobs_asked)
        } else {
            EventRun::Poll
        })
    }
}

enum EventRun {
    Observe(Box<Run>, u32),
    Ignore,
    Poll,
}

fn event_default_branch(e: &Event) -> Option<String> {
    match e {
        Event::WorkflowRun { default_branch, .. } | Event::WorkflowJob { default_branch, .. } => {
            default_branch.clone()
        }
    }
}
