//! The three programs of issue 15, written from the crates' docs with `flow-orchestrator` as
//! the only dependency (plus tokio). The LLM is a local server speaking OpenAI's wire format.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use flow_orchestrator::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A Chat Completions answer carrying `content`, with OpenAI's usage block.
fn completion(content: &str) -> String {
    flow_orchestrator::serde_json::json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1_741_570_283,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": content, "refusal": null}}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150}
    })
    .to_string()
}

/// An OpenAI-compatible server on a free loopback port: `answer(request body)` gives the
/// status and body of each reply. Returns the base URL and the request count.
async fn serve(
    answer: impl Fn(&str) -> (u16, String) + Send + Sync + 'static,
) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let answer = Arc::new(answer);
    let counted = count.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let answer = answer.clone();
            let count = counted.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    // Headers, then a body of Content-Length bytes; keep-alive loops.
                    let head_end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        let mut chunk = [0u8; 4096];
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse().unwrap());
                    while buf.len() < head_end + len {
                        let mut chunk = [0u8; 4096];
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).into_owned();
                    buf.drain(..head_end + len);
                    count.fetch_add(1, Ordering::SeqCst);
                    let (status, reply) = answer(&body);
                    let out = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nx-request-id: req_{}\r\n\r\n{reply}",
                        reply.len(),
                        count.load(Ordering::SeqCst)
                    );
                    if socket.write_all(out.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (base, count)
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(crate = "flow_orchestrator::serde")]
#[schemars(crate = "flow_orchestrator::schemars")]
struct Next {
    /// What to fix first.
    fix: String,
    urgent: bool,
}

/// Program 1: a typed decision with retry, fallback to another model, cache and a hard budget.
#[tokio::test]
async fn a_typed_decision_with_retry_fallback_cache_and_budget() {
    // The primary model is out of quota; the fallback model answers.
    let (base, requests) = serve(|body| {
        if body.contains(r#""model":"gpt-4o""#) {
            (
                429,
                r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#.into(),
            )
        } else {
            (200, completion(r#"{"fix":"the flaky cache test","urgent":true}"#))
        }
    })
    .await;

    let client = HttpClient::new(ClientConfig::compatible(
        &base,
        Some(SecretString::from("sk-test-key")),
        "gpt-4o",
    ))
    .unwrap()
    .with_retry(RetryPolicy::default());
    let model = client
        .clone()
        .or_fallback_model(client, "gpt-4o-mini")
        .with_memory_cache(base.clone())
        .unwrap()
        .with_budget(Budget::unlimited().with_max_tokens(20_000).hard());

    let ask = || {
        ChatRequest::new("gpt-4o")
            .message(Message::user("What should be fixed next?"))
            .with_max_completion_tokens(200)
    };
    let first = delegate::<Next>(&model, ask()).await.unwrap();
    assert_eq!(first.value.fix, "the flaky cache test");
    assert!(first.value.urgent);
    assert_eq!(first.response.meta.fallback_index, 1);
    assert_eq!(first.usage.total_tokens, 150);
    assert!(!first.cached);

    // The same question again: a cache hit that spends nothing.
    let second = delegate::<Next>(&model, ask()).await.unwrap();
    assert!(second.cached);
    assert_eq!(second.usage.total_tokens, 0);
    assert_eq!(second.original_usage.total_tokens, 150);
    assert_eq!(
        requests.load(Ordering::SeqCst),
        2,
        "quota error, then the fallback"
    );

    let totals = model.accounting().totals();
    assert_eq!(
        totals.total_tokens,
        first.usage.total_tokens + second.usage.total_tokens
    );

    // A request without a completion cap cannot be bounded by a hard budget.
    let e = model
        .complete(&ChatRequest::new("gpt-4o").message(Message::user("uncapped")))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("max_completion_tokens"), "{e}");
}

/// Program 2: KPIs and alerts from an exported history (`gh run list --json` or NDJSON).
#[tokio::test]
async fn kpis_and_alerts_from_an_export() {
    let path = std::env::temp_dir().join(format!("flow-consumer-{}.ndjson", std::process::id()));
    std::fs::write(&path, flow_orchestrator::flow_telemetry::sample::ndjson().unwrap()).unwrap();
    let source = FileSource::from_path(&path).unwrap();
    std::fs::remove_file(&path).unwrap();

    let report = Report::of_runs(source.all(), &Rules::default(), &SystemClock);
    assert_eq!(report.workflows.len(), 3);
    let ci = report
        .workflows
        .iter()
        .find(|w| w.kpis.key.workflow == "CI")
        .unwrap();
    assert!(ci.kpis.values.failure_rate > 0.0);
    assert!(ci.kpis.values.duration_ms.is_some());

    // The sample's failure burst fired and recovered: the history shows it though no
    // alert is open at the end.
    assert!(report.alerts.is_empty());
    let recovered: Vec<&Problem> = report.recovered_problems().collect();
    assert!(!recovered.is_empty(), "{:?}", report.problems);
    assert!(recovered.iter().all(|p| p.fired >= 1 && p.recovered >= 1));
    assert!(
        report
            .to_markdown()
            .contains("### Problems over the history")
    );
    assert!(
        report
            .to_prometheus()
            .contains("flow_telemetry_runs{workflow=\"CI\"}")
    );
}

#[derive(Clone, Default)]
struct Shared(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Shared {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Program 3: the facade's monitor with an LLM triage of each alert, issues as a dry run.
#[tokio::test]
async fn the_facade_monitor_with_triage() {
    let (base, requests) = serve(|_| {
        (
            200,
            completion(
                // The quote is a line of the evidence (the alert's run links), so it verifies
                // on the first ask: one request per alert.
                r#"{"category":"test","confidence":"medium","likely_cause":"a failing test since the last merge","evidence_quote":"https://github.com/octo-org/octo-repo/actions/runs/","suggested_next_step":"Bisect the merges of the day"}"#,
            ),
        )
    })
    .await;
    // The sample cut inside its failure burst: an alert is open at the end.
    let runs: Vec<Run> = FileSource::from_text(
        &flow_orchestrator::flow_telemetry::sample::ndjson()
        .unwrap()
            .lines()
            .take(230)
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .unwrap()
    .all()
    .to_vec();
    let issues = Shared::default();
    let orchestrator = Orchestrator::builder()
        .with_chat_model(
            HttpClient::new(ClientConfig::compatible(&base, None, "gpt-4o-mini")).unwrap(),
        )
        .with_model_name("gpt-4o-mini")
        .with_run_source(FileSource::new(runs))
        .with_issue_sink(DryRunSink::new(Box::new(issues.clone())))
        .build()
        .unwrap();
    let report = orchestrator.monitor().await.unwrap();
    assert!(!report.truncated);
    assert!(!report.alerts.is_empty());
    for a in &report.alerts {
        let triage = a.triage.as_ref().expect("triaged");
        assert_eq!(triage.likely_cause, "a failing test since the last merge");
        assert!(triage.verified, "the quote is in the evidence");
        assert!(a.issue.is_some(), "the dry-run sink answered");
    }
    assert_eq!(requests.load(Ordering::SeqCst), report.alerts.len());
    let written = String::from_utf8(issues.0.lock().unwrap().clone()).unwrap();
    assert!(written.contains("would open"), "{written}");
    assert!(
        report
            .to_markdown()
            .contains("**Likely cause:** a failing test since the last merge")
    );
}
