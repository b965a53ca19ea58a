//! The fallback decorator: a chain of models or providers tried in order.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::{Error, ErrorKind, Result};
use crate::model::ChatModel;
use crate::protocol::{ChatRequest, ChatResponse};

struct Link {
    model: Arc<dyn ChatModel>,
    model_name: Option<String>,
}

/// Tries each model in turn while the error is one another model may not have
/// ([`Error::is_fallbackable`]: quota, 5xx or 429 after retries, timeouts, context length).
/// The answer's `meta.fallback_index` says which one answered (0 is the primary); its
/// `meta.attempts` (or the final error's [`Error::attempts`]) adds up the attempts on every
/// model tried.
pub struct Fallback {
    chain: Vec<Link>,
}

impl fmt::Debug for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self
            .chain
            .iter()
            .map(|l| l.model_name.as_deref().unwrap_or("(request model)"))
            .collect();
        f.debug_struct("Fallback").field("chain", &names).finish()
    }
}

impl Fallback {
    /// A chain that starts with `primary`, called with the request's own model.
    pub fn new(primary: impl ChatModel + 'static) -> Self {
        Self {
            chain: vec![Link {
                model: Arc::new(primary),
                model_name: None,
            }],
        }
    }

    /// Adds `next`, called with the request's own model (another provider).
    #[must_use]
    pub fn then(mut self, next: impl ChatModel + 'static) -> Self {
        self.chain.push(Link {
            model: Arc::new(next),
            model_name: None,
        });
        self
    }

    /// Adds `next`, called with the model (or deployment) `model` instead of the request's.
    #[must_use]
    pub fn then_model(mut self, next: impl ChatModel + 'static, model: impl Into<String>) -> Self {
        self.chain.push(Link {
            model: Arc::new(next),
            model_name: Some(model.into()),
        });
        self
    }

    /// The number of models in the chain.
    pub fn len(&self) -> usize {
        self.chain.len()
    }

    /// Always false: a chain has its primary.
    pub fn is_empty(&self) -> bool {
        self.chain.is_empty()
    }
}

#[async_trait]
impl ChatModel for Fallback {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse> {
        let mut failures = Vec::new();
        // API attempts spent on the models that failed.
        let mut spent = 0u32;
        for (i, link) in self.chain.iter().enumerate() {
            let result = match &link.model_name {
                Some(name) => {
                    let mut req = request.clone();
                    req.model.clone_from(name);
                    link.model.complete(&req).await
                }
                None => link.model.complete(request).await,
            };
            match result {
                Ok(mut r) => {
                    r.meta.fallback_index = i;
                    r.meta.attempts = spent.saturating_add(r.meta.attempts.max(1));
                    if i > 0 {
                        tracing::info!(fallback_index = i, model = %r.meta.model, "a fallback model answered");
                    }
                    return Ok(r);
                }
                Err(e) if e.is_fallbackable() && i + 1 < self.chain.len() => {
                    tracing::warn!(fallback_index = i, error = %e, "falling back to the next model");
                    spent = spent.saturating_add(e.attempts().max(1));
                    failures.push(e);
                }
                Err(e) if failures.is_empty() => return Err(e),
                Err(e) => {
                    spent = spent.saturating_add(e.attempts().max(1));
                    let mut message = String::from("every model in the fallback chain failed: ");
                    for (n, f) in failures.iter().enumerate() {
                        message.push_str(&format!("[{n}] {f}; "));
                    }
                    message.push_str(&format!("[{i}] {e}"));
                    return Err(Error::new(ErrorKind::Exhausted, message)
                        .with_source(e)
                        .with_attempts(spent));
                }
            }
        }
        Err(Error::config(
            "the fallback chain is empty: expected at least one model",
        ))
    }

    /// Passed on to every model of the chain (any of them may have given the answer).
    async fn invalidate(&self, request: &ChatRequest) {
        for link in &self.chain {
            match &link.model_name {
                Some(name) => {
                    let mut req = request.clone();
                    req.model.clone_from(name);
                    link.model.invalidate(&req).await;
                }
                None => link.model.invalidate(request).await,
            }
        }
    }

    /// The first model of the chain that keeps an answer (`meta.fallback_index` says which).
    async fn peek(&self, request: &ChatRequest) -> Option<ChatResponse> {
        for (i, link) in self.chain.iter().enumerate() {
            let found = match &link.model_name {
                Some(name) => {
                    let mut req = request.clone();
                    req.model.clone_from(name);
                    link.model.peek(&req).await
                }
                None => link.model.peek(request).await,
            };
            if let Some(mut r) = found {
                r.meta.fallback_index = i;
                return Some(r);
            }
        }
        None
    }
}
