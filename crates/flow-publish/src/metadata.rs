//! Typed `action.yml`: the metadata of a GitHub Action, read and written with field order kept.
//!
//! Writing always emits keys in GitHub's documented order (`name`, `author`, `description`,
//! `inputs`, `outputs`, `runs`, `branding`); inputs, outputs, `with:` and `env:` keep their own
//! order. Multi-line strings (descriptions, `run:` scripts) are written as literal block scalars
//! and read back byte for byte.

use std::path::Path;

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{Error, Result};

/// An ordered string map (`with:`, `env:`).
pub type StringMap = IndexMap<String, String>;

/// The whole `action.yml`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionMetadata {
    /// The action's name, shown in the Actions tab. Required.
    #[serde(default)]
    pub name: String,
    /// The action's author.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// A short description. Required.
    #[serde(default)]
    pub description: String,
    /// Inputs, in the order they are written.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub inputs: IndexMap<String, Input>,
    /// Outputs, in the order they are written.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub outputs: IndexMap<String, Output>,
    /// How the action runs. Required; `None` only for a file that lacks it (validation reports it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runs: Option<Runs>,
    /// The Marketplace badge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branding: Option<Branding>,
}

/// One entry of `inputs:`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// What the input is for. Required by GitHub.
    #[serde(default)]
    pub description: String,
    /// Whether the workflow must set it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
    /// The default, as the string the runner passes (YAML booleans and numbers are read as text).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_scalar_string"
    )]
    pub default: Option<String>,
    /// Shown as a warning when a workflow sets this input.
    #[serde(
        default,
        rename = "deprecationMessage",
        skip_serializing_if = "Option::is_none"
    )]
    pub deprecation_message: Option<String>,
}

impl Input {
    /// An optional input with a description.
    #[must_use]
    pub fn new(description: impl Into<String>) -> Self {
        Self {
            description: description.into(),
            ..Self::default()
        }
    }

    /// Sets `required:`.
    #[must_use]
    pub fn with_required(mut self, required: bool) -> Self {
        self.required = Some(required);
        self
    }

    /// Sets `default:`.
    #[must_use]
    pub fn with_default(mut self, default: impl Into<String>) -> Self {
        self.default = Some(default.into());
        self
    }

    /// Sets `deprecationMessage:`.
    #[must_use]
    pub fn with_deprecation_message(mut self, message: impl Into<String>) -> Self {
        self.deprecation_message = Some(message.into());
        self
    }
}

/// One entry of `outputs:`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Output {
    /// What the output holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The expression giving its value; required for composite actions, e.g.
    /// `${{ steps.run.outputs.decision }}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl Output {
    /// An output with a description and a value expression.
    #[must_use]
    pub fn new(description: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            description: Some(description.into()),
            value: Some(value.into()),
        }
    }
}

/// `branding:`: the Marketplace badge. Values are checked by validation against
/// [`BRANDING_COLORS`](crate::BRANDING_COLORS) and [`BRANDING_ICONS`](crate::BRANDING_ICONS).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Branding {
    /// A Feather icon name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
    /// The badge's background color.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
}

impl Branding {
    /// A badge with an icon and a color.
    #[must_use]
    pub fn new(icon: impl Into<String>, color: impl Into<String>) -> Self {
        Self {
            icon: Some(icon.into()),
            color: Some(color.into()),
        }
    }
}

/// `runs:`. Written as composite by this crate; node and docker actions are accepted when reading.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Runs {
    /// `using: composite`.
    Composite(CompositeRuns),
    /// `using: node20` (or another `nodeNN`).
    Node(NodeRuns),
    /// `using: docker`.
    Docker(DockerRuns),
}

impl Runs {
    /// Composite runs with these steps.
    #[must_use]
    pub fn composite(steps: Vec<Step>) -> Self {
        Self::Composite(CompositeRuns {
            using: "composite".to_owned(),
            steps,
        })
    }

    /// The `using:` value.
    #[must_use]
    pub fn using(&self) -> &str {
        match self {
            Self::Composite(r) => &r.using,
            Self::Node(r) => &r.using,
            Self::Docker(r) => &r.using,
        }
    }
}

