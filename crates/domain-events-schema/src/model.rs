//! The validated schema: what codegen and JSON Schema export read. Built only by
//! validation (`validate/`), so everything here already holds the rules of the schema language.

use crate::naming;
use std::path::PathBuf;

/// A whole schema folder.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalog {
    /// The categories, sorted by name.
    pub categories: Vec<Category>,
    /// Named object and enum types, and the enums declared inline on fields, sorted by Rust name.
    pub types: Vec<NamedType>,
    /// Every file read, for rebuild tracking.
    pub files: Vec<PathBuf>,
}

/// One schema file.
#[derive(Debug, Clone, PartialEq)]
pub struct Category {
    /// The category name (`image`).
    pub name: String,
    /// Documentation.
    pub description: Option<String>,
    /// The file it came from.
    pub file: PathBuf,
    /// Its events, in file order.
    pub events: Vec<Event>,
}

/// One event type with all its declared versions.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The category.
    pub category: String,
    /// The event name (`variation_completed`).
    pub name: String,
    /// `<category>:<name>`.
    pub type_string: String,
    /// UpperCamelCase name (`ImageVariationCompleted`).
    pub variant: String,
    /// Documentation.
    pub description: Option<String>,
    /// Whether the whole event is deprecated.
    pub deprecated: bool,
    /// Every declared version, oldest first; the last is the one emitters produce.
    pub versions: Vec<EventVersion>,
}

impl Event {
    /// The newest version: what emitters produce.
    pub fn latest(&self) -> &EventVersion {
        // `validate` never builds an event without versions.
        &self.versions[self.versions.len() - 1]
    }

    /// The Rust name of a version's payload struct.
    pub fn payload_name(&self, version: &EventVersion) -> String {
        naming::payload_struct(&self.version_prefix(version))
    }

    /// The Rust name of a version's envelope alias.
    pub fn envelope_name(&self, version: &EventVersion) -> String {
        naming::envelope_alias(&self.version_prefix(version))
    }

    /// `ImageVariationCompleted` for the latest version, `ImageVariationCompletedV1` for older ones.
    pub fn version_prefix(&self, version: &EventVersion) -> String {
        naming::version_prefix(&self.variant, version.version, version.latest)
    }

    /// The emitter method name (`emit_image_variation_completed`).
    pub fn emitter_method(&self) -> String {
        naming::emitter_method(&self.category, &self.name)
    }
}

/// One version of an event.
#[derive(Debug, Clone, PartialEq)]
pub struct EventVersion {
    /// The version number, from 1.
    pub version: u32,
    /// Whether this is the newest version.
    pub latest: bool,
    /// Documentation (the event's, unless the version has its own).
    pub description: Option<String>,
    /// The payload fields, in file order.
    pub fields: Vec<Field>,
    /// The idempotency-key template.
    pub key: KeyTemplate,
    /// The wire name of the correlation field.
    pub correlation: String,
}

impl EventVersion {
    /// The field with wire name `name`.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The correlation id of a payload given as JSON: the [`key_text`] of its correlation field.
    /// `None` when the field is missing or has no text form.
    pub fn correlation_id(&self, payload: &serde_json::Value) -> Option<String> {
        key_text(payload.get(&self.correlation)?)
    }
}

/// A parsed idempotency-key template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTemplate {
    /// The template as written (`image_complete:{variationId}`).
    pub source: String,
    /// Literal text and field references, in order.
    pub parts: Vec<KeyPart>,
}

/// How a key template's `{field}` is written, for the exported JSON Schema and documents: the
/// rule `domain_events::write_key_part` implements.
pub const KEY_RULE: &str = "each `{field}` is replaced by the field's canonical text (strings, \
    URLs, emails and enum values as given; integers in decimal; `true` or `false`; UUIDs \
    lower-case hyphenated; dates `YYYY-MM-DD`; timestamps RFC 3339 in UTC with exactly three \
    fractional digits and `Z`, e.g. `2026-11-26T16:00:00.000Z`) with `%` written as `%25` and \
    `:` as `%3A`; literal text is kept, and every two references are separated by literal text \
    containing `:`, so a key splits back into its values and two payloads share a key only when \
    those fields are equal";

