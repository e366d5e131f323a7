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

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

mod consumer;
mod delivered;
mod publish;
mod subscription;
#[cfg(test)]
mod tests;

pub use consumer::{MemoryConsumer, MemoryConsumerBuilder, MemoryConsumerHandle};
pub use delivered::Delivered;
pub use subscription::{Filter, Subscription, TypedSubscription};

use publish::{BusInner, Outgoing, Slot, lock};

use crate::handlers::Handlers;
use crate::idempotency::{DEFAULT_DONE_TTL, IdempotencyGuard};
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
