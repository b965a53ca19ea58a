//! Validation of action metadata: every finding names where (`runs.steps[2].run`) and what was
//! expected.
//!
//! Errors: a required field is missing, a branding value is not allowed, an input or output id
//! is not one GitHub accepts, a composite `run:` step has no `shell`, a `run:` body expands
//! `${{ inputs.* }}` or `${{ github.event.* }}` (script injection: pass them through `env:`),
//! an output refers to a step id that does not exist. Warnings: a `uses:` not pinned to a full
//! 40-hex commit SHA.

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::branding::{is_branding_color, is_branding_icon};
use crate::error::{Error, ErrorKind, Result};
use crate::metadata::{ActionMetadata, Runs, Step};

/// How serious a finding is: errors make [`Validation::into_result`] fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The metadata is wrong or unsafe.
    Error,
    /// Allowed but risky (e.g. an unpinned `uses:`).
    Warning,
}

/// One problem found, with its location in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// Where, as a path into the YAML: `inputs.api-key`, `runs.steps[2].run`.
    pub path: String,
    /// What was expected.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{level}: {}: {}", self.path, self.message)
    }
}

/// All findings of one validation run, in file order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Validation {
    /// Every finding.
    pub findings: Vec<Finding>,
}

impl Validation {
    /// The error-level findings.
    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
    }

    /// The warning-level findings.
    pub fn warnings(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
    }

    /// Whether there is no error (warnings allowed).
    #[must_use]
    pub fn is_ok(&self) -> bool {
        self.errors().next().is_none()
    }

    /// The warnings if there is no error.
    ///
    /// # Errors
    /// [`ErrorKind::Invalid`] listing every error-level finding.
    pub fn into_result(self) -> Result<Vec<Finding>> {
        if self.is_ok() {
            Ok(self.findings)
        } else {
            Err(Error::new(ErrorKind::Invalid {
                findings: self.errors().cloned().collect(),
            }))
        }
    }

    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.findings.push(Finding {
            severity: Severity::Error,
            path: path.into(),
            message: message.into(),
        });
    }

    fn warning(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.findings.push(Finding {
            severity: Severity::Warning,
            path: path.into(),
            message: message.into(),
        });
    }
}

impl ActionMetadata {
    /// Checks the metadata against GitHub's rules and this crate's safety rules.
    #[must_use]
    pub fn validate(&self) -> Validation {
        let mut v = Validation::default();
        if self.name.trim().is_empty() {
            v.error("name", "required: expected a non-empty string");
        }
        if self.description.trim().is_empty() {
            v.error("description", "required: expected a non-empty string");
        }
        for (id, input) in &self.inputs {
            let path = format!("inputs.{id}");
            if !is_valid_id(id) {
                v.error(
                    &path,
                    format!("invalid input id `{id}`: expected letters, digits, `-` or `_`, starting with a letter or `_`"),
                );
            }
            if input.description.trim().is_empty() {
                v.error(
                    format!("{path}.description"),
                    "required: expected a non-empty string",
                );
            }
        }
        let step_ids: HashSet<&str> = self
            .steps()
            .iter()
            .filter_map(|s| s.id.as_deref())
            .collect();
        let composite = matches!(self.runs, Some(Runs::Composite(_)));
        for (id, output) in &self.outputs {
            let path = format!("outputs.{id}");
            if !is_valid_id(id) {
                v.error(
                    &path,
                    format!("invalid output id `{id}`: expected letters, digits, `-` or `_`, starting with a letter or `_`"),
                );
            }
            match &output.value {
                None if composite => v.error(
                    format!("{path}.value"),
                    "required in a composite action: expected an expression such as `${{ steps.<id>.outputs.<name> }}`",
                ),
                None => {}
                Some(value) => {
                    for step in referenced_steps(value) {
                        if !step_ids.contains(step.as_str()) {
                            v.error(
                                format!("{path}.value"),
                                format!("refers to step `{step}`, but no step has `id: {step}`"),
                            );
                        }
                    }
                }
            }
        }
        match &self.runs {
            None => v.error("runs", "required: expected a mapping with `using`"),
            Some(Runs::Composite(c)) => validate_steps(&c.steps, &mut v),
            Some(Runs::Node(n)) => {
                if n.main.trim().is_empty() {
                    v.error(
                        "runs.main",
                        "required for a node action: expected the entry script path",
                    );
                }
            }
            Some(Runs::Docker(d)) => {
                if d.image.trim().is_empty() {
                    v.error(
                        "runs.image",
                        "required for a docker action: expected `Dockerfile` or `docker://image`",
                    );
                }
            }
        }
        if let Some(branding) = &self.branding {
            if let Some(color) = &branding.color
                && !is_branding_color(color)
            {
                v.error(
                    "branding.color",
                    format!(
                        "`{color}` is not allowed: expected one of {}",
                        crate::BRANDING_COLORS.join(", ")
                    ),
                );
            }
            if let Some(icon) = &branding.icon
                && !is_branding_icon(icon)
            {
                v.error(
                    "branding.icon",
                    format!("`{icon}` is not allowed: expected a Feather icon from GitHub's supported list (see flow_publish::BRANDING_ICONS)"),
                );
            }
        }
        v
    }
}

