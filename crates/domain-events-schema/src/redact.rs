//! Redacting the fields a schema marks `sensitive` in a payload read as JSON, for tools that show
//! events to people (the CLI's `tail`, the dashboard): the same rule the generated `Debug` follows.

use serde_json::Value;

use crate::model::{Catalog, Field, FieldType, NamedKind};

/// The stand-in shown for the value of a sensitive field, as in the generated `Debug` output.
pub const REDACTED: &str = "[redacted]";

/// Replaces the value of every sensitive field of `payload` (also inside objects, lists and maps)
/// with [`REDACTED`], by the fields of `event_type` version `version` in `catalog`. Returns
/// `false`, leaving `payload` as it is, when the catalog does not declare that event version:
/// then nobody can tell which of its fields are sensitive.
///
/// ```
/// use domain_events_schema::{Catalog, redact::redact_payload};
///
/// let catalog = Catalog::from_sources(&[("funnel.toml", r#"
///     category = "funnel"
///     correlation = "userId"
///     [events.signup]
///     idempotency_key = "signup:{userId}"
///     [events.signup.fields]
///     userId = "string"
///     email = { type = "email", sensitive = true }
/// "#)]).unwrap();
/// let mut payload = serde_json::json!({"userId": "u1", "email": "a@b.example"});
/// assert!(redact_payload(&catalog, "funnel:signup", 1, &mut payload));
/// assert_eq!(payload, serde_json::json!({"userId": "u1", "email": "[redacted]"}));
/// ```
pub fn redact_payload(
    catalog: &Catalog,
    event_type: &str,
    version: u32,
    payload: &mut Value,
) -> bool {
    let Some(declared) = catalog
        .events()
        .find(|event| event.type_string == event_type)
        .and_then(|event| event.versions.iter().find(|v| v.version == version))
    else {
        return false;
    };
    redact_fields(catalog, &declared.fields, payload);
    true
}

fn redact_fields(catalog: &Catalog, fields: &[Field], object: &mut Value) {
    let Some(object) = object.as_object_mut() else {
        return;
    };
    for field in fields {
        let Some(value) = object.get_mut(&field.name) else {
            continue;
        };
        if field.sensitive {
            *value = Value::String(REDACTED.to_owned());
        } else {
            redact_value(catalog, &field.ty, value);
        }
    }
}

fn redact_value(catalog: &Catalog, ty: &FieldType, value: &mut Value) {
    match ty {
        FieldType::List(inner) => {
            for item in value.as_array_mut().into_iter().flatten() {
                redact_value(catalog, inner, item);
            }
        }
        FieldType::Map(inner) => {
            for item in value
                .as_object_mut()
                .into_iter()
                .flat_map(|m| m.values_mut())
            {
                redact_value(catalog, inner, item);
            }
        }
        FieldType::Named(name) => {
            if let Some(NamedKind::Object(fields)) = catalog.named(name).map(|t| &t.kind) {
                redact_fields(catalog, fields, value);
            }
        }
        _ => {}
    }
}
