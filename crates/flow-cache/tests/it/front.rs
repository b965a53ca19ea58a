//! The `Cache` front: TTL and stale semantics on a manual clock, single flight, cancellation.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use flow_cache::{
    Cache, ErrorKind, FetchError, Key, Lookup, ManualClock, MemoryConfig, Namespace, Outcome,
    Policy,
};
use tokio::sync::Semaphore;

#[derive(Debug, thiserror::Error)]
#[error("upstream said no ({0})")]
struct Upstream(u16);

fn cache_at(clock: &ManualClock) -> Cache {
    Cache::in_memory(MemoryConfig::new().with_shards(1))
        .unwrap()
        .with_clock(Arc::new(clock.clone()))
}

fn key(name: &str) -> Key {
    Namespace::new("test").unwrap().key(name).unwrap()
}

/// A fetch that counts its calls and answers `answer`.
fn counted(
    calls: &Arc<AtomicUsize>,
    answer: Result<&'static str, FetchError>,
) -> impl FnOnce() -> futures::future::Ready<Result<Vec<u8>, FetchError>> + Send + 'static {
    let calls = Arc::clone(calls);
    move || {
        calls.fetch_add(1, Ordering::SeqCst);
        futures::future::ready(answer.map(|s| s.as_bytes().to_vec()))
    }
}

#[tokio::test]
async fn ttl_then_stale_then_stale_if_error_then_gone() {
    let clock = ManualClock::new(1_000);
    let cache = cache_at(&clock);
    let k = key("q");
    let calls = Arc::new(AtomicUsize::new(0));
    let policy = Policy::new(Duration::from_millis(100)).with_stale(Duration::from_millis(50));

    let s = cache
        .get_or_fetch(&k, policy, counted(&calls, Ok("v1")))
        .await
        .unwrap();
    assert_eq!((&*s.value, s.outcome), (&b"v1"[..], Outcome::Miss));
    assert_eq!(
        (
            s.envelope.created_at,
            s.envelope.fresh_until,
            s.envelope.stale_until
        ),
        (1_000, 1_100, 1_150)
    );

    clock.set(1_099);
    let s = cache
        .get_or_fetch(&k, policy, counted(&calls, Ok("never")))
        .await
        .unwrap();
    assert_eq!((&*s.value, s.outcome), (&b"v1"[..], Outcome::Hit));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "a fresh hit does not fetch"
    );

    // At fresh_until the value is stale: refreshed through a fetch.
    clock.set(1_100);
    let s = cache
        .get_or_fetch(&k, policy, counted(&calls, Ok("v2")))
        .await
        .unwrap();
    assert_eq!((&*s.value, s.outcome), (&b"v2"[..], Outcome::Refreshed));
    assert_eq!(s.envelope.created_at, 1_100);

    // Stale again; the refresh fails transiently: the stale value is served.
    clock.set(1_210);
    let s = cache
        .get_or_fetch(
            &k,
            policy,
            counted(&calls, Err(FetchError::transient(Upstream(503)))),
        )
        .await
        .unwrap();
    assert_eq!((&*s.value, s.outcome), (&b"v2"[..], Outcome::StaleIfError));
    assert!(s.outcome.is_stale());

    // A permanent error is never masked by a stale value.
    let e = cache
        .get_or_fetch(
            &k,
            policy,
            counted(&calls, Err(FetchError::permanent(Upstream(400)))),
        )
        .await
        .unwrap_err();
    assert!(!e.is_retryable());
    assert_eq!(
        e.fetch_error()
            .unwrap()
            .downcast_ref::<Upstream>()
            .unwrap()
            .0,
        400
    );
    assert_eq!(
        e.to_string(),
        "fetch failed (permanent): upstream said no (400)"
    );

    // At stale_until the value is gone: the transient error reaches the caller.
    clock.set(1_250);
    let e = cache
        .get_or_fetch(
            &k,
            policy,
            counted(&calls, Err(FetchError::transient(Upstream(503)))),
        )
        .await
        .unwrap_err();
    assert!(e.is_retryable());
    assert!(matches!(e.kind(), ErrorKind::Fetch(f) if f.is_transient()));

    // Errors were not cached: the next call fetches again.
    let s = cache
        .get_or_fetch(&k, policy, counted(&calls, Ok("v3")))
        .await
        .unwrap();
    assert_eq!((&*s.value, s.outcome), (&b"v3"[..], Outcome::Miss));
    assert_eq!(calls.load(Ordering::SeqCst), 6);

    let m = cache.metrics();
    assert_eq!((m.hits, m.stale_hits, m.misses), (1, 3, 3));
    assert_eq!((m.fetches, m.fetch_errors, m.stale_if_error), (6, 3, 1));
    assert_eq!(m.entries, 1);
}

