//! The quiet issue lifecycle: the [`Ledger`] remembers, per problem, its issue and what was
//! last said, and turns what the detectors observed into the few GitHub writes worth making.
//!
//! - A problem is an incident of a workflow on a branch ([`issue_key`], which is
//!   [`Fingerprint::incident`]): every signal the monitor groups into it (the streak and the
//!   failure rate of a burst, the outlier and the change point of a slowdown, and anything else
//!   that fires while it is open) shares its one issue.
//! - A new problem opens one issue. While it lasts nothing more is said, except a severity
//!   escalation, or fresh figures at most once per `renotify_after` (never the same text twice).
//! - Recovery closes the issue naming the recovering run (or, with `close_on_recovery` off,
//!   comments once and leaves it open: a later re-fire then comments on it).
//! - A problem firing again after its issue was closed opens a **new** issue that links the
//!   previous one: a closed issue stays a record of one incident.
//! - A duration change point that holds for `accept_after_runs` runs is accepted as the new
//!   normal: the issue is closed with the before/after medians and the commit range.
//!
//! Writes are queued as [`Intent`]s in the ledger, saved with the state *before* they are
//! made, and removed once made: a process killed in between redoes them next time, and the
//! idempotent sink (issues and comments carry hidden markers) does not post twice.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::alert::{Alert, AlertKind, Fingerprint, Severity};
use crate::model::{Run, ts};
use crate::monitor::{ChangeStart, Monitor, Observation};

/// The lifecycle's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct LifecycleOptions {
    /// Close the issue when the problem recovers (default true).
    pub close_on_recovery: bool,
    /// At most one "still happening" comment per this many ms (default 24 h).
    pub renotify_after_ms: i64,
    /// Runs a duration change point must hold before it is accepted as the new normal
    /// (default 50; 0 never accepts).
    pub accept_after_runs: u32,
    /// GitHub writes per invocation (default 10); the rest waits for the next one.
    pub max_writes: u32,
}

impl Default for LifecycleOptions {
    fn default() -> Self {
        Self {
            close_on_recovery: true,
            renotify_after_ms: 24 * 3_600_000,
            accept_after_runs: 50,
            max_writes: 10,
        }
    }
}

/// The identity of the issue of the incidents of `workflow` on `branch` (empty: all branches):
/// the incident's own fingerprint, so the monitor and the ledger agree by construction.
pub fn issue_key(workflow: &str, branch: &str) -> Fingerprint {
    Fingerprint::incident(workflow, branch)
}

/// Where a problem's issue stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IssueStatus {
    /// The problem is happening; its issue is open (or being opened).
    Open,
    /// It recovered; the issue was left open (`close_on_recovery` off).
    Recovered,
    /// It recovered and the issue was closed.
    Closed,
    /// A change point held and was accepted as the new normal; the issue was closed.
    Accepted,
}

/// A change point being watched for acceptance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shift {
    /// The median duration before it, ms.
    pub before_ms: f64,
    /// Where it started.
    pub start: ChangeStart,
    /// Runs observed since it fired.
    pub runs: u32,
}

/// What the ledger knows about one problem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// The workflow.
    pub workflow: String,
    /// The branch (empty: all).
    pub branch: String,
    /// Its issue, once opened.
    pub issue: Option<u64>,
    /// The issue of the previous incident of the same problem.
    #[serde(default)]
    pub previous_issue: Option<u64>,
    /// Where it stands.
    pub status: IssueStatus,
    /// The highest severity said so far.
    pub severity: Severity,
    /// Detector fingerprints active under this problem, with their kinds.
    pub active: BTreeMap<Fingerprint, AlertKind>,
    /// The alert the issue was opened with.
    pub alert: Alert,
    /// SHA-256 (16 hex) of the last text posted.
    pub last_said: String,
    /// When something was last posted (or queued), unix ms.
    pub last_said_at_ms: i64,
    /// The id of the last run observed for it.
    pub last_run: u64,
    /// A change point watched for acceptance.
    #[serde(default)]
    pub shift: Option<Shift>,
}

