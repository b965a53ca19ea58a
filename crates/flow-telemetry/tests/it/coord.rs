//! The Redis primitives `flow serve` replicas share, against a real `redis-server`: each
//! replica is its own client (its own connection), and a replica that "dies" is a client
//! dropped without acknowledging or releasing anything.

use std::time::{Duration, Instant};

use flow_telemetry::ErrorKind;
use flow_telemetry::serve::redis::{RedisCoordinator, Released};
use flow_telemetry::serve::{Accepted, Coordinator, Delivery, EntryId, Lease};
use flow_telemetry::state::{MonitorState, StateStore};

use crate::redis_server::RedisServer;

const REPO: &str = "octo-org/octo-repo";
const LONG: u64 = 60_000;

async fn replica(redis: &RedisServer) -> RedisCoordinator {
    RedisCoordinator::connect(&redis.url(), "flow-test")
        .await
        .unwrap()
}

/// Tries to take the lease until `within` has passed.
async fn lease_within(
    c: &RedisCoordinator,
    repo: &str,
    ttl_ms: u64,
    within: Duration,
) -> Option<Lease> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(l) = c.lease(repo, "waiter", ttl_ms).await.unwrap() {
            return Some(l);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn delivery(repo: &str, id: &str, n: u32) -> Delivery {
    Delivery {
        id: id.into(),
        event: "workflow_job".into(),
        repository: repo.into(),
        received_at_ms: 1_700_000_000_000 + i64::from(n),
        body: format!(r#"{{"action":"completed","n":{n}}}"#),
    }
}

fn lost(e: &flow_telemetry::Error) -> bool {
    matches!(e.kind(), ErrorKind::LeaseLost { .. })
}

#[tokio::test]
async fn a_lease_is_exclusive_and_only_its_holder_renews_or_releases_it() {
    let redis = RedisServer::start();
    let (a, b) = (replica(&redis).await, replica(&redis).await);
    let la = a.lease(REPO, "a", LONG).await.unwrap().expect("free lease");
    assert_eq!(b.lease(REPO, "b", LONG).await.unwrap(), None, "held by a");
    assert_eq!(
        b.lease("Octo-Org/Octo-Repo", "b", LONG).await.unwrap(),
        None,
        "names are case-insensitive"
    );
    let other = b.lease("octo-org/other", "b", LONG).await.unwrap();
    assert!(other.is_some(), "another repository is independent");

    // b pretends to hold a's lease: its token is not the holder's, so it is refused.
    let forged = Lease {
        holder: "b".into(),
        token: la.token + 1,
        ..la.clone()
    };
    assert!(lost(&b.renew(&forged, LONG).await.unwrap_err()));
    assert!(lost(&b.inbox(&forged, 10).await.unwrap_err()));
    assert!(lost(&b.ack(&forged, &[]).await.unwrap_err()));
    b.release(&forged).await.unwrap();
    assert_eq!(b.lease(REPO, "b", LONG).await.unwrap(), None, "still a's");
    let renewed = a.renew(&la, LONG).await.unwrap();
    assert_eq!(renewed.token, la.token);

    // a gives it up; b takes it with a newer token, and a's old lease is worth nothing.
    a.release(&la).await.unwrap();
    let lb = b
        .lease(REPO, "b", LONG)
        .await
        .unwrap()
        .expect("released, so free");
    assert!(lb.token > la.token, "tokens grow");
    assert!(lost(&a.renew(&la, LONG).await.unwrap_err()));
    a.release(&la).await.unwrap(); // a lost lease is not an error, and frees nothing
    assert_eq!(a.lease(REPO, "a", LONG).await.unwrap(), None, "still b's");
    assert_eq!(b.release_if_idle(&lb).await.unwrap(), Released::Released);
    assert!(
        a.lease(REPO, "a", LONG).await.unwrap().is_some(),
        "free again"
    );
}

#[tokio::test]
async fn a_lease_expires_when_its_holder_stops_renewing_and_not_while_it_renews() {
    let redis = RedisServer::start();
    let (a, b) = (replica(&redis).await, replica(&redis).await);
    let la = a.lease(REPO, "a", 600).await.unwrap().unwrap();
    // Renewed every 100 ms for 1.5 s (2.5 TTLs): b never gets it.
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(1500) {
        a.renew(&la, 600).await.expect("renewal of a live lease");
        assert_eq!(
            b.lease(REPO, "b", 600).await.unwrap(),
            None,
            "renewed lease taken"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // a stops renewing (it died): b gets the lease once it expires, with a newer token.
    let waited = Instant::now();
    let lb = lease_within(&b, REPO, LONG, Duration::from_secs(10))
        .await
        .expect("the lease expires");
    assert!(
        waited.elapsed() >= Duration::from_millis(300),
        "not before its TTL: {:?}",
        waited.elapsed()
    );
    assert!(lb.token > la.token);
    assert!(
        lost(&a.renew(&la, 600).await.unwrap_err()),
        "the late holder cannot renew"
    );
}

#[tokio::test]
async fn deliveries_are_accepted_once_across_replicas_within_the_window() {
    let redis = RedisServer::start();
    let (a, b) = (replica(&redis).await, replica(&redis).await);
    let d = delivery(REPO, "72d3162e-cc78-11e3-81ab-4c9367dc0958", 1);
    assert_eq!(a.accept(&d, LONG).await.unwrap(), Accepted::New);
    assert_eq!(b.accept(&d, LONG).await.unwrap(), Accepted::Duplicate);
    assert_eq!(a.accept(&d, LONG).await.unwrap(), Accepted::Duplicate);
    let l = a.lease(REPO, "a", LONG).await.unwrap().unwrap();
    assert_eq!(a.inbox(&l, 10).await.unwrap().len(), 1, "stored once");

    // Other keys (a run counted in the metrics) share the mechanism.
    assert!(b.first_seen("run:1:1", LONG).await.unwrap());
    assert!(!a.first_seen("run:1:1", LONG).await.unwrap());

    // The window ends: a redelivery after it is new.
    let short = delivery(REPO, "short-1", 2);
    assert_eq!(a.accept(&short, 200).await.unwrap(), Accepted::New);
    assert_eq!(b.accept(&short, 200).await.unwrap(), Accepted::Duplicate);
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.accept(&short, 200).await.unwrap() == Accepted::Duplicate {
        assert!(Instant::now() < deadline, "the id was never forgotten");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Bad input names the field.
    let e = a
        .accept(&delivery("no-slash", "x", 3), LONG)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("`owner/name`"), "{e}");
    let e = a.accept(&delivery(REPO, "a b", 3), LONG).await.unwrap_err();
    assert!(e.to_string().contains("X-GitHub-Delivery"), "{e}");
    a.ping().await.unwrap();
    assert!(
        a.describe().starts_with("redis://127.0.0.1:"),
        "{}",
        a.describe()
    );
}

#[tokio::test]
async fn an_accepted_delivery_outlives_the_replica_that_accepted_and_read_it() {
    let redis = RedisServer::start();
    let a = replica(&redis).await;
    for n in 1..=3 {
        let d = delivery("Octo-Org/Octo-Repo", &format!("d-{n}"), n);
        assert_eq!(a.accept(&d, LONG).await.unwrap(), Accepted::New);
    }
    let la = a.lease(REPO, "a", 300).await.unwrap().unwrap();
    let read = a.inbox(&la, 10).await.unwrap();
    assert_eq!(read.len(), 3);
    drop(a); // dies mid-work: nothing acknowledged, nothing released.

    let b = replica(&redis).await;
    assert_eq!(
        b.backlog().await.unwrap(),
        vec![REPO.to_owned()],
        "b finds the work"
    );
    let lb = lease_within(&b, REPO, LONG, Duration::from_secs(10))
        .await
        .expect("the dead replica's lease expires");
    let again = b.inbox(&lb, 10).await.unwrap();
    assert_eq!(again, read, "the same deliveries, in order, whole");
    assert_eq!(
        again
            .iter()
            .map(|e| e.delivery.id.as_str())
            .collect::<Vec<_>>(),
        ["d-1", "d-2", "d-3"]
    );
    assert_eq!(again[2].delivery, delivery("Octo-Org/Octo-Repo", "d-3", 3));

    // The dead holder's acknowledgement is refused; the live one's clears the work.
    let stale = replica(&redis).await;
    let ids: Vec<EntryId> = again.iter().map(|e| e.id.clone()).collect();
    assert!(lost(&stale.ack(&la, &ids).await.unwrap_err()));
    assert_eq!(b.inbox(&lb, 10).await.unwrap().len(), 3, "nothing deleted");
    b.ack(&lb, &ids[..2]).await.unwrap();
    assert_eq!(
        b.backlog().await.unwrap(),
        vec![REPO.to_owned()],
        "one left"
    );
    b.ack(&lb, &ids[2..]).await.unwrap();
    assert!(b.inbox(&lb, 10).await.unwrap().is_empty());
    assert!(b.backlog().await.unwrap().is_empty(), "nothing pending");
    assert_eq!(b.release_if_idle(&lb).await.unwrap(), Released::Released);
}

#[tokio::test]
async fn a_release_if_idle_is_refused_while_deliveries_arrived_after_the_last_read() {
    let redis = RedisServer::start();
    let (a, b) = (replica(&redis).await, replica(&redis).await);
    a.accept(&delivery(REPO, "d-1", 1), LONG).await.unwrap();
    let la = a.lease(REPO, "a", LONG).await.unwrap().unwrap();
    let first = a.inbox(&la, 10).await.unwrap();
    // b accepts while a works; b cannot take the lease, so a must see the delivery.
    b.accept(&delivery(REPO, "d-2", 2), LONG).await.unwrap();
    assert_eq!(b.lease(REPO, "b", LONG).await.unwrap(), None);
    a.ack(&la, &[first[0].id.clone()]).await.unwrap();
    assert_eq!(a.release_if_idle(&la).await.unwrap(), Released::MoreWork);
    let second = a.inbox(&la, 10).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].delivery.id, "d-2");
    a.ack(&la, &[second[0].id.clone()]).await.unwrap();
    assert_eq!(a.release_if_idle(&la).await.unwrap(), Released::Released);
    assert_eq!(a.release_if_idle(&la).await.unwrap(), Released::NotHeld);

    // Shutting down: a plain release leaves the deliveries pending for another replica.
    a.accept(&delivery(REPO, "d-3", 3), LONG).await.unwrap();
    let la = a.lease(REPO, "a", LONG).await.unwrap().unwrap();
    a.release(&la).await.unwrap();
    assert_eq!(b.backlog().await.unwrap(), vec![REPO.to_owned()]);
    let lb = b
        .lease(REPO, "b", LONG)
        .await
        .unwrap()
        .expect("free after release");
    assert_eq!(b.inbox(&lb, 10).await.unwrap()[0].delivery.id, "d-3");
}

#[tokio::test]
async fn a_stale_lease_holder_cannot_save_the_state_and_the_revision_check_still_holds() {
    let redis = RedisServer::start();
    let (a, b) = (replica(&redis).await, replica(&redis).await);
    let la = a.lease(REPO, "a", 300).await.unwrap().unwrap();
    let store_a = a.state_store(&la).unwrap();
    let mut s = MonitorState::default();
    s.run_numbers.insert("Build".into(), 1);
    assert_eq!(store_a.save(&s).await.unwrap(), 1, "the holder saves");
    let loaded_a = store_a.load().await.unwrap().unwrap();

    // a pauses past its TTL; b takes over and saves.
    let lb = lease_within(&b, REPO, LONG, Duration::from_secs(10))
        .await
        .unwrap();
    // Through the seam, as `flow serve` asks for it.
    let seam: std::sync::Arc<dyn Coordinator> = std::sync::Arc::new(b.clone());
    let store_b = seam
        .state_store(&lb)
        .unwrap()
        .expect("redis keeps the states");
    let mut sb = store_b.load().await.unwrap().unwrap();
    assert_eq!(sb.revision, 1, "b sees a's save");
    sb.run_numbers.insert("Build".into(), 2);
    assert_eq!(store_b.save(&sb).await.unwrap(), 2);

    // a wakes up: its save is refused for the lease, not merely the revision, and writes
    // nothing; it would be refused even at the current revision.
    let mut late = loaded_a.clone();
    late.run_numbers.insert("Build".into(), 99);
    let e = store_a.save(&late).await.unwrap_err();
    assert!(lost(&e), "{e}");
    assert!(e.to_string().contains(REPO), "{e}");
    late.revision = 2;
    assert!(lost(&store_a.save(&late).await.unwrap_err()));
    let now = store_b.load().await.unwrap().unwrap();
    assert_eq!(
        (now.revision, now.run_numbers["Build"]),
        (2, 2),
        "b's save stands"
    );

    // Under one lease, the revision check still refuses a save from an older load.
    let e = store_b.save(&sb).await.unwrap_err();
    assert!(
        matches!(
            e.kind(),
            ErrorKind::StateConflict {
                expected: 1,
                found: 2,
                ..
            }
        ),
        "{e}"
    );
}

/// One step of several replicas working on two repositories.
#[derive(Debug, Clone)]
enum Op {
    /// Replica `r` accepts delivery `d` for repository `repo`.
    Accept { r: usize, repo: usize, d: u8 },
    /// Replica `r` tries to take the lease.
    Lease { r: usize, repo: usize },
    /// The lease's TTL passes (its holder paused or died).
    Expire { repo: usize },
    /// Replica `r` reads up to two deliveries with the lease it has and acknowledges them.
    Drain { r: usize, repo: usize },
    /// Replica `r` releases the lease it has (`force`: whatever the inbox holds).
    Release { r: usize, repo: usize, force: bool },
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        3 => (0..3usize, 0..2usize, 0..8u8).prop_map(|(r, repo, d)| Op::Accept { r, repo, d }),
        2 => (0..3usize, 0..2usize).prop_map(|(r, repo)| Op::Lease { r, repo }),
        1 => (0..2usize).prop_map(|repo| Op::Expire { repo }),
        3 => (0..3usize, 0..2usize).prop_map(|(r, repo)| Op::Drain { r, repo }),
        1 => (0..3usize, 0..2usize, any::<bool>())
            .prop_map(|(r, repo, force)| Op::Release { r, repo, force }),
    ]
}

/// Checks the primitives against a model: at most one live holder per repository, tokens
/// that only grow, every delivery accepted once and acknowledged at most once, only by the
/// live holder, in order, and the pending set equal to the repositories with events waiting.
async fn run_model(redis_url: &str, ops: &[Op]) {
    use std::collections::{BTreeMap, BTreeSet, VecDeque};
    let repos = ["octo-org/a", "octo-org/b"];
    let mut raw = redis::Client::open(redis_url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    redis::cmd("FLUSHDB").exec_async(&mut raw).await.unwrap();
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(
            RedisCoordinator::connect(redis_url, "flow-model")
                .await
                .unwrap(),
        );
    }
    let mut seen: BTreeSet<u8> = BTreeSet::new();
    let mut inbox: [VecDeque<String>; 2] = [VecDeque::new(), VecDeque::new()];
    let mut handled: Vec<String> = Vec::new();
    let mut holder: [Option<usize>; 2] = [None, None];
    // What each replica believes it holds (possibly stale), per repository.
    let mut held: BTreeMap<(usize, usize), Lease> = BTreeMap::new();
    let mut last_token = [0u64; 2];
    for op in ops {
        match *op {
            Op::Accept { r, repo, d } => {
                let got = replicas[r]
                    .accept(&delivery(repos[repo], &format!("d-{d}"), 0), LONG)
                    .await
                    .unwrap();
                if seen.insert(d) {
                    assert_eq!(got, Accepted::New, "{op:?}");
                    inbox[repo].push_back(format!("d-{d}"));
                } else {
                    assert_eq!(got, Accepted::Duplicate, "{op:?}");
                }
            }
            Op::Lease { r, repo } => {
                let got = replicas[r].lease(repos[repo], "r", LONG).await.unwrap();
                match (holder[repo], got) {
                    (None, Some(l)) => {
                        assert!(l.token > last_token[repo], "tokens grow");
                        last_token[repo] = l.token;
                        holder[repo] = Some(r);
                        held.insert((r, repo), l);
                    }
                    (Some(_), None) => {}
                    (h, got) => panic!("{op:?}: holder {h:?} but try_lease gave {got:?}"),
                }
            }
            Op::Expire { repo } => {
                redis::cmd("DEL")
                    .arg(format!("flow-model:lease:{}", repos[repo]))
                    .exec_async(&mut raw)
                    .await
                    .unwrap();
                holder[repo] = None;
            }
            Op::Drain { r, repo } => {
                let Some(lease) = held.get(&(r, repo)) else {
                    continue;
                };
                let live = holder[repo] == Some(r) && lease.token == last_token[repo];
                let read = replicas[r].inbox(lease, 2).await;
                if !live {
                    assert!(lost(&read.unwrap_err()), "{op:?}: only the holder reads");
                    let acked = replicas[r].ack(lease, &[]).await;
                    assert!(lost(&acked.unwrap_err()), "{op:?}: only the holder acks");
                    continue;
                }
                let events = read.unwrap();
                let want: Vec<&String> = inbox[repo].iter().take(2).collect();
                let got: Vec<&String> = events.iter().map(|e| &e.delivery.id).collect();
                assert_eq!(got, want, "{op:?}: the oldest deliveries, in order");
                let ids: Vec<EntryId> = events.iter().map(|e| e.id.clone()).collect();
                replicas[r].ack(lease, &ids).await.unwrap();
                for _ in 0..ids.len() {
                    handled.extend(inbox[repo].pop_front());
                }
            }
            Op::Release { r, repo, force } => {
                let Some(lease) = held.get(&(r, repo)) else {
                    continue;
                };
                let live = holder[repo] == Some(r) && lease.token == last_token[repo];
                if force {
                    replicas[r].release(lease).await.unwrap();
                    if live {
                        holder[repo] = None;
                    }
                    continue;
                }
                let got = replicas[r].release_if_idle(lease).await.unwrap();
                let want = if !live {
                    Released::NotHeld
                } else if !inbox[repo].is_empty() {
                    Released::MoreWork
                } else {
                    Released::Released
                };
                assert_eq!(got, want, "{op:?}");
                if want == Released::Released {
                    holder[repo] = None;
                }
            }
        }
        let want_pending: Vec<String> = (0..2)
            .filter(|&i| !inbox[i].is_empty())
            .map(|i| repos[i].to_owned())
            .collect();
        assert_eq!(
            replicas[0].backlog().await.unwrap(),
            want_pending,
            "after {op:?}"
        );
    }
    let unique: BTreeSet<&String> = handled.iter().collect();
    assert_eq!(unique.len(), handled.len(), "acknowledged at most once");
    let waiting = inbox.iter().map(VecDeque::len).sum::<usize>();
    assert_eq!(handled.len() + waiting, seen.len(), "nothing lost");
}

#[test]
fn replicas_coordinating_through_redis_follow_the_model() {
    use proptest::prelude::*;
    let redis = RedisServer::start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = redis.url();
    proptest!(ProptestConfig::with_cases(48), |(ops in proptest::collection::vec(op(), 1..40))| {
        rt.block_on(run_model(&url, &ops));
    });
}
