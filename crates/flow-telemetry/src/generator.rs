//! A seeded generator of synthetic run histories with known injected anomalies, to measure
//! the detectors (precision, recall, delay) and to benchmark.
//!
//! Normal behaviour per workflow: log-normal durations and queue times around a base, a small
//! failure rate (plus rare cancellations, time-outs and startup failures), rare duration spikes
//! (×1.5–3, single runs: noise, not anomalies). Injected anomalies, per workflow, at known run
//! positions:
//!
//! | kind | effect | runs affected |
//! |---|---|---|
//! | step change | durations ×1.7–2.2 | 120 |
//! | failure burst | failure probability 0.65 | 25 |
//! | flaky | half the runs pass only on attempt 2 | 60 |
//! | queue backlog | queue times ×6–10 | 40 |
//!
//! The PRNG is SplitMix64, so a seed gives the same history on every platform and version.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::model::{Conclusion, Run, RunId, RunStatus, WorkflowId};

/// SplitMix64: tiny, fast, and stable forever (unlike a library's default generator).
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(f64::MIN_POSITIVE);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

/// One synthetic workflow's normal behaviour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowProfile {
    /// Workflow name.
    pub name: String,
    /// Workflow id.
    pub id: u64,
    /// Relative share of runs.
    pub weight: f64,
    /// Median duration, ms.
    pub duration_ms: f64,
    /// Log-normal sigma of durations.
    pub duration_sigma: f64,
    /// Median queue time, ms.
    pub queue_ms: f64,
    /// Log-normal sigma of queue times.
    pub queue_sigma: f64,
    /// Probability that a normal run fails.
    pub failure_rate: f64,
}

/// Kinds of injected anomalies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    /// Durations step up ×1.7–2.2 for 120 runs.
    StepChange,
    /// Failure probability 0.65 for 25 runs.
    FailureBurst,
    /// Half the runs pass only on a re-run, for 60 runs.
    Flaky,
    /// Queue times ×6–10 for 40 runs.
    QueueBacklog,
}

impl AnomalyKind {
    /// How many runs of the workflow the anomaly affects.
    pub fn runs_affected(self) -> u64 {
        match self {
            Self::StepChange => 120,
            Self::FailureBurst => 25,
            Self::Flaky => 60,
            Self::QueueBacklog => 40,
        }
    }
}

/// One injected anomaly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Injected {
    /// Workflow name.
    pub workflow: String,
    /// Kind.
    pub kind: AnomalyKind,
    /// Position (0-based) of the first affected run among the workflow's runs.
    pub start_seq: u64,
    /// Runs affected.
    pub len: u64,
    /// Id of the first affected run.
    pub first_run_id: u64,
}

/// Generator settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeneratorConfig {
    /// PRNG seed.
    pub seed: u64,
    /// Runs to generate, all workflows together.
    pub runs: usize,
    /// Workflows.
    pub workflows: Vec<WorkflowProfile>,
    /// Creation time of the first run, unix ms.
    pub start_ms: i64,
    /// Mean gap between run creations, ms.
    pub mean_gap_ms: f64,
    /// Anomalies injected in turn, per workflow.
    pub anomaly_kinds: Vec<AnomalyKind>,
    /// Workflow position of the first anomaly.
    pub first_anomaly_at: u64,
    /// Workflow runs from one anomaly's start to the next's.
    pub anomaly_every: u64,
    /// Probability of a single-run duration spike (noise).
    pub spike_rate: f64,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        let wf = |name: &str, id, weight, d, q, f| WorkflowProfile {
            name: name.into(),
            id,
            weight,
            duration_ms: d,
            duration_sigma: 0.12,
            queue_ms: q,
            queue_sigma: 0.35,
            failure_rate: f,
        };
        Self {
            seed: 42,
            runs: 10_000,
            workflows: vec![
                wf("CI", 1001, 0.6, 420_000.0, 8_000.0, 0.03),
                wf("Release", 1002, 0.15, 900_000.0, 15_000.0, 0.02),
                wf("Nightly", 1003, 0.25, 1_800_000.0, 20_000.0, 0.04),
            ],
            start_ms: 1_767_225_600_000, // 2026-01-01T00:00:00Z
            mean_gap_ms: 240_000.0,
            anomaly_kinds: vec![
                AnomalyKind::StepChange,
                AnomalyKind::FailureBurst,
                AnomalyKind::QueueBacklog,
                AnomalyKind::Flaky,
            ],
            first_anomaly_at: 300,
            anomaly_every: 400,
            spike_rate: 0.005,
        }
    }
}

/// A generated history and its ground truth.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    /// Runs in creation order.
    pub runs: Vec<Run>,
    /// The anomalies injected.
    pub anomalies: Vec<Injected>,
}

#[derive(Debug, Clone, Copy)]
struct Active {
    kind: AnomalyKind,
    until: u64,
    factor: f64,
}

