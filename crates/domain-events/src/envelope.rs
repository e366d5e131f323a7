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
///
/// No message quotes a value of the payload (payloads may hold sensitive fields, and these errors
/// reach logs and dead-letter reasons): serde's `invalid type: string "…"` and the like keep the
/// kind of value only, format and constraint errors name the field and the rule.
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
    /// The category of the event: its type string up to the `:` (docs/contract.md section 1).
    pub fn category(&self) -> &str {
        category_of(&self.event_type).unwrap_or(&self.event_type)
    }

    /// Parses the envelope of `bytes`, leaving the payload unparsed.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, DecodeError> {
        serde_json::from_slice(bytes)
            .map_err(|error| DecodeError::NotAnEnvelope(without_values(error)))
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
                source: without_values(source),
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

/// The category part of a type string `<category>:<name>` (docs/contract.md section 1); `None`
/// when it has no `:`.
pub fn category_of(event_type: &str) -> Option<&str> {
    event_type.split_once(':').map(|(category, _)| category)
}

/// Whether `value` is a W3C `traceparent`:
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

/// `error` without the values serde quotes in its message (`invalid type: string "…"`,
/// `invalid value: integer `…``, `unknown variant `…``, a UUID's `found `…``): what kind of value
/// was found and what was expected stay, with the position.
fn without_values(error: serde_json::Error) -> serde_json::Error {
    let text = error.to_string();
    let location = format!(" at line {} column {}", error.line(), error.column());
    let message = text.strip_suffix(&location).unwrap_or(&text);
    let cleaned = message_without_values(message);
    if cleaned == message {
        return error;
    }
    let text = if error.line() == 0 {
        cleaned
    } else {
        format!("{cleaned}{location}")
    };
    <serde_json::Error as serde::de::Error>::custom(text)
}

/// The text of a serde message without the values it quotes.
fn message_without_values(message: &str) -> String {
    // What serde's `Expected` says comes last; the value is between the prefix and it.
    let expected = |rest: &str| rest.rfind(", expected ").map(|at| rest[at..].to_owned());
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            // `string "…"`, `integer `…``, `floating point `…``: the words before the quote.
            let kind = rest
                .split(['`', '"', ','])
                .next()
                .unwrap_or_default()
                .trim_end();
            return format!("{prefix}{kind}{}", expected(rest).unwrap_or_default());
        }
    }
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        let tail = expected(rest).unwrap_or_else(|| ", there are no variants".into());
        return format!("unknown variant{tail}");
    }
    // A UUID's `invalid character: found `x` at 3`.
    match message.find("found `") {
        Some(at) => message[..at].trim_end_matches([' ', ',', ':']).to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_errors_lose_the_values_they_quote() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct P {
            n: u32,
            s: String,
            e: E,
        }
        #[derive(Debug, serde::Deserialize)]
        enum E {
            #[serde(rename = "a")]
            A,
        }
        for (json, kind) in [
            (
                r#"{"n":"SECRET123","s":"x","e":"a"}"#,
                "invalid type: string, expected u32",
            ),
            (
                r#"{"n":1,"s":98765,"e":"a"}"#,
                "invalid type: integer, expected a string",
            ),
            (
                r#"{"n":1,"s":98.765,"e":"a"}"#,
                "invalid type: floating point, expected a string",
            ),
            (
                r#"{"n":-98765,"s":"x","e":"a"}"#,
                "invalid value: integer, expected u32",
            ),
            (
                r#"{"n":1,"s":"x","e":"SECRET123"}"#,
                "unknown variant, expected `a`",
            ),
            (r#"{"n":1,"s":"x"}"#, "missing field `e`"),
        ] {
            let error = without_values(serde_json::from_str::<P>(json).unwrap_err());
            let shown = format!("{error} {error:?}");
            for value in ["SECRET123", "98765", "98.765"] {
                assert!(!shown.contains(value), "{json}: {shown}");
            }
            assert!(shown.contains(kind), "{json}: {shown}");
            assert!(shown.contains("at line 1 column"), "{json}: {shown}");
        }
        let error = without_values(serde_json::from_str::<Uuid>(r#""S0193a6c4""#).unwrap_err());
        assert!(!error.to_string().contains("`S`"), "{error}");
    }

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
