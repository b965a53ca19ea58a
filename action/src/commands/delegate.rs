//! `flow delegate` and `flow review-issue`: decisions from an LLM.

use std::collections::BTreeMap;

use anyhow::Context as _;
use flow_llm::protocol::JsonSchemaFormat;
use flow_llm::{CacheStatus, ChatRequest, ChatResponse, ResponseFormat};
use flow_orchestrator::{Orchestrator, Origin, Settings};
use serde::Deserialize;
use serde_json::{Value, json};

use super::llm::{self, text_or_file};
use crate::cli::{DelegateArgs, ReviewIssueArgs};
use crate::report::Outcome;
use crate::settings::Ctx;

/// The typed answer of `--choices`.
#[derive(Debug, Deserialize)]
struct Pick {
    choice: String,
    reason: String,
}

/// The strict schema of a `--choices` answer: `choice` is one of `choices` (an `enum` the
/// server enforces), `reason` one sentence.
pub(crate) fn choices_schema(choices: &[String]) -> Value {
    json!({
        "type": "object",
        "properties": {
            "choice": {
                "type": "string",
                "enum": choices,
                "description": "Exactly one of the offered choices."
            },
            "reason": {"type": "string", "description": "One sentence: why."}
        },
        "required": ["choice", "reason"],
        "additionalProperties": false
    })
}

/// The orchestrator for an LLM subcommand, and its runtime.
fn orchestrator(settings: &Settings) -> anyhow::Result<(tokio::runtime::Runtime, Orchestrator)> {
    let rt = llm::runtime()?;
    let orchestrator = {
        let _guard = rt.enter();
        llm::builder(settings)?.build()?
    };
    Ok((rt, orchestrator))
}

/// `name=value` pairs of `--var` (`@path` values read from files).
fn variables(vars: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for v in vars.iter().filter(|v| !v.trim().is_empty()) {
        let (name, value) = v
            .split_once('=')
            .with_context(|| format!("--var {v:?}: expected name=value"))?;
        let name = name.trim();
        anyhow::ensure!(!name.is_empty(), "--var {v:?}: expected a name before '='");
        out.insert(name.to_owned(), text_or_file(value)?);
    }
    Ok(out)
}

/// The request of `--prompt-file`: its messages with the variables filled in, its model
/// parameters and response format. Its model stands in for `llm.model` when nobody set one.
fn prompt_file_request(
    args: &DelegateArgs,
    settings: &mut Settings,
) -> anyhow::Result<Option<ChatRequest>> {
    let Some(path) = &args.prompt_file else {
        return Ok(None);
    };
    let file = flow_llm::prompt::PromptFile::load(path)
        .with_context(|| format!("--prompt-file {}", path.display()))?;
    let request = file
        .to_request(&variables(&args.var)?)
        .with_context(|| format!("--prompt-file {}", path.display()))?;
    if !request.model.is_empty() {
        let origin = Origin::File {
            path: path.display().to_string(),
            key: "model".into(),
        };
        let model = request.model.clone();
        settings.fill_default("llm.model", origin, |c| c.llm.model = Some(model));
    }
    Ok(Some(request))
}

/// What the answer cost and where it came from, for `--json` and the outputs.
fn usage_json(response: &ChatResponse, orch: &Orchestrator) -> Value {
    let totals = orch.usage();
    let from_cache = matches!(
        response.meta.cache,
        CacheStatus::Hit | CacheStatus::Coalesced | CacheStatus::Stale
    );
    json!({
        "model": response.meta.model,
        "provider": response.meta.provider,
        "fallback_index": response.meta.fallback_index,
        "from_cache": from_cache,
        "cache": format!("{:?}", response.meta.cache).to_lowercase(),
        "attempts": response.meta.attempts,
        "prompt_tokens": totals.prompt_tokens,
        "completion_tokens": totals.completion_tokens,
        "cached_tokens": totals.cached_tokens,
        "total_tokens": totals.total_tokens,
    })
}

