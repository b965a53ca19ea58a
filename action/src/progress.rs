//! Progress of long fetches, on stderr: a self-updating line at a terminal, one line per page
//! otherwise (CI logs), nothing with `--json` unless stderr is a terminal.

use std::io::{IsTerminal as _, Write as _};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use flow_telemetry::{Job, RunId, RunPage, RunQuery, RunSource};

/// Where progress goes and how.
#[derive(Debug)]
pub struct Progress {
    style: Style,
    state: Mutex<State>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Off,
    Line,
    Terminal,
}

#[derive(Debug, Default)]
struct State {
    runs: u64,
    pages: u32,
    jobs: u32,
}

impl Progress {
    /// Progress on stderr: overwritten in place at a terminal, plain lines elsewhere.
    pub fn stderr() -> Self {
        let style = if std::io::stderr().is_terminal() {
            Style::Terminal
        } else {
            Style::Line
        };
        Self::with_style(style)
    }

    /// No progress at all.
    pub fn off() -> Self {
        Self::with_style(Style::Off)
    }

    fn with_style(style: Style) -> Self {
        Self {
            style,
            state: Mutex::new(State::default()),
        }
    }

    /// Formats the line for the current counts.
    fn line(state: &State, total: Option<u64>) -> String {
        let of = total.map(|t| format!("/{t}")).unwrap_or_default();
        let mut s = format!("fetched {}{of} runs ({} pages)", state.runs, state.pages);
        if state.jobs > 0 {
            s.push_str(&format!(", jobs of {} runs", state.jobs));
        }
        s
    }

    fn emit(&self, line: &str) {
        let mut err = std::io::stderr().lock();
        let _ = match self.style {
            Style::Off => Ok(()),
            Style::Line => writeln!(err, "{line}"),
            Style::Terminal => write!(err, "\r\x1b[2K{line}"),
        };
    }

    /// Records a page of runs.
    pub fn page(&self, runs: usize, total: Option<u64>) {
        let line = {
            let Ok(mut s) = self.state.lock() else { return };
            s.runs += runs as u64;
            s.pages += 1;
            Self::line(&s, total)
        };
        self.emit(&line);
    }

    /// Records the jobs of one run (shown at a terminal only: one line per run is too many).
    pub fn jobs(&self) {
        let line = {
            let Ok(mut s) = self.state.lock() else { return };
            s.jobs += 1;
            Self::line(&s, None)
        };
        if self.style == Style::Terminal {
            self.emit(&line);
        }
    }

    /// Ends the progress line (at a terminal, moves to a fresh line).
    pub fn finish(&self) {
        if self.style == Style::Terminal
            && self.state.lock().is_ok_and(|s| s.pages > 0 || s.jobs > 0)
        {
            let _ = writeln!(std::io::stderr());
        }
    }

    /// Runs and pages counted so far.
    pub fn counts(&self) -> (u64, u32) {
        self.state
            .lock()
            .map(|s| (s.runs, s.pages))
            .unwrap_or((0, 0))
    }
}

/// A [`RunSource`] that reports each page and each run's jobs to a [`Progress`].
pub struct ProgressSource {
    inner: Arc<dyn RunSource>,
    progress: Arc<Progress>,
}

impl std::fmt::Debug for ProgressSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProgressSource").finish_non_exhaustive()
    }
}

impl ProgressSource {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn RunSource>, progress: Arc<Progress>) -> Self {
        Self { inner, progress }
    }
}

#[async_trait]
impl RunSource for ProgressSource {
    async fn runs(&self, query: &RunQuery) -> flow_telemetry::Result<RunPage> {
        let page = self.inner.runs(query).await?;
        self.progress.page(page.runs.len(), page.total_count);
        Ok(page)
    }

    async fn jobs(&self, run: RunId) -> flow_telemetry::Result<Vec<Job>> {
        let jobs = self.inner.jobs(run).await?;
        self.progress.jobs();
        Ok(jobs)
    }

    // The rest passes through: the saved ETag and the workflows list must reach the source.
    fn list_etag(&self, query: &RunQuery) -> Option<String> {
        self.inner.list_etag(query)
    }

    fn seed_list_etag(&self, query: &RunQuery, etag: &str) {
        self.inner.seed_list_etag(query, etag);
    }

    async fn workflows(&self) -> flow_telemetry::Result<Vec<flow_telemetry::source::WorkflowRef>> {
        self.inner.workflows().await
    }

    async fn run(&self, id: RunId) -> flow_telemetry::Result<Option<flow_telemetry::Run>> {
        self.inner.run(id).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use flow_telemetry::Run;
    use flow_telemetry::source::file::FileSource;

    #[tokio::test]
    async fn counts_pages_and_runs_as_they_pass() {
        let runs: Vec<Run> = (1..=150)
            .map(|i| Run {
                id: RunId(i),
                created_at: Some(i as i64 * 1000),
                ..Run::default()
            })
            .collect();
        let progress = Arc::new(Progress::off());
        let source = ProgressSource::new(Arc::new(FileSource::new(runs)), progress.clone());
        let first = source.runs(&RunQuery::new()).await.unwrap();
        assert_eq!(first.runs.len(), 100);
        let second = source
            .runs(&RunQuery::new().with_page(first.next_page.unwrap()))
            .await
            .unwrap();
        assert_eq!(second.runs.len(), 50);
        assert_eq!(progress.counts(), (150, 2));
        assert_eq!(
            Progress::line(&progress.state.lock().unwrap(), Some(150)),
            "fetched 150/150 runs (2 pages)"
        );
    }
}
