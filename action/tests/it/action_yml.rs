//! The committed `action/action.yml` is exactly what the binary generates, and it validates.

use std::path::Path;

fn committed() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("action.yml");
    std::fs::read_to_string(&path).unwrap_or_default()
}

#[test]
fn committed_action_yml_is_up_to_date() {
    let generated = flow_action::action_yml::action_yml().unwrap();
    if std::env::var_os("FLOW_BLESS").is_some() {
        std::fs::write(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("action.yml"),
            &generated,
        )
        .unwrap();
    }
    assert!(
        committed() == generated,
        "action/action.yml is out of date: run `cargo run -p flow-action --bin flow -- publish \
         metadata` (or FLOW_BLESS=1 cargo test -p flow-action --test it action_yml)\n\n{}",
        generated
    );
}

#[test]
fn committed_action_yml_passes_flow_publish_validation() {
    let meta = flow_publish::ActionMetadata::from_yaml(&committed()).unwrap();
    let v = meta.validate();
    assert!(v.is_ok(), "{v:?}");
    assert_eq!(v.warnings().count(), 0, "{v:?}");
    // Every input reaches the run step through env:, under the name the binary reads.
    let run = meta
        .steps()
        .iter()
        .find(|s| s.id.as_deref() == Some("run"))
        .unwrap();
    for id in meta.inputs.keys() {
        let var = flow_action::gha::input_var(id);
        assert_eq!(
            run.env.get(&var).map(String::as_str),
            Some(format!("${{{{ inputs.{id} }}}}").as_str()),
            "{id}"
        );
    }
    // No step expands an expression inside its script.
    for step in meta.steps() {
        assert!(
            !step.run.as_deref().unwrap_or("").contains("${{"),
            "{step:?}"
        );
    }
}

#[test]
fn secret_inputs_have_no_literal_default_and_are_described_as_secret() {
    let meta = flow_publish::ActionMetadata::from_yaml(&committed()).unwrap();
    for id in flow_action::cli::SECRET_INPUTS {
        let input = &meta.inputs[*id];
        let default = input.default.as_deref();
        assert!(
            default.is_none() || default == Some("${{ github.token }}"),
            "{id}"
        );
        assert!(
            input.description.contains("Secret"),
            "{id}: {}",
            input.description
        );
    }
}

#[test]
fn every_cli_option_is_an_input() {
    use clap::CommandFactory as _;
    let meta = flow_publish::ActionMetadata::from_yaml(&committed()).unwrap();
    fn walk(cmd: &clap::Command, out: &mut Vec<String>) {
        for a in cmd.get_arguments() {
            if let Some(l) = a.get_long()
                && l != "help"
                && l != "version"
            {
                out.push(l.to_owned());
            }
        }
        // `serve` is a long-running service, not a workflow step: not an action command.
        for s in cmd.get_subcommands().filter(|s| s.get_name() != "serve") {
            walk(s, out);
        }
    }
    let mut longs = Vec::new();
    walk(&flow_action::cli::Cli::command(), &mut longs);
    let action = flow_publish::ActionMetadata::from_yaml(&committed()).unwrap();
    for only_serve in [
        "listen",
        "webhook-secret-file",
        "repos",
        "org",
        "queue-capacity",
    ] {
        assert!(
            !action.inputs.contains_key(only_serve),
            "--{only_serve} is `flow serve`'s, not an input"
        );
    }
    for l in longs {
        assert!(meta.inputs.contains_key(&l), "--{l} has no action input");
    }
}

#[test]
fn readme_documents_exactly_the_action_inputs_and_outputs() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let meta = flow_action::action_yml::action_metadata().unwrap();
    if std::env::var_os("FLOW_BLESS").is_some() {
        std::fs::write(&path, flow_publish::readme::update(&readme, &meta).unwrap()).unwrap();
        return;
    }
    if let Err(e) = flow_publish::readme::check(&readme, &meta) {
        panic!(
            "README.md: {e} (regenerate with FLOW_BLESS=1 cargo test -p flow-action --test it readme)"
        );
    }
}
