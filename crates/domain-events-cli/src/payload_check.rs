//! Checking events against a schema folder at run time, as generated code checks its types at
//! compile time: the JSON Schema `export` writes for each event version, and the redaction of the
//! fields it marks sensitive. `emit` checks a payload before publishing it; `tail` checks each
//! event it reads, so that it dead-letters what a service's consumer would.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use domain_events::{DecodeError, RawEnvelope};
use domain_events_schema::model::{Catalog, Event, EventVersion};
use domain_events_schema::redact::redact_payload;
use domain_events_schema::{ExportSettings, json_schema};
use serde_json::Value;

use crate::Error;

/// The payload validator of one event version: the JSON Schema that `export` writes for it, with
/// formats checked.
pub(crate) fn payload_validator(
    catalog: &Catalog,
    event: &Event,
    version: &EventVersion,
) -> Result<jsonschema::Validator, Error> {
    let schema = json_schema::payload_schema(catalog, &ExportSettings::new(), event, version);
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .map_err(|error| Error::UnusableSchema {
            event_type: event.type_string.clone(),
            message: error.to_string(),
        })
}

/// Every problem of `payload`, as `at payload<JSON pointer>: <rule>`: never a value (it may be
/// sensitive).
pub(crate) fn problems(validator: &jsonschema::Validator, payload: &Value) -> Vec<String> {
    validator
        .iter_errors(payload)
        .map(|error| format!("at payload{}: {}", error.instance_path(), error.masked()))
        .collect()
}

/// Checks events against a schema folder: type declared, version declared, payload valid.
/// Validators are compiled on first use, per event version.
pub(crate) struct Checker {
    catalog: Catalog,
    validators: Mutex<HashMap<(String, u32), Arc<jsonschema::Validator>>>,
}

impl Checker {
    pub(crate) fn new(catalog: Catalog) -> Self {
        Self {
            catalog,
            validators: Mutex::default(),
        }
    }

    /// The event version `raw` claims to be, or why it is not declared.
    fn version_of(&self, raw: &RawEnvelope) -> Result<(&Event, &EventVersion), DecodeError> {
        let event = self
            .catalog
            .events()
            .find(|event| event.type_string == raw.event_type)
            .ok_or_else(|| DecodeError::UnknownType(raw.event_type.clone()))?;
        let version = event
            .versions
            .iter()
            .find(|version| version.version == raw.version)
            .ok_or_else(|| DecodeError::UnknownVersion {
                event_type: raw.event_type.clone(),
                version: raw.version,
            })?;
        Ok((event, version))
    }

    /// Whether `raw` is an event of the folder whose payload matches its schema; the error is what
    /// a service's consumer would dead-letter it for.
    pub(crate) fn check(&self, raw: &RawEnvelope) -> Result<(), DecodeError> {
        let (event, version) = self.version_of(raw)?;
        let invalid = |message: String| DecodeError::InvalidPayload {
            event_type: raw.event_type.clone(),
            version: raw.version,
            source: <serde_json::Error as serde::de::Error>::custom(message),
        };
        let payload: Value = serde_json::from_str(raw.payload.get())
            .map_err(|_| invalid("the payload is not JSON".to_owned()))?;
        let validator = self
            .validator(event, version)
            .map_err(|e| invalid(e.to_string()))?;
        let problems = problems(&validator, &payload);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(invalid(problems.join("; ")))
        }
    }

    fn validator(
        &self,
        event: &Event,
        version: &EventVersion,
    ) -> Result<Arc<jsonschema::Validator>, Error> {
        let key = (event.type_string.clone(), version.version);
        let mut validators = self
            .validators
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(validator) = validators.get(&key) {
            return Ok(validator.clone());
        }
        let validator = Arc::new(payload_validator(&self.catalog, event, version)?);
        validators.insert(key, validator.clone());
        Ok(validator)
    }

    /// `payload` of `raw`'s event version with the value of every sensitive field (also inside
    /// objects, lists and maps) replaced by `[redacted]`. An event the folder does not declare
    /// is left as it is (it was checked before).
    pub(crate) fn redact(&self, raw: &RawEnvelope, payload: &mut Value) {
        redact_payload(&self.catalog, &raw.event_type, raw.version, payload);
    }
}
