//! The [`MemoryBus`]: the embedded, in-process [`Transport`], with subscriptions and producer-side
//! idempotency.
//!
//! # Delivery
//!
//! Each [`Subscription`] has a [`Filter`] (one type, one or more categories, or everything) and
//! receives every published event that matches it: several subscriptions with matching filters each
//! get each event (fan-out), sharing it ([`Delivered`] holds an `Arc`). Dropped subscriptions are
//! pruned on the next publish or subscribe.
//!
//! An [`Emitter`](struct@crate::Emitter) built on a `MemoryBus` hands it the typed envelopes themselves:
//! nothing is serialized or parsed on the way. A typed subscriber gets the envelope (moved to it
//! when it is the event's only subscriber, else a clone), and the JSON is serialized only when a
//! subscriber asks for it ([`Delivered::json`], [`Delivered::envelope`]), once for all of them,
//! exactly as the emitter serializes it for any other transport. Events published as JSON
//! ([`Transport::publish`], from any other code) are not parsed by the bus either: a typed
//! subscriber reads the JSON straight into its typed envelope, an untyped one parses it once for
//! all, and both check that it is the envelope of the event published, so JSON that is not an
//! envelope reaches subscribers as a [`DecodeError`].
//!
//! # Idempotency
//!
//! Like the Redis transport, the bus claims each event's idempotency key (per category) when it
//! publishes it. An event whose key is claimed within the claim TTL (default
//! [`DEFAULT_CLAIM_TTL`], 24 hours) is not delivered and gets [`PublishOutcome::Duplicate`] with the
//! `eventId` holding the claim. Expired claims are dropped lazily. A key is claimed only when its
//! event is delivered, so an event that could not be delivered can be emitted again.
//!
//! # Backpressure
//!
//! Every subscription has a bounded buffer of [`MemoryBusBuilder::capacity`] events (default
//! [`DEFAULT_CAPACITY`]). What a publish does when a matching subscriber's buffer is full is the
//! bus's [`Backpressure`] policy:
//!
//! - [`Backpressure::Wait`] (default): the publish waits until every matching subscriber has room,
//!   so a slow subscriber slows its producers down. The wait is bounded by the
//!   [`Emitter`](struct@crate::Emitter)'s timeout, after which the emission fails with
//!   [`EmitError::Timeout`](crate::EmitError::Timeout). Each event is delivered to all its
//!   subscribers or to none: room is reserved in every matching buffer first, then the key is
//!   claimed and the event handed over in one step that cannot be interrupted. When a batch times
//!   out, the events before the one that was waiting are delivered and claimed; the rest are
//!   neither, so emitting the same batch again delivers exactly the missing events (the others
//!   come back as duplicates).
//! - [`Backpressure::Fail`]: the publish never waits. If any matching subscriber lacks room for
//!   any event of the batch, the publish fails with [`TransportError::Backpressure`] and nothing of
//!   the batch is delivered to anyone nor claimed.
//!
//! A handler that emits into a bus it consumes from can wait for its own buffer under `Wait`;
//! the emitter's timeout ends that wait with an error rather than a deadlock.

use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::time::Instant;
use uuid::Uuid;

mod consumer;
mod delivered;

pub use consumer::{MemoryConsumer, MemoryConsumerBuilder, MemoryConsumerHandle};
pub use delivered::Delivered;

use crate::envelope::{DecodeError, Envelope};
use crate::handlers::Handlers;
use crate::idempotency::{DEFAULT_DONE_TTL, IdempotencyGuard, TtlMap};
use crate::outgoing::OutgoingEvent;
use crate::outgoing::TypedEvent;
use crate::payload::EventPayload;
use crate::transport::{BoxFuture, PublishOutcome, Transport, TransportError, TypedPublish};

/// The buffer size of each subscription unless configured otherwise: 1024 events.
pub const DEFAULT_CAPACITY: usize = 1024;

/// How long a producer-side idempotency claim lasts unless configured otherwise: 24 hours, as in
/// docs/contract.md section 4.
pub const DEFAULT_CLAIM_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// What a publish does when a matching subscriber's buffer is full (see the [module
/// docs](self#backpressure)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backpressure {
    /// Wait for room in every matching buffer; bounded by the emitter's timeout.
    #[default]
    Wait,
    /// Fail at once with [`TransportError::Backpressure`], delivering nothing of the batch.
    Fail,
}

