//! GitHub Actions mode: inputs from `INPUT_*`, outputs, the step summary and workflow commands.
//!
//! Everything here follows the runner's documented rules (the same ones `@actions/core`
//! implements), so a value a user types into a workflow reaches the binary unchanged and a
//! value the binary prints cannot inject a second command:
//!
//! - an input named `api-key` is read from `INPUT_API-KEY` (spaces become `_`, the name is
//!   upper-cased, hyphens are kept); `INPUT_API_KEY` is accepted too, because shells cannot
//!   export a name with a hyphen;
//! - outputs are appended to the file named by `GITHUB_OUTPUT` as `name<<DELIM … DELIM`
//!   heredocs with a random delimiter that occurs in neither the name nor the value;
//! - workflow command data escapes `%`, `\r` and `\n`; properties escape `:` and `,` too.

use std::fmt;
use std::io::Write as _;
use std::path::Path;

/// The environment variable the runner sets to `true` in every step.
pub const GITHUB_ACTIONS: &str = "GITHUB_ACTIONS";
/// The file that collects the step's outputs.
pub const GITHUB_OUTPUT: &str = "GITHUB_OUTPUT";
/// The file that collects the step's Markdown summary.
pub const GITHUB_STEP_SUMMARY: &str = "GITHUB_STEP_SUMMARY";

/// Whether a variable lookup says we run inside a GitHub Actions step (`GITHUB_ACTIONS=true`).
pub fn is_actions(lookup: impl Fn(&str) -> Option<String>) -> bool {
    lookup(GITHUB_ACTIONS).as_deref() == Some("true")
}

/// The variable GitHub sets for an input: `INPUT_` + the name with spaces as `_`, upper-cased,
/// hyphens kept (`api-key` becomes `INPUT_API-KEY`).
pub fn input_var(name: &str) -> String {
    format!("INPUT_{}", name.replace(' ', "_").to_uppercase())
}

/// The underscore form of [`input_var`] (`api-key` becomes `INPUT_API_KEY`), which a shell can
/// export.
pub fn input_var_underscore(name: &str) -> String {
    input_var(name).replace('-', "_")
}

/// Reads input `name` the way `@actions/core`'s `getInput` does: the GitHub form first, then the
/// underscore form; surrounding whitespace is trimmed and an empty value counts as absent
/// (the runner sets an empty variable for an input the workflow did not give).
pub fn input(lookup: impl Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    [input_var(name), input_var_underscore(name)]
        .iter()
        .filter_map(|var| lookup(var))
        .map(|v| v.trim().to_owned())
        .find(|v| !v.is_empty())
}

/// Which variable holds a non-empty value for input `name`, GitHub form first.
pub fn input_source(lookup: impl Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    [input_var(name), input_var_underscore(name)]
        .into_iter()
        .find(|var| lookup(var).is_some_and(|v| !v.trim().is_empty()))
}

/// Escapes the message part of a workflow command: `%`, `\r`, `\n`.
pub fn escape_data(s: &str) -> String {
    escape(s, false)
}

/// Escapes a property value of a workflow command: as [`escape_data`] plus `:` and `,`.
pub fn escape_property(s: &str) -> String {
    escape(s, true)
}

fn escape(s: &str, property: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            ':' if property => out.push_str("%3A"),
            ',' if property => out.push_str("%2C"),
            c => out.push(c),
        }
    }
    out
}

/// Formats one workflow command: `::name key=value,…::message`, escaped.
pub fn command(name: &str, properties: &[(&str, String)], message: &str) -> String {
    let props = properties
        .iter()
        .map(|(k, v)| format!("{k}={}", escape_property(v)))
        .collect::<Vec<_>>()
        .join(",");
    let sep = if props.is_empty() { "" } else { " " };
    format!("::{name}{sep}{props}::{}", escape_data(message))
}

/// The `::add-mask::` commands that hide `secret` in the rest of the job's log.
///
/// The whole value is masked, and each of its lines on its own as well, because the runner
/// matches masks line by line. Empty values produce nothing (masking "" would be a no-op).
pub fn add_mask(secret: &str) -> Vec<String> {
    let mut out = Vec::new();
    if secret.trim().is_empty() {
        return out;
    }
    out.push(command("add-mask", &[], secret));
    if secret.contains('\n') || secret.contains('\r') {
        for line in secret.lines().map(str::trim).filter(|l| !l.is_empty()) {
            out.push(command("add-mask", &[], line));
        }
    }
    out
}

/// Starts a collapsible group in the log.
pub fn group(title: &str) -> String {
    command("group", &[], title)
}

/// Ends the current group.
pub fn endgroup() -> String {
    "::endgroup::".to_owned()
}

/// The severity of an [`Annotation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// `::error`: fails nothing by itself, but shows red in the run.
    Error,
    /// `::warning`.
    Warning,
    /// `::notice`.
    Notice,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warning => "warning",
            Self::Notice => "notice",
        }
    }
}

