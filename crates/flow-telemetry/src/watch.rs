//! The long-running loop: poll the source, feed the monitor, tell the sink.
//!
//! Each [`Watcher::cycle`] costs one conditional list request when nothing changed (see
//! [`crate::source::sync`]); [`Watcher::run`] repeats cycles at an interval through an injected
//! [`Sleeper`].

use std::sync::Arc;
use std::time::Duration;

use crate::alert::{Alert, Fingerprint};
use crate::error::Result;
use crate::monitor::Monitor;
use crate::sink::{IssueAction, IssueSink};
use crate::source::RunSource;
use crate::source::sync::Poller;
use crate::time::Sleeper;

/// What one cycle did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cycle {
    /// Completed runs observed.
    pub new_runs: usize,
    /// Incidents opened in this cycle, as they stood at its end (with every signal).
    pub alerts: Vec<Alert>,
    /// Incidents opened earlier that gained a signal or severity in this cycle, as they now are.
    pub updated: Vec<Alert>,
    /// Incidents that resolved (opened before this cycle, or resolved and opened again in it).
    pub recovered: Vec<Fingerprint>,
    /// What the sink did, in order.
    pub actions: Vec<IssueAction>,
    /// List requests made.
    pub list_requests: u32,
    /// Job requests made.
    pub job_requests: u32,
}

/// Poller + monitor + sink.
pub struct Watcher<S> {
    poller: Poller<S>,
    monitor: Monitor,
    sink: Arc<dyn IssueSink>,
}

impl<S> std::fmt::Debug for Watcher<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("monitor", &self.monitor)
            .finish_non_exhaustive()
    }
}

impl<S: RunSource> Watcher<S> {
    /// A watcher feeding `poller`'s runs to `monitor` and its alerts to `sink`.
    pub fn new(poller: Poller<S>, monitor: Monitor, sink: Arc<dyn IssueSink>) -> Self {
        Self {
            poller,
            monitor,
            sink,
        }
    }

    /// The monitor (for KPIs and reports).
    pub fn monitor(&self) -> &Monitor {
        &self.monitor
    }

    /// The poller (for its position).
    pub fn poller(&self) -> &Poller<S> {
        &self.poller
    }

    /// One cycle: poll, observe each new run in completion order, resolve recovered incidents,
    /// raise new ones and tell the open ones that gained a signal.
    ///
    /// # Errors
    /// The source's or the sink's first failure. Runs observed before a sink failure stay
    /// observed.
    pub async fn cycle(&mut self) -> Result<Cycle> {
        let batch = self.poller.poll().await?;
        let mut cycle = Cycle {
            new_runs: batch.completed.len(),
            list_requests: batch.list_requests,
            job_requests: batch.job_requests,
            ..Cycle::default()
        };
        // Fingerprints opened in this cycle; resolved before any opening in it; updated.
        let mut opened: Vec<Alert> = Vec::new();
        let mut updated: Vec<Fingerprint> = Vec::new();
        for run in &batch.completed {
            let obs = self.monitor.observe(run);
            for fp in obs.recovered {
                let opened_here = opened.iter().any(|a| a.fingerprint == fp);
                if !opened_here && !cycle.recovered.contains(&fp) {
                    cycle.recovered.push(fp);
                }
            }
            for a in obs.alerts {
                if let Some(o) = opened.iter_mut().find(|o| o.fingerprint == a.fingerprint) {
                    *o = a;
                } else {
                    opened.push(a);
                }
            }
            for a in obs.updated {
                if !updated.contains(&a.fingerprint) {
                    updated.push(a.fingerprint);
                }
            }
        }
        // An incident that opened and resolved within the cycle needs no issue; the others
        // are told as they stand now, once each.
        let now = |fp: &Fingerprint| {
            self.monitor
                .active_alerts()
                .find(|a| &a.fingerprint == fp)
                .cloned()
        };
        for a in opened {
            if let Some(current) = now(&a.fingerprint) {
                cycle.alerts.push(current);
            }
        }
        for fp in updated {
            if cycle.alerts.iter().all(|a| a.fingerprint != fp)
                && let Some(current) = now(&fp)
            {
                cycle.updated.push(current);
            }
        }
        for fp in &cycle.recovered {
            cycle.actions.push(self.sink.resolve(fp).await?);
        }
        for alert in cycle.alerts.iter().chain(&cycle.updated) {
            cycle.actions.push(self.sink.raise(alert).await?);
        }
        Ok(cycle)
    }

    /// Runs `cycles` cycles (forever when `None`), sleeping `interval` between them. A failed
    /// cycle is logged and retried at the next interval.
    pub async fn run(&mut self, interval: Duration, sleeper: &dyn Sleeper, cycles: Option<u64>) {
        let mut n = 0u64;
        loop {
            if let Err(e) = self.cycle().await {
                tracing::warn!(target: "flow.monitor", error = %e, "monitor cycle failed");
            }
            n += 1;
            if cycles.is_some_and(|c| n >= c) {
                return;
            }
            sleeper.sleep(interval).await;
        }
    }
}