fn validate_steps(steps: &[Step], v: &mut Validation) {
    if steps.is_empty() {
        v.error(
            "runs.steps",
            "required for a composite action: expected at least one step",
        );
    }
    let mut seen = HashSet::new();
    for (i, step) in steps.iter().enumerate() {
        let path = format!("runs.steps[{i}]");
        if let Some(id) = &step.id {
            if !is_valid_id(id) {
                v.error(
                    format!("{path}.id"),
                    format!("invalid step id `{id}`: expected letters, digits, `-` or `_`, starting with a letter or `_`"),
                );
            }
            if !seen.insert(id.as_str()) {
                v.error(
                    format!("{path}.id"),
                    format!("duplicate step id `{id}`: expected ids to be unique"),
                );
            }
        }
        match (&step.run, &step.uses) {
            (Some(_), Some(_)) => v.error(&path, "expected either `run` or `uses`, found both"),
            (None, None) => v.error(&path, "expected `run` or `uses`, found neither"),
            (Some(script), None) => {
                if step.shell.as_deref().is_none_or(|s| s.trim().is_empty()) {
                    v.error(
                        format!("{path}.shell"),
                        "required for a `run` step in a composite action: expected e.g. `bash`",
                    );
                }
                for expr in injected_expressions(script) {
                    v.error(
                        format!("{path}.run"),
                        format!("`${{{{ {expr} }}}}` expands untrusted text into the script (script injection): pass it through `env:` and use the variable instead"),
                    );
                }
            }
            (None, Some(uses)) => {
                if let Some(problem) = unpinned(uses) {
                    v.warning(format!("{path}.uses"), problem);
                }
            }
        }
    }
}

/// Whether `id` is an input/output/step id GitHub accepts: starts with a letter or `_`, then
/// letters, digits, `-` or `_`.
#[must_use]
pub fn is_valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The contents of every `${{ ... }}` in `text`, trimmed.
fn expressions(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        let after = &rest[start + 3..];
        let Some(end) = after.find("}}") else { break };
        out.push(after[..end].trim());
        rest = &after[end + 2..];
    }
    out
}

