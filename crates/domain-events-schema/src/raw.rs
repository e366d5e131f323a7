//! The schema files as written: serde types over TOML, with the byte span of every name, type and
//! template kept for diagnostics. Nothing is checked here beyond TOML's own shape.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use toml::Spanned;

/// A whole category file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFile {
    /// `category = "image"`; missing is reported by validation.
    pub category: Option<Spanned<String>>,
    /// Category documentation.
    pub description: Option<Spanned<String>>,
    /// Default correlation field.
    pub correlation: Option<Spanned<String>>,
    /// Default version.
    pub version: Option<Spanned<i64>>,
    /// `[events.<name>]` tables, in file order.
    #[serde(default)]
    pub events: Option<Spanned<Ordered<RawEvent>>>,
    /// `[types.<Name>]` tables, in file order.
    #[serde(default)]
    pub types: Ordered<RawType>,
}

/// One `[events.<name>]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEvent {
    /// Documentation.
    pub description: Option<Spanned<String>>,
    /// Key template.
    pub idempotency_key: Option<Spanned<String>>,
    /// Correlation field override.
    pub correlation: Option<Spanned<String>>,
    /// Version override.
    pub version: Option<Spanned<i64>>,
    /// Whether the event is deprecated.
    #[serde(default)]
    pub deprecated: bool,
    /// Payload fields, in file order.
    pub fields: Option<Spanned<Ordered<Spanned<RawField>>>>,
    /// Older versions still declared, keyed by version number.
    #[serde(default)]
    pub versions: Ordered<RawVersion>,
}

/// One `[events.<name>.versions.<n>]` table: an older version still in use.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVersion {
    /// Documentation of this version.
    pub description: Option<Spanned<String>>,
    /// Key template, when it differed.
    pub idempotency_key: Option<Spanned<String>>,
    /// Correlation field, when it differed.
    pub correlation: Option<Spanned<String>>,
    /// The payload fields of this version.
    pub fields: Option<Spanned<Ordered<Spanned<RawField>>>>,
}

/// One `[types.<Name>]` table: a named object (with `fields`) or enum (with `values`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawType {
    /// Documentation.
    pub description: Option<Spanned<String>>,
    /// Fields of an object type.
    pub fields: Option<Spanned<Ordered<Spanned<RawField>>>>,
    /// Values of an enum type.
    pub values: Option<Spanned<Vec<Spanned<String>>>>,
}

/// A field: `name = "type"` or `name = { type = "...", ... }`.
#[derive(Debug)]
pub enum RawField {
    /// The shorthand: only a type expression.
    Short(String),
    /// The table form.
    Table(Box<RawFieldTable>),
}

/// The table form of a field.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFieldTable {
    /// Type expression.
    #[serde(rename = "type")]
    pub ty: Option<Spanned<String>>,
    /// Documentation.
    pub description: Option<Spanned<String>>,
    /// Deprecation flag.
    #[serde(default)]
    pub deprecated: bool,
    /// Redaction flag.
    #[serde(default)]
    pub sensitive: bool,
    /// Values of an inline enum.
    pub values: Option<Spanned<Vec<Spanned<String>>>>,
    /// Numeric lower bound.
    pub min: Option<Spanned<RawNumber>>,
    /// Numeric upper bound.
    pub max: Option<Spanned<RawNumber>>,
    /// Least string length.
    pub min_length: Option<Spanned<i64>>,
    /// Greatest string length.
    pub max_length: Option<Spanned<i64>>,
    /// Regular expression.
    pub pattern: Option<Spanned<String>>,
    /// Least number of list items.
    pub min_items: Option<Spanned<i64>>,
    /// Greatest number of list items.
    pub max_items: Option<Spanned<i64>>,
}

impl<'de> Deserialize<'de> for RawField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct FieldVisitor;
        impl<'de> Visitor<'de> for FieldVisitor {
            type Value = RawField;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a type string such as \"string\" or a table such as { type = \"string\" }",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawField, E> {
                Ok(RawField::Short(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawField, A::Error> {
                RawFieldTable::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|t| RawField::Table(Box::new(t)))
            }
        }
        d.deserialize_any(FieldVisitor)
    }
}

/// A number in a `min`/`max` constraint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RawNumber {
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
}

impl<'de> Deserialize<'de> for RawNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct NumberVisitor;
        impl Visitor<'_> for NumberVisitor {
            type Value = RawNumber;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawNumber, E> {
                Ok(RawNumber::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawNumber, E> {
                i64::try_from(v)
                    .map(RawNumber::Int)
                    .map_err(|_| E::custom("number out of range"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawNumber, E> {
                Ok(RawNumber::Float(v))
            }
        }
        d.deserialize_any(NumberVisitor)
    }
}

/// A TOML table read in file order, keys with their spans.
#[derive(Debug)]
pub struct Ordered<V>(pub Vec<(Spanned<String>, V)>);

impl<V> Default for Ordered<V> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Ordered<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct OrderedVisitor<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for OrderedVisitor<V> {
            type Value = Ordered<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered<V>, A::Error> {
                let mut entries = Vec::new();
                while let Some((k, v)) = map.next_entry::<Spanned<String>, V>()? {
                    entries.push((k, v));
                }
                Ok(Ordered(entries))
            }
        }
        d.deserialize_map(OrderedVisitor(PhantomData))
    }
}
