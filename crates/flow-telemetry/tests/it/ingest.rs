//! The streaming parser against the `serde_json::Value` reference, on every export shape.

use flow_telemetry::model::{Conclusion, Run, RunId, RunStatus, WorkflowId, ts};
use flow_telemetry::source::file::{parse_runs, parse_runs_tree};
use flow_telemetry::source::stream::{ReadOptions, read_runs};
use proptest::prelude::*;
use serde_json::{Value, json};

fn arb_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 _./-]{0,12}",
        // Escapes, quotes, brackets and non-ASCII inside strings.
        proptest::collection::vec(
            prop_oneof![
                Just("\"".to_owned()),
                Just("\\".to_owned()),
                Just("}".to_owned()),
                Just("]".to_owned()),
                Just("{\"".to_owned()),
                Just("\n".to_owned()),
                Just("é✓".to_owned()),
                "[a-z]{1,4}",
            ],
            0..6
        )
        .prop_map(|v| v.concat()),
    ]
}

fn arb_run() -> impl Strategy<Value = Run> {
    (
        (
            0u64..u64::MAX / 2,
            arb_text(),
            0u64..50,
            arb_text(),
            arb_text(),
        ),
        (0usize..10, 0usize..7, 1u32..4, 0u64..10_000),
        (
            proptest::option::of(0i64..4_000_000_000_000),
            proptest::option::of(0i64..4_000_000_000_000),
            proptest::option::of(0i64..4_000_000_000_000),
        ),
        (proptest::option::of(arb_text()), arb_text(), any::<bool>()),
    )
        .prop_map(
            |(
                (id, name, wf, branch, sha),
                (c, st, attempt, number),
                (cr, sa, up),
                (actor, url, rerr),
            )| {
                let conclusions = [
                    None,
                    Some(Conclusion::Success),
                    Some(Conclusion::Failure),
                    Some(Conclusion::Cancelled),
                    Some(Conclusion::TimedOut),
                    Some(Conclusion::StartupFailure),
                    Some(Conclusion::Skipped),
                    Some(Conclusion::Neutral),
                    Some(Conclusion::Stale),
                    Some(Conclusion::ActionRequired),
                ];
                let statuses = [
                    RunStatus::Completed,
                    RunStatus::InProgress,
                    RunStatus::Queued,
                    RunStatus::Waiting,
                    RunStatus::Requested,
                    RunStatus::Pending,
                    RunStatus::Other,
                ];
                // Whole seconds, as GitHub sends them (the fast timestamp path).
                let s = |t: Option<i64>| t.map(|t| t / 1000 * 1000);
                Run {
                    id: RunId(id),
                    name,
                    workflow_id: WorkflowId(wf),
                    path: format!(".github/workflows/w{wf}.yml"),
                    head_branch: branch,
                    head_sha: sha,
                    event: "push".into(),
                    status: statuses[st],
                    conclusion: conclusions[c],
                    run_attempt: attempt,
                    run_number: number,
                    created_at: s(cr),
                    run_started_at: s(sa),
                    updated_at: s(up),
                    actor,
                    html_url: url,
                    runner_error: rerr,
                }
            },
        )
}

/// A REST run object: the run's fields plus the nested objects GitHub sends, padded.
fn rest_value(run: &Run, pad: usize) -> Value {
    let mut v = serde_json::to_value(run).unwrap();
    let o = v.as_object_mut().unwrap();
    o.insert(
        "repository".into(),
        json!({"id": 1, "full_name": "o/r", "owner": {"login": "o", "site_admin": false},
               "topics": ["a", "b}"], "pad": "x".repeat(pad), "n": -1.5e3, "nul": null}),
    );
    o.insert(
        "pull_requests".into(),
        json!([{"id": 2, "head": {"ref": "]"}}]),
    );
    v
}

fn gh_value(run: &Run) -> Value {
    let t = |x: Option<i64>| x.map(ts::format_ms);
    json!({
        "databaseId": run.id.0, "workflowName": run.name, "workflowDatabaseId": run.workflow_id.0,
        "headBranch": run.head_branch, "headSha": run.head_sha, "event": run.event,
        "status": run.status.as_str(), "conclusion": run.conclusion.map_or("", |c| c.as_str()),
        "attempt": run.run_attempt, "number": run.run_number, "createdAt": t(run.created_at),
        "startedAt": t(run.run_started_at), "updatedAt": t(run.updated_at), "url": run.html_url,
        "displayTitle": "ignored {",
    })
}

