//! Building from the configuration file and the environment.

use std::collections::HashMap;

use flow_orchestrator::settings::Sources;
use flow_orchestrator::{ErrorKind, FlowConfig, Orchestrator, Settings};

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let m: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    move |k| m.get(k).cloned()
}

#[tokio::test]
async fn nothing_configured_builds_an_orchestrator_without_parts() {
    let config = FlowConfig::default().apply_env(env(&[])).unwrap();
    let o = Orchestrator::configure(&config, env(&[]))
        .unwrap()
        .build()
        .unwrap();
    assert!(o.chat_model().is_none());
    assert_eq!(o.monitor_options().max_pages, 10);
}

#[tokio::test]
async fn the_file_and_environment_choose_the_model_rules_and_query() {
    let config = FlowConfig::from_yaml(
        "llm:\n  provider: compatible\n  model: llama3.2\n  max_retries: 0\ncache:\n  backend: none\ntelemetry:\n  workflow: ci.yml\n  triage: false\n  rules:\n    defaults:\n      consecutive_failures: 2\n",
    )
    .unwrap();
    let vars = [
        ("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1"),
        ("GITHUB_TOKEN", "ghp_x"),
        ("GITHUB_REPOSITORY", "octo/hello"),
    ];
    let config = config.apply_env(env(&vars)).unwrap();
    let o = Orchestrator::configure(&config, env(&vars))
        .unwrap()
        .build()
        .unwrap();
    assert!(o.chat_model().is_some());
    assert_eq!(o.rules().for_workflow("CI").consecutive_failures, 2);
    assert_eq!(
        o.monitor_options().query.workflow.as_deref(),
        Some("ci.yml")
    );
    assert!(!o.monitor_options().triage);
    assert!(
        format!("{o:?}").contains("source: true, sink: true, publisher: true"),
        "{o:?}"
    );
    // Secrets never reach Debug.
    assert!(!format!("{o:?}").contains("ghp_x"));
}

#[tokio::test]
async fn an_incomplete_provider_names_the_missing_variable() {
    let config = FlowConfig::from_yaml("llm:\n  provider: openai\n").unwrap();
    let e = Orchestrator::configure(&config, env(&[])).unwrap_err();
    // The typed settings name the missing setting and every way to give it.
    assert!(matches!(e.kind(), ErrorKind::Config { .. }), "{e}");
    assert!(e.to_string().contains("llm.api_key"), "{e}");
    assert!(e.to_string().contains("OPENAI_API_KEY"), "{e}");
}

#[tokio::test]
async fn a_bad_redis_url_is_a_cache_error() {
    let config = FlowConfig::from_yaml("cache:\n  backend: redis\n  url: http://nope\n").unwrap();
    let e = Orchestrator::configure(&config, env(&[("OPENAI_API_KEY", "sk-1")])).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Cache(_)), "{e}");
}

#[test]
fn the_configuration_schema_is_pinned() {
    // A change to the file format shows up here; review the snapshot with the docs. The rules
    // are flow-telemetry's (pinned by its own tests), so only their place is kept here.
    let mut schema = flow_orchestrator::config::json_schema();
    let rules = "[flow-telemetry rules]";
    for def in ["Rules", "Thresholds", "Overrides"] {
        assert!(schema["$defs"][def].is_object(), "{def}");
        schema["$defs"][def] = rules.into();
    }
    schema["properties"]["telemetry"]["default"]["rules"] = rules.into();
    schema["$defs"]["TelemetryConfig"]["properties"]["rules"]["default"] = rules.into();
    insta::assert_json_snapshot!("flow_config_schema", schema);
}

/// flow-llm's configuration resolved from an injected environment (no file), as a library user
/// builds one without the whole orchestrator.
fn client_config(pairs: &[(&str, &str)]) -> flow_orchestrator::Result<flow_llm::ClientConfig> {
    let lookup = env(pairs);
    Settings::resolve(&Sources::new(&lookup).without_file())?.client_config()
}

#[test]
fn environment_picks_the_provider() {
    let c = client_config(&[("OPENAI_API_KEY", "sk-1"), ("OPENAI_MODEL", "gpt-4.1")]).unwrap();
    assert_eq!((c.provider().name(), c.model()), ("openai", "gpt-4.1"));
    assert_eq!(c.endpoint(), "https://api.openai.com/v1/chat/completions");

    let c = client_config(&[("GITHUB_TOKEN", "t"), ("FLOW_LLM_GITHUB_ORG", "acme")]).unwrap();
    assert_eq!(
        c.endpoint(),
        "https://models.github.ai/orgs/acme/inference/chat/completions"
    );

    let c = client_config(&[
        ("AZURE_OPENAI_ENDPOINT", "https://x.openai.azure.com/"),
        ("AZURE_OPENAI_API_KEY", "k"),
        ("AZURE_OPENAI_DEPLOYMENT", "prod-4o"),
    ])
    .unwrap();
    assert_eq!(
        c.endpoint(),
        "https://x.openai.azure.com/openai/v1/chat/completions"
    );
    assert_eq!(c.model(), "prod-4o");

    let c = client_config(&[
        ("OPENAI_BASE_URL", "http://localhost:11434/v1"),
        ("FLOW_LLM_MODEL", "llama3.2"),
    ])
    .unwrap();
    assert_eq!(c.provider(), &flow_llm::Provider::Compatible);
    assert!(!c.has_api_key());

    let c = client_config(&[("OPENAI_API_KEY", "k"), ("FLOW_LLM_TIMEOUT_SECS", "7")]).unwrap();
    assert_eq!(c.timeout(), std::time::Duration::from_secs(7));
}

#[test]
fn environment_errors_name_the_variable() {
    let e = client_config(&[]).unwrap_err();
    assert!(e.to_string().contains("OPENAI_API_KEY"), "{e}");
    let e = client_config(&[("FLOW_LLM_PROVIDER", "azure")]).unwrap_err();
    assert!(e.to_string().contains("AZURE_OPENAI_ENDPOINT"), "{e}");
    let e =
        client_config(&[("OPENAI_API_KEY", "k"), ("FLOW_LLM_TIMEOUT_SECS", "soon")]).unwrap_err();
    assert!(e.to_string().contains("FLOW_LLM_TIMEOUT_SECS"), "{e}");
}
