//! The seam between the [`Emitter`](struct@crate::Emitter) and wherever events go: the [`Transport`] trait.
//!
//! A transport receives events that are already validated and serialized (the envelope JSON is
//! built exactly once, by the emitter; the [`MemoryBus`](crate::MemoryBus) alone gets an emitter's
//! events typed, see there) and publishes them in one round trip per batch. It also
//! enforces producer-side idempotency: an event whose idempotency key was already claimed within
//! the transport's window is not published, and the caller learns it was a duplicate
//! ([`PublishOutcome::Duplicate`]).
//!
//! The trait is object safe (the emitter holds an `Arc<dyn Transport>`) and uses boxed futures
//! instead of `async fn`, so implementing it needs no extra dependency:
//!
//! ```
//! use domain_events::{BoxFuture, OutgoingEvent, PublishOutcome, Transport, TransportError};
//!
//! /// Accepts every event and drops it.
//! struct Discard;
//!
//! impl Transport for Discard {
//!     fn name(&self) -> &'static str {
//!         "discard"
//!     }
//!
//!     fn publish<'a>(
//!         &'a self,
//!         events: &'a [OutgoingEvent],
//!     ) -> BoxFuture<'a, Result<Vec<PublishOutcome>, TransportError>> {
//!         Box::pin(async move { Ok(vec![PublishOutcome::Published; events.len()]) })
//!     }
//! }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use uuid::Uuid;

use crate::outgoing::{OutgoingEvent, TypedEvent};

/// A boxed, `Send` future borrowing for `'a`: what [`Transport`] methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A boxed error that can cross threads, the source type of [`TransportError::Unavailable`] and
/// [`TransportError::Other`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What happened to one published event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishOutcome {
    /// The event was accepted and will be delivered.
    Published,
    /// The event's idempotency key was already claimed within the transport's window, so the event
    /// was not published.
    Duplicate {
        /// The `eventId` that holds the claim, when the transport knows it.
        existing_event_id: Option<Uuid>,
    },
}

impl PublishOutcome {
    /// Whether the event was not published because its key was already claimed.
    pub fn is_duplicate(&self) -> bool {
        matches!(self, PublishOutcome::Duplicate { .. })
    }
}

/// Why a transport could not publish a batch.
///
/// # For implementors
///
/// Messages end up in logs. They must never contain secrets: no passwords, tokens or connection
/// URLs with credentials, and no payload data. Describe the failure and the server's reason only.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The transport could not be reached: connection refused, lost or closed. Retrying later may
    /// help.
    #[error("transport unavailable: {0}")]
    Unavailable(#[source] BoxError),
    /// The server received the events and refused them, with its reason (a script error, a
    /// message that is too large, an event it cannot read). Retrying the same events will not help.
    #[error("events rejected: {0}")]
    Rejected(String),
    /// The transport took the events but did not answer in time (a response timeout): they may or
    /// may not have been published. Publishing them again is safe, since the idempotency claim of
    /// an event's own earlier attempt reads as published and another's as a duplicate.
    #[error(
        "outcome unknown: {0}; the events may have been published, and emitting them again with \
         the same idempotency key is safe"
    )]
    Unknown(#[source] BoxError),
    /// A subscriber's buffer is full and the transport is configured to fail instead of waiting.
    /// Nothing of the batch was delivered; retrying after the subscriber caught up may help.
    #[error("backpressure: a subscriber's buffer of {capacity} events is full")]
    Backpressure {
        /// The size of the full buffer.
        capacity: usize,
    },
    /// Any other failure.
    #[error("transport error: {0}")]
    Other(#[source] BoxError),
}

impl TransportError {
    /// [`TransportError::Unavailable`] from any error or message.
    pub fn unavailable(source: impl Into<BoxError>) -> Self {
        TransportError::Unavailable(source.into())
    }

    /// [`TransportError::Unknown`] from any error or message.
    pub fn unknown(source: impl Into<BoxError>) -> Self {
        TransportError::Unknown(source.into())
    }

    /// Whether the events may have been published although the call failed (see
    /// [`Unknown`](Self::Unknown)).
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(self, TransportError::Unknown(_))
    }

    /// [`TransportError::Other`] from any error or message.
    pub fn other(source: impl Into<BoxError>) -> Self {
        TransportError::Other(source.into())
    }

    /// Whether trying again later may succeed: true for [`Unavailable`](Self::Unavailable),
    /// [`Unknown`](Self::Unknown) and [`Backpressure`](Self::Backpressure), false for
    /// [`Rejected`](Self::Rejected) and [`Other`](Self::Other).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            TransportError::Unavailable(_)
                | TransportError::Unknown(_)
                | TransportError::Backpressure { .. }
        )
    }
}

