//! Action inputs and outputs derived from Rust types through their schemars JSON Schema, so that
//! `action.yml` cannot drift from what the binary accepts.
//!
//! For each property of the (object) schema of `T`:
//! - the input id is the property name (use `#[serde(rename_all = "kebab-case")]` on the struct
//!   to get GitHub-style ids);
//! - the description is the doc comment (schemars' `title` and `description` joined by a blank
//!   line), followed by "Allowed values: ..." when the type is a string enum;
//! - the default is the schema's `default`, as the text the runner would pass (`true`, `3`,
//!   `gpt-4o`; arrays and objects as JSON);
//! - `required: true` when the property is in `required` and has no default, else `false`;
//! - `deprecationMessage` when the property is `deprecated` (from `#[deprecated]`).

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde_json::Value;

use crate::error::{Error, ErrorKind, Result};
use crate::metadata::{ActionMetadata, Input, Output};

impl ActionMetadata {
    /// Metadata whose inputs are derived from the JSON Schema of `T`.
    ///
    /// # Errors
    /// [`ErrorKind::Schema`] when `T`'s schema is not an object with properties, or a property
    /// has no description (a doc comment is required, because GitHub requires input
    /// descriptions).
    pub fn from_inputs<T: JsonSchema>(
        name: impl Into<String>,
        description: impl Into<String>,
    ) -> Result<Self> {
        let mut meta = Self::new(name, description);
        meta.inputs = inputs_from_schema(schemars::schema_for!(T).as_value())?;
        Ok(meta)
    }

    /// Adds outputs derived from the JSON Schema of `O`: each property becomes an output whose
    /// value is `${{ steps.<step_id>.outputs.<property> }}`, described by its doc comment.
    ///
    /// # Errors
    /// As [`from_inputs`](Self::from_inputs).
    pub fn with_outputs_from<O: JsonSchema>(mut self, step_id: &str) -> Result<Self> {
        let schema = schemars::schema_for!(O);
        for (id, property) in properties(schema.as_value())? {
            let description = describe(&id, property, schema.as_value())?;
            self.outputs.insert(
                id.clone(),
                Output::new(
                    description,
                    format!("${{{{ steps.{step_id}.outputs.{id} }}}}"),
                ),
            );
        }
        Ok(self)
    }
}

/// The action inputs described by a JSON Schema (as produced by schemars) of an object.
///
/// # Errors
/// [`ErrorKind::Schema`] as for [`ActionMetadata::from_inputs`].
pub fn inputs_from_schema(schema: &Value) -> Result<IndexMap<String, Input>> {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut inputs = IndexMap::new();
    for (id, property) in properties(schema)? {
        let description = describe(&id, property, schema)?;
        let default = property
            .get("default")
            .or_else(|| resolve(property, schema).get("default"))
            .and_then(default_text);
        let is_required = required.contains(&id.as_str()) && default.is_none();
        let mut input = Input::new(description).with_required(is_required);
        input.default = default;
        if property.get("deprecated").and_then(Value::as_bool) == Some(true) {
            input.deprecation_message = Some(format!("`{id}` is deprecated."));
        }
        inputs.insert(id, input);
    }
    Ok(inputs)
}

fn schema_error(message: String) -> Error {
    Error::new(ErrorKind::Schema { message })
}

fn properties(schema: &Value) -> Result<Vec<(String, &Value)>> {
    let props = schema
        .get("properties")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            schema_error(
                "properties: expected an object schema with named fields (a struct)".to_owned(),
            )
        })?;
    Ok(props.iter().map(|(k, v)| (k.clone(), v)).collect())
}

/// Follows a `$ref` (directly or as the single member of `allOf`/`anyOf` with null) into `$defs`.
fn resolve<'a>(property: &'a Value, root: &'a Value) -> &'a Value {
    let target = property.get("$ref").and_then(Value::as_str).or_else(|| {
        ["allOf", "anyOf", "oneOf"].iter().find_map(|k| {
            property
                .get(*k)
                .and_then(Value::as_array)
                .and_then(|members| {
                    members
                        .iter()
                        .find_map(|m| m.get("$ref").and_then(Value::as_str))
                })
        })
    });
    target
        .and_then(|r| {
            r.strip_prefix("#/$defs/")
                .or_else(|| r.strip_prefix("#/definitions/"))
        })
        .and_then(|name| {
            root.get("$defs")
                .or_else(|| root.get("definitions"))
                .and_then(|defs| defs.get(name))
        })
        .unwrap_or(property)
}