impl KeyTemplate {
    /// The key of a payload given as JSON: literals as written, each `{field}` replaced by
    /// `value(name, json)`, which must return the field's text as a key holds it ([`KEY_RULE`]:
    /// canonical, then escaped). `None` when a referenced field is missing or `value` gives
    /// `None` (the payload does not match its schema).
    ///
    /// Generated code computes the same key from a typed payload; tools that hold JSON instead
    /// (the command-line `emit`) pass a `value` that reads the JSON into the runtime's types and
    /// writes it with `domain_events::write_key_part`, so both agree.
    ///
    /// ```
    /// use domain_events_schema::model::{KeyPart, KeyTemplate, key_text};
    ///
    /// let template = KeyTemplate {
    ///     source: "seo_done:{pageId}:{attempt}".into(),
    ///     parts: vec![
    ///         KeyPart::Literal("seo_done:".into()),
    ///         KeyPart::Field("pageId".into()),
    ///         KeyPart::Literal(":".into()),
    ///         KeyPart::Field("attempt".into()),
    ///     ],
    /// };
    /// // Strings, integers and booleans only; a real caller also writes timestamps and UUIDs
    /// // canonically.
    /// let value = |_: &str, json: &serde_json::Value| {
    ///     key_text(json).map(|text| text.replace('%', "%25").replace(':', "%3A"))
    /// };
    /// let payload = serde_json::json!({"pageId": "p:1", "attempt": 2});
    /// assert_eq!(template.render(&payload, value).as_deref(), Some("seo_done:p%3A1:2"));
    /// assert_eq!(template.render(&serde_json::json!({"pageId": "p-1"}), value), None);
    /// ```
    pub fn render(
        &self,
        payload: &serde_json::Value,
        mut value: impl FnMut(&str, &serde_json::Value) -> Option<String>,
    ) -> Option<String> {
        let mut key = String::new();
        for part in &self.parts {
            match part {
                KeyPart::Literal(text) => key.push_str(text),
                KeyPart::Field(name) => key.push_str(&value(name, payload.get(name)?)?),
            }
        }
        Some(key)
    }
}

/// The text of a payload value as the runtime writes a correlation id: a string as it is (a
/// timestamp as written), an integer or a boolean in its JSON form. `None` for every other value
/// (floats, `null`, arrays, objects), which the schema language never lets into a key or a
/// correlation id. A key holds a value's canonical text, escaped ([`KEY_RULE`]).
pub fn key_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(text) => Some(text.clone()),
        serde_json::Value::Bool(flag) => Some(flag.to_string()),
        serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

/// A piece of a key template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPart {
    /// Text copied as is.
    Literal(String),
    /// The value of a payload field (wire name).
    Field(String),
}

/// A payload or object field.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The wire name (`variationId`).
    pub name: String,
    /// The Rust name (`variation_id`), already escaped if it is a keyword.
    pub rust_name: String,
    /// The type.
    pub ty: FieldType,
    /// Whether the field may be absent.
    pub optional: bool,
    /// Documentation.
    pub description: Option<String>,
    /// Whether the field is deprecated.
    pub deprecated: bool,
    /// Whether the value must never be printed.
    pub sensitive: bool,
    /// Constraints on the value.
    pub constraints: Constraints,
}

/// A field's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldType {
    /// `string`.
    String,
    /// `int` (i64).
    Int,
    /// `uint` (u64).
    UInt,
    /// `float` (f64).
    Float,
    /// `bool`.
    Bool,
    /// `timestamp` (RFC 3339).
    Timestamp,
    /// `date` (YYYY-MM-DD).
    Date,
    /// `uuid`.
    Uuid,
    /// `url` (absolute URI).
    Url,
    /// `email`.
    Email,
    /// `list<T>`.
    List(Box<FieldType>),
    /// `map<T>` (string keys).
    Map(Box<FieldType>),
    /// A named type: an object or enum under `[types]`, or an inline enum (by its Rust name).
    Named(String),
}

/// The built-in scalar types by their schema-language names: the one spelling that parsing,
/// messages and the catalog page share.
pub(crate) static SCALAR_TYPES: [(&str, FieldType); 10] = [
    ("string", FieldType::String),
    ("int", FieldType::Int),
    ("uint", FieldType::UInt),
    ("float", FieldType::Float),
    ("bool", FieldType::Bool),
    ("timestamp", FieldType::Timestamp),
    ("date", FieldType::Date),
    ("uuid", FieldType::Uuid),
    ("url", FieldType::Url),
    ("email", FieldType::Email),
];

impl FieldType {
    /// The built-in scalar type named `name` in schema files (`"uint"` → [`FieldType::UInt`]).
    pub(crate) fn scalar(name: &str) -> Option<FieldType> {
        SCALAR_TYPES
            .iter()
            .find(|(scalar, _)| *scalar == name)
            .map(|(_, ty)| ty.clone())
    }

