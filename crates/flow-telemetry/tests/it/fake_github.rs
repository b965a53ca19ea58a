//! A small in-process fake of the GitHub REST endpoints the crate uses, served by wiremock
//! with GitHub's wire format: `Link` paging, `total_count`, ETags and 304s, the 1,000-result
//! cap of filtered listings.

use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use flow_telemetry::model::ts;
use serde_json::{Value, json};
use wiremock::{Request, Respond, ResponseTemplate};

use crate::fixture;

/// Shared list of runs, newest first.
#[derive(Clone, Default)]
pub(crate) struct Runs(pub(crate) Arc<Mutex<Vec<Value>>>);

impl Runs {
    /// Adds runs with ids `ids` (created one minute apart by id), with `conclusion`.
    pub(crate) fn add(&self, ids: impl IntoIterator<Item = u64>, conclusion: Option<&str>) {
        let template: Value = serde_json::from_str(&fixture("workflow-run.json")).unwrap();
        let mut v = self.0.lock().unwrap();
        for id in ids {
            let mut r = template.clone();
            // Keep the run's own fields; the nested repositories only make the fake slow.
            for k in ["repository", "head_repository", "head_commit"] {
                r.as_object_mut().unwrap().remove(k);
            }
            let created = 1_700_000_000_000i64 + id as i64 * 60_000;
            r["id"] = json!(id);
            r["run_number"] = json!(id);
            r["created_at"] = json!(ts::format_ms(created));
            r["run_started_at"] = json!(ts::format_ms(created + 5_000));
            r["updated_at"] = json!(ts::format_ms(created + 65_000));
            r["status"] = json!(if conclusion.is_some() {
                "completed"
            } else {
                "in_progress"
            });
            r["conclusion"] = json!(conclusion);
            r["html_url"] = json!(format!(
                "https://github.com/octo-org/octo-repo/actions/runs/{id}"
            ));
            v.push(r);
        }
        v.sort_by_key(|r| std::cmp::Reverse(r["id"].as_u64()));
    }

    /// Sets the conclusion of run `id` (completing it).
    pub(crate) fn complete(&self, id: u64, conclusion: &str) {
        let mut v = self.0.lock().unwrap();
        for r in v.iter_mut().filter(|r| r["id"] == json!(id)) {
            r["status"] = json!("completed");
            r["conclusion"] = json!(conclusion);
        }
    }
}

/// Serves `GET …/actions/runs` from [`Runs`].
pub(crate) struct ListRuns {
    pub(crate) runs: Runs,
    pub(crate) base: String,
}

fn query(req: &Request, key: &str) -> Option<String> {
    req.url
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

fn etag_of(s: &str) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    format!("W/\"{:016x}\"", h.finish())
}

impl Respond for ListRuns {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let all = self.runs.0.lock().unwrap().clone();
        let filtered: Vec<Value> = match query(req, "created").and_then(|c| {
            let (a, b) = c.split_once("..")?;
            Some((ts::parse_rfc3339_ms(a)?, ts::parse_rfc3339_ms(b)?))
        }) {
            Some((a, b)) => all
                .into_iter()
                .filter(|r| {
                    let t = ts::parse_rfc3339_ms(r["created_at"].as_str().unwrap()).unwrap();
                    t >= a && t <= b
                })
                .collect(),
            None => all,
        };
        let per: usize = query(req, "per_page")
            .and_then(|v| v.parse().ok())
            .unwrap_or(30);
        let page: usize = query(req, "page").and_then(|v| v.parse().ok()).unwrap_or(1);
        let capped = if query(req, "created").is_some() {
            filtered.len().min(1000)
        } else {
            filtered.len()
        };
        let start = (page - 1) * per;
        let items: Vec<Value> = filtered
            .iter()
            .take(capped)
            .skip(start)
            .take(per)
            .cloned()
            .collect();
        let body = json!({"total_count": filtered.len(), "workflow_runs": items}).to_string();
        let etag = etag_of(&format!("{}{body}", req.url));
        let mut t = ResponseTemplate::new(200)
            .insert_header("etag", etag.as_str())
            .insert_header("x-ratelimit-limit", "5000")
            .insert_header("x-ratelimit-remaining", "4999")
            .insert_header("x-ratelimit-reset", "1700003600")
            .insert_header("content-type", "application/json; charset=utf-8");
        if start + per < capped {
            let mut next = req.url.clone();
            let pairs: Vec<(String, String)> = req
                .url
                .query_pairs()
                .filter(|(k, _)| k != "page")
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            next.query_pairs_mut()
                .clear()
                .extend_pairs(pairs)
                .append_pair("page", &(page + 1).to_string());
            let next = format!(
                "{}{}?{}",
                self.base,
                next.path(),
                next.query().unwrap_or("")
            );
            t = t.insert_header(
                "link",
                format!("<{next}>; rel=\"next\", <{next}>; rel=\"last\"").as_str(),
            );
        }
        if req
            .headers
            .get("if-none-match")
            .and_then(|v| v.to_str().ok())
            == Some(etag.as_str())
        {
            return ResponseTemplate::new(304).insert_header("etag", etag.as_str());
        }
        t.set_body_raw(body.into_bytes(), "application/json")
    }
}

