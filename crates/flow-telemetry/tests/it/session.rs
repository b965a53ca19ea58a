//! The stateful pipeline as a repository lives it: sequences of invocations (each a new
//! process: a fresh client, the state carried by a store) against the fake GitHub, counting
//! requests and writes.

use std::sync::{Arc, Mutex};

use flow_telemetry::github::{GitHubClient, GitHubConfig};
use flow_telemetry::lifecycle::LifecycleOptions;
use flow_telemetry::session::{BranchScope, Session, SessionOptions, SessionReport};
use flow_telemetry::sink::github::GitHubIssueSink;
use flow_telemetry::source::event::parse_event;
use flow_telemetry::source::github::GitHubSource;
use flow_telemetry::state::{FileStateStore, MemoryStateStore, MonitorState, StateStore};
use flow_telemetry::{
    Alert, Fingerprint, IssueAction, IssueSink, ManualClock, RunId, RunQuery, RunSource,
};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::fake_github::{FakeRepo, IssueState, Runs};
use crate::fixture;

struct Repo {
    server: MockServer,
    runs: Runs,
    issues: Arc<Mutex<IssueState>>,
    clock: Arc<ManualClock>,
}

#[derive(Debug, Default, PartialEq)]
struct Counts {
    requests: usize,
    lists: usize,
    writes: usize,
}

impl Repo {
    async fn new() -> Self {
        Self::with_list_delay(0).await
    }

    async fn with_list_delay(ms: u64) -> Self {
        let server = MockServer::start().await;
        let FakeRepo { runs, issues } = FakeRepo::mount(
            &server,
            ms,
            json!([
                {"id": 159038, "name": "Build", "path": ".github/workflows/build.yml", "state": "active"},
                {"id": 161335, "name": "CI", "path": ".github/workflows/ci.yml", "state": "active"},
                {"id": 269289, "name": "Build / Test", "path": ".github/workflows/build-test.yml", "state": "active"}
            ]),
        )
        .await;
        Self {
            server,
            runs,
            issues,
            clock: Arc::new(ManualClock::new(1_800_000_000_000)),
        }
    }

    /// A new process's client.
    fn client(&self) -> GitHubClient {
        GitHubClient::new(
            GitHubConfig::new("octo-org", "octo-repo").with_base_url(self.server.uri()),
        )
        .unwrap()
    }

    fn sink(&self) -> Arc<dyn IssueSink> {
        Arc::new(GitHubIssueSink::new(self.client()))
    }

    fn session(&self, store: Arc<dyn StateStore>, options: SessionOptions) -> Session {
        let source: Arc<dyn RunSource> = Arc::new(GitHubSource::new(self.client()));
        Session::new(
            source,
            store,
            flow_telemetry::Rules::default(),
            options,
            self.clock.clone(),
        )
        .with_sink(self.sink())
    }

    async fn requests(&self) -> Vec<Request> {
        self.server.received_requests().await.unwrap_or_default()
    }

    /// One invocation, with what it cost.
    async fn invoke(
        &self,
        store: &Arc<dyn StateStore>,
        options: SessionOptions,
    ) -> (SessionReport, Counts) {
        let before = self.requests().await.len();
        let report = self.session(store.clone(), options).run().await.unwrap();
        let all = self.requests().await;
        let new = &all[before..];
        let counts = Counts {
            requests: new.len(),
            lists: new
                .iter()
                .filter(|r| r.method.as_str() == "GET" && r.url.path().ends_with("/runs"))
                .count(),
            writes: new
                .iter()
                .filter(|r| matches!(r.method.as_str(), "POST" | "PATCH"))
                .count(),
        };
        (report, counts)
    }

    /// Sets the duration of run `id` to `secs` and its head SHA.
    fn shape(&self, id: u64, secs: i64) {
        let mut v = self.runs.0.lock().unwrap();
        for r in v.iter_mut().filter(|r| r["id"] == json!(id)) {
            let created = 1_700_000_000_000i64 + id as i64 * 60_000;
            r["updated_at"] = json!(flow_telemetry::model::ts::format_ms(
                created + 5_000 + secs * 1000
            ));
            r["head_sha"] = json!(format!("{id:040x}"));
        }
    }

