//! The Redis backend against a real `redis-server`.

use std::sync::Arc;
use std::time::Duration;

use flow_cache::{
    Cache, CacheStore, Clock, Entry, Envelope, FetchError, Key, Lookup, ManualClock, MemoryConfig,
    MemoryStore, Namespace, Outcome, Policy, RedisConfig, RedisStore, SystemClock, TwoTier,
};

use crate::redis_server::RedisServer;

/// Every call into a store or cache must finish well within this.
const BOUND: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
#[error("llm unavailable")]
struct Unavailable;

fn key(name: &str) -> Key {
    Namespace::new("test").unwrap().key(name).unwrap()
}

async fn raw(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, f)
        .await
        .unwrap_or_else(|_| panic!("{what} hung for more than {BOUND:?}"))
}

/// Generous timeouts: the machine running the tests may be loaded, and a slow answer counted
/// as a miss would make these tests flaky. Calls while the server is down still fail at once
/// (connection refused), well within [`BOUND`].
fn config(url: String) -> RedisConfig {
    RedisConfig::new(url)
        .with_connect_timeout(Duration::from_secs(2))
        .with_response_timeout(Duration::from_secs(2))
        .with_op_timeout(Duration::from_secs(3))
}

/// A clock at the real time, movable by hand (Redis expires keys on its own clock).
fn clock_now() -> ManualClock {
    ManualClock::new(SystemClock.now_ms())
}

