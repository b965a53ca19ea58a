//! flow-llm client overhead per delegation against a local keep-alive server, beside
//! async-openai against the same server in the same run; and the cost of a cache hit.
//!
//! The server is a minimal HTTP/1.1 keep-alive responder (a few µs per request) that answers
//! every POST with the same real-format chat completion, so the figures are dominated by the
//! clients: building and serializing the request, the HTTP round trip through hyper, reading
//! and parsing the response.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flow_cache::{Cache, MemoryConfig, Namespace};
use flow_llm::{
    ChatModel, ChatModelExt, ChatRequest, ClientConfig, HttpClient, JsonSchemaFormat, Message,
    ResponseFormat, delegate,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Deserialize, JsonSchema)]
#[allow(dead_code)]
struct Verdict {
    fixed: bool,
    message: String,
    refinement: String,
}

fn response_body() -> Vec<u8> {
    json!({
        "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
        "object": "chat.completion",
        "created": 1_741_570_283,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant",
                "content": "{\"fixed\":false,\"message\":\"The crash still reproduces on main.\",\"refinement\":\"Guard the empty GITHUB_TOKEN case in config loading.\"}",
                "refusal": null, "annotations": []},
            "logprobs": null,
            "finish_reason": "stop"
        }],
        "usage": {"prompt_tokens": 412, "completion_tokens": 38, "total_tokens": 450,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}},
        "service_tier": "default",
        "system_fingerprint": "fp_06737a9306"
    })
    .to_string()
    .into_bytes()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn content_length(head: &[u8]) -> usize {
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    text.lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

async fn connection(mut sock: TcpStream, response: Arc<Vec<u8>>) {
    let _ = sock.set_nodelay(true);
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let head_end = loop {
            if let Some(p) = find(&buf, b"\r\n\r\n") {
                break p + 4;
            }
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let total = head_end + content_length(&buf[..head_end]);
        while buf.len() < total {
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..total);
        if sock.write_all(&response).await.is_err() {
            return;
        }
    }
}

/// Starts the keep-alive server; returns its base URL (`http://127.0.0.1:PORT/v1`).
async fn start_server() -> String {
    let body = response_body();
    let mut response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nx-request-id: req_bench\r\n\r\n",
        body.len()
    )
    .into_bytes();
    response.extend_from_slice(&body);
    let response = Arc::new(response);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            tokio::spawn(connection(sock, Arc::clone(&response)));
        }
    });
    format!("http://{addr}/v1")
}

/// The request both clients send: a system and a user message and a strict json_schema.
fn flow_request() -> ChatRequest {
    let schema = flow_llm::schema::StrictSchema::for_type::<Verdict>().schema;
    ChatRequest::new("gpt-4o-mini")
        .message(Message::system(flow_llm::REVIEW_ISSUE_SYSTEM_PROMPT))
        .message(Message::user(
            "## Issue\n\nCrash when GITHUB_TOKEN is empty.\n\n## Evidence\n\nCI red on main.",
        ))
        .with_response_format(ResponseFormat::JsonSchema {
            json_schema: JsonSchemaFormat {
                name: "Verdict".into(),
                description: None,
                schema: Some(schema),
                strict: Some(true),
            },
        })
}