    fn created(&self) -> u32 {
        self.issues.lock().unwrap().created
    }

    fn comments(&self) -> Vec<(u64, String)> {
        self.issues.lock().unwrap().comments.clone()
    }

    fn state_of(&self, number: u64) -> String {
        let st = self.issues.lock().unwrap();
        st.issues[number as usize - 1]["state"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }
}

fn memory() -> Arc<dyn StateStore> {
    Arc::new(MemoryStateStore::new())
}

#[tokio::test]
async fn an_unchanged_history_costs_one_conditional_request_per_invocation() {
    let repo = Repo::new().await;
    repo.runs.add(1..=120, Some("success"));
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn StateStore> = Arc::new(FileStateStore::new(dir.path().join("state.json")));
    let (first, c) = repo.invoke(&store, SessionOptions::default()).await;
    assert_eq!(first.runs, 120);
    assert_eq!((c.lists, c.writes), (2, 0), "backfill of two pages");
    for i in 0..10 {
        let (r, c) = repo.invoke(&store, SessionOptions::default()).await;
        assert_eq!(
            c,
            Counts {
                requests: 1,
                lists: 1,
                writes: 0
            },
            "invocation {i}"
        );
        assert_eq!(r.runs, 0);
    }
    let last = repo.requests().await;
    let last = last.last().unwrap();
    assert!(last.headers.get("if-none-match").is_some());
    // One new run: one list request (a 200 this time), observed.
    repo.runs.add([121], Some("success"));
    let (r, c) = repo.invoke(&store, SessionOptions::default()).await;
    assert_eq!((r.runs, c.lists, c.writes), (1, 1, 0));
}

#[tokio::test]
async fn a_failure_burst_opens_one_issue_recovery_closes_it_and_a_relapse_opens_another() {
    let repo = Repo::new().await;
    let store = memory();
    repo.runs.add(1..=30, Some("success"));
    let (_, c) = repo.invoke(&store, SessionOptions::default()).await;
    assert_eq!(c.writes, 0);
    // The burst arrives over 5 invocations.
    for i in 0..5u64 {
        repo.runs.add([31 + 2 * i, 32 + 2 * i], Some("failure"));
        repo.invoke(&store, SessionOptions::default()).await;
    }
    assert_eq!(repo.created(), 1, "one issue");
    assert!(repo.comments().is_empty(), "{:?}", repo.comments());
    assert_eq!(repo.state_of(1), "open");
    // Recovery closes it with one comment naming the recovering run (the failure tests want
    // 99:1 odds that the baseline rate is back: 13 passing runs here).
    repo.runs.add(41..=55, Some("success"));
    let (r, c) = repo.invoke(&store, SessionOptions::default()).await;
    assert_eq!(repo.comments().len(), 1);
    let (n, text) = &repo.comments()[0];
    assert_eq!(*n, 1);
    assert!(text.contains("Recovered with [run #"), "{text}");
    assert!(text.contains("actions/runs/"), "{text}");
    assert_eq!(repo.state_of(1), "closed");
    assert_eq!(c.writes, 2, "{r:?}");
    // Quiet again.
    let (_, c) = repo.invoke(&store, SessionOptions::default()).await;
    assert_eq!(c.writes, 0);
    // The problem fires again later: one new issue (documented choice), nothing else.
    repo.runs.add(56..=60, Some("failure"));
    repo.invoke(&store, SessionOptions::default()).await;
    assert_eq!(repo.created(), 2);
    assert_eq!(repo.comments().len(), 1);
    let st = repo.issues.lock().unwrap();
    assert_eq!(st.issues[1]["state"], "open");
}

#[tokio::test]
async fn a_permanent_slowdown_is_accepted_as_the_new_normal_with_its_commit_range() {
    let repo = Repo::new().await;
    let store = memory();
    repo.runs.add(1..=40, Some("success"));
    for id in 1..=40 {
        repo.shape(id, 100 + (id % 7) as i64);
    }
    repo.invoke(&store, SessionOptions::default()).await;
    // Twice as slow from run 41 on, for good.
    let options = || SessionOptions {
        lifecycle: LifecycleOptions {
            accept_after_runs: 30,
            ..LifecycleOptions::default()
        },
        ..SessionOptions::default()
    };
    let mut next = 41;
    for _ in 0..12 {
        let ids: Vec<u64> = (next..next + 10).collect();
        repo.runs.add(ids.clone(), Some("success"));
        for id in ids {
            repo.shape(id, 200 + (id % 7) as i64);
        }
        next += 10;
        repo.invoke(&store, options()).await;
    }
    assert_eq!(repo.created(), 1, "one issue");
    assert_eq!(repo.state_of(1), "closed");
    let comments = repo.comments();
    assert_eq!(comments.len(), 1, "{comments:?}");
    let text = &comments[0].1;
    assert!(text.contains("Accepted as the new normal"), "{text}");
    assert!(text.contains("| before | 10"), "{text}");
    assert!(text.contains("| after | 20"), "{text}");
    assert!(text.contains("/compare/"), "{text}");
    assert!(
        text.contains(&format!("{:012x}", 41)[..12]) || text.contains("…"),
        "{text}"
    );
}

#[tokio::test]
async fn workflows_are_named_by_display_name_file_or_id() {
    let repo = Repo::new().await;
    repo.runs.add(1..=5, Some("success"));
    for name in ["CI", "Build / Test", "build.yml", "159038"] {
        let store = memory();
        let options = || SessionOptions {
            query: RunQuery::new().with_workflow(name),
            ..SessionOptions::default()
        };
        let (r, _) = repo.invoke(&store, options()).await;
        assert!(r.workflow.is_some(), "{name}");
        // Remembered: the second invocation does not list the workflows again.
        let before = repo.requests().await.len();
        repo.invoke(&store, options()).await;
        let new = repo.requests().await;
        assert!(
            new[before..]
                .iter()
                .all(|r| !r.url.path().ends_with("/actions/workflows")),
            "{name}"
        );
    }
    let requests = repo.requests().await;
    assert!(
        requests
            .iter()
            .any(|r| r.url.path() == "/repos/octo-org/octo-repo/actions/workflows/269289/runs"),
        "the name with a slash resolved to its id"
    );
    let e = repo
        .session(
            memory(),
            SessionOptions {
                query: RunQuery::new().with_workflow("Deploy"),
                ..SessionOptions::default()
            },
        )
        .run()
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("no workflow named `Deploy`"), "{e}");
    assert!(
        e.contains("`Build / Test` (build-test.yml, id 269289)"),
        "{e}"
    );
    assert!(e.contains("`CI` (ci.yml"), "{e}");
}

