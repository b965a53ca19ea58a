//! Paging, conditional requests, rate limits, retries and redaction.
