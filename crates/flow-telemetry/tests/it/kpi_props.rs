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