#[tokio::test]
async fn a_workflow_run_event_is_observed_without_listing_when_the_state_is_current() {
    let repo = Repo::new().await;
    let event = parse_event(&fixture("workflow_run.completed.1.json")).unwrap();
    let store = memory();
    let state = MonitorState {
        run_numbers: [(".github/workflows/test.yml".to_owned(), 162)].into(),
        poller: flow_telemetry::source::sync::PollerState {
            last_seen: Some(RunId(289_782_000)),
            ..Default::default()
        },
        ..MonitorState::default()
    };
    store.save(&state).await.unwrap();
    let (r, c) = repo
        .invoke(
            &store,
            SessionOptions {
                event: Some(event.clone()),
                ..SessionOptions::default()
            },
        )
        .await;
    assert!(r.from_event);
    assert_eq!((r.runs, r.list_requests), (1, 0));
    assert_eq!(
        r.branch.as_deref(),
        Some("master"),
        "the payload's default branch"
    );
    assert_eq!(c.requests, 0);
    let saved = store.load().await.unwrap().unwrap();
    assert_eq!(saved.poller.last_seen, Some(RunId(289_782_451)));
    // The same event again (a re-delivery): nothing new, still no request.
    let (r, c) = repo
        .invoke(
            &store,
            SessionOptions {
                event: Some(event),
                ..SessionOptions::default()
            },
        )
        .await;
    assert_eq!((r.runs, c.requests), (0, 0));
    // A gap (state two runs behind): listed to fill it.
    let store = memory();
    let state = MonitorState {
        run_numbers: [(".github/workflows/test.yml".to_owned(), 150)].into(),
        poller: flow_telemetry::source::sync::PollerState {
            last_seen: Some(RunId(289_000_000)),
            ..Default::default()
        },
        ..MonitorState::default()
    };
    store.save(&state).await.unwrap();
    let (r, c) = repo
        .invoke(
            &store,
            SessionOptions {
                event: Some(parse_event(&fixture("workflow_run.completed.1.json")).unwrap()),
                ..SessionOptions::default()
            },
        )
        .await;
    assert!(!r.from_event);
    assert_eq!(c.lists, 1);
}

