//! GitHub webhook deliveries: the `X-Hub-Signature-256` check and the parse of what was sent.
//!
//! GitHub signs each delivery's body with the webhook secret (HMAC-SHA256) and sends
//! `sha256=` and the hex digest in `X-Hub-Signature-256`. [`WebhookSecret::verify`] compares
//! in constant time and tells a missing, a malformed and a wrong signature apart
//! ([`SignatureProblem`]); a delivery is parsed only after it verified.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::Sha256;

use crate::error::{Error, ErrorKind, Result};
use crate::model::Job;
use crate::source::event::{Event, parse_event};

/// Why a delivery's signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureProblem {
    /// No `X-Hub-Signature-256` header.
    #[error("missing `X-Hub-Signature-256` header")]
    Missing,
    /// The header is not `sha256=` and 64 hex digits.
    #[error("malformed `X-Hub-Signature-256` header: expected `sha256=` and 64 hex digits")]
    Malformed,
    /// Well formed, but not the body's signature under our secret.
    #[error("`X-Hub-Signature-256` does not match the body under the webhook secret")]
    Mismatch,
}

/// The webhook secret. Its `Debug` prints `[redacted]`; it is only read to compute a MAC.
#[derive(Clone)]
pub struct WebhookSecret(SecretString);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret([redacted])")
    }
}

impl WebhookSecret {
    /// Wraps the secret configured on the GitHub webhook.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] naming `webhook secret` when it is empty.
    pub fn new(secret: SecretString) -> Result<Self> {
        if secret.expose_secret().is_empty() {
            return Err(Error::invalid(
                "webhook secret",
                "expected a non-empty secret (the one set on the GitHub webhook)",
            ));
        }
        Ok(Self(secret))
    }

    fn mac(&self) -> Result<Hmac<Sha256>> {
        Hmac::<Sha256>::new_from_slice(self.0.expose_secret().as_bytes())
            .map_err(|_| Error::invalid("webhook secret", "not usable as an HMAC key"))
    }

    /// The `X-Hub-Signature-256` value GitHub would send for `body` (for tests and load
    /// generators).
    ///
    /// # Errors
    /// As [`WebhookSecret::new`].
    pub fn sign(&self, body: &[u8]) -> Result<String> {
        let mut mac = self.mac()?;
        mac.update(body);
        Ok(format!(
            "sha256={}",
            hex::encode(mac.finalize().into_bytes())
        ))
    }

    /// Checks `header` (the `X-Hub-Signature-256` value, `None` when absent) against `body`,
    /// in constant time.
    ///
    /// # Errors
    /// [`ErrorKind::Signature`] with the [`SignatureProblem`].
    pub fn verify(&self, body: &[u8], header: Option<&[u8]>) -> Result<()> {
        let fail = |p| Err(Error::new(ErrorKind::Signature(p)));
        let Some(header) = header else {
            return fail(SignatureProblem::Missing);
        };
        let Some(hex_digest) = header.trim_ascii().strip_prefix(b"sha256=") else {
            return fail(SignatureProblem::Malformed);
        };
        let mut expected = [0u8; 32];
        if hex_digest.len() != 64 || hex::decode_to_slice(hex_digest, &mut expected).is_err() {
            return fail(SignatureProblem::Malformed);
        }
        let mut mac = self.mac()?;
        mac.update(body);
        match mac.verify_slice(&expected) {
            Ok(()) => Ok(()),
            Err(_) => fail(SignatureProblem::Mismatch),
        }
    }
}

/// What a verified delivery asks for.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum WebhookEvent {
    /// `ping`, sent when the webhook is created: answer, do nothing.
    Ping,
    /// A `workflow_run` or `workflow_job` delivery.
    Workflow {
        /// `repository.full_name`, `owner/name`.
        repository: String,
        /// The run or job.
        event: Event,
        /// For a job: its workflow's name and branch (the job object has them, the job
        /// model keeps neither).
        job_context: Option<JobContext>,
    },
    /// Any other event (named): nothing to do.
    Ignored(String),
}

/// The workflow and branch of a `workflow_job` delivery.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JobContext {
    /// `workflow_job.workflow_name`.
    pub workflow: String,
    /// `workflow_job.head_branch`.
    pub branch: String,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    repository: Option<Repository>,
    #[serde(default)]
    workflow_job: Option<JobExtra>,
}

#[derive(Deserialize)]
struct Repository {
    full_name: String,
}

#[derive(Deserialize)]
struct JobExtra {
    #[serde(default)]
    workflow_name: Option<String>,
    #[serde(default)]
    head_branch: Option<String>,
}

