//! The command line: `flow delegate | review-issue | monitor | publish …`.
//!
//! Each subcommand's options are one struct that derives both [`clap::Args`] (the flags) and
//! [`schemars::JsonSchema`] (the action inputs): the doc comment of a field is its `--help` line
//! and its input's description, and the kebab-case flag name is the input name. That is how
//! `action/action.yml` is generated from this file and cannot drift from it.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use clap::{Args, Parser, Subcommand, ValueEnum};
use schemars::JsonSchema;
use secrecy::{ExposeSecret as _, SecretString};

/// Names of the inputs (and flags) that carry secrets: they are masked with `::add-mask::`
/// before anything else is printed, and never printed themselves.
pub const SECRET_INPUTS: &[&str] = &["api-key", "github-token", "redis-url", "otlp-header"];

const AFTER_HELP: &str = "\
Examples:
  flow monitor                                   # offline, on the bundled sample history
  flow monitor --repo octo/app --github-token \"$GITHUB_TOKEN\" --open-issues
  flow delegate --prompt 'Ship it?' --choices yes,no
  flow review-issue --title 'Crash on start' --evidence 'CI run 42 passed'
  flow publish metadata --check

In a GitHub Actions step (GITHUB_ACTIONS=true) every option can also come from its input
variable: --max-runs from INPUT_MAX-RUNS or INPUT_MAX_RUNS. Outputs go to GITHUB_OUTPUT,
the report to GITHUB_STEP_SUMMARY.";

/// Let autonomous GitHub workflows delegate decisions to an LLM, watch their own health, and
/// ship themselves as a GitHub Action.
#[derive(Debug, Parser)]
#[command(name = "flow", version, after_help = AFTER_HELP, propagate_version = true)]
pub struct Cli {
    /// Options every subcommand takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Options every subcommand takes.
#[derive(Debug, Clone, Default, Args, JsonSchema)]
#[command(next_help_heading = "Global options")]
#[schemars(rename_all = "kebab-case")]
pub struct GlobalArgs {
    /// Print machine-readable JSON on stdout instead of text (logs stay on stderr).
    #[arg(long, global = true)]
    #[schemars(default)]
    pub json: bool,
    /// Configuration file (flow.toml or .github/flow.yml; FLOW_CONFIG); found automatically
    /// when omitted.
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Log filter for stderr, e.g. `info` or `flow=debug` (also RUST_LOG).
    #[arg(long, global = true, value_name = "FILTER")]
    pub log: Option<String>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ask an LLM for a decision: free-form text, one of --choices, or JSON matching --schema.
    Delegate(DelegateArgs),
    /// Ask an LLM whether an issue is resolved, given the evidence a workflow gathered.
    ReviewIssue(ReviewIssueArgs),
    /// Watch workflow health: collect runs, compute KPIs, detect anomalies, open or update
    /// one issue per problem. Without --repo it runs offline on a bundled sample history.
    Monitor(MonitorArgs),
    /// Run as a long-lived service: receive GitHub's `workflow_run` and `workflow_job`
    /// webhooks, monitor every repository they come from (and those of --repos / --org,
    /// reconciled by polling), and serve Prometheus metrics. Not an action command.
    Serve(ServeArgs),
    /// Ship this binary as a GitHub Action: metadata, archives, releases.
    #[command(subcommand)]
    Publish(PublishCommand),
    /// Print the effective settings (monitor's options, the LLM's, GitHub's) and where each
    /// came from: default, configuration file and key, environment variable, flag or input.
    /// Secrets show as `[redacted]`.
    Config(ConfigArgs),
    /// Work with whole-history summaries (the `history` of `flow monitor --json`).
    #[command(subcommand)]
    Report(ReportCommand),
}

/// `flow report …`.
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Merge whole-history summaries of many repositories or shards into one (an organisation
    /// roll-up): counts and rates exact, percentiles within the sketches' 1 % bound.
    Merge(MergeArgs),
}

/// `flow report merge`.
#[derive(Debug, Clone, Args)]
pub struct MergeArgs {
    /// Summaries to merge: `flow monitor --json` outputs or `history` JSON (`flow report merge
    /// --json` output), in any mix.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

impl Command {
    /// The subcommand's name as typed (`publish release` for nested ones).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Delegate(_) => "delegate",
            Self::ReviewIssue(_) => "review-issue",
            Self::Monitor(_) => "monitor",
            Self::Serve(_) => "serve",
            Self::Publish(PublishCommand::Metadata(_)) => "publish metadata",
            Self::Publish(PublishCommand::Package(_)) => "publish package",
            Self::Publish(PublishCommand::Manifest(_)) => "publish manifest",
            Self::Publish(PublishCommand::Release(_)) => "publish release",
            Self::Config(_) => "config",
            Self::Report(ReportCommand::Merge(_)) => "report merge",
        }
    }
}

