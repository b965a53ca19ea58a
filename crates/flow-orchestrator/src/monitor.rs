//! `monitor`: one stateful invocation of flow-telemetry's [`Session`] — runs from the
//! triggering event or an incremental poll, detectors restored from the state store, the quiet
//! issue lifecycle — with the LLM triage of each new problem as its issue's notes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use flow_telemetry::lifecycle::issue_key;
use flow_telemetry::otlp::{ExportReport, TraceExporter as _};
use flow_telemetry::report::Report;
use flow_telemetry::session::{AlertNotes, Session, SessionOptions};
use flow_telemetry::source::event::Event;
use flow_telemetry::{Alert, Fingerprint, IssueAction};
use serde::Serialize;
use tracing::Instrument;

use crate::error::{Error, Result};
use crate::orchestrator::Orchestrator;
use crate::triage::Triage;

/// One active alert and what was done about it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertOutcome {
    /// The alert.
    pub alert: Alert,
    /// The LLM's triage, when asked and answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub triage: Option<Triage>,
    /// Why there is no triage although one was asked for (the LLM failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub triage_error: Option<String>,
    /// The model refused the credentials (401/403, e.g. a token without `models: read`):
    /// the later alerts of the cycle were not triaged.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub triage_denied: bool,
    /// What the issue sink did; `None` without a sink or when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issue: Option<IssueAction>,
    /// Why the issue sink failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issue_error: Option<String>,
    /// The issue tracking the problem (opened now or before).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracked_in: Option<u64>,
}

/// A problem that recovered during the cycle.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recovery {
    /// Its fingerprint.
    pub fingerprint: Fingerprint,
    /// The last alert raised for it before it recovered (workflow, kind, evidence).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert: Option<Alert>,
    /// What the sink did (only with `close_on_recovery`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issue: Option<IssueAction>,
    /// Why the sink failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issue_error: Option<String>,
}

/// What one `monitor` cycle saw and did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonitorReport {
    /// Runs observed by this invocation (new since the saved state).
    pub runs: usize,
    /// List requests made (0 when the triggering event sufficed).
    pub pages: u32,
    /// True when `max_pages` stopped the reading while the source had more pages: older runs
    /// were not read (also in [`Report::truncated`]). Omitted from JSON when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// The model refused the credentials (401/403) when asked for a triage, with its error:
    /// the later problems of the invocation were not triaged (the refused one may have
    /// recovered since, so no active alert need carry it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub triage_refused: Option<String>,
    /// The run came from the triggering event, without listing.
    pub from_event: bool,
    /// The branch observed (`None`: every branch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// The workflow resolved from `--workflow` (id, name, path).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow: Option<flow_telemetry::source::WorkflowRef>,
    /// GitHub writes made (issue opened, comment: 1; close: 2).
    pub writes: u32,
    /// Writes left for the next invocation (the `max_writes` cap, or a failure).
    pub deferred: usize,
    /// Where the state lives and the revision saved.
    pub state: StateInfo,
    /// flow-telemetry's report: KPIs and trend per workflow over the rules' window, and the
    /// active alerts (its JSON schema, version [`flow_telemetry::report::SCHEMA_VERSION`]).
    pub telemetry: Report,
    /// Alerts active at the end of the history, one per fingerprint, with their triage and
    /// issue.
    pub alerts: Vec<AlertOutcome>,
    /// Problems that fired and recovered within the history.
    pub recovered: Vec<Recovery>,
    /// The OTLP export of the runs newly completed in this invocation, when an exporter is
    /// set (`--otlp-endpoint`). Its failures are here, never an error of the invocation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp: Option<OtlpOutcome>,
    /// The runs this invocation observed completed and new to the saved state
    /// ([`SessionReport::completed`](flow_telemetry::session::SessionReport::completed)):
    /// each run is in one invocation's report only, so a service can count each once (`flow
    /// serve`'s histograms). Not in the JSON report.
    #[serde(skip)]
    pub completed: Vec<flow_telemetry::Run>,
}

/// The runs this invocation exported as traces: at most [`MAX_EXPORTED_RUNS`] newest.
pub const MAX_EXPORTED_RUNS: usize = 100;

/// What the trace export of one `monitor` invocation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OtlpOutcome {
    /// The exporter's counts: runs exported, failed, spans, requests, retries, errors.
    #[serde(flatten)]
    pub export: ExportReport,
    /// Runs exported without their jobs because the jobs could not be read.
    pub jobs_unreadable: usize,
    /// Older runs left out beyond [`MAX_EXPORTED_RUNS`] (a first invocation's backfill).
    pub left_out: usize,
}

