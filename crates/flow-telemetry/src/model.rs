//! Workflow runs, jobs and steps, as GitHub returns them.
//!
//! Parsing is tolerant: every field but `id` may be missing or `null`, unknown statuses and
//! conclusions map to `Other`, and unparsable timestamps read as absent. Timestamps are unix
//! milliseconds in memory and RFC 3339 strings on the wire, so a serialized [`Run`] is itself a
//! valid (if smaller) GitHub REST run object.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A workflow run id (`id` in the REST API, `databaseId` in `gh`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct RunId(pub u64);

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A workflow id (`workflow_id`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct WorkflowId(pub u64);

macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vm])* $v,)*
            /// A value this crate does not know, or none.
            #[default]
            Other,
        }
        impl $name {
            /// The wire spelling (`"other"` for unknown values).
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s,)* Self::Other => "other" }
            }
            /// Parses the wire spelling, case-insensitively; unknown values give `Other`.
            pub fn parse(s: &str) -> Self {
                $(if s.eq_ignore_ascii_case($s) { return Self::$v; })*
                Self::Other
            }
        }
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s: Option<std::borrow::Cow<'de, str>> = Option::deserialize(d)?;
                Ok(s.map(|s| Self::parse(&s)).unwrap_or_default())
            }
        }
    };
}

wire_enum! {
    /// Where a run or job is in its life.
    RunStatus {
        /// Waiting for a runner.
        Queued = "queued",
        /// Running.
        InProgress = "in_progress",
        /// Finished; see the conclusion.
        Completed = "completed",
        /// Waiting for an approval or a deployment protection rule.
        Waiting = "waiting",
        /// Requested, not yet queued.
        Requested = "requested",
        /// Pending a concurrency group.
        Pending = "pending",
    }
}

wire_enum! {
    /// How a completed run, job or step ended.
    Conclusion {
        /// Succeeded.
        Success = "success",
        /// A step failed (usually tests).
        Failure = "failure",
        /// Cancelled by a person or a concurrency group.
        Cancelled = "cancelled",
        /// Exceeded its timeout.
        TimedOut = "timed_out",
        /// The workflow file or runner could not start it.
        StartupFailure = "startup_failure",
        /// Waits for a person.
        ActionRequired = "action_required",
        /// Neutral.
        Neutral = "neutral",
        /// Skipped.
        Skipped = "skipped",
        /// Superseded.
        Stale = "stale",
    }
}

/// The outcome classes the KPIs count, derived from a run's conclusion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Concluded `success`.
    Success,
    /// Concluded `failure` with a failed step: a test or build failure.
    Failure,
    /// Concluded `cancelled`.
    Cancelled,
    /// Concluded `timed_out`.
    TimedOut,
    /// `startup_failure`, or a runner error (a failed job without a failed step).
    Error,
    /// Neutral, skipped, stale, action required, unknown.
    Other,
    /// Not completed yet.
    InProgress,
}

impl Outcome {
    /// True for outcomes that count as a broken run (failure, timed out, error).
    pub fn is_failed(self) -> bool {
        matches!(self, Self::Failure | Self::TimedOut | Self::Error)
    }
}

/// One workflow run. Field names and meanings are GitHub's.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Run {
    /// Run id.
    pub id: RunId,
    /// Workflow name.
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    /// Workflow id.
    #[serde(deserialize_with = "null_default")]
    pub workflow_id: WorkflowId,
    /// Workflow file path, e.g. `.github/workflows/ci.yml`.
    #[serde(deserialize_with = "null_default")]
    pub path: String,
    /// Branch of the head commit.
    #[serde(deserialize_with = "null_default")]
    pub head_branch: String,
    /// Head commit SHA.
    #[serde(deserialize_with = "null_default")]
    pub head_sha: String,
    /// Triggering event, e.g. `push`.
    #[serde(deserialize_with = "null_default")]
    pub event: String,
    /// Status.
    pub status: RunStatus,
    /// Conclusion, `None` until completed.
    #[serde(deserialize_with = "conclusion_opt")]
    pub conclusion: Option<Conclusion>,
    /// Attempt number, from 1.
    #[serde(deserialize_with = "attempt")]
    pub run_attempt: u32,
    /// Per-workflow run number.
    #[serde(deserialize_with = "null_default")]
    pub run_number: u64,
    /// Creation time, unix ms.
    #[serde(with = "ts")]
    pub created_at: Option<i64>,
    /// Start of the latest attempt, unix ms.
    #[serde(with = "ts")]
    pub run_started_at: Option<i64>,
    /// Last update (completion for completed runs), unix ms.
    #[serde(with = "ts")]
    pub updated_at: Option<i64>,
    /// Login of the actor.
    #[serde(deserialize_with = "actor", serialize_with = "actor_ser")]
    pub actor: Option<String>,
    /// Link to the run on github.com.
    #[serde(deserialize_with = "null_default")]
    pub html_url: String,
    /// Set by a source that fetched the jobs of a failed run and found a runner error (a failed
    /// job with no failed step). Not a GitHub field.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub runner_error: bool,
}