/// `flow publish …`.
#[derive(Debug, Subcommand)]
pub enum PublishCommand {
    /// Generate action.yml from the binary's typed inputs and validate it.
    Metadata(MetadataArgs),
    /// Build the reproducible release archive and its SHA-256 manifest entry.
    Package(PackageArgs),
    /// Merge per-target manifests (from `publish package`) into the release manifest the
    /// action reads: absolute URLs, SHA-256, format version.
    Manifest(ManifestArgs),
    /// Create or update the GitHub release, upload archives, move the major tag.
    Release(ReleaseArgs),
}

/// A secret value from a flag or variable: never printed (`Debug` shows `[redacted]`).
#[derive(Clone)]
pub struct Secret(std::sync::Arc<SecretString>);

impl Secret {
    /// The value, for the one place that sends it (an HTTP header or a connection URL).
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The value as a `SecretString` for the crates below.
    pub fn to_secret_string(&self) -> SecretString {
        SecretString::from(self.expose().to_owned())
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(std::sync::Arc::new(SecretString::from(s.to_owned()))))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Which Chat Completions service to call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, JsonSchema, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Provider {
    /// api.openai.com (or --base-url), key from OPENAI_API_KEY.
    #[default]
    Openai,
    /// GitHub Models, authenticated with the workflow's GITHUB_TOKEN.
    GithubModels,
    /// Azure OpenAI: --base-url is the deployment URL.
    Azure,
    /// Any compatible server (Ollama, vLLM, LiteLLM) at --base-url; the key is optional.
    Compatible,
}

/// Where LLM answers are cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, JsonSchema, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CacheBackend {
    /// In this process only.
    #[default]
    Memory,
    /// A Redis server shared by runners (--redis-url).
    Redis,
    /// No cache.
    None,
}

