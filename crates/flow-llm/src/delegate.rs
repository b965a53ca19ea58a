//! Typed answers: ask for JSON that follows the schema of `T`, check it locally, ask once more
//! on a mismatch.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use jsonschema::Validator;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{Error, ErrorKind, Result};
use crate::model::ChatModel;
use crate::protocol::{
    ChatRequest, ChatResponse, FinishReason, JsonSchemaFormat, Message, ResponseFormat, Tool,
    ToolChoice, Usage,
};
use crate::schema::{StrictSchema, schema_name};

/// How the schema reaches the model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AnswerMode {
    /// `response_format: json_schema` with `strict: true` (OpenAI, GitHub Models, Azure).
    #[default]
    JsonSchema,
    /// One forced function tool whose arguments are the answer, for servers without
    /// json_schema support.
    ToolCall,
}

/// A typed answer and how it was obtained.
#[derive(Debug, Clone)]
pub struct Decision<T> {
    /// The answer.
    pub value: T,
    /// The response that carried it (its `meta` says which model answered, whether it was
    /// cached or stale, and how many attempts it took).
    pub response: ChatResponse,
    /// Tokens spent, summed over the asks: an ask answered from the cache counts zero
    /// ([`ChatResponse::spent_usage`]), so summing `usage` over decisions adds up to what a
    /// [`crate::Budgeted`] layer counts, with no double counting of cache hits.
    pub usage: Usage,
    /// The usage the answers carry, summed over the asks, cached ones included (what the
    /// original calls cost when they were made).
    pub original_usage: Usage,
    /// Whether the answer was served from the cache (a fresh hit, a shared call in flight or
    /// a stale answer) rather than by an API call of its own.
    pub cached: bool,
    /// How many times the model was asked (2 when the first answer did not match).
    pub asks: u32,
}

/// The schema of an answer type and its validators.
struct AnswerSpec {
    name: String,
    strict: StrictSchema,
    strict_validator: Validator,
    original_validator: Option<Validator>,
}

/// Specs built so far, by schemars schema id: building the validators costs far more than a
/// lookup, and a program asks for the same few types again and again.
static SPECS: OnceLock<Mutex<HashMap<String, Arc<AnswerSpec>>>> = OnceLock::new();

impl AnswerSpec {
    fn for_type<T: JsonSchema>() -> Result<Arc<Self>> {
        let id = T::schema_id();
        let specs = SPECS.get_or_init(Mutex::default);
        if let Some(spec) = specs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id.as_ref())
        {
            return Ok(Arc::clone(spec));
        }
        let spec = Arc::new(Self::new::<T>()?);
        specs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.into_owned(), Arc::clone(&spec));
        Ok(spec)
    }

    fn new<T: JsonSchema>() -> Result<Self> {
        let original = schemars::schema_for!(T);
        let strict = StrictSchema::from_schema(original.as_value());
        let strict_validator = jsonschema::validator_for(&strict.schema).map_err(|e| {
            Error::config(format!(
                "the strict schema of {} is invalid: {e}",
                T::schema_name()
            ))
        })?;
        // The original may carry keywords the strict subset drops (minimum, pattern...).
        let original_validator = jsonschema::validator_for(original.as_value()).ok();
        Ok(Self {
            name: schema_name(&T::schema_name()),
            strict,
            strict_validator,
            original_validator,
        })
    }

    fn apply(&self, mut req: ChatRequest, mode: AnswerMode) -> ChatRequest {
        match mode {
            AnswerMode::JsonSchema => {
                req.response_format = Some(ResponseFormat::JsonSchema {
                    json_schema: JsonSchemaFormat {
                        name: self.name.clone(),
                        description: None,
                        schema: Some(self.strict.schema.clone()),
                        strict: Some(true),
                    },
                });
            }
            AnswerMode::ToolCall => {
                let mut tool = Tool::function(self.name.clone(), self.strict.schema.clone());
                tool.function.strict = Some(true);
                tool.function.description =
                    Some("Give the answer as the arguments of this function.".into());
                req.tools = vec![tool];
                req.tool_choice = Some(ToolChoice::Function(self.name.clone()));
            }
        }
        req
    }

    /// Parses and checks `raw`, returning a message for the model on a mismatch.
    fn parse<T: DeserializeOwned>(&self, raw: &str) -> std::result::Result<T, String> {
        let text = strip_fences(raw);
        let value: Value =
            serde_json::from_str(text).map_err(|e| format!("the answer is not valid JSON: {e}"))?;
        describe(&self.strict_validator, &value)?;
        let value = self.strict.unwrap_answer(value);
        if let Some(v) = &self.original_validator {
            describe(v, &value)?;
        }
        serde_json::from_value(value)
            .map_err(|e| format!("the answer does not fit the expected type: {e}"))
    }
}

