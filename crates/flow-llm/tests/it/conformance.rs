//! Every request shape the crate builds validates against `CreateChatCompletionRequest` of
//! the official OpenAI description, and the test bodies we answer with validate against
//! `CreateChatCompletionResponse`.

use std::collections::BTreeMap;
use std::collections::BTreeSet;

use flow_llm::prompt::PromptFile;
use flow_llm::{
    AnswerMode, ChatModel, ChatRequest, ClientConfig, HttpClient, Message, ModelQuirks, Quirks,
    ReasoningEffort, ResponseFormat, Tool, ToolCall, ToolChoice, delegate, delegate_with,
    review_issue,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{KEY, api_error, client, completion, refusal, tool_call, with_finish};

const SCHEMAS: &str = include_str!("../fixtures/openai-chat-schemas.json");

fn validator(name: &str) -> jsonschema::Validator {
    let mut doc: Value = serde_json::from_str(SCHEMAS).unwrap();
    doc["$ref"] = json!(format!("#/$defs/{name}"));
    jsonschema::validator_for(&doc).unwrap()
}

/// The top-level properties the description defines for a request.
fn known_request_keys() -> BTreeSet<String> {
    let doc: Value = serde_json::from_str(SCHEMAS).unwrap();
    let defs = &doc["$defs"];
    let mut keys = BTreeSet::new();
    for name in [
        "CreateChatCompletionRequest",
        "CreateModelResponseProperties",
        "ModelResponseProperties",
    ] {
        let mut stack = vec![defs[name].clone()];
        while let Some(v) = stack.pop() {
            if let Some(p) = v.get("properties").and_then(Value::as_object) {
                keys.extend(p.keys().cloned());
            }
            if let Some(all) = v.get("allOf").and_then(Value::as_array) {
                stack.extend(all.iter().filter(|s| s.get("$ref").is_none()).cloned());
            }
        }
    }
    keys
}

fn assert_conforms(body: &Value) {
    let v = validator("CreateChatCompletionRequest");
    let errors: Vec<String> = v
        .iter_errors(body)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}\n{body:#}");
    let known = known_request_keys();
    for k in body.as_object().unwrap().keys() {
        assert!(known.contains(k), "unknown request field {k:?}");
    }
}

#[derive(Deserialize, JsonSchema)]
#[allow(dead_code)]
struct Plan {
    steps: Vec<String>,
    risky: Option<bool>,
    kind: Kind,
}

#[derive(Deserialize, JsonSchema)]
#[allow(dead_code)]
enum Kind {
    Fix { file: String },
    Skip,
}

async fn sent(server: &MockServer) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.body_json().unwrap())
        .collect()
}

