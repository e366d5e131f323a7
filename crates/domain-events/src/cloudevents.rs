//! CloudEvents 1.0 in structured-mode JSON (docs/contract.md section 8), both ways and without loss.
//!
//! | CloudEvents attribute | envelope |
//! |---|---|
//! | `specversion` | always `"1.0"` |
//! | `id` | `eventId` |
//! | `source` | `source` |
//! | `type` | `type` |
//! | `time` | `occurredAt`, the exact text |
//! | `subject` | `correlationId` (left out when empty: CloudEvents forbids an empty subject) |
//! | `datacontenttype` | always `"application/json"` |
//! | `dataschema` | the `$id` of the payload's JSON Schema, when the caller gives it |
//! | `data` | `payload`, as a JSON value |
//! | extension `idempotencykey` | `idempotencyKey` |
//! | extension `correlationid` | `correlationId` |
//! | extension `causationid` | `causationId`; absent when null |
//! | extension `schemaversion` | `version`, an integer |
//! | extension `traceparent` | `traceparent`; absent when unset |
//!
//! `dataschema` is not part of the envelope: the generated code does not know the `$id` base of
//! the export (it is a setting of the export, `https://schemas.domain-events.dev/` unless
//! configured), so [`Envelope::to_cloudevent`] takes the URI from the caller and leaves the
//! attribute out when given none. [`payload_schema_id`] builds the `$id` the export gives a
//! version's payload schema. Reading ignores `dataschema`, as it ignores any unknown extension.
//!
//! Reading is tolerant: an attribute set to `null` counts as absent (the JSON format says so),
//! `schemaversion` may also be a string of digits (as it is after an HTTP binary-mode hop, where
//! every attribute is a header), `correlationId` falls back to `subject` when the `correlationid`
//! extension is missing, and `datacontenttype` may be absent or any JSON media type.
//!
//! ```
//! use domain_events::{RawEnvelope, payload_schema_id, DEFAULT_SCHEMA_ID_BASE};
//!
//! let json = br#"{"eventId":"0193a6c4-7b7e-7c1e-9d0a-5f2b8e4a1c33","type":"image:variation_started",
//!   "version":1,"occurredAt":"2026-11-26T17:04:05.123Z","source":"image-generator",
//!   "correlationId":"var-123","causationId":null,"idempotencyKey":"image_started:var-123",
//!   "payload":{"variationId":"var-123"}}"#;
//! let envelope = RawEnvelope::from_slice(json)?;
//! let schema = payload_schema_id(DEFAULT_SCHEMA_ID_BASE, &envelope.event_type, envelope.version);
//! let event = envelope.to_cloudevent(schema.as_deref())?;
//! assert_eq!(event["id"], "0193a6c4-7b7e-7c1e-9d0a-5f2b8e4a1c33");
//! assert_eq!(event["subject"], "var-123");
//! assert_eq!(event["schemaversion"], 1);
//! assert_eq!(event["dataschema"], "https://schemas.domain-events.dev/image/variation_started.v1.payload.schema.json");
//! assert!(event.get("causationid").is_none());
//!
//! let back = RawEnvelope::from_cloudevent(&event)?;
//! assert_eq!(serde_json::to_value(&back)?, serde_json::to_value(&envelope)?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::envelope::{Envelope, RawEnvelope};
use crate::formats::Timestamp;

/// The CloudEvents specification version written and read.
pub const CLOUDEVENTS_SPEC_VERSION: &str = "1.0";

/// The media type of a structured-mode JSON CloudEvent (the HTTP `Content-Type` to send it with).
pub const CLOUDEVENTS_JSON_CONTENT_TYPE: &str = "application/cloudevents+json";

/// The `datacontenttype` of every event written: payloads are JSON.
pub const DATA_CONTENT_TYPE: &str = "application/json";

/// The `$id` base of the export unless configured otherwise (docs/contract.md sections 3.5 and
/// 8): [`wire::SCHEMA_ID_BASE`](crate::wire::SCHEMA_ID_BASE), the one definition the schema
/// library's export uses too.
pub const DEFAULT_SCHEMA_ID_BASE: &str = crate::wire::SCHEMA_ID_BASE;

