//! What generated code implements: one [`EventPayload`] per event version, one [`EventSet`] per
//! schema folder.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::envelope::{DecodeError, RawEnvelope};
use crate::validation::Validate;

/// The payload of one version of one event, as declared in a schema file.
///
/// Implemented by `include_events!` for every payload struct; not meant to be implemented by hand.
pub trait EventPayload:
    Validate + Serialize + DeserializeOwned + Clone + fmt::Debug + Send + Sync + 'static
{
    /// The type string, `<category>:<name>`.
    const TYPE: &'static str;
    /// The category (the schema file).
    const CATEGORY: &'static str;
    /// The event name within its category.
    const NAME: &'static str;
    /// The schema version of this payload.
    const VERSION: u32;
    /// The idempotency-key template, e.g. `image_complete:{variationId}`.
    const KEY_TEMPLATE: &'static str;
    /// The payload field whose value becomes the envelope's `correlationId`.
    const CORRELATION_FIELD: &'static str;

    /// The idempotency key: the key template filled from this payload, each `{field}` written by
    /// [`write_key_part`](crate::write_key_part) (canonical text, `%` and `:` escaped), so two
    /// payloads share a key only when the fields the template names are equal.
    fn idempotency_key(&self) -> String;

    /// The correlation id: the value of the correlation field.
    fn correlation_id(&self) -> String;
}

/// Everything the runtime and the tools need to know about one event version, without its types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventInfo {
    /// The type string, `<category>:<name>`.
    pub event_type: &'static str,
    /// The category.
    pub category: &'static str,
    /// The event name within its category.
    pub name: &'static str,
    /// The schema version.
    pub version: u32,
    /// Whether this is the version emitters produce (the newest declared).
    pub latest: bool,
    /// The idempotency-key template.
    pub key_template: &'static str,
    /// The correlation field.
    pub correlation_field: &'static str,
    /// Whether the event is deprecated.
    pub deprecated: bool,
    /// The event's description.
    pub description: &'static str,
}

/// A closed set of events generated from one schema folder (the `DomainEvent` enum).
pub trait EventSet: Sized + fmt::Debug + Send + Sync + 'static {
    /// Every event version of the set.
    const EVENTS: &'static [EventInfo];

    /// Decodes an envelope whose type and version belong to the set, checking its payload.
    fn decode(raw: &RawEnvelope) -> Result<Self, DecodeError>;

    /// The type string of this event.
    fn event_type(&self) -> &'static str;

    /// Looks up an event version of the set.
    fn info(event_type: &str, version: u32) -> Option<&'static EventInfo> {
        Self::EVENTS
            .iter()
            .find(|e| e.event_type == event_type && e.version == version)
    }

    /// Whether the set declares this type string at all (any version).
    fn knows_type(event_type: &str) -> bool {
        Self::EVENTS.iter().any(|e| e.event_type == event_type)
    }
}

/// Text that is not one of the values a generated enum (or `DomainEventType`) accepts.
///
/// It says what was expected and the text's length, never the text: the value may be sensitive.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a text of {length} character{} is not {expected}", if *length == 1 { "" } else { "s" })]
pub struct UnknownValue {
    /// How many characters the rejected text has.
    pub length: usize,
    /// What was expected, in words.
    pub expected: &'static str,
}

impl UnknownValue {
    /// `value` is not `expected`.
    pub fn new(value: &str, expected: &'static str) -> Self {
        Self {
            length: value.chars().count(),
            expected,
        }
    }
}
