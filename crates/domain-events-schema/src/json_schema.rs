//! JSON Schema (draft 2020-12) of payloads and envelopes, built from the model.
//!
//! Named types are inlined (no `$ref`), so any validator in any language can use a schema file on
//! its own. The content model is open: unknown fields are allowed (docs/contract.md section 2).

use serde_json::{Map, Value, json};

use crate::export::ExportSettings;
use crate::model::{
    Catalog, Constraints, Event, EventVersion, Field, FieldType, NamedKind, Number,
};

/// The `$schema` of every exported schema.
pub const DRAFT: &str = "https://json-schema.org/draft/2020-12/schema";

/// Where a version's schemas live in the export folder, relative to it.
pub fn payload_path(event: &Event, version: &EventVersion) -> String {
    file_path(event, version, "payload")
}

/// Where a version's envelope schema lives in the export folder, relative to it.
pub fn event_path(event: &Event, version: &EventVersion) -> String {
    file_path(event, version, "event")
}

fn file_path(event: &Event, version: &EventVersion, kind: &str) -> String {
    if version.latest {
        format!("{}/{}.{kind}.schema.json", event.category, event.name)
    } else {
        versioned_path(event, version, kind)
    }
}

/// `<category>/<name>.v<n>.<kind>.schema.json`: the file every version has, the latest too, so
/// that a version's `$id` names a file that keeps existing when newer versions arrive.
pub fn versioned_path(event: &Event, version: &EventVersion, kind: &str) -> String {
    format!(
        "{}/{}.v{}.{kind}.schema.json",
        event.category, event.name, version.version
    )
}

/// The `$id` of a version's payload schema: the id base plus its versioned path.
pub fn payload_id(settings: &ExportSettings, event: &Event, version: &EventVersion) -> String {
    format!(
        "{}{}",
        settings.schema_id_base,
        versioned_path(event, version, "payload")
    )
}

/// The `$id` of a version's envelope schema: the id base plus its versioned path.
pub fn event_id(settings: &ExportSettings, event: &Event, version: &EventVersion) -> String {
    format!(
        "{}{}",
        settings.schema_id_base,
        versioned_path(event, version, "event")
    )
}

/// The standalone payload schema of one event version.
pub fn payload_schema(
    catalog: &Catalog,
    settings: &ExportSettings,
    event: &Event,
    version: &EventVersion,
) -> Value {
    let mut schema = Map::new();
    schema.insert("$schema".into(), DRAFT.into());
    schema.insert("$id".into(), payload_id(settings, event, version).into());
    schema.extend(payload_body(catalog, event, version));
    Value::Object(schema)
}

/// The payload schema without `$schema`/`$id`, as embedded in the envelope schema and as the
/// generated type's `schemars::JsonSchema`.
pub fn payload_body(
    catalog: &Catalog,
    event: &Event,
    version: &EventVersion,
) -> Map<String, Value> {
    let mut schema = object_schema(catalog, &version.fields);
    schema.insert("title".into(), event.payload_name(version).into());
    if let Some(d) = &version.description {
        schema.insert("description".into(), d.clone().into());
    }
    if event.deprecated {
        schema.insert("deprecated".into(), true.into());
    }
    schema
}

/// The whole envelope of one event version: `type` and `version` as constants, the payload inline.
pub fn event_schema(
    catalog: &Catalog,
    settings: &ExportSettings,
    event: &Event,
    version: &EventVersion,
) -> Value {
    let mut schema = Map::new();
    schema.insert("$schema".into(), DRAFT.into());
    schema.insert("$id".into(), event_id(settings, event, version).into());
    schema.insert("title".into(), event.envelope_name(version).into());
    if let Some(d) = &version.description {
        schema.insert("description".into(), d.clone().into());
    }
    schema.insert("type".into(), "object".into());
    schema.insert(
        "required".into(),
        json!([
            "eventId",
            "type",
            "version",
            "occurredAt",
            "source",
            "correlationId",
            "idempotencyKey",
            "payload"
        ]),
    );
    schema.insert(
        "properties".into(),
        json!({
            "eventId": {"type": "string", "format": "uuid", "description": "UUID v7, new for every emission"},
            "type": {"const": event.type_string},
            "version": {"const": version.version},
            "occurredAt": {"type": "string", "format": "date-time"},
            "source": {"type": "string", "minLength": 1, "description": "the emitting service"},
            "correlationId": {"type": "string", "description": format!("the value of `{}`", version.correlation)},
            "causationId": {"type": ["string", "null"], "format": "uuid"},
            "idempotencyKey": {"type": "string", "minLength": 1, "description": format!("`{}` filled from the payload: {}", version.key.source, crate::model::KEY_RULE)},
            "traceparent": {"type": ["string", "null"], "pattern": "^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"},
            "payload": Value::Object(payload_body(catalog, event, version)),
        }),
    );
    Value::Object(schema)
}