/// Whether `expr` mentions the context path `context` (e.g. `inputs`, `github.event`) as a whole
/// word followed by `.` or `[`.
fn mentions(expr: &str, context: &str) -> bool {
    let bytes = expr.as_bytes();
    let mut from = 0;
    while let Some(pos) = expr[from..].find(context) {
        let at = from + pos;
        let before_ok = at == 0 || {
            let b = bytes[at - 1];
            !(b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        };
        let after = bytes.get(at + context.len());
        if before_ok && matches!(after, Some(b'.' | b'[')) {
            return true;
        }
        from = at + context.len();
    }
    false
}

/// The `${{ }}` expressions of a `run:` body that expand untrusted input: `inputs.*`,
/// `github.event.*` and `github.head_ref` (a branch name an attacker chooses).
#[must_use]
pub fn injected_expressions(script: &str) -> Vec<&str> {
    expressions(script)
        .into_iter()
        .filter(|e| {
            mentions(e, "inputs") || mentions(e, "github.event") || e.contains("github.head_ref")
        })
        .collect()
}

/// The step ids that `steps.<id>.outputs` expressions in `value` refer to.
fn referenced_steps(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    for expr in expressions(value) {
        let mut rest = expr;
        while let Some(pos) = rest.find("steps.") {
            let before_ok = pos == 0 || {
                let b = rest.as_bytes()[pos - 1];
                !(b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
            };
            let tail = &rest[pos + "steps.".len()..];
            let id: String = tail
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect();
            if before_ok && !id.is_empty() {
                out.push(id.clone());
            }
            rest = &tail[id.len()..];
        }
    }
    out
}

/// Why a `uses:` reference is not pinned, or `None` when it is (or is local).
fn unpinned(uses: &str) -> Option<String> {
    if uses.starts_with("./") {
        return None;
    }
    if let Some(image) = uses.strip_prefix("docker://") {
        return if image.contains("@sha256:") {
            None
        } else {
            Some(format!(
                "`{uses}` is not pinned: expected a digest, `docker://image@sha256:<64 hex>`"
            ))
        };
    }
    match uses.rsplit_once('@') {
        Some((_, git_ref))
            if git_ref.len() == 40 && git_ref.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            None
        }
        Some((action, git_ref)) => Some(format!(
            "`{uses}` is pinned to `{git_ref}`, a movable ref: expected a full 40-hex commit SHA (`{action}@<sha> # {git_ref}`)"
        )),
        None => Some(format!(
            "`{uses}` has no ref: expected `owner/repo@<40-hex commit sha>`"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_githubs_rule() {
        for ok in ["a", "_x", "api-key", "A_1-b"] {
            assert!(is_valid_id(ok), "{ok}");
        }
        for bad in ["", "1a", "-a", "a b", "a.b", "é"] {
            assert!(!is_valid_id(bad), "{bad}");
        }
    }

    #[test]
    fn injection_detection_is_word_bounded() {
        assert_eq!(
            injected_expressions("echo ${{ inputs.name }}"),
            ["inputs.name"]
        );
        assert_eq!(
            injected_expressions("x ${{github.event.issue.title}}"),
            ["github.event.issue.title"]
        );
        assert_eq!(
            injected_expressions("x ${{ inputs['a b'] }}"),
            ["inputs['a b']"]
        );
        assert!(injected_expressions("echo \"$INPUT_NAME\" ${{ github.action_path }}").is_empty());
        assert!(injected_expressions("${{ steps.x.outputs.inputs_count }}").is_empty());
        assert!(injected_expressions("${{ github.event_name }}").is_empty());
        assert_eq!(
            injected_expressions("git checkout ${{ github.head_ref }}").len(),
            1
        );
        assert_eq!(
            injected_expressions("${{ format('{0}', inputs.x) }}").len(),
            1
        );
    }

    #[test]
    fn pinning() {
        assert!(unpinned("actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683").is_none());
        assert!(unpinned("./local").is_none());
        assert!(unpinned("actions/checkout@v4").is_some());
        assert!(unpinned("actions/checkout").is_some());
        assert!(unpinned("docker://alpine:3").is_some());
    }

    #[test]
    fn referenced_steps_are_found() {
        assert_eq!(referenced_steps("${{ steps.run.outputs.a }}"), ["run"]);
        assert_eq!(
            referenced_steps("${{ steps.a-1.outputs.x || steps.b.outputs.y }} steps.c"),
            ["a-1", "b"]
        );
    }
}
