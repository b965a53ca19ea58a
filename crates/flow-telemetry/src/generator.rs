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
//! [`GeneratorConfig::realistic`] gives histories of a different character: a chosen failure
//! rate, heavy-tailed durations, weekly seasonality, queueing bursts, cancellations, time-outs and
//! startup failures, and three branches (anomalies on the default branch only).
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
    /// The branch whose runs it affects; empty when it affects every branch of the workflow.
    #[serde(default)]
    pub branch: String,
    /// Kind.
    pub kind: AnomalyKind,
    /// Position (0-based) of the first affected run among the runs of the workflow (of the
    /// workflow on `branch`, when set).
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
    /// Heavy-tailed spikes: when set, a spike multiplies the duration by a Pareto factor with
    /// this tail index (scale 1.3, capped at 20) instead of a uniform 1.5–3.
    #[serde(default)]
    pub spike_tail_alpha: Option<f64>,
    /// Branches runs are spread over, the first being the default branch. Empty: the five-way
    /// mix `main` ×3, `feature/parser`, `fix/flaky-test`, with anomalies on every branch.
    /// Otherwise anomalies are injected on the default branch only, counted in its runs.
    #[serde(default)]
    pub branches: Vec<BranchProfile>,
    /// Weekly seasonality: busy Mondays (runs 1.8× as frequent, queues 1.3× longer), quiet
    /// weekends (runs 4× rarer, queues 0.8×).
    #[serde(default)]
    pub weekly_seasonality: bool,
    /// Probability per run that a repository-wide queueing burst (normal, not an anomaly)
    /// starts: queue times ×2–3.5 for 10–30 minutes.
    #[serde(default)]
    pub queue_burst_rate: f64,
    /// Probability that a normal run is cancelled.
    #[serde(default = "default_cancel_rate")]
    pub cancel_rate: f64,
    /// Probability that a normal run times out (counts as failed, beside `failure_rate`).
    #[serde(default = "default_rare_rate")]
    pub timeout_rate: f64,
    /// Probability of a startup failure (counts as failed, beside `failure_rate`).
    #[serde(default = "default_rare_rate")]
    pub startup_failure_rate: f64,
    /// Failure probability during an injected failure burst.
    #[serde(default = "default_burst_rate")]
    pub burst_failure_rate: f64,
}

fn default_cancel_rate() -> f64 {
    0.01
}

fn default_rare_rate() -> f64 {
    0.002
}

fn default_burst_rate() -> f64 {
    0.65
}

/// One branch of a generated history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BranchProfile {
    /// Branch name.
    pub name: String,
    /// Relative share of runs.
    pub weight: f64,
    /// Normal failure probability relative to the workflow's (capped at 0.5).
    pub failure_factor: f64,
}

impl BranchProfile {
    /// A branch with `weight` and `failure_factor`.
    pub fn new(name: &str, weight: f64, failure_factor: f64) -> Self {
        Self {
            name: name.into(),
            weight,
            failure_factor,
        }
    }
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
            spike_tail_alpha: None,
            branches: Vec::new(),
            weekly_seasonality: false,
            queue_burst_rate: 0.0,
            cancel_rate: default_cancel_rate(),
            timeout_rate: default_rare_rate(),
            startup_failure_rate: default_rare_rate(),
            burst_failure_rate: default_burst_rate(),
        }
    }
}