/// Publishes events for an [`Emitter`](struct@crate::Emitter).
///
/// Implementations must:
/// - return exactly one [`PublishOutcome`] per event, in the order of `events`;
/// - publish a batch in one round trip where the medium allows it;
/// - claim each event's idempotency key and publish the event in one atomic step, answering
///   [`PublishOutcome::Duplicate`] for a key already claimed within their window (also for a key
///   claimed earlier in the same batch);
/// - never panic, and keep error messages free of secrets (see [`TransportError`]).
///
/// The emitter bounds every call with its timeout and drops the future when it expires, so
/// `publish` should leave the transport consistent when cancelled at any `.await`.
pub trait Transport: Send + Sync + 'static {
    /// A short name for logs and diagnostics (`memory`, `redis`, `bullmq`).
    fn name(&self) -> &'static str;

    /// Publishes `events`, returning one outcome per event in the same order.
    fn publish<'a>(
        &'a self,
        events: &'a [OutgoingEvent],
    ) -> BoxFuture<'a, Result<Vec<PublishOutcome>, TransportError>>;

    /// Takes one event with its envelope still typed, for a transport that can use it without
    /// JSON (the in-memory bus hands it to subscribers of the same process). The default
    /// declines, and the emitter then serializes the event once and calls
    /// [`publish`](Self::publish): a transport that publishes JSON implements nothing more.
    fn publish_typed_one(&self, event: TypedEvent) -> TypedPublish<'_, PublishOutcome, TypedEvent> {
        TypedPublish::Declined(event)
    }

    /// [`publish_typed_one`](Self::publish_typed_one) for a batch, in one call: one outcome per
    /// event in the same order. The default declines.
    fn publish_typed(
        &self,
        events: Vec<TypedEvent>,
    ) -> TypedPublish<'_, Vec<PublishOutcome>, Vec<TypedEvent>> {
        TypedPublish::Declined(events)
    }
}

/// A transport's answer to typed events ([`Transport::publish_typed_one`],
/// [`Transport::publish_typed`]): `T` is the outcome, `D` the events handed back.
pub enum TypedPublish<'a, T, D> {
    /// Taken and answered at once, without waiting.
    Now(Result<T, TransportError>),
    /// Taken; the answer comes when the future completes.
    Later(BoxFuture<'a, Result<T, TransportError>>),
    /// Not taken: this transport publishes JSON. The events come back to be serialized and
    /// published with [`Transport::publish`].
    Declined(D),
}

impl<T, D: fmt::Debug> fmt::Debug for TypedPublish<'_, T, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TypedPublish::Now(result) => f
                .debug_tuple("Now")
                .field(&result.as_ref().map(|_| ()))
                .finish(),
            TypedPublish::Later(_) => f.write_str("Later"),
            TypedPublish::Declined(events) => f.debug_tuple("Declined").field(events).finish(),
        }
    }
}

/// A shared transport is a transport, so one connection can serve several emitters.
impl<T: Transport + ?Sized> Transport for Arc<T> {
    fn name(&self) -> &'static str {
        (**self).name()
    }

    fn publish<'a>(
        &'a self,
        events: &'a [OutgoingEvent],
    ) -> BoxFuture<'a, Result<Vec<PublishOutcome>, TransportError>> {
        (**self).publish(events)
    }

    fn publish_typed_one(&self, event: TypedEvent) -> TypedPublish<'_, PublishOutcome, TypedEvent> {
        (**self).publish_typed_one(event)
    }

    fn publish_typed(
        &self,
        events: Vec<TypedEvent>,
    ) -> TypedPublish<'_, Vec<PublishOutcome>, Vec<TypedEvent>> {
        (**self).publish_typed(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(PublishOutcome);

    impl Transport for Fixed {
        fn name(&self) -> &'static str {
            "fixed"
        }

        fn publish<'a>(
            &'a self,
            events: &'a [OutgoingEvent],
        ) -> BoxFuture<'a, Result<Vec<PublishOutcome>, TransportError>> {
            let outcome = self.0;
            Box::pin(async move { Ok(vec![outcome; events.len()]) })
        }
    }

    fn event() -> OutgoingEvent {
        OutgoingEvent {
            event_type: "image:variation_completed",
            category: "image",
            event_id: Uuid::now_v7(),
            idempotency_key: "image_complete:v1".to_owned(),
            correlation_id: "v1".to_owned(),
            json: Arc::from("{}"),
        }
    }

    #[tokio::test]
    async fn arc_of_dyn_transport_is_a_transport() {
        let shared: Arc<dyn Transport> = Arc::new(Fixed(PublishOutcome::Published));
        let wrapped = Arc::new(shared);
        assert_eq!(wrapped.name(), "fixed");
        let events = [event(), event()];
        let outcomes = wrapped.publish(&events).await.expect("publish");
        assert_eq!(
            outcomes,
            vec![PublishOutcome::Published, PublishOutcome::Published]
        );
    }

    #[test]
    fn errors_say_what_happened_and_whether_to_retry() {
        let unavailable = TransportError::unavailable("connection refused");
        assert_eq!(
            unavailable.to_string(),
            "transport unavailable: connection refused"
        );
        assert!(unavailable.is_transient());
        assert!(std::error::Error::source(&unavailable).is_some());

        let full = TransportError::Backpressure { capacity: 8 };
        assert_eq!(
            full.to_string(),
            "backpressure: a subscriber's buffer of 8 events is full"
        );
        assert!(full.is_transient());

        assert!(!TransportError::Rejected("too large".into()).is_transient());
        assert!(!TransportError::other("boom").is_transient());
        assert!(
            PublishOutcome::Duplicate {
                existing_event_id: None
            }
            .is_duplicate()
        );
        assert!(!PublishOutcome::Published.is_duplicate());
    }
}
