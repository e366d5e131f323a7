//! The [`EnvelopeBuilder`]: the one path from a payload to a complete event. It validates the
//! payload and wraps it in an envelope stamped with the producer's source and context (causation,
//! traceparent), as a [`TypedEvent`], or serialized once as an [`OutgoingEvent`]. The
//! [`Emitter`](struct@crate::Emitter) builds every envelope with it, and so does the PostgreSQL
//! outbox (`domain-events-outbox`), so an event written to the outbox is what the emitter would
//! have sent.

use std::fmt;
use std::sync::Arc;

use tracing::Span;
use uuid::Uuid;

use crate::emitter::EmitError;
use crate::envelope::{Envelope, is_valid_traceparent};
use crate::outgoing::{OutgoingEvent, TypedEvent};
use crate::payload::EventPayload;
use crate::trace;
use crate::validation::ValidationError;

/// Why a payload could not become an [`OutgoingEvent`]; nothing was sent or written.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// The payload breaks a constraint of its schema.
    #[error("invalid payload: {0}")]
    Invalid(#[from] ValidationError),
    /// The envelope could not be serialized to JSON.
    #[error("cannot serialize the envelope: {0}")]
    Serialize(#[from] serde_json::Error),
}

impl From<EnvelopeError> for EmitError {
    fn from(error: EnvelopeError) -> Self {
        match error {
            EnvelopeError::Invalid(e) => EmitError::Invalid(e),
            EnvelopeError::Serialize(e) => EmitError::Serialize(e),
        }
    }
}

/// What a producer stamps on every envelope besides the payload's own data.
#[derive(Clone, Default)]
pub(crate) struct Context {
    causation_id: Option<Uuid>,
    traceparent: Option<Arc<str>>,
}

/// Builds the envelopes of one producer: its `source`, and the `causationId` and `traceparent` it
/// stamps on what it produces.
///
/// Cloning is cheap; [`with_causation`](Self::with_causation) and
/// [`with_traceparent`](Self::with_traceparent) return clones, leaving the original untouched.
///
/// ```
/// use domain_events::{EnvelopeBuilder, Uuid};
///
/// let cause = Uuid::now_v7();
/// let envelopes = EnvelopeBuilder::new("crm")
///     .with_causation(cause)
///     .with_traceparent("not a traceparent");
/// assert_eq!(envelopes.source(), "crm");
/// assert_eq!(envelopes.causation_id(), Some(cause));
/// assert_eq!(envelopes.traceparent(), None); // invalid, so ignored
/// // envelopes.outgoing(payload)? is the event as a transport publishes it.
/// ```
#[derive(Clone)]
pub struct EnvelopeBuilder {
    source: Arc<str>,
    context: Context,
}

impl EnvelopeBuilder {
    /// A builder for service `source`, stamping no causation and no traceparent.
    pub fn new(source: impl Into<String>) -> Self {
        EnvelopeBuilder {
            source: Arc::from(source.into()),
            context: Context::default(),
        }
    }

    /// The service name written into every envelope's `source`.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The `causationId` stamped on every envelope, if any.
    pub fn causation_id(&self) -> Option<Uuid> {
        self.context.causation_id
    }

    /// The `traceparent` stamped on every envelope, if any.
    pub fn traceparent(&self) -> Option<&str> {
        self.context.traceparent.as_deref()
    }

    /// A clone that stamps `causationId` = `event_id`: for events caused by the event `event_id`.
    pub fn with_causation(&self, event_id: Uuid) -> Self {
        let mut builder = self.clone();
        builder.context.causation_id = Some(event_id);
        builder
    }

    /// A clone that stamps the W3C `traceparent`. A value that is not a valid version-00
    /// traceparent ([`is_valid_traceparent`]) is ignored: the clone stamps none, as
    /// [`Envelope::with_traceparent`] does.
    pub fn with_traceparent(&self, traceparent: &str) -> Self {
        let mut builder = self.clone();
        builder.context.traceparent = if is_valid_traceparent(traceparent) {
            Some(Arc::from(traceparent))
        } else {
            tracing::debug!("ignoring an invalid traceparent");
            None
        };
        builder
    }

    /// Validates `payload` and wraps it in a new envelope (UUID v7 `eventId`, `occurredAt` now,
    /// idempotency key and correlation id from the payload) with this builder's source and
    /// context. Without a `traceparent` of this builder's, the envelope gets the current span's
    /// when it is part of an OpenTelemetry trace (cargo feature `opentelemetry`, see
    /// [`trace`](crate::trace)).
    pub fn envelope<P: EventPayload>(&self, payload: P) -> Result<Envelope<P>, ValidationError> {
        let mut envelope = Envelope::new(&*self.source, payload)?;
        self.context.apply(&mut envelope);
        Ok(envelope)
    }

    /// [`envelope`](Self::envelope) as a [`TypedEvent`], what the emitter hands its transport.
    pub fn typed<P: EventPayload>(&self, payload: P) -> Result<TypedEvent, ValidationError> {
        Ok(TypedEvent::new(self.envelope(payload)?))
    }

    /// [`typed`](Self::typed) inside a new [`EMIT_SPAN`](crate::trace::EMIT_SPAN) span: the span
    /// is current while the envelope is built (so an envelope without a `traceparent` of this
    /// builder's gets the span's), then records the event's id, idempotency key and correlation
    /// id. Returns the span with the event, for the caller to run the publish (or the outbox
    /// insert) in it. The [`Emitter`](struct@crate::Emitter) and the outbox emit through this.
    pub fn spanned<P: EventPayload>(
        &self,
        payload: P,
    ) -> (Span, Result<TypedEvent, ValidationError>) {
        let span = trace::emit_span(&self.source, P::TYPE);
        let event = span.in_scope(|| self.envelope(payload));
        if let Ok(envelope) = &event {
            trace::record_event(&span, envelope);
        }
        (span, event.map(TypedEvent::new))
    }

    /// The [`EMIT_BATCH_SPAN`](crate::trace::EMIT_BATCH_SPAN) span of a batch of `events`
    /// events: the batch's envelopes are stamped with it current (so those without a
    /// `traceparent` of this builder's get the span's), and the publish runs in it.
    pub fn batch_span(&self, events: usize) -> Span {
        trace::emit_batch_span(&self.source, events)
    }

    /// [`envelope`](Self::envelope), serialized once: the event as a transport that publishes
    /// JSON sends it.
    pub fn outgoing<P: EventPayload>(&self, payload: P) -> Result<OutgoingEvent, EnvelopeError> {
        Ok(self.typed(payload)?.into_outgoing()?)
    }

    /// Stamps this builder's source and context on an envelope built earlier (a batch's).
    pub(crate) fn stamp<P>(&self, envelope: &mut Envelope<P>) {
        self.source.as_ref().clone_into(&mut envelope.source);
        self.context.apply(envelope);
    }
}

impl Context {
    fn apply<P>(&self, envelope: &mut Envelope<P>) {
        if let Some(id) = self.causation_id {
            envelope.causation_id = Some(id);
        }
        if let Some(tp) = &self.traceparent {
            envelope.traceparent = Some(tp.to_string());
        } else if envelope.traceparent.is_none() {
            envelope.traceparent = trace::current_traceparent();
        }
    }
}

impl fmt::Debug for EnvelopeBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvelopeBuilder")
            .field("source", &self.source)
            .field("causation_id", &self.context.causation_id)
            .field("traceparent", &self.context.traceparent)
            .finish()
    }
}