/// Generates a history from `cfg`. Same config, same history.
pub fn generate(cfg: &GeneratorConfig) -> History {
    let mut rng = SplitMix64::new(cfg.seed);
    let total_weight: f64 = cfg
        .workflows
        .iter()
        .map(|w| w.weight)
        .sum::<f64>()
        .max(f64::MIN_POSITIVE);
    let n_wf = cfg.workflows.len();
    let mut seq = vec![0u64; n_wf];
    let mut active: Vec<Option<Active>> = vec![None; n_wf];
    let mut anomalies = Vec::new();
    let mut runs = Vec::with_capacity(cfg.runs);
    let mut t = cfg.start_ms as f64;
    let branches = ["main", "main", "main", "feature/parser", "fix/flaky-test"];
    let events = [
        "push",
        "push",
        "pull_request",
        "schedule",
        "workflow_dispatch",
    ];
    let actors = ["octocat", "hubot", "monalisa"];

    for i in 0..cfg.runs {
        if n_wf == 0 {
            break;
        }
        t += -cfg.mean_gap_ms * (1.0 - rng.unit()).max(f64::MIN_POSITIVE).ln();
        let mut pick = rng.unit() * total_weight;
        let mut w = n_wf - 1;
        for (j, p) in cfg.workflows.iter().enumerate() {
            if pick < p.weight {
                w = j;
                break;
            }
            pick -= p.weight;
        }
        let p = &cfg.workflows[w];
        let s = seq[w];
        seq[w] += 1;
        let id = 20_000_000_000 + i as u64;

        if let Some(a) = active[w]
            && s >= a.until
        {
            active[w] = None;
        }
        if cfg.anomaly_every > 0 && !cfg.anomaly_kinds.is_empty() && s >= cfg.first_anomaly_at {
            let k = s - cfg.first_anomaly_at;
            if k.is_multiple_of(cfg.anomaly_every) {
                let idx = (k / cfg.anomaly_every) as usize % cfg.anomaly_kinds.len();
                let kind = cfg.anomaly_kinds[idx];
                let factor = match kind {
                    AnomalyKind::StepChange => rng.range(1.7, 2.2),
                    AnomalyKind::QueueBacklog => rng.range(6.0, 10.0),
                    _ => 1.0,
                };
                active[w] = Some(Active {
                    kind,
                    until: s + kind.runs_affected(),
                    factor,
                });
                anomalies.push(Injected {
                    workflow: p.name.clone(),
                    kind,
                    start_seq: s,
                    len: kind.runs_affected(),
                    first_run_id: id,
                });
            }
        }
        let a = active[w];
        let is = |k: AnomalyKind| a.is_some_and(|a| a.kind == k);
        let factor = a.map_or(1.0, |a| a.factor);

        let mut duration = p.duration_ms * (p.duration_sigma * rng.normal()).exp();
        if is(AnomalyKind::StepChange) {
            duration *= factor;
        }
        if rng.chance(cfg.spike_rate) {
            duration *= rng.range(1.5, 3.0);
        }
        let mut queue = p.queue_ms * (p.queue_sigma * rng.normal()).exp();
        if is(AnomalyKind::QueueBacklog) {
            queue *= factor;
        }
        let fail_p = if is(AnomalyKind::FailureBurst) {
            0.65
        } else {
            p.failure_rate
        };
        let r = rng.unit();
        let conclusion = if r < fail_p {
            Conclusion::Failure
        } else if r < fail_p + 0.01 {
            Conclusion::Cancelled
        } else if r < fail_p + 0.012 {
            Conclusion::TimedOut
        } else if r < fail_p + 0.014 {
            Conclusion::StartupFailure
        } else {
            Conclusion::Success
        };
        let rerun = conclusion == Conclusion::Success
            && (if is(AnomalyKind::Flaky) {
                rng.chance(0.5)
            } else {
                rng.chance(0.005)
            });
        // GitHub stamps whole seconds.
        let secs = |ms: f64| (ms as i64 / 1000) * 1000;
        let created = secs(t);
        let (started, attempt) = if rerun {
            // The listing shows the latest attempt: restarted after the failed first one.
            (created + secs(queue + duration) + 60_000, 2)
        } else {
            (created + secs(queue), 1)
        };
        let branch = branches[(rng.next_u64() % branches.len() as u64) as usize];
        let sha_hi = rng.next_u64();
        let sha_lo = rng.next_u64();
        runs.push(Run {
            id: RunId(id),
            name: p.name.clone(),
            workflow_id: WorkflowId(p.id),
            path: format!(".github/workflows/{}.yml", p.name.to_ascii_lowercase()),
            head_branch: branch.into(),
            head_sha: format!("{sha_hi:016x}{sha_lo:016x}{:08x}", (sha_hi ^ sha_lo) as u32),
            event: events[(rng.next_u64() % events.len() as u64) as usize].into(),
            status: RunStatus::Completed,
            conclusion: Some(conclusion),
            run_attempt: attempt,
            run_number: s + 1,
            created_at: Some(created),
            run_started_at: Some(started),
            updated_at: Some(started + secs(duration)),
            actor: Some(actors[(rng.next_u64() % 3) as usize].into()),
            html_url: format!("https://github.com/octo-org/octo-repo/actions/runs/{id}"),
            runner_error: false,
        });
    }
    History { runs, anomalies }
}