/// The sink makes the write, then the process "dies" before it can record it.
struct DiesAfterWriting(Arc<dyn IssueSink>);

fn killed() -> flow_telemetry::Error {
    flow_telemetry::Error::new(flow_telemetry::ErrorKind::Transport(
        "killed after writing".into(),
    ))
}

#[async_trait::async_trait]
impl IssueSink for DiesAfterWriting {
    async fn raise(&self, alert: &Alert) -> flow_telemetry::Result<IssueAction> {
        self.0.raise(alert).await
    }
    async fn resolve(&self, fp: &Fingerprint) -> flow_telemetry::Result<IssueAction> {
        self.0.resolve(fp).await
    }
    async fn open(&self, alert: &Alert, notes: &str) -> flow_telemetry::Result<IssueAction> {
        self.0.open(alert, notes).await?;
        Err(killed())
    }
    async fn comment(
        &self,
        fp: &Fingerprint,
        number: u64,
        text: &str,
    ) -> flow_telemetry::Result<IssueAction> {
        self.0.comment(fp, number, text).await?;
        Err(killed())
    }
    async fn close(
        &self,
        fp: &Fingerprint,
        number: u64,
        text: &str,
    ) -> flow_telemetry::Result<IssueAction> {
        self.0.close(fp, number, text).await?;
        Err(killed())
    }
}

#[tokio::test]
async fn a_process_dying_after_writing_is_redone_without_double_posting() {
    let repo = Repo::new().await;
    let store = memory();
    repo.runs.add(1..=30, Some("success"));
    repo.invoke(&store, SessionOptions::default()).await;
    repo.runs.add(31..=36, Some("failure"));
    let source: Arc<dyn RunSource> = Arc::new(GitHubSource::new(repo.client()));
    let dying = Session::new(
        source,
        store.clone(),
        flow_telemetry::Rules::default(),
        SessionOptions::default(),
        repo.clock.clone(),
    )
    .with_sink(Arc::new(DiesAfterWriting(repo.sink())));
    let r = dying.run().await.unwrap();
    assert_eq!(r.deferred, 1, "the open is still queued");
    assert_eq!(repo.created(), 1);
    // Next invocation: the queued open is redone; the sink finds the issue by its marker.
    let (r, c) = repo.invoke(&store, SessionOptions::default()).await;
    assert_eq!((repo.created(), c.writes, r.deferred), (1, 0, 0));
    let saved = store.load().await.unwrap().unwrap();
    assert_eq!(saved.ledger.open_issues().next().unwrap().1.issue, Some(1));
    // The recovery's close dies after commenting and closing: redone without a second comment.
    repo.runs.add(37..=50, Some("success"));
    let source: Arc<dyn RunSource> = Arc::new(GitHubSource::new(repo.client()));
    Session::new(
        source,
        store.clone(),
        flow_telemetry::Rules::default(),
        SessionOptions::default(),
        repo.clock.clone(),
    )
    .with_sink(Arc::new(DiesAfterWriting(repo.sink())))
    .run()
    .await
    .unwrap();
    assert_eq!(repo.comments().len(), 1);
    let (_, c) = repo.invoke(&store, SessionOptions::default()).await;
    assert_eq!(repo.comments().len(), 1, "not commented twice");
    assert_eq!(c.writes, 1, "only the idempotent PATCH again");
    assert_eq!(repo.state_of(1), "closed");
}

