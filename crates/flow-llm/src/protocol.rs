//! Chat Completions wire types: what we send and what we accept back.
//!
//! Requests serialize to the shape of `CreateChatCompletionRequest` in OpenAI's API description
//! (a conformance test checks every shape this crate builds). Responses parse leniently, since
//! compatible servers differ: a missing `object`, an empty `finish_reason`, unknown fields and
//! missing usage details are all accepted.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions from the application (older models).
    System,
    /// Instructions from the application (reasoning models prefer this name).
    Developer,
    /// The end user's input.
    User,
    /// The model's earlier answer.
    Assistant,
    /// The result of a tool call.
    Tool,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// The text; `None` only for an assistant message that carries tool calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// An optional participant name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Tool calls the assistant made (assistant messages only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// The id of the tool call this message answers (tool messages only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl Message {
    /// A message of `role` with text `content`.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: Some(content.into()),
            name: None,
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::new(Role::System, content)
    }

    /// A developer message.
    pub fn developer(content: impl Into<String>) -> Self {
        Self::new(Role::Developer, content)
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::new(Role::User, content)
    }

    /// An assistant message with text.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new(Role::Assistant, content)
    }

    /// An assistant message that made tool calls.
    pub fn assistant_tool_calls(calls: Vec<ToolCall>) -> Self {
        Self {
            role: Role::Assistant,
            content: None,
            name: None,
            tool_calls: calls,
            tool_call_id: None,
        }
    }

    /// A tool message answering the call `tool_call_id`.
    pub fn tool(tool_call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            tool_call_id: Some(tool_call_id.into()),
            ..Self::new(Role::Tool, content)
        }
    }

    /// Sets the participant name.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// A function call the model asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The call id, echoed back in the tool message.
    #[serde(default)]
    pub id: String,
    /// Always `function`.
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    /// The function and its JSON-encoded arguments.
    pub function: FunctionCall,
}

fn function_type() -> String {
    "function".to_owned()
}

/// The function part of a [`ToolCall`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionCall {
    /// The function name.
    pub name: String,
    /// The arguments as a JSON text (as the wire format has it).
    #[serde(default)]
    pub arguments: String,
}

/// A function tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    /// Always `function`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The function's definition.
    pub function: FunctionDef,
}

impl Tool {
    /// A function tool named `name` whose arguments follow the JSON Schema `parameters`.
    pub fn function(name: impl Into<String>, parameters: Value) -> Self {
        Self {
            kind: function_type(),
            function: FunctionDef {
                name: name.into(),
                description: None,
                parameters: Some(parameters),
                strict: None,
            },
        }
    }
}

/// The definition of a function tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionDef {
    /// The name (`a-z`, `A-Z`, `0-9`, `_`, `-`; at most 64 characters).
    pub name: String,
    /// What the function does, for the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The JSON Schema of the arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    /// Whether the arguments must follow `parameters` exactly (structured outputs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

/// Which tool the model must (or may) call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    /// Call no tool.
    None,
    /// The model decides.
    Auto,
    /// Call at least one tool.
    Required,
    /// Call this function.
    Function(String),
}

impl Serialize for ToolChoice {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::None => s.serialize_str("none"),
            Self::Auto => s.serialize_str("auto"),
            Self::Required => s.serialize_str("required"),
            Self::Function(name) => {
                serde_json::json!({"type": "function", "function": {"name": name}}).serialize(s)
            }
        }
    }
}

impl<'de> Deserialize<'de> for ToolChoice {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        match &v {
            Value::String(s) if s == "none" => Ok(Self::None),
            Value::String(s) if s == "auto" => Ok(Self::Auto),
            Value::String(s) if s == "required" => Ok(Self::Required),
            _ => v
                .pointer("/function/name")
                .and_then(Value::as_str)
                .map(|n| Self::Function(n.to_owned()))
                .ok_or_else(|| {
                    serde::de::Error::custom(
                        "tool_choice: expected none, auto, required or {type: function, function: {name}}",
                    )
                }),
        }
    }
}

