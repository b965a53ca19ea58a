//! Prompts: validation, conversion of values to text, `{{variable}}` templates and GitHub
//! `.prompt.yml` files.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::protocol::{ChatRequest, JsonSchemaFormat, Message, ResponseFormat, Role};

/// A rough token count: about four bytes of UTF-8 per token, plus a few tokens of framing.
pub fn estimate_tokens(text: &str) -> u64 {
    (text.len() as u64).div_ceil(4)
}

/// Checks one prompt text: not empty, not only white space, no NUL.
///
/// # Errors
/// [`crate::ErrorKind::InvalidPrompt`] naming the problem.
pub fn validate_prompt(text: &str) -> Result<()> {
    if text.is_empty() {
        return Err(Error::prompt("the prompt is empty: expected some text"));
    }
    if text.trim().is_empty() {
        return Err(Error::prompt(
            "the prompt is only white space: expected some text",
        ));
    }
    if let Some(at) = text.find('\0') {
        return Err(Error::prompt(format!(
            "the prompt holds a NUL character at byte {at}: expected text without NUL"
        )));
    }
    Ok(())
}

/// Checks a conversation: at least one message, each system/developer/user text passes
/// [`validate_prompt`], no NUL anywhere, and the token estimate plus `max_completion_tokens`
/// fits `context_window` (when known).
///
/// # Errors
/// [`crate::ErrorKind::InvalidPrompt`] naming the message and the problem.
pub fn validate_messages(
    messages: &[Message],
    context_window: Option<u32>,
    max_completion_tokens: Option<u32>,
) -> Result<()> {
    if messages.is_empty() {
        return Err(Error::prompt(
            "messages is empty: expected at least one message",
        ));
    }
    let mut tokens = 0u64;
    for (i, m) in messages.iter().enumerate() {
        let text = m.content.as_deref().unwrap_or_default();
        let strict = matches!(m.role, Role::System | Role::Developer | Role::User);
        if strict {
            validate_prompt(text)
                .map_err(|e| Error::prompt(format!("messages[{i}] ({:?}): {e}", m.role)))?;
        } else if text.contains('\0') {
            return Err(Error::prompt(format!(
                "messages[{i}] ({:?}) holds a NUL character: expected text without NUL",
                m.role
            )));
        }
        tokens += estimate_tokens(text) + 4;
    }
    if let Some(window) = context_window {
        let wanted = tokens + u64::from(max_completion_tokens.unwrap_or(0));
        if wanted > u64::from(window) {
            return Err(Error::prompt(format!(
                "the prompt is about {tokens} tokens (plus {} for the answer), over the model's \
                 context window of {window}: shorten it or choose a larger model",
                max_completion_tokens.unwrap_or(0)
            )));
        }
    }
    Ok(())
}

/// Turns any `Serialize` value into prompt text.
///
/// With `auto` on, strings stay as they are, numbers, booleans and null become their JSON
/// text, and objects and arrays become pretty JSON (never `[object Object]`). With `auto` off,
/// only strings are accepted.
///
/// # Errors
/// [`crate::ErrorKind::InvalidPrompt`]: with `auto` off, naming the type received; or when the
/// value cannot be serialized.
pub fn to_prompt_text<T: Serialize + ?Sized>(value: &T, auto: bool) -> Result<String> {
    let v = serde_json::to_value(value).map_err(|e| {
        Error::prompt(format!(
            "a value of type {} could not be turned into prompt text: {e}",
            std::any::type_name::<T>()
        ))
    })?;
    match v {
        Value::String(s) => Ok(s),
        _ if !auto => Err(Error::prompt(format!(
            "the prompt is a {} ({}): expected a string, or enable auto-conversion",
            json_kind(&v),
            std::any::type_name::<T>()
        ))),
        Value::Object(_) | Value::Array(_) => serde_json::to_string_pretty(&v).map_err(|e| {
            Error::prompt(format!(
                "the prompt value could not be written as JSON: {e}"
            ))
        }),
        other => Ok(other.to_string()),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var(String),
}

/// A text with `{{variable}}` placeholders; rendering fails on a missing or unknown variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
    vars: BTreeSet<String>,
}