pub(crate) fn delegate(args: &DelegateArgs, ctx: &Ctx<'_>) -> anyhow::Result<Outcome> {
    let prompt = match (&args.prompt, &args.prompt_file) {
        (Some(p), _) => Some(text_or_file(p)?),
        (None, Some(_)) => None,
        (None, None) => anyhow::bail!("--prompt is required (or --prompt-file)"),
    };
    let system = args.system.as_deref().map(text_or_file).transpose()?;
    let mut settings = ctx.settings()?;
    let from_file = prompt_file_request(args, &mut settings)?;
    let (rt, orch) = orchestrator(&settings)?;
    let model = orch
        .chat_model()
        .context("no LLM is configured: set --provider and its key (or OPENAI_API_KEY)")?
        .clone();
    let base = match from_file {
        Some(mut request) => {
            // The model every layer sees is the one that will answer.
            request.model = String::new();
            let mut request = orch.complete_request(request);
            if let Some(system) = &system {
                request
                    .messages
                    .insert(0, flow_llm::Message::system(system.clone()));
            }
            request
        }
        None => orch.request(system.as_deref(), prompt.as_deref().unwrap_or_default()),
    };
    let strict = |name: &str, schema: Value| ResponseFormat::JsonSchema {
        json_schema: JsonSchemaFormat {
            name: name.into(),
            description: None,
            schema: Some(schema),
            strict: Some(true),
        },
    };
    let (answer, mut json, response) = if !args.choices.is_empty() {
        let choices = args.choices.join(", ");
        let mut request = base;
        if let Some(last) = request
            .messages
            .iter_mut()
            .rev()
            .find(|m| m.role == flow_llm::Role::User)
            && let Some(text) = &mut last.content
        {
            text.push_str(&format!(
                "\n\nAnswer with exactly one of these choices: {choices}."
            ));
        }
        let request = request.with_response_format(strict("choice", choices_schema(&args.choices)));
        let response = rt.block_on(model.complete(&request))?;
        let text = response.text().context("the model returned no answer")?;
        let pick: Pick = serde_json::from_str(text)
            .with_context(|| format!("the model's answer is not a choice: {text}"))?;
        if !args.choices.contains(&pick.choice) {
            rt.block_on(model.invalidate(&request));
            anyhow::bail!(
                "the model chose {:?}, which is not one of: {choices}",
                pick.choice
            );
        }
        let json = json!({"answer": pick.choice, "reason": pick.reason});
        (pick.choice, json, response)
    } else if let Some(schema) = &args.schema {
        let schema: Value = serde_json::from_str(&text_or_file(schema)?)
            .context("--schema: expected a JSON Schema (inline JSON or @path)")?;
        let request = base.with_response_format(strict("answer", schema));
        let response = rt.block_on(model.complete(&request))?;
        let text = response.text().context("the model returned no answer")?;
        let value: Value = serde_json::from_str(text)
            .with_context(|| format!("the model's answer is not JSON: {text}"))?;
        let answer = serde_json::to_string(&value)?;
        (answer, json!({"answer": value}), response)
    } else {
        let response = rt.block_on(model.complete(&base))?;
        let text = response
            .text()
            .filter(|t| !t.trim().is_empty())
            .with_context(|| {
                format!(
                    "model {} answered with no text: expected a text answer",
                    response.meta.model
                )
            })?
            .to_owned();
        let json = match response.text().map(serde_json::from_str::<Value>) {
            Some(Ok(v)) if base.response_format.is_some() => json!({"answer": v}),
            _ => json!({"answer": text}),
        };
        (text, json, response)
    };
    let usage = usage_json(&response, &orch);
    if !response.meta.model.is_empty() {
        json["model"] = json!(response.meta.model);
    }
    json["usage"] = usage.clone();
    let mut text = format!("{answer}\n");
    if response.meta.fallback_index > 0 {
        text.push_str(&format!(
            "(answered by the fallback model {})\n",
            response.meta.model
        ));
    }
    Ok(Outcome {
        text,
        summary: Some(format!(
            "### flow delegate\n\n**Answer** ({}):\n\n{}\n",
            response.meta.model,
            quote(&answer)
        )),
        outputs: vec![
            ("answer".into(), answer),
            ("model".into(), response.meta.model),
            ("usage".into(), usage.to_string()),
        ],
        json,
        annotations: Vec::new(),
        failure: None,
    })
}

pub(crate) fn review_issue(args: &ReviewIssueArgs, ctx: &Ctx<'_>) -> anyhow::Result<Outcome> {
    let (title, body) = match (&args.title, &args.body) {
        (Some(t), b) => (t.clone(), b.as_deref().map(text_or_file).transpose()?),
        (None, b) => {
            let (t, eb) = issue_from_event(ctx)?;
            (t, b.as_deref().map(text_or_file).transpose()?.or(eb))
        }
    };
    let evidence = text_or_file(args.evidence.as_deref().context("--evidence is required")?)?;
    let issue = format!("# {title}\n\n{}", body.unwrap_or_default());
    let (rt, orch) = orchestrator(&ctx.settings()?)?;
    let decision = rt.block_on(orch.review_issue(&issue, &evidence))?;
    let usage = usage_json(&decision.response, &orch);
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
            ("model".into(), decision.response.meta.model.clone()),
            ("usage".into(), usage.to_string()),
        ],
        json: json!({"fixed": v.fixed, "message": v.message, "refinement": v.refinement,
            "model": decision.response.model, "usage": usage}),
        text,
        annotations: Vec::new(),
        failure: None,
    })
}

/// Title and body of the issue in an `issues`/`issue_comment` event payload.
fn issue_from_event(ctx: &Ctx<'_>) -> anyhow::Result<(String, Option<String>)> {
    let path = ctx
        .var(flow_orchestrator::env::GITHUB_EVENT_PATH)
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
