//! How the [`MemoryBus`](super::MemoryBus) publishes: producer-side claims, filters, backpressure
//! and the hand-off to every matching subscription.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::time::Instant;
use uuid::Uuid;

use super::{Backpressure, Delivered, Filter, MemoryBusBuilder};
use crate::idempotency::{IdempotencyGuard, TtlMap};
use crate::outgoing::{OutgoingEvent, TypedEvent};
use crate::transport::{PublishOutcome, TransportError};

pub(super) struct BusInner {
    pub(super) config: MemoryBusBuilder,
    pub(super) closed: AtomicBool,
    /// Producer-side claims: category → idempotency key → eventId.
    pub(super) claims: Mutex<HashMap<&'static str, TtlMap<Uuid>>>,
    pub(super) subscribers: Mutex<Vec<Slot>>,
    pub(super) guards: Mutex<HashMap<String, IdempotencyGuard>>,
}

pub(super) struct Slot {
    pub(super) filter: Filter,
    pub(super) tx: mpsc::Sender<Delivered>,
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while these locks are held; should it ever, the data is still consistent.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn duplicate(existing: Uuid) -> PublishOutcome {
    PublishOutcome::Duplicate {
        existing_event_id: Some(existing),
    }
}

/// An event on its way to the subscribers: its idempotency key and what they receive.
pub(super) struct Outgoing {
    pub(super) key: String,
    pub(super) delivered: Delivered,
}

impl Outgoing {
    pub(super) fn from_event(event: &OutgoingEvent) -> Self {
        Self {
            key: event.idempotency_key.clone(),
            delivered: Delivered::from_json(
                event.event_type,
                event.category,
                event.event_id,
                event.json.clone(),
            ),
        }
    }

    pub(super) fn from_typed(event: TypedEvent) -> Self {
        let (key, delivered) = Delivered::from_typed(event);
        Self { key, delivered }
    }
}

impl BusInner {
    pub(super) fn ensure_open(&self) -> Result<(), TransportError> {
        if self.closed.load(Ordering::SeqCst) {
            Err(TransportError::unavailable("the memory bus is closed"))
        } else {
            Ok(())
        }
    }

    pub(super) async fn publish(
        &self,
        events: Vec<Outgoing>,
    ) -> Result<Vec<PublishOutcome>, TransportError> {
        self.ensure_open()?;
        match self.config.backpressure {
            Backpressure::Fail => self.publish_now(events),
            Backpressure::Wait => {
                let mut outcomes = Vec::with_capacity(events.len());
                for event in events {
                    outcomes.push(self.publish_one(event).await?);
                }
                Ok(outcomes)
            }
        }
    }

    /// Publishes one event under [`Backpressure::Wait`]: at once when every matching buffer has
    /// room, else waiting for it.
    pub(super) async fn publish_one(
        &self,
        event: Outgoing,
    ) -> Result<PublishOutcome, TransportError> {
        match self.try_publish_one(event) {
            Ok(outcome) => Ok(outcome),
            Err(event) => self.publish_waiting(event).await,
        }
    }

    /// Publishes one event under [`Backpressure::Wait`] in one step, when every matching buffer has
    /// room: claims and delivers under the locks, without waiting. Gives the event back when a
    /// buffer is full (nothing claimed nor delivered): then
    /// [`publish_waiting`](Self::publish_waiting) waits.
    pub(super) fn try_publish_one(&self, event: Outgoing) -> Result<PublishOutcome, Outgoing> {
        let now = Instant::now();
        let (event_type, category) = (event.delivered.event_type, event.delivered.category);
        let mut claims = lock(&self.claims);
        let keys = claims.entry(category).or_default();
        if let Some(existing) = keys.get(&event.key, now) {
            return Ok(duplicate(*existing));
        }
        let mut subscribers = lock(&self.subscribers);
        subscribers.retain(|slot| !slot.tx.is_closed());
        // The first permit apart: most events have one subscriber, and then nothing is allocated.
        let (mut first, mut more) = (None, Vec::new());
        for slot in subscribers
            .iter()
            .filter(|slot| slot.filter.matches(event_type, category))
        {
            match slot.tx.try_reserve() {
                Ok(permit) if first.is_none() => first = Some(permit),
                Ok(permit) => more.push(permit),
                Err(TrySendError::Full(())) => return Err(event),
                Err(TrySendError::Closed(())) => {}
            }
        }
        let Outgoing { key, delivered } = event;
        keys.insert(key, delivered.event_id, self.config.claim_ttl, now);
        send_all(first.into_iter().chain(more), delivered);
        Ok(PublishOutcome::Published)
    }

    /// The live claim on `key` in `category`.
    pub(super) fn claimed(&self, category: &'static str, key: &str) -> Option<Uuid> {
        let mut claims = lock(&self.claims);
        claims.get_mut(category)?.get(key, Instant::now()).copied()
    }