fn describe(validator: &Validator, value: &Value) -> std::result::Result<(), String> {
    // The common case: a valid answer needs no error collection.
    if validator.is_valid(value) {
        return Ok(());
    }
    let errors: Vec<String> = validator
        .iter_errors(value)
        .take(3)
        .map(|e| {
            let at = e.instance_path().to_string();
            format!(
                "at {:?}: {e}",
                if at.is_empty() { "/" } else { at.as_str() }
            )
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the answer does not match the schema: {}",
            errors.join("; ")
        ))
    }
}

/// Removes a Markdown code fence some models put around JSON.
fn strip_fences(raw: &str) -> &str {
    let t = raw.trim();
    let Some(rest) = t.strip_prefix("```") else {
        return t;
    };
    let rest = rest.strip_prefix("json").unwrap_or(rest);
    rest.strip_suffix("```").unwrap_or(rest).trim()
}

/// The answer text of `response`, or the error for a refusal, a cut-off answer or a filter.
fn answer_text(response: &ChatResponse, mode: AnswerMode, name: &str) -> Result<String> {
    let model = &response.meta.model;
    let choice = response.first().ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidResponse,
            format!("model {model} answered with no choices: expected one"),
        )
    })?;
    if let Some(refusal) = choice.message.refusal.as_deref().filter(|r| !r.is_empty()) {
        return Err(Error::new(
            ErrorKind::Refused,
            format!("model {model} refused to answer: {refusal}"),
        ));
    }
    match choice.finish_reason {
        Some(FinishReason::Length) => {
            return Err(Error::new(
                ErrorKind::Truncated,
                format!(
                    "model {model} stopped at the token limit (finish_reason = length): raise max_completion_tokens or shorten the prompt"
                ),
            ));
        }
        Some(FinishReason::ContentFilter) => {
            return Err(Error::new(
                ErrorKind::ContentFiltered,
                format!(
                    "model {model}'s answer was blocked by the content filter (finish_reason = content_filter)"
                ),
            ));
        }
        _ => {}
    }
    if mode == AnswerMode::ToolCall
        && let Some(call) = choice
            .message
            .tool_calls
            .iter()
            .find(|c| c.function.name == name)
    {
        return Ok(call.function.arguments.clone());
    }
    choice.message.content.clone().filter(|c| !c.trim().is_empty()).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidAnswer,
            format!("model {model} answered with no content and no {name} tool call: expected a JSON answer"),
        )
    })
}

fn add_usage(total: &mut Usage, u: Usage) {
    total.prompt_tokens += u.prompt_tokens;
    total.completion_tokens += u.completion_tokens;
    total.total_tokens += u.total();
    if u.prompt_tokens_details.is_some() {
        total
            .prompt_tokens_details
            .get_or_insert_default()
            .cached_tokens += u.cached_tokens();
    }
    if u.completion_tokens_details.is_some() {
        total
            .completion_tokens_details
            .get_or_insert_default()
            .reasoning_tokens += u.reasoning_tokens();
    }
}

