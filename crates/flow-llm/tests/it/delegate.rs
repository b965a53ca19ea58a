//! Typed answers: json_schema, tool calls, re-ask, refusal, length, the review preset.

use flow_llm::{
    AnswerMode, ChatModel, ChatRequest, ChatResponse, ErrorKind, Message, ResponseFormat,
    ReviewVerdict, delegate, delegate_with, review_issue,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{client, completion, refusal, tool_call, with_finish};

#[derive(Debug, PartialEq, Deserialize, JsonSchema)]
struct Triage {
    /// One of bug, feature, question.
    label: Label,
    /// 1 (low) to 5 (high).
    #[schemars(range(min = 1, max = 5))]
    priority: u8,
    duplicate_of: Option<u64>,
}

#[derive(Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum Label {
    Bug,
    Feature,
    Question,
}

fn ask() -> ChatRequest {
    ChatRequest::new("gpt-4o-mini")
        .message(Message::system("You triage GitHub issues."))
        .message(Message::user("App crashes on start since v2.1"))
}

async fn bodies(server: &MockServer) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.body_json().unwrap())
        .collect()
}

#[tokio::test]
async fn json_schema_answer_is_typed() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion(
            r#"{"label":"bug","priority":4,"duplicate_of":null}"#,
        )))
        .mount(&server)
        .await;
    let d = delegate::<Triage>(&client(&server), ask()).await.unwrap();
    assert_eq!(
        d.value,
        Triage {
            label: Label::Bug,
            priority: 4,
            duplicate_of: None
        }
    );
    assert_eq!((d.asks, d.usage.total_tokens), (1, 1163));
    let sent = &bodies(&server).await[0];
    let format = &sent["response_format"];
    assert_eq!(format["type"], "json_schema");
    assert_eq!(format["json_schema"]["name"], "Triage");
    assert_eq!(format["json_schema"]["strict"], true);
    let schema = &format["json_schema"]["schema"];
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(
        schema["required"],
        json!(["label", "priority", "duplicate_of"])
    );
    flow_llm::schema::check_strict(schema).unwrap();
}

#[tokio::test]
async fn a_mismatch_is_asked_again_once_with_the_validation_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion(
            r#"{"label":"bug","priority":9,"duplicate_of":null}"#,
        )))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion(
            r#"{"label":"bug","priority":5,"duplicate_of":12}"#,
        )))
        .mount(&server)
        .await;
    let d = delegate::<Triage>(&client(&server), ask()).await.unwrap();
    assert_eq!(
        (d.value.priority, d.value.duplicate_of, d.asks),
        (5, Some(12), 2)
    );
    assert_eq!(d.usage.total_tokens, 2 * 1163);
    let second = &bodies(&server).await[1];
    let messages = second["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 4);
    assert_eq!(messages[2]["role"], "assistant");
    let feedback = messages[3]["content"].as_str().unwrap();
    assert!(
        feedback.contains("/priority") && feedback.contains('9'),
        "{feedback}"
    );
}

#[tokio::test]
async fn two_mismatches_are_an_invalid_answer() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion("not json at all")))
        .expect(2)
        .mount(&server)
        .await;
    let e = delegate::<Triage>(&client(&server), ask())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::InvalidAnswer);
    assert!(e.to_string().contains("not valid JSON"), "{e}");
}

#[tokio::test]
async fn refusal_and_length_have_their_own_errors() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(refusal("I'm sorry, I can't help with that.")),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(with_finish(completion(r#"{"label":"bu"#), "length")),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(with_finish(completion(""), "content_filter")),
        )
        .mount(&server)
        .await;
    let c = client(&server);
    let e = delegate::<Triage>(&c, ask()).await.unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::Refused);
    assert!(e.to_string().contains("can't help"), "{e}");
    let e = delegate::<Triage>(&c, ask()).await.unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::Truncated);
    assert!(e.to_string().contains("finish_reason = length"), "{e}");
    let e = delegate::<Triage>(&c, ask()).await.unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::ContentFiltered);
}

#[tokio::test]
async fn tool_call_mode_parses_the_arguments() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(tool_call(
            "Triage",
            r#"{"label":"question","priority":1,"duplicate_of":null}"#,
        )))
        .mount(&server)
        .await;
    let d = delegate_with::<Triage>(&client(&server), ask(), AnswerMode::ToolCall)
        .await
        .unwrap();
    assert_eq!(d.value.label, Label::Question);
    let sent = &bodies(&server).await[0];
    assert!(sent.get("response_format").is_none());
    assert_eq!(
        sent["tool_choice"],
        json!({"type": "function", "function": {"name": "Triage"}})
    );
    assert_eq!(sent["tools"][0]["function"]["strict"], true);
}

#[tokio::test]
async fn tool_call_mode_reasks_through_a_tool_message() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(tool_call(
            "Triage",
            r#"{"label":"other","priority":1,"duplicate_of":null}"#,
        )))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(tool_call(
            "Triage",
            r#"{"label":"bug","priority":1,"duplicate_of":null}"#,
        )))
        .mount(&server)
        .await;
    let d = delegate_with::<Triage>(&client(&server), ask(), AnswerMode::ToolCall)
        .await
        .unwrap();
    assert_eq!((d.value.label, d.asks), (Label::Bug, 2));
    let second = &bodies(&server).await[1];
    assert_eq!(second["messages"][2]["tool_calls"][0]["id"], "call_abc123");
    assert_eq!(second["messages"][3]["role"], "tool");
    assert_eq!(second["messages"][3]["tool_call_id"], "call_abc123");
}

mockall::mock! {
    pub Model {}
    #[async_trait::async_trait]
    impl ChatModel for Model {
        async fn complete(&self, request: &ChatRequest) -> flow_llm::Result<ChatResponse>;
    }
}

#[tokio::test]
async fn review_issue_preset_through_a_mocked_model() {
    let mut model = MockModel::new();
    model
        .expect_complete()
        .withf(|req| {
            req.messages.len() == 2
                && req.messages[0].content.as_deref() == Some(flow_llm::REVIEW_ISSUE_SYSTEM_PROMPT)
                && req.messages[1].content.as_deref().is_some_and(|c| c.contains("## Evidence\n\nCI green"))
                && matches!(&req.response_format, Some(ResponseFormat::JsonSchema { json_schema }) if json_schema.name == "ReviewVerdict")
                && req.tool_choice.is_none()
        })
        .times(1)
        .returning(|_| {
            Ok(serde_json::from_value(completion(r#"{"fixed":false,"message":"The crash persists.","refinement":"Guard the null config."}"#)).unwrap())
        });
    let d = review_issue(
        &model,
        "#12 App crashes on start",
        "CI green; crash reproduced on main",
    )
    .await;
    let d = d.unwrap();
    assert_eq!(
        d.value,
        ReviewVerdict {
            fixed: false,
            message: "The crash persists.".into(),
            refinement: "Guard the null config.".into()
        }
    );
    let e = review_issue(&model, "  ", "x").await.unwrap_err();
    assert!(e.to_string().starts_with("issue:"), "{e}");
}

#[tokio::test]
async fn the_review_request_on_the_wire() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion(
            r#"{"fixed":true,"message":"Fixed by #13.","refinement":""}"#,
        )))
        .mount(&server)
        .await;
    let d = review_issue(
        &client(&server),
        "#12 Crash on start",
        "PR #13 merged; CI green",
    )
    .await
    .unwrap();
    assert!(d.value.fixed);
    let body = &bodies(&server).await[0];
    insta::assert_json_snapshot!("review_issue_request", body);
}
