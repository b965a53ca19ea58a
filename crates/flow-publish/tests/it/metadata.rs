//! Round-trips of action.yml samples, generation from a Rust type, and one test per validation
//! error.

use flow_publish::{
    ActionMetadata, Branding, Input, Output, Runs, Severity, Step, Validation, readme,
};
use proptest::prelude::*;

use crate::samples::{Args, Decision, fixture, generated_action};

fn paths(v: &Validation, severity: Severity) -> Vec<String> {
    v.findings
        .iter()
        .filter(|f| f.severity == severity)
        .map(|f| f.path.clone())
        .collect()
}

#[test]
fn composite_sample_round_trips_byte_for_byte() {
    let text = fixture("actions/composite.yml");
    let meta = ActionMetadata::from_yaml(&text).unwrap();
    assert_eq!(meta.to_yaml().unwrap(), text);
    let v = meta.validate();
    assert!(v.findings.is_empty(), "{:?}", v.findings);
    assert_eq!(meta.steps()[0].with["fetch-depth"], "0");
    assert_eq!(
        meta.inputs["old-flag"].deprecation_message.as_deref(),
        Some("old-flag does nothing; remove it.")
    );
    assert!(
        meta.steps()[1]
            .run
            .as_deref()
            .unwrap()
            .ends_with("$GITHUB_OUTPUT\"\n")
    );
}

#[test]
fn node_sample_is_read_and_round_trips() {
    let meta = ActionMetadata::from_yaml(&fixture("actions/node.yml")).unwrap();
    let Some(Runs::Node(node)) = &meta.runs else {
        panic!("expected node runs, got {:?}", meta.runs)
    };
    assert_eq!(node.using, "node20");
    assert_eq!(node.main, "dist/index.js");
    assert_eq!(node.post_if.as_deref(), Some("success()"));
    assert_eq!(meta.inputs["verbose"].default.as_deref(), Some("false"));
    let again = ActionMetadata::from_yaml(&meta.to_yaml().unwrap()).unwrap();
    assert_eq!(again, meta);
    assert!(meta.validate().is_ok(), "{:?}", meta.validate());
}

#[test]
fn docker_sample_is_read_and_round_trips() {
    let meta = ActionMetadata::from_yaml(&fixture("actions/docker.yml")).unwrap();
    let Some(Runs::Docker(docker)) = &meta.runs else {
        panic!("expected docker runs, got {:?}", meta.runs)
    };
    assert_eq!(docker.image, "Dockerfile");
    assert_eq!(docker.args, ["${{ inputs.myInput }}", "--flag"]);
    assert_eq!(docker.env["LEVEL"], "3");
    assert_eq!(docker.pre_entrypoint.as_deref(), Some("setup.sh"));
    let yaml = meta.to_yaml().unwrap();
    assert_eq!(ActionMetadata::from_yaml(&yaml).unwrap(), meta);
    // Written again, the text is stable.
    assert_eq!(
        ActionMetadata::from_yaml(&yaml).unwrap().to_yaml().unwrap(),
        yaml
    );
}

#[test]
fn generated_action_matches_snapshot() {
    // Fails when the binary's input type changes without action.yml being regenerated.
    let meta = generated_action();
    assert!(meta.validate().findings.is_empty(), "{:?}", meta.validate());
    insta::assert_snapshot!("generated_action_yml", meta.to_yaml().unwrap());
}

#[test]
fn generated_readme_section_matches_snapshot() {
    insta::assert_snapshot!(
        "generated_readme_section",
        readme::render_section(&generated_action())
    );
}

#[test]
fn generated_inputs_carry_docs_defaults_and_required() {
    let meta = ActionMetadata::from_inputs::<Args>("flow", "d").unwrap();
    assert_eq!(meta.inputs["prompt"].required, Some(true));
    assert_eq!(meta.inputs["max-retries"].required, Some(false));
    assert_eq!(meta.inputs["max-retries"].default.as_deref(), Some("3"));
    assert!(
        meta.inputs["model"].description.contains("\n\n"),
        "multi-paragraph doc kept"
    );
    let with_outputs = meta.with_outputs_from::<Decision>("run").unwrap();
    assert_eq!(
        with_outputs.outputs["decision"].value.as_deref(),
        Some("${{ steps.run.outputs.decision }}")
    );
}

fn base() -> ActionMetadata {
    ActionMetadata::new("a", "b").with_runs(Runs::composite(vec![
        Step::run("ok", "bash", "echo ok\n").with_id("ok"),
    ]))
}

fn only_error(meta: &ActionMetadata) -> (String, String) {
    let v = meta.validate();
    let errors: Vec<_> = v.errors().collect();
    assert_eq!(
        errors.len(),
        1,
        "expected exactly one error, got {:?}",
        v.findings
    );
    (errors[0].path.clone(), errors[0].message.clone())
}

#[test]
fn missing_required_fields_are_errors() {
    let mut meta = base();
    meta.name = String::new();
    assert_eq!(only_error(&meta).0, "name");
    let mut meta = base();
    meta.description = " ".into();
    assert_eq!(only_error(&meta).0, "description");
    let mut meta = base();
    meta.runs = None;
    assert_eq!(only_error(&meta).0, "runs");
    let meta = base().with_runs(Runs::composite(vec![]));
    assert_eq!(only_error(&meta).0, "runs.steps");
    let meta = base().with_input("x", Input::new(""));
    assert_eq!(only_error(&meta).0, "inputs.x.description");
    // A file without `name:` parses, and validation says what is missing.
    let meta = ActionMetadata::from_yaml("description: d\nruns:\n  using: node20\n").unwrap();
    assert_eq!(
        paths(&meta.validate(), Severity::Error),
        ["name", "runs.main"]
    );
}