/// Asks `model` for an answer of type `T` with a strict `json_schema` response format.
///
/// See [`delegate_with`].
///
/// # Errors
/// As [`delegate_with`].
pub async fn delegate<T>(
    model: &(impl ChatModel + ?Sized),
    request: ChatRequest,
) -> Result<Decision<T>>
where
    T: JsonSchema + DeserializeOwned,
{
    delegate_with(model, request, AnswerMode::JsonSchema).await
}

/// Asks `model` for an answer of type `T`.
///
/// The schema of `T` (schemars) is turned into OpenAI's strict subset and sent as a
/// `json_schema` response format or as one forced function tool. The answer is checked
/// locally against the schema; on a mismatch the model is asked once more, with the
/// validation error.
///
/// An answer that fails the local checks (not JSON, not matching the schema, no content) is
/// rejected through [`ChatModel::invalidate`], so a [`crate::Cached`] layer in `model` drops
/// it instead of serving it to the next identical delegation.
///
/// # Errors
/// - [`ErrorKind::Refused`] when the model refuses, [`ErrorKind::Truncated`] for
///   `finish_reason = length`, [`ErrorKind::ContentFiltered`] for the content filter;
/// - [`ErrorKind::InvalidAnswer`] when the second answer still does not match;
/// - any error of `model`.
pub async fn delegate_with<T>(
    model: &(impl ChatModel + ?Sized),
    request: ChatRequest,
    mode: AnswerMode,
) -> Result<Decision<T>>
where
    T: JsonSchema + DeserializeOwned,
{
    let spec = AnswerSpec::for_type::<T>()?;
    let mut req = spec.apply(request, mode);
    let mut usage = Usage::default();
    let mut original_usage = Usage::default();
    for ask in 1..=2u32 {
        let response = model.complete(&req).await?;
        add_usage(&mut usage, response.spent_usage());
        add_usage(&mut original_usage, response.usage_or_default());
        let raw = match answer_text(&response, mode, &spec.name) {
            Ok(raw) => raw,
            Err(e) => {
                if e.kind() == &ErrorKind::InvalidAnswer {
                    model.invalidate(&req).await;
                }
                return Err(e);
            }
        };
        let parsed = spec.parse::<T>(&raw);
        if parsed.is_err() {
            // Never keep an answer that failed validation: a cache would serve it again.
            model.invalidate(&req).await;
        }
        match parsed {
            Ok(value) => {
                return Ok(Decision {
                    value,
                    cached: response.meta.is_cached(),
                    response,
                    usage,
                    original_usage,
                    asks: ask,
                });
            }
            Err(problem) if ask == 1 => {
                tracing::warn!(problem = %problem, "the answer did not match the schema; asking once more");
                let call = response
                    .first()
                    .and_then(|c| {
                        c.message
                            .tool_calls
                            .iter()
                            .find(|t| t.function.name == spec.name)
                    })
                    .filter(|_| mode == AnswerMode::ToolCall);
                match call {
                    Some(call) => {
                        req.messages
                            .push(Message::assistant_tool_calls(vec![call.clone()]));
                        req.messages.push(Message::tool(
                            call.id.clone(),
                            format!(
                                "{problem}. Call {} again with arguments that match its schema.",
                                spec.name
                            ),
                        ));
                    }
                    None => {
                        req.messages.push(Message::assistant(raw));
                        req.messages.push(Message::user(format!(
                            "{problem}. Answer again with only JSON that matches the schema {}.",
                            spec.name
                        )));
                    }
                }
            }
            Err(problem) => {
                return Err(Error::new(
                    ErrorKind::InvalidAnswer,
                    format!(
                        "model {} answered twice without matching the schema {}: {problem}",
                        response.meta.model, spec.name
                    ),
                ));
            }
        }
    }
    Err(Error::new(ErrorKind::InvalidAnswer, "no answer"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn fences_are_stripped() {
        assert_eq!(strip_fences("```json\n{\"a\":1}\n```"), "{\"a\":1}");
        assert_eq!(strip_fences(" {\"a\":1} "), "{\"a\":1}");
    }
}
