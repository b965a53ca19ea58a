//! `flow`: delegate decisions to an LLM, monitor workflow health, publish the action.

fn main() -> std::process::ExitCode {
    flow_action::app::main()
}
