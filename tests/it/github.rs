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
            state: Arc::default(),
        };
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