fn openai_request() -> async_openai::types::chat::CreateChatCompletionRequest {
    serde_json::from_value(serde_json::to_value(flow_request()).unwrap()).unwrap()
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let base = rt.block_on(start_server());
    let flow = HttpClient::new(ClientConfig::compatible(
        &base,
        Some("sk-bench".into()),
        "gpt-4o-mini",
    ))
    .unwrap();
    let flow = Arc::new(flow);
    let openai = Arc::new(async_openai::Client::with_config(
        async_openai::config::OpenAIConfig::new()
            .with_api_base(base.clone())
            .with_api_key("sk-bench"),
    ));
    // async-openai with the same timeouts as flow-llm's default client, to separate the cost
    // of a timer per request from the rest.
    let timed = reqwest::Client::builder()
        .connect_timeout(flow_llm::DEFAULT_CONNECT_TIMEOUT)
        .timeout(flow_llm::DEFAULT_TIMEOUT)
        .build()
        .unwrap();
    let openai_timed = Arc::new(
        async_openai::Client::with_config(
            async_openai::config::OpenAIConfig::new()
                .with_api_base(base.clone())
                .with_api_key("sk-bench"),
        )
        .with_http_client(timed),
    );
    let req = Arc::new(flow_request());
    let oreq = Arc::new(openai_request());
    // Warm both connection pools.
    rt.block_on(async {
        flow.complete(&req).await.unwrap();
        openai.chat().create((*oreq).clone()).await.unwrap();
        openai_timed.chat().create((*oreq).clone()).await.unwrap();
    });

    let mut g = c.benchmark_group("llm/overhead");
    g.throughput(Throughput::Elements(1));
    g.bench_function("flow-llm complete c=1", |b| {
        b.to_async(&rt)
            .iter(|| async { flow.complete(&req).await.unwrap() });
    });
    g.bench_function("async-openai create c=1", |b| {
        b.to_async(&rt)
            .iter(|| async { openai.chat().create((*oreq).clone()).await.unwrap() });
    });
    g.bench_function("async-openai create, same timeouts c=1", |b| {
        b.to_async(&rt)
            .iter(|| async { openai_timed.chat().create((*oreq).clone()).await.unwrap() });
    });
    g.bench_function("flow-llm delegate::<Verdict> c=1", |b| {
        b.to_async(&rt)
            .iter(|| async { delegate::<Verdict>(&*flow, (*req).clone()).await.unwrap() });
    });
    g.throughput(Throughput::Elements(64));
    g.bench_function("flow-llm complete c=64", |b| {
        b.to_async(&rt).iter(|| async {
            let calls = (0..64).map(|_| {
                let (flow, req) = (Arc::clone(&flow), Arc::clone(&req));
                tokio::spawn(async move { flow.complete(&req).await.unwrap() })
            });
            futures::future::join_all(calls).await
        });
    });
    g.bench_function("async-openai create c=64", |b| {
        b.to_async(&rt).iter(|| async {
            let calls = (0..64).map(|_| {
                let (openai, oreq) = (Arc::clone(&openai), Arc::clone(&oreq));
                tokio::spawn(async move { openai.chat().create((*oreq).clone()).await.unwrap() })
            });
            futures::future::join_all(calls).await
        });
    });
    g.bench_function("async-openai create, same timeouts c=64", |b| {
        b.to_async(&rt).iter(|| async {
            let calls = (0..64).map(|_| {
                let (openai, oreq) = (Arc::clone(&openai_timed), Arc::clone(&oreq));
                tokio::spawn(async move { openai.chat().create((*oreq).clone()).await.unwrap() })
            });
            futures::future::join_all(calls).await
        });
    });
    g.finish();

    let cache = Cache::in_memory(MemoryConfig::new()).unwrap();
    let cached = HttpClient::clone(&flow)
        .with_cache(cache.clone(), base)
        .unwrap();
    rt.block_on(async { cached.complete(&req).await.unwrap() });
    let raw_key = Namespace::new("bench").unwrap().key(&"k").unwrap();
    rt.block_on(cache.put(
        &raw_key,
        vec![0u8; 1024],
        flow_cache::Policy::new(Duration::from_secs(600)),
    ));
    let mut g = c.benchmark_group("llm/cache");
    g.bench_function("flow-llm cached complete (hit)", |b| {
        b.to_async(&rt)
            .iter(|| async { cached.complete(&req).await.unwrap() });
    });
    let short = ChatRequest::new("gpt-4o-mini")
        .message(Message::user("Is issue #12 resolved? Answer yes or no."));
    rt.block_on(async { cached.complete(&short).await.unwrap() });
    g.bench_function("flow-llm cached complete (hit, short request)", |b| {
        b.to_async(&rt)
            .iter(|| async { cached.complete(&short).await.unwrap() });
    });
    g.bench_function("request key only (SHA-256 of the request)", |b| {
        b.iter(|| cached.key(&req).unwrap());
    });
    g.bench_function("baseline: flow-cache get of 1 KiB", |b| {
        b.to_async(&rt).iter(|| async { cache.get(&raw_key).await });
    });
    g.finish();
}

criterion_group!(llm, benches);
criterion_main!(llm);