#[tokio::test]
async fn every_request_shape_conforms() {
    let server = MockServer::start().await;
    let plan = r#"{"steps":["a"],"risky":null,"kind":{"Fix":{"file":"x"}}}"#;
    // Answers in the order the shapes below ask; the 2nd and 4th make the crate ask again.
    let answers = [
        completion("free text"),
        completion("{}"),
        completion(plan),
        tool_call("Plan", "{}"),
        tool_call("Plan", plan),
        completion(r#"{"fixed":true,"message":"m","refinement":""}"#),
        completion("free text"),
        completion("free text"),
        completion("free text"),
    ];
    for a in answers {
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_json(a))
            .up_to_n_times(1)
            .mount(&server)
            .await;
    }
    let c = client(&server);
    // 1. Every plain parameter, every role.
    let full = ChatRequest::new("gpt-4o-mini")
        .message(Message::system("s"))
        .message(Message::developer("d").with_name("dev"))
        .message(Message::user("u"))
        .message(Message::assistant_tool_calls(vec![ToolCall {
            id: "call_1".into(),
            kind: "function".into(),
            function: flow_llm::protocol::FunctionCall {
                name: "lookup".into(),
                arguments: "{}".into(),
            },
        }]))
        .message(Message::tool("call_1", "result"))
        .message(Message::assistant("a"))
        .message(Message::user("u2"))
        .with_temperature(0.2)
        .with_top_p(0.9)
        .with_max_completion_tokens(100)
        .with_seed(7)
        .with_stop(vec!["END".into()])
        .with_user("run-1")
        .with_reasoning_effort(ReasoningEffort::Low)
        .with_response_format(ResponseFormat::JsonObject)
        .with_tool(Tool::function(
            "lookup",
            json!({"type": "object", "properties": {}}),
        ))
        .with_tool_choice(ToolChoice::Auto);
    c.complete(&full).await.unwrap();
    // 2-3. json_schema with a re-ask.
    delegate::<Plan>(
        &c,
        ChatRequest::new("gpt-4o-mini").message(Message::user("plan")),
    )
    .await
    .unwrap();
    // 4-5. Tool-call mode with a re-ask through a tool message.
    delegate_with::<Plan>(
        &c,
        ChatRequest::new("gpt-4o-mini").message(Message::user("plan")),
        AnswerMode::ToolCall,
    )
    .await
    .unwrap();
    // 6. The review preset.
    review_issue(&c, "issue", "evidence").await.unwrap();
    // 7. A prompt file with a json_schema format.
    let file = PromptFile::parse(
        "model: gpt-4o-mini\nmodelParameters: {temperature: 0.1, maxTokens: 50}\nmessages:\n  - role: user\n    content: '{{q}}'\nresponseFormat: json_schema\njsonSchema: {name: a, strict: true, schema: {type: object, properties: {x: {type: string}}, required: [x], additionalProperties: false}}\n",
    )
    .unwrap();
    c.complete(
        &file
            .to_request(&BTreeMap::from([("q".into(), "why?".into())]))
            .unwrap(),
    )
    .await
    .unwrap();
    // 8. A reasoning model after its quirks; 9. a server that wants the legacy max_tokens.
    c.complete(
        &ChatRequest::new("o3")
            .message(Message::user("x"))
            .with_temperature(1.0)
            .with_max_completion_tokens(5),
    )
    .await
    .unwrap();
    let legacy = HttpClient::new(
        ClientConfig::compatible(&format!("{}/v1", server.uri()), Some(KEY.into()), "llama3")
            .with_quirks(Quirks::none().with_rule(
                "llama",
                ModelQuirks {
                    legacy_max_tokens: true,
                    ..ModelQuirks::default()
                },
            )),
    )
    .unwrap();
    legacy
        .complete(
            &ChatRequest::new("")
                .message(Message::user("x"))
                .with_max_completion_tokens(5),
        )
        .await
        .unwrap();

    let bodies = sent(&server).await;
    assert_eq!(bodies.len(), 9);
    for body in &bodies {
        assert_conforms(body);
    }
    assert_eq!(bodies[8]["max_tokens"], 5);
    assert!(bodies[7].get("temperature").is_none());
}

#[test]
fn the_validator_rejects_a_bad_request() {
    let v = validator("CreateChatCompletionRequest");
    assert!(!v.is_valid(&json!({"model": "m", "messages": []})));
    assert!(!v.is_valid(&json!({"model": "m", "messages": [{"role": "wizard", "content": "x"}]})));
    assert!(!v.is_valid(
        &json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 3})
    ));
    assert!(v.is_valid(&json!({"model": "m", "messages": [{"role": "user", "content": "x"}]})));
}

#[test]
fn test_bodies_are_real_format() {
    let v = validator("CreateChatCompletionResponse");
    for body in [
        completion("x"),
        refusal("no"),
        tool_call("f", "{}"),
        with_finish(completion("x"), "length"),
    ] {
        let errors: Vec<String> = v
            .iter_errors(&body)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");
    }
    let e = validator("ErrorResponse");
    assert!(e.is_valid(&api_error("m", "t", json!("c"))));
}
