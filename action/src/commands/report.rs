//! `flow report merge`: whole-history summaries of many repositories or shards rolled up into
//! one (an organisation view), and the whole-history table `monitor` prints too.

use std::fmt::Write as _;

use anyhow::Context as _;
use flow_telemetry::history::{History, RELATIVE_ERROR};

use crate::cli::MergeArgs;
use crate::report::Outcome;

fn secs(ms: Option<i64>) -> String {
    ms.map_or_else(
        || "-".to_owned(),
        |ms| format!("{:.0}s", ms as f64 / 1000.0),
    )
}

/// The whole-history table: one line per workflow.
pub(crate) fn history_table(h: &History) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{:<24} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7} {:>9}",
        "workflow", "runs", "success", "failure", "p50", "p95", "rerun", "runs/day"
    );
    for (name, w) in &h.workflows {
        let c = &w.counts;
        let rate = |k: u64| {
            if c.count == 0 {
                "-".to_owned()
            } else {
                format!("{:.1}%", k as f64 * 100.0 / c.count as f64)
            }
        };
        let _ = writeln!(
            text,
            "{:<24} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7} {:>9.1}",
            name,
            c.count,
            rate(c.success),
            rate(c.failure),
            secs(w.duration.percentile(50.0)),
            secs(w.duration.percentile(95.0)),
            rate(c.reruns),
            w.throughput_per_day()
        );
    }
    let _ = writeln!(
        text,
        "(counts and rates exact; percentiles within {:.0}%)",
        RELATIVE_ERROR * 100.0
    );
    text
}

pub(crate) fn merge(args: &MergeArgs) -> anyhow::Result<Outcome> {
    let mut merged = History::default();
    for path in &args.files {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let h = History::from_json(&text).with_context(|| format!("reading {}", path.display()))?;
        merged.merge(&h);
    }
    let text = format!(
        "flow report merge: {} summaries, {} runs\n\n{}",
        merged.sources,
        merged.runs(),
        history_table(&merged)
    );
    Ok(Outcome {
        text,
        json: serde_json::to_value(&merged)?,
        outputs: Vec::new(),
        summary: None,
        annotations: Vec::new(),
        failure: None,
    })
}