/// The `$id` the export gives the payload schema of `event_type` at `version`:
/// `<base><category>/<name>.v<version>.payload.schema.json`, for the `dataschema` attribute.
/// `None` when `event_type` is not `<category>:<name>`.
pub fn payload_schema_id(schema_id_base: &str, event_type: &str, version: u32) -> Option<String> {
    let (category, name) = event_type.split_once(':')?;
    if category.is_empty() || name.is_empty() {
        return None;
    }
    let slash = if schema_id_base.ends_with('/') {
        ""
    } else {
        "/"
    };
    Some(format!(
        "{schema_id_base}{slash}{category}/{name}.v{version}.payload.schema.json"
    ))
}

/// Why an envelope and a CloudEvent could not be converted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CloudEventError {
    /// The bytes are not JSON.
    #[error("not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    /// The JSON is not an object.
    #[error("a structured-mode CloudEvent is a JSON object")]
    NotAnObject,
    /// An attribute the envelope needs is absent (or `null`).
    #[error("CloudEvents attribute `{0}` is missing")]
    Missing(&'static str),
    /// An attribute has the wrong type or an unreadable value.
    #[error("CloudEvents attribute `{name}` is invalid: {reason}")]
    Invalid {
        /// The attribute.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// `specversion` is not `1.0`.
    #[error("CloudEvents `specversion` `{0}` is not supported; only 1.0 is")]
    SpecVersion(String),
    /// `datacontenttype` says the data is not JSON.
    #[error("CloudEvents `datacontenttype` `{0}` is not a JSON media type")]
    ContentType(String),
    /// The event carries binary data (`data_base64`), which is never a payload.
    #[error("the CloudEvent carries binary data (`data_base64`), not a JSON payload")]
    BinaryData,
    /// The payload could not be written as JSON.
    #[error("the payload cannot be written as JSON: {0}")]
    Payload(#[source] serde_json::Error),
}

fn invalid(name: &'static str, reason: impl Into<String>) -> CloudEventError {
    CloudEventError::Invalid {
        name,
        reason: reason.into(),
    }
}

impl<P: Serialize> Envelope<P> {
    /// This event as a structured-mode JSON CloudEvent (see the [module docs](crate::cloudevents)
    /// for the mapping). `dataschema` is the payload schema's `$id` ([`payload_schema_id`]); with
    /// `None` the attribute is left out.
    ///
    /// Fails when the payload cannot be written as JSON, or when `type` or `source` is empty
    /// (CloudEvents requires both to be non-empty).
    pub fn to_cloudevent(&self, dataschema: Option<&str>) -> Result<Value, CloudEventError> {
        if self.event_type.is_empty() {
            return Err(invalid("type", "the event type is empty"));
        }
        if self.source.is_empty() {
            return Err(invalid("source", "the event source is empty"));
        }
        let data = serde_json::to_value(&self.payload).map_err(CloudEventError::Payload)?;
        let mut event = Map::new();
        let mut set = |name: &str, value: Value| {
            event.insert(name.to_owned(), value);
        };
        set("specversion", CLOUDEVENTS_SPEC_VERSION.into());
        set("id", self.event_id.to_string().into());
        set("source", self.source.clone().into());
        set("type", self.event_type.clone().into());
        set("time", self.occurred_at.as_str().into());
        if !self.correlation_id.is_empty() {
            set("subject", self.correlation_id.clone().into());
        }
        set("datacontenttype", DATA_CONTENT_TYPE.into());
        if let Some(schema) = dataschema.filter(|s| !s.is_empty()) {
            set("dataschema", schema.into());
        }
        set("idempotencykey", self.idempotency_key.clone().into());
        set("correlationid", self.correlation_id.clone().into());
        if let Some(causation) = self.causation_id {
            set("causationid", causation.to_string().into());
        }
        set("schemaversion", self.version.into());
        if let Some(traceparent) = &self.traceparent {
            set("traceparent", traceparent.clone().into());
        }
        set("data", data);
        Ok(Value::Object(event))
    }
}

impl RawEnvelope {
    /// Reads a structured-mode JSON CloudEvent (bytes) into an envelope, leaving the payload
    /// unparsed; [`decode`](Self::decode) it as a payload type next.
    pub fn from_cloudevent_slice(bytes: &[u8]) -> Result<Self, CloudEventError> {
        let value: Value = serde_json::from_slice(bytes).map_err(CloudEventError::NotJson)?;
        Self::from_cloudevent(&value)
    }

    /// Reads a structured-mode JSON CloudEvent into an envelope, leaving the payload unparsed;
    /// [`decode`](Self::decode) it as a payload type next. The inverse of
    /// [`to_cloudevent`](Envelope::to_cloudevent): an envelope converted there and back is equal
    /// to itself.
    pub fn from_cloudevent(event: &Value) -> Result<Self, CloudEventError> {
        let attributes = event.as_object().ok_or(CloudEventError::NotAnObject)?;
        // `null` means "not set" for every attribute (JSON format, section 2.4).
        let get = |name: &str| attributes.get(name).filter(|v| !v.is_null());
        let string = |name: &'static str| -> Result<Option<&str>, CloudEventError> {
            match get(name) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.as_str())),
                Some(other) => Err(invalid(name, format!("expected a string, got `{other}`"))),
            }
        };
        let required = |name: &'static str| string(name)?.ok_or(CloudEventError::Missing(name));

        let spec = required("specversion")?;
        if spec != CLOUDEVENTS_SPEC_VERSION {
            return Err(CloudEventError::SpecVersion(spec.to_owned()));
        }
        if get("data_base64").is_some() {
            return Err(CloudEventError::BinaryData);
        }
        if let Some(content_type) = string("datacontenttype")?
            && !is_json_media_type(content_type)
        {
            return Err(CloudEventError::ContentType(content_type.to_owned()));
        }

        let id = required("id")?;
        let event_id =
            Uuid::parse_str(id).map_err(|e| invalid("id", format!("`{id}` is not a UUID: {e}")))?;
        let source = non_empty("source", required("source")?)?;
        let event_type = non_empty("type", required("type")?)?;
        let time = required("time")?;
        let occurred_at = Timestamp::parse(time).map_err(|e| invalid("time", e.to_string()))?;
        let correlation_id = match string("correlationid")? {
            Some(id) => id,
            None => string("subject")?.ok_or(CloudEventError::Missing("correlationid"))?,
        };
        let causation_id = string("causationid")?
            .map(|c| {
                Uuid::parse_str(c)
                    .map_err(|e| invalid("causationid", format!("`{c}` is not a UUID: {e}")))
            })
            .transpose()?;
        let idempotency_key = required("idempotencykey")?;
        let version = schema_version(get("schemaversion"))?;
        let traceparent = string("traceparent")?.map(str::to_owned);
        // `data: null` is an explicit null payload; a missing `data` is no payload at all.
        let data = attributes
            .get("data")
            .ok_or(CloudEventError::Missing("data"))?;
        let payload = serde_json::value::to_raw_value(data).map_err(CloudEventError::Payload)?;

        Ok(Envelope {
            event_id,
            event_type: event_type.to_owned(),
            version,
            occurred_at,
            source: source.to_owned(),
            correlation_id: correlation_id.to_owned(),
            causation_id,
            idempotency_key: idempotency_key.to_owned(),
            traceparent,
            payload,
        })
    }
}