/// State of the fake issue tracker.
#[derive(Default)]
pub(crate) struct IssueState {
    pub(crate) issues: Vec<Value>,
    pub(crate) labels: Vec<String>,
    pub(crate) comments: Vec<(u64, String)>,
    pub(crate) created: u32,
    /// When set, the next create also inserts this competitor issue first (another monitor).
    pub(crate) competitor: Option<String>,
    /// Delay of list answers, to let two monitors interleave.
    pub(crate) list_delay_ms: u64,
}

impl IssueState {
    pub(crate) fn open_with(&self, needle: &str) -> Vec<u64> {
        self.issues
            .iter()
            .filter(|i| i["state"] == "open" && i["body"].as_str().unwrap_or("").contains(needle))
            .map(|i| i["number"].as_u64().unwrap())
            .collect()
    }

    fn insert(&mut self, title: &str, body: &str, labels: &[Value]) -> Value {
        let mut issue: Value = serde_json::from_str(&fixture("issue.json")).unwrap();
        let number = self.issues.len() as u64 + 1;
        issue["number"] = json!(number);
        issue["title"] = json!(title);
        issue["body"] = json!(body);
        issue["state"] = json!("open");
        issue["pull_request"] = Value::Null;
        issue["labels"] = json!(
            labels
                .iter()
                .map(|l| json!({"name": l}))
                .collect::<Vec<_>>()
        );
        self.issues.push(issue.clone());
        issue
    }
}

/// Serves the issues and labels endpoints from an [`IssueState`].
pub(crate) struct Issues(pub(crate) Arc<Mutex<IssueState>>);