/// A GitHub write to make.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "snake_case")]
pub enum IntentAction {
    /// Open an issue for `alert` (its fingerprint is the issue key).
    Open {
        /// The alert.
        alert: Box<Alert>,
    },
    /// Comment on the problem's issue.
    Comment {
        /// Markdown, with its hidden marker.
        text: String,
    },
    /// Comment on and close the problem's issue.
    Close {
        /// Markdown, with its hidden marker.
        text: String,
        /// Accepted as the new normal (else recovered).
        accepted: bool,
    },
}

impl IntentAction {
    /// GitHub writes it costs.
    pub fn writes(&self) -> u32 {
        match self {
            Self::Open { .. } | Self::Comment { .. } => 1,
            Self::Close { .. } => 2,
        }
    }
}

/// A queued write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    /// Unique within the ledger; part of the comment marker.
    pub id: u64,
    /// The problem.
    pub key: Fingerprint,
    /// The write.
    pub action: IntentAction,
    /// Notes to add (e.g. an LLM triage), once obtained: a redo does not ask again.
    #[serde(default)]
    pub notes: Option<String>,
    /// The invocation making it, saved before it starts: other monitors leave it alone until
    /// the claim is older than the lease (the claimant died).
    #[serde(default)]
    pub claim: Option<Claim>,
}

/// Who is making a write, and since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// The invocation.
    pub by: String,
    /// Since when, unix ms.
    pub at_ms: i64,
}

/// Problems, their issues, and the writes still to make.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Ledger {
    /// By issue key.
    pub entries: BTreeMap<Fingerprint, LedgerEntry>,
    /// Writes still to make, in order.
    pub pending: Vec<Intent>,
    /// The next intent id.
    pub next_id: u64,
}

/// The hidden marker of a comment: `<!-- flow-telemetry:note=<key>-<id> -->`.
pub fn note_marker(key: &Fingerprint, id: u64) -> String {
    format!("<!-- flow-telemetry:note={key}-{id} -->")
}

fn hash_text(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..8])
}

impl LedgerEntry {
    /// Remembers `text` as the last thing said on the issue, at `now_ms` (so the same text is
    /// never posted twice and renotification waits its interval).
    fn said(&mut self, text: &str, now_ms: i64) {
        self.last_said = hash_text(text);
        self.last_said_at_ms = now_ms;
    }
}

/// The run an alert points at: the last run of its evidence, else the run it fired on.
fn alert_run(alert: &Alert) -> String {
    alert
        .evidence
        .runs
        .last()
        .cloned()
        .unwrap_or_else(|| alert.run_id.to_string())
}

fn run_link(run: &Run) -> String {
    if run.html_url.is_empty() {
        format!("run {}", run.id.0)
    } else {
        let n = if run.run_number > 0 {
            run.run_number
        } else {
            run.id.0
        };
        format!("[run #{n}]({})", run.html_url)
    }
}

fn secs(ms: f64) -> String {
    format!("{:.0}s", ms / 1000.0)
}

impl Ledger {
    fn queue(&mut self, key: &Fingerprint, action: IntentAction) {
        self.next_id += 1;
        let id = self.next_id;
        let action = match action {
            IntentAction::Comment { text } => IntentAction::Comment {
                text: format!("{text}\n\n{}", note_marker(key, id)),
            },
            IntentAction::Close { text, accepted } => IntentAction::Close {
                text: format!("{text}\n\n{}", note_marker(key, id)),
                accepted,
            },
            open => open,
        };
        self.pending.push(Intent {
            id,
            key: key.clone(),
            action,
            notes: None,
            claim: None,
        });
    }

    /// Issues opened and not closed, by key.
    pub fn open_issues(&self) -> impl Iterator<Item = (&Fingerprint, &LedgerEntry)> {
        self.entries
            .iter()
            .filter(|(_, e)| matches!(e.status, IssueStatus::Open | IssueStatus::Recovered))
    }

