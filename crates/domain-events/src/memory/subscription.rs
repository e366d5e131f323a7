//! [`Subscription`]s of a [`MemoryBus`](super::MemoryBus) and the [`Filter`] that selects their events.

use std::fmt;
use std::marker::PhantomData;

use tokio::sync::mpsc;

use super::Delivered;
use crate::envelope::{DecodeError, Envelope};
use crate::payload::EventPayload;

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

/// The events of a [`MemoryBus`](super::MemoryBus) that pass a [`Filter`], buffered up to the bus's capacity.
///
/// Dropping it unsubscribes.
#[derive(Debug)]
pub struct Subscription {
    pub(super) rx: mpsc::Receiver<Delivered>,
    pub(super) filter: Filter,
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
/// [`MemoryBus::subscribe_to`](super::MemoryBus::subscribe_to).
pub struct TypedSubscription<P> {
    pub(super) inner: Subscription,
    pub(super) _payload: PhantomData<fn() -> P>,
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
