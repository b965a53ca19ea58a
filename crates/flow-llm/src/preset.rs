//! Ready-made typed decisions.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::delegate::{Decision, delegate};
use crate::error::Result;
use crate::model::ChatModel;
use crate::prompt::validate_prompt;
use crate::protocol::{ChatRequest, Message};

/// The system prompt of [`review_issue`].
pub const REVIEW_ISSUE_SYSTEM_PROMPT: &str = "\
You review whether a GitHub issue has been resolved. You receive the issue (title, body and \
discussion) and evidence gathered by an automated workflow (commits, pull requests, test and \
CI results). Decide strictly from the evidence: an issue is fixed only when the evidence shows \
the requested change or fix is in place and verified. Answer with JSON: `fixed` (true or false), \
`message` (one or two sentences for the issue thread, saying what the evidence shows) and \
`refinement` (when not fixed, the concrete next step that would resolve the issue; when fixed, \
an empty string).";

/// Whether a GitHub issue is resolved, a message for its thread, and the next step if not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReviewVerdict {
    /// Whether the evidence shows the issue is resolved.
    pub fixed: bool,
    /// A short message for the issue thread.
    pub message: String,
    /// The next step when it is not fixed; empty when it is.
    pub refinement: String,
}

/// Asks `model` (with its default model) whether `issue` is resolved given `evidence`.
///
/// # Errors
/// [`crate::ErrorKind::InvalidPrompt`] when the issue or the evidence is empty, and the errors
/// of [`delegate`].
pub async fn review_issue(
    model: &(impl ChatModel + ?Sized),
    issue: &str,
    evidence: &str,
) -> Result<Decision<ReviewVerdict>> {
    review_issue_with(model, ChatRequest::new(""), issue, evidence).await
}

/// As [`review_issue`], starting from `base` (model, temperature, deadline, cache TTL...).
///
/// # Errors
/// As [`review_issue`].
pub async fn review_issue_with(
    model: &(impl ChatModel + ?Sized),
    base: ChatRequest,
    issue: &str,
    evidence: &str,
) -> Result<Decision<ReviewVerdict>> {
    validate_prompt(issue).map_err(|e| crate::Error::prompt(format!("issue: {e}")))?;
    validate_prompt(evidence).map_err(|e| crate::Error::prompt(format!("evidence: {e}")))?;
    let request = base
        .message(Message::system(REVIEW_ISSUE_SYSTEM_PROMPT))
        .message(Message::user(format!(
            "## Issue\n\n{issue}\n\n## Evidence\n\n{evidence}"
        )));
    delegate(model, request).await
}
