//! Load generator for `flow serve`: signed webhook deliveries at a fixed rate, reporting the
//! sustained deliveries per second, the time to answer (p50, p99, max) and what was lost.
//!
//! ```sh
//! cargo run --release -p flow-examples --example serve_load -- \
//!     --target 127.0.0.1:8080 --secret "$SECRET" --rate 1000 --seconds 20 --connections 64
//! ```
//!
//! Open loop: delivery `i` is due at `start + i / rate` whatever happened to the others, and
//! its time to answer is measured from when it was due, not from when a connection got round
//! to sending it — so a stalled server shows up in the percentiles instead of slowing the
//! generator down (no coordinated omission). Each connection is an HTTP/1.1 keep-alive
//! connection, as GitHub's hookshot pool would hold.
//!
//! Each delivery is GitHub's real `workflow_job` `completed` payload (the MIT-licensed fixture
//! in `crates/flow-telemetry/tests/fixtures`) with its own job id and delivery id, spread over
//! `--repos` repositories, signed with `--secret` (`X-Hub-Signature-256`). `--baseline` sends
//! the same load to `GET /healthz` instead: the HTTP floor of the same server and machine, run
//! just before, so the webhook figures can be read against it.
//!
//! "Lost" counts deliveries not answered 2xx (refused, 503 from a full queue, timeouts,
//! resets). With `--accepted-metric NAME`, the generator also reads the server's `/metrics`
//! before and after and checks that the counter `NAME` (a name, summed over its labels, or
//! one series `name{label="value",…}` as exposed) grew by exactly the number of deliveries
//! answered 202.
#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use flow_telemetry::serve::WebhookSecret;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const JOB: &str =
    include_str!("../crates/flow-telemetry/tests/fixtures/workflow_job.completed.1.json");

struct Args {
    target: String,
    secret: String,
    rate: u64,
    seconds: u64,
    connections: usize,
    repos: u64,
    baseline: bool,
    accepted_metric: Option<String>,
}

fn args() -> Result<Args> {
    let mut a = Args {
        target: "127.0.0.1:8080".into(),
        secret: String::new(),
        rate: 1000,
        seconds: 20,
        connections: 64,
        repos: 100,
        baseline: false,
        accepted_metric: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().with_context(|| format!("{name} needs a value"));
        match flag.as_str() {
            "--target" => a.target = value("--target")?,
            "--secret" => a.secret = value("--secret")?,
            "--rate" => {
                a.rate = value("--rate")?
                    .parse()
                    .context("--rate: a number per second")?
            }
            "--seconds" => {
                a.seconds = value("--seconds")?.parse().context("--seconds: a number")?;
            }
            "--connections" => {
                a.connections = value("--connections")?
                    .parse()
                    .context("--connections: a number")?;
            }
            "--repos" => a.repos = value("--repos")?.parse().context("--repos: a number")?,
            "--baseline" => a.baseline = true,
            "--accepted-metric" => a.accepted_metric = Some(value("--accepted-metric")?),
            other => bail!(
                "unknown argument `{other}`; expected --target, --secret, --rate, --seconds, \
                 --connections, --repos, --baseline, --accepted-metric"
            ),
        }
    }
    if a.secret.is_empty() && !a.baseline {
        bail!("--secret: expected the webhook secret `flow serve` verifies with");
    }
    if a.rate == 0 || a.seconds == 0 || a.connections == 0 || a.repos == 0 {
        bail!("--rate, --seconds, --connections and --repos must be positive");
    }
    Ok(a)
}

