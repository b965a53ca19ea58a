//! The KPI functions against a naive reference written straight from the documented formulas.

use flow_telemetry::kpi::{self, GroupBy};
use flow_telemetry::model::{Conclusion, Outcome, Run, RunId, RunStatus};
use proptest::prelude::*;

fn arb_run() -> impl Strategy<Value = Run> {
    (
        0u64..1_000_000,
        0usize..2,
        0usize..2,
        0usize..9,
        0i64..5 * 86_400_000,
        0i64..600_000,
        -5_000i64..3_600_000,
        1u32..4,
        0usize..6,
    )
        .prop_map(|(id, wf, br, c, created, queue, dur, attempt, sha)| {
            let conclusions = [
                Some(Conclusion::Success),
                Some(Conclusion::Success),
                Some(Conclusion::Failure),
                Some(Conclusion::Cancelled),
                Some(Conclusion::TimedOut),
                Some(Conclusion::StartupFailure),
                Some(Conclusion::Skipped),
                None,
                Some(Conclusion::Success),
            ];
            let conclusion = conclusions[c];
            Run {
                id: RunId(id),
                name: ["CI", "Release"][wf].into(),
                head_branch: ["main", "dev"][br].into(),
                head_sha: if sha == 0 {
                    String::new()
                } else {
                    format!("sha{sha}")
                },
                status: if conclusion.is_some() {
                    RunStatus::Completed
                } else {
                    RunStatus::InProgress
                },
                conclusion,
                run_attempt: attempt,
                created_at: Some(created),
                run_started_at: Some(created + queue),
                updated_at: Some(created + queue + dur),
                ..Run::default()
            }
        })
}

struct Naive {
    count: u64,
    in_progress: u64,
    rates: [f64; 5],
    durations: Option<(i64, i64, i64, i64, f64)>,
    queues: Option<(i64, i64, i64, i64, f64)>,
    rerun_rate: f64,
    flaky_rate: f64,
    mttr: Option<f64>,
    longest: u64,
    throughput: f64,
}

fn pct(sorted: &[i64], p: f64) -> i64 {
    // Rank ⌈p·m⌉ computed in floating point, unlike the integer arithmetic under test.
    let rank = ((p * sorted.len() as f64) - 1e-9).ceil().max(1.0) as usize;
    sorted[rank - 1]
}

fn summary(mut v: Vec<i64>) -> Option<(i64, i64, i64, i64, f64)> {
    if v.is_empty() {
        return None;
    }
    v.sort();
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
    Some((
        pct(&v, 0.5),
        pct(&v, 0.9),
        pct(&v, 0.95),
        pct(&v, 0.99),
        mean,
    ))
}

