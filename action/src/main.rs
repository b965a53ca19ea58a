//! The `flow` binary. Subcommands arrive with the action issue.

fn main() {
    // Placeholder until the action issue lands: print the version so the set-up command runs.
    let version = env!("CARGO_PKG_VERSION");
    #[allow(clippy::print_stdout)]
    {
        println!("flow {version}: the main job arrives with the action issue");
    }
}