#[tokio::test]
async fn direct_get_returns_stale_but_not_expired() {
    let clock = ManualClock::new(0);
    let cache = cache_at(&clock);
    let k = key("q");
    let policy = Policy::new(Duration::from_millis(10)).with_stale(Duration::from_millis(10));
    assert_eq!(cache.get(&k).await, Lookup::Miss);
    cache.put(&k, b"x".to_vec(), policy).await;
    assert!(matches!(cache.get(&k).await, Lookup::Fresh(_)));
    clock.set(15);
    let Lookup::Stale(e) = cache.get(&k).await else {
        panic!("expected stale")
    };
    assert_eq!(&*e.value, b"x");
    clock.set(20);
    assert_eq!(cache.get(&k).await, Lookup::Miss);
    assert_eq!(
        cache.metrics().hits + cache.metrics().misses,
        0,
        "direct get counts nothing"
    );
}

#[tokio::test]
async fn no_store_and_force_refresh() {
    let clock = ManualClock::new(0);
    let cache = cache_at(&clock);
    let k = key("q");
    let calls = Arc::new(AtomicUsize::new(0));
    let ttl = Policy::new(Duration::from_secs(60));

    let s = cache
        .get_or_fetch(&k, ttl.with_no_store(true), counted(&calls, Ok("a")))
        .await
        .unwrap();
    assert_eq!(s.outcome, Outcome::Miss);
    assert_eq!(cache.get(&k).await, Lookup::Miss, "no_store wrote nothing");

    cache
        .get_or_fetch(&k, ttl, counted(&calls, Ok("b")))
        .await
        .unwrap();
    let s = cache
        .get_or_fetch(&k, ttl.with_no_store(true), counted(&calls, Ok("c")))
        .await
        .unwrap();
    assert_eq!(
        (&*s.value, s.outcome),
        (&b"b"[..], Outcome::Hit),
        "no_store still reads"
    );

    let s = cache
        .get_or_fetch(&k, ttl.with_force_refresh(true), counted(&calls, Ok("d")))
        .await
        .unwrap();
    assert_eq!((&*s.value, s.outcome), (&b"d"[..], Outcome::Miss));
    let s = cache
        .get_or_fetch(&k, ttl, counted(&calls, Ok("e")))
        .await
        .unwrap();
    assert_eq!(&*s.value, b"d", "force_refresh stored its result");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn json_values_round_trip_and_undecodable_entries_are_refetched() {
    let clock = ManualClock::new(0);
    let cache = cache_at(&clock);
    let k = key("json");
    let policy = Policy::new(Duration::from_secs(60)).with_stale(Duration::from_secs(60));
    cache.put(&k, b"not json".to_vec(), policy).await;
    let s = cache
        .get_or_fetch_json(&k, policy, || async {
            Ok::<_, FetchError>(vec![1u32, 2, 3])
        })
        .await
        .unwrap();
    assert_eq!((s.value, s.outcome), (vec![1, 2, 3], Outcome::Miss));
    let s = cache
        .get_or_fetch_json(&k, policy, || async { Ok::<_, FetchError>(vec![9u32]) })
        .await
        .unwrap();
    assert_eq!((s.value, s.outcome), (vec![1, 2, 3], Outcome::Hit));

    // Stale JSON served when the refresh fails.
    clock.set(61_000);
    let s = cache
        .get_or_fetch_json(&k, policy, || async {
            Err::<Vec<u32>, _>(FetchError::transient(Upstream(502)))
        })
        .await
        .unwrap();
    assert_eq!((s.value, s.outcome), (vec![1, 2, 3], Outcome::StaleIfError));
    let got = cache.get_json::<Vec<u32>>(&k).await.unwrap().unwrap();
    assert_eq!(
        (got.value, got.outcome),
        (vec![1, 2, 3], Outcome::StaleIfError)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_concurrent_callers_cause_one_fetch() {
    let cache = Cache::in_memory(MemoryConfig::new()).unwrap();
    let k = key("hot");
    let calls = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(0));
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let (cache, k, calls, gate) = (
            cache.clone(),
            k.clone(),
            Arc::clone(&calls),
            Arc::clone(&gate),
        );
        tasks.push(tokio::spawn(async move {
            cache
                .get_or_fetch(&k, Policy::default(), move || async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    let _permit = gate.acquire().await.unwrap();
                    Ok(b"answer".to_vec())
                })
                .await
        }));
    }
    // Hold the fetch until all 99 others have joined it.
    wait_until(|| cache.metrics().coalesced == 99).await;
    gate.add_permits(1);
    let mut outcomes = Vec::new();
    for t in tasks {
        let s = t.await.unwrap().unwrap();
        assert_eq!(&*s.value, b"answer");
        outcomes.push(s.outcome);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(outcomes.iter().filter(|o| **o == Outcome::Miss).count(), 1);
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == Outcome::Coalesced)
            .count(),
        99
    );
    let m = cache.metrics();
    assert_eq!((m.fetches, m.coalesced, m.misses), (1, 99, 100));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_leader_does_not_cancel_the_fetch() {
    let cache = Cache::in_memory(MemoryConfig::new()).unwrap();
    let k = key("cancel");
    let gate = Arc::new(Semaphore::new(0));
    let leader = {
        let (cache, k, gate) = (cache.clone(), k.clone(), Arc::clone(&gate));
        tokio::spawn(async move {
            cache
                .get_or_fetch(&k, Policy::default(), move || async move {
                    let _permit = gate.acquire().await.unwrap();
                    Ok(b"survived".to_vec())
                })
                .await
        })
    };
    wait_until(|| cache.metrics().fetches == 1).await;
    let followers: Vec<_> = (0..5)
        .map(|_| {
            let (cache, k) = (cache.clone(), k.clone());
            tokio::spawn(async move {
                cache
                    .get_or_fetch(&k, Policy::default(), || async {
                        panic!("followers never fetch")
                    })
                    .await
            })
        })
        .collect();
    wait_until(|| cache.metrics().coalesced == 5).await;
    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());
    gate.add_permits(1);
    for f in followers {
        let s = f.await.unwrap().unwrap();
        assert_eq!(
            (&*s.value, s.outcome),
            (&b"survived"[..], Outcome::Coalesced)
        );
    }
    assert!(
        matches!(cache.get(&k).await, Lookup::Fresh(_)),
        "the value was stored"
    );
    assert_eq!(cache.metrics().fetches, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_completes_and_is_stored_when_its_only_caller_is_dropped() {
    let cache = Cache::in_memory(MemoryConfig::new()).unwrap();
    let k = key("orphan");
    let gate = Arc::new(Semaphore::new(0));
    let g = Arc::clone(&gate);
    let leader = {
        let (cache, k) = (cache.clone(), k.clone());
        tokio::spawn(async move {
            cache
                .get_or_fetch(&k, Policy::default(), move || async move {
                    let _permit = g.acquire().await.unwrap();
                    Ok(b"kept".to_vec())
                })
                .await
        })
    };
    wait_until(|| cache.metrics().fetches == 1).await;
    leader.abort();
    let _ = leader.await;
    gate.add_permits(1);
    let cache2 = cache.clone();
    let k2 = k.clone();
    wait_until_async(move || {
        let (cache, k) = (cache2.clone(), k2.clone());
        async move { matches!(cache.get(&k).await, Lookup::Fresh(_)) }
    })
    .await;
}

#[tokio::test]
async fn panicking_fetch_is_an_aborted_error_and_does_not_wedge_the_key() {
    let cache = Cache::in_memory(MemoryConfig::new()).unwrap();
    let k = key("panic");
    let e = cache
        .get_or_fetch(&k, Policy::default(), || async { panic!("fetch blew up") })
        .await
        .unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::FetchAborted(_)), "{e}");
    let s = cache
        .get_or_fetch(&k, Policy::default(), || async { Ok(b"ok".to_vec()) })
        .await
        .unwrap();
    assert_eq!(s.outcome, Outcome::Miss);
}