/// Which events a subscription receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// Every event.
    All,
    /// Events of one type string (`image:variation_completed`), any version.
    Type(&'static str),
    /// Events of one category (`image`).
    Category(&'static str),
    /// Events of any of these categories.
    Categories(Vec<&'static str>),
}

impl Filter {
    /// Whether an event of `event_type` in `category` passes the filter.
    pub fn matches(&self, event_type: &str, category: &str) -> bool {
        match self {
            Filter::All => true,
            Filter::Type(t) => *t == event_type,
            Filter::Category(c) => *c == category,
            Filter::Categories(cs) => cs.contains(&category),
        }
    }
}

/// The events of a [`MemoryBus`] that pass a [`Filter`], buffered up to the bus's capacity.
///
/// Dropping it unsubscribes.
#[derive(Debug)]
pub struct Subscription {
    rx: mpsc::Receiver<Delivered>,
    filter: Filter,
}

impl Subscription {
    /// The next event; `None` once the bus is closed (or dropped) and the buffer is drained.
    pub async fn recv(&mut self) -> Option<Delivered> {
        self.rx.recv().await
    }

    /// The next event if one is buffered, without waiting.
    pub fn try_recv(&mut self) -> Option<Delivered> {
        self.rx.try_recv().ok()
    }

    /// The number of events waiting in the buffer.
    pub fn buffered(&self) -> usize {
        self.rx.len()
    }

    /// The subscription's filter.
    pub fn filter(&self) -> &Filter {
        &self.filter
    }
}

/// A subscription to one payload type, yielding decoded envelopes; made by
/// [`MemoryBus::subscribe_to`].
pub struct TypedSubscription<P> {
    inner: Subscription,
    _payload: PhantomData<fn() -> P>,
}

impl<P: EventPayload> TypedSubscription<P> {
    /// The next event of type `P::TYPE`, decoded; `None` once the bus is closed and the buffer is
    /// drained. An event of that type that does not decode as `P` (another version, a payload that
    /// breaks its schema) is returned as the error.
    pub async fn recv(&mut self) -> Option<Result<Envelope<P>, DecodeError>> {
        let delivered = self.inner.recv().await?;
        Some(delivered.into_decoded())
    }

    /// The underlying untyped subscription.
    pub fn into_inner(self) -> Subscription {
        self.inner
    }
}

impl<P> fmt::Debug for TypedSubscription<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TypedSubscription")
            .field(&self.inner.filter)
            .finish()
    }
}

/// Configures a [`MemoryBus`]; made by [`MemoryBus::builder`].
#[derive(Debug, Clone)]
pub struct MemoryBusBuilder {
    capacity: usize,
    backpressure: Backpressure,
    claim_ttl: Duration,
    done_ttl: Duration,
}

impl Default for MemoryBusBuilder {
    fn default() -> Self {
        Self {
            capacity: DEFAULT_CAPACITY,
            backpressure: Backpressure::default(),
            claim_ttl: DEFAULT_CLAIM_TTL,
            done_ttl: DEFAULT_DONE_TTL,
        }
    }
}

impl MemoryBusBuilder {
    /// The buffer size of each subscription, at least 1; default [`DEFAULT_CAPACITY`].
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.clamp(1, tokio::sync::Semaphore::MAX_PERMITS);
        self
    }

    /// What a publish does when a buffer is full; default [`Backpressure::Wait`].
    pub fn backpressure(mut self, backpressure: Backpressure) -> Self {
        self.backpressure = backpressure;
        self
    }

    /// How long a producer-side idempotency claim lasts; default [`DEFAULT_CLAIM_TTL`].
    pub fn idempotency_ttl(mut self, ttl: Duration) -> Self {
        self.claim_ttl = ttl;
        self
    }

    /// How long the [`IdempotencyGuard`]s of [`MemoryBus::guard`] keep their records; default
    /// [`DEFAULT_DONE_TTL`].
    pub fn done_ttl(mut self, ttl: Duration) -> Self {
        self.done_ttl = ttl;
        self
    }

    /// The bus.
    pub fn build(self) -> MemoryBus {
        MemoryBus {
            inner: Arc::new(BusInner {
                config: self,
                closed: AtomicBool::new(false),
                claims: Mutex::default(),
                subscribers: Mutex::default(),
                guards: Mutex::default(),
            }),
        }
    }
}

/// An in-process event bus: a [`Transport`] for an [`Emitter`](struct@crate::Emitter), and subscriptions
/// and consumers for the same process. See the [module docs](self) for delivery, idempotency and
/// backpressure.
///
/// Cloning is cheap (an `Arc` inside); clones are the same bus.
///
/// ```
/// # use domain_events::{Backpressure, Emitter, Filter, MemoryBus};
/// let bus = MemoryBus::builder().capacity(64).backpressure(Backpressure::Fail).build();
/// let mut images = bus.subscribe(Filter::Category("image"));
/// let emitter = Emitter::new("image-generator", bus.clone());
/// # let _ = (&mut images, emitter);
/// ```
#[derive(Clone)]
pub struct MemoryBus {
    inner: Arc<BusInner>,
}

