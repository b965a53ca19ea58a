//! The waits a server asks for: `retry-after-ms`, `Retry-After` and `x-ratelimit-*`.
//!
//! Header lookups are closures (`|name| headers.get(name)?.to_str().ok()`), so any HTTP
//! client's header map works and this crate needs none.

use std::time::{Duration, SystemTime};

/// The longest wait read from a server's header; larger values are capped to it (a bogus
/// header must not overflow a `Duration` nor park a caller for years).
pub const MAX_SERVER_WAIT: Duration = Duration::from_secs(86_400);

/// Margin added to a rate-limit reset: the header has whole seconds and clocks differ.
const RESET_MARGIN_MS: i64 = 1_000;

/// The wait the server asks for: `retry-after-ms` (milliseconds, as OpenAI and Azure send it),
/// else `Retry-After` in seconds or as an HTTP date relative to `now` (a date in the past is
/// no wait). `None` when neither header is present or parses. Capped at [`MAX_SERVER_WAIT`].
pub fn retry_after<'h>(
    header: impl Fn(&str) -> Option<&'h str>,
    now: SystemTime,
) -> Option<Duration> {
    let cap = MAX_SERVER_WAIT.as_secs_f64();
    if let Some(ms) = header("retry-after-ms").and_then(|v| v.trim().parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        // `from_secs_f64` panics past `Duration::MAX`: cap first.
        return Some(Duration::from_secs_f64((ms / 1000.0).min(cap)));
    }
    let value = header("retry-after")?.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(cap)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_SERVER_WAIT),
    )
}

/// The wait until an exhausted primary rate limit resets: when `x-ratelimit-remaining` is 0
/// and `x-ratelimit-reset` (epoch seconds) is present, the time from `now_ms` to the reset plus
/// one second of margin (at least that second). `None` when quota remains or the headers are
/// missing. Saturating: an absurd reset gives a huge wait, never an overflow; callers compare
/// it with their longest acceptable wait.
pub fn rate_limit_reset<'h>(
    header: impl Fn(&str) -> Option<&'h str>,
    now_ms: i64,
) -> Option<Duration> {
    let num = |name: &str| header(name)?.trim().parse::<i64>().ok();
    if num("x-ratelimit-remaining")? != 0 {
        return None;
    }
    let reset_ms = num("x-ratelimit-reset")?.saturating_mul(1000);
    let wait = reset_ms
        .saturating_sub(now_ms)
        .max(0)
        .saturating_add(RESET_MARGIN_MS);
    Some(Duration::from_millis(u64::try_from(wait).unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn lookup<'h>(pairs: &'h [(&'h str, &'h str)]) -> impl Fn(&str) -> Option<&'h str> {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
    }

    #[test]
    fn retry_after_in_all_three_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let ms = [("retry-after-ms", "250")];
        assert_eq!(
            retry_after(lookup(&ms), now),
            Some(Duration::from_millis(250))
        );
        let secs = [("retry-after", " 3 ")];
        assert_eq!(
            retry_after(lookup(&secs), now),
            Some(Duration::from_secs(3))
        );
        let date = httpdate::fmt_http_date(now + Duration::from_secs(30));
        let future = [("retry-after", date.as_str())];
        assert_eq!(
            retry_after(lookup(&future), now),
            Some(Duration::from_secs(30))
        );
        let date = httpdate::fmt_http_date(now - Duration::from_secs(30));
        let past = [("retry-after", date.as_str())];
        assert_eq!(retry_after(lookup(&past), now), Some(Duration::ZERO));
        assert_eq!(retry_after(lookup(&[("retry-after", "soon")]), now), None);
        assert_eq!(retry_after(lookup(&[("retry-after", "-4")]), now), None);
        assert_eq!(retry_after(lookup(&[]), now), None);
        let both = [("retry-after-ms", "100"), ("retry-after", "9")];
        assert_eq!(
            retry_after(lookup(&both), now),
            Some(Duration::from_millis(100))
        );
    }

    #[test]
    fn a_huge_retry_after_is_capped_not_a_panic() {
        let now = SystemTime::UNIX_EPOCH;
        let day = Some(MAX_SERVER_WAIT);
        assert_eq!(
            retry_after(lookup(&[("retry-after-ms", "1e300")]), now),
            day
        );
        assert_eq!(retry_after(lookup(&[("retry-after", "1e300")]), now), day);
        assert_eq!(retry_after(lookup(&[("retry-after", "inf")]), now), None);
    }

    #[test]
    fn reset_waits_until_the_reset_plus_a_second() {
        let now_ms = 1_700_000_000_000;
        let exhausted = [
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1700000042"),
        ];
        assert_eq!(
            rate_limit_reset(lookup(&exhausted), now_ms),
            Some(Duration::from_secs(43))
        );
        let passed = [
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1699999000"),
        ];
        assert_eq!(
            rate_limit_reset(lookup(&passed), now_ms),
            Some(Duration::from_secs(1))
        );
        let left = [
            ("x-ratelimit-remaining", "12"),
            ("x-ratelimit-reset", "1700000042"),
        ];
        assert_eq!(rate_limit_reset(lookup(&left), now_ms), None);
        assert_eq!(
            rate_limit_reset(lookup(&[("x-ratelimit-remaining", "0")]), now_ms),
            None
        );
        let absurd = [
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "9223372036854775807"),
        ];
        let wait = rate_limit_reset(lookup(&absurd), now_ms);
        assert!(
            wait.is_some_and(|w| w > Duration::from_secs(86_400 * 365)),
            "{wait:?}"
        );
    }
}
