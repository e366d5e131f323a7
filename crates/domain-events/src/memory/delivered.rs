//! [`Delivered`]: one event as a subscription of the [`MemoryBus`](super::MemoryBus) receives it.

use std::fmt;
use std::sync::{Arc, OnceLock};

use uuid::Uuid;

use crate::envelope::{DecodeError, Envelope, RawEnvelope};
use crate::outgoing::{ErasedEnvelope, TypedEvent};
use crate::payload::EventPayload;

/// One event as a subscription receives it: its routing metadata, and the envelope as JSON, as
/// an untyped envelope or as the typed one, each made only when a subscriber asks for it.
///
/// An event emitted in the same process travels as the emitter's typed envelope: [`decode`]
/// clones it (and [`TypedSubscription`](super::TypedSubscription) moves it when it holds the only
/// copy), and [`json`](Self::json) serializes it when first asked for. An event published as JSON
/// ([`Transport::publish`](crate::Transport::publish)) is decoded from it in one pass.
/// [`envelope`](Self::envelope) parses the JSON with the payload left unparsed. Clones, and the
/// subscribers of one event, share the JSON and the parsed envelope. Each check that the envelope
/// is the one published (its type and `eventId`).
///
/// [`decode`]: Self::decode
#[derive(Clone)]
pub struct Delivered {
    /// The type string.
    pub event_type: &'static str,
    /// The category.
    pub category: &'static str,
    /// The `eventId` the event was published with.
    pub event_id: Uuid,
    shared: Arc<Shared>,
}

struct Shared {
    source: Source,
    /// The envelope parsed by the first subscriber that asked; `None` when it is not one.
    parsed: OnceLock<Option<RawEnvelope>>,
}

enum Source {
    /// Published as JSON.
    Json(Arc<str>),
    /// Handed over by an emitter of this process; serialized when first asked for.
    Typed {
        envelope: Box<dyn ErasedEnvelope>,
        json: OnceLock<Arc<str>>,
    },
}

impl Delivered {
    /// An event published as JSON.
    pub(crate) fn from_json(
        event_type: &'static str,
        category: &'static str,
        event_id: Uuid,
        json: Arc<str>,
    ) -> Self {
        Self::with_source(event_type, category, event_id, Source::Json(json))
    }

    /// An event handed over typed by an emitter of this process.
    pub(crate) fn from_typed(event: TypedEvent) -> (String, Self) {
        let (event_type, category, event_id) =
            (event.event_type(), event.category(), event.event_id());
        let (key, envelope) = event.into_parts();
        let delivered = Self::with_source(
            event_type,
            category,
            event_id,
            Source::Typed {
                envelope,
                json: OnceLock::new(),
            },
        );
        (key, delivered)
    }

    fn with_source(
        event_type: &'static str,
        category: &'static str,
        event_id: Uuid,
        source: Source,
    ) -> Self {
        Self {
            event_type,
            category,
            event_id,
            shared: Arc::new(Shared {
                source,
                parsed: OnceLock::new(),
            }),
        }
    }

    /// The envelope JSON: as published, or serialized from the typed envelope when first asked
    /// for (and kept for every subscriber).
    pub fn json(&self) -> Result<&str, serde_json::Error> {
        match &self.shared.source {
            Source::Json(json) => Ok(json),
            Source::Typed { envelope, json } => {
                if let Some(json) = json.get() {
                    return Ok(json);
                }
                let serialized = envelope.to_json()?;
                Ok(json.get_or_init(|| serialized))
            }
        }
    }

    /// The envelope, its payload unparsed: parsed on the first call of any subscriber of the event
    /// and shared. Fails when the JSON is not an envelope, or not the one published (another type
    /// or `eventId` than the routing metadata).
    pub fn envelope(&self) -> Result<&RawEnvelope, DecodeError> {
        let json = self.json().map_err(DecodeError::NotAnEnvelope)?;
        let parsed = self.shared.parsed.get_or_init(|| {
            RawEnvelope::from_slice(json.as_bytes())
                .ok()
                .filter(|raw| self.published(&raw.event_type, raw.event_id))
        });
        parsed.as_ref().ok_or_else(|| self.not_published(json))
    }

    /// Decodes the event as `P`, checking type, version and the payload's constraints: a clone of
    /// the typed envelope of an event emitted in this process, else one pass over the JSON unless
    /// the envelope was parsed already.
    pub fn decode<P: EventPayload>(&self) -> Result<Envelope<P>, DecodeError> {
        if let Some(envelope) = self.typed::<P>() {
            return Ok(envelope.clone());
        }
        self.decode_json()
    }