impl OtlpOutcome {
    /// True when every run given to the exporter was delivered with its jobs.
    pub fn is_ok(&self) -> bool {
        self.export.is_ok() && self.jobs_unreadable == 0
    }
}

/// Where the monitor state lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StateInfo {
    /// The file path or Redis key (without credentials).
    pub store: String,
    /// The revision saved.
    pub revision: u64,
    /// Nothing was saved before (or it was reset): the detectors start learning.
    pub fresh: bool,
}

impl MonitorReport {
    /// Alerts whose triage was asked for and failed.
    pub fn triage_failures(&self) -> impl Iterator<Item = &AlertOutcome> {
        self.alerts.iter().filter(|a| a.triage_error.is_some())
    }

    /// True when every issue the cycle tried to open, update or close was handled.
    pub fn issues_ok(&self) -> bool {
        self.alerts.iter().all(|a| a.issue_error.is_none())
            && self.recovered.iter().all(|r| r.issue_error.is_none())
    }

    /// Pretty JSON: `{runs, pages, telemetry: <flow-telemetry report>, alerts: [{alert,
    /// triage?, triage_error?, issue?, issue_error?}], recovered: [{fingerprint, alert?,
    /// issue?, issue_error?}]}`.
    pub fn to_json(&self) -> String {
        // Serializing these plain types cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Markdown for `GITHUB_STEP_SUMMARY`: flow-telemetry's report (KPI table, alerts,
    /// charts), then what was done about each alert: its issue and its triage.
    pub fn to_markdown(&self) -> String {
        let mut md = self.telemetry.to_markdown();
        let _ = writeln!(
            md,
            "\n### Issues and triage\n\n{} new run(s) observed ({}{}); {} active alert(s); {} recovered; {} GitHub write(s), {} deferred.\n",
            self.runs,
            if self.from_event {
                "from the triggering event".to_owned()
            } else {
                format!("{} list request(s)", self.pages)
            },
            if self.truncated {
                ", **truncated** by the page limit: older runs were not read"
            } else {
                ""
            },
            self.alerts.len(),
            self.recovered.len(),
            self.writes,
            self.deferred
        );
        if let Some(o) = &self.otlp {
            let e = &o.export;
            let _ = writeln!(
                md,
                "OTLP export to `{}`: {} run(s) exported as traces ({} spans), {} failed{}.\n",
                e.endpoint,
                e.exported,
                e.spans,
                e.failed,
                if e.errors.is_empty() {
                    String::new()
                } else {
                    format!(": {}", e.errors.join("; "))
                }
            );
        }
        for a in &self.alerts {
            let _ = writeln!(md, "#### {} ({})\n", a.alert.title(), a.alert.severity);
            match (&a.issue, &a.issue_error) {
                (Some(i), _) => {
                    let _ = writeln!(md, "- issue: {i}");
                }
                (None, Some(e)) => {
                    let _ = writeln!(md, "- issue: **failed**: {e}");
                }
                (None, None) => match a.tracked_in {
                    Some(n) => {
                        let _ = writeln!(md, "- issue: #{n} (already open, nothing new to say)");
                    }
                    None => {
                        let _ = writeln!(md, "- issue: none");
                    }
                },
            }
            if let Some(e) = &a.triage_error {
                let _ = writeln!(md, "- triage: **unavailable**: {e}");
            }
            if let Some(t) = &a.triage {
                let _ = writeln!(md, "\n{}", t.to_markdown().replace("### ", "##### "));
            }
            md.push('\n');
        }
        for r in &self.recovered {
            let name = r.alert.as_ref().map_or_else(
                || r.fingerprint.to_string(),
                |a| format!("{} {} ({})", a.workflow, a.kind, r.fingerprint),
            );
            let _ = match (&r.issue, &r.issue_error) {
                (Some(i), _) => writeln!(md, "- recovered {name}: {i}"),
                (None, Some(e)) => writeln!(md, "- recovered {name}: closing **failed**: {e}"),
                (None, None) => writeln!(md, "- recovered {name}"),
            };
        }
        md
    }
}

/// Triage as the notes of a new issue, remembered for the report. Once the model refuses the
/// credentials (401/403: no `models: read`, a bad key), the later problems are not triaged:
/// one error, not one per problem.
struct TriageNotes {
    orchestrator: Orchestrator,
    model: Arc<dyn flow_llm::ChatModel>,
    asked: Mutex<BTreeMap<Fingerprint, Triage>>,
    /// The problem whose triage was refused, and the error, once one was.
    denied: Mutex<Option<(Fingerprint, String)>>,
}

impl TriageNotes {
    fn denied(&self) -> Option<(Fingerprint, String)> {
        self.denied.lock().ok().and_then(|d| d.clone())
    }
}

#[async_trait::async_trait]
impl AlertNotes for TriageNotes {
    async fn notes(&self, alert: &Alert) -> std::result::Result<String, String> {
        if self.denied().is_some() {
            return Ok(String::new());
        }
        match self.orchestrator.triage(self.model.as_ref(), alert).await {
            Ok(t) => {
                let md = t.to_markdown();
                if let Ok(mut m) = self.asked.lock() {
                    m.insert(alert.fingerprint.clone(), t);
                }
                Ok(md)
            }
            Err(e) => {
                tracing::warn!(fingerprint = %alert.fingerprint, error = %e, "triage failed; raising the issue without it");
                let refused = matches!(
                    e.kind(),
                    crate::ErrorKind::Llm(l) if matches!(l.status(), Some(401 | 403))
                );
                if refused && let Ok(mut d) = self.denied.lock() {
                    *d = Some((alert.fingerprint.clone(), e.to_string()));
                }
                Err(e.to_string())
            }
        }
    }
}

impl Orchestrator {
    /// One monitoring invocation, with state: flow-telemetry's [`Session`] restores the
    /// detectors and the issue ledger from the state store, reads the run of the triggering
    /// event (or polls incrementally: a quiet poll is one conditional request), observes, and
    /// makes the few GitHub writes the lifecycle calls for (a new problem opens one issue, with
    /// the chat model's [`Triage`] as notes when enabled; recovery closes it; a change point
    /// held long enough is accepted as the new normal), at most `max_writes` of them.
    ///
    /// # Errors
    /// [`ErrorKind::Missing`](crate::ErrorKind::Missing) without a run source;
    /// [`ErrorKind::Telemetry`](crate::ErrorKind::Telemetry) when reading runs or the state
    /// fails, or the workflow name is unknown. Issue sink and LLM failures do not abort the
    /// invocation: they are in the report, and the writes are redone next time.
    pub async fn monitor(&self) -> Result<MonitorReport> {
        self.monitor_inner(self.monitor.event.as_ref())
            .instrument(tracing::info_span!("flow.monitor"))
            .await
    }

