//! Accounting of usage and the budget decorator.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use crate::error::{Error, ErrorKind, Result};
use crate::model::ChatModel;
use crate::protocol::{CacheStatus, ChatRequest, ChatResponse};

/// Limits per run; `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Budget {
    /// The most tokens (prompt plus completion) the run may spend.
    pub max_tokens: Option<u64>,
    /// The most calls that try the API, failed ones included (cache hits are free).
    pub max_calls: Option<u64>,
}

impl Budget {
    /// No limits: only accounting.
    pub fn unlimited() -> Self {
        Self::default()
    }

    /// Sets the token limit.
    #[must_use]
    pub fn with_max_tokens(mut self, n: u64) -> Self {
        self.max_tokens = Some(n);
        self
    }

    /// Sets the call limit.
    #[must_use]
    pub fn with_max_calls(mut self, n: u64) -> Self {
        self.max_calls = Some(n);
        self
    }
}

/// A snapshot of the totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Totals {
    /// Calls through the layer that succeeded and were not cache hits.
    pub calls: u64,
    /// Calls that failed (after their retries and fallbacks).
    pub failures: u64,
    /// API attempts of every call that was not a cache hit, successful or failed: first tries,
    /// retries, the models a fallback chain tried, and the failed attempts behind a stale
    /// answer.
    pub attempts: u64,
    /// Attempts beyond the first of every call, successful or failed (a retry, or a switch to
    /// the next model of a fallback chain).
    pub retries: u64,
    /// Fresh cache hits and calls that shared an identical call in flight.
    pub cache_hits: u64,
    /// Stale answers served because every model failed.
    pub stale_answers: u64,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// Prompt plus completion tokens.
    pub total_tokens: u64,
    /// Prompt tokens served from the provider's prompt cache.
    pub cached_tokens: u64,
    /// Reasoning tokens.
    pub reasoning_tokens: u64,
}

#[derive(Debug, Default)]
struct Counters {
    reserved: AtomicU64,
    calls: AtomicU64,
    failures: AtomicU64,
    attempts: AtomicU64,
    retries: AtomicU64,
    cache_hits: AtomicU64,
    stale_answers: AtomicU64,
    prompt_tokens: AtomicU64,
    completion_tokens: AtomicU64,
    total_tokens: AtomicU64,
    cached_tokens: AtomicU64,
    reasoning_tokens: AtomicU64,
}

/// Shared usage totals; clones count into the same totals.
#[derive(Debug, Clone, Default)]
pub struct Accounting {
    counters: Arc<Counters>,
}

impl Accounting {
    /// Fresh zero totals.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current totals.
    pub fn totals(&self) -> Totals {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Totals {
            calls: get(&c.calls),
            failures: get(&c.failures),
            attempts: get(&c.attempts),
            retries: get(&c.retries),
            cache_hits: get(&c.cache_hits),
            stale_answers: get(&c.stale_answers),
            prompt_tokens: get(&c.prompt_tokens),
            completion_tokens: get(&c.completion_tokens),
            total_tokens: get(&c.total_tokens),
            cached_tokens: get(&c.cached_tokens),
            reasoning_tokens: get(&c.reasoning_tokens),
        }
    }

    /// Counts one answer.
    pub fn record(&self, response: &ChatResponse) {
        let c = &self.counters;
        let add = |a: &AtomicU64, n: u64| {
            a.fetch_add(n, Ordering::Relaxed);
        };
        match response.meta.cache {
            CacheStatus::Hit | CacheStatus::Coalesced => return add(&c.cache_hits, 1),
            CacheStatus::Stale => {
                // The failed attempts that made it stand in were real API traffic.
                if response.meta.attempts > 0 {
                    self.record_attempts(response.meta.attempts);
                }
                return add(&c.stale_answers, 1);
            }
            CacheStatus::Miss | CacheStatus::Bypass => {}
        }
        add(&c.calls, 1);
        self.record_attempts(response.meta.attempts);
        if let Some(u) = response.usage {
            add(&c.prompt_tokens, u.prompt_tokens);
            add(&c.completion_tokens, u.completion_tokens);
            add(&c.total_tokens, u.total());
            add(&c.cached_tokens, u.cached_tokens());
            add(&c.reasoning_tokens, u.reasoning_tokens());
        }
    }