impl Template {
    /// Parses `text`. Variable names are letters, digits, `_`, `-` and `.`, with optional
    /// spaces inside the braces.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidPrompt`] for an unclosed `{{` or an invalid name.
    pub fn parse(text: &str) -> Result<Self> {
        let mut pieces = Vec::new();
        let mut vars = BTreeSet::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or_else(|| {
                Error::prompt(format!(
                    "the template has an unclosed `{{{{` at byte {}: expected `}}}}`",
                    text.len() - rest.len() + open
                ))
            })?;
            let name = after[..close].trim();
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
            {
                return Err(Error::prompt(format!(
                    "the template variable {name:?} is invalid: expected letters, digits, `_`, `-` or `.`"
                )));
            }
            vars.insert(name.to_owned());
            pieces.push(Piece::Var(name.to_owned()));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        Ok(Self { pieces, vars })
    }

    /// The variables the template uses.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.vars.iter().map(String::as_str)
    }

    /// Renders with `values`.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidPrompt`] naming a variable the template uses but `values`
    /// lacks, or one `values` has but the template does not use.
    pub fn render(&self, values: &BTreeMap<String, String>) -> Result<String> {
        if let Some(missing) = self.vars.iter().find(|v| !values.contains_key(*v)) {
            return Err(Error::prompt(format!(
                "the template variable {missing:?} has no value: expected one of the values to be named {missing:?}"
            )));
        }
        if let Some(unknown) = values.keys().find(|k| !self.vars.contains(*k)) {
            let known: Vec<&str> = self.variables().collect();
            return Err(Error::prompt(format!(
                "the value {unknown:?} is not a variable of the template: expected one of {known:?}"
            )));
        }
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Var(v) => out.push_str(values.get(v).map_or("", String::as_str)),
            }
        }
        Ok(out)
    }
}

/// A GitHub `.prompt.yml` file (as GitHub Models and `actions/ai-inference` read them).
///
/// An unknown key (a typo such as `modelParameter` or `contnet`) is an error naming the key
/// and its line, never silently ignored.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PromptFile {
    /// A display name.
    #[serde(default)]
    pub name: Option<String>,
    /// A description.
    #[serde(default)]
    pub description: Option<String>,
    /// The model, such as `openai/gpt-4o-mini`.
    #[serde(default)]
    pub model: Option<String>,
    /// Sampling parameters.
    #[serde(default)]
    pub model_parameters: ModelParameters,
    /// The messages, with `{{variables}}`.
    pub messages: Vec<PromptMessage>,
    /// `text`, `json_object` or `json_schema`.
    #[serde(default)]
    pub response_format: Option<String>,
    /// The JSON schema (as a YAML mapping or a JSON string) when the format is `json_schema`;
    /// either `{name, schema, strict}` or a bare schema.
    #[serde(default)]
    pub json_schema: Option<Value>,
    /// Test inputs for GitHub's prompt editor (not used to build a request).
    #[serde(default)]
    pub test_data: Option<Value>,
    /// Evaluators for GitHub's prompt editor (not used to build a request).
    #[serde(default)]
    pub evaluators: Option<Value>,
}

/// The `modelParameters` of a prompt file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModelParameters {
    /// Temperature.
    #[serde(default)]
    pub temperature: Option<f64>,
    /// Top-p.
    #[serde(default)]
    pub top_p: Option<f64>,
    /// The token limit (`maxTokens` or `maxCompletionTokens`).
    #[serde(default, alias = "maxCompletionTokens")]
    pub max_tokens: Option<u32>,
}

/// One message of a prompt file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptMessage {
    /// `system`, `developer`, `user` or `assistant`.
    pub role: Role,
    /// The text, with `{{variables}}`.
    pub content: String,
}

