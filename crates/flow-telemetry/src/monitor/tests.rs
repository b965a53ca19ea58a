//! Tests of the streaming monitor.

#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;
use crate::generator::{GeneratorConfig, generate};

#[test]
fn a_threshold_above_i64_max_is_never_exceeded() {
    assert!(!exceeds(i64::MAX, u64::MAX));
    assert!(!exceeds(1_000, u64::MAX));
    assert!(!exceeds(-5, 0));
    assert!(exceeds(1_001, 1_000));
    assert!(!exceeds(1_000, 1_000));
}

#[test]
fn memory_is_bounded_by_the_window() {
    let rules = Rules {
        window: 100,
        ..Rules::default()
    };
    let h = generate(&GeneratorConfig {
        runs: 30_000,
        ..GeneratorConfig::default()
    });
    let mut m = Monitor::new(rules);
    for r in &h.runs {
        m.observe(r);
    }
    assert_eq!(
        m.retained(),
        300,
        "3 workflows x 100 runs, whatever the history length"
    );
    assert!(m.kpis().iter().all(|k| k.values.count == 100));
}

/// A completed successful run of "CI" taking `dur_s` seconds after `queue_s` in queue.
fn timed(id: u64, dur_s: i64, queue_s: i64) -> Run {
    let created = id as i64 * 10_000_000;
    Run {
        id: crate::model::RunId(id),
        name: "CI".into(),
        status: crate::model::RunStatus::Completed,
        conclusion: Some(crate::model::Conclusion::Success),
        created_at: Some(created),
        run_started_at: Some(created + queue_s * 1000),
        updated_at: Some(created + (queue_s + dur_s) * 1000),
        ..Run::default()
    }
}

#[test]
fn duration_and_queue_shifts_recover_once_back_within_the_baseline() {
    let rules = Rules::from_yaml("defaults:\n  recovery_runs: 4\n").unwrap();
    let mut m = Monitor::new(rules);
    let mut id = 0;
    let mut opened = 0;
    let mut feed = |m: &mut Monitor, n: u64, dur: i64, queue: i64| {
        let (mut fired, mut recovered) = (Vec::new(), Vec::new());
        for i in 0..n {
            id += 1;
            let noise = (i % 7) as i64;
            let obs = m.observe(&timed(id, dur + noise, queue + noise));
            for a in obs.alerts.iter().chain(&obs.updated) {
                fired.extend(a.kinds());
            }
            opened += obs.alerts.len();
            recovered.extend(obs.recovered.iter().map(|f| (id, f.clone())));
        }
        (fired, recovered)
    };
    let (_, early) = feed(&mut m, 80, 100, 10);
    assert!(early.is_empty());
    let (fired, _) = feed(&mut m, 25, 300, 200);
    let kinds = [
        AlertKind::DurationOutlier,
        AlertKind::DurationShift,
        AlertKind::QueueOutlier,
    ];
    for k in kinds {
        assert!(fired.contains(&k), "{k:?} fired: {fired:?}");
    }
    // All three signals belong to one incident of CI (branch unknown).
    assert_eq!(m.active_alerts().count(), 1);
    let (_, recovered) = feed(&mut m, 40, 100, 10);
    // It resolves once, when the last signal is back: `recovery_runs` calm runs after the
    // shift for the change point and the outliers alike.
    assert_eq!(recovered, vec![(105 + 4, Fingerprint::incident("CI", ""))]);
    assert_eq!(m.active_alerts().count(), 0);
    assert_eq!(opened, 1, "one incident for the three signals");
}

fn outcome(id: u64, c: Option<crate::model::Conclusion>) -> Run {
    Run {
        id: crate::model::RunId(id),
        name: "CI".into(),
        head_branch: "main".into(),
        status: if c.is_some() {
            crate::model::RunStatus::Completed
        } else {
            crate::model::RunStatus::InProgress
        },
        conclusion: c,
        ..Run::default()
    }
}

#[test]
fn too_little_history_says_so_instead_of_alerting() {
    use crate::model::Conclusion::Failure;
    let mut m = Monitor::new(Rules::default());
    assert!(
        m.observe(&outcome(1, None)).is_empty(),
        "in progress: ignored"
    );
    for id in 2..12 {
        assert!(m.observe(&outcome(id, Some(Failure))).is_empty());
    }
    let b = m.baselines();
    assert_eq!(b.len(), 1);
    assert_eq!((b[0].runs, b[0].failure_rate), (10, None));
    assert_eq!(
        b[0].to_string(),
        "CI on main: too little history to judge failures (0 of 20 runs); no failure alert yet"
    );
}

