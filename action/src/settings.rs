//! The top of the binary: what the command line and the action inputs gave, turned once into
//! flow-orchestrator's typed [`Settings`] (defaults < file < environment < flags / inputs).
//!
//! clap parses every flag and input (the inputs become the arguments' default values, so a
//! flag on the command line wins and a bad input is a clap error naming the flag); this module
//! then reads, for each argument that names a setting in [`SPECS`](flow_orchestrator::settings::SPECS),
//! the text clap kept and where it came from. Nothing below reads the environment: the
//! commands get a [`Ctx`] with the injected lookup and these values.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::ArgMatches;
use clap::parser::ValueSource;
use flow_orchestrator::settings::{Given, Origin, Settings, Sources, spec_of_flag};

use crate::gha;
use crate::report::Mode;

/// The action inputs that stood in for flags: long name → the variable read.
pub type Inputs = BTreeMap<String, String>;

/// Makes every option also readable from its input variable (`INPUT_MAX-RUNS` or
/// `INPUT_MAX_RUNS` for `--max-runs`): the input's value becomes the option's default, so a
/// flag on the command line still wins. Returns the command and which inputs were used.
pub fn with_inputs(
    mut command: clap::Command,
    lookup: &dyn Fn(&str) -> Option<String>,
    inputs: &mut Inputs,
) -> clap::Command {
    let args: Vec<(clap::Id, String, Option<char>)> = command
        .get_arguments()
        .filter_map(|a| {
            Some((
                a.get_id().clone(),
                a.get_long()?.to_owned(),
                a.get_value_delimiter(),
            ))
        })
        .filter(|(_, long, _)| long != "help" && long != "version")
        .collect();
    for (id, long, delimiter) in args {
        let Some(var) = gha::input_source(lookup, &long) else {
            continue;
        };
        let Some(value) = lookup(&var).map(|v| v.trim().to_owned()) else {
            continue;
        };
        let values: Vec<String> = match delimiter {
            Some(d) => value
                .split(d)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .collect(),
            None => vec![value],
        };
        command = command.mut_arg(id, |a| a.required(false).default_values(values));
        inputs.insert(long, var);
    }
    let subs: Vec<String> = command
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect();
    for name in subs {
        command = command.mut_subcommand(name, |s| with_inputs(s, lookup, inputs));
    }
    command
}

/// Who gave the argument `long`: a flag, an input, or nobody (its default).
fn origin_of(matches: &ArgMatches, id: &str, long: &str, inputs: &Inputs) -> Option<Origin> {
    match matches.value_source(id)? {
        ValueSource::CommandLine => Some(Origin::flag(long)),
        ValueSource::DefaultValue => inputs
            .get(long)
            .map(|var| Origin::Input { var: var.clone() }),
        _ => None,
    }
}

/// The text clap kept for `id` (several values comma-joined).
fn raw_text(matches: &ArgMatches, id: &str) -> Option<String> {
    let values: Vec<String> = matches
        .get_raw(id)?
        .map(|v| v.to_string_lossy().into_owned())
        .collect();
    Some(values.join(","))
}

/// What the command line and the inputs gave for the settings, read from the innermost
/// subcommand's matches.
pub fn given(command: &clap::Command, matches: &ArgMatches, inputs: &Inputs) -> TopValues {
    let (command, matches) = leaf(command, matches);
    let mut out = TopValues::default();
    for arg in command.get_arguments() {
        let (Some(long), id) = (arg.get_long(), arg.get_id().as_str()) else {
            continue;
        };
        let Some(origin) = origin_of(matches, id, long, inputs) else {
            continue;
        };
        let Some(text) = raw_text(matches, id) else {
            continue;
        };
        if long == "config" {
            out.config = Some((PathBuf::from(text), origin));
        } else if long == "max-runs" {
            // Runs on the command line, pages in the configuration.
            let pages = text
                .parse::<u64>()
                .map_or(text, |n| n.div_ceil(100).max(1).to_string());
            out.values
                .push(Given::new("telemetry.max_pages", pages, origin));
        } else if let Some(spec) = spec_of_flag(long) {
            out.values.push(Given::new(spec.key, text, origin));
        }
    }
    out
}

/// The values given above the environment, and the configuration file if one was named.
#[derive(Debug, Default, Clone)]
pub struct TopValues {
    /// Settings given by flags and inputs.
    pub values: Vec<Given>,
    /// `--config` (or the `config` input).
    pub config: Option<(PathBuf, Origin)>,
}

fn leaf<'a>(
    command: &'a clap::Command,
    matches: &'a ArgMatches,
) -> (&'a clap::Command, &'a ArgMatches) {
    match matches.subcommand() {
        Some((name, sub)) => match command.find_subcommand(name) {
            Some(c) => leaf(c, sub),
            None => (command, matches),
        },
        None => (command, matches),
    }
}

/// What every command gets from the top: the mode, the injected variable lookup, and the
/// values given on the command line or as inputs.
pub struct Ctx<'a> {
    /// Terminal or GitHub Actions.
    pub mode: Mode,
    /// `--json`.
    pub json: bool,
    /// The environment (injected by tests).
    pub lookup: &'a dyn Fn(&str) -> Option<String>,
    /// Flags and inputs that name settings.
    pub given: TopValues,
}

impl std::fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("mode", &self.mode)
            .field("given", &self.given)
            .finish_non_exhaustive()
    }
}

impl Ctx<'_> {
    /// The settings, resolved once: defaults < file < environment < flags and inputs.
    ///
    /// # Errors
    /// An invalid value, named by its flag, variable or file key.
    pub fn settings(&self) -> anyhow::Result<Settings> {
        let mut sources = Sources::new(self.lookup).with_given(self.given.values.clone());
        if let Some((path, origin)) = &self.given.config {
            sources = sources.with_file(path, origin.clone());
        }
        Ok(Settings::resolve(&sources)?)
    }

    /// A variable of the runner's protocol (`GITHUB_SHA`, `GITHUB_EVENT_PATH`), through the
    /// injected lookup; empty counts as unset.
    pub fn var(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|v| !v.trim().is_empty())
    }
}

/// The settings `argv` resolves to in a terminal, with `vars` as the whole environment: the
/// path `flow` takes from its command line to a command's [`Settings`], for unit tests.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) fn resolve_in_terminal(argv: &[&str], vars: &[(&str, &str)]) -> Settings {
    use clap::{CommandFactory as _, FromArgMatches as _};
    let map: std::collections::HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let lookup = move |k: &str| map.get(k).cloned();
    let mut cmd = crate::cli::Cli::command();
    let matches = cmd.try_get_matches_from_mut(argv).unwrap();
    crate::cli::Cli::from_arg_matches(&matches).unwrap();
    let ctx = Ctx {
        mode: Mode::Terminal,
        json: false,
        lookup: &lookup,
        given: given(&cmd, &matches, &Inputs::new()),
    };
    ctx.settings().unwrap()
}