impl PromptFile {
    /// Parses the YAML text of a `.prompt.yml` file.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidPrompt`] naming what is wrong.
    pub fn parse(yaml: &str) -> Result<Self> {
        let file: Self = serde_norway::from_str(yaml)
            .map_err(|e| Error::prompt(format!("the prompt file is not valid: {e}")))?;
        if file.messages.is_empty() {
            return Err(Error::prompt(
                "the prompt file has no messages: expected at least one",
            ));
        }
        Ok(file)
    }

    /// Reads and parses a `.prompt.yml` file.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidPrompt`] when it cannot be read or parsed.
    pub fn load(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::prompt(format!(
                "the prompt file {} could not be read: {e}",
                path.display()
            ))
        })?;
        Self::parse(&text)
    }

    /// Builds a request, filling the `{{variables}}` of every message from `values`; an
    /// unknown value (used by no message) or a missing one is an error.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidPrompt`] for a template or schema problem.
    pub fn to_request(&self, values: &BTreeMap<String, String>) -> Result<ChatRequest> {
        let templates = self
            .messages
            .iter()
            .map(|m| Template::parse(&m.content))
            .collect::<Result<Vec<_>>>()?;
        let used: BTreeSet<&str> = templates.iter().flat_map(Template::variables).collect();
        if let Some(unknown) = values.keys().find(|k| !used.contains(k.as_str())) {
            return Err(Error::prompt(format!(
                "the value {unknown:?} is not a variable of the prompt file: expected one of {used:?}"
            )));
        }
        let mut req = ChatRequest::new(self.model.clone().unwrap_or_default());
        for (m, t) in self.messages.iter().zip(&templates) {
            let mine: BTreeMap<String, String> = values
                .iter()
                .filter(|(k, _)| t.vars.contains(*k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            req.messages.push(Message::new(m.role, t.render(&mine)?));
        }
        req.temperature = self.model_parameters.temperature;
        req.top_p = self.model_parameters.top_p;
        req.max_completion_tokens = self.model_parameters.max_tokens;
        req.response_format = match self.response_format.as_deref() {
            None | Some("text") => None,
            Some("json_object") => Some(ResponseFormat::JsonObject),
            Some("json_schema") => Some(self.schema_format()?),
            Some(other) => {
                return Err(Error::prompt(format!(
                    "responseFormat is {other:?}: expected text, json_object or json_schema"
                )));
            }
        };
        Ok(req)
    }

    fn schema_format(&self) -> Result<ResponseFormat> {
        let raw = self.json_schema.clone().ok_or_else(|| {
            Error::prompt("responseFormat is json_schema but jsonSchema is missing")
        })?;
        let value = match raw {
            Value::String(s) => serde_json::from_str(&s)
                .map_err(|e| Error::prompt(format!("jsonSchema is not valid JSON: {e}")))?,
            v => v,
        };
        let json_schema = if value.get("schema").is_some() {
            serde_json::from_value::<JsonSchemaFormat>(value).map_err(|e| {
                Error::prompt(format!(
                    "jsonSchema: expected {{name, schema, strict}}: {e}"
                ))
            })?
        } else {
            JsonSchemaFormat {
                name: "answer".into(),
                description: None,
                schema: Some(value),
                strict: Some(true),
            }
        };
        Ok(ResponseFormat::JsonSchema { json_schema })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn validation_names_the_problem() {
        assert!(
            validate_prompt("")
                .unwrap_err()
                .to_string()
                .contains("empty")
        );
        assert!(
            validate_prompt(" \n\t")
                .unwrap_err()
                .to_string()
                .contains("white space")
        );
        assert!(
            validate_prompt("a\0b")
                .unwrap_err()
                .to_string()
                .contains("NUL character at byte 1")
        );
        validate_prompt("ok").unwrap();
        let big = Message::user("x".repeat(40_000));
        let e = validate_messages(&[big], Some(8_192), None).unwrap_err();
        assert!(e.to_string().contains("context window of 8192"), "{e}");
    }

    #[derive(Serialize)]
    struct Evidence {
        tests: u32,
        passed: bool,
    }

    #[test]
    fn auto_conversion() {
        assert_eq!(to_prompt_text(&42, true).unwrap(), "42");
        assert_eq!(to_prompt_text(&true, true).unwrap(), "true");
        assert_eq!(to_prompt_text("s", false).unwrap(), "s");
        let t = to_prompt_text(
            &Evidence {
                tests: 3,
                passed: true,
            },
            true,
        )
        .unwrap();
        assert_eq!(t, "{\n  \"tests\": 3,\n  \"passed\": true\n}");
        let e = to_prompt_text(
            &Evidence {
                tests: 3,
                passed: true,
            },
            false,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("object") && e.to_string().contains("Evidence"),
            "{e}"
        );
        let e = to_prompt_text(&1.5f64, false).unwrap_err();
        assert!(e.to_string().contains("number (f64)"), "{e}");
    }

    #[test]
    fn templates_fail_on_missing_and_unknown() {
        let t = Template::parse("Is {{ issue }} fixed by {{pr}}?").unwrap();
        let mut v = BTreeMap::from([("issue".to_owned(), "#1".to_owned())]);
        assert!(t.render(&v).unwrap_err().to_string().contains("\"pr\""));
        v.insert("pr".into(), "#2".into());
        assert_eq!(t.render(&v).unwrap(), "Is #1 fixed by #2?");
        v.insert("extra".into(), "x".into());
        assert!(t.render(&v).unwrap_err().to_string().contains("\"extra\""));
        assert!(Template::parse("a {{b").is_err());
        assert!(Template::parse("a {{}}").is_err());
    }

    #[test]
    fn prompt_file_to_request() {
        let yaml = r#"
name: Triage
model: openai/gpt-4o-mini
modelParameters:
  temperature: 0.2
  maxTokens: 300
messages:
  - role: system
    content: You triage issues.
  - role: user
    content: "Triage: {{input}}"
responseFormat: json_schema
jsonSchema: |-
  {"name": "triage", "strict": true, "schema": {"type": "object", "properties": {"label": {"type": "string"}}, "required": ["label"], "additionalProperties": false}}
testData:
  - input: crash on start
"#;
        let f = PromptFile::parse(yaml).unwrap();
        let r = f
            .to_request(&BTreeMap::from([("input".into(), "crash".into())]))
            .unwrap();
        assert_eq!(r.model, "openai/gpt-4o-mini");
        assert_eq!(r.messages[1].content.as_deref(), Some("Triage: crash"));
        assert_eq!(
            (r.temperature, r.max_completion_tokens),
            (Some(0.2), Some(300))
        );
        let Some(ResponseFormat::JsonSchema { json_schema }) = r.response_format else {
            panic!("expected json_schema")
        };
        assert_eq!(
            (json_schema.name.as_str(), json_schema.strict),
            ("triage", Some(true))
        );
        assert!(f.to_request(&BTreeMap::new()).is_err());
    }

    #[test]
    fn a_typo_in_a_prompt_file_names_the_key_and_line() {
        let e = PromptFile::parse(
            "model: m\nmodelParameters:\n  temprature: 0.2\nmessages:\n  - role: user\n    content: hi\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("temprature") && e.contains("line 3"), "{e}");
        let e = PromptFile::parse("messages:\n  - role: user\n    contnet: hi\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("contnet") && e.contains("line 3"), "{e}");
    }

    proptest! {
        #[test]
        fn validation_never_panics(s in any::<String>(), window in proptest::option::of(0u32..100_000), max in proptest::option::of(any::<u32>())) {
            let _ = validate_prompt(&s);
            let _ = validate_messages(&[Message::user(s.clone()), Message::assistant(s.clone())], window, max);
            let _ = Template::parse(&s).map(|t| t.render(&BTreeMap::new()));
        }

        #[test]
        fn auto_conversion_never_panics(v in proptest_json()) {
            let text = to_prompt_text(&v, true).unwrap();
            prop_assert!(!text.contains("[object Object]"));
            let _ = to_prompt_text(&v, false);
        }
    }

    fn proptest_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            ".*".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z]{0,4}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }
}