fn stream(text: &str, threads: usize) -> Vec<Run> {
    let mut out = Vec::new();
    read_runs(
        text.as_bytes(),
        &ReadOptions::default().threads(threads).chunk_bytes(700),
        |r| out.push(r),
    )
    .unwrap();
    out
}

fn page(runs: &[Run], pad: usize) -> Value {
    json!({"total_count": runs.len(),
           "workflow_runs": runs.iter().map(|r| rest_value(r, pad)).collect::<Vec<_>>()})
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn streaming_agrees_with_the_value_tree_on_every_shape(
        runs in proptest::collection::vec(arb_run(), 0..24),
        pad in 0usize..2500,
        pretty in any::<bool>(),
        threads in 1usize..3,
    ) {
        let show = |v: &Value| if pretty { serde_json::to_string_pretty(v).unwrap() } else { v.to_string() };
        let rest: Vec<Value> = runs.iter().map(|r| rest_value(r, pad)).collect();
        let mut shapes = vec![
            ("page", show(&page(&runs, pad))),
            ("array of runs", show(&Value::Array(rest.clone()))),
            ("gh array", show(&Value::Array(runs.iter().map(gh_value).collect()))),
            ("ndjson", rest.iter().map(|v| format!("{v}\n\n")).collect::<String>()),
        ];
        if let Some(first) = rest.first() {
            shapes.push(("one run", show(first)));
            shapes.push(("event", show(&json!({"action": "completed", "workflow_run": first}))));
        }
        for (shape, text) in &shapes {
            let tree = parse_runs_tree(text).unwrap();
            prop_assert_eq!(&stream(text, threads), &tree, "{}", shape);
            prop_assert_eq!(&parse_runs(text).unwrap(), &tree, "{}", shape);
        }
        // Several pages (a JSON array of them, or one after another): the pages' runs in order.
        let (a, b) = runs.split_at(runs.len() / 2);
        let mut whole = parse_runs_tree(&page(a, pad).to_string()).unwrap();
        whole.extend(parse_runs_tree(&page(b, pad).to_string()).unwrap());
        let list = show(&json!([page(a, pad), page(b, pad)]));
        let concatenated = format!("{}{}", show(&page(a, pad)), show(&page(b, pad)));
        prop_assert_eq!(&stream(&list, threads), &whole);
        prop_assert_eq!(&stream(&concatenated, threads), &whole);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600), skip in any::<bool>()) {
        let _ = read_runs(&bytes[..], &ReadOptions::default().skip_invalid(skip).threads(1), |_| {});
    }

    #[test]
    fn damaged_exports_never_panic(
        runs in proptest::collection::vec(arb_run(), 1..6),
        cuts in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0usize..3), 1..6),
        skip in any::<bool>(),
    ) {
        let mut bytes = serde_json::to_vec_pretty(&page(&runs, 10)).unwrap();
        for (at, byte, how) in cuts {
            if bytes.is_empty() { break; }
            let i = at.index(bytes.len());
            match how {
                0 => bytes[i] = byte,
                1 => { bytes.remove(i); }
                _ => bytes.truncate(i),
            }
        }
        let mut n = 0u64;
        if let Ok(stats) = read_runs(&bytes[..], &ReadOptions::default().skip_invalid(skip).threads(2), |_| n += 1) {
            prop_assert_eq!(stats.runs, n);
        }
    }
}

#[test]
fn the_official_example_reads_the_same_both_ways() {
    let text = crate::fixture("workflow-run-paginated.json");
    assert_eq!(parse_runs(&text).unwrap(), parse_runs_tree(&text).unwrap());
}

#[test]
fn malformed_records_are_named_or_skipped() {
    let good = rest_value(
        &Run {
            id: RunId(1),
            ..Run::default()
        },
        0,
    )
    .to_string();
    let text = format!(
        "{{\"total_count\":3,\"workflow_runs\":[{good},\n{{\"id\":\"seven\"}},\n{good}]}}\n{{\"total_count\":1,\"workflow_runs\":[\n{{\"id\":1,\"status\":5}}]}}"
    );
    let err = parse_runs(&text).unwrap_err().to_string();
    assert!(
        err.contains("page 1, run 1 of `workflow_runs` (line 2)"),
        "{err}"
    );
    let mut n = 0;
    let stats = read_runs(
        text.as_bytes(),
        &ReadOptions::default().skip_invalid(true),
        |_| n += 1,
    )
    .unwrap();
    assert_eq!((n, stats.runs, stats.invalid), (2, 2, 2));
    assert!(
        stats.invalid_examples[1].starts_with("page 2, run 0 of `workflow_runs` (line 5)"),
        "{:?}",
        stats.invalid_examples
    );
}