    /// [`Orchestrator::monitor`] for one triggering `event` (`None`: an incremental poll)
    /// instead of the options' event: what a long-running service (`flow serve`) calls for
    /// each delivery and each reconciliation, on one orchestrator per repository.
    ///
    /// # Errors
    /// As [`Orchestrator::monitor`].
    pub async fn monitor_event(&self, event: Option<&Event>) -> Result<MonitorReport> {
        self.monitor_inner(event)
            .instrument(tracing::info_span!("flow.monitor"))
            .await
    }

    async fn monitor_inner(&self, event: Option<&Event>) -> Result<MonitorReport> {
        let source = self.source.clone().ok_or_else(|| {
            Error::missing(
                "run source",
                "set GITHUB_REPOSITORY and GITHUB_TOKEN, or call with_run_source",
            )
        })?;
        let o = &self.monitor;
        let options = SessionOptions {
            query: o.query.clone(),
            branch: o.branch.clone(),
            first_pages: o.max_pages,
            lifecycle: o.lifecycle.clone(),
            event: event.cloned(),
            reset: o.reset_state,
        };
        let mut session = Session::new(
            source.clone(),
            self.state.clone(),
            self.rules.clone(),
            options,
            self.clock.clone(),
        );
        if let Some(sink) = &self.sink {
            session = session.with_sink(sink.clone());
        }
        let notes = match (&self.model, o.triage) {
            (Some(model), true) => Some(Arc::new(TriageNotes {
                orchestrator: self.clone(),
                model: model.clone(),
                asked: Mutex::default(),
                denied: Mutex::default(),
            })),
            _ => None,
        };
        if let Some(n) = &notes {
            session = session.with_notes(n.clone());
        }
        let r = session.run().await?;
        tracing::info!(
            runs = r.runs,
            lists = r.list_requests,
            writes = r.write_count,
            deferred = r.deferred,
            "monitor invocation done"
        );
        let otlp = self.export_traces(&source, &r.completed).await;
        let triages = notes
            .as_ref()
            .and_then(|n| n.asked.lock().ok().map(|m| m.clone()))
            .unwrap_or_default();
        let denied = notes.as_ref().and_then(|n| n.denied());
        // The ledger keys a problem as the lifecycle does: the incident of its workflow on its
        // branch (the alert's own fingerprint).
        let key_of = |a: &Alert| issue_key(&a.workflow, &a.branch);
        let write_for = |key: &Fingerprint, kind: &str| {
            r.writes
                .iter()
                .rev()
                .find(|w| w.key == *key && w.kind == kind)
        };
        let alerts = r
            .monitor
            .active_alerts()
            .map(|alert| {
                let key = key_of(alert);
                let opened = write_for(&key, "open");
                AlertOutcome {
                    triage: triages.get(&key).cloned(),
                    triage_error: opened.and_then(|w| w.notes_error.clone()),
                    triage_denied: denied.as_ref().is_some_and(|(k, _)| *k == key),
                    issue: opened.and_then(|w| w.action.clone()),
                    issue_error: opened.and_then(|w| w.error.clone()),
                    tracked_in: r.ledger.entries.get(&key).and_then(|e| e.issue),
                    alert: alert.clone(),
                }
            })
            .collect();
        // One line per problem, even when it fired and recovered more than once.
        let mut seen = std::collections::BTreeSet::new();
        let recovered = r
            .recovered
            .iter()
            .rev()
            .filter(|(fp, _)| seen.insert(fp.clone()))
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .map(|(fingerprint, alert)| {
                let closed = alert.as_ref().and_then(|a| {
                    let key = key_of(a);
                    write_for(&key, "close").or_else(|| write_for(&key, "comment"))
                });
                Recovery {
                    fingerprint: fingerprint.clone(),
                    alert: alert.clone(),
                    issue: closed.and_then(|w| w.action.clone()),
                    issue_error: closed.and_then(|w| w.error.clone()),
                }
            })
            .collect();
        Ok(MonitorReport {
            runs: r.runs,
            pages: r.list_requests,
            truncated: r.truncated,
            triage_refused: denied.map(|(_, e)| e),
            from_event: r.from_event,
            branch: r.branch.clone(),
            workflow: r.workflow.clone(),
            writes: r.write_count,
            deferred: r.deferred,
            state: StateInfo {
                store: self.state.describe(),
                revision: r.revision,
                fresh: r.fresh,
            },
            telemetry: Report::from_monitor(&r.monitor, self.clock.now_ms())
                .with_truncated(r.truncated),
            alerts,
            recovered,
            otlp,
            completed: r.completed.clone(),
        })
    }

