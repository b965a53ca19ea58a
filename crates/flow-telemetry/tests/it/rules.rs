//! The documented example rules file and the pinned JSON Schema.

use flow_telemetry::Rules;
use flow_telemetry::rules::{Thresholds, json_schema};

#[test]
fn example_rules_file_parses_and_matches_the_defaults() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules.example.yml");
    let rules = Rules::from_path(&path).unwrap();
    // The example documents the defaults: keep them in step.
    assert_eq!(rules.defaults, Thresholds::default());
    assert_eq!(rules.window, Rules::default().window);
    let nightly = rules.for_workflow("Nightly");
    assert_eq!(
        (
            nightly.duration_z,
            nightly.consecutive_failures,
            nightly.max_duration_ms
        ),
        (5.0, 2, Some(7_200_000))
    );
}

#[test]
fn toml_rules_file_is_chosen_by_extension() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.toml");
    std::fs::write(
        &path,
        "default_branch = \"trunk\"\n[defaults]\nconsecutive_failures = 5\n",
    )
    .unwrap();
    let rules = Rules::from_path(&path).unwrap();
    assert_eq!(rules.default_branch, "trunk");
    assert_eq!(rules.defaults.consecutive_failures, 5);
    std::fs::write(&path, "[defaults]\nconsecutive_failure = 5\n").unwrap();
    let err = Rules::from_path(&path).unwrap_err();
    assert!(
        err.to_string().contains("defaults.consecutive_failure"),
        "{err}"
    );
}

#[test]
fn rules_schema_snapshot() {
    insta::assert_snapshot!(
        "rules_schema",
        serde_json::to_string_pretty(&json_schema()).unwrap()
    );
}