/// Feeds `n` runs of CI on main, failing where `fails(i)`, from id `*id + 1`; returns the
/// observations.
fn feed_outcomes(
    m: &mut Monitor,
    id: &mut u64,
    n: u64,
    fails: impl Fn(u64) -> bool,
) -> Vec<Observation> {
    use crate::model::Conclusion::{Failure, Success};
    (0..n)
        .map(|i| {
            *id += 1;
            let c = if fails(i) { Failure } else { Success };
            m.observe(&outcome(*id, Some(c)))
        })
        .collect()
}

#[test]
fn a_burst_is_one_incident_with_rate_and_streak_signals_and_recovers_once() {
    let mut m = Monitor::new(Rules::default());
    let mut id = 0;
    let quiet = feed_outcomes(&mut m, &mut id, 200, |i| i % 25 == 7);
    assert!(quiet.iter().all(Observation::is_empty));
    // A burst: 10 runs, 9 failed.
    let burst = feed_outcomes(&mut m, &mut id, 10, |i| i != 5);
    let opened: Vec<&Alert> = burst.iter().flat_map(|o| &o.alerts).collect();
    assert_eq!(opened.len(), 1, "{opened:#?}");
    assert_eq!(opened[0].fingerprint, Fingerprint::incident("CI", "main"));
    let incident = m.active_alerts().next().unwrap().clone();
    let mut kinds = incident.kinds();
    kinds.sort();
    assert_eq!(
        kinds,
        vec![AlertKind::FailureRate, AlertKind::ConsecutiveFailures]
    );
    assert_eq!(incident.severity, Severity::Critical);
    for s in &incident.signals {
        assert!(
            s.explanation
                .starts_with("CI on main usually fails 4.7 % of runs (baseline of 19"),
            "{}",
            s.explanation
        );
    }
    let burst_updates: usize = burst.iter().map(|o| o.updated.len()).sum();
    assert_eq!(
        burst_updates, 1,
        "the second signal joined the open incident"
    );
    let after = feed_outcomes(&mut m, &mut id, 60, |i| i % 25 == 7);
    let resolved: Vec<&Fingerprint> = after.iter().flat_map(|o| &o.recovered).collect();
    assert_eq!(resolved, vec![&incident.fingerprint]);
    assert!(after.iter().all(|o| o.alerts.is_empty()));
    assert_eq!(m.active_alerts().count(), 0);
}

#[test]
fn a_one_percent_workflow_alerts_on_a_streak_a_fifteen_percent_one_does_not() {
    let streak_alerts = |rules: &Rules, every: u64, streak: u64| {
        let mut m = Monitor::new(rules.clone());
        let mut id = 0;
        // Isolated failures, one in `every` runs: no streaks in the history.
        let quiet = feed_outcomes(&mut m, &mut id, 1_000, |i| i % every == every / 2);
        assert!(quiet.iter().all(Observation::is_empty), "every {every}");
        let b = m.baselines().remove(0);
        let obs = feed_outcomes(&mut m, &mut id, streak, |_| true);
        let fired: Vec<AlertKind> = obs.iter().flat_map(|o| &o.alerts).map(|a| a.kind).collect();
        (b, fired)
    };
    let rules = Rules::default();
    let (b1, fired1) = streak_alerts(&rules, 100, 3);
    assert_eq!(b1.streak_needed, Some(3), "{b1}");
    assert_eq!(fired1, vec![AlertKind::ConsecutiveFailures]);
    let (b15, fired15) = streak_alerts(&rules, 7, 3);
    assert_eq!(b15.streak_needed, Some(6), "{b15}");
    assert!(fired15.is_empty(), "{fired15:?}");
    // A looser budget: the 1 % workflow alerts on 2 in a row.
    let loose = Rules::from_yaml("defaults:\n  false_alarms_per_1000_runs: 0.5\n").unwrap();
    let (b1, fired1) = streak_alerts(&loose, 100, 2);
    assert_eq!(b1.streak_needed, Some(2), "{b1}");
    assert_eq!(fired1, vec![AlertKind::ConsecutiveFailures]);
}