/// The format the answer must take.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormat {
    /// Free text.
    Text,
    /// Any JSON object.
    JsonObject,
    /// JSON that follows a schema.
    JsonSchema {
        /// The schema and its name.
        json_schema: JsonSchemaFormat,
    },
}

/// The `json_schema` member of [`ResponseFormat::JsonSchema`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonSchemaFormat {
    /// The schema name (`a-z`, `A-Z`, `0-9`, `_`, `-`; at most 64 characters).
    pub name: String,
    /// What the answer is for, for the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The JSON Schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
    /// Whether the answer must follow the schema exactly (OpenAI's strict subset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

/// How much a reasoning model thinks before answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReasoningEffort {
    /// No reasoning (where supported).
    None,
    /// The least reasoning.
    Minimal,
    /// Little reasoning.
    Low,
    /// The default.
    Medium,
    /// Much reasoning.
    High,
}

/// Per-call options that are not part of the wire request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallOptions {
    /// The instant by which the whole call (retries included) must finish.
    pub deadline: Option<tokio::time::Instant>,
    /// How long a cached answer stays fresh; `None` uses the cache's default.
    pub cache_ttl: Option<Duration>,
    /// Neither read nor write the cache for this call.
    pub no_store: bool,
}

/// A Chat Completions request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The model (or Azure deployment). Empty means the client's default model.
    pub model: String,
    /// The conversation.
    pub messages: Vec<Message>,
    /// Sampling temperature (0 to 2); dropped for reasoning models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling (0 to 1); dropped for reasoning models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// The maximum number of tokens to generate, reasoning included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    /// The legacy name of the token limit, sent only for servers whose quirks ask for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// A seed for best-effort determinism.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    /// Up to four stop sequences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Vec<String>>,
    /// Tools the model may call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
    /// Which tool to call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// The answer's format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<ResponseFormat>,
    /// Reasoning effort for reasoning models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<ReasoningEffort>,
    /// A stable end-user id for abuse monitoring.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Deadline, cache TTL and no-store; never sent.
    #[serde(skip)]
    pub options: CallOptions,
}

