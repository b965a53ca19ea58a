//! mockall mocks of the five seams (the crates keep theirs behind `cfg(test)`), and helpers.

use flow_cache::{CacheStore, Entry, Key};
use flow_llm::{ChatModel, ChatRequest, ChatResponse};
use flow_publish::{Publisher, ReleasePlan, ReleaseReport};
use flow_telemetry::{
    Alert, Conclusion, Fingerprint, IssueAction, IssueSink, Job, Run, RunId, RunPage, RunQuery,
    RunSource, RunStatus, Step,
};

mockall::mock! {
    pub Model {}
    #[async_trait::async_trait]
    impl ChatModel for Model {
        async fn complete(&self, request: &ChatRequest) -> flow_llm::Result<ChatResponse>;
    }
}

mockall::mock! {
    pub Store {}
    #[async_trait::async_trait]
    impl CacheStore for Store {
        async fn get(&self, key: &Key) -> Option<Entry>;
        async fn put(&self, key: &Key, entry: Entry);
        async fn remove(&self, key: &Key);
    }
}

mockall::mock! {
    pub Source {}
    #[async_trait::async_trait]
    impl RunSource for Source {
        async fn runs(&self, query: &RunQuery) -> flow_telemetry::Result<RunPage>;
        async fn jobs(&self, run: RunId) -> flow_telemetry::Result<Vec<Job>>;
    }
}

mockall::mock! {
    pub Sink {}
    #[async_trait::async_trait]
    impl IssueSink for Sink {
        async fn raise(&self, alert: &Alert) -> flow_telemetry::Result<IssueAction>;
        async fn raise_with_notes(&self, alert: &Alert, notes: &str) -> flow_telemetry::Result<IssueAction>;
        async fn resolve(&self, fingerprint: &Fingerprint) -> flow_telemetry::Result<IssueAction>;
        async fn comment(&self, fingerprint: &Fingerprint, number: u64, text: &str) -> flow_telemetry::Result<IssueAction>;
        async fn close(&self, fingerprint: &Fingerprint, number: u64, text: &str) -> flow_telemetry::Result<IssueAction>;
    }
}

mockall::mock! {
    pub Pub {}
    #[async_trait::async_trait]
    impl Publisher for Pub {
        async fn release(&self, plan: &ReleasePlan) -> flow_publish::Result<ReleaseReport>;
    }
}

/// A chat completion in OpenAI's wire format whose answer is `content`.
pub fn answer(content: &str) -> ChatResponse {
    serde_json::from_value(serde_json::json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_741_570_283,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content, "refusal": null},
            "finish_reason": "stop"
        }],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    }))
    .unwrap()
}

/// A 503 as the HTTP client reports it.
pub fn server_down() -> flow_llm::Error {
    flow_llm::Error::new(
        flow_llm::ErrorKind::Connection,
        "connection refused: expected a Chat Completions server at http://127.0.0.1:9",
    )
}

/// The text of every message of `req`, joined.
pub fn text_of(req: &ChatRequest) -> String {
    req.messages
        .iter()
        .filter_map(|m| m.content.clone())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A completed run of `CI`, `i` minutes in, lasting 100 s (± a little so the MAD is not 0).
pub fn run(i: u64, conclusion: Conclusion) -> Run {
    let created = 1_700_000_000_000 + i as i64 * 600_000;
    Run {
        id: RunId(1000 + i),
        name: "CI".into(),
        head_branch: "main".into(),
        head_sha: format!("{i:040x}"),
        event: "push".into(),
        status: RunStatus::Completed,
        conclusion: Some(conclusion),
        run_attempt: 1,
        run_number: i,
        created_at: Some(created),
        run_started_at: Some(created + 5_000),
        updated_at: Some(created + 5_000 + 100_000 + (i as i64 % 7) * 1_000),
        html_url: format!("https://github.com/octo/hello/actions/runs/{}", 1000 + i),
        ..Run::default()
    }
}

/// `healthy` successes followed by `failing` failures.
pub fn history(healthy: u64, failing: u64) -> Vec<Run> {
    (0..healthy + failing)
        .map(|i| {
            run(
                i,
                if i < healthy {
                    Conclusion::Success
                } else {
                    Conclusion::Failure
                },
            )
        })
        .collect()
}

/// The jobs of a failed run: `build` passed, `test` failed at `cargo test`.
pub fn failing_jobs(run: RunId) -> Vec<Job> {
    let step = |n: u32, name: &str, c: Conclusion| Step {
        name: name.into(),
        number: n,
        status: RunStatus::Completed,
        conclusion: Some(c),
        ..Step::default()
    };
    vec![
        Job {
            id: 1,
            run_id: run,
            name: "build".into(),
            status: RunStatus::Completed,
            conclusion: Some(Conclusion::Success),
            steps: vec![step(1, "cargo build", Conclusion::Success)],
            ..Job::default()
        },
        Job {
            id: 2,
            run_id: run,
            name: "test".into(),
            status: RunStatus::Completed,
            conclusion: Some(Conclusion::Failure),
            steps: vec![
                step(1, "checkout", Conclusion::Success),
                step(2, "cargo test", Conclusion::Failure),
            ],
            ..Job::default()
        },
    ]
}

/// One page holding every run, newest first.
pub fn one_page(mut runs: Vec<Run>) -> RunPage {
    runs.reverse();
    RunPage {
        total_count: Some(runs.len() as u64),
        runs,
        next_page: None,
        not_modified: false,
    }
}
