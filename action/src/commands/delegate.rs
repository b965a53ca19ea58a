//! `flow delegate` and `flow review-issue`: decisions from an LLM.

use anyhow::Context as _;
use flow_llm::ResponseFormat;
use flow_llm::protocol::JsonSchemaFormat;
use flow_orchestrator::Orchestrator;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::llm::{self, Overlay, text_or_file};
use crate::cli::{DelegateArgs, GlobalArgs, LlmArgs, ReviewIssueArgs};
use crate::report::Outcome;

/// The typed answer of `--choices`.
#[derive(Debug, Deserialize, JsonSchema)]
struct Pick {
    /// Exactly one of the offered choices.
    choice: String,
    /// One sentence: why.
    reason: String,
}

/// The orchestrator for an LLM subcommand, and the runtime it lives in.
fn orchestrator(
    global: &GlobalArgs,
    llm_args: &LlmArgs,
) -> anyhow::Result<(tokio::runtime::Runtime, Orchestrator)> {
    let mut overlay = Overlay::default();
    overlay.llm(llm_args);
    let config = llm::config(global, &overlay)?;
    let rt = llm::runtime()?;
    let orchestrator = {
        let _guard = rt.enter();
        llm::builder(&config, &overlay)?.build()?
    };
    Ok((rt, orchestrator))
}

pub(crate) fn delegate(args: &DelegateArgs, global: &GlobalArgs) -> anyhow::Result<Outcome> {
    let prompt = args.prompt.as_deref().context("--prompt is required")?;
    let prompt = text_or_file(prompt)?;
    let system = args.system.as_deref().map(text_or_file).transpose()?;
    let (rt, orch) = orchestrator(global, &args.llm)?;
    let (answer, mut json, model) = if !args.choices.is_empty() {
        let choices = args.choices.join(", ");
        let prompt = format!("{prompt}\n\nAnswer with exactly one of these choices: {choices}.");
        let decision = rt.block_on(orch.delegate::<Pick>(system.as_deref(), &prompt))?;
        let pick = decision.value;
        anyhow::ensure!(
            args.choices.contains(&pick.choice),
            "the model chose {:?}, which is not one of: {choices}",
            pick.choice
        );
        let json = json!({"answer": pick.choice, "reason": pick.reason});
        (pick.choice, json, decision.response.model)
    } else if let Some(schema) = &args.schema {
        let schema: Value = serde_json::from_str(&text_or_file(schema)?)
            .context("--schema: expected a JSON Schema (inline JSON or @path)")?;
        let model = orch
            .chat_model()
            .context("no LLM is configured: set --provider and its key (or OPENAI_API_KEY)")?;
        let request = orch
            .request(system.as_deref(), &prompt)
            .with_response_format(ResponseFormat::JsonSchema {
                json_schema: JsonSchemaFormat {
                    name: "answer".into(),
                    description: None,
                    schema: Some(schema),
                    strict: Some(true),
                },
            });
        let response = rt.block_on(model.complete(&request))?;
        let text = response.text().context("the model returned no answer")?;
        let value: Value = serde_json::from_str(text)
            .with_context(|| format!("the model's answer is not JSON: {text}"))?;
        let answer = serde_json::to_string(&value)?;
        (answer, json!({"answer": value}), response.model)
    } else {
        let text = rt.block_on(orch.delegate_text(system.as_deref(), &prompt))?;
        (text.clone(), json!({"answer": text}), String::new())
    };
    if !model.is_empty() {
        json["model"] = json!(model);
    }
    Ok(Outcome {
        text: format!("{answer}\n"),
        summary: Some(format!(
            "### flow delegate\n\n**Answer:**\n\n{}\n",
            quote(&answer)
        )),
        outputs: vec![("answer".into(), answer)],
        json,
        annotations: Vec::new(),
        failure: None,
    })
}

pub(crate) fn review_issue(args: &ReviewIssueArgs, global: &GlobalArgs) -> anyhow::Result<Outcome> {
    let (title, body) = match (&args.title, &args.body) {
        (Some(t), b) => (t.clone(), b.as_deref().map(text_or_file).transpose()?),
        (None, b) => {
            let (t, eb) = issue_from_event()?;
            (t, b.as_deref().map(text_or_file).transpose()?.or(eb))
        }
    };
    let evidence = text_or_file(args.evidence.as_deref().context("--evidence is required")?)?;
    let issue = format!("# {title}\n\n{}", body.unwrap_or_default());
    let (rt, orch) = orchestrator(global, &args.llm)?;
    let decision = rt.block_on(orch.review_issue(&issue, &evidence))?;
    let v = decision.value;
    let verdict = if v.fixed { "fixed" } else { "not fixed" };
    let mut text = format!("{verdict}: {}\n", v.message);
    if !v.refinement.is_empty() {
        text.push_str(&format!("next step: {}\n", v.refinement));
    }
    Ok(Outcome {
        summary: Some(format!(
            "### flow review-issue: {title}\n\n**{verdict}**: {}\n{}",
            v.message,
            if v.refinement.is_empty() {
                String::new()
            } else {
                format!("\n**Next step:** {}\n", v.refinement)
            }
        )),
        outputs: vec![
            ("fixed".into(), v.fixed.to_string()),
            ("answer".into(), v.message.clone()),
        ],
        json: json!({"fixed": v.fixed, "message": v.message, "refinement": v.refinement,
            "model": decision.response.model}),
        text,
        annotations: Vec::new(),
        failure: None,
    })
}

/// Title and body of the issue in an `issues`/`issue_comment` event payload.
fn issue_from_event() -> anyhow::Result<(String, Option<String>)> {
    let path = std::env::var("GITHUB_EVENT_PATH")
        .ok()
        .filter(|p| !p.is_empty())
        .context("--title is required (no GITHUB_EVENT_PATH with an issue event)")?;
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let event: Value = serde_json::from_str(&text).with_context(|| format!("parsing {path}"))?;
    let issue = event
        .get("issue")
        .context("--title is required: the event payload has no `issue`")?;
    let title = issue
        .get("title")
        .and_then(Value::as_str)
        .context("the event's issue has no title")?
        .to_owned();
    let body = issue.get("body").and_then(Value::as_str).map(str::to_owned);
    Ok((title, body))
}

fn quote(text: &str) -> String {
    text.lines()
        .map(|l| format!("> {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