/// Options of the LLM client, shared by `delegate`, `review-issue` and `monitor`'s triage.
/// Each one overrides the configuration file and its environment variable.
#[derive(Debug, Clone, Args, JsonSchema)]
#[command(next_help_heading = "LLM options")]
#[schemars(rename_all = "kebab-case")]
pub struct LlmArgs {
    /// Chat Completions provider (FLOW_LLM_PROVIDER); guessed from the variables that are set
    /// when omitted.
    #[arg(long, value_enum)]
    pub provider: Option<Provider>,
    /// Model name, or the Azure deployment (FLOW_LLM_MODEL).
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    /// Base URL of the Chat Completions API (OPENAI_BASE_URL); for azure, the endpoint.
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// API key (OPENAI_API_KEY); for github-models a GitHub token (GITHUB_TOKEN when omitted).
    /// Secret.
    #[arg(long, value_name = "KEY")]
    #[schemars(with = "Option<String>")]
    pub api_key: Option<Secret>,
    /// Timeout of one HTTP attempt, in seconds (FLOW_LLM_TIMEOUT_SECS; default 60).
    #[arg(long, value_name = "SECS")]
    pub timeout_secs: Option<u64>,
    /// Response cache backend (FLOW_CACHE_BACKEND; default memory).
    #[arg(long, value_enum)]
    pub cache: Option<CacheBackend>,
    /// How long a cached answer stays fresh, in seconds (FLOW_CACHE_TTL_SECS; default 3600).
    #[arg(long, value_name = "SECS")]
    pub cache_ttl_secs: Option<u64>,
    /// Redis URL for --cache redis (FLOW_CACHE_URL). Secret: it may hold a password.
    #[arg(long, value_name = "URL")]
    #[schemars(with = "Option<String>")]
    pub redis_url: Option<Secret>,
    /// Retries of a retryable failure (5xx, 429, timeouts) before giving up or falling back
    /// (FLOW_LLM_MAX_RETRIES; default 3).
    #[arg(long, value_name = "N")]
    pub max_retries: Option<u32>,
    /// A model to try when the model fails after its retries with an error another model may
    /// not have (5xx, 429 insufficient_quota, timeouts; never 401); repeat or comma-separate
    /// for a chain (FLOW_LLM_FALLBACK_MODELS). The output names the model that answered.
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    #[schemars(with = "Option<String>")]
    pub fallback_model: Vec<String>,
    /// The most completion tokens of one answer (FLOW_LLM_MAX_TOKENS).
    #[arg(long, value_name = "N")]
    pub max_tokens: Option<u32>,
    /// The most tokens (prompt plus completion) this invocation may spend; cache hits are
    /// free (FLOW_LLM_TOKEN_BUDGET).
    #[arg(long, value_name = "N")]
    pub token_budget: Option<u64>,
}

fn default_format() -> ReportFormat {
    ReportFormat::Text
}

/// GitHub repository and credentials, shared by the subcommands that talk to GitHub.
#[derive(Debug, Clone, Args, JsonSchema)]
#[command(next_help_heading = "GitHub options")]
#[schemars(rename_all = "kebab-case")]
pub struct GithubArgs {
    /// Repository as owner/name (FLOW_REPOSITORY; in a workflow, GITHUB_REPOSITORY).
    #[arg(long, value_name = "OWNER/NAME")]
    pub repo: Option<String>,
    /// GitHub token (GITHUB_TOKEN). Secret.
    #[arg(long, value_name = "TOKEN")]
    #[schemars(with = "Option<String>")]
    pub github_token: Option<Secret>,
    /// GitHub REST API base URL (GITHUB_API_URL; default `https://api.github.com`), for GitHub
    /// Enterprise Server.
    #[arg(long, value_name = "URL")]
    pub api_url: Option<String>,
}

/// `flow delegate`.
#[derive(Debug, Clone, Args, JsonSchema)]
#[schemars(rename_all = "kebab-case")]
pub struct DelegateArgs {
    /// The question or task for the model, or @path (required for delegate, unless
    /// --prompt-file).
    #[arg(long, value_name = "TEXT|@PATH")]
    pub prompt: Option<String>,
    /// A GitHub prompt file (`.prompt.yml`: messages with {{var}} placeholders, model,
    /// modelParameters, responseFormat and jsonSchema), as actions/ai-inference reads it.
    #[arg(long, value_name = "PATH", conflicts_with = "prompt")]
    pub prompt_file: Option<PathBuf>,
    /// A value for a {{name}} placeholder of --prompt-file, as name=value (@path reads a
    /// file); repeat for each variable. As an input: one name=value per line.
    #[arg(long, value_name = "NAME=VALUE", value_delimiter = '\n')]
    #[schemars(with = "Option<String>")]
    pub var: Vec<String>,
    /// System prompt: the role and the rules the model follows.
    #[arg(long, value_name = "TEXT")]
    pub system: Option<String>,
    /// Comma-separated choices: the answer is exactly one of them.
    #[arg(
        long,
        value_name = "A,B,…",
        value_delimiter = ',',
        conflicts_with = "schema"
    )]
    #[schemars(with = "Option<String>")]
    pub choices: Vec<String>,
    /// JSON Schema (inline JSON, or @path to a file) the answer must match.
    #[arg(long, value_name = "JSON|@PATH")]
    pub schema: Option<String>,
    /// LLM options.
    #[command(flatten)]
    #[schemars(flatten)]
    pub llm: LlmArgs,
}