#[tokio::test]
async fn the_write_cap_defers_the_rest_to_the_next_invocation() {
    let repo = Repo::new().await;
    let store = memory();
    repo.runs.add(1..=30, Some("success"));
    repo.invoke(&store, SessionOptions::default()).await;
    repo.runs.add(31..=36, Some("failure"));
    let capped = || SessionOptions {
        lifecycle: LifecycleOptions {
            max_writes: 0,
            ..LifecycleOptions::default()
        },
        ..SessionOptions::default()
    };
    let (r, c) = repo.invoke(&store, capped()).await;
    assert_eq!((c.writes, r.deferred), (0, 1));
    let (r, c) = repo.invoke(&store, SessionOptions::default()).await;
    assert_eq!(
        (c.writes, r.deferred, repo.created()),
        (2, 0, 1),
        "label + issue"
    );
}

#[tokio::test]
async fn an_unreadable_state_file_is_an_error_naming_it() {
    let repo = Repo::new().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state.json");
    std::fs::write(&file, b"\x89PNG garbage").unwrap();
    let store: Arc<dyn StateStore> = Arc::new(FileStateStore::new(&file));
    let e = repo
        .session(store.clone(), SessionOptions::default())
        .run()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&file.display().to_string()) && e.contains("--reset-state"),
        "{e}"
    );
    assert!(
        repo.requests().await.is_empty(),
        "nothing was asked of GitHub"
    );
    // Starting over on purpose works.
    repo.runs.add(1..=3, Some("success"));
    let r = repo
        .session(
            store,
            SessionOptions {
                reset: true,
                branch: BranchScope::All,
                ..SessionOptions::default()
            },
        )
        .run()
        .await
        .unwrap();
    assert_eq!(r.runs, 3);
}

#[tokio::test]
async fn two_monitors_sharing_a_redis_state_lose_nothing_and_say_things_once() {
    let redis = crate::redis_server::RedisServer::start();
    // List answers are slow, so both monitors load the state before either saves it.
    let repo = Repo::with_list_delay(300).await;
    let a: Arc<dyn StateStore> = Arc::new(
        flow_telemetry::state::RedisStateStore::connect(&redis.url(), "flow:test:state")
            .await
            .unwrap(),
    );
    let b: Arc<dyn StateStore> = Arc::new(
        flow_telemetry::state::RedisStateStore::connect(&redis.url(), "flow:test:state")
            .await
            .unwrap(),
    );
    repo.runs.add(1..=30, Some("success"));
    repo.invoke(&a, SessionOptions::default()).await;
    for i in 0..3u64 {
        repo.runs.add([31 + 2 * i, 32 + 2 * i], Some("failure"));
        let (sa, sb) = (
            repo.session(a.clone(), SessionOptions::default()),
            repo.session(b.clone(), SessionOptions::default()),
        );
        let (ra, rb) = tokio::join!(sa.run(), sb.run());
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert_eq!(
            ra.reloads + rb.reloads,
            1,
            "round {i}: one of them reloaded"
        );
    }
    assert_eq!(repo.created(), 1, "one issue");
    assert!(repo.comments().is_empty(), "{:?}", repo.comments());
    let saved = a.load().await.unwrap().unwrap();
    assert_eq!(saved.poller.last_seen, Some(RunId(36)), "no lost update");
    assert!(saved.ledger.pending.is_empty());
    assert_eq!(saved.ledger.open_issues().next().unwrap().1.issue, Some(1));
    let monitor = saved.monitor.unwrap();
    assert_eq!(monitor.seen("Build"), 36, "every run observed exactly once");
}

