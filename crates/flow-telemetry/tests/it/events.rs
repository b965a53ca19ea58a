//! Real REST examples and webhook payloads parse into the model.

use flow_telemetry::model::{Conclusion, RunStatus};
use flow_telemetry::source::event::{Event, EventSource, parse_event};
use flow_telemetry::source::file::{parse_jobs, parse_runs};
use flow_telemetry::{RunId, RunQuery, RunSource};

use crate::fixture;

#[test]
fn every_webhook_payload_parses() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut runs = 0;
    let mut jobs = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if !name.starts_with("workflow_") {
            continue;
        }
        match parse_event(&fixture(&name)).unwrap() {
            Event::WorkflowRun { action, run, .. } => {
                runs += 1;
                assert!(name.contains(&action), "{name}: action {action}");
                // Some real payloads have an empty name; the grouping key never is.
                assert!(run.id.0 > 0 && !run.workflow_key().is_empty(), "{name}");
            }
            Event::WorkflowJob { action, job, .. } => {
                jobs += 1;
                assert!(name.contains(&action), "{name}: action {action}");
                assert!(job.run_id.0 > 0, "{name}");
            }
            _ => unreachable!(),
        }
    }
    assert_eq!((runs, jobs), (5, 8));
}

#[test]
fn completed_workflow_run_has_times_and_conclusion() {
    let Event::WorkflowRun { run, .. } =
        parse_event(&fixture("workflow_run.completed.1.json")).unwrap()
    else {
        panic!("expected a workflow_run");
    };
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.conclusion, Some(Conclusion::Success));
    assert_eq!(
        run.duration_ms(),
        Some(0),
        "started and updated at the same second"
    );
    assert_eq!(run.queue_ms(), Some(25_000));
}

#[test]
fn real_payload_quirks_are_tolerated() {
    // A `completed` action whose run still says `queued` with a null conclusion.
    let Event::WorkflowRun { run, .. } =
        parse_event(&fixture("workflow_run.completed.0.json")).unwrap()
    else {
        panic!("expected a workflow_run");
    };
    assert_eq!(run.status, RunStatus::Queued);
    assert_eq!(run.duration_ms(), None);
    // Completed, but `run_started_at` is after `updated_at`: no negative duration.
    let Event::WorkflowRun { run, .. } =
        parse_event(&fixture("workflow_run.requested.4.json")).unwrap()
    else {
        panic!("expected a workflow_run");
    };
    assert_eq!(run.conclusion, Some(Conclusion::ActionRequired));
    assert_eq!(run.duration_ms(), None);
}

#[test]
fn completed_job_steps_may_start_before_the_job() {
    let Event::WorkflowJob { job, .. } =
        parse_event(&fixture("workflow_job.completed.1.json")).unwrap()
    else {
        panic!("expected a workflow_job");
    };
    assert_eq!(job.conclusion, Some(Conclusion::Failure));
    assert!(!job.steps.is_empty());
    // In this real payload the steps are stamped minutes before the job's start.
    assert!(job.steps[0].started_at < job.started_at);
    assert!(
        job.steps
            .iter()
            .all(|s| s.duration_ms().is_none_or(|d| d >= 0))
    );
    assert!(job.duration_ms().unwrap() > 0);
    assert!(job.queue_ms().is_some());
}

#[test]
fn in_progress_and_queued_jobs_parse_with_nulls() {
    for name in [
        "workflow_job.in_progress.0.json",
        "workflow_job.queued.5.json",
        "workflow_job.waiting.7.json",
    ] {
        let Event::WorkflowJob { job, .. } = parse_event(&fixture(name)).unwrap() else {
            panic!("{name}");
        };
        assert_eq!(job.conclusion, None, "{name}");
        assert_eq!(job.duration_ms(), None, "{name}");
    }
}

#[test]
fn rest_pages_parse() {
    let runs = parse_runs(&fixture("workflow-run-paginated.json")).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].id, RunId(30_433_642));
    assert_eq!(runs[0].actor.as_deref(), Some("octocat"));
    assert_eq!(runs[0].status, RunStatus::Queued);
    let jobs = parse_jobs(&fixture("job-paginated.json")).unwrap();
    assert_eq!(jobs.len(), 1);
    assert!(!jobs[0].steps.is_empty());
    assert!(!jobs[0].labels.is_empty());
}

#[tokio::test]
async fn event_source_answers_with_its_run() {
    let src = EventSource::new(parse_event(&fixture("workflow_run.completed.1.json")).unwrap());
    let page = src.runs(&RunQuery::new()).await.unwrap();
    assert_eq!(page.runs.len(), 1);
    assert_eq!(page.next_page, None);
}