/// `flow review-issue`.
#[derive(Debug, Clone, Args, JsonSchema)]
#[schemars(rename_all = "kebab-case")]
pub struct ReviewIssueArgs {
    /// Issue title; read from the event payload (GITHUB_EVENT_PATH) of an issue event when
    /// omitted.
    #[arg(long, value_name = "TEXT")]
    pub title: Option<String>,
    /// Issue body (and discussion), or @path to a file holding it.
    #[arg(long, value_name = "TEXT|@PATH")]
    pub body: Option<String>,
    /// What the workflow found (commits, test and CI results), or @path to a file (required
    /// for review-issue).
    #[arg(long, value_name = "TEXT|@PATH", required = true)]
    pub evidence: Option<String>,
    /// LLM options.
    #[command(flatten)]
    #[schemars(flatten)]
    pub llm: LlmArgs,
}

/// How `monitor` prints its report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, JsonSchema, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReportFormat {
    /// Human-readable text.
    #[default]
    Text,
    /// Markdown (what the step summary shows).
    Markdown,
    /// Prometheus text exposition.
    Prometheus,
}

/// `flow monitor`.
#[derive(Debug, Clone, Args, JsonSchema)]
#[schemars(rename_all = "kebab-case")]
pub struct MonitorArgs {
    /// Read runs from an exported JSON file instead of GitHub (offline; wins over --repo).
    #[arg(long, value_name = "PATH")]
    pub from_file: Option<PathBuf>,
    /// Only runs of this workflow: its display name (`CI`, `Build / Test`: resolved once
    /// through the workflows list and remembered in the state), file name (`ci.yml`) or id.
    #[arg(long, value_name = "WORKFLOW")]
    pub workflow: Option<String>,
    /// The branch whose runs are observed and raise issues (default: the repository's default
    /// branch; `*` for every branch).
    #[arg(long, value_name = "BRANCH")]
    pub branch: Option<String>,
    /// How many recent runs the first invocation reads at most, in pages of 100
    /// (FLOW_MAX_PAGES × 100; default 1000); later ones read only what is new. --from-file
    /// always reads the whole file.
    #[arg(long, value_name = "N")]
    pub max_runs: Option<u32>,
    /// Where the monitor remembers its state between invocations: a JSON file (kept with
    /// actions/cache by the composite action) or `redis://…` (shared by runners). Without it
    /// every invocation starts from nothing.
    #[arg(long, value_name = "PATH|redis://…")]
    pub state: Option<String>,
    /// Discard the saved state and start over (an unreadable or newer state is otherwise an
    /// error).
    #[arg(long)]
    #[schemars(default)]
    pub reset_state: bool,
    /// Close a problem's issue when it recovers, naming the recovering run (default true).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub close_on_recovery: Option<bool>,
    /// GitHub writes (new issues, comments, closes) per invocation; the rest is reported and
    /// done by the next one (default 10).
    #[arg(long, value_name = "N")]
    pub max_writes: Option<u32>,
    /// A `workflow_run` or `workflow_job` payload to observe (default: `GITHUB_EVENT_PATH` when
    /// the job was triggered by one of those events).
    #[arg(long, value_name = "PATH")]
    pub event: Option<PathBuf>,
    /// Only runs created at or after this time: RFC 3339 or YYYY-MM-DD.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only runs created before this time: RFC 3339, or YYYY-MM-DD for the end of that day.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// With --from-file: count and skip malformed records (reported with their position)
    /// instead of failing on the first one.
    #[arg(long)]
    #[schemars(default)]
    pub skip_invalid: bool,
    /// Telemetry rules file, TOML or YAML (FLOW_RULES); the configuration file's or the
    /// built-in rules otherwise.
    #[arg(long, value_name = "PATH")]
    pub rules: Option<PathBuf>,
    /// Open or update one GitHub issue per alert (needs --repo and a token).
    #[arg(long)]
    #[schemars(default)]
    pub open_issues: bool,
    /// Ask the LLM for a triage of each open alert: likely cause, next step (FLOW_TRIAGE;
    /// default true when an LLM is configured).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub triage: Option<bool>,
    /// Labels put on the issues flow opens, comma-separated or repeated; the first one finds the
    /// open issue, each is created when missing (default: flow-telemetry).
    #[arg(long, value_name = "NAME,…", value_delimiter = ',')]
    #[schemars(with = "Option<String>")]
    pub label: Vec<String>,
    /// Export each run newly completed in this invocation as an OpenTelemetry trace (run, job
    /// and step spans) to this OTLP/HTTP collector, e.g. `http://localhost:4318`; `/v1/traces`
    /// is appended (FLOW_OTLP_ENDPOINT). Export failures are reported, never fail the
    /// monitoring.
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// A header sent with every OTLP request, `name=value` (e.g. an API key); repeat for
    /// several (FLOW_OTLP_HEADERS: comma-separated pairs). Secret: masked, never printed.
    #[arg(long, value_name = "NAME=VALUE")]
    #[schemars(with = "Option<String>")]
    pub otlp_header: Vec<Secret>,
    /// Report format on stdout (--json overrides it).
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    #[schemars(default = "default_format")]
    pub format: ReportFormat,
    /// Repository and credentials; without a repository the bundled sample history is used.
    #[command(flatten)]
    #[schemars(flatten)]
    pub github: GithubArgs,
    /// LLM options (used with --triage).
    #[command(flatten)]
    #[schemars(flatten)]
    pub llm: LlmArgs,
}

