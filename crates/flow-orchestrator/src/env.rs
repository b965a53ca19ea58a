//! The one registry of the environment variables flow reads (as uv's `uv-static`): every
//! other module names a variable through these constants, and [`ALL`] lists them with their
//! meaning for `flow config` and the documentation.

/// One environment variable flow reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvVar {
    /// The variable's name.
    pub name: &'static str,
    /// Whether its value is a secret (never printed, masked in a workflow).
    pub secret: bool,
    /// What it sets.
    pub doc: &'static str,
}

macro_rules! registry {
    ($($(#[doc = $doc:literal])+ $name:ident $(, $secret:ident)?;)*) => {
        $(
            $(#[doc = $doc])+
            pub const $name: &str = stringify!($name);
        )*
        /// Every variable, in the order above.
        pub const ALL: &[EnvVar] = &[$(EnvVar {
            name: stringify!($name),
            secret: registry!(@secret $($secret)?),
            doc: concat!($($doc),+),
        }),*];
    };
    (@secret secret) => { true };
    (@secret) => { false };
}

registry! {
    /// The configuration file (else `.github/flow.yml` or `flow.toml`).
    FLOW_CONFIG;
    /// `llm.provider`: openai, github-models, azure or compatible.
    FLOW_LLM_PROVIDER;
    /// `llm.model`: the model every request names.
    FLOW_LLM_MODEL;
    /// `llm.model`, as the OpenAI SDKs read it (after FLOW_LLM_MODEL).
    OPENAI_MODEL;
    /// `llm.base_url`: the part before `/chat/completions`.
    OPENAI_BASE_URL;
    /// `llm.api_key` for openai and compatible servers.
    OPENAI_API_KEY, secret;
    /// `llm.base_url` for azure: the resource endpoint.
    AZURE_OPENAI_ENDPOINT;
    /// `llm.api_key` for azure.
    AZURE_OPENAI_API_KEY, secret;
    /// `llm.model` for azure: the deployment.
    AZURE_OPENAI_DEPLOYMENT;
    /// `llm.github_org`: bill GitHub Models calls to this organization.
    FLOW_LLM_GITHUB_ORG;
    /// `llm.timeout_secs`: one HTTP attempt.
    FLOW_LLM_TIMEOUT_SECS;
    /// `llm.max_retries`: retries of retryable failures.
    FLOW_LLM_MAX_RETRIES;
    /// `llm.fallback_models`: comma-separated models tried in order when the model fails.
    FLOW_LLM_FALLBACK_MODELS;
    /// `llm.max_tokens`: the most completion tokens per answer.
    FLOW_LLM_MAX_TOKENS;
    /// `llm.token_budget`: the most tokens one invocation may spend.
    FLOW_LLM_TOKEN_BUDGET;
    /// `cache.backend`: memory, redis or none.
    FLOW_CACHE_BACKEND;
    /// `cache.url`: the Redis URL (implies the redis backend).
    FLOW_CACHE_URL, secret;
    /// `cache.ttl_secs`: how long an answer stays fresh.
    FLOW_CACHE_TTL_SECS;
    /// `telemetry.repository`: owner/name watched.
    FLOW_REPOSITORY;
    /// `telemetry.repository` when neither FLOW_REPOSITORY nor the file sets it (the runner's).
    GITHUB_REPOSITORY;
    /// `telemetry.workflow`: only runs of this workflow.
    FLOW_WORKFLOW;
    /// `telemetry.max_pages`: pages of 100 runs per cycle.
    FLOW_MAX_PAGES;
    /// `telemetry.triage`: ask the LLM for a triage of each alert.
    FLOW_TRIAGE;
    /// `telemetry.close_on_recovery`: close a problem's issue when it recovers.
    FLOW_CLOSE_ON_RECOVERY;
    /// `telemetry.max_writes`: GitHub writes per invocation; the rest is done next time.
    FLOW_MAX_WRITES;
    /// `telemetry.state`: the monitor state, a file path or `redis://…`.
    FLOW_STATE, secret;
    /// `telemetry.rules`: a rules file replacing the configuration's rules.
    FLOW_RULES;
    /// `telemetry.otlp_endpoint`: export each completed run as a trace to this OTLP/HTTP
    /// collector (`/v1/traces` appended).
    FLOW_OTLP_ENDPOINT;
    /// `telemetry.otlp_headers`: the OTLP exporter's headers, `name=value` pairs separated by
    /// commas (API keys).
    FLOW_OTLP_HEADERS, secret;
    /// `issues.labels`: comma-separated labels of the issues flow opens.
    FLOW_ISSUE_LABELS;
    /// `serve.listen`: the address `flow serve` binds (`host:port`).
    FLOW_SERVE_LISTEN;
    /// `serve.webhook_secret`: the secret of the GitHub webhook `flow serve` verifies.
    FLOW_WEBHOOK_SECRET, secret;
    /// `serve.webhook_secret_file`: a file holding the webhook secret.
    FLOW_WEBHOOK_SECRET_FILE;
    /// `serve.repositories`: comma-separated `owner/name` watched by `flow serve`.
    FLOW_SERVE_REPOSITORIES;
    /// `serve.org`: an organisation whose every repository `flow serve` watches.
    FLOW_SERVE_ORG;
    /// `serve.reconcile_secs`: seconds between reconciliation polls (0: none).
    FLOW_SERVE_RECONCILE_SECS;
    /// `serve.queue_capacity`: deliveries waiting at most before the webhook answers 503.
    FLOW_SERVE_QUEUE_CAPACITY;
    /// `serve.workers`: repositories processed at once.
    FLOW_SERVE_WORKERS;
    /// `serve.lease_secs`: seconds a repository's work lease lasts unless renewed.
    FLOW_SERVE_LEASE_SECS;
    /// `github.api_url`: the GitHub REST API (GitHub Enterprise Server, a test server).
    GITHUB_API_URL;
    /// `github.server_url`: the GitHub web server (GitHub Enterprise Server).
    GITHUB_SERVER_URL;
    /// `github.token`: the GitHub token (run source, issues, releases, GitHub Models).
    GITHUB_TOKEN, secret;
    /// The runner's commit: `publish release --commit` when omitted.
    GITHUB_SHA;
    /// The runner's event payload: `review-issue` reads the issue from it without --title;
    /// `monitor` observes the run of a `workflow_run` / `workflow_job` payload without --event.
    GITHUB_EVENT_PATH;
    /// The runner's event name: `monitor` reads GITHUB_EVENT_PATH on `workflow_run` and
    /// `workflow_job`.
    GITHUB_EVENT_NAME;
}

/// The entry of `name`, if flow reads it.
pub fn lookup(name: &str) -> Option<&'static EnvVar> {
    ALL.iter().find(|v| v.name == name)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn the_registry_lists_each_variable_once_with_its_secrecy() {
        let mut names: Vec<&str> = ALL.iter().map(|v| v.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
        assert!(lookup(OPENAI_API_KEY).unwrap().secret);
        assert!(lookup(GITHUB_TOKEN).unwrap().secret);
        assert!(!lookup(FLOW_LLM_MODEL).unwrap().secret);
        assert!(lookup(FLOW_LLM_MODEL).unwrap().doc.contains("llm.model"));
    }
}