impl ChatRequest {
    /// A request to `model` with no messages yet.
    pub fn new(model: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            messages: Vec::new(),
            temperature: None,
            top_p: None,
            max_completion_tokens: None,
            max_tokens: None,
            seed: None,
            stop: None,
            tools: Vec::new(),
            tool_choice: None,
            response_format: None,
            reasoning_effort: None,
            user: None,
            options: CallOptions::default(),
        }
    }

    /// Appends a message.
    #[must_use]
    pub fn message(mut self, message: Message) -> Self {
        self.messages.push(message);
        self
    }

    /// Sets the temperature.
    #[must_use]
    pub fn with_temperature(mut self, t: f64) -> Self {
        self.temperature = Some(t);
        self
    }

    /// Sets top_p.
    #[must_use]
    pub fn with_top_p(mut self, p: f64) -> Self {
        self.top_p = Some(p);
        self
    }

    /// Sets the maximum number of completion tokens.
    #[must_use]
    pub fn with_max_completion_tokens(mut self, n: u32) -> Self {
        self.max_completion_tokens = Some(n);
        self
    }

    /// Sets the seed.
    #[must_use]
    pub fn with_seed(mut self, seed: i64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Sets the stop sequences.
    #[must_use]
    pub fn with_stop(mut self, stop: Vec<String>) -> Self {
        self.stop = Some(stop);
        self
    }

    /// Adds a tool.
    #[must_use]
    pub fn with_tool(mut self, tool: Tool) -> Self {
        self.tools.push(tool);
        self
    }

    /// Sets the tool choice.
    #[must_use]
    pub fn with_tool_choice(mut self, choice: ToolChoice) -> Self {
        self.tool_choice = Some(choice);
        self
    }

    /// Sets the response format.
    #[must_use]
    pub fn with_response_format(mut self, format: ResponseFormat) -> Self {
        self.response_format = Some(format);
        self
    }

    /// Sets the reasoning effort.
    #[must_use]
    pub fn with_reasoning_effort(mut self, effort: ReasoningEffort) -> Self {
        self.reasoning_effort = Some(effort);
        self
    }

    /// Sets the end-user id.
    #[must_use]
    pub fn with_user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Sets the deadline of the whole call, retries included.
    #[must_use]
    pub fn with_deadline(mut self, deadline: tokio::time::Instant) -> Self {
        self.options.deadline = Some(deadline);
        self
    }

    /// Sets the deadline to `timeout` from now; a `timeout` too long to represent as an instant
    /// (e.g. `Duration::MAX`) sets no deadline.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.options.deadline = tokio::time::Instant::now().checked_add(timeout);
        self
    }

    /// Sets how long a cached answer stays fresh.
    #[must_use]
    pub fn with_cache_ttl(mut self, ttl: Duration) -> Self {
        self.options.cache_ttl = Some(ttl);
        self
    }

    /// Neither reads nor writes the cache for this call.
    #[must_use]
    pub fn with_no_store(mut self) -> Self {
        self.options.no_store = true;
        self
    }
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinishReason {
    /// A natural end or a stop sequence.
    Stop,
    /// The token limit was reached; the answer is cut off.
    Length,
    /// The model called tools.
    ToolCalls,
    /// The content filter removed content.
    ContentFilter,
    /// The legacy function call.
    FunctionCall,
    /// A reason this crate does not know.
    Other(String),
}

impl FinishReason {
    fn as_str(&self) -> &str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
            Self::ToolCalls => "tool_calls",
            Self::ContentFilter => "content_filter",
            Self::FunctionCall => "function_call",
            Self::Other(s) => s,
        }
    }
}

impl Serialize for FinishReason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Parses `finish_reason`, reading null and `""` as absent.
fn lenient_finish_reason<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<FinishReason>, D::Error> {
    let raw: Option<String> = Option::deserialize(d)?;
    Ok(raw.filter(|s| !s.is_empty()).map(|s| match s.as_str() {
        "stop" | "end_turn" => FinishReason::Stop,
        "length" | "max_tokens" => FinishReason::Length,
        "tool_calls" => FinishReason::ToolCalls,
        "content_filter" => FinishReason::ContentFilter,
        "function_call" => FinishReason::FunctionCall,
        _ => FinishReason::Other(s),
    }))
}

/// The message inside a [`Choice`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponseMessage {
    /// Usually `assistant`; absent on some servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The answer text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// The refusal text, when the model refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    /// Tool calls the model made.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_empty"
    )]
    pub tool_calls: Vec<ToolCall>,
}

fn null_as_empty<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// One alternative answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    /// Its index.
    #[serde(default)]
    pub index: u32,
    /// The message.
    #[serde(default)]
    pub message: ResponseMessage,
    /// Why the model stopped.
    #[serde(
        default,
        deserialize_with = "lenient_finish_reason",
        skip_serializing_if = "Option::is_none"
    )]
    pub finish_reason: Option<FinishReason>,
}

/// Details of the prompt tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptTokensDetails {
    /// Prompt tokens served from the provider's prompt cache.
    #[serde(default, deserialize_with = "null_as_zero")]
    pub cached_tokens: u64,
}

/// Details of the completion tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletionTokensDetails {
    /// Tokens spent on hidden reasoning.
    #[serde(default, deserialize_with = "null_as_zero")]
    pub reasoning_tokens: u64,
}

fn null_as_zero<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Ok(Option::<u64>::deserialize(d)?.unwrap_or(0))
}