impl<'de> Deserialize<'de> for Runs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let value = serde_norway::Value::deserialize(deserializer)?;
        let using = value
            .get("using")
            .and_then(serde_norway::Value::as_str)
            .ok_or_else(|| {
                D::Error::custom(
                    "runs.using: expected `composite`, `docker` or `nodeNN` (e.g. `node20`)",
                )
            })?
            .to_owned();
        let runs = if using == "composite" {
            Self::Composite(serde_norway::from_value(value).map_err(D::Error::custom)?)
        } else if using == "docker" {
            Self::Docker(serde_norway::from_value(value).map_err(D::Error::custom)?)
        } else if using
            .strip_prefix("node")
            .is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        {
            Self::Node(serde_norway::from_value(value).map_err(D::Error::custom)?)
        } else {
            return Err(D::Error::custom(format!(
                "runs.using: expected `composite`, `docker` or `nodeNN` (e.g. `node20`), found `{using}`"
            )));
        };
        Ok(runs)
    }
}

/// `runs:` of a composite action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompositeRuns {
    /// Always `composite`.
    pub using: String,
    /// The steps, in order.
    #[serde(default)]
    pub steps: Vec<Step>,
}

/// `runs:` of a JavaScript action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeRuns {
    /// `node20`, `node24`, ...
    pub using: String,
    /// The entry point, e.g. `dist/index.js`.
    #[serde(default)]
    pub main: String,
    /// Script run before `main`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre: Option<String>,
    /// Condition for `pre`.
    #[serde(default, rename = "pre-if", skip_serializing_if = "Option::is_none")]
    pub pre_if: Option<String>,
    /// Script run after the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post: Option<String>,
    /// Condition for `post`.
    #[serde(default, rename = "post-if", skip_serializing_if = "Option::is_none")]
    pub post_if: Option<String>,
}

/// `runs:` of a container action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerRuns {
    /// Always `docker`.
    pub using: String,
    /// `Dockerfile` or `docker://image:tag`.
    #[serde(default)]
    pub image: String,
    /// Container environment (values read as text).
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "map_scalar_string"
    )]
    pub env: StringMap,
    /// Container arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Overrides the image's entrypoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<String>,
    /// Entrypoint run before the main one.
    #[serde(
        default,
        rename = "pre-entrypoint",
        skip_serializing_if = "Option::is_none"
    )]
    pub pre_entrypoint: Option<String>,
    /// Condition for `pre-entrypoint`.
    #[serde(default, rename = "pre-if", skip_serializing_if = "Option::is_none")]
    pub pre_if: Option<String>,
    /// Entrypoint run after the job.
    #[serde(
        default,
        rename = "post-entrypoint",
        skip_serializing_if = "Option::is_none"
    )]
    pub post_entrypoint: Option<String>,
    /// Condition for `post-entrypoint`.
    #[serde(default, rename = "post-if", skip_serializing_if = "Option::is_none")]
    pub post_if: Option<String>,
}

/// A boolean, or a `${{ }}` expression that evaluates to one (as `continue-on-error:` takes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BoolOrExpression {
    /// `true` or `false`.
    Bool(bool),
    /// An expression such as `${{ inputs.allow-failure == 'true' }}`.
    Expression(String),
}

/// One step of a composite action: either a `run:` script or a `uses:` action.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Step id, referenced by `steps.<id>.outputs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Condition.
    #[serde(default, rename = "if", skip_serializing_if = "Option::is_none")]
    pub if_: Option<String>,
    /// An action reference: `owner/repo@<40-hex sha>`, `./path` or `docker://image`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uses: Option<String>,
    /// Inputs of the `uses:` action (values read as text).
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "map_scalar_string"
    )]
    pub with: StringMap,
    /// The script; pass inputs through `env:`, never `${{ inputs.* }}` inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// The shell for `run:`; required in composite actions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    /// Environment for the step (values read as text).
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "map_scalar_string"
    )]
    pub env: StringMap,
    /// Working directory for `run:`.
    #[serde(
        default,
        rename = "working-directory",
        skip_serializing_if = "Option::is_none"
    )]
    pub working_directory: Option<String>,
    /// Whether a failure of this step lets the action go on.
    #[serde(
        default,
        rename = "continue-on-error",
        skip_serializing_if = "Option::is_none"
    )]
    pub continue_on_error: Option<BoolOrExpression>,
}

