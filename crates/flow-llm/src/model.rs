//! The `ChatModel` seam: one Chat Completions call. The HTTP client and every decorator
//! implement it, so a stack is composed like tower layers.

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::Result;
use crate::protocol::{ChatRequest, ChatResponse};

/// Something that answers a Chat Completions request: the HTTP client, a decorator around
/// another `ChatModel`, or a test double.
#[async_trait]
pub trait ChatModel: Send + Sync {
    /// Answers `request`.
    ///
    /// # Errors
    /// An [`crate::Error`] whose predicates (`is_retryable`, `is_fallbackable`, `retry_after`)
    /// tell the decorators what to do.
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse>;

    /// Tells every layer that keeps answers that the answer to `request` is unusable (it
    /// failed the caller's own checks, such as [`crate::delegate()`]'s schema validation), so
    /// it must not be served again: [`crate::Cached`] drops it from its store and from its
    /// in-process tier. Decorators pass it on to their inner model; the default does nothing
    /// (a model that keeps no answers has nothing to drop).
    async fn invalidate(&self, request: &ChatRequest) {
        let _ = request;
    }

    /// A fresh answer to `request` that some layer keeps, served without any API call, or
    /// `None`. [`crate::Budgeted`] asks for one when its budget is spent, since a cached answer
    /// costs nothing. [`crate::Cached`] answers with a fresh hit (never a stale answer or a
    /// share of a call in flight, which may need the API); decorators pass it on; the default
    /// is `None` (a model that keeps no answers has none).
    async fn peek(&self, request: &ChatRequest) -> Option<ChatResponse> {
        let _ = request;
        None
    }
}

#[async_trait]
impl<M: ChatModel + ?Sized> ChatModel for Arc<M> {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse> {
        (**self).complete(request).await
    }

    async fn invalidate(&self, request: &ChatRequest) {
        (**self).invalidate(request).await;
    }

    async fn peek(&self, request: &ChatRequest) -> Option<ChatResponse> {
        (**self).peek(request).await
    }
}

#[async_trait]
impl<M: ChatModel + ?Sized> ChatModel for Box<M> {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse> {
        (**self).complete(request).await
    }

    async fn invalidate(&self, request: &ChatRequest) {
        (**self).invalidate(request).await;
    }

    async fn peek(&self, request: &ChatRequest) -> Option<ChatResponse> {
        (**self).peek(request).await
    }
}

#[async_trait]
impl<M: ChatModel + ?Sized> ChatModel for &M {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse> {
        (**self).complete(request).await
    }

    async fn invalidate(&self, request: &ChatRequest) {
        (**self).invalidate(request).await;
    }

    async fn peek(&self, request: &ChatRequest) -> Option<ChatResponse> {
        (**self).peek(request).await
    }
}

/// Wraps a model in the decorators of this crate, like tower's `ServiceBuilder`:
/// `client.with_retry(policy).with_budget(budget)`.
pub trait ChatModelExt: ChatModel + Sized {
    /// Retries with `policy`.
    fn with_retry(self, policy: crate::retry::RetryPolicy) -> crate::retry::Retry<Self> {
        crate::retry::Retry::new(self, policy)
    }

    /// Counts usage and enforces `budget`.
    fn with_budget(self, budget: crate::budget::Budget) -> crate::budget::Budgeted<Self> {
        crate::budget::Budgeted::new(self, budget)
    }

    /// Caches answers in `cache`, keys scoped to `scope` (the base URL).
    ///
    /// # Errors
    /// As [`crate::Cached::new`].
    fn with_cache(
        self,
        cache: flow_cache::Cache,
        scope: impl Into<String>,
    ) -> Result<crate::cached::Cached<Self>>
    where
        Self: 'static,
    {
        crate::cached::Cached::new(self, cache, scope)
    }

    /// Caches answers in a fresh in-memory cache ([`flow_cache::MemoryStore`] with its
    /// default bounds), keys scoped to `scope` (the base URL). For Redis or shared caches,
    /// build a [`crate::Cache`] and use [`ChatModelExt::with_cache`].
    ///
    /// # Errors
    /// As [`crate::Cached::new`], and [`crate::ErrorKind::Cache`] if the memory store cannot
    /// be set up.
    fn with_memory_cache(self, scope: impl Into<String>) -> Result<crate::cached::Cached<Self>>
    where
        Self: 'static,
    {
        let cache =
            flow_cache::Cache::in_memory(flow_cache::MemoryConfig::default()).map_err(|e| {
                crate::error::Error::new(
                    crate::error::ErrorKind::Cache,
                    format!("the in-memory answer cache could not be set up: {e}"),
                )
                .with_source(e)
            })?;
        crate::cached::Cached::new(self, cache, scope)
    }

    /// Tries `next` (with the request's model) when this one fails with a fallbackable error.
    /// Chain more with [`crate::Fallback::then`] or [`crate::Fallback::then_model`].
    fn or_fallback(self, next: impl ChatModel + 'static) -> crate::fallback::Fallback
    where
        Self: 'static,
    {
        crate::fallback::Fallback::new(self).then(next)
    }

    /// Tries `next` with the model (or Azure deployment) `model` instead of the request's
    /// when this one fails with a fallbackable error ([`crate::Error::is_fallbackable`]:
    /// quota, 5xx or 429 after retries, timeouts, context length). `next` may be the same
    /// client: `client.clone().or_fallback_model(client, "gpt-4o-mini")`.
    fn or_fallback_model(
        self,
        next: impl ChatModel + 'static,
        model: impl Into<String>,
    ) -> crate::fallback::Fallback
    where
        Self: 'static,
    {
        crate::fallback::Fallback::new(self).then_model(next, model)
    }
}

impl<M: ChatModel + Sized> ChatModelExt for M {}