/// Token usage of one call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens in the prompt.
    #[serde(default, deserialize_with = "null_as_zero")]
    pub prompt_tokens: u64,
    /// Tokens in the answer.
    #[serde(default, deserialize_with = "null_as_zero")]
    pub completion_tokens: u64,
    /// Their sum.
    #[serde(default, deserialize_with = "null_as_zero")]
    pub total_tokens: u64,
    /// Prompt details (cached tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
    /// Completion details (reasoning tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens_details: Option<CompletionTokensDetails>,
}

impl Usage {
    /// Prompt tokens served from the provider's prompt cache (0 when not reported).
    pub fn cached_tokens(&self) -> u64 {
        self.prompt_tokens_details.map_or(0, |d| d.cached_tokens)
    }

    /// Reasoning tokens (0 when not reported).
    pub fn reasoning_tokens(&self) -> u64 {
        self.completion_tokens_details
            .map_or(0, |d| d.reasoning_tokens)
    }

    /// The total, computing it when the server left it out.
    pub fn total(&self) -> u64 {
        if self.total_tokens > 0 {
            self.total_tokens
        } else {
            self.prompt_tokens + self.completion_tokens
        }
    }
}

/// Where an answer came from, relative to the cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheStatus {
    /// No cache in the stack, or the call bypassed it (`no_store`).
    #[default]
    Bypass,
    /// Not in the cache; the API answered and the answer was stored.
    Miss,
    /// A fresh cached answer.
    Hit,
    /// An identical call was in flight; this one shared its answer (no API call of its own).
    Coalesced,
    /// Every model failed and a stale cached answer was served.
    Stale,
}

/// How a response was produced; filled by the client and the decorators, never sent or parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseMeta {
    /// The provider that answered (`openai`, `github-models`, `azure-openai`, `compatible`).
    pub provider: String,
    /// The model (or deployment) the request named.
    pub model: String,
    /// HTTP attempts made, retries and the attempts on earlier models of a fallback chain
    /// included (0 for an answer served from the cache; for a stale one, the failed attempts
    /// behind it).
    pub attempts: u32,
    /// The position in the fallback chain of the model that answered (0 is the primary).
    pub fallback_index: usize,
    /// The cache outcome.
    pub cache: CacheStatus,
    /// The server's request id.
    pub request_id: Option<String>,
    /// Time from sending to the whole answer, in the last attempt.
    pub latency: Duration,
}

impl ResponseMeta {
    /// Whether this answer is a stale cached one served because every model failed.
    pub fn is_stale(&self) -> bool {
        self.cache == CacheStatus::Stale
    }

    /// Whether this answer came from the cache rather than an API call of its own (a fresh
    /// hit, a share of an identical call in flight, or a stale answer): it spent no tokens.
    pub fn is_cached(&self) -> bool {
        matches!(
            self.cache,
            CacheStatus::Hit | CacheStatus::Coalesced | CacheStatus::Stale
        )
    }
}

/// A Chat Completions response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// The completion id.
    #[serde(default)]
    pub id: String,
    /// `chat.completion`; some servers leave it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<u64>,
    /// The model that answered, as the server names it.
    #[serde(default)]
    pub model: String,
    /// The answers.
    #[serde(default)]
    pub choices: Vec<Choice>,
    /// Token usage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// The backend configuration fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_fingerprint: Option<String>,
    /// How the response was produced (not part of the wire format).
    #[serde(skip)]
    pub meta: ResponseMeta,
}

impl ChatResponse {
    /// The first choice, if any.
    pub fn first(&self) -> Option<&Choice> {
        self.choices.first()
    }

    /// The text of the first choice.
    pub fn text(&self) -> Option<&str> {
        self.first().and_then(|c| c.message.content.as_deref())
    }

    /// The usage, or zeros when the server did not report it.
    pub fn usage_or_default(&self) -> Usage {
        self.usage.unwrap_or_default()
    }