#[tokio::test]
async fn set_get_and_expiry_is_stale_until() {
    let server = RedisServer::start();
    let clock = clock_now();
    let store = RedisStore::new(&config(server.url()))
        .unwrap()
        .with_clock(Arc::new(clock.clone()));
    let k = key("a");
    let now = clock.now_unix_ms();
    let entry = Entry::new(
        Envelope::new(now, Duration::from_secs(60), Duration::from_secs(60)),
        b"hello".to_vec(),
    );
    assert_eq!(bounded("get", store.get(&k)).await, None);
    bounded("put", store.put(&k, entry.clone())).await;
    assert_eq!(bounded("get", store.get(&k)).await, Some(entry.clone()));

    // Stored under the documented key, expiring at stale_until (120 s from now).
    let mut conn = raw(&server).await;
    let redis_key = format!("flow:test:v1:{}", k.hex());
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&redis_key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!((119_000..=120_000).contains(&pttl), "PTTL {pttl}");

    // Later puts count from the clock: 30 s on, 90 s remain.
    clock.advance(Duration::from_secs(30));
    bounded("put", store.put(&k, entry.clone())).await;
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&redis_key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!((89_000..=90_000).contains(&pttl), "PTTL {pttl}");

    // An entry already past stale_until is not written.
    let k2 = key("expired");
    let dead = Entry::new(
        Envelope::new(now - 10_000, Duration::from_secs(1), Duration::from_secs(1)),
        b"x".to_vec(),
    );
    bounded("put", store.put(&k2, dead)).await;
    let exists: i64 = redis::cmd("EXISTS")
        .arg(k2.redis_key())
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(exists, 0);

    // A key that expired in Redis is a miss; so is a foreign value.
    let _: () = redis::cmd("SET")
        .arg(&redis_key)
        .arg("x")
        .arg("PX")
        .arg(1)
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg(k2.redis_key())
        .arg("not ours")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(bounded("get", store.get(&k2)).await, None);
    tokio::time::timeout(BOUND, async {
        while store.get(&k).await.is_some() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("a key with PX 1 expires");

    bounded("put", store.put(&k, entry.clone())).await;
    bounded("remove", store.remove(&k)).await;
    assert_eq!(bounded("get", store.get(&k)).await, None);
}

#[tokio::test]
async fn a_near_eternal_entry_is_stored_not_rejected_by_redis() {
    let server = RedisServer::start();
    let clock = clock_now();
    let store = RedisStore::new(&config(server.url()))
        .unwrap()
        .with_clock(Arc::new(clock.clone()));
    let k = key("eternal");
    // stale_until saturates at u64::MAX ms: a PX Redis would refuse as out of range.
    let entry = Entry::new(
        Envelope::new(clock.now_unix_ms(), Duration::MAX, Duration::MAX),
        b"forever".to_vec(),
    );
    bounded("put", store.put(&k, entry.clone())).await;
    assert_eq!(bounded("get", store.get(&k)).await, Some(entry));
    let mut conn = raw(&server).await;
    let pttl: i64 = redis::cmd("PTTL")
        .arg(k.redis_key())
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(pttl > 1 << 61, "PTTL {pttl}");
}

#[tokio::test]
async fn stale_if_error_through_redis() {
    let server = RedisServer::start();
    let clock = clock_now();
    let store = RedisStore::new(&config(server.url()))
        .unwrap()
        .with_clock(Arc::new(clock.clone()));
    let cache = Cache::new(store).with_clock(Arc::new(clock.clone()));
    let k = key("stale");
    let policy = Policy::new(Duration::from_secs(10)).with_stale(Duration::from_secs(3_600));

    let s = bounded(
        "fetch",
        cache.get_or_fetch_json(&k, policy, || async {
            Ok::<_, FetchError>("v1".to_owned())
        }),
    )
    .await
    .unwrap();
    assert_eq!(s.outcome, Outcome::Miss);
    clock.advance(Duration::from_secs(11));
    assert!(matches!(
        bounded("get", cache.get(&k)).await,
        Lookup::Stale(_)
    ));
    let s = bounded(
        "fetch",
        cache.get_or_fetch_json(&k, policy, || async {
            Err::<String, _>(FetchError::transient(Unavailable))
        }),
    )
    .await
    .unwrap();
    assert_eq!((s.value.as_str(), s.outcome), ("v1", Outcome::StaleIfError));
    let s = bounded(
        "fetch",
        cache.get_or_fetch_json(&k, policy, || async {
            Ok::<_, FetchError>("v2".to_owned())
        }),
    )
    .await
    .unwrap();
    assert_eq!((s.value.as_str(), s.outcome), ("v2", Outcome::Refreshed));
    assert_eq!(cache.metrics().stale_if_error, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_and_restarted_mid_test() {
    let mut server = RedisServer::start();
    let store = RedisStore::new(&config(server.url())).unwrap();
    let cache = Cache::new(store.clone());
    let policy = Policy::new(Duration::from_secs(600));
    let entry = Entry::new(
        Envelope::new(
            SystemClock.now_unix_ms(),
            Duration::from_secs(600),
            Duration::ZERO,
        ),
        b"up".to_vec(),
    );

    bounded("put", store.put(&key("before"), entry.clone())).await;
    assert_eq!(
        bounded("get", store.get(&key("before"))).await,
        Some(entry.clone())
    );

    server.kill();
    // While down: misses, dropped writes, and the cache still answers by fetching.
    for i in 0..5 {
        assert_eq!(
            bounded("get while down", store.get(&key("before"))).await,
            None
        );
        bounded("put while down", store.put(&key("down"), entry.clone())).await;
        let s = bounded(
            "fetch while down",
            cache.get_or_fetch(&key(&format!("down-{i}")), policy, || async {
                Ok(b"fetched".to_vec())
            }),
        )
        .await
        .unwrap();
        assert_eq!((&*s.value, s.outcome), (&b"fetched"[..], Outcome::Miss));
    }

    server.restart();
    // The connection manager reconnects: within the bound, writes and reads reach Redis again.
    let k = key("after");
    tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            store.put(&k, entry.clone()).await;
            if store.get(&k).await.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("redis used again within 15 s of the restart");
    // Really in the new server, which started empty.
    let mut conn = raw(&server).await;
    let exists: i64 = redis::cmd("EXISTS")
        .arg(k.redis_key())
        .query_async(&mut conn)
        .await
        .unwrap();
    let before: i64 = redis::cmd("EXISTS")
        .arg(key("before").redis_key())
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!((exists, before), (1, 0));
    let s = bounded(
        "fetch after restart",
        cache.get_or_fetch(&k, policy, || async { Ok(b"unused".to_vec()) }),
    )
    .await
    .unwrap();
    assert_eq!((&*s.value, s.outcome), (&b"up"[..], Outcome::Hit));
}

#[tokio::test]
async fn unreachable_server_is_only_misses() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = RedisStore::new(&RedisConfig::new(format!("redis://127.0.0.1:{port}"))).unwrap();
    let entry = Entry::new(
        Envelope::new(
            SystemClock.now_unix_ms(),
            Duration::from_secs(60),
            Duration::ZERO,
        ),
        b"x".to_vec(),
    );
    bounded("put", store.put(&key("x"), entry)).await;
    assert_eq!(bounded("get", store.get(&key("x"))).await, None);
    bounded("remove", store.remove(&key("x"))).await;
}

#[tokio::test]
async fn two_tiers_memory_in_front_of_redis() {
    let mut server = RedisServer::start();
    let redis = RedisStore::new(&config(server.url())).unwrap();
    let near = Arc::new(MemoryStore::new(MemoryConfig::new()).unwrap());
    let tiers = TwoTier::new(Arc::clone(&near), redis.clone());
    let entry = Entry::new(
        Envelope::new(
            SystemClock.now_unix_ms(),
            Duration::from_secs(60),
            Duration::ZERO,
        ),
        b"t".to_vec(),
    );

    // Written by another runner: only in Redis. A get copies it to memory.
    bounded("put", redis.put(&key("shared"), entry.clone())).await;
    assert_eq!(near.get_sync(&key("shared")), None);
    assert_eq!(
        bounded("get", tiers.get(&key("shared"))).await,
        Some(entry.clone())
    );
    assert_eq!(near.get_sync(&key("shared")), Some(entry.clone()));

    bounded("put", tiers.put(&key("both"), entry.clone())).await;
    assert_eq!(
        bounded("get", redis.get(&key("both"))).await,
        Some(entry.clone())
    );

    // With Redis gone, the memory tier still answers.
    server.kill();
    assert_eq!(bounded("get", tiers.get(&key("both"))).await, Some(entry));
    assert_eq!(bounded("get", tiers.get(&key("missing"))).await, None);
}
