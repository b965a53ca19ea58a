//! The envelope every stored value travels in, and how a lookup is judged.

use std::sync::Arc;
use std::time::Duration;

/// When a value was made and how long it may be used, in unix milliseconds.
///
/// Invariant kept by [`Envelope::new`]: `created_at <= fresh_until <= stale_until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Envelope {
    /// When the value was fetched (unix ms).
    pub created_at: u64,
    /// Until when (exclusive, unix ms) the value is fresh and served without a fetch.
    pub fresh_until: u64,
    /// Until when (exclusive, unix ms) the value may still be served stale; after it, it is gone.
    pub stale_until: u64,
}

impl Envelope {
    /// An envelope created at `now_ms`, fresh for `ttl`, then stale for `stale`.
    #[must_use]
    pub fn new(now_ms: u64, ttl: Duration, stale: Duration) -> Self {
        let fresh_until = now_ms.saturating_add(duration_ms(ttl));
        Self {
            created_at: now_ms,
            fresh_until,
            stale_until: fresh_until.saturating_add(duration_ms(stale)),
        }
    }

    /// How this envelope stands at `now_ms`.
    #[must_use]
    pub fn freshness(&self, now_ms: u64) -> Freshness {
        if now_ms < self.fresh_until {
            Freshness::Fresh
        } else if now_ms < self.stale_until {
            Freshness::Stale
        } else {
            Freshness::Expired
        }
    }

    /// Milliseconds from `now_ms` until the value must be dropped (0 when already expired).
    #[must_use]
    pub fn remaining_ms(&self, now_ms: u64) -> u64 {
        self.stale_until.saturating_sub(now_ms)
    }
}

/// Milliseconds in `d`, saturating at `u64::MAX`.
pub(crate) fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Where an envelope stands at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Freshness {
    /// Before `fresh_until`: serve without fetching.
    Fresh,
    /// Between `fresh_until` and `stale_until`: refresh, but usable if the refresh fails.
    Stale,
    /// At or after `stale_until`: unusable.
    Expired,
}

/// A stored value with its envelope. Cloning is cheap: the bytes are shared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Timestamps that decide freshness.
    pub envelope: Envelope,
    /// The value's bytes.
    pub value: Arc<[u8]>,
}

impl Entry {
    /// An entry holding `value` in `envelope`.
    #[must_use]
    pub fn new(envelope: Envelope, value: impl Into<Arc<[u8]>>) -> Self {
        Self {
            envelope,
            value: value.into(),
        }
    }
}

/// The result of a lookup judged against a clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// A fresh entry.
    Fresh(Entry),
    /// A stale entry: past `fresh_until`, before `stale_until`.
    Stale(Entry),
    /// Nothing usable (absent or expired).
    Miss,
}

impl Lookup {
    /// Judges what a store returned at `now_ms`.
    #[must_use]
    pub fn judge(entry: Option<Entry>, now_ms: u64) -> Self {
        match entry {
            None => Self::Miss,
            Some(e) => match e.envelope.freshness(now_ms) {
                Freshness::Fresh => Self::Fresh(e),
                Freshness::Stale => Self::Stale(e),
                Freshness::Expired => Self::Miss,
            },
        }
    }

    /// The entry, fresh or stale.
    #[must_use]
    pub fn entry(&self) -> Option<&Entry> {
        match self {
            Self::Fresh(e) | Self::Stale(e) => Some(e),
            Self::Miss => None,
        }
    }

    /// The entry, fresh or stale, by value.
    #[must_use]
    pub fn into_entry(self) -> Option<Entry> {
        match self {
            Self::Fresh(e) | Self::Stale(e) => Some(e),
            Self::Miss => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_are_exclusive() {
        let e = Envelope::new(1_000, Duration::from_millis(100), Duration::from_millis(50));
        assert_eq!(
            (e.created_at, e.fresh_until, e.stale_until),
            (1_000, 1_100, 1_150)
        );
        assert_eq!(e.freshness(1_000), Freshness::Fresh);
        assert_eq!(e.freshness(1_099), Freshness::Fresh);
        assert_eq!(e.freshness(1_100), Freshness::Stale);
        assert_eq!(e.freshness(1_149), Freshness::Stale);
        assert_eq!(e.freshness(1_150), Freshness::Expired);
        assert_eq!(e.remaining_ms(1_120), 30);
        assert_eq!(e.remaining_ms(2_000), 0);
    }

    #[test]
    fn zero_stale_window_goes_straight_to_expired() {
        let e = Envelope::new(0, Duration::from_millis(10), Duration::ZERO);
        assert_eq!(e.freshness(9), Freshness::Fresh);
        assert_eq!(e.freshness(10), Freshness::Expired);
    }

    #[test]
    fn huge_durations_saturate() {
        let e = Envelope::new(u64::MAX - 1, Duration::MAX, Duration::MAX);
        assert_eq!(e.stale_until, u64::MAX);
        assert_eq!(e.freshness(u64::MAX - 1), Freshness::Fresh);
    }

    #[test]
    fn judge_maps_freshness() {
        let entry = Entry::new(
            Envelope::new(0, Duration::from_millis(10), Duration::from_millis(10)),
            vec![1u8],
        );
        assert!(matches!(
            Lookup::judge(Some(entry.clone()), 5),
            Lookup::Fresh(_)
        ));
        assert!(matches!(
            Lookup::judge(Some(entry.clone()), 15),
            Lookup::Stale(_)
        ));
        assert_eq!(Lookup::judge(Some(entry), 20), Lookup::Miss);
        assert_eq!(Lookup::judge(None, 0), Lookup::Miss);
    }
}