/// Parses a verified delivery of the event named `event_name` (`X-GitHub-Event`).
///
/// # Errors
/// [`ErrorKind::Parse`] when a `workflow_run` or `workflow_job` body is not valid JSON, lacks
/// its object or `repository.full_name`, or is not UTF-8.
pub fn parse_delivery(event_name: &str, body: &[u8]) -> Result<WebhookEvent> {
    match event_name {
        "ping" => Ok(WebhookEvent::Ping),
        "workflow_run" | "workflow_job" => {
            let text = std::str::from_utf8(body)
                .map_err(|e| Error::parse(format!("{event_name} delivery"), e))?;
            let envelope: Envelope = serde_json::from_str(text)
                .map_err(|e| Error::parse(format!("{event_name} delivery"), e))?;
            let repository = envelope
                .repository
                .map(|r| r.full_name)
                .filter(|n| n.contains('/'))
                .ok_or_else(|| {
                    Error::parse(
                        format!("{event_name} delivery"),
                        "expected `repository.full_name` (owner/name)",
                    )
                })?;
            let event = parse_event(text)?;
            let matches = matches!(
                (&event, event_name),
                (Event::WorkflowRun { .. }, "workflow_run")
                    | (Event::WorkflowJob { .. }, "workflow_job")
            );
            if !matches {
                return Err(Error::parse(
                    format!("{event_name} delivery"),
                    format!("expected a `{event_name}` object"),
                ));
            }
            let job_context = envelope.workflow_job.map(|j| JobContext {
                workflow: j.workflow_name.unwrap_or_default(),
                branch: j.head_branch.unwrap_or_default(),
            });
            Ok(WebhookEvent::Workflow {
                repository,
                event,
                job_context,
            })
        }
        other => Ok(WebhookEvent::Ignored(other.to_owned())),
    }
}

/// The job of a `workflow_job` event, if it is one.
pub fn job_of(event: &Event) -> Option<&Job> {
    match event {
        Event::WorkflowJob { job, .. } => Some(job),
        Event::WorkflowRun { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn secret() -> WebhookSecret {
        WebhookSecret::new(SecretString::from("It's a Secret to Everybody")).unwrap()
    }

    #[test]
    fn githubs_documented_example_verifies() {
        // From GitHub's "Validating webhook deliveries" documentation.
        let body = b"Hello, World!";
        let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(secret().sign(body).unwrap(), sig);
        secret().verify(body, Some(sig.as_bytes())).unwrap();
    }

    fn problem(e: &Error) -> SignatureProblem {
        match e.kind() {
            ErrorKind::Signature(p) => *p,
            other => panic!("not a signature error: {other:?}"),
        }
    }

    #[test]
    fn missing_garbage_and_wrong_signatures_are_told_apart() {
        let s = secret();
        let body = b"{}";
        assert_eq!(
            problem(&s.verify(body, None).unwrap_err()),
            SignatureProblem::Missing
        );
        for garbage in [
            "",
            "sha1=abc",
            "sha256=",
            "sha256=zz",
            &format!("sha256={}", "g".repeat(64)),
        ] {
            assert_eq!(
                problem(&s.verify(body, Some(garbage.as_bytes())).unwrap_err()),
                SignatureProblem::Malformed,
                "{garbage}"
            );
        }
        let other = WebhookSecret::new(SecretString::from("another")).unwrap();
        let wrong = other.sign(body).unwrap();
        assert_eq!(
            problem(&s.verify(body, Some(wrong.as_bytes())).unwrap_err()),
            SignatureProblem::Mismatch
        );
        // The right signature of another body.
        let moved = s.sign(b"{ }").unwrap();
        assert_eq!(
            problem(&s.verify(body, Some(moved.as_bytes())).unwrap_err()),
            SignatureProblem::Mismatch
        );
    }

    #[test]
    fn the_secret_never_prints() {
        let s = secret();
        assert!(!format!("{s:?}").contains("Secret to"));
        let e = s.verify(b"x", Some(b"sha256=00")).unwrap_err();
        assert!(!e.to_string().contains("Secret to"));
        assert!(WebhookSecret::new(SecretString::from("")).is_err());
    }

    #[test]
    fn ping_and_other_events_need_no_payload() {
        assert_eq!(
            parse_delivery("ping", b"not json").unwrap(),
            WebhookEvent::Ping
        );
        assert_eq!(
            parse_delivery("push", b"{}").unwrap(),
            WebhookEvent::Ignored("push".into())
        );
    }

    #[test]
    fn a_workflow_delivery_names_its_repository() {
        let body = br#"{"action":"completed","repository":{"full_name":"o/r","default_branch":"main"},
            "workflow_run":{"id":5,"name":"CI","head_branch":"main","status":"completed","conclusion":"failure","run_number":3}}"#;
        let WebhookEvent::Workflow {
            repository,
            event,
            job_context,
        } = parse_delivery("workflow_run", body).unwrap()
        else {
            panic!("not a workflow delivery")
        };
        assert_eq!(repository, "o/r");
        assert!(matches!(event, Event::WorkflowRun { .. }));
        assert!(job_context.is_none());
        // The header and the body disagree.
        assert!(parse_delivery("workflow_job", body).is_err());
        // No repository.
        assert!(parse_delivery("workflow_run", br#"{"workflow_run":{"id":1}}"#).is_err());
        assert!(parse_delivery("workflow_run", b"\xff").is_err());
    }
}
