//! Thresholds, scales and the text of signals.

use super::OUTCOME_TESTS;
use crate::alert::Severity;
use crate::detect::{Signal, one_in, streak_needed};
use crate::rules::Thresholds;

/// The streak length that fires under baseline failure rate `p`, from the budget's share.
pub(super) fn streak_for(th: &Thresholds, p: f64) -> u32 {
    if th.consecutive_failures > 0 {
        return th.consecutive_failures;
    }
    streak_needed(p, th.false_alarms_per_1000_runs / OUTCOME_TESTS / 1000.0)
}

/// Queue seconds on a log scale, in thousandths of a natural-log unit so that the robust
/// z-score's floors (1 unit, 1 % of the median) stay below the noise.
pub(super) const QUEUE_LOG_UNIT: f64 = 1000.0;

pub(super) fn queue_scale(ms: f64) -> f64 {
    QUEUE_LOG_UNIT * (1.0 + ms.max(0.0) / 1000.0).ln()
}

pub(super) fn queue_unscale(v: f64) -> f64 {
    ((v / QUEUE_LOG_UNIT).exp() - 1.0) * 1000.0
}

/// A queue signal with its baseline back in ms.
pub(super) fn unscaled(sig: Signal) -> Signal {
    match sig {
        Signal::Fire {
            score,
            baseline,
            threshold,
        } => Signal::Fire {
            score,
            baseline: queue_unscale(baseline),
            threshold,
        },
        other => other,
    }
}

/// "once in about 48,000 runs", for a per-run probability `p`.
pub(super) fn per_runs(p: f64) -> String {
    match one_in(p).strip_prefix("1 in ") {
        Some(n) => format!("once in about {n} runs"),
        None => "less than once in a billion runs".into(),
    }
}

/// "CI on main", or "CI" when the branch is unknown.
pub(super) fn stream_name(workflow: &str, branch: &str) -> String {
    if branch.is_empty() {
        workflow.to_string()
    } else {
        format!("{workflow} on {branch}")
    }
}

/// A duration in ms as `45s`, `7m 05s`, `1h 02m`.
pub(super) fn dur(ms: f64) -> String {
    let s = (ms / 1000.0).round().max(0.0) as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

pub(super) fn static_limit(
    name: &str,
    what: &str,
    x: f64,
    max: f64,
    m: u32,
) -> (Severity, String, String) {
    (
        Severity::Warning,
        format!("static threshold exceeded: {} > {}", dur(x), dur(max)),
        format!(
            "The last {m} runs of {name} were over the fixed limit of {} in the rules; {what} {} now.",
            dur(max),
            dur(x)
        ),
    )
}

/// Whether a measured `ms` (negative under clock skew) is above the configured `max`, compared
/// without casting: `max as i64` would wrap a `max` above `i64::MAX` to a negative bound that
/// every run exceeds.
pub(super) fn exceeds(ms: i64, max: u64) -> bool {
    u64::try_from(ms).is_ok_and(|ms| ms > max)
}

pub(super) fn with_threshold(sig: Signal, threshold: f64) -> Signal {
    match sig {
        Signal::Fire { score, .. } => Signal::Fire {
            score,
            baseline: threshold,
            threshold,
        },
        other => other,
    }
}