impl Respond for Issues {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut st = self.0.lock().unwrap();
        let path = req
            .url
            .path()
            .trim_start_matches("/repos/octo-org/octo-repo/")
            .to_string();
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let parts: Vec<&str> = path.split('/').collect();
        match (req.method.as_str(), parts.as_slice()) {
            ("GET", ["issues"]) => {
                let label = query(req, "labels").unwrap_or_default();
                let items: Vec<Value> = st
                    .issues
                    .iter()
                    .filter(|i| i["state"] == "open")
                    .filter(|i| {
                        i["labels"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|l| l["name"] == json!(label))
                    })
                    .cloned()
                    .collect();
                ResponseTemplate::new(200)
                    .set_body_json(items)
                    .set_delay(std::time::Duration::from_millis(st.list_delay_ms))
            }
            ("POST", ["issues"]) => {
                st.created += 1;
                if let Some(competitor) = st.competitor.take() {
                    st.insert("competitor", &competitor, &[json!("flow-telemetry")]);
                }
                let labels: Vec<Value> = body["labels"].as_array().cloned().unwrap_or_default();
                let labels: Vec<Value> =
                    labels.iter().map(|l| json!(l.as_str().unwrap())).collect();
                let issue = st.insert(
                    body["title"].as_str().unwrap(),
                    body["body"].as_str().unwrap(),
                    &labels.iter().map(|l| json!(l)).collect::<Vec<_>>(),
                );
                // Labels of the created issue as names.
                let n = issue["number"].as_u64().unwrap() as usize;
                st.issues[n - 1]["labels"] = json!(
                    labels
                        .iter()
                        .map(|l| json!({"name": l}))
                        .collect::<Vec<_>>()
                );
                ResponseTemplate::new(201).set_body_json(&st.issues[n - 1])
            }
            ("GET", ["issues", n, "comments"]) => {
                let n: u64 = n.parse().unwrap();
                let items: Vec<Value> = st
                    .comments
                    .iter()
                    .filter(|(i, _)| *i == n)
                    .map(|(_, b)| json!({"body": b}))
                    .collect();
                ResponseTemplate::new(200).set_body_json(items)
            }
            ("POST", ["issues", n, "comments"]) => {
                let n: u64 = n.parse().unwrap();
                st.comments
                    .push((n, body["body"].as_str().unwrap().to_string()));
                let mut c: Value = serde_json::from_str(&fixture("issue-comment.json")).unwrap();
                c["body"] = body["body"].clone();
                ResponseTemplate::new(201).set_body_json(c)
            }
            ("PATCH", ["issues", n]) => {
                let n: usize = n.parse().unwrap();
                st.issues[n - 1]["state"] = body["state"].clone();
                st.issues[n - 1]["state_reason"] = body["state_reason"].clone();
                ResponseTemplate::new(200).set_body_json(&st.issues[n - 1])
            }
            ("GET", ["labels", name]) => {
                if st.labels.iter().any(|l| l == name) {
                    let mut l: Value = serde_json::from_str(&fixture("label.json")).unwrap();
                    l["name"] = json!(name);
                    ResponseTemplate::new(200).set_body_json(l)
                } else {
                    ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"}))
                }
            }
            ("POST", ["labels"]) => {
                st.labels.push(body["name"].as_str().unwrap().to_string());
                let mut l: Value = serde_json::from_str(&fixture("label.json")).unwrap();
                l["name"] = body["name"].clone();
                ResponseTemplate::new(201).set_body_json(l)
            }
            _ => ResponseTemplate::new(404)
                .set_body_json(json!({"message": format!("fake: no route {} {path}", req.method)})),
        }
    }
}

/// Serves the inner response after a delay in milliseconds, so that two monitors interleave.
pub(crate) struct Delayed<R>(pub(crate) R, pub(crate) u64);

impl<R: Respond> Respond for Delayed<R> {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        self.0
            .respond(req)
            .set_delay(std::time::Duration::from_millis(self.1))
    }
}

/// The repository every stateful test drives.
pub(crate) const REPO: &str = "octo-org/octo-repo";

/// A fake `octo-org/octo-repo` mounted on a wiremock server: its runs (listed per repository
/// or per workflow, answered after `list_delay_ms`), its workflows, no jobs, and the issue
/// tracker.
pub(crate) struct FakeRepo {
    pub(crate) runs: Runs,
    pub(crate) issues: Arc<Mutex<IssueState>>,
}

impl FakeRepo {
    /// Mounts the repository on `server`; `workflows` is the `workflows` array of
    /// `GET …/actions/workflows`.
    pub(crate) async fn mount(
        server: &wiremock::MockServer,
        list_delay_ms: u64,
        workflows: Value,
    ) -> Self {
        use wiremock::Mock;
        use wiremock::matchers::{method, path, path_regex};
        let runs = Runs::default();
        Mock::given(path_regex(format!(
            "^/repos/{REPO}/actions/(workflows/[^/]+/)?runs$"
        )))
        .respond_with(Delayed(
            ListRuns {
                runs: runs.clone(),
                base: server.uri(),
            },
            list_delay_ms,
        ))
        .mount(server)
        .await;
        let total = workflows.as_array().map_or(0, Vec::len);
        Mock::given(method("GET"))
            .and(path(format!("/repos/{REPO}/actions/workflows")))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"total_count": total, "workflows": workflows})),
            )
            .mount(server)
            .await;
        Mock::given(path_regex(format!(
            "^/repos/{REPO}/actions/runs/[0-9]+/jobs"
        )))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"total_count": 0, "jobs": []})),
        )
        .mount(server)
        .await;
        let issues = Arc::new(Mutex::new(IssueState::default()));
        Mock::given(path_regex(format!("^/repos/{REPO}/(issues|labels)")))
            .respond_with(Issues(issues.clone()))
            .mount(server)
            .await;
        Self { runs, issues }
    }
}
