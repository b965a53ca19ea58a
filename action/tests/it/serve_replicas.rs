//! `flow serve` as a deployment: three replicas on one real `redis-server`, one of them killed
//! with SIGKILL mid-run; and a real Prometheus server scraping `/metrics`.
//!
//! "Counted once" is judged on the shared outcome, not on one process's counters (a killed
//! replica's counters die with it): the repository's saved state in Redis must have observed
//! every run exactly once (`Monitor::seen`), the fake GitHub must hold exactly one issue for
//! the one problem and no repeated comment, and the survivors' run counters together may not
//! exceed the runs delivered (the first-seen keys are shared, so no run is counted by two).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flow_telemetry::state::{MonitorState, RedisStateStore, StateStore};
use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::fake_github::{IssueState, Issues, ListRuns, Runs};
use crate::redis_server::RedisServer;
use crate::serve_support::{Answer, Process, Prometheus, SECRET, free_port, http, run_delivery};

/// Serves a response after a delay the test can change (so that work is in flight when a
/// replica dies), counting the requests.
struct Delayed<R>(R, Arc<AtomicU64>, Arc<AtomicU64>);

impl<R: Respond> Respond for Delayed<R> {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        self.2.fetch_add(1, Ordering::SeqCst);
        self.0
            .respond(req)
            .set_delay(Duration::from_millis(self.1.load(Ordering::SeqCst)))
    }
}

/// The fake GitHub of `octo-org/octo-repo`.
struct GitHub {
    server: MockServer,
    runs: Runs,
    issues: Arc<Mutex<IssueState>>,
    /// The delay of run listings, ms.
    list_delay: Arc<AtomicU64>,
    /// Run listings asked for.
    lists: Arc<AtomicU64>,
}

impl GitHub {
    async fn start(list_delay_ms: u64) -> Self {
        let server = MockServer::start().await;
        let runs = Runs::default();
        let list_delay = Arc::new(AtomicU64::new(list_delay_ms));
        let lists = Arc::new(AtomicU64::new(0));
        Mock::given(path_regex(
            "^/repos/octo-org/octo-repo/actions/(workflows/[^/]+/)?runs$",
        ))
        .respond_with(Delayed(
            ListRuns {
                runs: runs.clone(),
                base: server.uri(),
            },
            list_delay.clone(),
            lists.clone(),
        ))
        .mount(&server)
        .await;
        Mock::given(path_regex(
            "^/repos/octo-org/octo-repo/actions/runs/[0-9]+/jobs",
        ))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"total_count": 0, "jobs": []})),
        )
        .mount(&server)
        .await;
        Mock::given(method("GET"))
            .and(path("/repos/octo-org/octo-repo/actions/workflows"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"total_count": 0, "workflows": []})),
            )
            .mount(&server)
            .await;
        let issues = Arc::new(Mutex::new(IssueState::default()));
        Mock::given(path_regex("^/repos/octo-org/octo-repo/(issues|labels)"))
            .respond_with(Issues(issues.clone()))
            .mount(&server)
            .await;
        Self {
            server,
            runs,
            issues,
            list_delay,
            lists,
        }
    }

    fn run(&self, id: u64) -> Value {
        self.runs
            .0
            .lock()
            .unwrap()
            .iter()
            .find(|r| r["id"] == json!(id))
            .cloned()
            .unwrap()
    }
}

/// A `flow serve` process on its own port.
struct Replica {
    port: u16,
    process: Process,
    _dir: tempfile::TempDir,
}

