//! Shared helpers: real-format bodies, servers, clients, a recording sleeper, log capture.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use flow_llm::{ClientConfig, HttpClient, Sleeper};
use secrecy::SecretString;
use serde_json::{Value, json};
use wiremock::MockServer;

pub const KEY: &str = "sk-test-0123456789abcdefSECRET";

/// A chat completion as OpenAI returns it (2025 shape, with the fields we ignore).
pub fn completion(content: &str) -> Value {
    json!({
        "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
        "object": "chat.completion",
        "created": 1_741_570_283,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content, "refusal": null, "annotations": []},
            "logprobs": null,
            "finish_reason": "stop"
        }],
        "usage": {
            "prompt_tokens": 1117, "completion_tokens": 46, "total_tokens": 1163,
            "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
        },
        "service_tier": "default",
        "system_fingerprint": "fp_06737a9306"
    })
}

pub fn with_finish(mut body: Value, reason: &str) -> Value {
    body["choices"][0]["finish_reason"] = json!(reason);
    body
}

pub fn refusal(text: &str) -> Value {
    let mut body = completion("");
    body["choices"][0]["message"]["content"] = Value::Null;
    body["choices"][0]["message"]["refusal"] = json!(text);
    body
}

pub fn tool_call(name: &str, arguments: &str) -> Value {
    let mut body = with_finish(completion(""), "tool_calls");
    body["choices"][0]["message"]["content"] = Value::Null;
    body["choices"][0]["message"]["tool_calls"] = json!([{
        "id": "call_abc123", "type": "function",
        "function": {"name": name, "arguments": arguments}
    }]);
    body
}

#[allow(clippy::needless_pass_by_value)]
pub fn api_error(message: &str, kind: &str, code: Value) -> Value {
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}

pub fn config(server: &MockServer) -> ClientConfig {
    ClientConfig::compatible(
        &format!("{}/v1", server.uri()),
        Some(SecretString::from(KEY)),
        "gpt-4o-mini",
    )
    .with_timeout(Duration::from_secs(5))
}

pub fn client(server: &MockServer) -> HttpClient {
    HttpClient::new(config(server)).unwrap()
}

/// A sleeper that returns at once and records what it was asked to wait.
#[derive(Debug, Default)]
pub struct RecordingSleeper {
    pub waits: Mutex<Vec<Duration>>,
}

#[async_trait]
impl Sleeper for RecordingSleeper {
    async fn sleep(&self, duration: Duration) {
        self.waits.lock().unwrap().push(duration);
    }
}

impl RecordingSleeper {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn waits(&self) -> Vec<Duration> {
        self.waits.lock().unwrap().clone()
    }
}

/// The real clock and jitter with `sleeper` recording the waits.
pub fn timing(sleeper: &Arc<RecordingSleeper>) -> flow_llm::Timing {
    flow_llm::Timing::default().with_sleeper(sleeper.clone())
}

/// Captures everything `tracing` writes (all levels) while `f` runs.
pub async fn capture_logs<F: std::future::Future>(f: F) -> (F::Output, String) {
    use tracing::instrument::WithSubscriber;
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let out = f.with_subscriber(subscriber).await;
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    (out, text)
}
