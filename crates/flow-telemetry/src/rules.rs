//! The rules file: detector thresholds, with defaults and per-workflow overrides.
//!
//! YAML (`.yml`/`.yaml`) or TOML (`.toml`). Every key is optional; an unknown key or an invalid
//! value is an error naming the key. [`json_schema`] gives the JSON Schema (from schemars).
//!
//! The one key most users need is `false_alarms_per_1000_runs`: the failure-streak,
//! failure-rate and re-run tests derive their thresholds from it and from each workflow's own
//! baseline. The other detector keys are for experts.
//!
//! ```yaml
//! window: 200              # runs kept per workflow for KPIs
//! default_branch: main     # MTTR is measured here
//! defaults:
//!   false_alarms_per_1000_runs: 0.1
//!   duration_z: 3.5
//!   max_duration_ms: 3600000
//! workflows:
//!   Nightly:
//!     duration_z: 5.0
//!     consecutive_failures: 2   # a fixed streak instead of the budget's
//! ```

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

macro_rules! thresholds {
    ($($(#[doc = $doc:literal])* $field:ident : $ty:ty = $default:expr;)*) => {
        /// Detector thresholds for one workflow. Every field has a default.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields, default)]
        pub struct Thresholds {
            $($(#[doc = $doc])* pub $field: $ty,)*
        }

        impl Default for Thresholds {
            fn default() -> Self {
                Self { $($field: $default,)* }
            }
        }

        /// Per-workflow overrides: any subset of [`Thresholds`].
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields, default)]
        pub struct Overrides {
            $($(#[doc = $doc])* #[serde(skip_serializing_if = "Option::is_none")] pub $field: Option<$ty>,)*
        }

        impl Thresholds {
            /// These thresholds with `o`'s fields replacing the ones it sets.
            #[must_use]
            pub fn merged(&self, o: &Overrides) -> Self {
                Self { $($field: o.$field.clone().unwrap_or_else(|| self.$field.clone()),)* }
            }
        }
    };
}

thresholds! {
    /// Robust z-score above which a duration is an outlier (`0.6745·(x − median)/MAD`).
    duration_z: f64 = 3.5;
    /// Robust z-score, on a log scale, above which a queue time is an outlier (busy hours
    /// multiply queue times, so only a large factor is an outlier).
    queue_z: f64 = 6.0;
    /// Consecutive outliers needed before a z-score alert fires.
    z_min_consecutive: u32 = 3;
    /// Runs in a row back within the baseline before a duration or queue alert (outlier or
    /// change point) recovers, which closes its issue.
    recovery_runs: u32 = 9;
    /// Runs in the rolling median/MAD baseline.
    baseline_window: u32 = 61;
    /// Runs a workflow (on a branch) needs before duration, queue and rate detectors may fire;
    /// the rate tests need this many runs in their baseline.
    warmup: u32 = 20;
    /// Expected false alarms per 1,000 runs of a workflow on a branch that the run-outcome
    /// tests (failure streak, failure rate, re-run rate) may raise, shared equally between
    /// them; each test's threshold follows from its share and the workflow's own baseline rate.
    false_alarms_per_1000_runs: f64 = 0.1;
    /// Runs (about) the failure and re-run baselines remember.
    rate_baseline_runs: u32 = 500;
    /// The rise of the failure rate (absolute, in (0, 1)) the sequential failure-rate test is
    /// tuned to detect soonest; it compares the baseline `p` with `max(p + shift, 2p)`.
    failure_rate_shift: f64 = 0.3;
    /// The same for the re-run rate.
    rerun_rate_shift: f64 = 0.2;
    /// Whether the CUSUM change-point detector on durations runs.
    change_point: bool = true;
    /// CUSUM slack `k`, in baseline standard deviations.
    change_point_k: f64 = 1.0;
    /// CUSUM decision threshold `h`, in baseline standard deviations.
    change_point_h: f64 = 12.0;
    /// Each run's standardized contribution is clipped to ±this, so single spikes cannot alarm.
    change_point_clip: f64 = 4.0;
    /// CUSUM slack `k` of the queue-time change point, in baseline standard deviations of the
    /// log queue time: larger than for durations, as busy hours raise queues for a while.
    queue_change_point_k: f64 = 1.5;
    /// CUSUM threshold `h` of the queue-time change point: higher than for durations, so a
    /// busy half hour does not fire it and a backlog lasting several runs does.
    queue_change_point_h: f64 = 20.0;
    /// Smoothing factor of the failure-rate EWMA (used only with `failure_ewma_threshold`), in
    /// (0, 1].
    failure_ewma_lambda: f64 = 0.2;
    /// Expert: a fixed EWMA failure rate, in (0, 1], that fires an alert instead of the
    /// sequential test (absent: the test, from the budget).
    failure_ewma_threshold: Option<f64> = None;
    /// Expert: a fixed number of consecutive failed runs that fires an alert (0: the shortest
    /// streak that is unlikely enough under the baseline failure rate for the budget).
    consecutive_failures: u32 = 0;
    /// Smoothing factor of the re-run EWMA (used only with `rerun_ewma_threshold`), in (0, 1].
    rerun_ewma_lambda: f64 = 0.1;
    /// Expert: a fixed EWMA re-run rate, in (0, 1], that fires an alert instead of the
    /// sequential test.
    rerun_ewma_threshold: Option<f64> = None;
    /// Static threshold: a run longer than this many ms (for `z_min_consecutive` runs) alerts.
    max_duration_ms: Option<u64> = None;
    /// Static threshold: a queue time longer than this many ms (for `z_min_consecutive` runs) alerts.
    max_queue_ms: Option<u64> = None;
    /// Static threshold: a failure rate over the KPI window above this (0 to 1) alerts.
    max_failure_rate: Option<f64> = None;
}

impl Thresholds {
    /// Checks every value's range; errors name `prefix.field`.
    ///
    /// # Errors
    /// [`crate::ErrorKind::Config`] for the first invalid value.
    pub fn validate(&self, prefix: &str) -> Result<()> {
        let key = |f: &str| format!("{prefix}.{f}");
        let positive = |f: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(Error::config(
                    key(f),
                    format!("expected a number > 0, got {v}"),
                ))
            }
        };
        let unit = |f: &str, v: f64| {
            if v.is_finite() && v > 0.0 && v <= 1.0 {
                Ok(())
            } else {
                Err(Error::config(
                    key(f),
                    format!("expected a number in (0, 1], got {v}"),
                ))
            }
        };
        positive("duration_z", self.duration_z)?;
        positive("queue_z", self.queue_z)?;
        positive("change_point_k", self.change_point_k)?;
        positive("change_point_h", self.change_point_h)?;
        positive("change_point_clip", self.change_point_clip)?;
        positive("queue_change_point_k", self.queue_change_point_k)?;
        positive("queue_change_point_h", self.queue_change_point_h)?;
        unit("failure_ewma_lambda", self.failure_ewma_lambda)?;
        if let Some(v) = self.failure_ewma_threshold {
            unit("failure_ewma_threshold", v)?;
        }
        unit("rerun_ewma_lambda", self.rerun_ewma_lambda)?;
        if let Some(v) = self.rerun_ewma_threshold {
            unit("rerun_ewma_threshold", v)?;
        }
        positive(
            "false_alarms_per_1000_runs",
            self.false_alarms_per_1000_runs,
        )?;
        if self.false_alarms_per_1000_runs > 1000.0 {
            return Err(Error::config(
                key("false_alarms_per_1000_runs"),
                format!(
                    "expected a number in (0, 1000], got {}",
                    self.false_alarms_per_1000_runs
                ),
            ));
        }
        for (f, v) in [
            ("failure_rate_shift", self.failure_rate_shift),
            ("rerun_rate_shift", self.rerun_rate_shift),
        ] {
            if !(v.is_finite() && v > 0.0 && v < 1.0) {
                return Err(Error::config(
                    key(f),
                    format!("expected a number in (0, 1), got {v}"),
                ));
            }
        }
        if self.rate_baseline_runs < 10 {
            return Err(Error::config(
                key("rate_baseline_runs"),
                format!("expected an integer >= 10, got {}", self.rate_baseline_runs),
            ));
        }
        if let Some(v) = self.max_failure_rate {
            unit("max_failure_rate", v)?;
        }
        if self.z_min_consecutive == 0 {
            return Err(Error::config(
                key("z_min_consecutive"),
                "expected an integer >= 1, got 0",
            ));
        }
        if !(1..=10_000).contains(&self.recovery_runs) {
            return Err(Error::config(
                key("recovery_runs"),
                format!(
                    "expected an integer in 1..=10000, got {}",
                    self.recovery_runs
                ),
            ));
        }
        if !(5..=10_000).contains(&self.baseline_window) {
            return Err(Error::config(
                key("baseline_window"),
                format!(
                    "expected an integer in 5..=10000, got {}",
                    self.baseline_window
                ),
            ));
        }
        Ok(())
    }
}

/// The whole rules file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Rules {
    /// Completed runs kept per workflow for the KPIs (memory is bounded by this).
    pub window: u32,
    /// The default branch, where MTTR is measured.
    pub default_branch: String,
    /// Thresholds for every workflow.
    pub defaults: Thresholds,
    /// Overrides by workflow name.
    pub workflows: IndexMap<String, Overrides>,
    /// The branch whose runs are observed and raise issues: unset for the repository's
    /// default branch, `*` for every branch together.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Runs a duration change point must hold before its issue is closed as "accepted as the
    /// new normal" and the detectors take the new level as their baseline (0: never).
    pub accept_after_runs: u32,
    /// At most one "still happening" comment with fresh figures per this many hours.
    pub renotify_after_hours: u32,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            window: 500,
            default_branch: "main".into(),
            defaults: Thresholds::default(),
            workflows: IndexMap::new(),
            branch: None,
            accept_after_runs: 50,
            renotify_after_hours: 24,
        }
    }
}

