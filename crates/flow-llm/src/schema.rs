//! OpenAI's strict structured-output subset of JSON Schema, made from any schema.
//!
//! The rules (from OpenAI's structured-outputs guide, conservatively, so that GitHub Models and
//! Azure accept them too): the root is an object; every object has `additionalProperties:
//! false` and lists every property in `required` (optional fields become nullable); only
//! `type`, `properties`, `required`, `additionalProperties`, `items`, `enum`, `const`,
//! `anyOf`, `$ref`, `$defs` and `description` are kept; `allOf` is merged, `oneOf` becomes
//! `anyOf`, and keywords such as `format`, `minimum` or `pattern` are dropped (the answer is
//! still checked against them locally, since [`crate::delegate()`] validates with the original
//! schema too).

use serde_json::{Map, Value, json};

/// The keywords the strict subset keeps.
const KEEP: &[&str] = &[
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "enum",
    "const",
    "anyOf",
    "$ref",
    "$defs",
    "description",
];

/// The property a non-object root is wrapped in.
pub const WRAPPED_PROPERTY: &str = "value";

/// A schema in OpenAI's strict subset.
#[derive(Debug, Clone, PartialEq)]
pub struct StrictSchema {
    /// The schema to send.
    pub schema: Value,
    /// Whether the original root was not an object and now sits under
    /// [`WRAPPED_PROPERTY`] of an object.
    pub wrapped: bool,
}

impl StrictSchema {
    /// Turns the schema of `T` (from schemars) into the strict subset.
    pub fn for_type<T: schemars::JsonSchema>() -> Self {
        let schema = schemars::schema_for!(T);
        Self::from_schema(schema.as_value())
    }

    /// Turns any JSON Schema into the strict subset.
    pub fn from_schema(schema: &Value) -> Self {
        let defs = schema
            .get("$defs")
            .or_else(|| schema.get("definitions"))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mut root = node(schema, &defs, 0);
        let new_defs: Map<String, Value> = defs
            .iter()
            .map(|(k, v)| (k.clone(), node(v, &defs, 0)))
            .collect();
        if let Value::Object(m) = &mut root {
            m.remove("$defs");
        }
        let is_object = root.get("type").and_then(Value::as_str) == Some("object");
        let mut out = if is_object {
            root
        } else {
            json!({
                "type": "object",
                "properties": { WRAPPED_PROPERTY: root },
                "required": [WRAPPED_PROPERTY],
                "additionalProperties": false,
            })
        };
        if !new_defs.is_empty()
            && let Value::Object(m) = &mut out
        {
            m.insert("$defs".into(), Value::Object(new_defs));
        }
        Self {
            schema: out,
            wrapped: !is_object,
        }
    }

    /// Takes the answer out of the wrapper when the root was wrapped.
    pub fn unwrap_answer(&self, answer: Value) -> Value {
        if !self.wrapped {
            return answer;
        }
        match answer {
            Value::Object(mut m) => m.remove(WRAPPED_PROPERTY).unwrap_or(Value::Null),
            other => other,
        }
    }
}

/// Any JSON value the strict subset can express without `additionalProperties`.
fn any_value() -> Value {
    json!({ "type": ["string", "number", "boolean", "null"] })
}

fn ref_name(r: &str) -> Option<&str> {
    r.strip_prefix("#/$defs/")
        .or_else(|| r.strip_prefix("#/definitions/"))
}

/// Merges the members of `allOf` into `into` (properties and required are united; the first
/// value of any other keyword wins). `$ref`s are resolved against `defs`, once.
fn merge_all_of(into: &mut Map<String, Value>, parts: &[Value], defs: &Map<String, Value>) {
    for part in parts {
        let part = match part.get("$ref").and_then(Value::as_str).and_then(ref_name) {
            Some(name) => defs.get(name).unwrap_or(part),
            None => part,
        };
        let Some(obj) = part.as_object() else {
            continue;
        };
        for (k, v) in obj {
            match (k.as_str(), into.get_mut(k)) {
                ("properties", Some(Value::Object(mine))) => {
                    if let Some(theirs) = v.as_object() {
                        for (pk, pv) in theirs {
                            mine.entry(pk.clone()).or_insert_with(|| pv.clone());
                        }
                    }
                }
                ("required", Some(Value::Array(mine))) => {
                    for r in v.as_array().into_iter().flatten() {
                        if !mine.contains(r) {
                            mine.push(r.clone());
                        }
                    }
                }
                ("$ref", _) => {}
                (_, None) => {
                    into.insert(k.clone(), v.clone());
                }
                _ => {}
            }
        }
    }
}

