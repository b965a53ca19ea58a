//! Where and how traces are sent: [`OtlpConfig`].

use std::fmt;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use crate::error::{Error, Result};

/// The OTLP/HTTP path of traces under a collector's base URL.
pub const TRACES_PATH: &str = "/v1/traces";

/// The exporter's settings. Header values are secrets: `Debug` prints their names only.
#[derive(Clone)]
pub struct OtlpConfig {
    pub(crate) traces_url: Url,
    pub(crate) headers: Vec<(String, SecretString)>,
    pub(crate) timeout: Duration,
    pub(crate) max_retries: u32,
    pub(crate) max_retry_after: Duration,
    pub(crate) max_runs_per_request: usize,
    pub(crate) max_spans_per_request: usize,
    pub(crate) service_name: String,
}

impl fmt::Debug for OtlpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|(k, _)| format!("{k}: [redacted]"))
            .collect();
        f.debug_struct("OtlpConfig")
            .field("traces_url", &self.describe())
            .field("headers", &headers)
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("max_retry_after", &self.max_retry_after)
            .field("max_runs_per_request", &self.max_runs_per_request)
            .field("max_spans_per_request", &self.max_spans_per_request)
            .field("service_name", &self.service_name)
            .finish()
    }
}

impl OtlpConfig {
    /// Traces go to `endpoint`: a collector's base URL (`http://localhost:4318`, to which
    /// `/v1/traces` is appended, as for `OTEL_EXPORTER_OTLP_ENDPOINT`), or the full traces URL
    /// when its path already ends in `/v1/traces`. Defaults: 10 s timeout per attempt, 3
    /// retries, waits asked by `Retry-After` honoured up to 30 s, at most 50 runs and 5,000
    /// spans per request, `service.name` `flow-telemetry`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`](crate::ErrorKind::InvalidArgument) naming `otlp endpoint`
    /// when it is not an `http` or `https` URL, or carries credentials (`user:password@`:
    /// they belong in a header, which is kept secret).
    pub fn new(endpoint: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::invalid(
                "otlp endpoint",
                format!("expected an http(s) URL such as http://localhost:4318, {why}"),
            )
        };
        let mut url = Url::parse(endpoint.trim())
            .map_err(|e| bad(&format!("got a URL that does not parse ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
            return Err(bad(&format!("got scheme `{}`", url.scheme())));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad(
                "without credentials: give them as a header (`Authorization=…`)",
            ));
        }
        if !url.path().trim_end_matches('/').ends_with(TRACES_PATH) {
            let path = format!("{}{TRACES_PATH}", url.path().trim_end_matches('/'));
            url.set_path(&path);
        }
        Ok(Self {
            traces_url: url,
            headers: Vec::new(),
            timeout: Duration::from_secs(10),
            max_retries: 3,
            max_retry_after: Duration::from_secs(30),
            max_runs_per_request: 50,
            max_spans_per_request: 5_000,
            service_name: "flow-telemetry".to_owned(),
        })
    }

    /// The URL requests are posted to, without credentials or query: for logs and reports.
    pub fn describe(&self) -> String {
        let u = &self.traces_url;
        let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
        format!(
            "{}://{}{port}{}",
            u.scheme(),
            u.host_str().unwrap_or(""),
            u.path()
        )
    }

    /// Adds the header `name: value` to every request (an API key, `Authorization`).
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: SecretString) -> Self {
        self.headers.push((name.into(), value));
        self
    }

    /// Adds the headers of `text`: `name=value` pairs separated by commas, as
    /// `OTEL_EXPORTER_OTLP_HEADERS` spells them (values percent-decoded).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`](crate::ErrorKind::InvalidArgument) naming `otlp header`
    /// for a pair without `=` or with an empty name (the value is never quoted).
    pub fn with_headers_text(mut self, text: &str) -> Result<Self> {
        for (n, pair) in text
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .enumerate()
        {
            // The pair may be a bare secret: it is never quoted.
            let Some((name, value)) = pair.split_once('=') else {
                return Err(Error::invalid(
                    "otlp header",
                    format!(
                        "expected name=value pairs separated by commas; pair {} has no `=`",
                        n + 1
                    ),
                ));
            };
            let name = name.trim();
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            {
                return Err(Error::invalid(
                    "otlp header",
                    format!(
                        "expected a header name of letters, digits, `-`, `_`, `.`; got `{name}`"
                    ),
                ));
            }
            let value: String = percent_decode(value.trim());
            self.headers
                .push((name.to_owned(), SecretString::from(value)));
        }
        Ok(self)
    }

    /// Each HTTP attempt's timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Retries of a 429, 502, 503, 504 or a failed connection before the batch is given up.
    #[must_use]
    pub fn with_max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// The longest `Retry-After` wait honoured; longer asks wait this long.
    #[must_use]
    pub fn with_max_retry_after(mut self, wait: Duration) -> Self {
        self.max_retry_after = wait;
        self
    }

    /// At most `runs` runs and `spans` spans per request (a run larger than `spans` goes
    /// alone); both at least 1.
    #[must_use]
    pub fn with_batch_limits(mut self, runs: usize, spans: usize) -> Self {
        self.max_runs_per_request = runs.max(1);
        self.max_spans_per_request = spans.max(1);
        self
    }

    /// The resource's `service.name`.
    #[must_use]
    pub fn with_service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = name.into();
        self
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            )
        {
            out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use secrecy::ExposeSecret as _;

    use super::*;

    #[test]
    fn the_traces_path_is_appended_once() {
        let c = OtlpConfig::new("http://localhost:4318").unwrap();
        assert_eq!(c.traces_url.as_str(), "http://localhost:4318/v1/traces");
        let c = OtlpConfig::new("https://otel.example/base/").unwrap();
        assert_eq!(c.traces_url.as_str(), "https://otel.example/base/v1/traces");
        let c = OtlpConfig::new("http://c:4318/v1/traces").unwrap();
        assert_eq!(c.traces_url.as_str(), "http://c:4318/v1/traces");
    }

    #[test]
    fn a_bad_endpoint_names_the_setting() {
        for bad in ["localhost:4318", "ftp://x", "not a url"] {
            let e = OtlpConfig::new(bad).unwrap_err();
            assert!(e.to_string().contains("otlp endpoint"), "{e}");
        }
    }

    #[test]
    fn headers_parse_and_never_print() {
        assert!(OtlpConfig::new("https://user:pw@otel.example/").is_err());
        let c = OtlpConfig::new("https://otel.example/?token=abc")
            .unwrap()
            .with_headers_text("Authorization=Bearer%20s3cret, x-team = t0ken")
            .unwrap();
        assert_eq!(c.headers.len(), 2);
        assert_eq!(c.headers[0].1.expose_secret(), "Bearer s3cret");
        assert_eq!(c.headers[1].0, "x-team");
        let debug = format!("{c:?}");
        for secret in ["s3cret", "t0ken", "pw", "abc"] {
            assert!(!debug.contains(secret), "{debug}");
        }
        assert!(debug.contains("Authorization: [redacted]"), "{debug}");
        let e = OtlpConfig::new("http://c")
            .unwrap()
            .with_headers_text("justsecretvalue")
            .unwrap_err();
        assert!(e.to_string().contains("otlp header"), "{e}");
        assert!(!e.to_string().contains("justsecret"), "{e}");
    }
}
