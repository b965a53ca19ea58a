//! The seed's loop, end to end: telemetry detects a failure burst, the LLM triages it, and
//! exactly one issue is opened; the next run adopts it without repeating itself; with the LLM down the issue is
//! still opened, without triage, and the report says why.

use std::collections::HashMap;

use flow_orchestrator::{FlowConfig, IssueAction, MonitorReport, Orchestrator};
use flow_telemetry::AlertKind;
use wiremock::MockServer;

use crate::github::{FAILING_STEP, GitHub, TOKEN, history};
use crate::openai;

const TRIAGE: &str = r#"{"category":"test","confidence":"medium","likely_cause":"Job `test` fails at step `cargo test --locked` in every run since the burst began; the builds still pass, so a test regression is likely.","evidence_quote":"step 17 `cargo test --locked`: failure","suggested_next_step":"Run `cargo test --locked` locally on the first failing commit and bisect from the last green run."}"#;

/// The configuration file a user would commit: an OpenAI-compatible server, the memory
/// cache, no retries, and rules where only the consecutive-failure detector can fire.
pub const FLOW_YML: &str = "\
llm:
  provider: compatible
  model: gpt-4o-mini
  max_retries: 0
  timeout_secs: 5
cache:
  backend: memory
  ttl_secs: 600
telemetry:
  max_pages: 2
  rules:
    defaults:
      failure_ewma_threshold: 1.0
issues:
  labels: [ci-health, bot]
";

/// Builds the orchestrator as the binary does: the file found in the repository, then the
/// environment, then `configure`.
pub fn orchestrator(
    repo: &std::path::Path,
    github: &MockServer,
    llm_base_url: &str,
) -> Orchestrator {
    let vars: HashMap<&str, String> = HashMap::from([
        ("GITHUB_API_URL", github.uri()),
        ("GITHUB_REPOSITORY", "octo/hello".to_owned()),
        ("GITHUB_TOKEN", TOKEN.to_owned()),
        ("OPENAI_BASE_URL", llm_base_url.to_owned()),
        ("OPENAI_API_KEY", "sk-e2e-not-a-real-key".to_owned()),
    ]);
    let env = move |k: &str| vars.get(k).cloned();
    let (config, found) = FlowConfig::discover(repo).unwrap();
    assert_eq!(found, Some(repo.join(".github/flow.yml")));
    let config = config.apply_env(&env).unwrap();
    Orchestrator::configure(&config, &env)
        .unwrap()
        .build()
        .unwrap()
}

pub fn repository() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".github")).unwrap();
    std::fs::write(dir.path().join(".github/flow.yml"), FLOW_YML).unwrap();
    dir
}

fn only_alert(report: &MonitorReport) -> &flow_orchestrator::AlertOutcome {
    let kinds: Vec<AlertKind> = report.alerts.iter().map(|a| a.alert.kind).collect();
    assert_eq!(kinds, [AlertKind::ConsecutiveFailures], "{report:#?}");
    &report.alerts[0]
}

