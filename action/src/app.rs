//! The entry point: choose the mode, mask secrets, parse, run, present, exit.

use std::ffi::OsString;
use std::io::Write as _;
use std::process::ExitCode;

use clap::{CommandFactory as _, FromArgMatches as _};

use crate::cli::{Cli, SECRET_INPUTS};
use crate::gha;
use crate::report::{self, Mode, Sinks};
use crate::settings::{self, Ctx, Inputs};

/// Runs `flow` with the process's arguments and environment.
pub fn main() -> ExitCode {
    let lookup = |k: &str| std::env::var(k).ok();
    let args: Vec<OsString> = std::env::args_os().collect();
    let mut stdout = std::io::stdout().lock();
    let code = run(args, &lookup, &mut stdout);
    let _ = stdout.flush();
    code
}

/// Runs `flow` with `args` (program name first), reading variables through `lookup` and
/// printing on `stdout`. Logs and terminal errors go to stderr.
pub fn run(
    mut args: Vec<OsString>,
    lookup: &dyn Fn(&str) -> Option<String>,
    stdout: &mut dyn std::io::Write,
) -> ExitCode {
    let mode = if gha::is_actions(lookup) {
        Mode::Actions
    } else {
        Mode::Terminal
    };
    let mut command = Cli::command();
    let mut inputs = Inputs::new();
    if mode == Mode::Actions {
        // Before anything else reaches the log: the runner masks these from here on.
        for line in masks(&command, lookup) {
            if writeln!(stdout, "{line}").is_err() {
                return ExitCode::FAILURE;
            }
        }
        command = settings::with_inputs(command, lookup, &mut inputs);
        if args.len() <= 1 {
            // `flow` alone in a step: the subcommand comes from the `command` input.
            let words = gha::input(lookup, "command").unwrap_or_else(|| "monitor".to_owned());
            args.extend(words.split_whitespace().map(OsString::from));
        }
    }
    let matches = match command.try_get_matches_from_mut(args) {
        Ok(m) => m,
        Err(e) => return clap_error(&e, mode, stdout),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => return clap_error(&e, mode, stdout),
    };
    init_logging(cli.global.log.as_deref(), lookup, mode);
    let Some(sub) = cli.command else {
        let _ = Cli::command().print_help();
        return ExitCode::from(2);
    };
    let json = cli.global.json;
    let name = sub.name();
    let ctx = Ctx {
        mode,
        json,
        lookup,
        given: settings::given(&command, &matches, &inputs),
    };
    let result = crate::commands::run(sub, &ctx).and_then(|o| {
        let title = format!("flow {name}");
        report::present(&title, &o, mode, json, &Sinks::from_env(lookup), stdout)?;
        Ok(o.failure)
    });
    match result {
        Ok(None) => ExitCode::SUCCESS,
        Ok(Some(failure)) => fail(&format!("flow {name}: {failure}"), mode, stdout),
        Err(e) => fail(&format!("flow {name}: {e:#}"), mode, stdout),
    }
}

/// Prints a failure the mode's way and returns exit code 1.
fn fail(message: &str, mode: Mode, stdout: &mut dyn std::io::Write) -> ExitCode {
    match mode {
        Mode::Actions => {
            let _ = writeln!(stdout, "{}", gha::command("error", &[], message));
        }
        Mode::Terminal => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("error: {message}");
            }
        }
    }
    ExitCode::FAILURE
}

fn clap_error(e: &clap::Error, mode: Mode, stdout: &mut dyn std::io::Write) -> ExitCode {
    use clap::error::ErrorKind;
    let informational = matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion);
    if mode == Mode::Actions && !informational {
        let text = e.render().to_string();
        let message = text
            .lines()
            .map(str::trim)
            .take_while(|l| !l.starts_with("Usage:"))
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let first = message.trim_start_matches("error: ");
        return fail(first, mode, stdout);
    }
    let _ = e.print();
    ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
}

/// The `::add-mask::` lines for every secret input and for the variables those inputs fall
/// back to (`OPENAI_API_KEY`, `GITHUB_TOKEN`, …).
pub fn masks(command: &clap::Command, lookup: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
    let mut vars: Vec<String> = Vec::new();
    for_each_arg(command, &mut |arg| {
        if let Some(long) = arg.get_long().filter(|l| SECRET_INPUTS.contains(l)) {
            for var in [gha::input_var(long), gha::input_var_underscore(long)] {
                if !vars.contains(&var) {
                    vars.push(var);
                }
            }
        }
    });
    // Every secret variable of the registry (OPENAI_API_KEY, GITHUB_TOKEN, ...).
    vars.extend(
        flow_orchestrator::env::ALL
            .iter()
            .filter(|v| v.secret)
            .map(|v| v.name.to_owned()),
    );
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for var in vars {
        if let Some(value) = lookup(&var)
            && !seen.contains(&value)
        {
            out.extend(gha::add_mask(&value));
            // OTLP headers are `name=value,…` pairs: each value is a secret on its own too.
            if var.contains("OTLP") {
                for (_, v) in value.split(',').filter_map(|p| p.split_once('=')) {
                    if !v.trim().is_empty() {
                        out.extend(gha::add_mask(v.trim()));
                    }
                }
            }
            seen.push(value);
        }
    }
    out
}

fn for_each_arg(command: &clap::Command, f: &mut dyn FnMut(&clap::Arg)) {
    for arg in command.get_arguments() {
        f(arg);
    }
    for sub in command.get_subcommands() {
        for_each_arg(sub, f);
    }
}