struct BusInner {
    config: MemoryBusBuilder,
    closed: AtomicBool,
    /// Producer-side claims: category → idempotency key → eventId.
    claims: Mutex<HashMap<&'static str, TtlMap<Uuid>>>,
    subscribers: Mutex<Vec<Slot>>,
    guards: Mutex<HashMap<String, IdempotencyGuard>>,
}

struct Slot {
    filter: Filter,
    tx: mpsc::Sender<Delivered>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while these locks are held; should it ever, the data is still consistent.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn duplicate(existing: Uuid) -> PublishOutcome {
    PublishOutcome::Duplicate {
        existing_event_id: Some(existing),
    }
}

impl Default for MemoryBus {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryBus {
    /// A bus with the default settings.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// Starts configuring a bus.
    pub fn builder() -> MemoryBusBuilder {
        MemoryBusBuilder::default()
    }

    /// The buffer size of each subscription.
    pub fn capacity(&self) -> usize {
        self.inner.config.capacity
    }

    /// The backpressure policy.
    pub fn backpressure(&self) -> Backpressure {
        self.inner.config.backpressure
    }

    /// Subscribes to the events that pass `filter`, from now on.
    pub fn subscribe(&self, filter: Filter) -> Subscription {
        let (tx, rx) = mpsc::channel(self.inner.config.capacity);
        let mut subscribers = lock(&self.inner.subscribers);
        subscribers.retain(|slot| !slot.tx.is_closed());
        // On a closed bus `tx` is dropped here, so the subscription ends at once.
        if !self.is_closed() {
            subscribers.push(Slot {
                filter: filter.clone(),
                tx,
            });
        }
        Subscription { rx, filter }
    }

    /// Subscribes to the events of payload type `P` (its type string, any version), decoded.
    pub fn subscribe_to<P: EventPayload>(&self) -> TypedSubscription<P> {
        TypedSubscription {
            inner: self.subscribe(Filter::Type(P::TYPE)),
            _payload: PhantomData,
        }
    }

    /// The number of live subscriptions, after pruning dropped ones.
    pub fn subscriber_count(&self) -> usize {
        let mut subscribers = lock(&self.inner.subscribers);
        subscribers.retain(|slot| !slot.tx.is_closed());
        subscribers.len()
    }

    /// The done records of consumer group `group` on this bus, shared by its consumers.
    pub fn guard(&self, group: &str) -> IdempotencyGuard {
        lock(&self.inner.guards)
            .entry(group.to_owned())
            .or_insert_with(|| IdempotencyGuard::with_ttl(group, self.inner.config.done_ttl))
            .clone()
    }

    /// A consumer of group `group` running `handlers` ([`MemoryConsumer::builder`]): it subscribes
    /// now to the categories the handlers need, and uses the group's [`guard`](Self::guard) to
    /// skip keys it already handled. Configure it, [`build`](MemoryConsumerBuilder::build) it, and
    /// start it with [`MemoryConsumer::run`] or [`MemoryConsumer::spawn`].
    ///
    /// Every consumer has its own subscription, so two consumers of one group on one bus both
    /// receive every event (they share the done records, but may both run an event they receive
    /// at the same moment): run one consumer per group and bus.
    pub fn consumer(&self, group: &str, handlers: Handlers) -> MemoryConsumerBuilder {
        MemoryConsumer::builder(self, group, handlers)
    }

    /// Closes the bus: later publishes fail with [`TransportError::Unavailable`], and every
    /// subscription ends once its buffer is drained.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        lock(&self.inner.subscribers).clear();
        tracing::debug!("memory bus closed");
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::SeqCst)
    }
}

impl fmt::Debug for MemoryBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBus")
            .field("capacity", &self.inner.config.capacity)
            .field("backpressure", &self.inner.config.backpressure)
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl Transport for MemoryBus {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn publish<'a>(
        &'a self,
        events: &'a [OutgoingEvent],
    ) -> BoxFuture<'a, Result<Vec<PublishOutcome>, TransportError>> {
        Box::pin(
            self.inner
                .publish(events.iter().map(Outgoing::from_event).collect()),
        )
    }

    /// Keeps the envelope typed: subscribers of this process decode it without JSON.
    fn publish_typed_one(&self, event: TypedEvent) -> TypedPublish<'_, PublishOutcome, TypedEvent> {
        let event = Outgoing::from_typed(event);
        if let Err(error) = self.inner.ensure_open() {
            return TypedPublish::Now(Err(error));
        }
        match self.inner.config.backpressure {
            Backpressure::Fail => TypedPublish::Now(self.inner.publish_now(vec![event]).and_then(
                |mut outcomes| {
                    outcomes
                        .pop()
                        .ok_or_else(|| TransportError::other("no outcome for the event"))
                },
            )),
            Backpressure::Wait => match self.inner.try_publish_one(event) {
                Ok(outcome) => TypedPublish::Now(Ok(outcome)),
                Err(event) => TypedPublish::Later(Box::pin(self.inner.publish_waiting(event))),
            },
        }
    }

    fn publish_typed(
        &self,
        events: Vec<TypedEvent>,
    ) -> TypedPublish<'_, Vec<PublishOutcome>, Vec<TypedEvent>> {
        TypedPublish::Later(Box::pin(
            self.inner
                .publish(events.into_iter().map(Outgoing::from_typed).collect()),
        ))
    }
}