/// `flow serve`: a long-running service; its flags are not action inputs (a workflow step
/// ends, a service does not).
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// The address to bind, host:port (FLOW_SERVE_LISTEN; default 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// A file holding the webhook secret (FLOW_WEBHOOK_SECRET_FILE); FLOW_WEBHOOK_SECRET wins
    /// over it. A secret is required: unsigned deliveries are refused.
    #[arg(long, value_name = "PATH")]
    pub webhook_secret_file: Option<PathBuf>,
    /// Repositories watched by the reconciliation poll, owner/name, comma-separated or
    /// repeated (FLOW_SERVE_REPOSITORIES); with --repo and --org's.
    #[arg(long, value_name = "OWNER/NAME,…", value_delimiter = ',')]
    pub repos: Vec<String>,
    /// Watch every repository of this organisation (FLOW_SERVE_ORG), listed again hourly.
    #[arg(long, value_name = "ORG")]
    pub org: Option<String>,
    /// Seconds between reconciliation polls of each watched repository
    /// (FLOW_SERVE_RECONCILE_SECS; default 300; 0: none).
    #[arg(long, value_name = "SECS")]
    pub reconcile_secs: Option<u64>,
    /// Deliveries waiting for a worker at most; past it the webhook answers 503
    /// (FLOW_SERVE_QUEUE_CAPACITY; default 1024).
    #[arg(long, value_name = "N")]
    pub queue_capacity: Option<u64>,
    /// Repositories processed at once (FLOW_SERVE_WORKERS; default 4).
    #[arg(long, value_name = "N")]
    pub workers: Option<u64>,
    /// Seconds a repository's work lease lasts unless renewed: how long a replica that died
    /// keeps its repositories from the others (FLOW_SERVE_LEASE_SECS; default 60).
    #[arg(long, value_name = "SECS")]
    pub lease_secs: Option<u64>,
    /// Open, comment on and close GitHub issues (needs a token); without it the issues are a
    /// dry run.
    #[arg(long)]
    pub open_issues: bool,
    /// Only runs of this workflow (FLOW_WORKFLOW): display name, file name or id.
    #[arg(long, value_name = "WORKFLOW")]
    pub workflow: Option<String>,
    /// The branch whose runs are observed and raise issues (default: each repository's
    /// default branch; `*` for every branch).
    #[arg(long, value_name = "BRANCH")]
    pub branch: Option<String>,
    /// How many recent runs the first poll of a repository reads at most (FLOW_MAX_PAGES ×
    /// 100; default 1000).
    #[arg(long, value_name = "N")]
    pub max_runs: Option<u32>,
    /// Where each repository's monitor state lives (FLOW_STATE): a directory (one JSON file
    /// per repository, `DIR/owner/name.json`) or `redis://…` (shared by replicas). Without it
    /// the state lives in memory and is lost on exit.
    #[arg(long, value_name = "DIR|redis://…")]
    pub state: Option<String>,
    /// Close a problem's issue when it recovers (FLOW_CLOSE_ON_RECOVERY; default true).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub close_on_recovery: Option<bool>,
    /// GitHub writes per processed delivery; the rest is done by the next one
    /// (FLOW_MAX_WRITES; default 10).
    #[arg(long, value_name = "N")]
    pub max_writes: Option<u32>,
    /// Telemetry rules file, TOML or YAML (FLOW_RULES).
    #[arg(long, value_name = "PATH")]
    pub rules: Option<PathBuf>,
    /// Ask the LLM for a triage of each new problem (FLOW_TRIAGE; default true when an LLM is
    /// configured).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub triage: Option<bool>,
    /// Export each run the service observes newly completed (from a delivery or the
    /// reconciliation) as an OpenTelemetry trace to this OTLP/HTTP collector, e.g.
    /// `http://localhost:4318`; `/v1/traces` is appended (FLOW_OTLP_ENDPOINT). Export failures
    /// are logged, never fail the monitoring.
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// A header sent with every OTLP request, `name=value` (e.g. an API key); repeat for
    /// several (FLOW_OTLP_HEADERS: comma-separated pairs). Secret: masked, never printed.
    #[arg(long, value_name = "NAME=VALUE")]
    pub otlp_header: Vec<Secret>,
    /// Labels put on the issues flow opens, comma-separated or repeated (FLOW_ISSUE_LABELS).
    #[arg(long, value_name = "NAME,…", value_delimiter = ',')]
    pub label: Vec<String>,
    /// The GitHub token, API URL and one more watched repository (--repo).
    #[command(flatten)]
    pub github: GithubArgs,
    /// LLM options (used with --triage).
    #[command(flatten)]
    pub llm: LlmArgs,
}

