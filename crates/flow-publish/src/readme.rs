//! The README section that documents an action's inputs and outputs, generated from its
//! metadata between markers, so CI can check the docs match the action.
//!
//! The section lives between [`START_MARKER`] and [`END_MARKER`]; everything outside is kept.

use crate::error::{Error, ErrorKind, Result};
use crate::metadata::ActionMetadata;

/// The line that opens the generated section.
pub const START_MARKER: &str = "<!-- flow-publish:inputs:start -->";
/// The line that closes the generated section.
pub const END_MARKER: &str = "<!-- flow-publish:inputs:end -->";

/// The Markdown for the inputs and outputs of `meta` (tables, no markers), ending in a newline.
#[must_use]
pub fn render_section(meta: &ActionMetadata) -> String {
    let mut out = String::from("### Inputs\n\n");
    if meta.inputs.is_empty() {
        out.push_str("None.\n");
    } else {
        out.push_str("| name | description | required | default |\n|---|---|---|---|\n");
        for (id, input) in &meta.inputs {
            let mut description = cell(&input.description);
            if let Some(msg) = &input.deprecation_message {
                description = format!("**Deprecated:** {} {description}", cell(msg));
            }
            let default = input
                .default
                .as_deref()
                .map_or_else(String::new, |d| format!("`{}`", cell(d)));
            let required = if input.required == Some(true) {
                "yes"
            } else {
                "no"
            };
            out.push_str(&format!(
                "| `{id}` | {description} | {required} | {default} |\n"
            ));
        }
    }
    out.push_str("\n### Outputs\n\n");
    if meta.outputs.is_empty() {
        out.push_str("None.\n");
    } else {
        out.push_str("| name | description |\n|---|---|\n");
        for (id, output) in &meta.outputs {
            let description = output.description.as_deref().map(cell).unwrap_or_default();
            out.push_str(&format!("| `{id}` | {description} |\n"));
        }
    }
    out
}

/// One table cell: paragraphs joined by `<br>`, lines by a space, `|` escaped.
fn cell(text: &str) -> String {
    text.trim()
        .split("\n\n")
        .map(|para| para.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("<br>")
        .replace('|', "\\|")
}

/// `readme` with the generated section replaced by the one for `meta`.
///
/// # Errors
/// [`ErrorKind::Readme`] when the markers are missing, repeated or out of order.
pub fn update(readme: &str, meta: &ActionMetadata) -> Result<String> {
    let (start, end) = markers(readme)?;
    let body_start = start + START_MARKER.len();
    let mut out = String::with_capacity(readme.len());
    out.push_str(&readme[..body_start]);
    out.push_str("\n\n");
    out.push_str(&render_section(meta));
    out.push('\n');
    out.push_str(&readme[end..]);
    Ok(out)
}

/// Checks that `readme`'s generated section is the one for `meta`.
///
/// # Errors
/// [`ErrorKind::Readme`] when the markers are missing or the section differs (the message names
/// the first differing line and how to fix it).
pub fn check(readme: &str, meta: &ActionMetadata) -> Result<()> {
    let expected = update(readme, meta)?;
    if expected == readme {
        return Ok(());
    }
    let line = expected
        .lines()
        .zip(readme.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| expected.lines().count().min(readme.lines().count()))
        + 1;
    Err(Error::new(ErrorKind::Readme {
        message: format!(
            "the section between `{START_MARKER}` and `{END_MARKER}` is out of date (first difference at line {line}): expected it regenerated from action.yml"
        ),
    }))
}

fn markers(readme: &str) -> Result<(usize, usize)> {
    let missing = |what: &str| {
        Error::new(ErrorKind::Readme {
            message: format!(
                "expected exactly one `{START_MARKER}` followed by one `{END_MARKER}`: {what}"
            ),
        })
    };
    let start = readme
        .find(START_MARKER)
        .ok_or_else(|| missing("start marker missing"))?;
    let end = readme
        .find(END_MARKER)
        .ok_or_else(|| missing("end marker missing"))?;
    if readme.matches(START_MARKER).count() != 1 || readme.matches(END_MARKER).count() != 1 {
        return Err(missing("a marker is repeated"));
    }
    if end < start {
        return Err(missing("end marker comes first"));
    }
    Ok((start, end))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::metadata::{Input, Output};

    fn meta() -> ActionMetadata {
        ActionMetadata::new("a", "b")
            .with_input(
                "model",
                Input::new("The model.\n\nA | pipe.").with_required(true),
            )
            .with_input(
                "old",
                Input::new("Old.")
                    .with_default("x")
                    .with_deprecation_message("Use model."),
            )
            .with_output(
                "decision",
                Output::new("The decision.", "${{ steps.r.outputs.decision }}"),
            )
    }

    #[test]
    fn update_then_check_passes_and_keeps_the_rest() {
        let readme = format!("# Title\n\nintro\n\n{START_MARKER}\nstale\n{END_MARKER}\n\nfooter\n");
        let updated = update(&readme, &meta()).unwrap();
        assert!(updated.starts_with("# Title\n\nintro\n\n"));
        assert!(updated.ends_with(&format!("{END_MARKER}\n\nfooter\n")));
        assert!(
            updated.contains("| `model` | The model.<br>A \\| pipe. | yes |  |"),
            "{updated}"
        );
        assert!(updated.contains("**Deprecated:** Use model."), "{updated}");
        check(&updated, &meta()).unwrap();
        assert_eq!(
            update(&updated, &meta()).unwrap(),
            updated,
            "update is idempotent"
        );
    }

    #[test]
    fn check_fails_when_stale_or_markers_missing() {
        let readme = format!("{START_MARKER}\nstale\n{END_MARKER}\n");
        let err = check(&readme, &meta()).unwrap_err();
        assert!(err.to_string().contains("out of date"), "{err}");
        let err = check("no markers", &meta()).unwrap_err();
        assert!(err.to_string().contains("start marker missing"), "{err}");
        let err = update(&format!("{END_MARKER}{START_MARKER}"), &meta()).unwrap_err();
        assert!(err.to_string().contains("end marker comes first"), "{err}");
    }
}
