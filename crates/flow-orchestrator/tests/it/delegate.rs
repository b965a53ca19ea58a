//! delegate (free-form and typed), review_issue, and the cache store wired around the model.

use std::sync::Arc;

use flow_cache::{MemoryConfig, MemoryStore};
use flow_llm::{REVIEW_ISSUE_SYSTEM_PROMPT, ResponseFormat};
use flow_orchestrator::sanitize::check;
use flow_orchestrator::{ErrorKind, Orchestrator, Sanitizer};

use crate::mocks::{MockModel, MockStore, answer, server_down, text_of};

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct Decision {
    ship: bool,
    reason: String,
}

#[tokio::test]
async fn typed_delegate_sends_the_schema_and_parses_the_answer() {
    let mut model = MockModel::new();
    model
        .expect_complete()
        .withf(|req| {
            req.model == "gpt-4.1"
                && matches!(req.response_format, Some(ResponseFormat::JsonSchema { .. }))
                && text_of(req).contains("Ship release 1.2?")
                && text_of(req).contains("You are a release manager")
        })
        .times(1)
        .returning(|_| Ok(answer(r#"{"ship":true,"reason":"all checks green"}"#)));
    let o = Orchestrator::builder()
        .with_chat_model(Arc::new(model))
        .with_model_name("gpt-4.1")
        .build()
        .unwrap();
    let d = o
        .delegate::<Decision>(Some("You are a release manager"), "Ship release 1.2?")
        .await
        .unwrap();
    assert!(d.value.ship);
    assert_eq!(d.value.reason, "all checks green");
}

#[tokio::test]
async fn free_form_delegate_returns_the_text_and_errors_carry_the_llm_error() {
    let mut model = MockModel::new();
    let mut calls = 0;
    model.expect_complete().times(2).returning(move |_| {
        calls += 1;
        if calls == 1 {
            Ok(answer("Looks good to me."))
        } else {
            Err(server_down())
        }
    });
    let o = Orchestrator::builder()
        .with_chat_model(Arc::new(model))
        .build()
        .unwrap();
    assert_eq!(
        o.delegate_text(None, "Review this").await.unwrap(),
        "Looks good to me."
    );
    let e = o.delegate_text(None, "Review this").await.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Llm(_)), "{e}");
    assert!(e.is_retryable());
}

#[tokio::test]
async fn operations_without_their_component_say_what_is_missing() {
    let o = Orchestrator::builder().build().unwrap();
    let e = o.delegate_text(None, "hi").await.unwrap_err();
    assert!(
        matches!(
            e.kind(),
            ErrorKind::Missing {
                component: "chat model",
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("OPENAI_API_KEY"), "{e}");
    let e = o.monitor().await.unwrap_err();
    assert!(
        matches!(
            e.kind(),
            ErrorKind::Missing {
                component: "run source",
                ..
            }
        ),
        "{e}"
    );
}

#[tokio::test]
async fn review_issue_uses_the_preset() {
    let mut model = MockModel::new();
    model
        .expect_complete()
        .withf(|req| {
            let t = text_of(req);
            t.contains(REVIEW_ISSUE_SYSTEM_PROMPT)
                && t.contains("Crash on start")
                && t.contains("PR #12 merged")
        })
        .times(1)
        .returning(|_| {
            Ok(answer(
                r#"{"fixed":true,"message":"PR #12 fixed it.","refinement":""}"#,
            ))
        });
    let o = Orchestrator::builder()
        .with_chat_model(Arc::new(model))
        .build()
        .unwrap();
    let v = o
        .review_issue("Crash on start", "PR #12 merged, tests green")
        .await
        .unwrap();
    assert!(v.value.fixed);
    assert_eq!(v.value.message, "PR #12 fixed it.");
}

#[tokio::test]
async fn review_messages_are_sanitized_before_they_are_posted() {
    let mut model = MockModel::new();
    model.expect_complete().times(1).returning(|_| {
        Ok(answer(
            r#"{"fixed":false,"message":"ask @acme/admins, see https://evil.example/x <!-- flow-telemetry:fingerprint=f -->","refinement":"fixes #3 per https://github.com/acme/widgets/pull/4"}"#,
        ))
    });
    let o = Orchestrator::builder()
        .with_chat_model(Arc::new(model))
        .with_sanitizer(Sanitizer::for_repo("acme", "widgets"))
        .build()
        .unwrap();
    let v = o.review_issue("Crash", "nothing").await.unwrap().value;
    let posted = format!("{}\n{}", v.message, v.refinement);
    assert!(check::live_mentions(&posted).is_empty(), "{posted:?}");
    assert!(
        check::foreign_links(&posted, Some("https://github.com/acme/widgets")).is_empty(),
        "{posted:?}"
    );
    assert!(
        !posted.contains("<!--") && !posted.contains("fingerprint"),
        "{posted:?}"
    );
    // The repository's own link stays live; the closing keyword closes nothing.
    assert!(
        posted.contains("https://github.com/acme/widgets/pull/4"),
        "{posted:?}"
    );
    assert!(!posted.contains("fixes #3"), "{posted:?}");
}

#[tokio::test]
async fn answers_go_through_the_cache_store() {
    // The store is consulted, misses, and receives the answer.
    let mut store = MockStore::new();
    store.expect_get().returning(|_| None);
    store.expect_put().times(1).return_const(());
    let mut model = MockModel::new();
    model
        .expect_complete()
        .times(1)
        .returning(|_| Ok(answer("cached answer")));
    let o = Orchestrator::builder()
        .with_chat_model(Arc::new(model))
        .with_model_name("gpt-4.1")
        .with_cache_store(Arc::new(store))
        .build()
        .unwrap();
    assert_eq!(o.delegate_text(None, "q").await.unwrap(), "cached answer");
}

#[tokio::test]
async fn a_cached_answer_spares_the_model() {
    let mut model = MockModel::new();
    model
        .expect_complete()
        .times(1)
        .returning(|_| Ok(answer("once")));
    let store = MemoryStore::new(MemoryConfig::new()).unwrap();
    let o = Orchestrator::builder()
        .with_chat_model(Arc::new(model))
        .with_model_name("gpt-4.1")
        .with_cache_store(Arc::new(store))
        .build()
        .unwrap();
    assert_eq!(o.delegate_text(None, "same").await.unwrap(), "once");
    assert_eq!(o.delegate_text(None, "same").await.unwrap(), "once");
}

#[tokio::test]
async fn a_cache_without_the_model_name_is_refused() {
    let store = MemoryStore::new(MemoryConfig::new()).unwrap();
    let e = Orchestrator::builder()
        .with_chat_model(Arc::new(MockModel::new()))
        .with_cache_store(Arc::new(store))
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("model_name"), "{e}");
}

#[tokio::test]
async fn two_models_sharing_a_store_get_their_own_answers() {
    let store: Arc<MemoryStore> = Arc::new(MemoryStore::new(MemoryConfig::new()).unwrap());
    let orchestrator = |name: &'static str| {
        let mut model = MockModel::new();
        model
            .expect_complete()
            .times(1)
            .withf(move |r| r.model == name)
            .returning(move |_| Ok(answer(name)));
        Orchestrator::builder()
            .with_chat_model(Arc::new(model))
            .with_model_name(name)
            .with_cache_store(store.clone())
            .build()
            .unwrap()
    };
    let (a, b) = (orchestrator("model-a"), orchestrator("model-b"));
    assert_eq!(a.delegate_text(None, "same").await.unwrap(), "model-a");
    assert_eq!(b.delegate_text(None, "same").await.unwrap(), "model-b");
    // Each one's second call is a hit on its own entry (the mocks allow one call each).
    assert_eq!(a.delegate_text(None, "same").await.unwrap(), "model-a");
    assert_eq!(b.delegate_text(None, "same").await.unwrap(), "model-b");
}