    /// Exports the traces of `completed` (newest first, at most [`MAX_EXPORTED_RUNS`]) with
    /// their jobs, when an exporter is set.
    async fn export_traces(
        &self,
        source: &Arc<dyn flow_telemetry::RunSource>,
        completed: &[flow_telemetry::Run],
    ) -> Option<OtlpOutcome> {
        let exporter = self.exporter.as_ref()?;
        let mut newest: Vec<&flow_telemetry::Run> = completed.iter().collect();
        newest.sort_by_key(|r| std::cmp::Reverse((r.updated_at, r.id)));
        let left_out = newest.len().saturating_sub(MAX_EXPORTED_RUNS);
        let runs: Vec<flow_telemetry::Run> = newest
            .into_iter()
            .take(MAX_EXPORTED_RUNS)
            .cloned()
            .collect();
        let (with_jobs, jobs_unreadable) =
            flow_telemetry::otlp::with_jobs(source.as_ref(), &runs).await;
        let export = exporter.export(&with_jobs).await;
        tracing::info!(
            exported = export.exported,
            failed = export.failed,
            spans = export.spans,
            "otlp export done"
        );
        Some(OtlpOutcome {
            export,
            jobs_unreadable,
            left_out,
        })
    }

    /// Asks the chat model for a [`Triage`] of `alert` from the jobs of its triggering run.
    ///
    /// # Errors
    /// [`ErrorKind::Missing`](crate::ErrorKind::Missing) without a chat model;
    /// [`ErrorKind::Llm`](crate::ErrorKind::Llm) when the model fails. Failing to read the
    /// jobs is not an error: the prompt says so.
    pub async fn triage_alert(&self, alert: &Alert) -> Result<Triage> {
        self.triage(self.model()?.as_ref(), alert).await
    }

    async fn triage(&self, model: &dyn flow_llm::ChatModel, alert: &Alert) -> Result<Triage> {
        self.triage_with(model, alert).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn issue_actions_read_well() {
        assert_eq!(IssueAction::Opened { number: 4 }.to_string(), "opened #4");
        assert_eq!(
            IssueAction::Commented { number: 4 }.to_string(),
            "commented on #4"
        );
        let json = serde_json::to_value(IssueAction::Closed { number: 2 }).unwrap();
        assert_eq!(json, serde_json::json!({"action": "closed", "number": 2}));
        let json = serde_json::to_value(IssueAction::DryRun {
            description: "would open".into(),
        })
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"action": "dry_run", "description": "would open"})
        );
        let json = serde_json::to_value(IssueAction::Nothing).unwrap();
        assert_eq!(json, serde_json::json!({"action": "nothing"}));
    }
}
