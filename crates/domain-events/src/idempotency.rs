//! Idempotency records with a time to live: the producer-side claims of the
//! [`MemoryBus`](crate::MemoryBus) and the consumer-side [`IdempotencyGuard`].
//!
//! Both mirror the Redis layout of docs/contract.md section 4: a claim (`idem`) per category and key,
//! kept 24 hours by default, and a done record per group and key, kept 7 days by default.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// How long a consumer group remembers that it handled an idempotency key, unless configured
/// otherwise: 7 days.
pub const DEFAULT_DONE_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// Fewest entries before a full sweep of expired entries is considered.
const MIN_SWEEP: usize = 64;

/// Values by string key, each forgotten `ttl` after it was written. Expired entries are dropped
/// lazily: on lookup, and by a sweep whenever the map has doubled since the last one, so memory
/// stays bounded by twice the live entries at amortized O(1) cost.
#[derive(Debug)]
pub(crate) struct TtlMap<V> {
    entries: HashMap<String, (V, Option<Instant>)>,
    sweep_at: usize,
}

impl<V> Default for TtlMap<V> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
            sweep_at: MIN_SWEEP,
        }
    }
}

impl<V> TtlMap<V> {
    /// The live value of `key`, dropping it if it expired.
    pub(crate) fn get(&mut self, key: &str, now: Instant) -> Option<&V> {
        let expired = match self.entries.get(key) {
            None => return None,
            Some((_, expires)) => is_expired(*expires, now),
        };
        if expired {
            self.entries.remove(key);
            return None;
        }
        self.entries.get(key).map(|(value, _)| value)
    }

    /// Writes `value` under `key` for `ttl`, replacing any previous value.
    pub(crate) fn insert(&mut self, key: String, value: V, ttl: Duration, now: Instant) {
        self.maybe_sweep(now);
        // A TTL too large to represent never expires.
        self.entries.insert(key, (value, now.checked_add(ttl)));
    }

    /// The number of entries, live or not yet swept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    fn maybe_sweep(&mut self, now: Instant) {
        if self.entries.len() >= self.sweep_at {
            self.entries
                .retain(|_, (_, expires)| !is_expired(*expires, now));
            self.sweep_at = (self.entries.len() * 2).max(MIN_SWEEP);
        }
    }
}

fn is_expired(expires: Option<Instant>, now: Instant) -> bool {
    expires.is_some_and(|at| at <= now)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Nothing panics while these locks are held; should it ever, the map is still consistent.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Remembers which idempotency keys a consumer group has handled, for a time to live (default
/// [`DEFAULT_DONE_TTL`]): the in-memory counterpart of the Redis `done` records.
///
/// A consumer checks [`seen`](Self::seen) before running handlers and calls
/// [`record`](Self::record) only after they succeeded, so a duplicate of an event (the same key
/// emitted again after the producer-side claim expired, or published on another bus) never runs a
/// handler twice, while an event whose handler failed is still retried.
///
/// Cloning is cheap and clones share the records, so one guard can serve several consumers of the
/// same group.
#[derive(Clone)]
pub struct IdempotencyGuard {
    inner: Arc<GuardInner>,
}

struct GuardInner {
    group: String,
    ttl: Duration,
    records: Mutex<TtlMap<()>>,
}

impl IdempotencyGuard {
    /// A guard for consumer group `group`, keeping records for [`DEFAULT_DONE_TTL`].
    pub fn new(group: impl Into<String>) -> Self {
        Self::with_ttl(group, DEFAULT_DONE_TTL)
    }

    /// A guard for consumer group `group`, keeping records for `ttl`.
    pub fn with_ttl(group: impl Into<String>, ttl: Duration) -> Self {
        Self {
            inner: Arc::new(GuardInner {
                group: group.into(),
                ttl,
                records: Mutex::new(TtlMap::default()),
            }),
        }
    }

    /// The consumer group.
    pub fn group(&self) -> &str {
        &self.inner.group
    }

    /// How long a record is kept.
    pub fn ttl(&self) -> Duration {
        self.inner.ttl
    }

    /// Whether the group handled `key` within the time to live.
    pub fn seen(&self, key: &str) -> bool {
        lock(&self.inner.records).get(key, Instant::now()).is_some()
    }

    /// Records that the group handled `key`, for the time to live from now.
    pub fn record(&self, key: &str) {
        lock(&self.inner.records).insert(key.to_owned(), (), self.inner.ttl, Instant::now());
    }
}

impl fmt::Debug for IdempotencyGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdempotencyGuard")
            .field("group", &self.inner.group)
            .field("ttl", &self.inner.ttl)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn records_expire_after_their_ttl() {
        let guard = IdempotencyGuard::with_ttl("mailer", Duration::from_secs(60));
        assert_eq!(guard.group(), "mailer");
        assert!(!guard.seen("email_sent:1"));
        guard.record("email_sent:1");
        assert!(guard.seen("email_sent:1"));
        assert!(!guard.seen("email_sent:2"));

        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(guard.seen("email_sent:1"));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(!guard.seen("email_sent:1"));
    }

    #[tokio::test]
    async fn clones_share_records_and_the_default_ttl_is_a_week() {
        let guard = IdempotencyGuard::new("g");
        assert_eq!(guard.ttl(), Duration::from_secs(604_800));
        guard.clone().record("k");
        assert!(guard.seen("k"));
    }

    #[tokio::test(start_paused = true)]
    async fn expired_entries_are_swept_as_the_map_grows() {
        let mut map = TtlMap::default();
        let ttl = Duration::from_secs(1);
        for i in 0..MIN_SWEEP {
            map.insert(format!("old-{i}"), (), ttl, Instant::now());
        }
        tokio::time::advance(Duration::from_secs(2)).await;
        map.insert("new".to_owned(), (), ttl, Instant::now());
        assert_eq!(map.len(), 1, "the expired entries were swept");
        assert!(map.get("new", Instant::now()).is_some());
    }

    #[tokio::test]
    async fn huge_ttls_never_expire() {
        let mut map = TtlMap::default();
        map.insert("k".to_owned(), 7, Duration::MAX, Instant::now());
        assert_eq!(map.get("k", Instant::now()), Some(&7));
    }
}