#[tokio::test]
async fn a_workflow_job_event_fetches_its_run_instead_of_listing() {
    let repo = Repo::new().await;
    let mut run: serde_json::Value = serde_json::from_str(&fixture("workflow-run.json")).unwrap();
    run["id"] = json!(2_202_229_078u64);
    run["run_number"] = json!(563);
    run["head_branch"] = json!("master");
    run["status"] = json!("completed");
    run["conclusion"] = json!("failure");
    Mock::given(method("GET"))
        .and(path("/repos/octo-org/octo-repo/actions/runs/2202229078"))
        .respond_with(ResponseTemplate::new(200).set_body_json(run))
        .expect(1)
        .mount(&repo.server)
        .await;
    let store = memory();
    let state = MonitorState {
        run_numbers: [("Build".to_owned(), 562)].into(),
        poller: flow_telemetry::source::sync::PollerState {
            last_seen: Some(RunId(30_433_642)),
            ..Default::default()
        },
        ..MonitorState::default()
    };
    store.save(&state).await.unwrap();
    let event = parse_event(&fixture("workflow_job.completed.1.json")).unwrap();
    let (r, c) = repo
        .invoke(
            &store,
            SessionOptions {
                event: Some(event),
                ..SessionOptions::default()
            },
        )
        .await;
    assert!(r.from_event);
    assert_eq!((r.runs, c.lists), (1, 0));
    assert_eq!(c.requests, 2, "the run, and the jobs of the failed run");
    let saved = store.load().await.unwrap().unwrap();
    assert_eq!(saved.run_numbers["Build"], 563);
}

#[tokio::test]
async fn a_replica_that_lost_its_lease_saves_nothing_and_writes_nothing() {
    use flow_telemetry::serve::{Coordinator, RedisCoordinator};
    use std::time::{Duration, Instant};
    let redis = crate::redis_server::RedisServer::start();
    let a = RedisCoordinator::connect(&redis.url(), "flow-test")
        .await
        .unwrap();
    let b = RedisCoordinator::connect(&redis.url(), "flow-test")
        .await
        .unwrap();
    let repo = Repo::new().await;
    repo.runs.add(1..=30, Some("success"));
    // a's lease is short (it will pause past it), yet long enough for its first invocation
    // on a loaded 2-core machine (300 ms was not); b's outlasts the test.
    let la = a
        .lease("octo-org/octo-repo", "a", 2_000)
        .await
        .unwrap()
        .unwrap();
    let store_a: Arc<dyn StateStore> = Arc::new(a.state_store(&la).unwrap());
    repo.invoke(&store_a, SessionOptions::default()).await;

    // a pauses past its lease; b takes the repository over.
    let deadline = Instant::now() + Duration::from_secs(20);
    let lb = loop {
        if let Some(l) = b.lease("octo-org/octo-repo", "b", 60_000).await.unwrap() {
            break l;
        }
        assert!(Instant::now() < deadline, "the lease never expired");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let store_b: Arc<dyn StateStore> = Arc::new(b.state_store(&lb).unwrap());
    repo.runs.add(31..=36, Some("failure"));

    // a wakes up and runs: refused at its first save, before any GitHub write.
    let e = repo
        .session(store_a.clone(), SessionOptions::default())
        .run()
        .await
        .unwrap_err();
    assert!(
        matches!(e.kind(), flow_telemetry::ErrorKind::LeaseLost { .. }),
        "{e}"
    );
    assert_eq!(repo.created(), 0, "the stale replica opened nothing");
    let saved = store_b.load().await.unwrap().unwrap();
    assert_eq!(saved.poller.last_seen, Some(RunId(30)), "and saved nothing");

    // b, the holder, observes the failures once and opens the one issue.
    let (r, _) = repo.invoke(&store_b, SessionOptions::default()).await;
    assert_eq!(r.runs, 6);
    assert_eq!(repo.created(), 1);
    let saved = store_b.load().await.unwrap().unwrap();
    assert_eq!(saved.monitor.unwrap().seen("Build"), 36, "every run once");
}