    /// Counts one failed call and the API attempts it took ([`Error::attempts`], at least one:
    /// a failed call may have reached the API).
    pub fn record_failure(&self, error: &Error) {
        self.counters.failures.fetch_add(1, Ordering::Relaxed);
        self.record_attempts(error.attempts());
    }

    fn record_attempts(&self, attempts: u32) {
        let attempts = u64::from(attempts.max(1));
        let c = &self.counters;
        c.attempts.fetch_add(attempts, Ordering::Relaxed);
        c.retries.fetch_add(attempts - 1, Ordering::Relaxed);
    }
}

/// Counts usage into an [`Accounting`] and refuses calls once the [`Budget`] is spent.
///
/// The call limit is enforced exactly under concurrency (a slot is reserved before the call
/// and released for cache hits; failed calls keep theirs); the token limit is checked before each call
/// against the tokens spent so far.
///
/// A budget limits API spend, so a spent budget still serves answers that cost nothing: when
/// the budget refuses a call, it asks the inner model for a kept answer
/// ([`ChatModel::peek`]: a fresh [`crate::Cached`] hit anywhere inside, through any
/// decorators) and serves it, counted as a cache hit; only when there is none is the call
/// refused with [`ErrorKind::BudgetExceeded`]. (With the cache outside,
/// `Cached<Budgeted<_>>`, hits never reach the budget at all.)
#[derive(Debug)]
pub struct Budgeted<M> {
    inner: M,
    budget: Budget,
    accounting: Accounting,
}

impl<M: ChatModel> Budgeted<M> {
    /// Wraps `inner` with `budget` and fresh totals.
    pub fn new(inner: M, budget: Budget) -> Self {
        Self {
            inner,
            budget,
            accounting: Accounting::new(),
        }
    }

    /// Counts into `accounting` (shared with other layers or runs).
    #[must_use]
    pub fn with_accounting(mut self, accounting: Accounting) -> Self {
        self.accounting = accounting;
        self
    }

    /// The totals handle.
    pub fn accounting(&self) -> &Accounting {
        &self.accounting
    }

    fn reserve(&self) -> Result<()> {
        let c = &self.accounting.counters;
        if let Some(max) = self.budget.max_tokens {
            let spent = c.total_tokens.load(Ordering::Relaxed);
            if spent >= max {
                return Err(Error::new(
                    ErrorKind::BudgetExceeded,
                    format!(
                        "the token budget of {max} per run is spent ({spent} used): raise max_tokens or stop delegating"
                    ),
                ));
            }
        }
        let reserved = c.reserved.fetch_add(1, Ordering::AcqRel);
        if let Some(max) = self.budget.max_calls
            && reserved >= max
        {
            c.reserved.fetch_sub(1, Ordering::AcqRel);
            return Err(Error::new(
                ErrorKind::BudgetExceeded,
                format!(
                    "the call budget of {max} per run is spent: raise max_calls or stop delegating"
                ),
            ));
        }
        Ok(())
    }
}

#[async_trait]
impl<M: ChatModel> ChatModel for Budgeted<M> {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse> {
        if let Err(refused) = self.reserve() {
            // A cached answer costs nothing: serve it even though the budget is spent.
            if let Some(r) = self.inner.peek(request).await {
                self.accounting.record(&r);
                return Ok(r);
            }
            return Err(refused);
        }
        let result = self.inner.complete(request).await;
        let c = &self.accounting.counters;
        match &result {
            Ok(r) => {
                if matches!(
                    r.meta.cache,
                    CacheStatus::Hit | CacheStatus::Coalesced | CacheStatus::Stale
                ) {
                    c.reserved.fetch_sub(1, Ordering::AcqRel);
                }
                self.accounting.record(r);
            }
            Err(e) => {
                // A failed call may have reached the API (and been billed): it keeps its slot.
                self.accounting.record_failure(e);
            }
        }
        result
    }

    async fn invalidate(&self, request: &ChatRequest) {
        self.inner.invalidate(request).await;
    }

    async fn peek(&self, request: &ChatRequest) -> Option<ChatResponse> {
        self.inner.peek(request).await
    }
}