/// The command whose settings `flow config` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ConfigFor {
    /// `delegate`: the LLM and the cache.
    Delegate,
    /// `review-issue`: the LLM and the cache.
    ReviewIssue,
    /// `monitor`: every setting but `serve.*`.
    Monitor,
    /// `publish release`: the repository and GitHub.
    Publish,
    /// `serve`: every setting (the service runs the monitor per repository).
    Serve,
}

impl ConfigFor {
    /// Whether the setting `key` matters to this command.
    pub fn uses(self, key: &str) -> bool {
        let section = key.split('.').next().unwrap_or_default();
        match self {
            Self::Delegate | Self::ReviewIssue => matches!(section, "llm" | "cache"),
            Self::Monitor => section != "serve",
            Self::Serve => true,
            Self::Publish => section == "github" || key == "telemetry.repository",
        }
    }
}

/// `flow config`'s own option.
#[derive(Debug, Clone, Args, JsonSchema)]
#[schemars(rename_all = "kebab-case")]
pub struct ConfigOnly {
    /// config: only the settings this command uses (default: every setting).
    #[arg(long, value_enum, value_name = "COMMAND")]
    pub r#for: Option<ConfigFor>,
}

/// `flow config`: the options of `monitor`, which include the LLM's and GitHub's.
#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    /// Which command's settings.
    #[command(flatten)]
    pub only: ConfigOnly,
    /// The options whose settings are shown.
    #[command(flatten)]
    pub monitor: MonitorArgs,
}

/// `flow publish metadata`.
#[derive(Debug, Clone, Args, JsonSchema)]
#[schemars(rename_all = "kebab-case")]
pub struct MetadataArgs {
    /// Where to write action.yml (`-` for stdout).
    #[arg(long, value_name = "PATH", default_value = "action/action.yml")]
    #[schemars(default = "default_output")]
    pub output: PathBuf,
    /// Do not write: fail if the file differs from what would be generated.
    #[arg(long)]
    #[schemars(default)]
    pub check: bool,
}