fn type_of_const(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn has_type(m: &Map<String, Value>, t: &str) -> bool {
    match m.get("type") {
        Some(Value::String(s)) => s == t,
        Some(Value::Array(a)) => a.iter().any(|x| x.as_str() == Some(t)),
        _ => false,
    }
}

/// Makes `schema` also accept null (for a property that was optional).
fn nullable(schema: Value) -> Value {
    let Value::Object(mut m) = schema else {
        return schema;
    };
    if m.contains_key("$ref") {
        return json!({ "anyOf": [Value::Object(m), { "type": "null" }] });
    }
    if let Some(Value::Array(any)) = m.get_mut("anyOf") {
        if !any
            .iter()
            .any(|s| s.get("type").and_then(Value::as_str) == Some("null"))
        {
            any.push(json!({ "type": "null" }));
        }
        return Value::Object(m);
    }
    if let Some(Value::Array(e)) = m.get_mut("enum")
        && !e.contains(&Value::Null)
    {
        e.push(Value::Null);
    }
    if let Some(c) = m.remove("const") {
        m.insert("enum".into(), json!([c, null]));
    }
    match m.get_mut("type") {
        Some(Value::String(s)) if s != "null" => {
            let t = std::mem::take(s);
            m.insert("type".into(), json!([t, "null"]));
        }
        Some(Value::Array(a)) if !a.iter().any(|x| x == "null") => a.push(json!("null")),
        _ => {}
    }
    Value::Object(m)
}

/// Deepest nesting we transform; deeper schemas become [`any_value`].
const MAX_DEPTH: usize = 64;

fn node(schema: &Value, defs: &Map<String, Value>, depth: usize) -> Value {
    let Some(src) = schema.as_object() else {
        return match schema {
            Value::Bool(false) => json!({ "type": "null" }),
            _ => any_value(),
        };
    };
    if depth > MAX_DEPTH {
        return any_value();
    }
    let mut m = src.clone();
    if let Some(Value::Array(parts)) = m.remove("allOf") {
        merge_all_of(&mut m, &parts, defs);
    }
    if let Some(one) = m.remove("oneOf") {
        match m.get_mut("anyOf") {
            Some(Value::Array(any)) => {
                any.push(json!({ "anyOf": one }));
            }
            _ => {
                m.insert("anyOf".into(), one);
            }
        }
    }
    if let Some(Value::String(r)) = m.get("$ref") {
        let r = r.clone();
        return match ref_name(&r) {
            Some(name) if defs.contains_key(name) => json!({ "$ref": format!("#/$defs/{name}") }),
            _ => any_value(),
        };
    }
    m.retain(|k, _| KEEP.contains(&k.as_str()));
    m.remove("$defs");
    if let Some(t) = m.get("type") {
        let valid = match t {
            Value::String(_) => true,
            Value::Array(a) => !a.is_empty() && a.iter().all(Value::is_string),
            _ => false,
        };
        if !valid {
            m.remove("type");
        }
    }
    if let Some(any) = m.remove("anyOf") {
        let variants: Vec<Value> = any
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| node(s, defs, depth + 1))
            .collect();
        if variants.is_empty() {
            return any_value();
        }
        // A union is the whole schema: other keywords beside anyOf are dropped.
        let mut out = Map::new();
        if let Some(d) = m.remove("description") {
            out.insert("description".into(), d);
        }
        out.insert("anyOf".into(), Value::Array(variants));
        return Value::Object(out);
    }
    if let Some(e) = m.get("enum")
        && e.as_array().is_none_or(|a| a.is_empty())
    {
        m.remove("enum");
    }
    if !m.contains_key("type") {
        if let Some(c) = m.get("const") {
            let t = type_of_const(c);
            m.insert("type".into(), json!(t));
        } else if let Some(Value::Array(e)) = m.get("enum") {
            let mut types: Vec<&str> = e.iter().map(type_of_const).collect();
            types.sort_unstable();
            types.dedup();
            m.insert("type".into(), json!(types));
        } else if m.contains_key("properties") {
            m.insert("type".into(), json!("object"));
        } else if m.contains_key("items") {
            m.insert("type".into(), json!("array"));
        } else {
            let description = m.remove("description");
            let mut any = any_value();
            if let (Some(d), Value::Object(a)) = (description, &mut any) {
                a.insert("description".into(), d);
            }
            return any;
        }
    }
    if has_type(&m, "array") {
        let items = m
            .get("items")
            .filter(|i| i.is_object() || i.is_boolean())
            .cloned();
        m.insert(
            "items".into(),
            items.map_or_else(any_value, |i| node(&i, defs, depth + 1)),
        );
    } else {
        m.remove("items");
    }
    if has_type(&m, "object") {
        let required: Vec<String> = m
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        let props: Map<String, Value> = m
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(k, v)| {
                let s = node(v, defs, depth + 1);
                let s = if required.contains(k) { s } else { nullable(s) };
                (k.clone(), s)
            })
            .collect();
        let all: Vec<Value> = props.keys().map(|k| json!(k)).collect();
        m.insert("properties".into(), Value::Object(props));
        m.insert("required".into(), Value::Array(all));
        m.insert("additionalProperties".into(), json!(false));
    } else {
        m.remove("properties");
        m.remove("required");
        m.remove("additionalProperties");
    }
    Value::Object(m)
}