/// GitHub's official example of a `GET /actions/runs` page (MIT licence, see
/// `tests/fixtures/LICENSE`): the template of [`write_rest_pages`].
const REST_PAGE_EXAMPLE: &str = include_str!("../tests/fixtures/workflow-run-paginated.json");

/// Writes `runs` as `GET /actions/runs` pages of `per_page` runs, newest first, in a JSON array
/// (what `gh api --paginate --slurp` saves). Each run is a full REST object of GitHub's real
/// shape — every field of the official example, with `repository`, `head_repository`, `actor`,
/// `triggering_actor` and `head_commit` — about 11.7 KB compact, the run's own fields filled in.
///
/// # Errors
/// When writing fails.
pub fn write_rest_pages(
    runs: &[Run],
    per_page: usize,
    mut out: impl std::io::Write,
) -> std::io::Result<()> {
    use crate::model::ts::format_ms;
    use serde_json::{Value, json};
    let page: Value = serde_json::from_str(REST_PAGE_EXAMPLE)?;
    let template = page
        .get("workflow_runs")
        .and_then(|r| r.get(0))
        .cloned()
        .unwrap_or_else(|| json!({}));
    let per_page = per_page.clamp(1, 100);
    let total = runs.len();
    out.write_all(b"[")?;
    for (p, chunk) in runs.rchunks(per_page).enumerate() {
        if p > 0 {
            out.write_all(b",\n")?;
        }
        write!(out, "{{\"total_count\":{total},\"workflow_runs\":[")?;
        for (i, r) in chunk.iter().rev().enumerate() {
            if i > 0 {
                out.write_all(b",")?;
            }
            let mut v = template.clone();
            if let Some(o) = v.as_object_mut() {
                let t = |ms: Option<i64>| ms.map_or(Value::Null, |ms| Value::String(format_ms(ms)));
                let url = format!(
                    "https://api.github.com/repos/octo-org/octo-repo/actions/runs/{}",
                    r.id
                );
                o.insert("id".into(), json!(r.id.0));
                o.insert("name".into(), json!(r.name));
                o.insert(
                    "display_title".into(),
                    json!(format!("{} #{}", r.name, r.run_number)),
                );
                o.insert("head_branch".into(), json!(r.head_branch));
                o.insert("head_sha".into(), json!(r.head_sha));
                o.insert(
                    "path".into(),
                    json!(format!(".github/workflows/{}.yml", r.name.to_lowercase())),
                );
                o.insert("run_number".into(), json!(r.run_number));
                o.insert("event".into(), json!(r.event));
                o.insert("status".into(), json!(r.status.as_str()));
                o.insert(
                    "conclusion".into(),
                    r.conclusion.map_or(Value::Null, |c| json!(c.as_str())),
                );
                o.insert("workflow_id".into(), json!(r.workflow_id.0));
                o.insert("created_at".into(), t(r.created_at));
                o.insert("updated_at".into(), t(r.updated_at));
                o.insert("run_started_at".into(), t(r.run_started_at));
                o.insert("run_attempt".into(), json!(r.run_attempt));
                o.insert(
                    "html_url".into(),
                    json!(format!(
                        "https://github.com/octo-org/octo-repo/actions/runs/{}",
                        r.id
                    )),
                );
                o.insert("jobs_url".into(), json!(format!("{url}/jobs")));
                o.insert("logs_url".into(), json!(format!("{url}/logs")));
                o.insert("url".into(), json!(url));
            }
            serde_json::to_writer(&mut out, &v)?;
        }
        out.write_all(b"]}")?;
    }
    out.write_all(b"]\n")?;
    out.flush()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn same_seed_same_history() {
        let cfg = GeneratorConfig {
            runs: 2_000,
            ..GeneratorConfig::default()
        };
        let a = generate(&cfg);
        assert_eq!(a, generate(&cfg));
        assert_eq!(a.runs.len(), 2_000);
        assert!(!a.anomalies.is_empty());
        let other = generate(&GeneratorConfig { seed: 7, ..cfg });
        assert_ne!(a.runs, other.runs);
    }

    #[test]
    fn rest_pages_are_full_objects_that_read_back() {
        let h = generate(&GeneratorConfig {
            runs: 250,
            ..GeneratorConfig::default()
        });
        let mut out = Vec::new();
        write_rest_pages(&h.runs, 100, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.len() / 250 > 11_000,
            "{} bytes per run",
            text.len() / 250
        );
        let back = crate::source::file::parse_runs(&text).unwrap();
        assert_eq!(back.len(), 250);
        for (a, b) in back.iter().rev().zip(&h.runs) {
            assert_eq!(
                (a.id, a.conclusion, a.created_at, a.updated_at),
                (b.id, b.conclusion, b.created_at, b.updated_at)
            );
            assert_eq!(
                (a.duration_ms(), a.queue_ms(), a.outcome()),
                (b.duration_ms(), b.queue_ms(), b.outcome())
            );
            assert_eq!(a.actor.as_deref(), Some("octocat"));
        }
    }
}