impl Rules {
    /// The thresholds in force for `workflow`.
    pub fn for_workflow(&self, workflow: &str) -> Thresholds {
        match self.workflows.get(workflow) {
            Some(o) => self.defaults.merged(o),
            None => self.defaults.clone(),
        }
    }

    /// Checks every value, the overrides merged.
    ///
    /// # Errors
    /// [`crate::ErrorKind::Config`] naming the first invalid key.
    pub fn validate(&self) -> Result<()> {
        if !(10..=1_000_000).contains(&self.window) {
            return Err(Error::config(
                "window",
                format!("expected an integer in 10..=1000000, got {}", self.window),
            ));
        }
        self.defaults.validate("defaults")?;
        for (name, o) in &self.workflows {
            self.defaults
                .merged(o)
                .validate(&format!("workflows.{name}"))?;
        }
        Ok(())
    }

    /// Parses and validates YAML.
    ///
    /// # Errors
    /// [`crate::ErrorKind::Config`] naming the unknown or invalid key.
    pub fn from_yaml(text: &str) -> Result<Self> {
        let tree: serde_json::Value =
            serde_norway::from_str(text).map_err(|e| Error::config("(document)", e.to_string()))?;
        Self::from_tree(tree)
    }

    /// Parses and validates TOML.
    ///
    /// # Errors
    /// [`crate::ErrorKind::Config`] naming the unknown or invalid key.
    pub fn from_toml(text: &str) -> Result<Self> {
        let tree: serde_json::Value = toml::from_str(text)
            .map_err(|e| Error::config("(document)", e.message().to_string()))?;
        Self::from_tree(tree)
    }