impl Step {
    /// A `run:` step with a shell.
    #[must_use]
    pub fn run(
        name: impl Into<String>,
        shell: impl Into<String>,
        script: impl Into<String>,
    ) -> Self {
        Self {
            name: Some(name.into()),
            run: Some(script.into()),
            shell: Some(shell.into()),
            ..Self::default()
        }
    }

    /// A `uses:` step.
    #[must_use]
    pub fn uses(name: impl Into<String>, action: impl Into<String>) -> Self {
        Self {
            name: Some(name.into()),
            uses: Some(action.into()),
            ..Self::default()
        }
    }

    /// Sets `id:`.
    #[must_use]
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Sets `if:`.
    #[must_use]
    pub fn with_if(mut self, condition: impl Into<String>) -> Self {
        self.if_ = Some(condition.into());
        self
    }

    /// Adds one `env:` entry.
    #[must_use]
    pub fn with_env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    /// Adds all these `env:` entries, in order.
    #[must_use]
    pub fn with_envs(mut self, env: impl IntoIterator<Item = (String, String)>) -> Self {
        self.env.extend(env);
        self
    }

    /// Adds one `with:` entry.
    #[must_use]
    pub fn with_input(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.with.insert(key.into(), value.into());
        self
    }

    /// Sets `working-directory:`.
    #[must_use]
    pub fn with_working_directory(mut self, dir: impl Into<String>) -> Self {
        self.working_directory = Some(dir.into());
        self
    }
}

impl ActionMetadata {
    /// Metadata with a name and description and nothing else yet.
    #[must_use]
    pub fn new(name: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            description: description.into(),
            ..Self::default()
        }
    }

    /// Sets `author:`.
    #[must_use]
    pub fn with_author(mut self, author: impl Into<String>) -> Self {
        self.author = Some(author.into());
        self
    }

    /// Sets `branding:`.
    #[must_use]
    pub fn with_branding(mut self, branding: Branding) -> Self {
        self.branding = Some(branding);
        self
    }

    /// Sets `runs:`.
    #[must_use]
    pub fn with_runs(mut self, runs: Runs) -> Self {
        self.runs = Some(runs);
        self
    }

    /// Adds (or replaces) one input, keeping its first position.
    #[must_use]
    pub fn with_input(mut self, id: impl Into<String>, input: Input) -> Self {
        self.inputs.insert(id.into(), input);
        self
    }

    /// Adds (or replaces) one output, keeping its first position.
    #[must_use]
    pub fn with_output(mut self, id: impl Into<String>, output: Output) -> Self {
        self.outputs.insert(id.into(), output);
        self
    }

    /// The `env:` entries that hand every input to a script safely: `INPUT_<ID>` (upper-cased,
    /// spaces as `_`, as `@actions/core` names them) set to `${{ inputs.<id> }}`, in input order.
    ///
    /// Composite actions do not get `INPUT_*` variables from the runner, so a `run:` step that
    /// wants them must declare these.
    #[must_use]
    pub fn inputs_env(&self) -> StringMap {
        self.inputs
            .keys()
            .map(|id| (input_env_name(id), format!("${{{{ inputs.{id} }}}}")))
            .collect()
    }

    /// Parses an `action.yml`. Node and docker `runs:` are accepted.
    ///
    /// # Errors
    /// [`ErrorKind::Yaml`](crate::ErrorKind::Yaml) naming the line and field that do not parse.
    pub fn from_yaml(text: &str) -> Result<Self> {
        serde_norway::from_str(text).map_err(Error::yaml)
    }

    /// Writes the metadata as YAML, keys in GitHub's documented order, multi-line strings as
    /// literal block scalars.
    ///
    /// # Errors
    /// [`ErrorKind::Yaml`](crate::ErrorKind::Yaml) if serialization fails (it does not for
    /// values built with this crate's types).
    pub fn to_yaml(&self) -> Result<String> {
        serde_norway::to_string(self).map_err(Error::yaml)
    }

    /// [`to_yaml`](Self::to_yaml) preceded by `header` as `#` comment lines (e.g. "Generated by
    /// ... do not edit").
    ///
    /// # Errors
    /// As [`to_yaml`](Self::to_yaml).
    pub fn to_yaml_with_header(&self, header: &str) -> Result<String> {
        let mut out = String::new();
        for line in header.lines() {
            if line.is_empty() {
                out.push_str("#\n");
            } else {
                out.push_str("# ");
                out.push_str(line);
                out.push('\n');
            }
        }
        out.push_str(&self.to_yaml()?);
        Ok(out)
    }

    /// Reads and parses an `action.yml` file.
    ///
    /// # Errors
    /// [`ErrorKind::Io`](crate::ErrorKind::Io) or [`ErrorKind::Yaml`](crate::ErrorKind::Yaml).
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_yaml(&text).map_err(|e| match e.kind() {
            crate::ErrorKind::Yaml { message } => Error::new(crate::ErrorKind::Yaml {
                message: format!("{}: {message}", path.display()),
            }),
            _ => e,
        })
    }

    /// The composite steps, or an empty slice for other kinds of action.
    #[must_use]
    pub fn steps(&self) -> &[Step] {
        match &self.runs {
            Some(Runs::Composite(c)) => &c.steps,
            _ => &[],
        }
    }
}

