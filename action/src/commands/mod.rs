//! The subcommands, each turning parsed options into an [`Outcome`].

mod delegate;
mod llm;
mod monitor;
mod publish;

use crate::cli::{Command, GlobalArgs, PublishCommand};
use crate::report::{Mode, Outcome};

/// Runs one subcommand.
///
/// # Errors
/// Whatever the subcommand reports; the caller prints it the mode's way and exits with 1.
#[allow(clippy::needless_pass_by_value)] // the subcommands consume their options
pub fn run(command: Command, global: &GlobalArgs, mode: Mode) -> anyhow::Result<Outcome> {
    match command {
        Command::Monitor(args) => monitor::monitor(&args, global, mode),
        Command::Publish(PublishCommand::Metadata(args)) => publish::metadata(&args),
        Command::Publish(PublishCommand::Package(args)) => publish::package(&args),
        Command::Publish(PublishCommand::Manifest(args)) => publish::manifest(&args),
        Command::Delegate(args) => delegate::delegate(&args, global),
        Command::ReviewIssue(args) => delegate::review_issue(&args, global),
        Command::Publish(PublishCommand::Release(args)) => publish::release(&args, global),
    }
}
