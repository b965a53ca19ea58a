//! A local GitHub-shaped server: workflow runs and jobs, issues (list, create, comment,
//! update) and labels, answering in GitHub's wire format (the fixtures in
//! `tests/fixtures/github` are the templates) and keeping the issues it is told to create.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const OWNER: &str = "octo";
pub const REPO: &str = "hello";
pub const TOKEN: &str = "ghs_e2eTokenThatMustNotLeak";
/// The failing step of the failing runs.
pub const FAILING_STEP: &str = "cargo test --locked";

fn fixture(name: &str) -> Value {
    let path = format!("{}/fixtures/github/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn at(minutes: u64, seconds: u64) -> String {
    let total = minutes * 60 + seconds;
    format!(
        "2026-01-05T{:02}:{:02}:{:02}Z",
        total / 3600,
        total / 60 % 60,
        total % 60
    )
}

/// Run `i` of workflow `CI` (every 10 minutes, ~100 s long), as GitHub lists it.
fn run(i: u64, conclusion: &str) -> Value {
    let mut r = fixture("workflow-run.json");
    let id = 7_000 + i;
    let queue = 4 + i % 3;
    r["id"] = json!(id);
    r["name"] = json!("CI");
    r["path"] = json!(".github/workflows/ci.yml");
    r["workflow_id"] = json!(4242);
    r["run_number"] = json!(100 + i);
    r["head_sha"] = json!(format!("{i:040x}"));
    r["status"] = json!("completed");
    r["conclusion"] = json!(conclusion);
    r["created_at"] = json!(at(i * 10, 0));
    r["run_started_at"] = json!(at(i * 10, queue));
    r["updated_at"] = json!(at(i * 10, queue + 100 + i % 7));
    r["html_url"] = json!(format!(
        "https://github.com/{OWNER}/{REPO}/actions/runs/{id}"
    ));
    r
}

/// `healthy` successful runs, then a burst of `failing` failed ones; oldest first.
pub fn history(healthy: u64, failing: u64) -> Vec<Value> {
    (0..healthy + failing)
        .map(|i| run(i, if i < healthy { "success" } else { "failure" }))
        .collect()
}

/// The jobs of run `id`: `build` passed; `test` failed at [`FAILING_STEP`] when the run failed.
fn jobs(id: u64, failed: bool) -> Value {
    let mut page = fixture("job-paginated.json");
    let template = page["jobs"][0].clone();
    let mut build = template.clone();
    build["id"] = json!(id * 10 + 1);
    build["run_id"] = json!(id);
    build["name"] = json!("build");
    let mut test = template;
    test["id"] = json!(id * 10 + 2);
    test["run_id"] = json!(id);
    test["name"] = json!("test");
    // The check run's id is not the job's: it comes from `check_run_url`.
    test["check_run_url"] = json!(format!(
        "https://api.github.com/repos/{OWNER}/{REPO}/check-runs/{}",
        check_run_of(id)
    ));
    if failed {
        test["conclusion"] = json!("failure");
        let steps = test["steps"].as_array_mut().unwrap();
        let last = steps.len() - 1;
        steps[last]["name"] = json!(FAILING_STEP);
        steps[last]["conclusion"] = json!("failure");
    }
    page["total_count"] = json!(2);
    page["jobs"] = json!([build, test]);
    page
}

/// The check run of the `test` job of run `id`.
pub fn check_run_of(run: u64) -> u64 {
    run * 10 + 5
}

/// The log of a failing `test` job: the runner's format (timestamps, groups, ANSI colours).
pub fn failing_log(extra: &str) -> String {
    format!(
        "2026-01-05T07:00:00.1000000Z ##[group]Run actions/checkout@v4\n\
         2026-01-05T07:00:01.1000000Z Syncing repository: {OWNER}/{REPO}\n\
         2026-01-05T07:00:02.1000000Z ##[endgroup]\n\
         2026-01-05T07:00:03.1000000Z ##[group]Run {FAILING_STEP}\n\
         2026-01-05T07:00:03.2000000Z \x1b[36;1m{FAILING_STEP}\x1b[0m\n\
         2026-01-05T07:00:04.1000000Z ##[endgroup]\n\
         2026-01-05T07:00:05.1000000Z running 12 tests\n\
         2026-01-05T07:00:06.1000000Z {extra}\n\
         2026-01-05T07:00:07.1000000Z test parser::tests::parses_empty_input ... \x1b[31mFAILED\x1b[0m\n\
         2026-01-05T07:00:08.1000000Z thread 'parser::tests::parses_empty_input' panicked at src/parser.rs:42:9:\n\
         2026-01-05T07:00:09.1000000Z ##[error]Process completed with exit code 101.\n\
         2026-01-05T07:00:10.1000000Z Post job cleanup.\n"
    )
}

/// What the server saw and holds.
#[derive(Debug, Default)]
pub struct State {
    /// Issues, as GitHub would return them.
    pub issues: Vec<Value>,
    /// `(issue number, body)` of every comment.
    pub comments: Vec<(u64, String)>,
    /// Labels of the repository.
    pub labels: Vec<String>,
    /// Run ids whose jobs were listed.
    pub jobs_listed: Vec<u64>,
    /// `METHOD path` of every request.
    pub requests: Vec<String>,
    /// Requests without the token.
    pub unauthenticated: usize,
    /// The log of failing `test` jobs; `None` answers 404 (expired or deleted).
    pub log: Option<String>,
    /// The annotations of the failing `test` jobs' check runs.
    pub annotations: Vec<Value>,
    /// Log downloads from the signed URL, and how many of them carried the token.
    pub log_downloads: usize,
    /// Log downloads that carried the token (must stay 0: it is another host).
    pub log_downloads_with_token: usize,
    /// The server's base URL (the signed log links point there).
    pub base: String,
}

/// The fake GitHub; clone it to inspect its state.
#[derive(Clone)]
pub struct GitHub {
    runs: Arc<Vec<Value>>,
    pub state: Arc<Mutex<State>>,
}

impl GitHub {
    /// Starts a server serving `runs` (oldest first) for `octo/hello`.
    pub async fn start(runs: Vec<Value>) -> (MockServer, Self) {
        let server = MockServer::start().await;
        let gh = Self {
            runs: Arc::new(runs),
            state: Arc::new(Mutex::new(State {
                log: Some(failing_log("test lexer::tests::tokens ... ok")),
                ..State::default()
            })),
        };
        gh.state.lock().unwrap().base = server.uri();
        Mock::given(any())
            .respond_with(gh.clone())
            .mount(&server)
            .await;
        (server, gh)
    }

    /// Issues created so far.
    pub fn issues(&self) -> Vec<Value> {
        self.state.lock().unwrap().issues.clone()
    }

    /// Comments posted so far.
    pub fn comments(&self) -> Vec<(u64, String)> {
        self.state.lock().unwrap().comments.clone()
    }

    fn runs_page(&self) -> Value {
        let mut newest_first: Vec<Value> = self.runs.iter().cloned().collect();
        newest_first.reverse();
        json!({"total_count": newest_first.len(), "workflow_runs": newest_first})
    }

    fn failed(&self, id: u64) -> bool {
        self.runs
            .iter()
            .any(|r| r["id"] == json!(id) && r["conclusion"] == json!("failure"))
    }
}

fn not_found() -> ResponseTemplate {
    ResponseTemplate::new(404).set_body_json(json!({
        "message": "Not Found",
        "documentation_url": "https://docs.github.com/rest",
        "status": "404"
    }))
}

impl Respond for GitHub {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let repo = format!("/repos/{OWNER}/{REPO}");
        let path = req.url.path().to_owned();
        let verb = req.method.as_str().to_owned();
        let mut st = self.state.lock().unwrap();
        st.requests.push(format!("{verb} {path}"));
        let authed = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.ends_with(TOKEN));
        if let Some(job) = path.strip_prefix("/signed-logs/") {
            // The short-lived link GitHub redirects to: another host, no token expected.
            st.log_downloads += 1;
            if req.headers.contains_key("authorization") {
                st.log_downloads_with_token += 1;
            }
            return match (&st.log, job.parse::<u64>()) {
                (Some(log), Ok(_)) => ResponseTemplate::new(200)
                    .insert_header("content-type", "text/plain")
                    .set_body_string(log.clone()),
                _ => not_found(),
            };
        }
        if !authed {
            st.unauthenticated += 1;
        }
        let Some(rest) = path.strip_prefix(&repo) else {
            return not_found();
        };
        let segments: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        match (verb.as_str(), segments.as_slice()) {
            ("GET", ["actions", "runs"]) => ResponseTemplate::new(200)
                .insert_header("x-ratelimit-limit", "5000")
                .insert_header("x-ratelimit-remaining", "4990")
                .set_body_json(self.runs_page()),
            ("GET", ["actions", "runs", id]) => {
                let id: u64 = id.parse().unwrap_or_default();
                match self.runs.iter().find(|r| r["id"] == json!(id)) {
                    Some(r) => {
                        let mut r = r.clone();
                        r["head_commit"] = json!({
                            "id": r["head_sha"].clone(),
                            "tree_id": "d23f6eedb1e1b9610bbc754ddb5197bfe7271223",
                            "message": "Parse empty input as an empty document\n\nCloses nothing.",
                            "timestamp": r["created_at"].clone(),
                            "author": {"name": "Mona", "email": "mona@example.com"},
                            "committer": {"name": "Mona", "email": "mona@example.com"}
                        });
                        ResponseTemplate::new(200).set_body_json(r)
                    }
                    None => not_found(),
                }
            }
            ("GET", ["actions", "jobs", job, "logs"]) => {
                if st.log.is_none() {
                    return not_found();
                }
                ResponseTemplate::new(302).insert_header(
                    "location",
                    format!(
                        "{}/signed-logs/{job}?sig=e2e&se=2026-01-05T08%3A00%3A00Z",
                        st.base
                    ),
                )
            }
            ("GET", ["check-runs", id, "annotations"]) => {
                let id: u64 = id.parse().unwrap_or_default();
                let ours = self
                    .runs
                    .iter()
                    .any(|r| r["id"].as_u64().is_some_and(|run| check_run_of(run) == id));
                if ours {
                    ResponseTemplate::new(200).set_body_json(json!(st.annotations))
                } else {
                    not_found()
                }
            }
            ("GET", ["actions", "workflows", _, "runs"]) => {
                let mut green: Vec<Value> = self
                    .runs
                    .iter()
                    .filter(|r| r["conclusion"] == json!("success"))
                    .cloned()
                    .collect();
                green.reverse();
                green.truncate(20);
                ResponseTemplate::new(200)
                    .set_body_json(json!({"total_count": green.len(), "workflow_runs": green}))
            }
            ("GET", ["compare", range]) => {
                let (base, head) = range.split_once("...").unwrap_or_default();
                let commits: Vec<Value> = [
                    ("Parse empty input as an empty document", head),
                    ("Refactor the lexer", base),
                ]
                .iter()
                .map(|(m, sha)| json!({"sha": format!("{sha}"), "commit": {"message": m}}))
                .collect();
                ResponseTemplate::new(200).set_body_json(json!({
                    "status": "ahead", "ahead_by": 2, "behind_by": 0, "total_commits": 2,
                    "commits": commits,
                    "files": [
                        {"sha": "1", "filename": "src/lexer.rs", "status": "modified", "additions": 10, "deletions": 4, "changes": 14},
                        {"sha": "2", "filename": "src/parser.rs", "status": "modified", "additions": 30, "deletions": 2, "changes": 32}
                    ]
                }))
            }
            ("GET", ["actions", "runs", id, "jobs"]) => {
                let id: u64 = id.parse().unwrap();
                st.jobs_listed.push(id);
                ResponseTemplate::new(200).set_body_json(jobs(id, self.failed(id)))
            }
            ("GET", ["issues"]) => {
                let label = req
                    .url
                    .query_pairs()
                    .find(|(k, _)| k == "labels")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                let open: Vec<Value> = st
                    .issues
                    .iter()
                    .filter(|i| i["state"] == "open")
                    .filter(|i| {
                        label.is_empty()
                            || i["labels"]
                                .as_array()
                                .is_some_and(|ls| ls.iter().any(|l| l["name"] == json!(label)))
                    })
                    .cloned()
                    .collect();
                ResponseTemplate::new(200).set_body_json(open)
            }
            ("POST", ["issues"]) => {
                let number = st.issues.len() as u64 + 1;
                let mut issue = fixture("issue.json");
                let labels: Vec<Value> = body["labels"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|name| {
                        let mut label = fixture("label.json");
                        label["name"] = name.clone();
                        label
                    })
                    .collect();
                issue["id"] = json!(900 + number);
                issue["number"] = json!(number);
                issue["title"] = body["title"].clone();
                issue["body"] = body["body"].clone();
                issue["labels"] = json!(labels);
                issue["state"] = json!("open");
                issue["locked"] = json!(false);
                issue["pull_request"] = Value::Null;
                issue["html_url"] =
                    json!(format!("https://github.com/{OWNER}/{REPO}/issues/{number}"));
                st.issues.push(issue.clone());
                ResponseTemplate::new(201).set_body_json(issue)
            }
            ("POST", ["issues", n, "comments"]) => {
                let n: u64 = n.parse().unwrap();
                let text = body["body"].as_str().unwrap_or_default().to_owned();
                st.comments.push((n, text.clone()));
                let mut c = fixture("issue-comment.json");
                c["body"] = json!(text);
                ResponseTemplate::new(201).set_body_json(c)
            }
            ("PATCH", ["issues", n]) => {
                let n: u64 = n.parse().unwrap();
                let Some(issue) = st.issues.iter_mut().find(|i| i["number"] == json!(n)) else {
                    return not_found();
                };
                if let Some(s) = body.get("state") {
                    issue["state"] = s.clone();
                }
                ResponseTemplate::new(200).set_body_json(issue.clone())
            }
            ("GET", ["labels", name]) => {
                if st.labels.iter().any(|l| l == name) {
                    let mut l = fixture("label.json");
                    l["name"] = json!(name);
                    ResponseTemplate::new(200).set_body_json(l)
                } else {
                    not_found()
                }
            }
            ("POST", ["labels"]) => {
                let name = body["name"].as_str().unwrap_or_default().to_owned();
                st.labels.push(name.clone());
                let mut l = fixture("label.json");
                l["name"] = json!(name);
                ResponseTemplate::new(201).set_body_json(l)
            }
            _ => not_found(),
        }
    }
}