#[tokio::test]
async fn cache_evicts_by_bytes_and_reports_it() {
    let per = flow_cache::ENTRY_OVERHEAD_BYTES + 1_000;
    let cache =
        Cache::in_memory(MemoryConfig::new().with_shards(1).with_max_bytes(10 * per)).unwrap();
    for i in 0..25u32 {
        let k = Namespace::new("test").unwrap().key(&i).unwrap();
        cache
            .get_or_fetch(&k, Policy::default(), || async { Ok(vec![0u8; 1_000]) })
            .await
            .unwrap();
    }
    let m = cache.metrics();
    assert_eq!((m.entries, m.bytes, m.evictions), (10, 10 * per, 15));
    // The 10 most recent survive.
    for i in 0..25u32 {
        let k = Namespace::new("test").unwrap().key(&i).unwrap();
        assert_eq!(
            matches!(cache.get(&k).await, Lookup::Fresh(_)),
            i >= 15,
            "key {i}"
        );
    }
    m.log();
}

#[test]
fn works_without_a_tokio_runtime() {
    let cache = Cache::in_memory(MemoryConfig::new()).unwrap();
    let k = key("no-runtime");
    let s = futures::executor::block_on(
        cache.get_or_fetch(&k, Policy::default(), || async { Ok(b"inline".to_vec()) }),
    )
    .unwrap();
    assert_eq!((&*s.value, s.outcome), (&b"inline"[..], Outcome::Miss));
}

/// Polls `cond` (yielding between polls) for at most 10 s of real time.
async fn wait_until(cond: impl Fn() -> bool) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while !cond() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("condition not reached within 10 s");
}

async fn wait_until_async<F, Fut>(cond: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    tokio::time::timeout(Duration::from_secs(10), async {
        while !cond().await {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("condition not reached within 10 s");
}
