//! One GitHub issue per incident fingerprint (a workflow on a branch).
//!
//! The open issue of a fingerprint is found by label plus a hidden marker in its body
//! (`<!-- flow-telemetry:fingerprint=… -->`); the search filters on the first label. A
//! recurrence comments on it; a recovery comments and closes it (when enabled). A new issue gets
//! every label, and each label is created when missing. Two monitors racing on the
//! same alert converge on one open issue: check, create, re-check, and close every duplicate
//! but the oldest.

use std::sync::atomic::{AtomicBool, Ordering};

use http::Method;
use serde_json::json;

use super::{IssueAction, IssueSink};
use crate::alert::{Alert, Fingerprint};
use crate::error::{ErrorKind, Result};
use crate::github::GitHubClient;
use crate::model::ts;

/// The hidden marker that identifies an issue's fingerprint.
pub fn marker(fp: &Fingerprint) -> String {
    format!("<!-- flow-telemetry:fingerprint={fp} -->")
}

/// The issue sink.
#[derive(Debug)]
pub struct GitHubIssueSink {
    client: GitHubClient,
    /// Never empty: the first finds open issues, all are put on new ones.
    labels: Vec<String>,
    close_on_recovery: bool,
    label_ready: AtomicBool,
}

impl GitHubIssueSink {
    /// A sink labelling issues `flow-telemetry` and closing them on recovery.
    pub fn new(client: GitHubClient) -> Self {
        Self {
            client,
            labels: vec!["flow-telemetry".into()],
            close_on_recovery: true,
            label_ready: AtomicBool::new(false),
        }
    }