fn non_empty<'a>(name: &'static str, value: &'a str) -> Result<&'a str, CloudEventError> {
    if value.is_empty() {
        Err(invalid(name, "must not be empty"))
    } else {
        Ok(value)
    }
}

/// `schemaversion`: an integer, or a string of digits after a hop that turned it into text.
fn schema_version(value: Option<&Value>) -> Result<u32, CloudEventError> {
    let name = "schemaversion";
    let number = match value {
        None => return Err(CloudEventError::Missing(name)),
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().ok()
        }
        Some(other) => return Err(invalid(name, format!("expected an integer, got `{other}`"))),
    };
    number
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| *n >= 1)
        .ok_or_else(|| invalid(name, "expected a whole number from 1"))
}

/// `application/json`, `text/json`, `application/cloudevents+json`, with or without parameters.
fn is_json_media_type(media_type: &str) -> bool {
    let essence = media_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.split_once('/') {
        Some((_, subtype)) => subtype == "json" || subtype.ends_with("+json"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::test_support::VariationCompleted;

    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn envelope() -> Envelope<VariationCompleted> {
        Envelope::new("image-generator", VariationCompleted::new("var-123")).expect("valid")
    }

    fn full() -> Envelope<VariationCompleted> {
        envelope()
            .caused_by(Uuid::parse_str("0193a6c4-7b7e-7c1e-9d0a-5f2b8e4a1c33").expect("uuid"))
            .with_traceparent(TRACEPARENT)
    }

    fn round_trip(
        e: &Envelope<VariationCompleted>,
        dataschema: Option<&str>,
    ) -> Envelope<VariationCompleted> {
        let event = e.to_cloudevent(dataschema).expect("converts");
        let raw = RawEnvelope::from_cloudevent(&event).expect("reads back");
        raw.decode().expect("decodes")
    }

    #[test]
    fn attributes_follow_the_contract() {
        let e = full();
        let schema = payload_schema_id(DEFAULT_SCHEMA_ID_BASE, &e.event_type, e.version);
        let event = e.to_cloudevent(schema.as_deref()).expect("converts");
        assert_eq!(
            event,
            json!({
                "specversion": "1.0",
                "id": e.event_id.to_string(),
                "source": "image-generator",
                "type": "image:variation_completed",
                "time": e.occurred_at.as_str(),
                "subject": "var-123",
                "datacontenttype": "application/json",
                "dataschema": "https://schemas.domain-events.dev/image/variation_completed.v1.payload.schema.json",
                "idempotencykey": "image_complete:var-123",
                "correlationid": "var-123",
                "causationid": "0193a6c4-7b7e-7c1e-9d0a-5f2b8e4a1c33",
                "schemaversion": 1,
                "traceparent": TRACEPARENT,
                "data": {"variationId": "var-123", "familiesCompleted": 9},
            })
        );
        // Every attribute name is CloudEvents-legal: lowercase letters and digits, at most 20.
        for name in event.as_object().expect("object").keys() {
            assert!(
                name.len() <= 20
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
                "{name}"
            );
        }
    }

    #[test]
    fn optional_attributes_are_absent_not_null() {
        let event = envelope().to_cloudevent(None).expect("converts");
        for absent in ["causationid", "traceparent", "dataschema"] {
            assert!(event.get(absent).is_none(), "{absent} in {event}");
        }
    }

    #[test]
    fn envelope_to_cloudevent_and_back_is_lossless() {
        for e in [envelope(), full()] {
            assert_eq!(round_trip(&e, None), e);
            assert_eq!(round_trip(&e, Some("https://example.com/s.json")), e);
            // The raw form too: the payload JSON survives as a value.
            let raw = RawEnvelope::from_slice(&serde_json::to_vec(&e).expect("json")).expect("raw");
            let back = RawEnvelope::from_cloudevent(&raw.to_cloudevent(None).expect("converts"))
                .expect("reads");
            assert_eq!(
                serde_json::to_value(&back).expect("json"),
                serde_json::to_value(&e).expect("json")
            );
        }
    }

    #[test]
    fn cloudevent_to_envelope_and_back_is_lossless() {
        let schema =
            "https://schemas.domain-events.dev/image/variation_completed.v1.payload.schema.json";
        let event = full().to_cloudevent(Some(schema)).expect("converts");
        let text = serde_json::to_vec(&event).expect("json");
        let again = RawEnvelope::from_cloudevent_slice(&text)
            .expect("reads")
            .to_cloudevent(Some(schema))
            .expect("converts");
        assert_eq!(again, event);
    }

    #[test]
    fn reading_is_tolerant() {
        let mut event = full().to_cloudevent(None).expect("converts");
        // After an HTTP binary-mode hop every attribute is text; nulls mean "unset"; unknown
        // extensions and a charset parameter are fine; correlationid falls back to subject.
        event["schemaversion"] = json!("1");
        event["traceparent"] = Value::Null;
        event["causationid"] = Value::Null;
        event["partitionkey"] = json!("p-1");
        event["datacontenttype"] = json!("application/json; charset=utf-8");
        if let Some(map) = event.as_object_mut() {
            map.remove("correlationid");
        }
        let raw = RawEnvelope::from_cloudevent(&event).expect("reads");
        assert_eq!((raw.version, raw.correlation_id.as_str()), (1, "var-123"));
        assert_eq!((raw.traceparent.as_deref(), raw.causation_id), (None, None));
        // An absent datacontenttype means JSON.
        if let Some(map) = event.as_object_mut() {
            map.remove("datacontenttype");
        }
        assert!(RawEnvelope::from_cloudevent(&event).is_ok());
    }

    #[test]
    fn an_empty_correlation_id_has_no_subject() {
        let mut e = envelope();
        e.correlation_id.clear();
        let event = e.to_cloudevent(None).expect("converts");
        assert!(event.get("subject").is_none());
        assert_eq!(round_trip(&e, None), e);
    }

    #[test]
    fn what_cannot_be_read() {
        let good = full().to_cloudevent(None).expect("converts");
        let with = |name: &str, value: Value| {
            let mut event = good.clone();
            event[name] = value;
            RawEnvelope::from_cloudevent(&event)
                .expect_err(name)
                .to_string()
        };
        let without = |name: &str| {
            let mut event = good.clone();
            if let Some(map) = event.as_object_mut() {
                map.remove(name);
            }
            RawEnvelope::from_cloudevent(&event)
                .expect_err(name)
                .to_string()
        };
        assert_eq!(
            with("specversion", json!("0.3")),
            "CloudEvents `specversion` `0.3` is not supported; only 1.0 is"
        );
        assert!(
            with("id", json!("evt-1"))
                .starts_with("CloudEvents attribute `id` is invalid: `evt-1` is not a UUID")
        );
        assert!(
            with("time", json!("yesterday")).starts_with("CloudEvents attribute `time` is invalid")
        );
        assert!(with("source", json!(7)).contains("expected a string"));
        assert!(with("source", json!("")).contains("must not be empty"));
        assert!(with("schemaversion", json!(0)).contains("a whole number from 1"));
        assert!(with("schemaversion", json!(1.5)).contains("a whole number from 1"));
        assert!(with("schemaversion", json!("v1")).contains("expected an integer"));
        assert_eq!(
            with("datacontenttype", json!("text/plain")),
            "CloudEvents `datacontenttype` `text/plain` is not a JSON media type"
        );
        assert!(with("data_base64", json!("AAAA")).contains("binary data"));
        for name in [
            "specversion",
            "id",
            "source",
            "type",
            "time",
            "idempotencykey",
            "schemaversion",
            "data",
        ] {
            assert_eq!(
                without(name),
                format!("CloudEvents attribute `{name}` is missing")
            );
        }
        let mut anonymous = good.clone();
        if let Some(map) = anonymous.as_object_mut() {
            map.remove("correlationid");
            map.remove("subject");
        }
        assert!(matches!(
            RawEnvelope::from_cloudevent(&anonymous),
            Err(CloudEventError::Missing("correlationid"))
        ));
        assert!(matches!(
            RawEnvelope::from_cloudevent(&json!([1])),
            Err(CloudEventError::NotAnObject)
        ));
        assert!(matches!(
            RawEnvelope::from_cloudevent_slice(b"{"),
            Err(CloudEventError::NotJson(_))
        ));

        let mut nameless = envelope();
        nameless.source.clear();
        assert!(nameless.to_cloudevent(None).is_err());
    }

    #[test]
    fn schema_ids_match_the_export_layout() {
        assert_eq!(
            payload_schema_id("https://example.com/schemas", "funnel:signup", 3).as_deref(),
            Some("https://example.com/schemas/funnel/signup.v3.payload.schema.json")
        );
        assert_eq!(
            payload_schema_id(DEFAULT_SCHEMA_ID_BASE, "no-category", 1),
            None
        );
        assert_eq!(payload_schema_id(DEFAULT_SCHEMA_ID_BASE, ":x", 1), None);
    }
}