    fn matching_senders(&self, delivered: &Delivered) -> Vec<mpsc::Sender<Delivered>> {
        let mut subscribers = lock(&self.subscribers);
        subscribers.retain(|slot| !slot.tx.is_closed());
        subscribers
            .iter()
            .filter(|slot| {
                slot.filter
                    .matches(delivered.event_type, delivered.category)
            })
            .map(|slot| slot.tx.clone())
            .collect()
    }

    /// Publishes one event under [`Backpressure::Wait`]: reserves room in every matching buffer
    /// (the only `.await`), then claims and delivers without yielding, so a cancelled publish
    /// delivers and claims nothing.
    pub(super) async fn publish_waiting(
        &self,
        event: Outgoing,
    ) -> Result<PublishOutcome, TransportError> {
        let category = event.delivered.category;
        if let Some(existing) = self.claimed(category, &event.key) {
            return Ok(duplicate(existing));
        }
        let senders = self.matching_senders(&event.delivered);
        let mut permits = Vec::with_capacity(senders.len());
        for tx in &senders {
            // A subscription dropped while we wait just does not get the event.
            if let Ok(permit) = tx.reserve().await {
                permits.push(permit);
            }
        }
        self.ensure_open()?;
        let Outgoing { key, delivered } = event;
        {
            let mut claims = lock(&self.claims);
            let keys = claims.entry(category).or_default();
            let now = Instant::now();
            if let Some(existing) = keys.get(&key, now) {
                // Another publish of the same key won the race while we waited.
                return Ok(duplicate(*existing));
            }
            keys.insert(key, delivered.event_id, self.config.claim_ttl, now);
        }
        send_all(permits, delivered);
        Ok(PublishOutcome::Published)
    }

    /// Publishes a batch under [`Backpressure::Fail`], all or nothing, without waiting.
    pub(super) fn publish_now(
        &self,
        events: Vec<Outgoing>,
    ) -> Result<Vec<PublishOutcome>, TransportError> {
        let now = Instant::now();
        let mut claims = lock(&self.claims);
        let mut subscribers = lock(&self.subscribers);
        subscribers.retain(|slot| !slot.tx.is_closed());

        let mut outcomes = Vec::with_capacity(events.len());
        let mut sends = Vec::new();
        // Claims of this batch by category, then key (looked up by `&str`, no key copied).
        let mut new_claims: HashMap<&'static str, HashMap<String, Uuid>> = HashMap::new();
        for Outgoing { key, delivered } in events {
            let category = delivered.category;
            let existing = new_claims
                .get(category)
                .and_then(|keys| keys.get(&key))
                .copied()
                .or_else(|| {
                    claims
                        .get_mut(category)
                        .and_then(|keys| keys.get(&key, now).copied())
                });
            if let Some(existing) = existing {
                outcomes.push(duplicate(existing));
                continue;
            }
            let mut permits = Vec::new();
            for slot in subscribers
                .iter()
                .filter(|slot| slot.filter.matches(delivered.event_type, category))
            {
                match slot.tx.try_reserve() {
                    Ok(permit) => permits.push(permit),
                    Err(TrySendError::Full(())) => {
                        tracing::debug!(
                            event_type = delivered.event_type,
                            capacity = self.config.capacity,
                            "subscriber buffer full, batch not published"
                        );
                        return Err(TransportError::Backpressure {
                            capacity: self.config.capacity,
                        });
                    }
                    Err(TrySendError::Closed(())) => {}
                }
            }
            new_claims
                .entry(category)
                .or_default()
                .insert(key, delivered.event_id);
            sends.push((permits, delivered));
            outcomes.push(PublishOutcome::Published);
        }
        for (category, keys) in new_claims {
            let live = claims.entry(category).or_default();
            for (key, event_id) in keys {
                live.insert(key, event_id, self.config.claim_ttl, now);
            }
        }
        for (permits, delivered) in sends {
            send_all(permits, delivered);
        }
        Ok(outcomes)
    }
}

/// Hands `delivered` to every permit's subscriber: clones to all but the last, which gets it, so
/// that a lone subscriber holds the only copy.
fn send_all<'a>(
    permits: impl IntoIterator<Item = mpsc::Permit<'a, Delivered>>,
    delivered: Delivered,
) {
    let mut permits = permits.into_iter().peekable();
    let mut subscribers = 0_usize;
    while let Some(permit) = permits.next() {
        subscribers += 1;
        if permits.peek().is_some() {
            permit.send(delivered.clone());
        } else {
            tracing::trace!(event_type = delivered.event_type, event_id = %delivered.event_id,
                subscribers, "event delivered");
            permit.send(delivered);
            return;
        }
    }
    tracing::trace!(event_type = delivered.event_type, event_id = %delivered.event_id,
        subscribers, "event delivered");
}