    /// The typed rules from their tree. YAML and TOML both go through one JSON tree: one
    /// instantiation of the rules' `Deserialize` instead of one per format keeps the release
    /// binary smaller. An empty YAML document is the defaults.
    fn from_tree(tree: serde_json::Value) -> Result<Self> {
        let tree = match tree {
            serde_json::Value::Null => serde_json::Value::Object(serde_json::Map::new()),
            other => other,
        };
        let rules: Rules = serde_path_to_error::deserialize(tree)
            .map_err(|e| Error::config(path_of(e.path()), e.inner().to_string()))?;
        rules.validate()?;
        Ok(rules)
    }

    /// Reads a rules file, choosing the format by extension (`.toml`, else YAML).
    ///
    /// # Errors
    /// [`crate::ErrorKind::Io`] when unreadable, else as [`Rules::from_yaml`] / [`Rules::from_toml`].
    pub fn from_path(path: impl AsRef<std::path::Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::new(crate::ErrorKind::Io {
                path: path.display().to_string(),
                detail: e.to_string(),
            })
        })?;
        if path.extension().is_some_and(|e| e == "toml") {
            Self::from_toml(&text)
        } else {
            Self::from_yaml(&text)
        }
    }
}

fn path_of(p: &serde_path_to_error::Path) -> String {
    let s = p.to_string();
    if s == "." || s.is_empty() {
        "(document)".into()
    } else {
        s
    }
}