/// Checks that `schema` meets OpenAI's strict rules; the error names the JSON pointer of the
/// first violation.
///
/// # Errors
/// A message naming the location and the rule broken.
pub fn check_strict(schema: &Value) -> Result<(), String> {
    let root = schema
        .as_object()
        .ok_or("the root is not an object schema")?;
    if root.get("type").and_then(Value::as_str) != Some("object") {
        return Err("the root must have type \"object\"".into());
    }
    let defs = root.get("$defs").and_then(Value::as_object);
    if let Some(defs) = defs {
        for (k, v) in defs {
            check_node(v, &format!("/$defs/{k}"), defs)?;
        }
    }
    let empty = Map::new();
    check_node(schema, "", defs.unwrap_or(&empty))
}

fn check_node(schema: &Value, at: &str, defs: &Map<String, Value>) -> Result<(), String> {
    let m = schema
        .as_object()
        .ok_or_else(|| format!("{at}: a schema must be an object"))?;
    for k in m.keys() {
        if !KEEP.contains(&k.as_str()) {
            return Err(format!(
                "{at}: keyword {k:?} is not supported in strict mode"
            ));
        }
        if k == "$defs" && !at.is_empty() {
            return Err(format!("{at}: $defs is only allowed at the root"));
        }
    }
    if let Some(r) = m.get("$ref") {
        let name = r.as_str().and_then(|r| r.strip_prefix("#/$defs/"));
        return match name {
            Some(n) if defs.contains_key(n) && m.len() == 1 => Ok(()),
            _ => Err(format!("{at}: $ref must be alone and point into $defs")),
        };
    }
    if let Some(any) = m.get("anyOf") {
        let any = any
            .as_array()
            .filter(|a| !a.is_empty())
            .ok_or_else(|| format!("{at}: anyOf must be a non-empty array"))?;
        for (i, s) in any.iter().enumerate() {
            check_node(s, &format!("{at}/anyOf/{i}"), defs)?;
        }
        return Ok(());
    }
    if !m.contains_key("type") {
        return Err(format!("{at}: every schema needs a type"));
    }
    if has_type(m, "object") {
        if m.get("additionalProperties") != Some(&Value::Bool(false)) {
            return Err(format!("{at}: objects need additionalProperties: false"));
        }
        let props = m
            .get("properties")
            .and_then(Value::as_object)
            .ok_or_else(|| format!("{at}: objects need properties"))?;
        let required: Vec<&str> = m
            .get("required")
            .and_then(Value::as_array)
            .ok_or_else(|| format!("{at}: objects need required"))?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        if required.len() != props.len() || !props.keys().all(|k| required.contains(&k.as_str())) {
            return Err(format!("{at}: every property must be required"));
        }
        for (k, v) in props {
            check_node(v, &format!("{at}/properties/{k}"), defs)?;
        }
    }
    if has_type(m, "array") {
        let items = m
            .get("items")
            .ok_or_else(|| format!("{at}: arrays need items"))?;
        check_node(items, &format!("{at}/items"), defs)?;
    }
    Ok(())
}

