//! Events on their way to a transport: [`TypedEvent`], the envelope still typed, and
//! [`OutgoingEvent`], the envelope as JSON, made by the one serialization of an envelope
//! ([`shared_json`]).
//!
//! The emitter hands every event to its transport typed ([`Transport::publish_typed_one`] and
//! [`Transport::publish_typed`]); a transport in this process (the in-memory bus) keeps it typed,
//! any other declines and gets the JSON, serialized once ([`TypedEvent::to_outgoing`]).
//!
//! [`Transport::publish_typed_one`]: crate::Transport::publish_typed_one
//! [`Transport::publish_typed`]: crate::Transport::publish_typed

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use uuid::Uuid;

use crate::envelope::Envelope;
use crate::payload::EventPayload;

/// One event ready to be published: routing metadata plus the envelope JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEvent {
    /// The type string, `<category>:<name>`.
    pub event_type: &'static str,
    /// The category, which selects the stream (or topic, or queue) the event goes to.
    pub category: &'static str,
    /// The envelope's `eventId`.
    pub event_id: Uuid,
    /// The envelope's `idempotencyKey`: the key of the producer-side claim.
    pub idempotency_key: String,
    /// The envelope's `correlationId`: transports that partition a category by it read it here,
    /// never out of the JSON.
    pub correlation_id: String,
    /// The whole envelope as JSON, serialized exactly once by the emitter and shared, never
    /// re-serialized by a transport.
    pub json: Arc<str>,
}

/// One complete event (validated, its source and context stamped) whose envelope is still a
/// typed Rust value. Made by the emitter; read by transports through its accessors.
pub struct TypedEvent {
    event_type: &'static str,
    category: &'static str,
    event_id: Uuid,
    envelope: Box<dyn ErasedEnvelope>,
}

impl TypedEvent {
    /// `envelope`, complete.
    pub(crate) fn new<P: EventPayload>(envelope: Envelope<P>) -> Self {
        Self {
            event_type: P::TYPE,
            category: P::CATEGORY,
            event_id: envelope.event_id,
            envelope: Box::new(envelope),
        }
    }

    /// The type string, `<category>:<name>`.
    pub fn event_type(&self) -> &'static str {
        self.event_type
    }

    /// The category.
    pub fn category(&self) -> &'static str {
        self.category
    }

    /// The envelope's `eventId`.
    pub fn event_id(&self) -> Uuid {
        self.event_id
    }

    /// The envelope's `idempotencyKey`.
    pub fn idempotency_key(&self) -> &str {
        self.envelope.idempotency_key()
    }

    /// The event as JSON, for transports that publish JSON: the envelope serialized, once.
    pub fn into_outgoing(mut self) -> Result<OutgoingEvent, serde_json::Error> {
        let json = self.envelope.to_json()?;
        Ok(OutgoingEvent {
            event_type: self.event_type,
            category: self.category,
            event_id: self.event_id,
            idempotency_key: self.envelope.take_idempotency_key(),
            correlation_id: self.envelope.take_correlation_id(),
            json,
        })
    }

    /// The idempotency key and the typed envelope, for the in-memory bus.
    pub(crate) fn into_parts(self) -> (String, Box<dyn ErasedEnvelope>) {
        (self.envelope.idempotency_key().to_owned(), self.envelope)
    }
}

impl fmt::Debug for TypedEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedEvent")
            .field("event_type", &self.event_type)
            .field("event_id", &self.event_id)
            .field("idempotency_key", &self.idempotency_key())
            .finish_non_exhaustive()
    }
}

/// A typed envelope behind a box of unknown type.
pub(crate) trait ErasedEnvelope: Send + Sync + 'static {
    fn to_json(&self) -> Result<Arc<str>, serde_json::Error>;
    fn idempotency_key(&self) -> &str;
    /// Moves the key out (once the envelope is serialized and about to be dropped).
    fn take_idempotency_key(&mut self) -> String;
    /// Moves the correlation id out, like the key.
    fn take_correlation_id(&mut self) -> String;
    fn as_any(&self) -> &dyn Any;
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

impl<P: EventPayload> ErasedEnvelope for Envelope<P> {
    fn to_json(&self) -> Result<Arc<str>, serde_json::Error> {
        shared_json(self)
    }

    fn idempotency_key(&self) -> &str {
        &self.idempotency_key
    }

    fn take_idempotency_key(&mut self) -> String {
        std::mem::take(&mut self.idempotency_key)
    }

    fn take_correlation_id(&mut self) -> String {
        std::mem::take(&mut self.correlation_id)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

/// Serialization buffers larger than this are not kept for the next event.
const MAX_KEPT_BUFFER: usize = 64 * 1024;

thread_local! {
    /// The buffer envelopes are serialized into, reused by the next emission on the thread.
    static JSON_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The JSON of `value` as a shared string, in one allocation: serialized into a buffer kept per
/// thread (instead of a new one grown several times per event), then copied once.
pub(crate) fn shared_json<T: serde::Serialize>(value: &T) -> Result<Arc<str>, serde_json::Error> {
    fn shared(bytes: &[u8]) -> Result<Arc<str>, serde_json::Error> {
        // serde_json writes UTF-8 only, so this never fails.
        std::str::from_utf8(bytes)
            .map(Arc::from)
            .map_err(<serde_json::Error as serde::ser::Error>::custom)
    }
    let reused = JSON_BUFFER.try_with(|cell| {
        // Busy only if serializing re-entered an emission on this thread.
        let mut buffer = cell.try_borrow_mut().ok()?;
        buffer.clear();
        let json = serde_json::to_writer(&mut *buffer, value).and_then(|()| shared(&buffer));
        if buffer.capacity() > MAX_KEPT_BUFFER {
            *buffer = Vec::new();
        }
        Some(json)
    });
    match reused {
        Ok(Some(json)) => json,
        // The thread is shutting down, or the buffer is in use.
        _ => shared(&serde_json::to_vec(value)?),
    }
}