fn object_schema(catalog: &Catalog, fields: &[Field]) -> Map<String, Value> {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for field in fields {
        properties.insert(
            field.name.clone(),
            Value::Object(field_schema(catalog, field)),
        );
        if !field.optional {
            required.push(Value::String(field.name.clone()));
        }
    }
    let mut schema = Map::new();
    schema.insert("type".into(), "object".into());
    schema.insert("properties".into(), Value::Object(properties));
    schema.insert("required".into(), Value::Array(required));
    schema
}

fn field_schema(catalog: &Catalog, field: &Field) -> Map<String, Value> {
    let mut schema = type_schema(catalog, &field.ty, &field.constraints);
    if let Some(d) = &field.description {
        schema.insert("description".into(), d.clone().into());
    }
    if field.deprecated {
        schema.insert("deprecated".into(), true.into());
    }
    schema
}

/// The schema of a named type, as the generated type's `schemars::JsonSchema`.
pub fn named_schema(catalog: &Catalog, name: &str) -> Map<String, Value> {
    type_schema(
        catalog,
        &FieldType::Named(name.to_owned()),
        &Constraints::default(),
    )
}

fn type_schema(catalog: &Catalog, ty: &FieldType, c: &Constraints) -> Map<String, Value> {
    let mut s = Map::new();
    let string = |s: &mut Map<String, Value>, format: Option<&str>| {
        s.insert("type".into(), "string".into());
        if let Some(f) = format {
            s.insert("format".into(), f.into());
        }
        if let Some(n) = c.min_length {
            s.insert("minLength".into(), n.into());
        }
        if let Some(n) = c.max_length {
            s.insert("maxLength".into(), n.into());
        }
        if let Some(p) = &c.pattern {
            s.insert("pattern".into(), p.clone().into());
        }
    };
    let number = |s: &mut Map<String, Value>, kind: &str, floor: Option<Number>| {
        s.insert("type".into(), kind.into());
        let min = match (c.min, floor) {
            (Some(m), Some(f)) if m.as_f64() < f.as_f64() => Some(f),
            (Some(m), _) => Some(m),
            (None, f) => f,
        };
        if let Some(m) = min {
            s.insert("minimum".into(), number_value(m));
        }
        if let Some(m) = c.max {
            s.insert("maximum".into(), number_value(m));
        }
    };
    match ty {
        FieldType::String => string(&mut s, None),
        FieldType::Timestamp => string(&mut s, Some("date-time")),
        FieldType::Date => string(&mut s, Some("date")),
        FieldType::Uuid => string(&mut s, Some("uuid")),
        FieldType::Url => string(&mut s, Some("uri")),
        FieldType::Email => string(&mut s, Some("email")),
        FieldType::Int => number(&mut s, "integer", None),
        FieldType::UInt => number(&mut s, "integer", Some(Number::Int(0))),
        FieldType::Float => number(&mut s, "number", None),
        FieldType::Bool => {
            s.insert("type".into(), "boolean".into());
        }
        FieldType::List(inner) => {
            let item = Constraints {
                min_items: None,
                max_items: None,
                ..c.clone()
            };
            s.insert("type".into(), "array".into());
            s.insert(
                "items".into(),
                Value::Object(type_schema(catalog, inner, &item)),
            );
            if let Some(n) = c.min_items {
                s.insert("minItems".into(), n.into());
            }
            if let Some(n) = c.max_items {
                s.insert("maxItems".into(), n.into());
            }
        }
        FieldType::Map(inner) => {
            s.insert("type".into(), "object".into());
            s.insert(
                "additionalProperties".into(),
                Value::Object(type_schema(catalog, inner, c)),
            );
        }
        FieldType::Named(name) => {
            // Validation guarantees every named type exists.
            if let Some(named) = catalog.named(name) {
                match &named.kind {
                    NamedKind::Enum(values) => {
                        s.insert("type".into(), "string".into());
                        s.insert("enum".into(), values.clone().into());
                    }
                    NamedKind::Object(fields) => {
                        s = object_schema(catalog, fields);
                        s.insert("title".into(), named.name.clone().into());
                    }
                }
                if let Some(d) = &named.description {
                    s.insert("description".into(), d.clone().into());
                }
            }
        }
    }
    s
}

fn number_value(n: Number) -> Value {
    match n {
        Number::Int(i) => i.into(),
        Number::Float(x) => x.into(),
    }
}