    /// The schema-language name of a built-in scalar type; `None` for lists, maps and named types.
    pub(crate) fn scalar_name(&self) -> Option<&'static str> {
        SCALAR_TYPES
            .iter()
            .find(|(_, ty)| ty == self)
            .map(|(name, _)| *name)
    }

    /// Whether values have one stable text form that can go into a key (strings, integers,
    /// booleans, formats and enums; not floats, lists, maps or objects).
    pub fn is_key_scalar(&self, catalog_types: &[NamedType]) -> bool {
        match self {
            FieldType::Float | FieldType::List(_) | FieldType::Map(_) => false,
            FieldType::Named(name) => catalog_types
                .iter()
                .any(|t| &t.name == name && matches!(t.kind, NamedKind::Enum(_))),
            _ => true,
        }
    }

    /// The schema-language spelling of the type: `string`, `list<uint>`, `map<Money>`, a named
    /// type by its name.
    pub fn label(&self) -> String {
        match self {
            FieldType::List(inner) => format!("list<{}>", inner.label()),
            FieldType::Map(inner) => format!("map<{}>", inner.label()),
            FieldType::Named(n) => n.clone(),
            scalar => scalar.scalar_name().unwrap_or_default().into(),
        }
    }

    /// The innermost element type (through lists and maps).
    pub fn element(&self) -> &FieldType {
        match self {
            FieldType::List(inner) | FieldType::Map(inner) => inner.element(),
            other => other,
        }
    }
}

/// Declared constraints.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Constraints {
    /// Inclusive lower bound.
    pub min: Option<Number>,
    /// Inclusive upper bound.
    pub max: Option<Number>,
    /// Least string length.
    pub min_length: Option<u64>,
    /// Greatest string length.
    pub max_length: Option<u64>,
    /// Regular expression.
    pub pattern: Option<String>,
    /// Least list length.
    pub min_items: Option<u64>,
    /// Greatest list length.
    pub max_items: Option<u64>,
}

impl Constraints {
    /// Whether no constraint is declared.
    pub fn is_empty(&self) -> bool {
        *self == Constraints::default()
    }
}

/// A numeric bound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
}

impl Number {
    /// The value as a float, for comparisons.
    pub fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(x) => x,
        }
    }
}

/// A named type.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedType {
    /// The Rust (and schema) name.
    pub name: String,
    /// The category whose file declares it.
    pub category: String,
    /// Documentation.
    pub description: Option<String>,
    /// Object or enum.
    pub kind: NamedKind,
}

/// What a named type is.
#[derive(Debug, Clone, PartialEq)]
pub enum NamedKind {
    /// An object with fields.
    Object(Vec<Field>),
    /// A string enum with its values, in file order.
    Enum(Vec<String>),
}

impl Catalog {
    /// Every event of every category.
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.categories.iter().flat_map(|c| c.events.iter())
    }

    /// The named type called `name`.
    pub fn named(&self, name: &str) -> Option<&NamedType> {
        self.types.iter().find(|t| t.name == name)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn template(parts: &[&str]) -> KeyTemplate {
        KeyTemplate {
            source: String::new(),
            parts: parts
                .iter()
                .map(
                    |part| match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                        Some(field) => KeyPart::Field(field.to_owned()),
                        None => KeyPart::Literal((*part).to_owned()),
                    },
                )
                .collect(),
        }
    }

    /// A stand-in for the runtime's value writer: names the field it was given.
    fn tagged(name: &str, json: &serde_json::Value) -> Option<String> {
        key_text(json).map(|text| format!("<{name}={text}>"))
    }

    #[test]
    fn keys_render_literals_and_the_given_values_in_order() {
        let t = template(&[
            "k:", "{id}", ":", "{n}", ":", "{neg}", ":", "{flag}", ":", "{kind}",
        ]);
        let payload = json!({"id": "a b:c", "n": 18446744073709551615u64, "neg": -3, "flag": true, "kind": "hero"});
        assert_eq!(
            t.render(&payload, tagged).as_deref(),
            Some("k:<id=a b:c>:<n=18446744073709551615>:<neg=-3>:<flag=true>:<kind=hero>")
        );
        assert_eq!(
            template(&["fixed"]).render(&json!({}), tagged).as_deref(),
            Some("fixed")
        );
    }

    #[test]
    fn values_without_a_text_form_render_no_key() {
        let t = template(&["k:", "{id}"]);
        for payload in [
            json!({}),
            json!({"id": null}),
            json!({"id": 1.5}),
            json!({"id": [1]}),
            json!({"id": {"a": 1}}),
            json!("not an object"),
        ] {
            assert_eq!(t.render(&payload, tagged), None, "{payload}");
        }
    }

    #[test]
    fn correlation_ids_come_from_the_correlation_field() {
        let version = EventVersion {
            version: 1,
            latest: true,
            description: None,
            fields: Vec::new(),
            key: template(&["k"]),
            correlation: "pageId".into(),
        };
        assert_eq!(
            version.correlation_id(&json!({"pageId": 42})).as_deref(),
            Some("42")
        );
        assert_eq!(version.correlation_id(&json!({"other": "x"})), None);
    }
}