/// `flow publish package`.
#[derive(Debug, Clone, Args, JsonSchema)]
#[schemars(rename_all = "kebab-case")]
pub struct PackageArgs {
    /// The built binary to package.
    #[arg(long, value_name = "PATH")]
    pub binary: Option<PathBuf>,
    /// Target triple the binary was built for (e.g. x86_64-unknown-linux-gnu).
    #[arg(long, value_name = "TRIPLE")]
    pub target: Option<String>,
    /// Directory for the archives and manifest.json.
    #[arg(long, value_name = "DIR", default_value = "dist")]
    #[schemars(default = "default_dist")]
    pub out_dir: PathBuf,
    /// License file put in the archive.
    #[arg(long, value_name = "PATH", default_value = "LICENSE")]
    #[schemars(default = "default_license")]
    pub license: PathBuf,
    /// README put in the archive.
    #[arg(long, value_name = "PATH", default_value = "README.md")]
    #[schemars(default = "default_readme")]
    pub readme: PathBuf,
    /// Release tag (e.g. v1.2.3): the archives' version for `publish package`; created or
    /// updated by `publish release`, which also moves the major tag (v1).
    #[arg(long, value_name = "TAG")]
    pub tag: Option<String>,
    /// Where release archives are downloaded from: a manifest entry's URL is
    /// `BASE/vVERSION/ASSET`, e.g. `https://github.com/OWNER/REPO/releases/download`.
    #[arg(long, value_name = "URL")]
    pub download_base_url: Option<String>,
}

/// `flow publish manifest`.
#[derive(Debug, Clone, Args, JsonSchema)]
#[schemars(rename_all = "kebab-case")]
pub struct ManifestArgs {
    /// Per-target manifest.json files written by `publish package`, to merge.
    #[arg(long, value_name = "PATH", num_args = 1.., required_unless_present = "print_schema")]
    #[schemars(with = "Option<String>")]
    pub entry: Vec<PathBuf>,
    /// Where release archives are downloaded from: a manifest entry's URL is
    /// `BASE/vVERSION/ASSET`, e.g. `https://github.com/OWNER/REPO/releases/download`.
    #[arg(long, value_name = "URL")]
    pub download_base_url: Option<String>,
    /// Where to write the merged release manifest (`-` for stdout).
    #[arg(long, value_name = "PATH", default_value = "action/manifest.json")]
    #[schemars(default = "default_manifest_out")]
    pub manifest_out: PathBuf,
    /// Print the JSON Schema of the release manifest instead of merging.
    #[arg(long)]
    #[schemars(default)]
    pub print_schema: bool,
}

/// `flow publish release`.
#[derive(Debug, Clone, Args, JsonSchema)]
#[schemars(rename_all = "kebab-case")]
pub struct ReleaseArgs {
    /// The archive to build and release (the tag is required here).
    #[command(flatten)]
    #[schemars(flatten)]
    pub package: PackageArgs,
    /// The commit the release tag points at (GITHUB_SHA).
    #[arg(long, value_name = "SHA")]
    pub commit: Option<String>,
    /// Release notes, or @path (default: the tag's CHANGELOG.md section is not read; empty).
    #[arg(long, value_name = "TEXT|@PATH")]
    pub notes: Option<String>,
    /// Files built elsewhere to upload as they are: a release matrix's archives and the merged
    /// manifest.json. With them nothing is packaged here (no --target needed).
    #[arg(long, value_name = "PATH", num_args = 1..)]
    #[schemars(with = "Option<String>")]
    pub asset: Vec<PathBuf>,
    /// Print the plan without changing anything on GitHub.
    #[arg(long)]
    #[schemars(default)]
    pub dry_run: bool,
    /// Repository and credentials.
    #[command(flatten)]
    #[schemars(flatten)]
    pub github: GithubArgs,
}