impl Run {
    /// True once the run has completed.
    pub fn is_completed(&self) -> bool {
        self.status == RunStatus::Completed || self.conclusion.is_some()
    }

    /// The outcome class the KPIs count.
    pub fn outcome(&self) -> Outcome {
        if !self.is_completed() {
            return Outcome::InProgress;
        }
        match self.conclusion {
            Some(Conclusion::Success) => Outcome::Success,
            Some(Conclusion::Failure) if self.runner_error => Outcome::Error,
            Some(Conclusion::Failure) => Outcome::Failure,
            Some(Conclusion::Cancelled) => Outcome::Cancelled,
            Some(Conclusion::TimedOut) => Outcome::TimedOut,
            Some(Conclusion::StartupFailure) => Outcome::Error,
            _ => Outcome::Other,
        }
    }

    /// Wall time of the latest attempt, ms: `updated_at - run_started_at` (or `created_at`
    /// when the start is missing). `None` unless completed and non-negative.
    pub fn duration_ms(&self) -> Option<i64> {
        if !self.is_completed() {
            return None;
        }
        let end = self.updated_at?;
        let start = self.run_started_at.or(self.created_at)?;
        (end >= start).then_some(end - start)
    }

    /// Queue time of a first attempt, ms: `run_started_at - created_at`. `None` for re-runs
    /// (their start is the re-run's, their creation the original's) and negative spans.
    pub fn queue_ms(&self) -> Option<i64> {
        if self.run_attempt > 1 {
            return None;
        }
        let q = self.run_started_at? - self.created_at?;
        (q >= 0).then_some(q)
    }

    /// The key runs are grouped by: the workflow name, else its path, else its id.
    pub fn workflow_key(&self) -> std::borrow::Cow<'_, str> {
        if !self.name.is_empty() {
            self.name.as_str().into()
        } else if !self.path.is_empty() {
            self.path.as_str().into()
        } else {
            format!("workflow-{}", self.workflow_id.0).into()
        }
    }
}

/// One step of a job.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Step {
    /// Step name.
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    /// Step number, from 1.
    #[serde(deserialize_with = "null_default")]
    pub number: u32,
    /// Status.
    pub status: RunStatus,
    /// Conclusion, `None` until completed.
    #[serde(deserialize_with = "conclusion_opt")]
    pub conclusion: Option<Conclusion>,
    /// Start, unix ms.
    #[serde(with = "ts")]
    pub started_at: Option<i64>,
    /// End, unix ms.
    #[serde(with = "ts")]
    pub completed_at: Option<i64>,
}

impl Step {
    /// `completed_at - started_at` in ms when both are known and ordered. Steps may start
    /// before their job's recorded start (GitHub's clocks differ); that is accepted.
    pub fn duration_ms(&self) -> Option<i64> {
        let d = self.completed_at? - self.started_at?;
        (d >= 0).then_some(d)
    }
}

/// One job of a run.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Job {
    /// Job id.
    pub id: u64,
    /// The run it belongs to.
    pub run_id: RunId,
    /// Job name.
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    /// Status.
    pub status: RunStatus,
    /// Conclusion, `None` until completed.
    #[serde(deserialize_with = "conclusion_opt")]
    pub conclusion: Option<Conclusion>,
    /// Creation (queued) time, unix ms.
    #[serde(with = "ts")]
    pub created_at: Option<i64>,
    /// Start on a runner, unix ms.
    #[serde(with = "ts")]
    pub started_at: Option<i64>,
    /// Completion, unix ms.
    #[serde(with = "ts")]
    pub completed_at: Option<i64>,
    /// Runner labels requested by `runs-on`.
    #[serde(deserialize_with = "null_default")]
    pub labels: Vec<String>,
    /// Name of the runner that took it.
    #[serde(deserialize_with = "null_default")]
    pub runner_name: Option<String>,
    /// Steps with their times.
    #[serde(deserialize_with = "null_default")]
    pub steps: Vec<Step>,
    /// Link to the job.
    #[serde(deserialize_with = "null_default")]
    pub html_url: String,
}

impl Job {
    /// `completed_at - started_at` in ms, when both are known and ordered.
    pub fn duration_ms(&self) -> Option<i64> {
        let d = self.completed_at? - self.started_at?;
        (d >= 0).then_some(d)
    }

    /// `started_at - created_at` in ms, when both are known and ordered.
    pub fn queue_ms(&self) -> Option<i64> {
        let d = self.started_at? - self.created_at?;
        (d >= 0).then_some(d)
    }

    /// A runner error: the job failed but none of its steps did (the runner was lost, shut
    /// down, or never started the steps).
    pub fn is_runner_error(&self) -> bool {
        self.conclusion == Some(Conclusion::Failure)
            && !self.steps.iter().any(|s| {
                matches!(
                    s.conclusion,
                    Some(Conclusion::Failure | Conclusion::TimedOut)
                )
            })
    }
}

fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn conclusion_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Conclusion>, D::Error> {
    let s: Option<std::borrow::Cow<'de, str>> = Option::deserialize(d)?;
    Ok(s.filter(|s| !s.is_empty()).map(|s| Conclusion::parse(&s)))
}

fn attempt<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    Ok(Option::<u32>::deserialize(d)?.unwrap_or(1).max(1))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ActorWire<'a> {
    Login(#[serde(borrow)] std::borrow::Cow<'a, str>),
    User {
        #[serde(default)]
        login: Option<String>,
    },
}

fn actor<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<ActorWire<'de>>::deserialize(d)? {
        Some(ActorWire::Login(s)) => Some(s.into_owned()),
        Some(ActorWire::User { login }) => login,
        None => None,
    })
}

#[derive(Serialize)]
struct ActorOut<'a> {
    login: &'a str,
}

fn actor_ser<S: Serializer>(a: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match a {
        Some(login) => ActorOut { login }.serialize(s),
        None => s.serialize_none(),
    }
}

/// RFC 3339 timestamps on the wire, unix ms in memory.
pub mod ts {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Parses an RFC 3339 timestamp to unix ms; `None` when it is not one. The common
    /// `YYYY-MM-DDTHH:MM:SSZ` form takes a fast path.
    pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
        let b = s.as_bytes();
        if b.len() == 20 && b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[19] == b'Z' {
            let n = |i: usize, len: usize| -> Option<i64> {
                let mut v = 0i64;
                for &c in &b[i..i + len] {
                    if !c.is_ascii_digit() {
                        return None;
                    }
                    v = v * 10 + i64::from(c - b'0');
                }
                Some(v)
            };
            let (y, mo, d) = (n(0, 4)?, n(5, 2)?, n(8, 2)?);
            let (h, mi, se) = (n(11, 2)?, n(14, 2)?, n(17, 2)?);
            if (1..=12).contains(&mo) && (1..=31).contains(&d) && h < 24 && mi < 60 && se < 61 {
                return Some((days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se) * 1000);
            }
            return None;
        }
        chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.timestamp_millis())
    }

    // Howard Hinnant's days_from_civil.
    fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// Formats unix ms as RFC 3339 UTC (`Z`), with milliseconds only when non-zero.
    pub fn format_ms(ms: i64) -> String {
        match chrono::DateTime::from_timestamp_millis(ms) {
            Some(t) if ms % 1000 == 0 => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
            None => String::new(),
        }
    }

    pub(crate) fn serialize<S: Serializer>(v: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(ms) => s.serialize_str(&format_ms(*ms)),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        let s: Option<std::borrow::Cow<'de, str>> = Option::deserialize(d)?;
        Ok(s.and_then(|s| parse_rfc3339_ms(&s)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn fast_timestamp_path_agrees_with_chrono() {
        for s in [
            "2020-01-22T19:33:08Z",
            "1999-12-31T23:59:59Z",
            "2024-02-29T00:00:00Z",
        ] {
            let chrono = chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .timestamp_millis();
            assert_eq!(ts::parse_rfc3339_ms(s), Some(chrono), "{s}");
        }
        assert_eq!(
            ts::parse_rfc3339_ms("2020-01-20T09:42:40.000-08:00"),
            ts::parse_rfc3339_ms("2020-01-20T17:42:40Z")
        );
        assert_eq!(ts::parse_rfc3339_ms("yesterday"), None);
    }

    #[test]
    fn tolerant_of_nulls_and_unknowns() {
        let run: Run = serde_json::from_str(
            r#"{"id":7,"name":null,"status":"brand_new","conclusion":null,"run_attempt":null,
                "created_at":"garbage","actor":null,"extra":{"x":1}}"#,
        )
        .unwrap();
        assert_eq!(run.id, RunId(7));
        assert_eq!(run.status, RunStatus::Other);
        assert_eq!(run.conclusion, None);
        assert_eq!(run.run_attempt, 1);
        assert_eq!(run.created_at, None);
        assert_eq!(run.outcome(), Outcome::InProgress);
    }

    #[test]
    fn round_trips_through_json() {
        let run = Run {
            id: RunId(1),
            name: "CI".into(),
            status: RunStatus::Completed,
            conclusion: Some(Conclusion::TimedOut),
            run_attempt: 2,
            created_at: Some(1_600_000_000_000),
            run_started_at: Some(1_600_000_001_500),
            updated_at: Some(1_600_000_061_500),
            actor: Some("octocat".into()),
            ..Run::default()
        };
        let back: Run = serde_json::from_str(&serde_json::to_string(&run).unwrap()).unwrap();
        assert_eq!(back, run);
        assert_eq!(back.duration_ms(), Some(60_000));
        assert_eq!(back.queue_ms(), None, "re-runs have no queue time");
    }
}
