//! `monitor`: collect runs, compute KPIs, detect anomalies, triage each alert with the LLM
//! (optionally), open or update its issue, and report.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use flow_telemetry::report::Report;
use flow_telemetry::{Alert, Fingerprint, IssueAction, Monitor, Run};
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
    /// Runs collected (distinct id and attempt).
    pub runs: usize,
    /// Pages read from the source.
    pub pages: u32,
    /// True when `max_pages` stopped the reading while the source had more pages: older runs
    /// were not read (also in [`Report::truncated`]). Omitted from JSON when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// flow-telemetry's report: KPIs and trend per workflow over the rules' window, and the
    /// active alerts (its JSON schema, version [`flow_telemetry::report::SCHEMA_VERSION`]).
    pub telemetry: Report,
    /// Alerts active at the end of the history, one per fingerprint, with their triage and
    /// issue.
    pub alerts: Vec<AlertOutcome>,
    /// Problems that fired and recovered within the history.
    pub recovered: Vec<Recovery>,
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
            "\n### Issues and triage\n\n{} runs read in {} page(s){}; {} active alert(s); {} recovered.\n",
            self.runs,
            self.pages,
            if self.truncated {
                " (**truncated** by the page limit: older runs were not read)"
            } else {
                ""
            },
            self.alerts.len(),
            self.recovered.len()
        );
        for a in &self.alerts {
            let _ = writeln!(md, "#### {} ({})\n", a.alert.title(), a.alert.severity);
            match (&a.issue, &a.issue_error) {
                (Some(i), _) => {
                    let _ = writeln!(md, "- issue: {i}");
                }
                (None, Some(e)) => {
                    let _ = writeln!(md, "- issue: **failed**: {e}");
                }
                (None, None) => {
                    let _ = writeln!(md, "- issue: none (no issue sink)");
                }
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

/// Distinct runs in completion order (the order the detectors expect).
fn completion_order(mut runs: Vec<Run>) -> Vec<Run> {
    let mut seen = HashSet::new();
    runs.retain(|r| seen.insert((r.id, r.run_attempt)));
    runs.sort_by_key(|r| {
        (
            r.updated_at.or(r.created_at),
            r.created_at,
            r.id,
            r.run_attempt,
        )
    });
    runs
}

impl Orchestrator {
    /// One monitoring cycle: read up to `max_pages` pages of runs from the run source (when
    /// the limit leaves pages unread, [`MonitorReport::truncated`] says so), feed
    /// them in completion order to flow-telemetry's [`Monitor`], then for each alert still
    /// active at the end: ask the chat model for a [`Triage`] (when enabled and a model is
    /// set; a failure is recorded in [`AlertOutcome::triage_error`] and the issue is raised
    /// anyway), and raise it through the issue sink (which opens an issue or comments on the
    /// open one), with the triage as notes for the issue body or the comment
    /// ([`IssueSink::raise_with_notes`](flow_telemetry::IssueSink::raise_with_notes)). With
    /// `close_on_recovery`, problems that recovered are resolved.
    ///
    /// # Errors
    /// [`ErrorKind::Missing`](crate::ErrorKind::Missing) without a run source;
    /// [`ErrorKind::Telemetry`](crate::ErrorKind::Telemetry) when reading runs fails. Issue
    /// sink and LLM failures do not abort the cycle: they are in the report.
    pub async fn monitor(&self) -> Result<MonitorReport> {
        self.monitor_inner()
            .instrument(tracing::info_span!("flow.monitor"))
            .await
    }

    async fn monitor_inner(&self) -> Result<MonitorReport> {
        let source = self.source.as_ref().ok_or_else(|| {
            Error::missing(
                "run source",
                "set GITHUB_REPOSITORY and GITHUB_TOKEN, or call with_run_source",
            )
        })?;
        let mut query = self.monitor.query.clone();
        let mut runs = Vec::new();
        let mut pages = 0;
        // Whether the last page read pointed at another one.
        let mut more = false;
        while pages < self.monitor.max_pages {
            let page = source.runs(&query).await?;
            pages += 1;
            runs.extend(page.runs);
            more = page.next_page.is_some();
            match page.next_page {
                Some(next) => query = query.with_page(next),
                None => break,
            }
        }
        let runs = completion_order(runs);
        tracing::info!(runs = runs.len(), pages, "collected runs");
        if more {
            tracing::warn!(
                pages,
                max_pages = self.monitor.max_pages,
                "stopped at max_pages: older runs were not read"
            );
        }

        let mut monitor = Monitor::new(self.rules.clone());
        let mut recovered = Vec::new();
        let mut last_fired: HashMap<Fingerprint, Alert> = HashMap::new();
        for run in &runs {
            let obs = monitor.observe(run);
            recovered.extend(obs.recovered);
            for a in obs.alerts {
                last_fired.insert(a.fingerprint.clone(), a);
            }
        }
        let active: Vec<Alert> = monitor.active_alerts().cloned().collect();
        recovered.retain(|fp| !active.iter().any(|a| &a.fingerprint == fp));
        recovered.sort();
        recovered.dedup();

        let mut alerts = Vec::with_capacity(active.len());
        // Once the model refuses the credentials (401/403: no `models: read`, a bad key), the
        // other alerts are not triaged: one error, not one per alert.
        let mut denied = false;
        for alert in active {
            let out = self.handle_alert(alert, !denied).await;
            denied |= out.triage_denied;
            alerts.push(out);
        }
        let mut recoveries = Vec::with_capacity(recovered.len());
        for fingerprint in recovered {
            let mut r = Recovery {
                alert: last_fired.remove(&fingerprint),
                fingerprint,
                issue: None,
                issue_error: None,
            };
            if self.monitor.close_on_recovery
                && let Some(sink) = &self.sink
            {
                match sink.resolve(&r.fingerprint).await {
                    Ok(a) => r.issue = Some(a),
                    Err(e) => r.issue_error = Some(e.to_string()),
                }
            }
            recoveries.push(r);
        }
        Ok(MonitorReport {
            runs: runs.len(),
            pages,
            truncated: more,
            telemetry: Report::from_monitor(&monitor, self.clock.now_ms()).with_truncated(more),
            alerts,
            recovered: recoveries,
        })
    }

    async fn handle_alert(&self, alert: Alert, triage: bool) -> AlertOutcome {
        let mut out = AlertOutcome {
            alert,
            triage: None,
            triage_error: None,
            triage_denied: false,
            issue: None,
            issue_error: None,
        };
        if triage
            && self.monitor.triage
            && let Some(model) = &self.model
        {
            match self.triage(model.as_ref(), &out.alert).await {
                Ok(t) => out.triage = Some(t),
                Err(e) => {
                    tracing::warn!(fingerprint = %out.alert.fingerprint, error = %e, "triage failed; raising the issue without it");
                    out.triage_denied = matches!(
                        e.kind(),
                        crate::ErrorKind::Llm(l) if matches!(l.status(), Some(401 | 403))
                    );
                    out.triage_error = Some(e.to_string());
                }
            }
        }
        if let Some(sink) = &self.sink {
            // The triage goes into the new issue's body or the recurrence comment.
            let raised = match &out.triage {
                Some(t) => sink.raise_with_notes(&out.alert, &t.to_markdown()).await,
                None => sink.raise(&out.alert).await,
            };
            match raised {
                Ok(a) => out.issue = Some(a),
                Err(e) => {
                    tracing::error!(fingerprint = %out.alert.fingerprint, error = %e, "raising the issue failed");
                    out.issue_error = Some(e.to_string());
                }
            }
        }
        out
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
    use flow_telemetry::RunId;

    fn run(id: u64, attempt: u32, done: i64) -> Run {
        Run {
            id: RunId(id),
            run_attempt: attempt,
            created_at: Some(0),
            updated_at: Some(done),
            ..Run::default()
        }
    }

    #[test]
    fn runs_are_deduplicated_and_put_in_completion_order() {
        // Pages may overlap when runs arrive while listing; re-runs are distinct attempts.
        let runs = vec![
            run(3, 1, 30),
            run(1, 1, 50),
            run(2, 1, 10),
            run(1, 1, 50),
            run(1, 2, 70),
        ];
        let order: Vec<(u64, u32)> = completion_order(runs)
            .iter()
            .map(|r| (r.id.0, r.run_attempt))
            .collect();
        assert_eq!(order, [(2, 1), (3, 1), (1, 1), (1, 2)]);
    }

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