    /// [`decode`](Self::decode), moving the typed envelope out instead of cloning it when this is
    /// its only copy.
    pub fn into_decoded<P: EventPayload>(self) -> Result<Envelope<P>, DecodeError> {
        if self.typed::<P>().is_none() {
            return self.decode_json();
        }
        match Arc::try_unwrap(self.shared) {
            Ok(Shared {
                source: Source::Typed { envelope, .. },
                ..
            }) => match envelope.into_any().downcast::<Envelope<P>>() {
                Ok(envelope) => Ok(*envelope),
                // `typed` said it is one.
                Err(_) => Err(DecodeError::NotAnEnvelope(serde::de::Error::custom(
                    "the typed envelope changed type",
                ))),
            },
            Ok(Shared {
                source: Source::Json(_),
                ..
            }) => Err(DecodeError::NotAnEnvelope(serde::de::Error::custom(
                "the typed envelope is gone",
            ))),
            Err(shared) => Self { shared, ..self }.decode(),
        }
    }

    /// The typed envelope, when the event was emitted in this process as a `P`.
    fn typed<P: EventPayload>(&self) -> Option<&Envelope<P>> {
        match &self.shared.source {
            Source::Typed { envelope, .. } => envelope.as_any().downcast_ref::<Envelope<P>>(),
            Source::Json(_) => None,
        }
    }

    /// One pass over the JSON into the typed envelope, unless it was parsed already; the untyped
    /// parse names what is wrong.
    fn decode_json<P: EventPayload>(&self) -> Result<Envelope<P>, DecodeError> {
        let json = self.json().map_err(DecodeError::NotAnEnvelope)?;
        if self.shared.parsed.get().is_none()
            && let Ok(envelope) = serde_json::from_str::<Envelope<P>>(json)
            && envelope.event_type == P::TYPE
            && envelope.version == P::VERSION
            && self.published(&envelope.event_type, envelope.event_id)
        {
            return Ok(envelope);
        }
        self.envelope()?.decode()
    }

    fn published(&self, event_type: &str, event_id: Uuid) -> bool {
        event_type == self.event_type && event_id == self.event_id
    }

    /// Why `json` is not the published envelope (the unhappy path: parsed again for the error).
    fn not_published(&self, json: &str) -> DecodeError {
        match RawEnvelope::from_slice(json.as_bytes()) {
            Err(error) => error,
            Ok(raw) => DecodeError::NotAnEnvelope(serde::de::Error::custom(format!(
                "the envelope (type `{}`, eventId {}) is not the event published (type `{}`, eventId {})",
                raw.event_type, raw.event_id, self.event_type, self.event_id
            ))),
        }
    }
}

impl fmt::Debug for Delivered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivered")
            .field("event_type", &self.event_type)
            .field("category", &self.category)
            .field("event_id", &self.event_id)
            .field("typed", &matches!(self.shared.source, Source::Typed { .. }))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::VariationCompleted;

    fn local(payload: VariationCompleted) -> (Envelope<VariationCompleted>, Delivered) {
        let envelope = Envelope::new("tests", payload).expect("valid");
        let (_, delivered) = Delivered::from_typed(TypedEvent::new(envelope.clone()));
        (envelope, delivered)
    }

    fn serialized(delivered: &Delivered) -> bool {
        match &delivered.shared.source {
            Source::Typed { json, .. } => json.get().is_some(),
            Source::Json(_) => true,
        }
    }

    #[test]
    fn an_event_of_this_process_is_serialized_only_when_asked_for() {
        let (envelope, delivered) = local(VariationCompleted::new("v"));
        let copy = delivered.clone();
        assert_eq!(
            delivered.decode::<VariationCompleted>().expect("decodes"),
            envelope
        );
        assert!(
            !serialized(&delivered),
            "decoding a typed event serializes nothing"
        );
        let json = delivered.json().expect("serializes");
        assert_eq!(json, serde_json::to_string(&envelope).expect("serializes"));
        assert!(serialized(&copy), "clones share the JSON");
        assert!(std::ptr::eq(json, copy.json().expect("serializes")));
    }

    #[test]
    fn another_type_is_told_by_the_untyped_parse() {
        let (_, delivered) = local(VariationCompleted::new("v"));
        let error = delivered
            .clone()
            .into_decoded::<crate::test_support::Signup>()
            .expect_err("another type");
        assert!(matches!(error, DecodeError::WrongType { .. }), "{error:?}");
        // A copy is still held, so the typed envelope is cloned, not moved.
        let copy = delivered.clone();
        assert!(delivered.into_decoded::<VariationCompleted>().is_ok());
        assert!(copy.decode::<VariationCompleted>().is_ok());
    }
}