/// One request, ready to write.
fn requests(a: &Args) -> Result<Vec<Vec<u8>>> {
    let total = a.rate * a.seconds;
    let host = &a.target;
    if a.baseline {
        let r = format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes();
        return Ok((0..total).map(|_| r.clone()).collect());
    }
    let secret = WebhookSecret::new(a.secret.clone().into())?;
    let mut template: serde_json::Value = serde_json::from_str(JOB)?;
    let mut out = Vec::with_capacity(usize::try_from(total)?);
    let salt = std::process::id();
    for i in 0..total {
        template["workflow_job"]["id"] = (1_000_000_000 + i).into();
        template["workflow_job"]["run_id"] = (2_000_000_000 + i / 4).into();
        template["repository"]["full_name"] = format!("octo-org/repo-{}", i % a.repos).into();
        template["repository"]["name"] = format!("repo-{}", i % a.repos).into();
        let body = serde_json::to_vec(&template)?;
        let sig = secret.sign(&body)?;
        let mut r = format!(
            "POST /webhook HTTP/1.1\r\nHost: {host}\r\nUser-Agent: GitHub-Hookshot/load\r\n\
             Content-Type: application/json\r\nX-GitHub-Event: workflow_job\r\n\
             X-GitHub-Delivery: {salt:08x}-0000-4000-8000-{i:012x}\r\nX-Hub-Signature-256: {sig}\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(&body);
        out.push(r);
    }
    Ok(out)
}

/// Reads one HTTP/1.1 response (Content-Length or chunked body); answers its status.
async fn read_response(r: &mut BufReader<TcpStream>, buf: &mut Vec<u8>) -> Result<u16> {
    buf.clear();
    // Head.
    loop {
        let mut byte = [0u8; 1024];
        let n = r.read(&mut byte).await?;
        if n == 0 {
            bail!("connection closed");
        }
        buf.extend_from_slice(&byte[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let status: u16 = head
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .context("bad status line")?;
            let mut rest = buf[end + 4..].to_vec();
            if let Some(len) = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
            {
                while rest.len() < len {
                    let n = r.read(&mut byte).await?;
                    if n == 0 {
                        bail!("connection closed in the body");
                    }
                    rest.extend_from_slice(&byte[..n]);
                }
            } else if head.contains("transfer-encoding: chunked") {
                while !rest.ends_with(b"0\r\n\r\n") {
                    let n = r.read(&mut byte).await?;
                    if n == 0 {
                        bail!("connection closed in the body");
                    }
                    rest.extend_from_slice(&byte[..n]);
                }
            }
            return Ok(status);
        }
    }
}

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
    errors: AtomicU64,
}

async fn metric_sum(target: &str, name: &str) -> Result<f64> {
    let mut s = TcpStream::connect(target).await?;
    s.write_all(format!("GET /metrics HTTP/1.0\r\nHost: {target}\r\n\r\n").as_bytes())
        .await?;
    let mut text = String::new();
    s.read_to_string(&mut text).await?;
    Ok(text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.starts_with(name) && matches!(l.as_bytes().get(name.len()), Some(b'{' | b' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    // Nearest rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1] as f64 / 1000.0
}

#[tokio::main]
async fn main() -> Result<()> {
    let a = args()?;
    let reqs = Arc::new(requests(&a)?);
    let before = match &a.accepted_metric {
        Some(m) => Some(metric_sum(&a.target, m).await?),
        None => None,
    };
    let next = Arc::new(AtomicU64::new(0));
    let tally = Arc::new(Tally::default());
    let interval_ns = 1_000_000_000 / a.rate;
    let start = Instant::now() + Duration::from_millis(200);
    let mut tasks = Vec::new();
    for _ in 0..a.connections {
        let (reqs, next, tally, target) =
            (reqs.clone(), next.clone(), tally.clone(), a.target.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat_us: Vec<u64> = Vec::new();
            let mut conn: Option<BufReader<TcpStream>> = None;
            let mut buf = Vec::with_capacity(4096);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(req) = reqs.get(usize::try_from(i).unwrap_or(usize::MAX)) else {
                    break;
                };
                let due = start + Duration::from_nanos(i * interval_ns);
                tokio::time::sleep_until(due.into()).await;
                let result: Result<u16> = async {
                    if conn.is_none() {
                        let s = TcpStream::connect(&target).await?;
                        s.set_nodelay(true)?;
                        conn = Some(BufReader::new(s));
                    }
                    let c = conn.as_mut().context("no connection")?;
                    c.get_mut().write_all(req).await?;
                    read_response(c, &mut buf).await
                }
                .await;
                let waited = due.elapsed();
                lat_us.push(u64::try_from(waited.as_micros()).unwrap_or(u64::MAX));
                match result {
                    Ok(s) if (200..300).contains(&s) => {
                        tally.ok.fetch_add(1, Ordering::Relaxed);
                        if s == 202 {
                            tally.accepted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Ok(_) => {
                        tally.refused.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        tally.errors.fetch_add(1, Ordering::Relaxed);
                        conn = None;
                    }
                }
            }
            lat_us
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await?);
    }
    let elapsed = start.elapsed().as_secs_f64();
    lat.sort_unstable();
    let sent = lat.len() as u64;
    let ok = tally.ok.load(Ordering::Relaxed);
    let accepted = tally.accepted.load(Ordering::Relaxed);
    let refused = tally.refused.load(Ordering::Relaxed);
    let errors = tally.errors.load(Ordering::Relaxed);
    println!(
        "{} {}: offered {} /s for {} s over {} connections",
        if a.baseline {
            "GET /healthz"
        } else {
            "POST /webhook"
        },
        a.target,
        a.rate,
        a.seconds,
        a.connections
    );
    println!(
        "sent {sent}, answered 2xx {ok} (202: {accepted}), refused {refused}, errors {errors}; \
         sustained {:.0} answered/s",
        ok as f64 / elapsed
    );
    println!(
        "time to answer (from when due): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&lat, 50.0),
        percentile(&lat, 99.0),
        percentile(&lat, 100.0)
    );
    let lost = sent - ok;
    println!("lost (not answered 2xx): {lost}");
    if let (Some(m), Some(before)) = (&a.accepted_metric, before) {
        // Give the server's counters a moment: they are bumped before the answer, but the
        // last answers may still be in flight when the generator's clock stops.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let after = metric_sum(&a.target, m).await?;
        let grew = after - before;
        println!("server counter {m}: grew by {grew} (202 answers: {accepted})");
        if (grew - accepted as f64).abs() > 0.5 {
            bail!("the server counted {grew} accepted deliveries, the generator {accepted}");
        }
    }
    if lost > 0 {
        bail!("{lost} deliveries were not answered 2xx");
    }
    Ok(())
}