#[tokio::test]
async fn a_failure_burst_opens_one_triaged_issue_and_the_next_run_adopts_it_quietly() {
    let repo = repository();
    let (github, gh) = GitHub::start(history(40, 5)).await;
    let llm = openai::answering(TRIAGE).await;
    let llm_url = format!("{}/v1", llm.uri());

    // First run: one alert, triaged, one issue opened.
    let report = orchestrator(repo.path(), &github, &llm_url)
        .monitor()
        .await
        .unwrap();
    assert_eq!(report.runs, 45);
    let a = only_alert(&report);
    assert_eq!(a.issue, Some(IssueAction::Opened { number: 1 }));
    let triage = a.triage.as_ref().expect("the LLM triaged the alert");
    assert!(triage.likely_cause.contains(FAILING_STEP));
    assert!(triage.suggested_next_step.contains("bisect"));
    assert!(a.triage_error.is_none());

    // The triage was asked from the failing jobs of the triggering run, in the real format.
    let asked = openai::requests(&llm).await;
    assert_eq!(asked.len(), 1);
    let sent = asked[0].to_string();
    assert!(
        sent.contains(FAILING_STEP) && sent.contains("job `test`: failure"),
        "{sent}"
    );
    assert_eq!(asked[0]["model"], "gpt-4o-mini");
    assert_eq!(asked[0]["response_format"]["type"], "json_schema");
    // The poller lists the jobs of each failed run once (a runner error is not a test
    // failure); the triage reads those of the alert's run (7042) again for its evidence.
    assert_eq!(
        gh.state.lock().unwrap().jobs_listed,
        [7_040, 7_041, 7_042, 7_043, 7_044, 7_042]
    );

    let issues = gh.issues();
    assert_eq!(issues.len(), 1, "exactly one issue");
    let body = issues[0]["body"].as_str().unwrap();
    assert!(issues[0]["title"].as_str().unwrap().contains("CI"));
    assert!(body.contains("flow-telemetry:fingerprint="), "{body}");
    // The LLM's triage is in the body.
    assert!(body.contains("**Likely cause:**"), "{body}");
    assert!(body.contains(&triage.likely_cause), "{body}");
    assert!(body.contains(&triage.suggested_next_step), "{body}");
    assert!(body.contains("actions/runs/7042"), "{body}");
    // Every configured label is created and put on the issue; the first one finds it.
    let names: Vec<&str> = issues[0]["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ci-health", "bot"]);
    assert_eq!(gh.state.lock().unwrap().labels, ["ci-health", "bot"]);

    // The step summary shows the KPIs, the issue and the triage.
    let md = report.to_markdown();
    assert!(
        md.contains("## Workflow health") && md.contains("opened #1"),
        "{md}"
    );
    assert!(md.contains("**Likely cause:**"), "{md}");

    // Second run (a new process without saved state: fresh orchestrator, memory cache and
    // state): the open issue is found by its marker and adopted; no new issue, and no
    // "seen again" comment repeating what the issue says (issue 10: say something only when
    // something changed).
    let report = orchestrator(repo.path(), &github, &llm_url)
        .monitor()
        .await
        .unwrap();
    assert_eq!(
        only_alert(&report).issue,
        Some(IssueAction::Opened { number: 1 })
    );
    assert_eq!(gh.issues().len(), 1, "still exactly one issue");
    let comments = gh.comments();
    assert!(comments.is_empty(), "{comments:?}");

    // Every GitHub request carried the token; nothing leaked it into the report.
    let st = gh.state.lock().unwrap();
    assert_eq!(st.unauthenticated, 0, "{:?}", st.requests);
    assert!(!report.to_json().contains(TOKEN));
}

#[tokio::test]
async fn with_the_llm_down_the_issue_is_still_opened_without_triage() {
    let repo = repository();
    let (github, gh) = GitHub::start(history(40, 5)).await;

    let report = orchestrator(repo.path(), &github, &openai::closed_base_url())
        .monitor()
        .await
        .unwrap();
    let a = only_alert(&report);
    assert_eq!(a.issue, Some(IssueAction::Opened { number: 1 }));
    assert!(a.triage.is_none());
    let why = a
        .triage_error
        .as_deref()
        .expect("the report says the triage failed");
    assert!(!why.is_empty());
    assert_eq!(report.triage_failures().count(), 1);
    assert!(report.issues_ok());

    let issues = gh.issues();
    assert_eq!(issues.len(), 1);
    let body = issues[0]["body"].as_str().unwrap();
    assert!(!body.contains("Likely cause"), "{body}");
    let md = report.to_markdown();
    assert!(md.contains("triage: **unavailable**"), "{md}");
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert!(json["alerts"][0]["triage_error"].is_string());
    assert!(json["alerts"][0].get("triage").is_none());
}

#[tokio::test]
async fn an_llm_answering_500_is_reported_the_same_way() {
    let repo = repository();
    let (github, gh) = GitHub::start(history(40, 5)).await;
    let llm = MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(
            wiremock::ResponseTemplate::new(500).set_body_json(serde_json::json!({
                "error": {"message": "The server had an error while processing your request.",
                          "type": "server_error", "param": null, "code": null}
            })),
        )
        .mount(&llm)
        .await;

    let report = orchestrator(repo.path(), &github, &format!("{}/v1", llm.uri()))
        .monitor()
        .await
        .unwrap();
    let a = only_alert(&report);
    assert_eq!(a.issue, Some(IssueAction::Opened { number: 1 }));
    assert!(a.triage_error.as_deref().unwrap().contains("500"), "{a:?}");
    // max_retries: 0 in the file: one attempt only.
    assert_eq!(openai::requests(&llm).await.len(), 1);
    assert_eq!(gh.issues().len(), 1);
}

#[tokio::test]
async fn a_healthy_history_opens_nothing() {
    let repo = repository();
    let (github, gh) = GitHub::start(history(45, 0)).await;
    let llm = openai::answering(TRIAGE).await;
    let report = orchestrator(repo.path(), &github, &format!("{}/v1", llm.uri()))
        .monitor()
        .await
        .unwrap();
    assert!(report.alerts.is_empty(), "{report:#?}");
    assert!(gh.issues().is_empty());
    assert!(openai::requests(&llm).await.is_empty());
}
