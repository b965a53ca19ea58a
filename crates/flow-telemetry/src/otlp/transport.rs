//! OTLP/HTTP: one protobuf `ExportTraceServiceRequest` per POST, retried on the statuses the
//! OTLP specification calls retryable (429, 502, 503, 504) and on failed connections, waiting
//! what `Retry-After` asks (capped) or an exponential back-off.

use std::time::{Duration, SystemTime};

use http::HeaderMap;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message as _;
use secrecy::ExposeSecret as _;

use super::OtlpConfig;
use crate::time::Timing;

/// Waits between retries without a `Retry-After`: full jitter under 0.5 s, 1 s, 2 s, ... 30 s.
const BACKOFF: flow_orchestrator_core::Backoff = flow_orchestrator_core::Backoff {
    base: Duration::from_millis(500),
    max: Duration::from_secs(30),
};

/// What one delivered request came back with.
#[derive(Debug, Default)]
pub(crate) struct Delivered {
    /// HTTP attempts made (1 + retries).
    pub(crate) attempts: u32,
    /// Spans the collector said it rejected (`partial_success`).
    pub(crate) rejected_spans: u64,
    /// The collector's message about them.
    pub(crate) message: Option<String>,
}

/// Why a request was given up.
#[derive(Debug)]
pub(crate) struct Failed {
    pub(crate) attempts: u32,
    pub(crate) reason: String,
}

/// The statuses worth retrying (OTLP/HTTP "Retryable response codes").
fn retryable(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

/// The wait `Retry-After` asks for (flow-orchestrator-core's parser: seconds, an HTTP date, or
/// `retry-after-ms`).
fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    flow_orchestrator_core::retry_after(|name| headers.get(name)?.to_str().ok(), now)
}

/// An error and its causes, `: `-separated ("error sending request: connection refused").
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

/// Posts `request` to the configured URL until it is delivered or given up.
pub(crate) async fn send(
    client: &reqwest::Client,
    config: &OtlpConfig,
    timing: &Timing,
    request: &ExportTraceServiceRequest,
) -> Result<Delivered, Failed> {
    let body = bytes::Bytes::from(request.encode_to_vec());
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let mut req = client
            .post(config.traces_url.clone())
            .header(http::header::CONTENT_TYPE, "application/x-protobuf")
            .body(body.clone());
        for (name, value) in &config.headers {
            req = req.header(name.as_str(), value.expose_secret());
        }
        let (reason, wait) = match req.send().await {
            Ok(resp) if resp.status().is_success() => {
                let bytes = resp.bytes().await.unwrap_or_default();
                let mut out = Delivered {
                    attempts,
                    ..Delivered::default()
                };
                // An empty or undecodable body is a full success: the status says so.
                if let Ok(r) = ExportTraceServiceResponse::decode(bytes)
                    && let Some(p) = r.partial_success
                {
                    out.rejected_spans = u64::try_from(p.rejected_spans).unwrap_or(0);
                    out.message = Some(p.error_message).filter(|m| !m.is_empty());
                }
                return Ok(out);
            }
            Ok(resp) => {
                let status = resp.status().as_u16();
                let now = SystemTime::UNIX_EPOCH
                    + Duration::from_millis(u64::try_from(timing.clock.now_ms()).unwrap_or(0));
                let asked = retry_after(resp.headers(), now);
                if !retryable(status) {
                    // The collector's words, short: a Status message, never our headers.
                    let text = resp.text().await.unwrap_or_default();
                    let text: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
                    return Err(Failed {
                        attempts,
                        reason: format!("{} answered {status}: {text}", config.describe()),
                    });
                }
                let wait = asked.map(|a| a.min(config.max_retry_after));
                (format!("{} answered {status}", config.describe()), wait)
            }
            // Without the URL: its query may carry credentials.
            Err(e) => (
                format!("{}: {}", config.describe(), chain(&e.without_url())),
                None,
            ),
        };
        if attempts > config.max_retries {
            return Err(Failed {
                attempts,
                reason: format!("{reason} (gave up after {attempts} attempts)"),
            });
        }
        let wait = wait.unwrap_or_else(|| BACKOFF.delay(attempts, timing.jitter.as_ref()));
        tracing::debug!(target: "flow.otlp", %reason, wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX), "otlp export retried");
        timing.sleeper.sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::RETRY_AFTER, v.parse().unwrap());
        h
    }

    #[test]
    fn retry_after_is_read_from_the_response_headers() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            retry_after(&headers("7"), now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(retry_after(&headers("soon"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }
}
