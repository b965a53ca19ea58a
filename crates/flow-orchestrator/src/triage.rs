//! The typed triage of an alert: the one place where telemetry meets the LLM.

use std::fmt::Write as _;

use flow_telemetry::{Alert, Conclusion, Job};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The system prompt of the triage request.
pub const TRIAGE_SYSTEM_PROMPT: &str = "\
You triage problems in GitHub Actions workflows for the maintainers. You receive an alert raised \
by an automated monitor (what was measured, against which baseline) and the jobs and steps of \
the run that triggered it, failing ones first. Reason only from that evidence. Answer with JSON: \
`likely_cause` (one or two sentences naming the failing job and step and what most likely broke) \
and `suggested_next_step` (one concrete action a maintainer can take now).";

/// At most this many jobs go into the prompt, failing ones first.
const MAX_JOBS: usize = 20;

/// The LLM's triage of one alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Triage {
    /// The most likely cause, from the failing jobs and steps.
    pub likely_cause: String,
    /// One concrete next step for a maintainer.
    pub suggested_next_step: String,
}

impl Triage {
    /// The triage as a Markdown section (for an issue body or a step summary).
    pub fn to_markdown(&self) -> String {
        format!(
            "### Triage (LLM)\n\n**Likely cause:** {}\n\n**Suggested next step:** {}\n",
            self.likely_cause.trim(),
            self.suggested_next_step.trim()
        )
    }
}

fn failed(c: Option<Conclusion>) -> bool {
    matches!(
        c,
        Some(Conclusion::Failure | Conclusion::TimedOut | Conclusion::StartupFailure)
    )
}

/// The user message of the triage request: the alert, then the run's jobs (failing first,
/// with their failing steps), or a note when they could not be read.
pub fn triage_prompt(alert: &Alert, jobs: Result<&[Job], &str>) -> String {
    let e = &alert.evidence;
    let mut p = String::new();
    let _ = writeln!(p, "## Alert\n\n{}", alert.title());
    let _ = writeln!(
        p,
        "- kind: {} ({})\n- metric: {} = {} (baseline {}, threshold {})\n- triggering run id: {}",
        alert.kind, alert.severity, e.metric, e.value, e.baseline, e.threshold, alert.run_id
    );
    for url in &e.runs {
        let _ = writeln!(p, "- run: {url}");
    }
    let _ = writeln!(p, "\n## Jobs of the triggering run\n");
    match jobs {
        Err(why) => {
            let _ = writeln!(p, "The jobs could not be read: {why}");
        }
        Ok([]) => {
            let _ = writeln!(p, "The run has no jobs.");
        }
        Ok(jobs) => {
            let mut sorted: Vec<&Job> = jobs.iter().collect();
            sorted.sort_by_key(|j| !failed(j.conclusion));
            for job in sorted.into_iter().take(MAX_JOBS) {
                let conclusion = job.conclusion.map_or("unfinished", |c| c.as_str());
                let _ = write!(p, "- job `{}`: {conclusion}", job.name);
                if let Some(ms) = job.duration_ms() {
                    let _ = write!(p, " after {}s", ms / 1000);
                }
                if job.is_runner_error() {
                    let _ = write!(p, " (no step failed: the runner was lost or never started)");
                }
                let _ = writeln!(p);
                for step in job.steps.iter().filter(|s| failed(s.conclusion)) {
                    let _ = writeln!(
                        p,
                        "  - step {} `{}`: {}",
                        step.number,
                        step.name,
                        step.conclusion.map_or("unfinished", |c| c.as_str())
                    );
                }
            }
            if jobs.len() > MAX_JOBS {
                let _ = writeln!(p, "- ... and {} more jobs", jobs.len() - MAX_JOBS);
            }
        }
    }
    p
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use flow_telemetry::{AlertKind, Evidence, Fingerprint, Severity, Step};

    pub(crate) fn alert() -> Alert {
        Alert {
            fingerprint: Fingerprint::incident("CI", "main"),
            workflow: "CI".into(),
            branch: "main".into(),
            signals: vec![],
            kind: AlertKind::ConsecutiveFailures,
            severity: Severity::Critical,
            summary: "3 consecutive failed runs".into(),
            evidence: Evidence {
                metric: "consecutive_failures".into(),
                value: 3.0,
                baseline: 0.0,
                threshold: 3.0,
                score: None,
                runs: vec!["https://github.com/o/r/actions/runs/7".into()],
            },
            run_id: 7,
            at_ms: 0,
        }
    }

    #[test]
    fn prompt_lists_failing_jobs_and_steps_first() {
        let ok = Job {
            name: "lint".into(),
            conclusion: Some(Conclusion::Success),
            ..Job::default()
        };
        let bad = Job {
            name: "test".into(),
            conclusion: Some(Conclusion::Failure),
            steps: vec![
                Step {
                    name: "checkout".into(),
                    number: 1,
                    conclusion: Some(Conclusion::Success),
                    ..Step::default()
                },
                Step {
                    name: "cargo test".into(),
                    number: 2,
                    conclusion: Some(Conclusion::Failure),
                    ..Step::default()
                },
            ],
            ..Job::default()
        };
        let p = triage_prompt(&alert(), Ok(&[ok, bad]));
        let test = p.find("job `test`: failure").unwrap();
        assert!(test < p.find("job `lint`: success").unwrap(), "{p}");
        assert!(p.contains("step 2 `cargo test`: failure"), "{p}");
        assert!(!p.contains("checkout"), "{p}");
        assert!(p.contains("consecutive_failures = 3"), "{p}");
        assert!(p.contains("actions/runs/7"), "{p}");

        let p = triage_prompt(&alert(), Err("403 rate limited"));
        assert!(p.contains("could not be read: 403 rate limited"), "{p}");
    }

    #[test]
    fn markdown_names_both_parts() {
        let t = Triage {
            likely_cause: "the cache step".into(),
            suggested_next_step: "pin the toolchain".into(),
        };
        let md = t.to_markdown();
        assert!(md.contains("**Likely cause:** the cache step"));
        assert!(md.contains("**Suggested next step:** pin the toolchain"));
    }
}
