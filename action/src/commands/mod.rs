//! The subcommands, each turning parsed options into an [`Outcome`].

use crate::cli::{Command, GlobalArgs};
use crate::report::{Mode, Outcome};

/// Runs one subcommand.
///
/// # Errors
/// Whatever the subcommand reports; the caller prints it the mode's way and exits with 1.
#[allow(clippy::needless_pass_by_value)] // the subcommands consume their options
pub fn run(command: Command, global: &GlobalArgs, mode: Mode) -> anyhow::Result<Outcome> {
    let _ = (global, mode);
    anyhow::bail!("`{}` is not wired to its crate yet", command.name())
}
