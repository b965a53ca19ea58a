//! Accounting of usage and the budget decorator.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use crate::error::{Error, ErrorKind, Result};
use crate::model::ChatModel;
use crate::protocol::{CacheStatus, ChatRequest, ChatResponse};

/// How a token limit is enforced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Enforcement {
    /// A call is refused once the tokens already spent reach the limit; the call that
    /// crosses it is allowed, so a run may end above the limit by at most one call's usage.
    #[default]
    Soft,
    /// A call is refused when it *could* cross the limit: its worst case (an upper bound of
    /// its prompt tokens plus its completion cap, see [`Budget`]) is reserved before it
    /// starts, next to the tokens spent and those reserved by calls in flight. The limit is
    /// never crossed; each request must carry a completion cap (`max_completion_tokens` or
    /// `max_tokens`).
    Hard,
}

/// Limits per run; `None` is unlimited.
///
/// # Soft and hard token limits
///
/// The token limit is [`Enforcement::Soft`] by default: a call is refused once the tokens
/// spent so far reach `max_tokens`, and the call that crosses the limit runs (its usage is
/// only known once it answers). [`Budget::hard`] makes it [`Enforcement::Hard`]: before each
/// call the budget reserves the call's worst case, and refuses the call (with
/// [`ErrorKind::BudgetExceeded`]) when spent + reserved + worst case would exceed the limit.
/// The worst case is the request's completion cap (`max_completion_tokens`, else
/// `max_tokens`) plus an upper bound of its prompt tokens: one token per byte of the request
/// as JSON (a token of OpenAI's tokenizers covers at least one byte, and the JSON syntax
/// outweighs the few tokens of chat formatting per message). The bound is pessimistic
/// (often 3–4× the real prompt), so a hard budget refuses early rather than late; after the
/// call the reservation is replaced by the usage the server reported. A request without a
/// completion cap cannot be bounded and is refused under a hard limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Budget {
    /// The most tokens (prompt plus completion) the run may spend.
    pub max_tokens: Option<u64>,
    /// The most calls that try the API, failed ones included (cache hits are free).
    pub max_calls: Option<u64>,
    /// Whether `max_tokens` may be crossed by the call that reaches it (soft, the default)
    /// or never (hard).
    pub enforcement: Enforcement,
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

    /// Makes the token limit hard: a call that could cross it is refused before it starts.
    #[must_use]
    pub fn hard(mut self) -> Self {
        self.enforcement = Enforcement::Hard;
        self
    }

    /// Makes the token limit soft (the default): the call that crosses it is allowed.
    #[must_use]
    pub fn soft(mut self) -> Self {
        self.enforcement = Enforcement::Soft;
        self
    }

    /// Sets how the token limit is enforced.
    #[must_use]
    pub fn with_enforcement(mut self, enforcement: Enforcement) -> Self {
        self.enforcement = enforcement;
        self
    }
}

/// The most tokens `request` can cost: an upper bound of its prompt (one token per byte of
/// its JSON) plus its completion cap; `None` when it has no completion cap.
pub fn worst_case_tokens(request: &ChatRequest) -> Option<u64> {
    let cap = request.max_completion_tokens.or(request.max_tokens)?;
    let prompt = serde_json::to_vec(request).map_or(u64::MAX, |b| b.len() as u64);
    Some(prompt.saturating_add(u64::from(cap)))
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
    /// Worst-case tokens of the calls in flight under a hard token limit.
    reserved_tokens: AtomicU64,
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
/// and released for cache hits; failed calls keep theirs). The token limit is soft by
/// default (checked before each call against the tokens spent so far) or hard (the call's
/// worst case is reserved, so the limit is never crossed); see [`Budget`].
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

    /// Reserves a call slot and, under a hard token limit, the call's worst-case tokens
    /// (returned, to be released once the call ends).
    fn reserve(&self, request: &ChatRequest) -> Result<u64> {
        let c = &self.accounting.counters;
        let mut tokens = 0;
        if let Some(max) = self.budget.max_tokens {
            match self.budget.enforcement {
                Enforcement::Soft => {
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
                Enforcement::Hard => tokens = self.reserve_tokens(request, max)?,
            }
        }
        let reserved = c.reserved.fetch_add(1, Ordering::AcqRel);
        if let Some(max) = self.budget.max_calls
            && reserved >= max
        {
            c.reserved.fetch_sub(1, Ordering::AcqRel);
            c.reserved_tokens.fetch_sub(tokens, Ordering::AcqRel);
            return Err(Error::new(
                ErrorKind::BudgetExceeded,
                format!(
                    "the call budget of {max} per run is spent: raise max_calls or stop delegating"
                ),
            ));
        }
        Ok(tokens)
    }

    /// Reserves the worst case of `request` under the hard limit `max`, or refuses it.
    fn reserve_tokens(&self, request: &ChatRequest, max: u64) -> Result<u64> {
        let c = &self.accounting.counters;
        let worst = worst_case_tokens(request).ok_or_else(|| {
            Error::new(
                ErrorKind::BudgetExceeded,
                format!(
                    "the hard token budget of {max} per run cannot bound a request without a completion cap: set max_completion_tokens (or max_tokens) on the request"
                ),
            )
        })?;
        let mut reserved = c.reserved_tokens.load(Ordering::Acquire);
        loop {
            let spent = c.total_tokens.load(Ordering::Acquire);
            let committed = spent.saturating_add(reserved);
            if committed.saturating_add(worst) > max {
                return Err(Error::new(
                    ErrorKind::BudgetExceeded,
                    format!(
                        "the hard token budget of {max} per run could be crossed: {spent} spent, {reserved} reserved by calls in flight, and this call may take {worst} (prompt bound plus completion cap); raise max_tokens, lower max_completion_tokens or stop delegating"
                    ),
                ));
            }
            match c.reserved_tokens.compare_exchange_weak(
                reserved,
                reserved + worst,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(worst),
                Err(now) => reserved = now,
            }
        }
    }
}

#[async_trait]
impl<M: ChatModel> ChatModel for Budgeted<M> {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse> {
        let tokens = match self.reserve(request) {
            Ok(tokens) => tokens,
            Err(refused) => {
                // A cached answer costs nothing: serve it even though the budget is spent.
                if let Some(r) = self.inner.peek(request).await {
                    self.accounting.record(&r);
                    return Ok(r);
                }
                return Err(refused);
            }
        };
        let result = self.inner.complete(request).await;
        let c = &self.accounting.counters;
        // The usage is recorded before the reservation is released: a concurrent hard check
        // may count this call twice for an instant, never zero times.
        let release = || {
            c.reserved_tokens.fetch_sub(tokens, Ordering::AcqRel);
        };
        match &result {
            Ok(r) => {
                if matches!(
                    r.meta.cache,
                    CacheStatus::Hit | CacheStatus::Coalesced | CacheStatus::Stale
                ) {
                    c.reserved.fetch_sub(1, Ordering::AcqRel);
                }
                self.accounting.record(r);
                release();
            }
            Err(e) => {
                // A failed call may have reached the API (and been billed): it keeps its slot.
                self.accounting.record_failure(e);
                release();
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