impl Replica {
    fn start(name: &str, api: &str, state: &str, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_flow"));
        cmd.arg("serve")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--state", state])
            .args(extra)
            .env_remove("GITHUB_ACTIONS")
            .env_remove("OPENAI_API_KEY")
            .env_remove("GITHUB_REPOSITORY")
            .env_remove("FLOW_REPOSITORY")
            .env_remove("FLOW_CONFIG")
            .env_remove("FLOW_LLM_PROVIDER")
            .env("FLOW_WEBHOOK_SECRET", SECRET)
            .env("GITHUB_TOKEN", "ghs_replica_token")
            .env("GITHUB_API_URL", api)
            .env("RUST_LOG", "flow=info")
            .current_dir(dir.path());
        let process = Process::spawn(name, cmd, dir.path().join("serve.log"));
        let r = Self {
            port,
            process,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !http(port, "GET", "/readyz", &[], b"").is_ok_and(|a| a.status == 200) {
            assert!(
                Instant::now() < deadline,
                "{name} not ready: {}",
                r.process.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }

    fn metrics(&self) -> String {
        http(self.port, "GET", "/metrics", &[], b"").unwrap().body
    }
}

/// The sum of the samples of `name` whose labels contain every `label="value"` of `with`.
fn sum(text: &str, name: &str, with: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l.as_bytes().get(name.len()) == Some(&b'{'))
        .filter(|l| with.iter().all(|w| l.contains(w)))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

async fn saved_state(redis_url: &str) -> Option<MonitorState> {
    // The key the replicas' coordinator keeps a repository's state under, saved through
    // the lease's fence (`RedisCoordinator::state_store`).
    RedisStateStore::connect(redis_url, "flow:serve:state:octo-org/octo-repo")
        .await
        .unwrap()
        .load()
        .await
        .unwrap()
}

async fn pending(redis_url: &str) -> Vec<String> {
    use flow_telemetry::serve::{Coordinator as _, RedisCoordinator};
    RedisCoordinator::connect(redis_url, "flow:serve")
        .await
        .unwrap()
        .backlog()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn three_replicas_on_one_redis_count_every_run_once_through_a_sigkill() {
    let redis = RedisServer::start();
    // Each listing takes 150 ms: a replica is mid-work when it dies.
    let gh = GitHub::start(150).await;
    let args = [
        "--workers",
        "2",
        "--open-issues",
        "--reconcile-secs",
        "0",
        "--lease-secs",
        "3",
    ];
    let mut replicas: Vec<Option<Replica>> = (0..3)
        .map(|i| {
            Some(Replica::start(
                &format!("replica-{i}"),
                &gh.server.uri(),
                &redis.url(),
                &args,
            ))
        })
        .collect();

    // Every run's delivery, spread round-robin, each third one redelivered to the next
    // replica (GitHub's "Redeliver" repeats the id). Run 20's delivery is lost (GitHub does
    // not retry), so run 21's, sent to replica 1, makes it poll GitHub; replica 1 is killed
    // in the middle of that poll, holding the repository's lease.
    let mut accepted_by = [0u32; 3];
    let mut killed_at = None;
    let mut answers: Vec<(u64, usize, u16)> = Vec::new();
    for id in (1..=40u64).filter(|&id| id != 20) {
        // The run completes on GitHub, then its delivery arrives.
        let conclusion = if id <= 30 { "success" } else { "failure" };
        if id == 21 {
            // Everything so far is done (no replica holds the lease), so the one that
            // takes run 21's work is the one it is delivered to.
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let seen = saved_state(&redis.url())
                    .await
                    .and_then(|s| s.monitor)
                    .map_or(0, |m| m.seen("Build"));
                if seen == 19 && pending(&redis.url()).await.is_empty() {
                    break;
                }
                assert!(Instant::now() < deadline, "runs 1 to 19 not done: {seen}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            gh.runs.add([20], Some("success"));
        }
        gh.runs.add([id], Some(conclusion));
        let d = run_delivery(&gh.run(id), &format!("run-{id:04}"));
        let mut sends = vec![usize::try_from(id).unwrap() % 3];
        if id == 21 {
            sends = vec![1];
            gh.list_delay.store(3_000, Ordering::SeqCst);
        } else if id % 3 == 0 {
            sends.push((sends[0] + 1) % 3);
        }
        let lists_before = gh.lists.load(Ordering::SeqCst);
        for t in &mut sends {
            // A dead replica's address refuses: the load balancer sends to the next one.
            while replicas[*t]
                .as_ref()
                .is_none_or(|r| r.process.child.is_none())
            {
                *t = (*t + 1) % 3;
            }
            let r = replicas[*t].as_ref().unwrap();
            let Answer { status, body } = d
                .send(r.port)
                .unwrap_or_else(|e| panic!("replica {t}: {e}\n{}", r.process.output()));
            answers.push((id, *t, status));
            if status == 202 {
                accepted_by[*t] += 1;
            } else {
                assert_eq!(status, 200, "run {id} on replica {t}: {body}");
            }
        }
        if id == 21 {
            // Replica 1 is now listing the runs (3 s per answer): SIGKILL.
            let deadline = Instant::now() + Duration::from_secs(30);
            while gh.lists.load(Ordering::SeqCst) == lists_before {
                assert!(
                    Instant::now() < deadline,
                    "replica 1 never polled:\n{}",
                    replicas[1].as_ref().unwrap().process.output()
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            replicas[1].as_mut().unwrap().process.kill();
            killed_at = Some(Instant::now());
            gh.list_delay.store(150, Ordering::SeqCst);
        }
    }
    let killed_at = killed_at.unwrap();
    let accepted: Vec<u64> = answers.iter().filter(|a| a.2 == 202).map(|a| a.0).collect();
    assert_eq!(
        accepted,
        (1..=40).filter(|&id| id != 20).collect::<Vec<_>>(),
        "each delivery accepted exactly once across the replicas: {answers:?}"
    );
    assert_eq!(
        answers.iter().filter(|a| a.2 == 200).count(),
        12,
        "every redelivery answered as a duplicate"
    );

    // The survivors finish, the dead replica's work included (its lease expires in 3 s).
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let state = saved_state(&redis.url()).await;
        let seen = state
            .as_ref()
            .and_then(|s| s.monitor.as_ref())
            .map_or(0, |m| m.seen("Build"));
        if seen >= 40 && pending(&redis.url()).await.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "runs observed: {seen}/40, pending {:?}\n{}",
            pending(&redis.url()).await,
            replicas
                .iter()
                .flatten()
                .map(|r| r.process.output())
                .collect::<Vec<_>>()
                .join("\n---\n")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The dead replica's lease had to expire first.
    assert!(
        killed_at.elapsed() >= Duration::from_millis(2_500),
        "finished {:?} after the kill: the lease was not the dead replica's",
        killed_at.elapsed()
    );
    let state = saved_state(&redis.url()).await.unwrap();
    assert_eq!(
        state.monitor.as_ref().unwrap().seen("Build"),
        40,
        "every run observed exactly once"
    );
    assert_eq!(state.poller.last_seen.map(|r| r.0), Some(40));
    // Quiet issues: one for the burst of failures, nothing said twice.
    let deadline = Instant::now() + Duration::from_secs(60);
    while gh.issues.lock().unwrap().created == 0 {
        assert!(Instant::now() < deadline, "no issue was opened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let saved = saved_state(&redis.url()).await.unwrap();
    assert!(
        saved.ledger.pending.is_empty(),
        "{:?}",
        saved.ledger.pending
    );
    {
        let st = gh.issues.lock().unwrap();
        assert_eq!(st.created, 1, "one issue per problem: {:?}", st.issues);
        let mut comments = st.comments.clone();
        comments.sort();
        comments.dedup();
        assert_eq!(comments.len(), st.comments.len(), "a repeated comment");
    }
    // No run counted by two replicas: the survivors' counters together stay within the runs.
    let counted: f64 = replicas
        .iter()
        .flatten()
        .filter(|r| r.process.child.is_some())
        .map(|r| {
            sum(
                &r.metrics(),
                "flow_telemetry_workflow_runs_total",
                &[r#"repository="octo-org/octo-repo""#],
            )
        })
        .sum();
    assert!(counted <= 39.0, "runs counted {counted} > 39 delivered");
    // Every delivered run was counted by some replica (the dead one's counters died with
    // it): its first-seen key is in Redis, so no replica will count it again.
    {
        use flow_telemetry::serve::{Coordinator as _, RedisCoordinator};
        let c = RedisCoordinator::connect(&redis.url(), "flow:serve")
            .await
            .unwrap();
        for id in (1..=40u64).filter(|&id| id != 20) {
            let key = format!("run:octo-org/octo-repo:{id}:1:completed");
            assert!(
                !c.first_seen(&key, 60_000).await.unwrap(),
                "run {id} was never counted"
            );
        }
    }
    for r in replicas.iter_mut().flatten() {
        if r.process.child.is_some() {
            let name = r.process.name.clone();
            let code = r.process.terminate(Duration::from_secs(60));
            assert_eq!(code, Some(0), "{name}: {}", r.process.output());
            assert!(!r.process.output().contains(SECRET));
        }
    }
}

/// With the state in Redis, `/readyz` follows that server: 503 while it is down (the states
/// and the coordination live there), 200 again once it is back; `/healthz` stays 200.
#[tokio::test(flavor = "multi_thread")]
async fn readyz_follows_the_redis_that_holds_the_states() {
    let mut redis = RedisServer::start();
    let gh = GitHub::start(0).await;
    let replica = Replica::start("flow serve", &gh.server.uri(), &redis.url(), &[]);
    let status = |path: &str| http(replica.port, "GET", path, &[], b"").map(|a| a.status);
    let until = |want: u16| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let got = status("/readyz");
            if got.as_ref().is_ok_and(|s| *s == want) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "/readyz never answered {want} (last: {got:?}): {}",
                replica.process.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    until(200);
    redis.kill();
    until(503);
    assert_eq!(status("/healthz").unwrap(), 200);
    redis.restart();
    until(200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_prometheus_scrapes_flow_serve_and_answers_queries_on_its_series() {
    let gh = GitHub::start(0).await;
    gh.runs.add(1..=3, Some("success"));
    gh.runs.add([4], Some("failure"));
    let state = tempfile::tempdir().unwrap();
    let serve = Replica::start(
        "flow serve",
        &gh.server.uri(),
        &state.path().display().to_string(),
        &["--reconcile-secs", "0"],
    );
    let prometheus = Prometheus::start(&[format!("127.0.0.1:{}", serve.port)]);
    for id in 1..=4u64 {
        let d = run_delivery(&gh.run(id), &format!("p-{id}"));
        assert_eq!(d.send(serve.port).unwrap().status, 202);
    }
    // A redelivery and a forged delivery: neither may show up as a run.
    let d = run_delivery(&gh.run(4), "p-4");
    assert_eq!(d.send(serve.port).unwrap().status, 200);
    let mut forged = run_delivery(&gh.run(4), "p-forged");
    forged.signature = format!("sha256={}", "0".repeat(64));
    assert_eq!(forged.send(serve.port).unwrap().status, 401);

    let within = Duration::from_secs(60);
    let value = |r: &[Value]| -> f64 {
        r.iter()
            .filter_map(|s| s["value"][1].as_str()?.parse::<f64>().ok())
            .sum()
    };
    let runs = r#"sum by (conclusion) (flow_telemetry_workflow_runs_total{repository="octo-org/octo-repo",workflow="Build",branch="main"})"#;
    let r = prometheus.query_until(runs, within, |r| value(r) >= 4.0);
    let by: std::collections::BTreeMap<String, f64> = r
        .iter()
        .map(|s| {
            (
                s["metric"]["conclusion"].as_str().unwrap().to_owned(),
                s["value"][1].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        by,
        [("failure".to_owned(), 1.0), ("success".to_owned(), 3.0)].into(),
        "{r:?}\n{}",
        serve.process.output()
    );
    let accepted = r#"sum(flow_serve_deliveries_total{event="workflow_run",result="accepted"})"#;
    let r = prometheus.query_until(accepted, within, |r| value(r) >= 4.0);
    assert_eq!(value(&r), 4.0, "{r:?}");
    let refused = r#"flow_serve_deliveries_total{event="workflow_run",result="bad_signature"}"#;
    let r = prometheus.query_until(refused, within, |r| value(r) >= 1.0);
    assert_eq!(value(&r), 1.0, "{r:?}");
    let dup = r#"flow_serve_deliveries_total{event="workflow_run",result="duplicate"}"#;
    let r = prometheus.query_until(dup, within, |r| value(r) >= 1.0);
    assert_eq!(value(&r), 1.0, "{r:?}");
    // The duration histogram: four runs, each 60 s from start to last update.
    let count = r#"sum(flow_telemetry_workflow_run_duration_seconds_count{repository="octo-org/octo-repo"})"#;
    let r = prometheus.query_until(count, within, |r| value(r) >= 4.0);
    assert_eq!(value(&r), 4.0, "{r:?}");
    let mean = r#"sum(flow_telemetry_workflow_run_duration_seconds_sum{repository="octo-org/octo-repo"}) / sum(flow_telemetry_workflow_run_duration_seconds_count{repository="octo-org/octo-repo"})"#;
    let r = prometheus.query(mean);
    assert!((value(&r) - 60.0).abs() < 1e-6, "{r:?}");
    // Prometheus saw the target up the whole time.
    let up = prometheus.query("up");
    assert_eq!(value(&up), 1.0, "{up:?}");
}
