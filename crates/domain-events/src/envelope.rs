//! The envelope every event travels in (docs/contract.md section 2).

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::formats::Timestamp;
use crate::payload::EventPayload;
use crate::validation::ValidationError;

/// An event: metadata plus a payload. JSON field names are camelCase.
///
/// `Envelope<P>` for a generated payload is aliased per event (`ImageVariationCompletedEvent`);
/// [`RawEnvelope`] keeps the payload as unparsed JSON until a handler asks for its type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<P> {
    /// UUID v7, new for every emission.
    pub event_id: Uuid,
    /// The type string, `<category>:<name>`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The payload's schema version.
    pub version: u32,
    /// When the event was emitted, RFC 3339 UTC with milliseconds.
    pub occurred_at: Timestamp,
    /// The emitting service.
    pub source: String,
    /// The value of the event's correlation field.
    pub correlation_id: String,
    /// The `eventId` of the event that caused this one.
    #[serde(default)]
    pub causation_id: Option<Uuid>,
    /// The event's idempotency key, filled from its template.
    pub idempotency_key: String,
    /// W3C Trace Context `traceparent` of the emitting span.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// The payload.
    pub payload: P,
}

/// An envelope whose payload has not been parsed yet.
pub type RawEnvelope = Envelope<Box<RawValue>>;

/// Why bytes could not be turned into a typed event.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The bytes are not an envelope (not JSON, or required envelope fields missing or mistyped).
    #[error("not an event envelope: {0}")]
    NotAnEnvelope(#[source] serde_json::Error),
    /// The type string is not declared by any schema this consumer knows.
    #[error("unknown event type `{0}`")]
    UnknownType(String),
    /// The type is known but this version is not (any more, or not yet) declared.
    #[error("event type `{event_type}` has no declared version {version}")]
    UnknownVersion {
        /// The envelope's type string.
        event_type: String,
        /// The envelope's version.
        version: u32,
    },
    /// A typed decode was asked for another type than the envelope carries.
    #[error("expected an event of type `{expected}`, got `{found}`")]
    WrongType {
        /// The type asked for.
        expected: &'static str,
        /// The type of the envelope.
        found: String,
    },
    /// The payload does not match its schema (missing or mistyped field, broken constraint).
    #[error("payload of `{event_type}` v{version} does not match its schema: {source}")]
    InvalidPayload {
        /// The envelope's type string.
        event_type: String,
        /// The envelope's version.
        version: u32,
        /// What serde or the constraint check said.
        #[source]
        source: serde_json::Error,
    },
}

impl RawEnvelope {
    /// Parses the envelope of `bytes`, leaving the payload unparsed.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, DecodeError> {
        serde_json::from_slice(bytes).map_err(DecodeError::NotAnEnvelope)
    }

    /// Parses the payload as `P`, checking that type and version match and that the payload keeps
    /// its constraints.
    pub fn decode<P: EventPayload>(&self) -> Result<Envelope<P>, DecodeError> {
        if self.event_type != P::TYPE {
            return Err(DecodeError::WrongType {
                expected: P::TYPE,
                found: self.event_type.clone(),
            });
        }
        if self.version != P::VERSION {
            return Err(DecodeError::UnknownVersion {
                event_type: self.event_type.clone(),
                version: self.version,
            });
        }
        let payload: P = serde_json::from_str(self.payload.get()).map_err(|source| {
            DecodeError::InvalidPayload {
                event_type: self.event_type.clone(),
                version: self.version,
                source,
            }
        })?;
        Ok(self.with_payload(payload))
    }

    /// The same metadata with another payload.
    pub fn with_payload<Q>(&self, payload: Q) -> Envelope<Q> {
        Envelope {
            event_id: self.event_id,
            event_type: self.event_type.clone(),
            version: self.version,
            occurred_at: self.occurred_at.clone(),
            source: self.source.clone(),
            correlation_id: self.correlation_id.clone(),
            causation_id: self.causation_id,
            idempotency_key: self.idempotency_key.clone(),
            traceparent: self.traceparent.clone(),
            payload,
        }
    }
}

impl<P: EventPayload> Envelope<P> {
    /// A new envelope for `payload` emitted by `source`: a fresh UUID v7, the current time, and the
    /// idempotency key and correlation id computed from the payload. Fails when the payload breaks a
    /// constraint of its schema.
    pub fn new(source: impl Into<String>, payload: P) -> Result<Self, ValidationError> {
        crate::validation::Validate::validate(&payload)?;
        Ok(Self {
            event_id: Uuid::now_v7(),
            event_type: P::TYPE.to_owned(),
            version: P::VERSION,
            occurred_at: Timestamp::now(),
            source: source.into(),
            correlation_id: payload.correlation_id(),
            causation_id: None,
            idempotency_key: payload.idempotency_key(),
            traceparent: None,
            payload,
        })
    }

    /// Sets the causation id: the `eventId` of the event that caused this one.
    pub fn caused_by(mut self, event_id: Uuid) -> Self {
        self.causation_id = Some(event_id);
        self
    }

    /// Sets the W3C `traceparent`; a value that is not a valid version-00 traceparent is ignored,
    /// as the Trace Context specification requires.
    pub fn with_traceparent(mut self, traceparent: &str) -> Self {
        self.traceparent = is_valid_traceparent(traceparent).then(|| traceparent.to_owned());
        self
    }
}

/// `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`, lowercase, ids not all zero.
pub fn is_valid_traceparent(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    let hex = |s: &str, len: usize| {
        s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    let nonzero = |s: &str| s.bytes().any(|b| b != b'0');
    matches!(parts.as_slice(), [version, trace, parent, flags]
        if *version == "00" && hex(trace, 32) && nonzero(trace) && hex(parent, 16) && nonzero(parent) && hex(flags, 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_rules() {
        assert!(is_valid_traceparent(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        ));
        assert!(!is_valid_traceparent(
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01"
        ));
        assert!(!is_valid_traceparent(
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        ));
        assert!(!is_valid_traceparent(
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"
        ));
        assert!(!is_valid_traceparent("garbage"));
    }

    #[test]
    fn raw_envelopes_keep_the_payload_unparsed() {
        let json = r#"{"eventId":"0193a6c4-7b7e-7c1e-9d0a-5f2b8e4a1c33","type":"image:variation_completed","version":1,
            "occurredAt":"2026-11-26T17:04:05.123Z","source":"image-generator","correlationId":"var-123",
            "causationId":null,"idempotencyKey":"image_complete:var-123","extra":true,"payload":{"a":1}}"#;
        let raw = RawEnvelope::from_slice(json.as_bytes()).unwrap();
        assert_eq!(raw.event_type, "image:variation_completed");
        assert_eq!(raw.payload.get(), r#"{"a":1}"#);
        assert!(RawEnvelope::from_slice(b"not json").is_err());
        assert!(matches!(
            RawEnvelope::from_slice(br#"{"type":"x"}"#),
            Err(DecodeError::NotAnEnvelope(_))
        ));
    }
}