    /// Uses `label` instead of `flow-telemetry`.
    #[must_use]
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.labels = vec![label.into()];
        self
    }

    /// Uses `labels` instead of `flow-telemetry`: the first one finds the open issue of a
    /// fingerprint, all of them are put on a new issue, and each is created when missing.
    /// Duplicates are dropped; an empty list leaves the labels unchanged.
    #[must_use]
    pub fn with_labels(mut self, labels: impl IntoIterator<Item = impl Into<String>>) -> Self {
        let mut all: Vec<String> = Vec::new();
        for l in labels {
            let l = l.into();
            if !all.contains(&l) {
                all.push(l);
            }
        }
        if !all.is_empty() {
            self.labels = all;
        }
        self
    }

    /// The labels put on new issues; the first finds the open ones.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    fn search_label(&self) -> &str {
        self.labels.first().map_or("flow-telemetry", String::as_str)
    }

    /// Whether a recovery closes the issue (default true).
    #[must_use]
    pub fn with_close_on_recovery(mut self, on: bool) -> Self {
        self.close_on_recovery = on;
        self
    }

    fn issues_path(&self) -> String {
        format!("{}/issues", self.client.repo_path())
    }

    /// Numbers of the open issues carrying `fp`'s marker, oldest first.
    ///
    /// # Errors
    /// HTTP, transport or parse failures.
    pub async fn find_open(&self, fp: &Fingerprint) -> Result<Vec<u64>> {
        let mark = marker(fp);
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("state", "open")
            .append_pair("labels", self.search_label())
            .append_pair("per_page", "100")
            .finish();
        let uri = format!("{}?{query}", self.issues_path());
        let mut pages = self.client.pages(&uri, 20);
        let mut found = Vec::new();
        while let Some(a) = pages.next().await? {
            let items: Vec<serde_json::Value> = serde_json::from_slice(a.body())
                .map_err(|e| crate::Error::parse("list issues response", e))?;
            for it in &items {
                let is_pr = it.get("pull_request").is_some_and(|p| !p.is_null());
                let body = it.get("body").and_then(|b| b.as_str()).unwrap_or("");
                if !is_pr
                    && body.contains(&mark)
                    && let Some(n) = it.get("number").and_then(serde_json::Value::as_u64)
                {
                    found.push(n);
                }
            }
        }
        found.sort_unstable();
        found.dedup();
        Ok(found)
    }

    async fn ensure_labels(&self) -> Result<()> {
        if self.label_ready.load(Ordering::Relaxed) {
            return Ok(());
        }
        for label in &self.labels {
            self.ensure_label(label).await?;
        }
        self.label_ready.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Creates `label` when missing; a 422 on creation means another monitor just created it.
    async fn ensure_label(&self, label: &str) -> Result<()> {
        let encoded: String = url::form_urlencoded::byte_serialize(label.as_bytes()).collect();
        let uri = format!(
            "{}/labels/{}",
            self.client.repo_path(),
            encoded.replace('+', "%20")
        );
        match self.client.get(&uri).await {
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::Http { status: 404, .. }) => {
                let body = json!({
                    "name": label,
                    "color": "d93f0b",
                    "description": "Opened by flow-telemetry when a workflow misbehaves"
                });
                match self
                    .client
                    .write(
                        Method::POST,
                        &format!("{}/labels", self.client.repo_path()),
                        &body,
                    )
                    .await
                {
                    Ok(_) => {}
                    // Another monitor created it meanwhile.
                    Err(e) if matches!(e.kind(), ErrorKind::Http { status: 422, .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    async fn comment(&self, number: u64, body: String) -> Result<()> {
        let uri = format!("{}/{number}/comments", self.issues_path());
        self.client
            .write(Method::POST, &uri, &json!({ "body": body }))
            .await
            .map(|_| ())
    }

    async fn close(&self, number: u64, reason: &str) -> Result<()> {
        let uri = format!("{}/{number}", self.issues_path());
        self.client
            .write(
                Method::PATCH,
                &uri,
                &json!({ "state": "closed", "state_reason": reason }),
            )
            .await
            .map(|_| ())
    }

    /// Creates the issue of `alert` (labels first) and returns its number.
    async fn create(&self, alert: &Alert, notes: &str) -> Result<u64> {
        self.ensure_labels().await?;
        let created = self
            .client
            .write(
                Method::POST,
                &self.issues_path(),
                &json!({ "title": alert.title(), "body": issue_body_with_notes(alert, notes), "labels": self.labels }),
            )
            .await?;
        serde_json::from_slice::<serde_json::Value>(created.body())
            .ok()
            .and_then(|v| v.get("number").and_then(serde_json::Value::as_u64))
            .ok_or_else(|| crate::Error::parse("create issue response", "expected a `number`"))
    }

    /// Posts `text` on `number` unless a comment already carries its hidden note marker.
    async fn comment_once(&self, number: u64, text: &str) -> Result<bool> {
        if let Some(mark) = note_of(text) {
            let uri = format!("{}/{number}/comments?per_page=100", self.issues_path());
            let mut pages = self.client.pages(&uri, 30);
            while let Some(a) = pages.next().await? {
                let items: Vec<serde_json::Value> = serde_json::from_slice(a.body())
                    .map_err(|e| crate::Error::parse("list issue comments response", e))?;
                if items.iter().any(|c| {
                    c.get("body")
                        .and_then(|b| b.as_str())
                        .is_some_and(|b| b.contains(mark))
                }) {
                    return Ok(false);
                }
            }
        }
        self.comment(number, text.to_owned()).await?;
        Ok(true)
    }

    async fn close_duplicates(&self, keep: u64, all: &[u64]) -> Result<()> {
        for &n in all.iter().filter(|n| **n != keep) {
            self.comment(
                n,
                format!(
                    "Duplicate of #{keep}: another monitor raised the same alert at the same time."
                ),
            )
            .await?;
            self.close(n, "not_planned").await?;
        }
        Ok(())
    }
}

/// The hidden note marker in a comment's text, if any.
fn note_of(text: &str) -> Option<&str> {
    let start = text.find("<!-- flow-telemetry:note=")?;
    let end = text[start..].find("-->")? + start + 3;
    Some(&text[start..end])
}

/// The signals of `alert` as table rows, one per signal (the opening evidence when it lists
/// none).
fn signal_rows(alert: &Alert) -> String {
    let row = |kind: &str, sev: &str, e: &crate::alert::Evidence, state: &str| {
        format!(
            "| `{kind}` | {sev} | {} | {:.3} | {:.3} | {:.3} | {} | {state} |\n",
            e.metric,
            e.value,
            e.baseline,
            e.threshold,
            e.score
                .map_or_else(|| "–".to_string(), |s| format!("{s:.2}")),
        )
    };
    let mut s = String::from(
        "| signal | severity | metric | value | baseline | threshold | score | state |\n|---|---|---|---|---|---|---|---|\n",
    );
    if alert.signals.is_empty() {
        s.push_str(&row(
            alert.kind.as_str(),
            &alert.severity.to_string(),
            &alert.evidence,
            "active",
        ));
    }
    for sig in &alert.signals {
        s.push_str(&row(
            sig.kind.as_str(),
            &sig.severity.to_string(),
            &sig.evidence,
            if sig.recovered { "recovered" } else { "active" },
        ));
    }
    s
}

/// One line per signal: its plain-sentence explanation.
fn explanations(alert: &Alert) -> String {
    alert
        .signals
        .iter()
        .map(|s| {
            format!(
                "- **{}** ({}): {}\n",
                s.kind,
                ts::format_ms(s.at_ms),
                s.explanation
            )
        })
        .collect()
}

/// The issue body for `alert` (an incident), with its marker: every signal, with why it is
/// unlikely under the workflow's baseline.
pub fn issue_body(alert: &Alert) -> String {
    let branch = if alert.branch.is_empty() {
        String::new()
    } else {
        format!("**Branch:** {}  \n", alert.branch)
    };
    let kinds: Vec<String> = alert.kinds().iter().map(|k| format!("`{k}`")).collect();
    let mut s = format!(
        "{}\n\n**Workflow:** {}  \n{branch}**Signals:** {} ({})  \n**Since:** {}\n\n{}\n\n",
        marker(&alert.fingerprint),
        alert.workflow,
        kinds.join(", "),
        alert.severity,
        ts::format_ms(alert.at_ms),
        alert.summary,
    );
    let why = explanations(alert);
    if !why.is_empty() {
        s.push_str(&why);
        s.push('\n');
    }
    s.push_str(&signal_rows(alert));
    let mut runs: Vec<&String> = Vec::new();
    for r in alert
        .evidence
        .runs
        .iter()
        .chain(alert.signals.iter().flat_map(|s| s.evidence.runs.iter()))
    {
        if !runs.contains(&r) {
            runs.push(r);
        }
    }
    if !runs.is_empty() {
        s.push_str("\nRuns:\n");
        for r in runs {
            s.push_str(&format!("- {r}\n"));
        }
    }
    s.push_str("\n_Opened by flow-telemetry: one issue per incident of a workflow on a branch. It comments when the incident gains a signal and closes this issue when every signal has recovered._\n");
    s
}

fn recurrence_comment(alert: &Alert, notes: &str) -> String {
    let latest = alert
        .signals
        .iter()
        .map(|s| s.at_ms)
        .max()
        .unwrap_or(alert.at_ms);
    let mut s = format!(
        "Seen again at {}: {}\n\n{}",
        ts::format_ms(latest),
        alert.summary,
        explanations(alert)
    );
    if alert.signals.is_empty() {
        let runs: Vec<String> = alert
            .evidence
            .runs
            .iter()
            .map(|r| format!("- {r}"))
            .collect();
        s.push_str(&runs.join("\n"));
    }
    if !notes.trim().is_empty() {
        s.push_str("\n\n");
        s.push_str(notes.trim());
        s.push('\n');
    }
    s
}

/// The issue body for `alert` followed by `notes` (Markdown), when there are any.
pub fn issue_body_with_notes(alert: &Alert, notes: &str) -> String {
    let mut body = issue_body(alert);
    if !notes.trim().is_empty() {
        body.push('\n');
        body.push_str(notes.trim());
        body.push('\n');
    }
    body
}

#[async_trait::async_trait]
impl IssueSink for GitHubIssueSink {
    async fn raise(&self, alert: &Alert) -> Result<IssueAction> {
        self.raise_with_notes(alert, "").await
    }

    async fn raise_with_notes(&self, alert: &Alert, notes: &str) -> Result<IssueAction> {
        let open = self.find_open(&alert.fingerprint).await?;
        if let Some(&keep) = open.first() {
            self.comment(keep, recurrence_comment(alert, notes)).await?;
            self.close_duplicates(keep, &open).await?;
            return Ok(IssueAction::Commented { number: keep });
        }
        let number = self.create(alert, notes).await?;
        // Re-check: a monitor racing with us may have opened one too. The oldest wins.
        let mut open = self.find_open(&alert.fingerprint).await?;
        if !open.contains(&number) {
            open.push(number);
            open.sort_unstable();
        }
        let keep = open[0];
        self.close_duplicates(keep, &open).await?;
        if keep == number {
            Ok(IssueAction::Opened { number })
        } else {
            self.comment(keep, recurrence_comment(alert, notes)).await?;
            Ok(IssueAction::Commented { number: keep })
        }
    }

    async fn open(&self, alert: &Alert, notes: &str) -> Result<IssueAction> {
        let open = self.find_open(&alert.fingerprint).await?;
        if let Some(&keep) = open.first() {
            // Opened by an earlier attempt that did not live to record it: adopt it.
            self.close_duplicates(keep, &open).await?;
            return Ok(IssueAction::Opened { number: keep });
        }
        let number = self.create(alert, notes).await?;
        Ok(IssueAction::Opened { number })
    }

    async fn comment(
        &self,
        _fingerprint: &Fingerprint,
        number: u64,
        text: &str,
    ) -> Result<IssueAction> {
        if self.comment_once(number, text).await? {
            Ok(IssueAction::Commented { number })
        } else {
            Ok(IssueAction::Nothing)
        }
    }

    async fn close(
        &self,
        _fingerprint: &Fingerprint,
        number: u64,
        text: &str,
    ) -> Result<IssueAction> {
        self.comment_once(number, text).await?;
        self.close(number, "completed").await?;
        Ok(IssueAction::Closed { number })
    }

    async fn resolve(&self, fingerprint: &Fingerprint) -> Result<IssueAction> {
        if !self.close_on_recovery {
            return Ok(IssueAction::Nothing);
        }
        let open = self.find_open(fingerprint).await?;
        let Some(&first) = open.first() else {
            return Ok(IssueAction::Nothing);
        };
        for &n in &open {
            self.comment(
                n,
                "Recovered: the workflow is back within its baseline. Closing.".into(),
            )
            .await?;
            self.close(n, "completed").await?;
        }
        Ok(IssueAction::Closed { number: first })
    }
}
