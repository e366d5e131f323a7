//! [`ConsumerStats`] and the private counters behind them.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of a consumer's counters. Every count is per event, except `retries`.
///
/// The same for every transport's consumer: they all count in the one [`Pipeline`](crate::Pipeline).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsumerStats {
    /// Events received from the transport (each delivery of an event counts).
    pub received: u64,
    /// Events whose handlers all succeeded and whose outcome the transport recorded (the group's
    /// done record of their idempotency key is written).
    pub handled: u64,
    /// Events skipped because the group already handled their idempotency key.
    pub duplicates: u64,
    /// Events no handler is registered for.
    pub unhandled: u64,
    /// Further attempts of failed handlers: each retry in the consumer, and each failed delivery
    /// left for the transport to deliver again (one event can count several).
    pub retries: u64,
    /// Events given up after their handlers kept failing (dead-lettered where the transport has
    /// dead letters), delivered more often than allowed, or, on a transport that never delivers
    /// again, abandoned at shutdown while waiting for a retry.
    pub failed: u64,
    /// Poison events: not an envelope, unknown type or version, a payload that does not match its
    /// schema, or an entry the transport refused (too large).
    pub poison: u64,
}

/// The live counters behind [`ConsumerStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) received: AtomicU64,
    pub(crate) handled: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    pub(crate) unhandled: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) poison: AtomicU64,
}

impl Counters {
    /// Adds one to `counter`.
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts now.
    pub(crate) fn snapshot(&self) -> ConsumerStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ConsumerStats {
            received: get(&self.received),
            handled: get(&self.handled),
            duplicates: get(&self.duplicates),
            unhandled: get(&self.unhandled),
            retries: get(&self.retries),
            failed: get(&self.failed),
            poison: get(&self.poison),
        }
    }
}
