//! An event as the pages show it: the envelope as JSON, its payload with the fields the schemas
//! mark sensitive redacted, or hidden whole when no schema says which fields are sensitive.

use domain_events_schema::Catalog;
use domain_events_schema::redact::{REDACTED, redact_payload};
use serde::Serialize;
use serde_json::Value;

/// How the payload of an [`EventView`] was redacted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum Redaction {
    /// The fields the schema marks sensitive show `[redacted]`.
    SensitiveFields,
    /// The catalog does not declare the event's type and version (or there is no catalog): the
    /// whole payload shows `[redacted]`.
    WholePayload,
}

/// An envelope, redacted.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EventView {
    /// The envelope JSON, its `payload` redacted.
    pub(crate) envelope: Value,
    pub(crate) redaction: Redaction,
}

/// The view of the envelope JSON `bytes`; `None` when they are not a JSON object.
pub(crate) fn event_view(catalog: Option<&Catalog>, bytes: &[u8]) -> Option<EventView> {
    let mut envelope: Value = serde_json::from_slice(bytes).ok()?;
    let object = envelope.as_object_mut()?;
    let event_type = object
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let version = object
        .get("version")
        .and_then(Value::as_u64)
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or(1);
    let mut redaction = Redaction::WholePayload;
    if let Some(payload) = object.get_mut("payload") {
        let redacted =
            catalog.is_some_and(|catalog| redact_payload(catalog, &event_type, version, payload));
        if redacted {
            redaction = Redaction::SensitiveFields;
        } else {
            *payload = Value::String(REDACTED.to_owned());
        }
    }
    Some(EventView {
        envelope,
        redaction,
    })
}