fn text_of(schema: &Value) -> Option<String> {
    let title = schema.get("title").and_then(Value::as_str).map(str::trim);
    let desc = schema
        .get("description")
        .and_then(Value::as_str)
        .map(str::trim);
    match (title, desc) {
        (Some(t), Some(d)) if !t.is_empty() && !d.is_empty() => Some(format!("{t}\n\n{d}")),
        (Some(t), _) if !t.is_empty() => Some(t.to_owned()),
        (_, Some(d)) if !d.is_empty() => Some(d.to_owned()),
        _ => None,
    }
}

fn describe(id: &str, property: &Value, root: &Value) -> Result<String> {
    let target = resolve(property, root);
    let mut text = text_of(property)
        .or_else(|| text_of(target))
        .ok_or_else(|| {
            schema_error(format!(
                "properties.{id}: expected a description (a doc comment on the field)"
            ))
        })?;
    let allowed = allowed_values(target);
    if !allowed.is_empty() {
        let list: Vec<String> = allowed.iter().map(|v| format!("`{v}`")).collect();
        text.push_str("\n\nAllowed values: ");
        text.push_str(&list.join(", "));
        text.push('.');
    }
    Ok(text)
}

/// String values of `enum`, or of `oneOf: [{const}]` (how schemars writes documented variants).
fn allowed_values(schema: &Value) -> Vec<String> {
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return values
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
    }
    schema
        .get("oneOf")
        .and_then(Value::as_array)
        .map(|variants| {
            variants
                .iter()
                .flat_map(|v| {
                    v.get("const")
                        .and_then(Value::as_str)
                        .map(|s| vec![s.to_owned()])
                        .or_else(|| {
                            v.get("enum").and_then(Value::as_array).map(|e| {
                                e.iter()
                                    .filter_map(Value::as_str)
                                    .map(str::to_owned)
                                    .collect()
                            })
                        })
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default()
}

fn default_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]
    use super::*;
    use serde::{Deserialize, Serialize};

    /// How hard to think.
    #[derive(JsonSchema, Deserialize, Serialize, Default)]
    #[serde(rename_all = "kebab-case")]
    enum Effort {
        /// Quick.
        #[default]
        Low,
        /// Thorough.
        High,
    }

    fn default_retries() -> u32 {
        3
    }

    #[derive(JsonSchema, Deserialize)]
    #[serde(rename_all = "kebab-case")]
    struct Args {
        /// The model to ask.
        model: String,
        /// Retries before giving up.
        #[serde(default = "default_retries")]
        max_retries: u32,
        /// Effort level.
        #[serde(default)]
        effort: Effort,
        /// An optional prompt file.
        prompt_file: Option<String>,
    }

    #[derive(JsonSchema)]
    struct NoDocs {
        x: u32,
    }

    #[test]
    fn inputs_follow_the_schema() {
        let meta = ActionMetadata::from_inputs::<Args>("a", "b").unwrap();
        let ids: Vec<_> = meta.inputs.keys().map(String::as_str).collect();
        assert_eq!(ids, ["model", "max-retries", "effort", "prompt-file"]);
        assert_eq!(meta.inputs["model"].required, Some(true));
        assert_eq!(meta.inputs["model"].description, "The model to ask.");
        assert_eq!(meta.inputs["max-retries"].default.as_deref(), Some("3"));
        assert_eq!(meta.inputs["max-retries"].required, Some(false));
        assert_eq!(meta.inputs["effort"].default.as_deref(), Some("low"));
        assert!(
            meta.inputs["effort"]
                .description
                .ends_with("Allowed values: `low`, `high`."),
            "{}",
            meta.inputs["effort"].description
        );
        assert_eq!(meta.inputs["prompt-file"].required, Some(false));
    }

    #[test]
    fn missing_doc_comment_is_an_error_naming_the_field() {
        let err = ActionMetadata::from_inputs::<NoDocs>("a", "b").unwrap_err();
        assert!(err.to_string().contains("properties.x"), "{err}");
    }
}