    /// Applies what observing `run` changed (`obs`, from `monitor`) to the ledger, queueing
    /// the writes it calls for. Returns the keys of problems that started.
    pub fn apply(
        &mut self,
        run: &Run,
        obs: &Observation,
        monitor: &mut Monitor,
        opts: &LifecycleOptions,
        now_ms: i64,
    ) -> Vec<Fingerprint> {
        let workflow = run.workflow_key().into_owned();
        let mut started = Vec::new();
        for fp in &obs.recovered {
            let Some(key) = self
                .entries
                .iter()
                .find(|(_, e)| e.active.contains_key(fp))
                .map(|(k, _)| k.clone())
            else {
                continue;
            };
            self.recovered(&key, fp, run, opts, now_ms);
        }
        // New incidents, and open ones that gained a signal (an escalation is worth a word).
        for alert in obs.alerts.iter().chain(&obs.updated) {
            let key = issue_key(&alert.workflow, &alert.branch);
            if self.fired(&key, alert, &alert.branch, monitor, now_ms) {
                started.push(key);
            }
        }
        // Change points held long enough become the new normal.
        let keys: Vec<Fingerprint> = self
            .entries
            .iter()
            .filter(|(_, e)| e.workflow == workflow && e.status == IssueStatus::Open)
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            let Some(e) = self.entries.get_mut(&key) else {
                continue;
            };
            e.last_run = run.id.0;
            let Some(shift) = e.shift.as_mut() else {
                continue;
            };
            shift.runs += 1;
            if opts.accept_after_runs == 0 || shift.runs < opts.accept_after_runs {
                continue;
            }
            let shift = shift.clone();
            let after = monitor
                .duration_median(&workflow)
                .unwrap_or(shift.before_ms);
            monitor.accept_duration(&workflow);
            e.active.clear();
            e.shift = None;
            e.status = IssueStatus::Accepted;
            let mut text = format!(
                "Accepted as the new normal: the duration change held for {} runs (through {}).\n\n\
                 | | median duration |\n|---|---|\n| before | {} |\n| after | {} |\n",
                shift.runs,
                run_link(run),
                secs(shift.before_ms),
                secs(after),
            );
            let s = &shift.start;
            if !s.after_sha.is_empty() {
                let _ = write!(
                    text,
                    "\nCommit range: `{}` (last run before, {}) … `{}` (first run after, {})",
                    short(&s.before_sha),
                    s.before_run,
                    short(&s.after_sha),
                    s.after_run
                );
                if let Some(url) = s.compare_url() {
                    let _ = write!(text, ": {url}");
                }
                text.push('\n');
            }
            text.push_str("\nThe detectors now use this level as the baseline. Closing.");
            e.said(&text, now_ms);
            self.queue(
                &key,
                IntentAction::Close {
                    text,
                    accepted: true,
                },
            );
        }
        started
    }

    fn recovered(
        &mut self,
        key: &Fingerprint,
        fp: &Fingerprint,
        run: &Run,
        opts: &LifecycleOptions,
        now_ms: i64,
    ) {
        let Some(e) = self.entries.get_mut(key) else {
            return;
        };
        e.active.remove(fp);
        if !e.active.is_empty() || e.status != IssueStatus::Open {
            return;
        }
        e.shift = None;
        // Fired and recovered before its issue was opened: nothing to say.
        if e.issue.is_none()
            && let Some(i) = self
                .pending
                .iter()
                .position(|i| i.key == *key && matches!(i.action, IntentAction::Open { .. }))
        {
            self.pending.retain(|p| p.key != *key);
            let _ = i;
            let prev = e.previous_issue;
            match prev {
                // Back to the closed state of the previous incident.
                Some(n) => {
                    e.issue = Some(n);
                    e.status = IssueStatus::Closed;
                }
                None => {
                    self.entries.remove(key);
                }
            }
            return;
        }
        let when = run.updated_at.map(ts::format_ms).unwrap_or_default();
        let text = if opts.close_on_recovery {
            e.status = IssueStatus::Closed;
            format!(
                "Recovered with {} ({when}): {} is back within its baseline. Closing.",
                run_link(run),
                e.workflow
            )
        } else {
            e.status = IssueStatus::Recovered;
            format!(
                "Recovered with {} ({when}): {} is back within its baseline. Left open \
                 (close-on-recovery is off); a recurrence will be noted here.",
                run_link(run),
                e.workflow
            )
        };
        e.said(&text, now_ms);
        let action = if opts.close_on_recovery {
            IntentAction::Close {
                text,
                accepted: false,
            }
        } else {
            IntentAction::Comment { text }
        };
        self.queue(key, action);
    }

    fn fired(
        &mut self,
        key: &Fingerprint,
        alert: &Alert,
        branch: &str,
        monitor: &Monitor,
        now_ms: i64,
    ) -> bool {
        let change = alert
            .signals
            .iter()
            .find(|s| s.kind == AlertKind::DurationShift && !s.recovered)
            .map(|s| s.evidence.baseline)
            .or_else(|| {
                (alert.kind == AlertKind::DurationShift).then_some(alert.evidence.baseline)
            });
        let shift = change.map(|before_ms| Shift {
            before_ms,
            start: monitor
                .change_start(&alert.workflow)
                .cloned()
                .unwrap_or_default(),
            runs: 0,
        });
        let mut issue_alert = alert.clone();
        issue_alert.fingerprint = key.clone();
        match self.entries.get_mut(key) {
            Some(e) if e.status == IssueStatus::Open => {
                e.active.insert(alert.fingerprint.clone(), alert.kind);
                if shift.is_some() && e.shift.is_none() {
                    e.shift = shift;
                }
                if alert.severity > e.severity {
                    e.severity = alert.severity;
                    // Not opened yet: the issue opens with the graver alert instead.
                    if e.issue.is_none()
                        && let Some(IntentAction::Open { alert: queued }) = self
                            .pending
                            .iter_mut()
                            .find(|i| {
                                i.key == *key && matches!(i.action, IntentAction::Open { .. })
                            })
                            .map(|i| &mut i.action)
                    {
                        **queued = issue_alert.clone();
                        e.alert = issue_alert;
                        return false;
                    }
                    let text = format!(
                        "Escalated to **{}**: {} (run {}).",
                        alert.severity,
                        alert.summary,
                        alert_run(alert)
                    );
                    e.said(&text, now_ms);
                    self.queue(key, IntentAction::Comment { text });
                }
                false
            }
            Some(e) if e.status == IssueStatus::Recovered && e.issue.is_some() => {
                e.active.insert(alert.fingerprint.clone(), alert.kind);
                e.status = IssueStatus::Open;
                e.severity = alert.severity;
                e.shift = shift;
                let text = format!(
                    "Fired again after recovering: {} ({}).",
                    alert.summary,
                    alert_run(alert)
                );
                e.said(&text, now_ms);
                self.queue(key, IntentAction::Comment { text });
                false
            }
            existing => {
                let previous_issue = existing.and_then(|e| e.issue.or(e.previous_issue));
                let entry = LedgerEntry {
                    workflow: alert.workflow.clone(),
                    branch: branch.to_owned(),
                    issue: None,
                    previous_issue,
                    status: IssueStatus::Open,
                    severity: alert.severity,
                    active: BTreeMap::from([(alert.fingerprint.clone(), alert.kind)]),
                    alert: issue_alert.clone(),
                    last_said: hash_text(&alert.summary),
                    last_said_at_ms: now_ms,
                    last_run: alert.run_id,
                    shift,
                };
                self.entries.insert(key.clone(), entry);
                self.queue(
                    key,
                    IntentAction::Open {
                        alert: Box::new(issue_alert),
                    },
                );
                true
            }
        }
    }

    /// Queues "still happening" comments with fresh figures for open problems whose last
    /// word is older than `renotify_after` and that saw new runs (`touched` workflows); a text
    /// equal to the last one is not posted.
    pub fn renotify(
        &mut self,
        monitor: &Monitor,
        touched: &BTreeSet<String>,
        opts: &LifecycleOptions,
        now_ms: i64,
    ) {
        let due: Vec<Fingerprint> = self
            .entries
            .iter()
            .filter(|(_, e)| {
                e.status == IssueStatus::Open
                    && e.issue.is_some()
                    && !e.active.is_empty()
                    && touched.contains(&e.workflow)
                    && now_ms.saturating_sub(e.last_said_at_ms) >= opts.renotify_after_ms
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            if self.pending.iter().any(|p| p.key == key) {
                continue;
            }
            let Some(e) = self.entries.get_mut(&key) else {
                continue;
            };
            let kpis = monitor.kpis();
            let Some(k) = kpis.iter().find(|k| k.key.workflow == e.workflow) else {
                continue;
            };
            let v = &k.values;
            let mut text = format!(
                "Still happening as of run {} ({}): over the last {} runs, failure rate {:.0}%",
                e.last_run,
                ts::format_ms(now_ms),
                v.count,
                v.failure_rate * 100.0
            );
            if let Some(d) = &v.duration_ms {
                let _ = write!(text, ", median duration {}", secs(d.p50 as f64));
            }
            if let Some(m) = monitor.duration_median(&e.workflow) {
                let _ = write!(text, " (baseline median {})", secs(m));
            }
            text.push('.');
            let h = hash_text(&text);
            if h == e.last_said {
                continue;
            }
            e.last_said = h;
            e.last_said_at_ms = now_ms;
            self.queue(&key, IntentAction::Comment { text });
        }
    }
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::model::{Conclusion, RunId, RunStatus};
    use crate::rules::Rules;

    fn run(id: u64, ok: bool) -> Run {
        Run {
            id: RunId(id),
            run_number: id,
            name: "CI".into(),
            head_branch: "main".into(),
            status: RunStatus::Completed,
            conclusion: Some(if ok {
                Conclusion::Success
            } else {
                Conclusion::Failure
            }),
            created_at: Some(id as i64 * 60_000),
            run_started_at: Some(id as i64 * 60_000),
            updated_at: Some(id as i64 * 60_000 + 100_000),
            html_url: format!("https://github.com/o/r/actions/runs/{id}"),
            ..Run::default()
        }
    }

    fn feed(ledger: &mut Ledger, m: &mut Monitor, runs: &[Run], opts: &LifecycleOptions) {
        for r in runs {
            let obs = m.observe(r);
            ledger.apply(r, &obs, m, opts, 0);
        }
    }

    #[test]
    fn a_burst_opens_one_issue_and_its_recovery_closes_it() {
        let opts = LifecycleOptions::default();
        let mut m = Monitor::new(Rules::default()).with_branch("main");
        let mut l = Ledger::default();
        let runs: Vec<Run> = (1..=30)
            .map(|i| run(i, true))
            .chain((31..=36).map(|i| run(i, false)))
            .collect();
        feed(&mut l, &mut m, &runs, &opts);
        assert_eq!(l.pending.len(), 1, "{:?}", l.pending);
        assert!(matches!(l.pending[0].action, IntentAction::Open { .. }));
        // The issue was opened.
        let key = l.pending[0].key.clone();
        l.pending.clear();
        l.entries.get_mut(&key).unwrap().issue = Some(1);
        let healthy: Vec<Run> = (37..=50).map(|i| run(i, true)).collect();
        feed(&mut l, &mut m, &healthy, &opts);
        assert_eq!(l.pending.len(), 1, "{:?}", l.pending);
        let IntentAction::Close { text, accepted } = &l.pending[0].action else {
            panic!("{:?}", l.pending)
        };
        assert!(!accepted);
        assert!(text.contains("Recovered with [run #"), "{text}");
        assert_eq!(l.entries[&key].status, IssueStatus::Closed);
        // Firing again later: a new issue, linking the previous one.
        l.pending.clear();
        let again: Vec<Run> = (51..=55).map(|i| run(i, false)).collect();
        feed(&mut l, &mut m, &again, &opts);
        assert_eq!(l.pending.len(), 1);
        assert!(matches!(l.pending[0].action, IntentAction::Open { .. }));
        assert_eq!(l.entries[&key].previous_issue, Some(1));
    }

    #[test]
    fn a_problem_that_fires_and_recovers_before_its_issue_is_opened_says_nothing() {
        let opts = LifecycleOptions::default();
        let mut m = Monitor::new(Rules::default());
        let mut l = Ledger::default();
        let runs: Vec<Run> = (1..=30)
            .map(|i| run(i, true))
            .chain((31..=35).map(|i| run(i, false)))
            .chain((36..=60).map(|i| run(i, true)))
            .collect();
        feed(&mut l, &mut m, &runs, &opts);
        assert!(l.pending.is_empty(), "{:?}", l.pending);
        assert!(l.entries.is_empty());
    }

    #[test]
    fn renotify_is_at_most_daily_and_never_repeats_itself() {
        let opts = LifecycleOptions::default();
        let mut m = Monitor::new(Rules::default()).with_branch("main");
        let mut l = Ledger::default();
        let runs: Vec<Run> = (1..=30)
            .map(|i| run(i, true))
            .chain((31..=40).map(|i| run(i, false)))
            .collect();
        feed(&mut l, &mut m, &runs, &opts);
        let key = l.pending[0].key.clone();
        l.pending.clear();
        l.entries.get_mut(&key).unwrap().issue = Some(1);
        let touched = BTreeSet::from(["CI".to_owned()]);
        // Within the day: nothing.
        l.renotify(&m, &touched, &opts, opts.renotify_after_ms - 1);
        assert!(l.pending.is_empty());
        // A day later, still failing: fresh figures, once.
        let day = opts.renotify_after_ms;
        l.renotify(&m, &touched, &opts, day);
        assert_eq!(l.pending.len(), 1);
        let IntentAction::Comment { text } = &l.pending[0].action else {
            panic!("{:?}", l.pending)
        };
        assert!(text.starts_with("Still happening as of run 40"), "{text}");
        assert!(text.contains("failure rate 25%"), "{text}");
        l.pending.clear();
        // Another day without a new run: not touched, nothing said.
        l.renotify(&m, &BTreeSet::new(), &opts, 2 * day);
        assert!(l.pending.is_empty());
    }

    #[test]
    fn an_escalation_after_the_issue_is_opened_is_one_comment() {
        let opts = LifecycleOptions::default();
        let mut m = Monitor::new(Rules::default());
        let mut l = Ledger::default();
        // A flaky stretch (every other run fails) lifts the failure rate (warning) with no streak.
        let mut runs: Vec<Run> = (1..=30).map(|i| run(i, true)).collect();
        for i in 31..=46 {
            runs.push(run(i, i % 2 == 0));
        }
        feed(&mut l, &mut m, &runs, &opts);
        let opened: Vec<_> = l
            .pending
            .iter()
            .filter(|i| matches!(i.action, IntentAction::Open { .. }))
            .collect();
        assert_eq!(opened.len(), 1, "{:?}", l.pending);
        let key = opened[0].key.clone();
        l.pending.clear();
        l.entries.get_mut(&key).unwrap().issue = Some(1);
        assert_eq!(l.entries[&key].severity, Severity::Warning);
        feed(
            &mut l,
            &mut m,
            &(47..=50).map(|i| run(i, false)).collect::<Vec<_>>(),
            &opts,
        );
        {
            let comments: Vec<_> = l
                .pending
                .iter()
                .filter_map(|i| match &i.action {
                    IntentAction::Comment { text } => Some(text.clone()),
                    _ => None,
                })
                .collect();
            assert_eq!(comments.len(), 1, "{:?}", l.pending);
            assert!(
                comments[0].starts_with("Escalated to **critical**"),
                "{}",
                comments[0]
            );
        }
        assert_eq!(l.entries[&key].severity, Severity::Critical);
    }
}
