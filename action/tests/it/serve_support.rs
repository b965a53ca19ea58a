//! What the `flow serve` acceptance tests share: real processes (`flow serve`, `prometheus`)
//! on free loopback ports, a minimal HTTP/1.0 client, and signed deliveries built from the
//! real webhook payloads (`crates/flow-telemetry/tests/fixtures`, MIT, GitHub: see `NOTICE.md`
//! there) with run objects in the shape the fake GitHub lists.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use flow_telemetry::serve::WebhookSecret;
use serde_json::{Value, json};

use crate::telemetry_fixture;

/// The secret every test webhook is signed with.
pub(crate) const SECRET: &str = "it-webhook-secret";

/// A free loopback port.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An HTTP answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: String,
}

/// One HTTP/1.0 request (the server closes the connection and sends no chunked body).
pub(crate) fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<Answer> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut req = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok(Answer {
        status,
        body: body.to_owned(),
    })
}

/// Waits until `port` answers `GET path` with 200.
pub(crate) fn wait_ready(port: u16, path: &str, within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(a) = http(port, "GET", path, &[], b"")
            && a.status == 200
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not answer GET {path} with 200 within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A delivery: event name, id, body, signature header.
#[derive(Debug, Clone)]
pub(crate) struct Signed {
    pub(crate) event: &'static str,
    pub(crate) id: String,
    pub(crate) body: Vec<u8>,
    pub(crate) signature: String,
}

impl Signed {
    /// Sends it to a `flow serve` on `port`, as GitHub does.
    pub(crate) fn send(&self, port: u16) -> std::io::Result<Answer> {
        http(
            port,
            "POST",
            "/webhook",
            &[
                ("Content-Type", "application/json".into()),
                ("User-Agent", "GitHub-Hookshot/it".into()),
                ("X-GitHub-Event", self.event.into()),
                ("X-GitHub-Delivery", self.id.clone()),
                ("X-Hub-Signature-256", self.signature.clone()),
            ],
            &self.body,
        )
    }
}

/// Signs `body` as GitHub would with [`SECRET`].
pub(crate) fn sign(body: &[u8]) -> String {
    WebhookSecret::new(SECRET.to_owned().into())
        .unwrap()
        .sign(body)
        .unwrap()
}

/// A `workflow_run` `completed` delivery for `run` (a run object as the REST API lists it),
/// in the envelope of GitHub's real payload.
pub(crate) fn run_delivery(run: &Value, id: &str) -> Signed {
    let mut envelope: Value =
        serde_json::from_str(&telemetry_fixture("workflow_run.completed.1.json")).unwrap();
    envelope["action"] = json!("completed");
    envelope["workflow_run"] = run.clone();
    envelope["repository"]["full_name"] = json!("octo-org/octo-repo");
    envelope["repository"]["default_branch"] = json!("main");
    let body = serde_json::to_vec(&envelope).unwrap();
    Signed {
        event: "workflow_run",
        id: id.to_owned(),
        signature: sign(&body),
        body,
    }
}

/// Where a binary is: the variable `var` when set (it must be a file), else `name` on `PATH`;
/// else an error saying how to install Debian's `package`.
pub(crate) fn find_binary(
    var: &str,
    value: Option<OsString>,
    path: Option<&OsString>,
    name: &str,
    package: &str,
) -> Result<PathBuf, String> {
    if let Some(p) = value.filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!(
                "{var}={} is not a file; point it at a {name} binary (apt-get install {package}) \
                 or unset it to search PATH",
                p.display()
            ))
        };
    }
    path.iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "{name} not found: this test needs the real server. Install it (apt-get install \
                 {package}), put it on PATH, or set {var} to its path; `bash scripts/test` does \
                 this for you"
            )
        })
}

/// A child process killed (SIGKILL) on drop, its stderr kept in a file for failure messages.
pub(crate) struct Process {
    pub(crate) child: Option<Child>,
    pub(crate) log: PathBuf,
    pub(crate) name: String,
}

