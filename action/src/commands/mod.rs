//! The subcommands, each turning parsed options into an [`Outcome`].

mod delegate;
mod llm;
mod publish;

use crate::cli::{Command, GlobalArgs, PublishCommand};
use crate::report::{Mode, Outcome};

/// Runs one subcommand.
///
/// # Errors
/// Whatever the subcommand reports; the caller prints it the mode's way and exits with 1.
#[allow(clippy::needless_pass_by_value)] // the subcommands consume their options
pub fn run(command: Command, global: &GlobalArgs, mode: Mode) -> anyhow::Result<Outcome> {
    let _ = (global, mode);
    match command {
        Command::Publish(PublishCommand::Metadata(args)) => publish::metadata(&args),
        Command::Publish(PublishCommand::Package(args)) => publish::package(&args),
        Command::Delegate(args) => delegate::delegate(&args),
        Command::ReviewIssue(args) => delegate::review_issue(&args),
        other => anyhow::bail!("`{}` is not wired to its crate yet", other.name()),
    }
}