impl GeneratorConfig {
    /// A history of different character from the default: every workflow fails `failure_rate`
    /// of its runs on the default branch (of which a tenth time out and a twentieth fail to
    /// start), 3 % are cancelled; log-normal durations with a heavy (Pareto) tail of spikes;
    /// weekly seasonality; repository-wide queueing bursts; three branches (`main` 70 %, two
    /// feature branches failing 1.5× and 2× as often); anomalies on `main`, failure bursts
    /// failing 80 % of runs (a broken default branch; more above a 30 % base rate).
    pub fn realistic(seed: u64, runs: usize, failure_rate: f64) -> Self {
        let wf = |name: &str, id, weight, d, q| WorkflowProfile {
            name: name.into(),
            id,
            weight,
            duration_ms: d,
            duration_sigma: 0.2,
            queue_ms: q,
            queue_sigma: 0.4,
            failure_rate: failure_rate * 0.85,
        };
        Self {
            seed,
            runs,
            workflows: vec![
                wf("CI", 1001, 0.6, 420_000.0, 8_000.0),
                wf("Release", 1002, 0.15, 900_000.0, 15_000.0),
                wf("Nightly", 1003, 0.25, 1_800_000.0, 20_000.0),
            ],
            spike_rate: 0.02,
            spike_tail_alpha: Some(1.8),
            branches: vec![
                BranchProfile::new("main", 0.7, 1.0),
                BranchProfile::new("feature/parser", 0.2, 1.5),
                BranchProfile::new("fix/flaky-test", 0.1, 2.0),
            ],
            weekly_seasonality: true,
            queue_burst_rate: 0.01,
            cancel_rate: 0.03,
            timeout_rate: failure_rate * 0.1,
            startup_failure_rate: failure_rate * 0.05,
            burst_failure_rate: (failure_rate + 0.5).clamp(0.8, 0.95),
            first_anomaly_at: 200,
            anomaly_every: 350,
            ..Self::default()
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
    // The new characters draw from their own stream, so the default history stays the same.
    let mut extra = SplitMix64::new(cfg.seed ^ 0x5eed_c4a7_0000_0001);
    let branch_weight: f64 = cfg.branches.iter().map(|b| b.weight).sum();
    let mut branch_seq: Vec<Vec<u64>> = vec![vec![0; cfg.branches.len()]; cfg.workflows.len()];
    let mut queue_burst_until = f64::MIN;
    let mut queue_burst_factor = 1.0;
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
        let (gap_factor, queue_load) = if cfg.weekly_seasonality {
            // 2026-01-01 was a Thursday: day 0 of the epoch (1970-01-01) too, so weekday
            // = (days + 3) % 7 with Monday = 0.
            let day = ((t / 86_400_000.0).floor() as i64 + 3).rem_euclid(7);
            match day {
                0 => (1.0 / 1.8, 1.3),
                5 | 6 => (4.0, 0.8),
                _ => (1.0, 1.0),
            }
        } else {
            (1.0, 1.0)
        };
        t += -cfg.mean_gap_ms * gap_factor * (1.0 - rng.unit()).max(f64::MIN_POSITIVE).ln();
        if cfg.queue_burst_rate > 0.0 && t > queue_burst_until && extra.chance(cfg.queue_burst_rate)
        {
            queue_burst_until = t + extra.range(600_000.0, 1_800_000.0);
            queue_burst_factor = extra.range(2.0, 3.5);
        }
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
        // With branch profiles, the branch is drawn first: anomalies follow the default
        // branch's own sequence.
        let branch_pick = if cfg.branches.is_empty() {
            None
        } else {
            let mut pick = extra.unit() * branch_weight;
            let mut b = cfg.branches.len() - 1;
            for (j, bp) in cfg.branches.iter().enumerate() {
                if pick < bp.weight {
                    b = j;
                    break;
                }
                pick -= bp.weight;
            }
            Some(b)
        };
        let on_anomaly_stream = branch_pick.is_none_or(|b| b == 0);
        let s = match branch_pick {
            Some(b) => {
                let s = branch_seq[w][b];
                branch_seq[w][b] += 1;
                s
            }
            None => seq[w],
        };
        seq[w] += 1;
        let id = 20_000_000_000 + i as u64;

        if on_anomaly_stream
            && let Some(a) = active[w]
            && s >= a.until
        {
            active[w] = None;
        }
        if on_anomaly_stream
            && cfg.anomaly_every > 0
            && !cfg.anomaly_kinds.is_empty()
            && s >= cfg.first_anomaly_at
        {
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
                    branch: branch_pick
                        .map(|b| cfg.branches[b].name.clone())
                        .unwrap_or_default(),
                    kind,
                    start_seq: s,
                    len: kind.runs_affected(),
                    first_run_id: id,
                });
            }
        }
        let a = if on_anomaly_stream { active[w] } else { None };
        let is = |k: AnomalyKind| a.is_some_and(|a| a.kind == k);
        let factor = a.map_or(1.0, |a| a.factor);

        let mut duration = p.duration_ms * (p.duration_sigma * rng.normal()).exp();
        if is(AnomalyKind::StepChange) {
            duration *= factor;
        }
        if rng.chance(cfg.spike_rate) {
            let uniform = rng.range(1.5, 3.0);
            duration *= match cfg.spike_tail_alpha {
                Some(alpha) if alpha > 0.0 => {
                    let u = (1.0 - extra.unit()).max(f64::MIN_POSITIVE);
                    (1.3 * u.powf(-1.0 / alpha)).min(20.0)
                }
                _ => uniform,
            };
        }
        let mut queue = p.queue_ms * (p.queue_sigma * rng.normal()).exp() * queue_load;
        if t <= queue_burst_until {
            queue *= queue_burst_factor;
        }
        if is(AnomalyKind::QueueBacklog) {
            queue *= factor;
        }
        let factor_of_branch = branch_pick.map_or(1.0, |b| cfg.branches[b].failure_factor);
        let (fail_p, timeout_p, startup_p) = if is(AnomalyKind::FailureBurst) {
            (
                cfg.burst_failure_rate,
                cfg.timeout_rate,
                cfg.startup_failure_rate,
            )
        } else {
            let f = |x: f64| (x * factor_of_branch).min(0.5);
            (
                f(p.failure_rate),
                f(cfg.timeout_rate),
                f(cfg.startup_failure_rate),
            )
        };
        let r = rng.unit();
        let conclusion = if r < fail_p {
            Conclusion::Failure
        } else if r < fail_p + cfg.cancel_rate {
            Conclusion::Cancelled
        } else if r < fail_p + cfg.cancel_rate + timeout_p {
            Conclusion::TimedOut
        } else if r < fail_p + cfg.cancel_rate + timeout_p + startup_p {
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
        let drawn = branches[(rng.next_u64() % branches.len() as u64) as usize];
        let branch = branch_pick.map_or(drawn, |b| cfg.branches[b].name.as_str());
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
