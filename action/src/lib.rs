//! The `flow` binary's library: the command line, the two output modes and the subcommands.
//!
//! `flow` runs in one of two modes, chosen from the environment:
//!
//! - **terminal** (the default): human-readable text on stdout, progress and logs on stderr,
//!   `--json` for machine output;
//! - **GitHub Actions** (`GITHUB_ACTIONS=true`): options may come from `INPUT_*` variables,
//!   secret inputs are masked before anything is printed, outputs go to `GITHUB_OUTPUT`, the
//!   report to `GITHUB_STEP_SUMMARY`, annotations are workflow commands, and a failure prints
//!   `::error::` and exits with code 1.
//!
//! The pieces are public so that tests (and `action/action.yml`'s generator) can use them:
//! [`cli`] holds the clap definitions, which are also the action's inputs; [`gha`] the runner's
//! protocol; [`app`] the entry point; [`report`] what a subcommand hands back.
//!
//! ```
//! use flow_action::gha;
//! assert_eq!(gha::input_var("api-key"), "INPUT_API-KEY");
//! assert_eq!(gha::escape_property("a:b,c"), "a%3Ab%2Cc");
//! ```

// The README's example, compiled and run with the doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub mod action_yml;
pub mod app;
pub mod cli;
pub mod commands;
pub mod gha;
pub mod progress;
pub mod report;
pub mod settings;