/// A schema name OpenAI accepts (`a-zA-Z0-9_-`, at most 64 characters) made from `raw`.
pub fn schema_name(raw: &str) -> String {
    let base = raw.rsplit("::").next().unwrap_or(raw);
    let base = base.split('<').next().unwrap_or(base);
    let name: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if name.is_empty() {
        "answer".into()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use proptest::prelude::*;
    use schemars::JsonSchema;

    #[derive(JsonSchema)]
    #[allow(dead_code)]
    struct Inner {
        /// A score.
        #[schemars(range(min = 0, max = 10))]
        score: u8,
        tags: Vec<String>,
    }

    #[derive(JsonSchema)]
    #[allow(dead_code)]
    enum Kind {
        Bug,
        Feature { urgent: bool },
    }

    #[derive(JsonSchema)]
    #[allow(dead_code)]
    struct Outer {
        #[schemars(email)]
        owner: String,
        note: Option<String>,
        inner: Inner,
        maybe: Option<Inner>,
        kind: Kind,
        extra: std::collections::BTreeMap<String, u32>,
        any: serde_json::Value,
    }

    #[test]
    fn schemars_types_become_strict() {
        let s = StrictSchema::for_type::<Outer>();
        check_strict(&s.schema).unwrap();
        assert!(!s.wrapped);
        let text = s.schema.to_string();
        assert!(
            !text.contains("format") && !text.contains("minimum") && !text.contains("oneOf"),
            "{text}"
        );
        assert_eq!(
            s.schema["properties"]["note"]["type"],
            json!(["string", "null"])
        );
        assert_eq!(s.schema["required"].as_array().unwrap().len(), 7);
    }

    #[test]
    fn non_object_roots_are_wrapped() {
        let s = StrictSchema::for_type::<Vec<Kind>>();
        check_strict(&s.schema).unwrap();
        assert!(s.wrapped);
        assert_eq!(s.unwrap_answer(json!({"value": ["Bug"]})), json!(["Bug"]));
    }

    #[test]
    fn names_are_sanitised() {
        assert_eq!(schema_name("my_crate::Verdict<u8>"), "Verdict");
        assert_eq!(schema_name("a b"), "a_b");
        assert_eq!(schema_name(""), "answer");
    }

    fn arb_schema() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(json!({"type": "string", "format": "date-time", "minLength": 2})),
            Just(json!({"type": "integer", "minimum": 0, "maximum": 3})),
            Just(json!({"type": ["number", "null"]})),
            Just(json!({"enum": ["a", 1, null]})),
            Just(json!({"const": "x"})),
            Just(json!(true)),
            Just(json!(false)),
            Just(json!({})),
            Just(json!({"$ref": "#/$defs/D"})),
            Just(json!({"$ref": "#/$defs/Missing"})),
            Just(json!({"type": 7})),
            Just(json!({"type": "array"})),
        ];
        leaf.prop_recursive(4, 32, 5, |inner| {
            prop_oneof![
                (
                    prop::collection::btree_map("[a-c]{1,2}", inner.clone(), 0..4),
                    prop::collection::vec("[a-d]{1,2}", 0..3),
                    any::<bool>()
                )
                    .prop_map(|(props, req, extra)| {
                        json!({"type": "object", "properties": props, "required": req,
                               "additionalProperties": extra, "patternProperties": {"x": {}}})
                    }),
                prop::collection::btree_map("[a-c]{1,2}", inner.clone(), 0..3)
                    .prop_map(|props| json!({"properties": props})),
                inner
                    .clone()
                    .prop_map(|i| json!({"type": "array", "items": i, "minItems": 1})),
                prop::collection::vec(inner.clone(), 0..3).prop_map(|v| json!({"oneOf": v})),
                prop::collection::vec(inner.clone(), 0..3)
                    .prop_map(|v| json!({"anyOf": v, "type": "string"})),
                prop::collection::vec(inner.clone(), 0..3).prop_map(|v| json!({"allOf": v})),
                inner
                    .clone()
                    .prop_map(|i| json!({"type": "object", "additionalProperties": i})),
                inner.prop_map(|i| json!({"not": i, "if": {}, "then": {}})),
            ]
        })
    }

    proptest! {
        #[test]
        fn strict_transform_always_meets_the_rules(root in arb_schema(), def in arb_schema()) {
            let mut root = match root {
                Value::Object(m) => Value::Object(m),
                other => json!({"anyOf": [other]}),
            };
            root.as_object_mut().unwrap().insert("$defs".into(), json!({"D": def}));
            let s = StrictSchema::from_schema(&root);
            prop_assert!(check_strict(&s.schema).is_ok(), "{:?}\n{}", check_strict(&s.schema), s.schema);
            prop_assert!(jsonschema::validator_for(&s.schema).is_ok());
        }
    }
}

#[cfg(test)]
mod check_tests {
    use super::*;

    #[test]
    fn the_checker_rejects_what_openai_rejects() {
        let bad = [
            json!({"type": "array", "items": {"type": "string"}}),
            json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": []}),
            json!({"type": "object", "properties": {}, "required": []}),
            json!({"type": "object", "properties": {"a": {"type": "string", "format": "email"}}, "required": ["a"], "additionalProperties": false}),
            json!({"type": "object", "properties": {"a": {"$ref": "#/$defs/X"}}, "required": ["a"], "additionalProperties": false}),
            json!({"type": "object", "properties": {"a": {}}, "required": ["a"], "additionalProperties": false}),
        ];
        for b in bad {
            assert!(check_strict(&b).is_err(), "{b}");
        }
        let good = json!({"type": "object", "properties": {"a": {"type": ["string", "null"]}}, "required": ["a"], "additionalProperties": false});
        assert_eq!(check_strict(&good), Ok(()));
    }
}