fn init_logging(filter: Option<&str>, lookup: &dyn Fn(&str) -> Option<String>, mode: Mode) {
    use tracing_subscriber::EnvFilter;
    let spec = filter
        .map(str::to_owned)
        .or_else(|| lookup("RUST_LOG"))
        .unwrap_or_else(|| "warn".to_owned());
    let filter = EnvFilter::try_new(&spec).unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(mode == Mode::Terminal && std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
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
    fn options_read_their_input_variable_in_either_spelling() {
        let lookup = env(&[
            ("INPUT_MAX-RUNS", "17"),
            ("INPUT_OPEN_ISSUES", "true"),
            ("INPUT_API-KEY", ""),
            ("INPUT_API_KEY", "sk"),
            ("OPENAI_API_KEY", "sk-env"),
            ("GITHUB_TOKEN", "ghs_env"),
            ("INPUT_JSON", "true"),
            ("INPUT_TAG", "v1"),
            ("INPUT_LABEL", "a, b"),
        ]);
        let mut inputs = Inputs::new();
        let mut cmd = settings::with_inputs(Cli::command(), &lookup, &mut inputs);
        let get = |long: &str| inputs.get(long).map(String::as_str);
        assert_eq!(get("max-runs"), Some("INPUT_MAX-RUNS"));
        assert_eq!(get("open-issues"), Some("INPUT_OPEN_ISSUES"));
        // The non-empty spelling of the input is the one read ...
        assert_eq!(get("api-key"), Some("INPUT_API_KEY"));
        // ... and an option without an input is left to the settings (GITHUB_TOKEN).
        assert_eq!(get("github-token"), None);
        assert_eq!(get("triage"), None);
        assert_eq!(get("json"), Some("INPUT_JSON"));
        assert_eq!(get("tag"), Some("INPUT_TAG"));
        let matches = cmd.try_get_matches_from_mut(["flow", "monitor"]).unwrap();
        let cli = Cli::from_arg_matches(&matches).unwrap();
        assert!(cli.global.json);
        let Some(crate::cli::Command::Monitor(m)) = cli.command else {
            panic!("not monitor")
        };
        assert_eq!(m.max_runs, Some(17));
        assert!(m.open_issues);
        assert_eq!(m.label, ["a", "b"]);
        // The input wins over OPENAI_API_KEY, GITHUB_TOKEN fills in, each named as the source.
        let ctx = Ctx {
            mode: Mode::Actions,
            json: true,
            lookup: &lookup,
            given: settings::given(&cmd, &matches, &inputs),
        };
        let s = ctx.settings().unwrap();
        use secrecy::ExposeSecret as _;
        assert_eq!(
            s.credentials.api_key.as_ref().unwrap().expose_secret(),
            "sk"
        );
        assert_eq!(s.origin("llm.api_key").to_string(), "input INPUT_API_KEY");
        assert_eq!(s.origin("github.token").to_string(), "env GITHUB_TOKEN");
        assert_eq!(s.config.telemetry.max_pages, 1);
        assert_eq!(
            s.origin("telemetry.max_pages").to_string(),
            "input INPUT_MAX-RUNS"
        );
        // A flag on the command line wins over the input.
        let matches = cmd
            .try_get_matches_from_mut(["flow", "monitor", "--max-runs", "250"])
            .unwrap();
        let given = settings::given(&cmd, &matches, &inputs);
        let ctx = Ctx { given, ..ctx };
        let s = ctx.settings().unwrap();
        assert_eq!(s.config.telemetry.max_pages, 3);
        assert_eq!(
            s.origin("telemetry.max_pages").to_string(),
            "flag --max-runs"
        );
    }

    #[test]
    fn each_otlp_header_value_is_masked_on_its_own() {
        let lookup = |k: &str| {
            (k == "INPUT_OTLP-HEADER").then(|| "x-api-key=k3y,authorization=Bearer t0k".to_owned())
        };
        let lines = masks(&Cli::command(), &lookup);
        for secret in ["k3y", "Bearer t0k"] {
            assert!(
                lines.contains(&format!("::add-mask::{secret}")),
                "{lines:?}"
            );
        }
    }

    #[test]
    fn secret_inputs_and_their_fallback_variables_are_masked() {
        let lookup = env(&[
            ("INPUT_API-KEY", "sk-input"),
            ("GITHUB_TOKEN", "ghs_env"),
            ("INPUT_GITHUB_TOKEN", "ghs_env"),
            ("INPUT_MODEL", "not-secret"),
        ]);
        let lines = masks(&Cli::command(), &lookup);
        assert_eq!(lines, vec!["::add-mask::sk-input", "::add-mask::ghs_env"]);
    }

    #[test]
    fn actions_mode_masks_before_anything_and_fails_with_error_command() {
        let lookup = env(&[
            ("GITHUB_ACTIONS", "true"),
            ("INPUT_API_KEY", "sk-123"),
            ("INPUT_COMMAND", "delegate"),
        ]);
        let mut out = Vec::new();
        let code = run(vec!["flow".into()], &lookup, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(code, ExitCode::FAILURE);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "::add-mask::sk-123", "{text}");
        assert!(lines[1].starts_with("::error::"), "{text}");
        assert!(lines[1].contains("--prompt"), "{text}");
        assert!(!text.contains("sk-123\n") || lines[0].ends_with("sk-123"));
        assert_eq!(text.matches("sk-123").count(), 1, "{text}");
    }
}
