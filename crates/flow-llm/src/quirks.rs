//! Per-model adjustments: reasoning models take `max_completion_tokens` and no sampling knobs.

use crate::protocol::ChatRequest;

/// What a model family accepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModelQuirks {
    /// A reasoning model (o1, o3, o4, gpt-5 ...): no `temperature`/`top_p`, and the token limit
    /// is `max_completion_tokens`.
    pub reasoning: bool,
    /// The server only knows the legacy `max_tokens` name of the token limit.
    pub legacy_max_tokens: bool,
    /// The context window in tokens, when known; prompts are checked against it.
    pub context_window: Option<u32>,
}

/// A table from model-name prefixes to [`ModelQuirks`]; the first matching rule wins.
///
/// Names are matched lower-cased and without a vendor prefix (`openai/o3-mini` matches `o3`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quirks {
    rules: Vec<(String, ModelQuirks)>,
}

const fn reasoning(window: u32) -> ModelQuirks {
    ModelQuirks {
        reasoning: true,
        legacy_max_tokens: false,
        context_window: Some(window),
    }
}

const fn chat(window: u32) -> ModelQuirks {
    ModelQuirks {
        reasoning: false,
        legacy_max_tokens: false,
        context_window: Some(window),
    }
}

impl Default for Quirks {
    fn default() -> Self {
        let rules = [
            ("gpt-5-chat", chat(128_000)),
            ("gpt-5", reasoning(400_000)),
            ("o1-mini", reasoning(128_000)),
            ("o1", reasoning(200_000)),
            ("o3", reasoning(200_000)),
            ("o4", reasoning(200_000)),
            ("gpt-4.1", chat(1_047_576)),
            ("gpt-4o", chat(128_000)),
            ("gpt-4-turbo", chat(128_000)),
            ("gpt-4", chat(8_192)),
            ("gpt-3.5", chat(16_385)),
        ];
        Self {
            rules: rules.into_iter().map(|(p, q)| (p.to_owned(), q)).collect(),
        }
    }
}

impl Quirks {
    /// An empty table: every model gets [`ModelQuirks::default`].
    pub fn none() -> Self {
        Self { rules: Vec::new() }
    }

    /// Adds a rule that takes precedence over the existing ones.
    #[must_use]
    pub fn with_rule(mut self, prefix: impl Into<String>, quirks: ModelQuirks) -> Self {
        self.rules
            .insert(0, (prefix.into().to_ascii_lowercase(), quirks));
        self
    }

    /// The quirks of `model`.
    pub fn lookup(&self, model: &str) -> ModelQuirks {
        let name = model
            .rsplit('/')
            .next()
            .unwrap_or(model)
            .to_ascii_lowercase();
        self.rules
            .iter()
            .find(|(prefix, _)| name.starts_with(prefix.as_str()))
            .map(|(_, q)| *q)
            .unwrap_or_default()
    }

    /// Adjusts `request` for its model and returns the names of the parameters it dropped or
    /// renamed, for a warning.
    pub fn apply(&self, request: &mut ChatRequest) -> Vec<&'static str> {
        let q = self.lookup(&request.model);
        let mut changed = Vec::new();
        if q.reasoning {
            if request.temperature.take().is_some() {
                changed.push("temperature");
            }
            if request.top_p.take().is_some() {
                changed.push("top_p");
            }
            if let Some(n) = request.max_tokens.take() {
                request.max_completion_tokens.get_or_insert(n);
                changed.push("max_tokens");
            }
        } else if q.legacy_max_tokens
            && let Some(n) = request.max_completion_tokens.take()
        {
            request.max_tokens = Some(n);
            changed.push("max_completion_tokens");
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasoning_models_drop_sampling() {
        let q = Quirks::default();
        for m in ["o1", "o3-mini", "openai/o4-mini", "gpt-5", "GPT-5-mini"] {
            let mut r = ChatRequest::new(m).with_temperature(0.2).with_top_p(0.9);
            assert_eq!(q.apply(&mut r), vec!["temperature", "top_p"], "{m}");
            assert_eq!((r.temperature, r.top_p), (None, None));
        }
        let mut r = ChatRequest::new("gpt-4o").with_temperature(0.2);
        assert!(q.apply(&mut r).is_empty());
        assert_eq!(r.temperature, Some(0.2));
    }

    #[test]
    fn overrides_win() {
        let q = Quirks::default().with_rule(
            "gpt-4o",
            ModelQuirks {
                reasoning: true,
                ..ModelQuirks::default()
            },
        );
        assert!(q.lookup("gpt-4o-mini").reasoning);
        let q = Quirks::none().with_rule(
            "llama",
            ModelQuirks {
                legacy_max_tokens: true,
                ..ModelQuirks::default()
            },
        );
        let mut r = ChatRequest::new("llama3").with_max_completion_tokens(9);
        q.apply(&mut r);
        assert_eq!((r.max_tokens, r.max_completion_tokens), (Some(9), None));
    }
}