fn naive(runs: &[&Run]) -> Naive {
    let mut done: Vec<&Run> = runs
        .iter()
        .copied()
        .filter(|r| r.conclusion.is_some())
        .collect();
    done.sort_by_key(|r| (r.created_at, r.id, r.run_attempt));
    let n = done.len() as f64;
    let share = |f: &dyn Fn(&Run) -> bool| {
        if done.is_empty() {
            0.0
        } else {
            done.iter().filter(|r| f(r)).count() as f64 / n
        }
    };
    let failed = |r: &Run| {
        matches!(
            r.conclusion,
            Some(Conclusion::Failure | Conclusion::TimedOut | Conclusion::StartupFailure)
        )
    };
    let ok = |r: &Run| r.conclusion == Some(Conclusion::Success);
    // Longest streak.
    let mut longest = 0;
    for i in 0..done.len() {
        if !failed(done[i]) {
            continue;
        }
        let mut len = 0;
        for r in &done[i..] {
            if ok(r) {
                break;
            }
            if failed(r) {
                len += 1;
            }
        }
        longest = longest.max(len);
    }
    // MTTR on main.
    let main: Vec<&Run> = done
        .iter()
        .copied()
        .filter(|r| r.head_branch == "main")
        .collect();
    let mut recoveries = Vec::new();
    let mut i = 0;
    while i < main.len() {
        if failed(main[i]) {
            if let Some(s) = main[i..].iter().find(|r| ok(r)) {
                recoveries
                    .push((s.updated_at.unwrap() - main[i].updated_at.unwrap()).max(0) as f64);
                let next = main.iter().position(|r| std::ptr::eq(*r, *s)).unwrap();
                i = next;
                continue;
            }
            break;
        }
        i += 1;
    }
    // Flaky SHAs.
    let mut shas: Vec<&str> = done
        .iter()
        .map(|r| r.head_sha.as_str())
        .filter(|s| !s.is_empty())
        .collect();
    shas.sort();
    shas.dedup();
    let flaky = shas
        .iter()
        .filter(|sha| {
            let of: Vec<&&Run> = done.iter().filter(|r| r.head_sha == **sha).collect();
            of.iter()
                .enumerate()
                .any(|(i, r)| ok(r) && (r.run_attempt > 1 || of[..i].iter().any(|p| failed(p))))
        })
        .count();
    let span = if done.is_empty() {
        1.0
    } else {
        ((done.last().unwrap().created_at.unwrap() - done[0].created_at.unwrap()) as f64
            / 86_400_000.0)
            .max(1.0)
    };
    Naive {
        count: done.len() as u64,
        in_progress: (runs.len() - done.len()) as u64,
        rates: [
            share(&|r| ok(r)),
            share(&|r| r.conclusion == Some(Conclusion::Failure)),
            share(&|r| r.conclusion == Some(Conclusion::Cancelled)),
            share(&|r| r.conclusion == Some(Conclusion::TimedOut)),
            share(&|r| r.conclusion == Some(Conclusion::StartupFailure)),
        ],
        durations: summary(
            done.iter()
                .filter_map(|r| {
                    let d = r.updated_at.unwrap() - r.run_started_at.unwrap();
                    (d >= 0).then_some(d)
                })
                .collect(),
        ),
        queues: summary(
            done.iter()
                .filter(|r| r.run_attempt == 1)
                .map(|r| r.run_started_at.unwrap() - r.created_at.unwrap())
                .collect(),
        ),
        rerun_rate: share(&|r| r.run_attempt > 1),
        flaky_rate: if shas.is_empty() {
            0.0
        } else {
            flaky as f64 / shas.len() as f64
        },
        mttr: (!recoveries.is_empty())
            .then(|| recoveries.iter().sum::<f64>() / recoveries.len() as f64),
        longest,
        throughput: done.len() as f64 / span,
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn kpis_match_the_naive_reference(runs in proptest::collection::vec(arb_run(), 0..120)) {
        let got = kpi::kpis(&runs, GroupBy::Workflow, "main");
        let mut workflows: Vec<&str> = runs.iter().map(|r| r.name.as_str()).collect();
        workflows.sort();
        workflows.dedup();
        prop_assert_eq!(got.len(), workflows.len());
        for k in &got {
            let group: Vec<&Run> = runs.iter().filter(|r| r.name == k.key.workflow).collect();
            let want = naive(&group);
            let v = &k.values;
            prop_assert_eq!(v.count, want.count);
            prop_assert_eq!(v.in_progress, want.in_progress);
            let rates = [v.success_rate, v.failure_rate, v.cancelled_rate, v.timed_out_rate, v.error_rate];
            for (g, w) in rates.iter().zip(want.rates) {
                prop_assert!(close(*g, w), "rate {} vs {}", g, w);
            }
            let s = |o: Option<kpi::Summary>| o.map(|s| (s.p50, s.p90, s.p95, s.p99, s.mean));
            match (s(v.duration_ms), want.durations) {
                (Some(g), Some(w)) => { prop_assert_eq!((g.0, g.1, g.2, g.3), (w.0, w.1, w.2, w.3)); prop_assert!(close(g.4, w.4)); }
                (g, w) => prop_assert_eq!(g.is_none(), w.is_none()),
            }
            match (s(v.queue_ms), want.queues) {
                (Some(g), Some(w)) => { prop_assert_eq!((g.0, g.1, g.2, g.3), (w.0, w.1, w.2, w.3)); prop_assert!(close(g.4, w.4)); }
                (g, w) => prop_assert_eq!(g.is_none(), w.is_none()),
            }
            prop_assert!(close(v.rerun_rate, want.rerun_rate));
            prop_assert!(close(v.flaky_rate, want.flaky_rate), "flaky {} vs {}", v.flaky_rate, want.flaky_rate);
            prop_assert_eq!(v.mttr_ms.is_some(), want.mttr.is_some());
            if let (Some(g), Some(w)) = (v.mttr_ms, want.mttr) { prop_assert!(close(g, w), "mttr {} vs {}", g, w); }
            prop_assert_eq!(v.longest_failing_streak, want.longest);
            prop_assert!(close(v.throughput_per_day, want.throughput));
        }
    }

    #[test]
    fn rates_sum_to_at_most_one(runs in proptest::collection::vec(arb_run(), 1..60)) {
        for k in kpi::kpis(&runs, GroupBy::Branch, "main") {
            let v = k.values;
            let sum = v.success_rate + v.failure_rate + v.cancelled_rate + v.timed_out_rate + v.error_rate;
            prop_assert!(sum <= 1.0 + 1e-9);
            prop_assert!(k.key.branch.is_some());
        }
    }
}

#[test]
fn runner_errors_count_as_errors_not_failures() {
    let mut run = Run {
        status: RunStatus::Completed,
        conclusion: Some(Conclusion::Failure),
        ..Run::default()
    };
    assert_eq!(run.outcome(), Outcome::Failure);
    run.runner_error = true;
    assert_eq!(run.outcome(), Outcome::Error);
}

mod whole_history {
    use super::*;
    use flow_telemetry::history::{Distribution, History, RELATIVE_ERROR};

    fn within(est: i64, exact: i64) -> bool {
        (est - exact).abs() as f64 <= RELATIVE_ERROR * exact.abs() as f64 + 0.5
    }

    fn fold(runs: &[Run]) -> History {
        let mut h = History::new();
        runs.iter().for_each(|r| h.add(r));
        h
    }

    proptest! {
        #[test]
        fn sketch_percentiles_are_within_the_bound(
            mut v in proptest::collection::vec(prop_oneof![0i64..100, 0i64..100_000_000], 1..400),
        ) {
            let mut d = Distribution::default();
            v.iter().for_each(|&x| d.add(x));
            v.sort_unstable();
            for p in [50.0, 90.0, 95.0, 99.0, 0.0, 100.0] {
                let exact = pct(&v, p / 100.0);
                let est = d.percentile(p).unwrap();
                prop_assert!(within(est, exact), "p{p}: {est} vs exact {exact}");
            }
        }

        #[test]
        fn merged_histories_equal_the_whole(
            runs in proptest::collection::vec(arb_run(), 0..150),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..4),
        ) {
            let whole = fold(&runs);
            let mut at: Vec<usize> = cuts.iter().map(|c| c.index(runs.len() + 1)).collect();
            at.push(0);
            at.push(runs.len());
            at.sort_unstable();
            let mut merged = History::default();
            for w in at.windows(2) {
                // Through JSON, as `flow report merge` reads them.
                let shard = History::from_json(&fold(&runs[w[0]..w[1]]).to_json()).unwrap();
                merged.merge(&shard);
            }
            prop_assert_eq!(merged.runs(), whole.runs());
            for (k, w) in &whole.workflows {
                let m = &merged.workflows[k];
                prop_assert_eq!(&m.counts, &w.counts);
                prop_assert_eq!((m.first_created_at, m.last_created_at), (w.first_created_at, w.last_created_at));
                for (a, b) in [(&m.duration, &w.duration), (&m.queue, &w.queue)] {
                    prop_assert_eq!(a.count(), b.count());
                    prop_assert_eq!(a.mean(), b.mean());
                    for p in [50.0, 90.0, 95.0, 99.0] {
                        let (x, y) = (a.percentile(p), b.percentile(p));
                        prop_assert!(x.zip(y).is_none_or(|(x, y)| within(x, y)), "{x:?} vs {y:?}");
                    }
                }
            }
        }

        #[test]
        fn whole_history_matches_the_windowed_oracle_over_every_run(
            runs in proptest::collection::vec(arb_run(), 0..150),
        ) {
            // Over the whole set, the windowed KPIs are the oracle-tested reference.
            let h = fold(&runs);
            let reference = kpi::kpis(&runs, GroupBy::Workflow, "main");
            prop_assert_eq!(h.workflows.len(), reference.len());
            let json: serde_json::Value = serde_json::from_str(&h.to_json()).unwrap();
            for (i, k) in reference.iter().enumerate() {
                let w = &h.workflows[&k.key.workflow];
                let v = &k.values;
                prop_assert_eq!((w.counts.count, w.counts.in_progress), (v.count, v.in_progress));
                let j = &json["workflows"][i];
                prop_assert_eq!(j["workflow"].as_str(), Some(k.key.workflow.as_str()));
                for (field, want) in [
                    ("success_rate", v.success_rate),
                    ("failure_rate", v.failure_rate),
                    ("cancelled_rate", v.cancelled_rate),
                    ("timed_out_rate", v.timed_out_rate),
                    ("error_rate", v.error_rate),
                    ("rerun_rate", v.rerun_rate),
                    ("throughput_per_day", v.throughput_per_day),
                ] {
                    prop_assert!(close(j[field].as_f64().unwrap(), want), "{field}");
                }
                for (d, s) in [(&w.duration, v.duration_ms), (&w.queue, v.queue_ms)] {
                    prop_assert_eq!(d.count(), s.map_or(0, |s| s.n));
                    if let Some(s) = s {
                        prop_assert!(close(d.mean().unwrap(), s.mean));
                        for (p, exact) in [(50.0, s.p50), (90.0, s.p90), (95.0, s.p95), (99.0, s.p99)] {
                            prop_assert!(within(d.percentile(p).unwrap(), exact), "p{p}");
                        }
                    }
                }
            }
        }
    }
}
