//! The subcommands, each turning parsed options into an [`Outcome`].

mod config;
mod delegate;
mod llm;
mod monitor;
mod publish;
mod report;
mod serve;

use crate::cli::{Command, PublishCommand, ReportCommand};
use crate::report::Outcome;
use crate::settings::Ctx;

/// Runs one subcommand.
///
/// # Errors
/// Whatever the subcommand reports; the caller prints it the mode's way and exits with 1.
#[allow(clippy::needless_pass_by_value)] // the subcommands consume their options
pub fn run(command: Command, ctx: &Ctx<'_>) -> anyhow::Result<Outcome> {
    match command {
        Command::Monitor(args) => monitor::monitor(&args, ctx),
        Command::Serve(args) => serve::serve(&args, ctx),
        Command::Publish(PublishCommand::Metadata(args)) => publish::metadata(&args),
        Command::Publish(PublishCommand::Package(args)) => publish::package(&args),
        Command::Publish(PublishCommand::Manifest(args)) => publish::manifest(&args),
        Command::Delegate(args) => delegate::delegate(&args, ctx),
        Command::ReviewIssue(args) => delegate::review_issue(&args, ctx),
        Command::Publish(PublishCommand::Release(args)) => publish::release(&args, ctx),
        Command::Config(args) => config::config(&args, ctx),
        Command::Report(ReportCommand::Merge(args)) => report::merge(&args),
    }
}