/// An `::error`/`::warning`/`::notice` annotation, optionally pointing at a file and line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Annotation {
    /// Severity.
    pub level: Level,
    /// The message (may span lines).
    pub message: String,
    /// Title shown above the message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Path relative to the repository root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// 1-based line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// 1-based last line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_line: Option<u32>,
    /// 1-based column.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub col: Option<u32>,
}

impl Annotation {
    /// An annotation with only a level and a message.
    pub fn new(level: Level, message: impl Into<String>) -> Self {
        Self {
            level,
            message: message.into(),
            title: None,
            file: None,
            line: None,
            end_line: None,
            col: None,
        }
    }

    /// Sets the title.
    #[must_use]
    pub fn with_title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// Points the annotation at `file`, line `line` (1-based).
    #[must_use]
    pub fn with_location(mut self, file: impl Into<String>, line: u32) -> Self {
        self.file = Some(file.into());
        self.line = Some(line);
        self
    }
}

impl fmt::Display for Annotation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut props: Vec<(&str, String)> = Vec::new();
        if let Some(file) = &self.file {
            props.push(("file", file.clone()));
        }
        if let Some(line) = self.line {
            props.push(("line", line.to_string()));
        }
        if let Some(end) = self.end_line {
            props.push(("endLine", end.to_string()));
        }
        if let Some(col) = self.col {
            props.push(("col", col.to_string()));
        }
        if let Some(title) = &self.title {
            props.push(("title", title.clone()));
        }
        f.write_str(&command(self.level.name(), &props, &self.message))
    }
}

/// Why an output could not be written.
#[derive(Debug)]
pub enum OutputError {
    /// The output name is empty or contains a line break.
    BadName(String),
    /// No delimiter absent from the name and value was found (practically impossible).
    NoDelimiter,
    /// Writing the file failed.
    Io(std::io::Error),
}

impl fmt::Display for OutputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadName(n) => write!(
                f,
                "output name {n:?} is invalid: expected a non-empty name without line breaks"
            ),
            Self::NoDelimiter => {
                f.write_str("no heredoc delimiter absent from the output value could be chosen")
            }
            Self::Io(e) => write!(f, "writing the GITHUB_OUTPUT file failed: {e}"),
        }
    }
}

impl std::error::Error for OutputError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// A random heredoc delimiter, `ghadelimiter_` + 32 hex digits (as `@actions/core` uses).
pub fn random_delimiter() -> String {
    format!("ghadelimiter_{:032x}", rand::random::<u128>())
}

/// Formats `name<<DELIM\nvalue\nDELIM\n`, drawing delimiters from `next_delimiter` until one
/// occurs in neither the name nor the value (at most 16 draws).
///
/// # Errors
/// [`OutputError::BadName`] for an empty or multi-line name; [`OutputError::NoDelimiter`] when
/// every draw collides.
pub fn format_output(
    name: &str,
    value: &str,
    mut next_delimiter: impl FnMut() -> String,
) -> Result<String, OutputError> {
    if name.is_empty() || name.contains(['\n', '\r']) {
        return Err(OutputError::BadName(name.to_owned()));
    }
    for _ in 0..16 {
        let delim = next_delimiter();
        if delim.is_empty() || name.contains(&delim) || value.contains(&delim) {
            continue;
        }
        return Ok(format!("{name}<<{delim}\n{value}\n{delim}\n"));
    }
    Err(OutputError::NoDelimiter)
}

/// Appends `text` to the file at `path`, creating it if needed.
fn append(path: &Path, text: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(text.as_bytes())
}

/// Appends output `name` = `value` to the `GITHUB_OUTPUT` file at `path`.
///
/// # Errors
/// As [`format_output`], or [`OutputError::Io`].
pub fn write_output(path: &Path, name: &str, value: &str) -> Result<(), OutputError> {
    let text = format_output(name, value, random_delimiter)?;
    append(path, &text).map_err(OutputError::Io)
}