    /// The tokens this answer cost now: zeros for an answer served from the cache (a fresh
    /// hit, a shared call in flight or a stale answer: [`ResponseMeta::is_cached`]), else the
    /// usage the server reported. [`ChatResponse::usage`] keeps the original call's usage
    /// either way, so summing `spent_usage` over calls adds up to what a
    /// [`crate::Budgeted`] layer counts.
    pub fn spent_usage(&self) -> Usage {
        if self.meta.is_cached() {
            Usage::default()
        } else {
            self.usage_or_default()
        }
    }
}

/// The parts of an error body we use; any shape is accepted.
#[derive(Debug, Default)]
pub(crate) struct ErrorBody {
    pub(crate) message: Option<String>,
    pub(crate) code: Option<String>,
    pub(crate) error_type: Option<String>,
}

/// Parses an error body leniently: `{"error": {...}}`, `{"error": "text"}`, a bare object with
/// `message`, or any text. The code may be a string, a number or absent.
pub(crate) fn parse_error_body(body: &[u8]) -> ErrorBody {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        return ErrorBody {
            message: (!text.is_empty()).then(|| truncate(text, 300)),
            ..ErrorBody::default()
        };
    };
    let inner = match v.get("error") {
        Some(Value::String(s)) => {
            return ErrorBody {
                message: Some(s.clone()),
                ..ErrorBody::default()
            };
        }
        Some(e @ Value::Object(_)) => e,
        _ => &v,
    };
    let text = |key: &str| match inner.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    ErrorBody {
        message: text("message"),
        code: text("code"),
        error_type: text("type"),
    }
}

pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[tokio::test]
    async fn an_unrepresentable_timeout_is_no_deadline_not_a_panic() {
        let r = ChatRequest::new("m").with_timeout(Duration::MAX);
        assert_eq!(r.options.deadline, None);
        let r = ChatRequest::new("m").with_timeout(Duration::from_secs(5));
        assert!(r.options.deadline.is_some());
    }

    #[test]
    fn lenient_response_parses() {
        let body = r#"{"id":"x","model":"m","choices":[{"message":{"content":"hi"},"finish_reason":"","extra":1}],
            "usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5,
                     "prompt_tokens_details":{"cached_tokens":1},"completion_tokens_details":{"reasoning_tokens":null}},
            "unknown":true}"#;
        let r: ChatResponse = serde_json::from_str(body).unwrap();
        assert_eq!(r.object, None);
        assert_eq!(r.text(), Some("hi"));
        assert_eq!(r.choices[0].finish_reason, None);
        let u = r.usage.unwrap();
        assert_eq!(
            (u.cached_tokens(), u.reasoning_tokens(), u.total()),
            (1, 0, 5)
        );
    }

    #[test]
    fn error_bodies_of_every_shape() {
        let e = parse_error_body(br#"{"error":{"message":"m","type":"t","code":429}}"#);
        assert_eq!(
            (e.message.as_deref(), e.code.as_deref()),
            (Some("m"), Some("429"))
        );
        let e = parse_error_body(br#"{"error":{"message":"m","code":null}}"#);
        assert_eq!(e.code, None);
        let e = parse_error_body(br#"{"error":"model not found"}"#);
        assert_eq!(e.message.as_deref(), Some("model not found"));
        let e = parse_error_body(b"<html>Bad Gateway</html>");
        assert_eq!(e.message.as_deref(), Some("<html>Bad Gateway</html>"));
        assert!(parse_error_body(b"").message.is_none());
    }

    #[test]
    fn tool_choice_round_trips() {
        for c in [
            ToolChoice::None,
            ToolChoice::Auto,
            ToolChoice::Required,
            ToolChoice::Function("f".into()),
        ] {
            let v = serde_json::to_value(&c).unwrap();
            assert_eq!(serde_json::from_value::<ToolChoice>(v).unwrap(), c);
        }
    }
}