/// The environment variable name `@actions/core` reads for input `id`: `INPUT_` + the id
/// upper-cased with spaces as `_` (hyphens are kept).
#[must_use]
pub fn input_env_name(id: &str) -> String {
    format!("INPUT_{}", id.replace(' ', "_").to_uppercase())
}

fn scalar_to_string<E: serde::de::Error>(value: serde_norway::Value) -> Result<String, E> {
    use serde_norway::Value;
    match value {
        Value::String(s) => Ok(s),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Null => Ok(String::new()),
        other => Err(E::custom(format!(
            "expected a string, boolean or number, found {other:?}"
        ))),
    }
}

fn opt_scalar_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value = Option::<serde_norway::Value>::deserialize(d)?;
    value.map(scalar_to_string).transpose()
}

fn map_scalar_string<'de, D: Deserializer<'de>>(d: D) -> Result<StringMap, D::Error> {
    let map = Option::<IndexMap<String, serde_norway::Value>>::deserialize(d)?;
    map.unwrap_or_default()
        .into_iter()
        .map(|(k, v)| scalar_to_string(v).map(|v| (k, v)))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn multiline_strings_are_block_scalars_and_round_trip() {
        let script = "set -euo pipefail\necho \"$INPUT_NAME\"\nif true; then\n  echo nested\nfi\n";
        let meta = ActionMetadata::new("n", "first line\nsecond line")
            .with_runs(Runs::composite(vec![Step::run("s", "bash", script)]));
        let yaml = meta.to_yaml().unwrap();
        assert!(
            yaml.contains("description: |-\n  first line\n  second line\n"),
            "{yaml}"
        );
        assert!(yaml.contains("run: |\n"), "{yaml}");
        assert_eq!(ActionMetadata::from_yaml(&yaml).unwrap(), meta);
    }

    #[test]
    fn scalars_in_with_and_default_read_as_text() {
        let yaml = "name: a\ndescription: b\ninputs:\n  depth:\n    description: d\n    default: 0\n    required: false\nruns:\n  using: composite\n  steps:\n  - uses: actions/checkout@v4\n    with:\n      fetch-depth: 0\n      lfs: true\n";
        let meta = ActionMetadata::from_yaml(yaml).unwrap();
        assert_eq!(meta.inputs["depth"].default.as_deref(), Some("0"));
        assert_eq!(meta.steps()[0].with["lfs"], "true");
    }

    #[test]
    fn unknown_keys_are_rejected_not_dropped() {
        let err = ActionMetadata::from_yaml(
            "name: a\ndescription: b\ninputs:\n  x:\n    description: d\n    require: true\n",
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("unknown field `require`"), "{text}");
        assert!(text.contains("line 6"), "{text}");
    }

    #[test]
    fn unknown_using_is_rejected_with_the_field() {
        let err = ActionMetadata::from_yaml("name: a\ndescription: b\nruns:\n  using: python\n")
            .unwrap_err();
        assert!(err.to_string().contains("runs.using"), "{err}");
        assert!(err.to_string().contains("python"), "{err}");
    }

    #[test]
    fn inputs_env_names_follow_actions_core() {
        let meta = ActionMetadata::new("a", "b")
            .with_input("api-key", Input::new("k"))
            .with_input("my input", Input::new("k"));
        let env = meta.inputs_env();
        assert_eq!(env["INPUT_API-KEY"], "${{ inputs.api-key }}");
        assert_eq!(env["INPUT_MY_INPUT"], "${{ inputs.my input }}");
    }
}