/// Appends Markdown to the `GITHUB_STEP_SUMMARY` file at `path`, ending it with a newline.
///
/// # Errors
/// When the file cannot be opened or written.
pub fn append_summary(path: &Path, markdown: &str) -> std::io::Result<()> {
    if markdown.ends_with('\n') {
        append(path, markdown)
    } else {
        append(path, &format!("{markdown}\n"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn input_names_follow_github_rules() {
        assert_eq!(input_var("api-key"), "INPUT_API-KEY");
        assert_eq!(input_var("max runs"), "INPUT_MAX_RUNS");
        assert_eq!(input_var("Model"), "INPUT_MODEL");
        assert_eq!(input_var_underscore("api-key"), "INPUT_API_KEY");
        assert_eq!(
            input_var_underscore("cache-ttl-secs"),
            "INPUT_CACHE_TTL_SECS"
        );
    }

    #[test]
    fn input_prefers_github_form_then_underscore_and_trims() {
        let e = env(&[("INPUT_API-KEY", " a "), ("INPUT_API_KEY", "b")]);
        assert_eq!(input(&e, "api-key").as_deref(), Some("a"));
        let e = env(&[("INPUT_API_KEY", "b")]);
        assert_eq!(input(&e, "api-key").as_deref(), Some("b"));
        assert_eq!(
            input_source(&e, "api-key").as_deref(),
            Some("INPUT_API_KEY")
        );
        // The runner sets unset inputs to "": that is absent, and the other form is used.
        let e = env(&[("INPUT_API-KEY", ""), ("INPUT_API_KEY", "c")]);
        assert_eq!(input(&e, "api-key").as_deref(), Some("c"));
        assert_eq!(
            input_source(&e, "api-key").as_deref(),
            Some("INPUT_API_KEY")
        );
        let e = env(&[("INPUT_API-KEY", "  ")]);
        assert_eq!(input(&e, "api-key"), None);
        assert_eq!(input_source(&e, "api-key"), None);
    }

    #[test]
    fn actions_mode_needs_exactly_true() {
        assert!(is_actions(env(&[("GITHUB_ACTIONS", "true")])));
        assert!(!is_actions(env(&[("GITHUB_ACTIONS", "1")])));
        assert!(!is_actions(env(&[])));
    }

    #[test]
    fn data_and_property_escaping() {
        assert_eq!(escape_data("a%b\r\nc:d,e"), "a%25b%0D%0Ac:d,e");
        assert_eq!(escape_property("a%b\r\nc:d,e"), "a%25b%0D%0Ac%3Ad%2Ce");
        // Already-escaped text is escaped again, so it round-trips through the runner.
        assert_eq!(escape_data("%0A"), "%250A");
    }

    #[test]
    fn annotation_with_location_escapes_properties_and_data() {
        let a = Annotation::new(Level::Error, "line 1\nline 2: 100%")
            .with_location("src/a,b:c.rs", 7)
            .with_title("Bad: thing");
        assert_eq!(
            a.to_string(),
            "::error file=src/a%2Cb%3Ac.rs,line=7,title=Bad%3A thing::line 1%0Aline 2: 100%25"
        );
        assert_eq!(
            Annotation::new(Level::Warning, "w").to_string(),
            "::warning::w"
        );
        assert_eq!(
            Annotation::new(Level::Notice, "n").to_string(),
            "::notice::n"
        );
    }

    #[test]
    fn a_message_cannot_inject_a_second_command() {
        let a = Annotation::new(Level::Notice, "x\n::add-mask::y\r\n::error::z");
        let s = a.to_string();
        assert_eq!(s.lines().count(), 1, "{s}");
    }

    #[test]
    fn group_and_mask_commands() {
        assert_eq!(group("Fetch runs: 1\n2"), "::group::Fetch runs: 1%0A2");
        assert_eq!(endgroup(), "::endgroup::");
        assert_eq!(add_mask("s3cr%t"), vec!["::add-mask::s3cr%25t"]);
        assert_eq!(
            add_mask("l1\nl2\n"),
            vec!["::add-mask::l1%0Al2%0A", "::add-mask::l1", "::add-mask::l2"]
        );
        assert!(add_mask("  ").is_empty());
    }

    #[test]
    fn output_heredoc_is_multiline_safe() {
        let s = format_output("report", "a\nb\n", || "EOF".to_owned()).unwrap();
        assert_eq!(s, "report<<EOF\na\nb\n\nEOF\n");
    }

    #[test]
    fn output_delimiter_never_occurs_in_the_value() {
        let mut draws = vec!["D2".to_owned(), "D1".to_owned()];
        let s = format_output("x", "has D1 inside", || draws.pop().unwrap()).unwrap();
        assert_eq!(s, "x<<D2\nhas D1 inside\nD2\n");
        let err = format_output("x", "D", || "D".to_owned()).unwrap_err();
        assert!(matches!(err, OutputError::NoDelimiter));
        assert!(matches!(
            format_output("a\nb", "v", random_delimiter),
            Err(OutputError::BadName(_))
        ));
    }

    #[test]
    fn random_delimiters_differ() {
        let a = random_delimiter();
        assert!(a.starts_with("ghadelimiter_"));
        assert_eq!(a.len(), "ghadelimiter_".len() + 32);
        assert_ne!(a, random_delimiter());
    }

    #[test]
    fn outputs_and_summary_append_to_files() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        write_output(&out, "a", "1").unwrap();
        write_output(&out, "b", "two\nlines").unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        let parsed = parse_outputs(&text);
        assert_eq!(
            parsed,
            vec![
                ("a".to_owned(), "1".to_owned()),
                ("b".to_owned(), "two\nlines".to_owned())
            ]
        );
        let sum = dir.path().join("sum");
        append_summary(&sum, "# A").unwrap();
        append_summary(&sum, "b\n").unwrap();
        assert_eq!(std::fs::read_to_string(&sum).unwrap(), "# A\nb\n");
    }

    /// The runner's reading of a GITHUB_OUTPUT file (heredoc form only).
    fn parse_outputs(text: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut lines = text.lines();
        while let Some(head) = lines.next() {
            let (name, delim) = head.split_once("<<").unwrap();
            let mut value = Vec::new();
            for l in lines.by_ref() {
                if l == delim {
                    break;
                }
                value.push(l);
            }
            out.push((name.to_owned(), value.join("\n")));
        }
        out
    }
}