impl Process {
    /// Spawns `cmd`, stdout and stderr to `log`.
    pub(crate) fn spawn(name: &str, mut cmd: Command, log: PathBuf) -> Self {
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Self {
            child: Some(child),
            log,
            name: name.to_owned(),
        }
    }

    /// Its output so far.
    pub(crate) fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, as the kernel's OOM killer or a lost node would: no chance to clean up.
    pub(crate) fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits up to `within` for the exit; answers the exit code.
    pub(crate) fn terminate(&mut self, within: Duration) -> Option<i32> {
        let mut c = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(s)) = c.try_wait() {
                return s.code();
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                panic!("{} did not exit within {within:?} of SIGTERM", self.name);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A real Prometheus server scraping `targets` (`host:port` serving `/metrics`) every second.
pub(crate) struct Prometheus {
    pub(crate) port: u16,
    pub(crate) process: Process,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts it (failing the test, with instructions, when `prometheus` is missing).
    pub(crate) fn start(targets: &[String]) -> Self {
        let binary = find_binary(
            "FLOW_PROMETHEUS",
            std::env::var_os("FLOW_PROMETHEUS"),
            std::env::var_os("PATH").as_ref(),
            "prometheus",
            "prometheus",
        )
        .unwrap_or_else(|m| panic!("{m}"));
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        let list: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: flow\n    scrape_interval: 1s\n    \
                 metrics_path: /metrics\n    static_configs:\n      - targets: [{}]\n",
                list.join(", ")
            ),
        )
        .unwrap();
        let port = free_port();
        let mut cmd = Command::new(binary);
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn");
        let process = Process::spawn("prometheus", cmd, dir.path().join("prometheus.log"));
        let p = Self {
            port,
            process,
            _dir: dir,
        };
        wait_ready(p.port, "/-/ready", Duration::from_secs(60), "prometheus");
        p
    }

    /// `GET /api/v1/query?query=…`: the `data.result` vector.
    pub(crate) fn query(&self, expr: &str) -> Vec<Value> {
        let q: String = url_encode(expr);
        let a = http(
            self.port,
            "GET",
            &format!("/api/v1/query?query={q}"),
            &[],
            b"",
        )
        .unwrap_or_else(|e| panic!("prometheus query: {e}"));
        let v: Value = serde_json::from_str(&a.body)
            .unwrap_or_else(|e| panic!("prometheus answered {} {}: {e}", a.status, a.body));
        assert_eq!(v["status"], "success", "{expr}: {v}");
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// Polls `expr` until `accept` likes its result, up to `within`; answers the last result.
    pub(crate) fn query_until(
        &self,
        expr: &str,
        within: Duration,
        accept: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            let r = self.query(expr);
            if accept(&r) || Instant::now() > deadline {
                return r;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn a_missing_prometheus_is_a_clear_failure_not_a_skip() {
    let e = find_binary(
        "FLOW_PROMETHEUS",
        None,
        Some(&OsString::from("/nonexistent-dir")),
        "prometheus",
        "prometheus",
    )
    .unwrap_err();
    assert!(
        e.contains("prometheus not found") && e.contains("apt-get install prometheus"),
        "{e}"
    );
    let e = find_binary(
        "FLOW_PROMETHEUS",
        Some(OsString::from("/nonexistent/prometheus")),
        None,
        "prometheus",
        "prometheus",
    )
    .unwrap_err();
    assert!(e.contains("is not a file"), "{e}");
}

#[test]
fn the_prometheus_harness_scrapes_a_metrics_endpoint_and_answers_queries() {
    // A stand-in /metrics (the real one is `flow serve`'s, in its own tests): proves the
    // config, the scrape and the query path work before anything depends on them.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            let mut s = s;
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let body = "# TYPE it_up gauge\nit_up{who=\"harness\"} 42\n";
            let _ = write!(
                s,
                "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let p = Prometheus::start(&[format!("127.0.0.1:{port}")]);
    let r = p.query_until("it_up", Duration::from_secs(30), |r| !r.is_empty());
    assert_eq!(r.len(), 1, "{r:?}\n{}", p.process.output());
    assert_eq!(r[0]["metric"]["who"], "harness");
    assert_eq!(r[0]["value"][1], "42");
}