/// The inputs of the composite action: `command` plus the union of every subcommand's options,
/// in kebab-case. `action/action.yml` is generated from this type.
#[derive(Debug, JsonSchema)]
#[schemars(rename_all = "kebab-case")]
pub struct ActionInputs {
    /// What to run: delegate, review-issue, monitor, publish metadata, publish package,
    /// publish manifest, publish release or config.
    #[schemars(default = "default_command")]
    pub command: String,
    /// Options every subcommand takes.
    #[schemars(flatten)]
    pub global: GlobalArgs,
    /// `delegate`.
    #[schemars(flatten)]
    pub delegate: DelegateArgs,
    /// `review-issue`.
    #[schemars(flatten)]
    pub review: ReviewIssueArgs,
    /// `monitor`.
    #[schemars(flatten)]
    pub monitor: MonitorArgs,
    /// `publish metadata`.
    #[schemars(flatten)]
    pub metadata: MetadataArgs,
    /// `publish package`.
    #[schemars(flatten)]
    pub package: PackageArgs,
    /// `publish manifest`.
    #[schemars(flatten)]
    pub manifest: ManifestArgs,
    /// `publish release` (its archive options are `publish package`'s).
    #[schemars(flatten)]
    pub release: ReleaseArgs,
    /// `config`.
    #[schemars(flatten)]
    pub config: ConfigOnly,
}

fn default_output() -> PathBuf {
    PathBuf::from("action/action.yml")
}
fn default_license() -> PathBuf {
    PathBuf::from("LICENSE")
}
fn default_readme() -> PathBuf {
    PathBuf::from("README.md")
}
fn default_manifest_out() -> PathBuf {
    PathBuf::from("action/manifest.json")
}
fn default_dist() -> PathBuf {
    PathBuf::from("dist")
}
fn default_command() -> String {
    "monitor".to_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let cli = Cli::try_parse_from(["flow", "delegate", "--prompt", "p", "--api-key", "sk-1"])
            .unwrap();
        let dbg = format!("{cli:?}");
        assert!(!dbg.contains("sk-1"), "{dbg}");
        assert!(dbg.contains("[redacted]"));
    }

    #[test]
    fn every_secret_looking_flag_is_listed_as_secret() {
        let mut seen = Vec::new();
        fn walk(cmd: &clap::Command, seen: &mut Vec<String>) {
            for a in cmd.get_arguments() {
                if let Some(l) = a.get_long() {
                    seen.push(l.to_owned());
                }
            }
            for s in cmd.get_subcommands() {
                walk(s, seen);
            }
        }
        walk(&Cli::command(), &mut seen);
        for name in &seen {
            // Token counts are not tokens.
            let counts = ["max-tokens", "token-budget"].contains(&name.as_str());
            let looks_secret = !counts
                && ["key", "token", "password", "redis-url", "header"]
                    .iter()
                    .any(|w| name.contains(w));
            assert_eq!(
                looks_secret,
                SECRET_INPUTS.contains(&name.as_str()),
                "flag --{name}"
            );
        }
        for s in SECRET_INPUTS {
            assert!(
                seen.iter().any(|n| n == s),
                "secret input {s} is not a flag"
            );
        }
    }

    #[test]
    fn choices_split_on_commas() {
        let cli =
            Cli::try_parse_from(["flow", "delegate", "--prompt", "p", "--choices", "a,b"]).unwrap();
        let Some(Command::Delegate(d)) = cli.command else {
            panic!("not delegate")
        };
        assert_eq!(d.choices, vec!["a", "b"]);
    }

    #[test]
    fn labels_split_on_commas_and_repeat() {
        let cli = Cli::try_parse_from([
            "flow",
            "monitor",
            "--label",
            "ci-health,bot",
            "--label",
            "flaky",
        ])
        .unwrap();
        let Some(Command::Monitor(m)) = cli.command else {
            panic!("not monitor")
        };
        assert_eq!(m.label, vec!["ci-health", "bot", "flaky"]);
    }
}
