//! `workflow_run` and `workflow_job` event payloads: the real-time path.
//!
//! A workflow triggered by `on: workflow_run` or `on: workflow_job` finds the payload at
//! `GITHUB_EVENT_PATH`.

use serde::Deserialize;

use super::{RunPage, RunQuery, RunSource, page_of};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{Job, Run, RunId};

/// A parsed event payload.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A `workflow_run` event.
    WorkflowRun {
        /// `requested`, `in_progress` or `completed`.
        action: String,
        /// The run.
        run: Box<Run>,
        /// `repository.default_branch`, when the payload has it.
        default_branch: Option<String>,
    },
    /// A `workflow_job` event.
    WorkflowJob {
        /// `queued`, `in_progress`, `completed` or `waiting`.
        action: String,
        /// The job.
        job: Box<Job>,
        /// `repository.default_branch`, when the payload has it.
        default_branch: Option<String>,
    },
}

#[derive(Deserialize)]
struct Payload {
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    workflow_run: Option<Run>,
    #[serde(default)]
    workflow_job: Option<Job>,
    #[serde(default)]
    repository: Option<Repository>,
}

#[derive(Deserialize)]
struct Repository {
    #[serde(default)]
    default_branch: Option<String>,
}

/// Parses a `workflow_run` or `workflow_job` payload.
///
/// # Errors
/// [`ErrorKind::Parse`] when the JSON is invalid or holds neither `workflow_run` nor
/// `workflow_job`.
pub fn parse_event(text: &str) -> Result<Event> {
    let p: Payload = serde_json::from_str(text).map_err(|e| Error::parse("event payload", e))?;
    let action = p.action.unwrap_or_default();
    let default_branch = p.repository.and_then(|r| r.default_branch);
    match (p.workflow_run, p.workflow_job) {
        (Some(run), _) => Ok(Event::WorkflowRun {
            action,
            run: Box::new(run),
            default_branch,
        }),
        (None, Some(job)) => Ok(Event::WorkflowJob {
            action,
            job: Box::new(job),
            default_branch,
        }),
        (None, None) => Err(Error::parse(
            "event payload",
            "expected a `workflow_run` or `workflow_job` object",
        )),
    }
}

/// A [`RunSource`] over one event payload.
#[derive(Debug, Clone)]
pub struct EventSource {
    event: Event,
}

impl EventSource {
    /// Wraps a parsed event.
    pub fn new(event: Event) -> Self {
        Self { event }
    }

    /// Reads the payload at `$GITHUB_EVENT_PATH`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] when the variable is unset, [`ErrorKind::Io`] when the file
    /// cannot be read, [`ErrorKind::Parse`] when it is not a supported payload.
    pub fn from_env() -> Result<Self> {
        let path = std::env::var("GITHUB_EVENT_PATH").map_err(|_| {
            Error::invalid(
                "GITHUB_EVENT_PATH",
                "expected the path of the event payload",
            )
        })?;
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Error::new(ErrorKind::Io {
                path: path.clone(),
                detail: e.to_string(),
            })
        })?;
        parse_event(&text).map(Self::new)
    }

    /// The event.
    pub fn event(&self) -> &Event {
        &self.event
    }
}

#[async_trait::async_trait]
impl RunSource for EventSource {
    async fn runs(&self, query: &RunQuery) -> Result<RunPage> {
        match &self.event {
            Event::WorkflowRun { run, .. } => Ok(page_of(std::slice::from_ref(run), query)),
            Event::WorkflowJob { .. } => Ok(RunPage::default()),
        }
    }

    async fn jobs(&self, run: RunId) -> Result<Vec<Job>> {
        match &self.event {
            Event::WorkflowJob { job, .. } if job.run_id == run => Ok(vec![(**job).clone()]),
            _ => Ok(Vec::new()),
        }
    }
}