/// An event on its way to the subscribers: its idempotency key and what they receive.
struct Outgoing {
    key: String,
    delivered: Delivered,
}

impl Outgoing {
    fn from_event(event: &OutgoingEvent) -> Self {
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

    fn from_typed(event: TypedEvent) -> Self {
        let (key, delivered) = Delivered::from_typed(event);
        Self { key, delivered }
    }
}

impl BusInner {
    fn ensure_open(&self) -> Result<(), TransportError> {
        if self.closed.load(Ordering::SeqCst) {
            Err(TransportError::unavailable("the memory bus is closed"))
        } else {
            Ok(())
        }
    }

    async fn publish(&self, events: Vec<Outgoing>) -> Result<Vec<PublishOutcome>, TransportError> {
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
    async fn publish_one(&self, event: Outgoing) -> Result<PublishOutcome, TransportError> {
        match self.try_publish_one(event) {
            Ok(outcome) => Ok(outcome),
            Err(event) => self.publish_waiting(event).await,
        }
    }

    /// Publishes one event under [`Backpressure::Wait`] in one step, when every matching buffer has
    /// room: claims and delivers under the locks, without waiting. Gives the event back when a
    /// buffer is full (nothing claimed nor delivered): then
    /// [`publish_waiting`](Self::publish_waiting) waits.
    fn try_publish_one(&self, event: Outgoing) -> Result<PublishOutcome, Outgoing> {
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
    fn claimed(&self, category: &'static str, key: &str) -> Option<Uuid> {
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
    async fn publish_waiting(&self, event: Outgoing) -> Result<PublishOutcome, TransportError> {
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
    fn publish_now(&self, events: Vec<Outgoing>) -> Result<Vec<PublishOutcome>, TransportError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emitter::{EmitBatch, EmitError, Emitter};
    use crate::handlers::HandlerError;
    use crate::test_support::{Signup, VariationCompleted, VariationStarted, within};

    fn emitter(bus: &MemoryBus) -> Emitter {
        Emitter::new("tests", bus.clone())
    }

    #[tokio::test]
    async fn an_emitted_event_reaches_a_subscriber() {
        let bus = MemoryBus::new();
        let mut sub = bus.subscribe(Filter::All);
        let emitted = emitter(&bus)
            .emit(VariationCompleted::new("var-1"))
            .await
            .expect("emitted");

        let delivered = within(sub.recv()).await.expect("delivered");
        assert_eq!(delivered.event_type, "image:variation_completed");
        assert_eq!(delivered.category, "image");
        assert_eq!(
            delivered.envelope().expect("envelope").event_id,
            emitted.event_id
        );
        assert_eq!(
            delivered.envelope().expect("envelope").idempotency_key,
            "image_complete:var-1"
        );
        let typed = delivered.decode::<VariationCompleted>().expect("decodes");
        assert_eq!(typed.payload, VariationCompleted::new("var-1"));
        assert_eq!(typed.source, "tests");
        assert!(sub.try_recv().is_none());
    }

    #[tokio::test]
    async fn filters_select_by_type_and_category() {
        let bus = MemoryBus::new();
        let mut completed = bus.subscribe(Filter::Type("image:variation_completed"));
        let mut image = bus.subscribe(Filter::Category("image"));
        let mut funnel = bus.subscribe(Filter::Categories(vec!["funnel", "seo"]));
        let mut all = bus.subscribe(Filter::All);
        let e = emitter(&bus);
        e.emit(VariationStarted::new("v")).await.expect("emitted");
        e.emit(VariationCompleted::new("v")).await.expect("emitted");
        e.emit(Signup::new("u")).await.expect("emitted");

        let drain = |sub: &mut Subscription| {
            std::iter::from_fn(|| sub.try_recv())
                .map(|d| d.event_type)
                .collect::<Vec<_>>()
        };
        assert_eq!(drain(&mut completed), vec!["image:variation_completed"]);
        assert_eq!(
            drain(&mut image),
            vec!["image:variation_started", "image:variation_completed"]
        );
        assert_eq!(drain(&mut funnel), vec!["funnel:signup"]);
        assert_eq!(drain(&mut all).len(), 3);
    }

    #[tokio::test]
    async fn every_subscriber_gets_every_matching_event_sharing_one_parse() {
        let bus = MemoryBus::new();
        let mut a = bus.subscribe(Filter::Category("image"));
        let mut b = bus.subscribe(Filter::Category("image"));
        emitter(&bus)
            .emit(VariationCompleted::new("v"))
            .await
            .expect("emitted");
        let (da, db) = (
            within(a.recv()).await.expect("a"),
            within(b.recv()).await.expect("b"),
        );
        let (ea, eb) = (
            da.envelope().expect("an envelope"),
            db.envelope().expect("an envelope"),
        );
        assert_eq!(ea.event_id, eb.event_id);
        assert!(
            std::ptr::eq(ea, eb),
            "the envelope is parsed once for every subscriber"
        );
        assert!(std::ptr::eq(
            da.json().expect("serializes"),
            db.json().expect("serializes")
        ));
    }

    #[tokio::test]
    async fn a_lone_typed_subscriber_gets_the_emitted_envelope_itself() {
        let bus = MemoryBus::new();
        let mut sub = bus.subscribe_to::<VariationCompleted>();
        let payload = VariationCompleted::new("var-moved");
        let text = payload.variation_id.as_ptr();
        let emitted = emitter(&bus).emit(payload).await.expect("emitted");
        let envelope = within(sub.recv())
            .await
            .expect("an event")
            .expect("decodes");
        assert_eq!(envelope.event_id, emitted.event_id);
        assert_eq!(envelope.source, "tests");
        // Moved, not cloned nor serialized and parsed: the payload's string is the one emitted.
        assert_eq!(envelope.payload.variation_id.as_ptr(), text);
    }

    #[tokio::test]
    async fn subscribers_of_one_event_get_equal_envelopes_and_json_on_request() {
        let bus = MemoryBus::new();
        let mut typed = bus.subscribe_to::<VariationCompleted>();
        let mut untyped = bus.subscribe(Filter::All);
        let emitter = emitter(&bus)
            .with_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        emitter
            .emit(VariationCompleted::new("v"))
            .await
            .expect("emitted");
        let first = within(typed.recv())
            .await
            .expect("an event")
            .expect("decodes");
        let delivered = within(untyped.recv()).await.expect("an event");
        let second = delivered.decode::<VariationCompleted>().expect("decodes");
        assert_eq!(first, second);
        assert!(
            first.traceparent.is_some(),
            "the emitter's context is stamped"
        );
        // The JSON is what the emitter serializes for every other transport.
        let json = delivered.json().expect("serializes");
        assert_eq!(json, serde_json::to_string(&first).expect("serializes"));
        let raw = delivered.envelope().expect("an envelope");
        assert_eq!(raw.decode::<VariationCompleted>().expect("decodes"), first);
    }

    #[tokio::test]
    async fn typed_subscriptions_decode() {
        let bus = MemoryBus::new();
        let mut sub = bus.subscribe_to::<Signup>();
        let e = emitter(&bus);
        e.emit(VariationCompleted::new("v")).await.expect("emitted");
        e.emit(Signup::new("u-7")).await.expect("emitted");
        let envelope = within(sub.recv())
            .await
            .expect("an event")
            .expect("decodes");
        assert_eq!(envelope.payload.user_id, "u-7");
        assert_eq!(envelope.correlation_id, "u-7");
        assert!(sub.into_inner().try_recv().is_none());
    }

    #[tokio::test]
    async fn a_duplicate_emission_is_reported_and_delivered_once() {
        let bus = MemoryBus::new();
        let mut sub = bus.subscribe(Filter::All);
        let e = emitter(&bus);
        let first = e.emit(VariationCompleted::new("v")).await.expect("emitted");
        let second = e
            .emit(VariationCompleted::new("v"))
            .await
            .expect("not an error");
        assert!(!first.duplicate);
        assert!(second.duplicate);
        assert_eq!(second.existing_event_id, Some(first.event_id));
        assert_ne!(second.event_id, first.event_id);

        assert_eq!(
            within(sub.recv())
                .await
                .expect("first")
                .envelope()
                .expect("envelope")
                .event_id
                .clone(),
            first.event_id
        );
        assert!(sub.try_recv().is_none(), "the duplicate was not delivered");
        assert_eq!(e.stats().emitted, 1);
        assert_eq!(e.stats().duplicates, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn claims_expire_after_their_ttl_and_are_per_category() {
        let bus = MemoryBus::builder()
            .idempotency_ttl(Duration::from_secs(10))
            .build();
        let e = emitter(&bus);
        assert!(!e.emit(Signup::new("u")).await.expect("emitted").duplicate);
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(e.emit(Signup::new("u")).await.expect("emitted").duplicate);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(
            !e.emit(Signup::new("u")).await.expect("emitted").duplicate,
            "the claim expired"
        );

        // The same key in another category is another claim.
        let json = |t: &str, k: &str, id: Uuid| {
            format!(
                r#"{{"eventId":"{id}","type":"{t}","version":1,"occurredAt":"2026-11-26T17:04:05.123Z","source":"s","correlationId":"c","idempotencyKey":"{k}","payload":{{}}}}"#
            )
        };
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let events = [
            OutgoingEvent {
                event_type: "x:a",
                category: "x",
                event_id: a,
                idempotency_key: "k".into(),
                json: json("x:a", "k", a).into(),
            },
            OutgoingEvent {
                event_type: "y:a",
                category: "y",
                event_id: b,
                idempotency_key: "k".into(),
                json: json("y:a", "k", b).into(),
            },
        ];
        assert_eq!(
            bus.publish(&events).await.expect("published"),
            vec![PublishOutcome::Published; 2]
        );
    }

    #[tokio::test]
    async fn an_invalid_payload_is_not_delivered() {
        let bus = MemoryBus::new();
        let mut sub = bus.subscribe(Filter::All);
        let err = emitter(&bus)
            .emit(VariationCompleted::new(""))
            .await
            .expect_err("invalid");
        assert!(matches!(err, EmitError::Invalid(_)), "{err:?}");
        assert!(sub.try_recv().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_subscriber_makes_emit_time_out_under_wait_delivering_nothing() {
        let bus = MemoryBus::builder().capacity(1).build();
        let mut slow = bus.subscribe(Filter::All);
        let mut fast = bus.subscribe(Filter::All);
        let timeout = Duration::from_millis(200);
        let e = Emitter::builder("tests", bus.clone())
            .timeout(timeout)
            .build();
        e.emit(Signup::new("u1"))
            .await
            .expect("fits in the buffers");
        assert!(within(fast.recv()).await.is_some());

        let started = Instant::now();
        let err = within(e.emit(Signup::new("u2")))
            .await
            .expect_err("slow is full");
        assert!(
            matches!(err, EmitError::Timeout(d) if d == timeout),
            "{err:?}"
        );
        assert_eq!(started.elapsed(), timeout, "emit returns at the timeout");
        assert!(
            fast.try_recv().is_none(),
            "an event goes to all its subscribers or to none"
        );

        // Once the slow subscriber caught up, the same event goes through: nothing was claimed.
        assert_eq!(
            within(slow.recv())
                .await
                .expect("u1")
                .envelope()
                .expect("envelope")
                .correlation_id
                .clone(),
            "u1"
        );
        let again = e.emit(Signup::new("u2")).await.expect("emitted");
        assert!(!again.duplicate);
        assert_eq!(
            within(slow.recv())
                .await
                .expect("u2")
                .envelope()
                .expect("envelope")
                .correlation_id
                .clone(),
            "u2"
        );
        assert_eq!(
            within(fast.recv())
                .await
                .expect("u2")
                .envelope()
                .expect("envelope")
                .correlation_id
                .clone(),
            "u2"
        );
        // The emitter cannot tell what a transport did with a call it gave up on: unknown.
        let stats = e.stats();
        assert_eq!((stats.failed, stats.unknown), (0, 1), "{stats:?}");
    }

    #[tokio::test]
    async fn a_waiting_publish_resumes_when_the_subscriber_reads() {
        let bus = MemoryBus::builder().capacity(1).build();
        let mut sub = bus.subscribe(Filter::All);
        let e = emitter(&bus);
        e.emit(Signup::new("u1")).await.expect("emitted");
        let pending = tokio::spawn({
            let e = e.clone();
            async move { e.emit(Signup::new("u2")).await }
        });
        assert_eq!(
            within(sub.recv())
                .await
                .expect("u1")
                .envelope()
                .expect("envelope")
                .correlation_id
                .clone(),
            "u1"
        );
        assert_eq!(
            within(sub.recv())
                .await
                .expect("u2")
                .envelope()
                .expect("envelope")
                .correlation_id
                .clone(),
            "u2"
        );
        assert!(
            within(pending)
                .await
                .expect("joined")
                .expect("emitted")
                .published()
        );
    }

    #[tokio::test]
    async fn a_full_subscriber_fails_a_single_emit_under_fail_claiming_nothing() {
        let bus = MemoryBus::builder()
            .capacity(1)
            .backpressure(Backpressure::Fail)
            .build();
        let mut sub = bus.subscribe(Filter::All);
        let e = emitter(&bus);
        e.emit(VariationCompleted::new("v1")).await.expect("fits");
        let err = e
            .emit(VariationCompleted::new("v2"))
            .await
            .expect_err("the buffer is full");
        assert!(
            matches!(
                err,
                EmitError::Transport(TransportError::Backpressure { capacity: 1 })
            ),
            "{err:?}"
        );
        assert_eq!((e.stats().emitted, e.stats().failed), (1, 1));
        assert_eq!(
            within(sub.recv()).await.expect("v1").event_type,
            VariationCompleted::TYPE
        );
        assert!(sub.try_recv().is_none(), "v2 was not delivered");
        // v2 was not claimed: emitted again once there is room, it is published.
        let emitted = e
            .emit(VariationCompleted::new("v2"))
            .await
            .expect("fits now");
        assert!(emitted.published());
        assert!(sub.try_recv().is_some());
    }

    #[tokio::test]
    async fn a_full_subscriber_fails_the_whole_batch_under_fail() {
        let bus = MemoryBus::builder()
            .capacity(2)
            .backpressure(Backpressure::Fail)
            .build();
        let mut images = bus.subscribe(Filter::Category("image"));
        let mut funnel = bus.subscribe(Filter::Category("funnel"));
        let e = emitter(&bus);
        let mut batch = EmitBatch::new();
        batch.push(Signup::new("u1")).expect("valid");
        batch.push(VariationCompleted::new("v1")).expect("valid");
        batch.push(VariationCompleted::new("v2")).expect("valid");
        batch.push(VariationCompleted::new("v3")).expect("valid");
        let err = e
            .emit_batch(batch)
            .await
            .expect_err("images has room for 2 of 3");
        assert!(
            matches!(
                err,
                EmitError::Transport(TransportError::Backpressure { capacity: 2 })
            ),
            "{err:?}"
        );
        assert!(
            funnel.try_recv().is_none(),
            "nothing of the batch was delivered"
        );
        assert!(images.try_recv().is_none());
        assert_eq!(e.stats().failed, 4);

        // Nothing was claimed either.
        let mut batch = EmitBatch::new();
        batch.push(Signup::new("u1")).expect("valid");
        batch.push(VariationCompleted::new("v1")).expect("valid");
        let emitted = e.emit_batch(batch).await.expect("fits");
        assert!(emitted.iter().all(|e| e.published()));
        assert_eq!(funnel.try_recv().expect("u1").event_type, "funnel:signup");
    }

    #[tokio::test]
    async fn a_batch_is_delivered_in_order_and_duplicates_within_it_are_reported() {
        for backpressure in [Backpressure::Wait, Backpressure::Fail] {
            let bus = MemoryBus::builder().backpressure(backpressure).build();
            let mut sub = bus.subscribe(Filter::All);
            let mut batch = EmitBatch::new();
            batch.push(Signup::new("u1")).expect("valid");
            batch.push(VariationCompleted::new("v1")).expect("valid");
            batch.push(Signup::new("u1")).expect("valid");
            let emitted = emitter(&bus).emit_batch(batch).await.expect("emitted");
            assert_eq!(
                emitted.iter().map(|e| e.duplicate).collect::<Vec<_>>(),
                vec![false, false, true]
            );
            assert_eq!(emitted[2].existing_event_id, Some(emitted[0].event_id));
            let got: Vec<_> = std::iter::from_fn(|| sub.try_recv())
                .map(|d| d.envelope().expect("envelope").event_id)
                .collect();
            assert_eq!(
                got,
                vec![emitted[0].event_id, emitted[1].event_id],
                "{backpressure:?}"
            );
        }
    }

    #[tokio::test]
    async fn dropped_subscriptions_are_pruned() {
        let bus = MemoryBus::builder().capacity(1).build();
        let keep = bus.subscribe(Filter::All);
        let gone = bus.subscribe(Filter::All);
        assert_eq!(bus.subscriber_count(), 2);
        drop(gone);
        assert_eq!(bus.subscriber_count(), 1);
        drop(keep);
        // With no subscriber left, publishing never waits for a buffer.
        let e = emitter(&bus);
        e.emit(Signup::new("u1")).await.expect("emitted");
        e.emit(Signup::new("u2")).await.expect("emitted");
        assert_eq!(bus.subscriber_count(), 0);
    }

    #[tokio::test]
    async fn a_closed_bus_ends_subscriptions_and_refuses_events() {
        let bus = MemoryBus::new();
        let mut sub = bus.subscribe(Filter::All);
        let e = emitter(&bus);
        e.emit(Signup::new("u1")).await.expect("emitted");
        bus.close();
        assert!(bus.is_closed());
        assert!(
            within(sub.recv()).await.is_some(),
            "buffered events are still received"
        );
        assert!(within(sub.recv()).await.is_none());
        let err = e.emit(Signup::new("u2")).await.expect_err("closed");
        assert!(
            matches!(err, EmitError::Transport(TransportError::Unavailable(_))),
            "{err:?}"
        );
        assert!(within(bus.subscribe(Filter::All).recv()).await.is_none());
    }

    fn outgoing(json: &str, event_id: Uuid) -> OutgoingEvent {
        OutgoingEvent {
            event_type: VariationCompleted::TYPE,
            category: VariationCompleted::CATEGORY,
            event_id,
            // A key of its own, so that no publish is a duplicate.
            idempotency_key: event_id.to_string(),
            json: Arc::from(json),
        }
    }

    #[tokio::test]
    async fn json_that_is_not_the_published_envelope_reaches_subscribers_as_a_decode_error() {
        let bus = MemoryBus::new();
        let mut sub = bus.subscribe(Filter::All);
        let mut typed = bus.subscribe_to::<VariationCompleted>();
        let handlers = Handlers::new()
            .on(|_: Envelope<VariationCompleted>| async { Ok::<_, HandlerError>(()) });
        let consumer = bus.consumer("g", handlers).build().spawn();
        // Another event's envelope, published under a new eventId.
        let other = Envelope::new("tests", VariationCompleted::new("v")).expect("valid");
        let other_json = serde_json::to_string(&other).expect("serializes");
        for event in [
            outgoing("not json", Uuid::now_v7()),
            outgoing(&other_json, Uuid::now_v7()),
        ] {
            bus.publish(std::slice::from_ref(&event))
                .await
                .expect("published: the bus does not parse what it publishes");
            let delivered = within(sub.recv()).await.expect("delivered");
            assert_eq!(delivered.event_id, event.event_id);
            let error = delivered.envelope().expect_err("not the envelope");
            assert!(matches!(error, DecodeError::NotAnEnvelope(_)), "{error:?}");
            let error = delivered
                .decode::<VariationCompleted>()
                .expect_err("not the envelope");
            assert!(matches!(error, DecodeError::NotAnEnvelope(_)), "{error:?}");
            let error = within(typed.recv())
                .await
                .expect("delivered")
                .expect_err("not the envelope");
            assert!(matches!(error, DecodeError::NotAnEnvelope(_)), "{error:?}");
        }
        // The same envelope under its own eventId is the event published.
        bus.publish(&[outgoing(&other_json, other.event_id)])
            .await
            .expect("published");
        let delivered = within(sub.recv()).await.expect("delivered");
        assert_eq!(
            delivered.decode::<VariationCompleted>().expect("decodes"),
            other
        );
        assert_eq!(
            within(typed.recv())
                .await
                .expect("delivered")
                .expect("decodes"),
            other
        );
        bus.close();
        let stats = within(consumer.join()).await.expect("no panic");
        assert_eq!(
            (stats.received, stats.poison, stats.handled),
            (3, 2, 1),
            "{stats:?}"
        );
    }

    #[tokio::test]
    async fn decode_names_another_type_or_version() {
        let bus = MemoryBus::new();
        let mut sub = bus.subscribe(Filter::All);
        let emitted = emitter(&bus)
            .emit(VariationCompleted::new("v"))
            .await
            .expect("emitted");
        let delivered = within(sub.recv()).await.expect("delivered");
        let error = delivered.decode::<Signup>().expect_err("another type");
        assert!(matches!(error, DecodeError::WrongType { .. }), "{error:?}");
        // Once parsed untyped, decode shares that parse and still checks the type.
        assert_eq!(
            delivered.envelope().expect("an envelope").event_id,
            emitted.event_id
        );
        let error = delivered.decode::<Signup>().expect_err("another type");
        assert!(matches!(error, DecodeError::WrongType { .. }), "{error:?}");
        assert_eq!(
            delivered
                .decode::<VariationCompleted>()
                .expect("decodes")
                .payload,
            VariationCompleted::new("v")
        );
        let json = delivered
            .json()
            .expect("serializes")
            .replace("\"version\":1", "\"version\":2");
        bus.publish(&[outgoing(&json, emitted.event_id)])
            .await
            .expect("published");
        let delivered = within(sub.recv()).await.expect("delivered");
        let error = delivered
            .decode::<VariationCompleted>()
            .expect_err("another version");
        assert!(
            matches!(error, DecodeError::UnknownVersion { version: 2, .. }),
            "{error:?}"
        );
    }

    #[test]
    fn capacity_is_at_least_one() {
        assert_eq!(MemoryBus::builder().capacity(0).build().capacity(), 1);
        assert_eq!(MemoryBus::new().capacity(), DEFAULT_CAPACITY);
        assert_eq!(MemoryBus::new().backpressure(), Backpressure::Wait);
    }
}