/// The JSON Schema of the rules file.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Rules)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn yaml_overrides_merge_over_defaults() {
        let r = Rules::from_yaml(
            "window: 200\ndefaults:\n  duration_z: 4.0\nworkflows:\n  Nightly:\n    consecutive_failures: 2\n",
        )
        .unwrap();
        let n = r.for_workflow("Nightly");
        assert_eq!((n.duration_z, n.consecutive_failures), (4.0, 2));
        assert_eq!(
            r.for_workflow("CI").consecutive_failures,
            0,
            "from the budget"
        );
    }

    #[test]
    fn toml_parses_the_same() {
        let r = Rules::from_toml("window = 200\n[workflows.Nightly]\nmax_duration_ms = 60000\n")
            .unwrap();
        assert_eq!(r.for_workflow("Nightly").max_duration_ms, Some(60_000));
    }

    #[test]
    fn unknown_key_is_named() {
        let e = Rules::from_yaml("workflows:\n  CI:\n    duraton_z: 3\n").unwrap_err();
        let ErrorKind::Config { key, detail } = e.kind() else {
            unreachable!("{e}")
        };
        assert_eq!(key, "workflows.CI.duraton_z");
        assert!(detail.contains("duraton_z"), "{detail}");
        let e = Rules::from_toml("[defaults]\nbogus = 1\n").unwrap_err();
        assert!(
            e.to_string().contains("defaults") && e.to_string().contains("bogus"),
            "{e}"
        );
    }

    #[test]
    fn invalid_value_is_named() {
        let e = Rules::from_yaml("workflows:\n  CI:\n    failure_ewma_lambda: 1.5\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid rules: `workflows.CI.failure_ewma_lambda`: expected a number in (0, 1], got 1.5"
        );
        let e = Rules::from_yaml("defaults:\n  duration_z: fast\n").unwrap_err();
        assert!(e.to_string().contains("defaults.duration_z"), "{e}");
        let e = Rules::from_yaml("workflows:\n  CI:\n    recovery_runs: 0\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid rules: `workflows.CI.recovery_runs`: expected an integer in 1..=10000, got 0"
        );
        assert_eq!(Rules::default().defaults.recovery_runs, 9);
        let e = Rules::from_yaml("defaults:\n  false_alarms_per_1000_runs: 0\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid rules: `defaults.false_alarms_per_1000_runs`: expected a number > 0, got 0"
        );
        let e = Rules::from_yaml("workflows:\n  CI:\n    failure_rate_shift: 1\n").unwrap_err();
        assert!(
            e.to_string().contains("workflows.CI.failure_rate_shift"),
            "{e}"
        );
    }

    #[test]
    fn schema_lists_the_keys() {
        let s = json_schema().to_string();
        for k in [
            "duration_z",
            "consecutive_failures",
            "false_alarms_per_1000_runs",
            "recovery_runs",
            "workflows",
            "default_branch",
        ] {
            assert!(s.contains(k), "{k}");
        }
    }
}
