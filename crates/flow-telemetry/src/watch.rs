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
    /// Alerts raised.
    pub alerts: Vec<Alert>,
    /// Problems that recovered.
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

    /// One cycle: poll, observe each new run in completion order, resolve recovered problems
    /// and raise new alerts.
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
        for run in &batch.completed {
            let obs = self.monitor.observe(run);
            cycle.recovered.extend(obs.recovered);
            cycle.alerts.extend(obs.alerts);
        }
        // A problem that fired and recovered within the cycle needs no issue.
        let transient: Vec<Fingerprint> = cycle
            .alerts
            .iter()
            .filter(|a| cycle.recovered.contains(&a.fingerprint))
            .filter(|a| {
                self.monitor
                    .active_alerts()
                    .all(|x| x.fingerprint != a.fingerprint)
            })
            .map(|a| a.fingerprint.clone())
            .collect();
        for fp in &cycle.recovered {
            if !transient.contains(fp) {
                cycle.actions.push(self.sink.resolve(fp).await?);
            }
        }
        for alert in &cycle.alerts {
            if !transient.contains(&alert.fingerprint) {
                cycle.actions.push(self.sink.raise(alert).await?);
            }
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