#[test]
fn branding_values_must_be_allowed() {
    let meta = base().with_branding(Branding::new("zap", "grey"));
    let (path, message) = only_error(&meta);
    assert_eq!(path, "branding.color");
    assert!(message.contains("gray-dark"), "{message}");
    let meta = base().with_branding(Branding::new("coffee", "black"));
    assert_eq!(only_error(&meta).0, "branding.icon");
    assert!(
        base()
            .with_branding(Branding::new("zap", "black"))
            .validate()
            .is_ok()
    );
}

#[test]
fn input_and_output_ids_must_be_githubs() {
    let meta = base().with_input("1st", Input::new("d"));
    let (path, message) = only_error(&meta);
    assert_eq!(path, "inputs.1st");
    assert!(
        message.contains("starting with a letter or `_`"),
        "{message}"
    );
    let meta = base().with_output("a.b", Output::new("d", "${{ steps.ok.outputs.x }}"));
    assert_eq!(only_error(&meta).0, "outputs.a.b");
}

#[test]
fn run_steps_need_a_shell() {
    let mut step = Step::run("s", "bash", "echo\n");
    step.shell = None;
    let meta = base().with_runs(Runs::composite(vec![Step::run("a", "bash", "true"), step]));
    let (path, message) = only_error(&meta);
    assert_eq!(path, "runs.steps[1].shell");
    assert!(message.contains("bash"), "{message}");
}

#[test]
fn inputs_inside_run_are_script_injection() {
    let meta = base().with_runs(Runs::composite(vec![
        Step::run("a", "bash", "true"),
        Step::run("b", "bash", "true"),
        Step::run("c", "bash", "echo \"${{ inputs.name }}\"\n"),
    ]));
    let (path, message) = only_error(&meta);
    assert_eq!(path, "runs.steps[2].run");
    assert!(
        message.contains("script injection") && message.contains("env:"),
        "{message}"
    );

    let meta = base().with_runs(Runs::composite(vec![Step::run(
        "t",
        "bash",
        "title='${{ github.event.issue.title }}'",
    )]));
    assert_eq!(only_error(&meta).0, "runs.steps[0].run");

    // Through env: it is fine.
    let meta = base().with_runs(Runs::composite(vec![
        Step::run("ok", "bash", "echo \"$NAME\"").with_env("NAME", "${{ inputs.name }}"),
    ]));
    assert!(meta.validate().findings.is_empty());
}

#[test]
fn unpinned_uses_is_flagged_as_a_warning() {
    let meta = base().with_runs(Runs::composite(vec![
        Step::uses("co", "actions/checkout@v4"),
        Step::uses(
            "pinned",
            "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683",
        ),
        Step::uses("local", "./sub"),
    ]));
    let v = meta.validate();
    assert!(v.is_ok());
    assert_eq!(paths(&v, Severity::Warning), ["runs.steps[0].uses"]);
    let message = &v.findings[0].message;
    assert!(message.contains("40-hex commit SHA"), "{message}");
    assert!(v.into_result().is_ok(), "warnings do not fail");
}

#[test]
fn outputs_must_refer_to_existing_steps() {
    let meta = base().with_output("x", Output::new("d", "${{ steps.nope.outputs.x }}"));
    let (path, message) = only_error(&meta);
    assert_eq!(path, "outputs.x.value");
    assert!(message.contains("`nope`"), "{message}");
    let meta = base().with_output(
        "x",
        Output {
            description: Some("d".into()),
            value: None,
        },
    );
    assert_eq!(only_error(&meta).0, "outputs.x.value");
}

#[test]
fn step_shape_rules() {
    let mut both = Step::run("s", "bash", "true");
    both.uses = Some("./x".into());
    let meta = base().with_runs(Runs::composite(vec![both, Step::default()]));
    assert_eq!(
        paths(&meta.validate(), Severity::Error),
        ["runs.steps[0]", "runs.steps[1]"]
    );
    let meta = base().with_runs(Runs::composite(vec![
        Step::run("a", "bash", "true").with_id("x"),
        Step::run("b", "bash", "true").with_id("x"),
    ]));
    assert_eq!(only_error(&meta).0, "runs.steps[1].id");
}

#[test]
fn invalid_error_lists_every_error_with_its_path() {
    let mut meta = base().with_branding(Branding::new("nope", "grey"));
    meta.name.clear();
    let err = meta.validate().into_result().unwrap_err();
    let text = err.to_string();
    assert!(text.contains("3 errors"), "{text}");
    assert!(text.contains("error: name: required"), "{text}");
    assert!(text.contains("error: branding.icon"), "{text}");
}

fn text_strategy() -> impl Strategy<Value = String> {
    // Lines of printable text (including YAML-special characters and indentation) joined by
    // newlines, with or without a final newline.
    (prop::collection::vec("[ -~]{0,30}", 1..6), any::<bool>()).prop_map(|(lines, trailing)| {
        let mut s = lines.join("\n");
        if trailing {
            s.push('\n');
        }
        s
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn multiline_text_round_trips_exactly(description in text_strategy(), script in text_strategy()) {
        let meta = ActionMetadata::new("n", description.clone())
            .with_input("x", Input::new(description.clone()).with_default(script.clone()))
            .with_runs(Runs::composite(vec![Step::run("s", "bash", script)]));
        let yaml = meta.to_yaml().unwrap();
        let back = ActionMetadata::from_yaml(&yaml).unwrap();
        prop_assert_eq!(&back, &meta);
        // Multi-line values without trailing blanks are written as block scalars.
        if description.contains('\n') && !description.lines().any(|l| l.ends_with(' ') || l.starts_with(' ')) && !description.starts_with('\n') {
            let block = yaml.contains("description: |");
            prop_assert!(block, "{}", yaml);
        }
    }
}
