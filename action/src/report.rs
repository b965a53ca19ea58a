//! What a subcommand hands back, and how each mode presents it.

use std::io::Write;
use std::path::PathBuf;

use crate::gha::{self, Annotation};

/// The result of one subcommand, in every shape a mode may need.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Human-readable text for the terminal (ends with a newline).
    pub text: String,
    /// Machine output: printed with `--json` and set as the `json` action output.
    pub json: serde_json::Value,
    /// Action outputs besides `json`, in order.
    pub outputs: Vec<(String, String)>,
    /// Markdown for the step summary.
    pub summary: Option<String>,
    /// Annotations (printed as workflow commands in Actions mode, as text otherwise).
    pub annotations: Vec<Annotation>,
    /// Set when the subcommand ran but did not fully succeed: everything above is still
    /// presented, then this is reported as the failure (exit code 1).
    pub failure: Option<String>,
}

/// Where a mode writes.
#[derive(Debug, Clone, Default)]
pub struct Sinks {
    /// `GITHUB_OUTPUT`, when set.
    pub output_file: Option<PathBuf>,
    /// `GITHUB_STEP_SUMMARY`, when set.
    pub summary_file: Option<PathBuf>,
}

impl Sinks {
    /// The sinks the runner names in the environment.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let path = |k| lookup(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        Self {
            output_file: path(gha::GITHUB_OUTPUT),
            summary_file: path(gha::GITHUB_STEP_SUMMARY),
        }
    }
}

/// How to present an [`Outcome`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A person at a terminal.
    Terminal,
    /// A GitHub Actions step.
    Actions,
}

/// Presents `outcome` on `stdout` (and the runner's files in Actions mode); `title` names the
/// log group the text folds into in Actions mode.
///
/// # Errors
/// When stdout or a runner file cannot be written.
pub fn present(
    title: &str,
    outcome: &Outcome,
    mode: Mode,
    json: bool,
    sinks: &Sinks,
    stdout: &mut dyn Write,
) -> anyhow::Result<()> {
    let machine = serde_json::to_string_pretty(&outcome.json)?;
    // In a step the report folds into a group; annotations stay outside it, where they show.
    let grouped = mode == Mode::Actions && !json && !outcome.text.is_empty();
    if grouped {
        writeln!(stdout, "{}", gha::group(title))?;
    }
    if json {
        writeln!(stdout, "{machine}")?;
    } else {
        stdout.write_all(outcome.text.as_bytes())?;
        if !outcome.text.is_empty() && !outcome.text.ends_with('\n') {
            writeln!(stdout)?;
        }
    }
    if grouped {
        writeln!(stdout, "{}", gha::endgroup())?;
    }
    match mode {
        Mode::Terminal => {
            if !json {
                for a in &outcome.annotations {
                    writeln!(stdout, "{}: {}", level_word(a), a.message)?;
                }
            }
        }
        Mode::Actions => {
            for a in &outcome.annotations {
                writeln!(stdout, "{a}")?;
            }
            if let Some(path) = &sinks.output_file {
                for (name, value) in &outcome.outputs {
                    gha::write_output(path, name, value)?;
                }
                gha::write_output(path, "json", &serde_json::to_string(&outcome.json)?)?;
            } else {
                tracing::warn!("GITHUB_OUTPUT is not set: the step's outputs are not recorded");
            }
            if let (Some(path), Some(md)) = (&sinks.summary_file, &outcome.summary) {
                gha::append_summary(path, md)?;
            }
        }
    }
    stdout.flush()?;
    Ok(())
}

fn level_word(a: &Annotation) -> &'static str {
    match a.level {
        gha::Level::Error => "error",
        gha::Level::Warning => "warning",
        gha::Level::Notice => "notice",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::gha::Level;

    fn outcome() -> Outcome {
        Outcome {
            text: "2 alerts\n".into(),
            json: serde_json::json!({"alerts": 2}),
            outputs: vec![("alerts".into(), "2".into())],
            summary: Some("# Report\n".into()),
            annotations: vec![
                Annotation::new(Level::Warning, "failure rate 40%")
                    .with_location(".github/workflows/ci.yml", 1),
            ],
            failure: None,
        }
    }

    #[test]
    fn terminal_text_and_json() {
        let mut out = Vec::new();
        present(
            "t",
            &outcome(),
            Mode::Terminal,
            false,
            &Sinks::default(),
            &mut out,
        )
        .unwrap();
        insta::assert_snapshot!(String::from_utf8(out).unwrap(), @r"
        2 alerts
        warning: failure rate 40%
        ");
        let mut out = Vec::new();
        present(
            "t",
            &outcome(),
            Mode::Terminal,
            true,
            &Sinks::default(),
            &mut out,
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["alerts"], 2);
    }

    #[test]
    fn actions_mode_writes_outputs_summary_and_commands() {
        let dir = tempfile::tempdir().unwrap();
        let sinks = Sinks {
            output_file: Some(dir.path().join("out")),
            summary_file: Some(dir.path().join("sum")),
        };
        let mut out = Vec::new();
        present(
            "flow monitor",
            &outcome(),
            Mode::Actions,
            false,
            &sinks,
            &mut out,
        )
        .unwrap();
        insta::assert_snapshot!(String::from_utf8(out).unwrap(), @r"
        ::group::flow monitor
        2 alerts
        ::endgroup::
        ::warning file=.github/workflows/ci.yml,line=1::failure rate 40%25
        ");
        let outputs = std::fs::read_to_string(dir.path().join("out")).unwrap();
        assert!(outputs.starts_with("alerts<<ghadelimiter_"), "{outputs}");
        assert!(outputs.contains("\n2\nghadelimiter_"), "{outputs}");
        assert!(outputs.contains("json<<ghadelimiter_"), "{outputs}");
        assert!(
            outputs.contains("\n{\"alerts\":2}\nghadelimiter_"),
            "{outputs}"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("sum")).unwrap(),
            "# Report\n"
        );
    }
}
