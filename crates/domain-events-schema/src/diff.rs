//! The compatibility check: what changed between two catalogs, per event, version and field, and
//! whether each change is safe for the consumers and events that exist while it rolls out.
//!
//! Every [`Change`] is judged in two directions, under the tolerant-reader rule of docs/contract.md
//! section 2 (readers ignore unknown fields; payloads are checked against their schema, constraints
//! included, when they are read):
//!
//! - **old readers** ([`Change::old_readers`]): consumers built from the old schemas reading events
//!   emitted under the new ones (producers deployed first);
//! - **new readers** ([`Change::new_readers`]): consumers built from the new schemas reading events
//!   emitted under the old ones (consumers deployed first, and every event still waiting in a
//!   stream, a retry or a dead-letter queue).
//!
//! A change that is breaking in either direction must come with a new version of the event: a
//! breaking change to a version that exists in both catalogs is a *violation*
//! ([`Change::violation`]), and so is removing the newest version of an event, or a whole event
//! that was not deprecated first. docs/compatibility.md has the table and the reasons.
//!
//! ```
//! use domain_events_schema::Catalog;
//! use domain_events_schema::diff::{ChangeKind, Compat, diff};
//!
//! let old = Catalog::from_sources(&[("image.toml", r#"
//!     category = "image"
//!     correlation = "variationId"
//!     [events.variation_started]
//!     idempotency_key = "image_started:{variationId}"
//!     fields = { variationId = "string" }
//! "#)]).unwrap();
//! let new = Catalog::from_sources(&[("image.toml", r#"
//!     category = "image"
//!     correlation = "variationId"
//!     [events.variation_started]
//!     idempotency_key = "image_started:{variationId}"
//!     fields = { variationId = "string", workerId = "string" }
//! "#)]).unwrap();
//! let result = diff(&old, &new);
//! let change = &result.changes[0];
//! assert_eq!(change.kind, ChangeKind::FieldAddedRequired);
//! assert_eq!(change.field.as_deref(), Some("workerId"));
//! assert_eq!((change.old_readers, change.new_readers), (Compat::Compatible, Compat::Breaking));
//! assert!(change.violation); // the event kept version 1
//! assert!(result.has_violations());
//! ```

use std::fmt;

use serde::Serialize;
use serde_json::{Value, json};

use crate::model::{
    Catalog, Constraints, Event, EventVersion, Field, FieldType, NamedKind, Number,
};

// Short names for the verdicts below.
use Compat::{Breaking as B, Compatible as C};

/// Whether readers on one side of a change can read events written on the other side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compat {
    /// Every event the writer side can produce is read correctly.
    Compatible,
    /// Some events the writer side can produce fail to read, or mean something else.
    Breaking,
}

impl Compat {
    /// `compatible` or `breaking`.
    pub fn as_str(self) -> &'static str {
        match self {
            Compat::Compatible => "compatible",
            Compat::Breaking => "breaking",
        }
    }
}

impl fmt::Display for Compat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What changed. Serialized in kebab-case (`field-added-required`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    /// A new event type.
    EventAdded,
    /// An event type is gone, with all its versions.
    EventRemoved,
    /// An event or a field became deprecated, or stopped being deprecated.
    DeprecationChanged,
    /// A version is declared that was not: a bumped `version`, or an older version declared again.
    VersionAdded,
    /// A version is no longer declared (retired).
    VersionRetired,
    /// A new optional field.
    FieldAddedOptional,
    /// A new required field.
    FieldAddedRequired,
    /// An optional field is gone.
    FieldRemovedOptional,
    /// A required field is gone.
    FieldRemovedRequired,
    /// A required field became optional.
    FieldMadeOptional,
    /// An optional field became required.
    FieldMadeRequired,
    /// A field's type changed (a widening or narrowing is told apart in the verdicts).
    TypeChanged,
    /// A constraint now accepts fewer values (added, or a bound moved inwards).
    ConstraintTightened,
    /// A constraint now accepts more values (removed, or a bound moved outwards).
    ConstraintLoosened,
    /// A pattern was replaced by another: neither set of values contains the other.
    ConstraintChanged,
    /// An enum accepts a new value.
    EnumValueAdded,
    /// An enum no longer accepts a value.
    EnumValueRemoved,
    /// The idempotency-key template changed.
    KeyTemplateChanged,
    /// The correlation field changed.
    CorrelationChanged,
}

impl ChangeKind {
    /// Every kind, in the order of docs/compatibility.md.
    pub const ALL: &'static [ChangeKind] = &[
        ChangeKind::EventAdded,
        ChangeKind::EventRemoved,
        ChangeKind::DeprecationChanged,
        ChangeKind::VersionAdded,
        ChangeKind::VersionRetired,
        ChangeKind::FieldAddedOptional,
        ChangeKind::FieldAddedRequired,
        ChangeKind::FieldRemovedOptional,
        ChangeKind::FieldRemovedRequired,
        ChangeKind::FieldMadeOptional,
        ChangeKind::FieldMadeRequired,
        ChangeKind::TypeChanged,
        ChangeKind::ConstraintTightened,
        ChangeKind::ConstraintLoosened,
        ChangeKind::ConstraintChanged,
        ChangeKind::EnumValueAdded,
        ChangeKind::EnumValueRemoved,
        ChangeKind::KeyTemplateChanged,
        ChangeKind::CorrelationChanged,
    ];

    /// The words used in the table (`field added (required)`).
    pub fn label(self) -> &'static str {
        match self {
            ChangeKind::EventAdded => "event added",
            ChangeKind::EventRemoved => "event removed",
            ChangeKind::DeprecationChanged => "deprecation changed",
            ChangeKind::VersionAdded => "version added",
            ChangeKind::VersionRetired => "version retired",
            ChangeKind::FieldAddedOptional => "field added (optional)",
            ChangeKind::FieldAddedRequired => "field added (required)",
            ChangeKind::FieldRemovedOptional => "field removed (optional)",
            ChangeKind::FieldRemovedRequired => "field removed (required)",
            ChangeKind::FieldMadeOptional => "field made optional",
            ChangeKind::FieldMadeRequired => "field made required",
            ChangeKind::TypeChanged => "type changed",
            ChangeKind::ConstraintTightened => "constraint tightened",
            ChangeKind::ConstraintLoosened => "constraint loosened",
            ChangeKind::ConstraintChanged => "constraint changed",
            ChangeKind::EnumValueAdded => "enum value added",
            ChangeKind::EnumValueRemoved => "enum value removed",
            ChangeKind::KeyTemplateChanged => "key template changed",
            ChangeKind::CorrelationChanged => "correlation changed",
        }
    }
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// One difference between the old and the new catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// The type string of the event (`image:variation_completed`).
    pub event: String,
    /// The version the change is about: the new catalog's, or the old one's for a removal.
    pub version: u32,
    /// When a bumped version is compared with the previous newest version: that older version.
    /// `None` when a version is compared with itself (an edit in place) or for event-level changes.
    pub from_version: Option<u32>,
    /// The field's path (`customer.email`, `lines[].quantity`), or `None` for the event or version.
    pub field: Option<String>,
    /// What changed.
    pub kind: ChangeKind,
    /// Whether consumers built from the old schemas read events emitted under the new ones.
    pub old_readers: Compat,
    /// Whether consumers built from the new schemas read events emitted under the old ones.
    pub new_readers: Compat,
    /// Whether the change breaks the rule "a breaking change is a new version": the change is
    /// breaking and made in place, or it removes an event's newest version or a non-deprecated
    /// event.
    pub violation: bool,
    /// The change in words (`min_length raised from 1 to 3`).
    pub detail: String,
}

impl Change {
    /// Whether the change is breaking in either direction.
    pub fn is_breaking(&self) -> bool {
        self.old_readers == Compat::Breaking || self.new_readers == Compat::Breaking
    }

    /// `2` for a change in place, `1->2` for a change between versions.
    pub fn version_label(&self) -> String {
        match self.from_version {
            Some(from) => format!("{from}->{}", self.version),
            None => self.version.to_string(),
        }
    }

    /// `VIOLATION`, or `ok` with the reason a breaking change is allowed.
    pub fn verdict(&self) -> &'static str {
        if self.violation {
            "VIOLATION"
        } else if !self.is_breaking() {
            "ok"
        } else {
            match self.kind {
                ChangeKind::VersionAdded => "ok: new version",
                ChangeKind::VersionRetired => "ok: older version retired",
                ChangeKind::EventRemoved => "ok: was deprecated",
                _ if self.from_version.is_some() => "ok: new version",
                _ => "ok",
            }
        }
    }
}

/// Every difference between two catalogs, in catalog order: events of the new catalog, then the
/// events that were removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Diff {
    /// The changes.
    pub changes: Vec<Change>,
}

impl Diff {
    /// The changes that are [violations](Change::violation).
    pub fn violations(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.violation)
    }

    /// Whether some change is a violation: the check fails.
    pub fn has_violations(&self) -> bool {
        self.changes.iter().any(|c| c.violation)
    }

    /// Whether nothing changed that the check looks at.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The machine-readable form: `{"ok", "violations", "breaking", "changes": [..]}`, each change
    /// with `event`, `version`, `fromVersion`, `field`, `kind`, `oldReaders`, `newReaders`,
    /// `violation` and `detail`.
    pub fn to_json(&self) -> Value {
        json!({
            "ok": !self.has_violations(),
            "violations": self.violations().count(),
            "breaking": self.changes.iter().filter(|c| c.is_breaking()).count(),
            "changes": self.changes,
        })
    }

    /// The table for people, one change a line, followed by a legend and a summary line that
    /// starts with `ok:` or `error:`.
    pub fn table(&self) -> String {
        let mut text = String::new();
        if self.changes.is_empty() {
            text.push_str("ok: no changes\n");
            return text;
        }
        let header = [
            "EVENT",
            "VERSION",
            "FIELD",
            "CHANGE",
            "OLD READERS",
            "NEW READERS",
            "VERDICT",
            "DETAIL",
        ];
        let rows: Vec<[String; 8]> = self
            .changes
            .iter()
            .map(|c| {
                [
                    c.event.clone(),
                    c.version_label(),
                    c.field.clone().unwrap_or_else(|| "-".into()),
                    c.kind.label().into(),
                    c.old_readers.as_str().into(),
                    c.new_readers.as_str().into(),
                    c.verdict().into(),
                    c.detail.clone(),
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut line = |cells: &[&str]| {
            let mut out = String::new();
            for (i, cell) in cells.iter().enumerate() {
                if i + 1 == cells.len() {
                    out.push_str(cell);
                } else {
                    out.push_str(cell);
                    let pad = widths[i] - cell.chars().count() + 2;
                    out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            text.push_str(out.trim_end());
            text.push('\n');
        };
        line(&header);
        for row in &rows {
            let cells: Vec<&str> = row.iter().map(String::as_str).collect();
            line(&cells);
        }
        text.push_str(
            "\nold readers: consumers built from the old schemas, reading events emitted under the new ones\n\
             new readers: consumers built from the new schemas, reading events emitted under the old ones\n",
        );
        let violations = self.violations().count();
        let breaking = self.changes.iter().filter(|c| c.is_breaking()).count();
        let changes = plural(self.changes.len(), "change", "changes");
        if violations == 0 {
            text.push_str(&format!(
                "ok: {changes}, {breaking} breaking, none without a new version\n"
            ));
        } else {
            text.push_str(&format!(
                "error: {changes}, {} of an event without a new version\n  \
                 help: bump the event's `version` and keep the old fields under \
                 `[events.<name>.versions.<old>]` until every consumer reads the new version \
                 (docs/compatibility.md)\n",
                plural(violations, "breaking change", "breaking changes"),
            ));
        }
        text
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Compares two catalogs: `old` (e.g. the schemas at the previous commit) and `new`.
pub fn diff(old: &Catalog, new: &Catalog) -> Diff {
    let mut changes = Vec::new();
    for event in new.events() {
        match old.events().find(|e| e.type_string == event.type_string) {
            Some(before) => compare_event(&mut changes, old, before, new, event),
            None => changes.push(Change {
                event: event.type_string.clone(),
                version: event.latest().version,
                from_version: None,
                field: None,
                kind: ChangeKind::EventAdded,
                old_readers: Compat::Compatible,
                new_readers: Compat::Compatible,
                violation: false,
                detail: "new event type; consumers that declare their event set dead-letter it \
                         until they are rebuilt with the new schemas"
                    .into(),
            }),
        }
    }
    for event in old.events() {
        if !new.events().any(|e| e.type_string == event.type_string) {
            let versions: Vec<String> = event
                .versions
                .iter()
                .map(|v| v.version.to_string())
                .collect();
            changes.push(Change {
                event: event.type_string.clone(),
                version: event.latest().version,
                from_version: None,
                field: None,
                kind: ChangeKind::EventRemoved,
                old_readers: Compat::Compatible,
                new_readers: Compat::Breaking,
                violation: !event.deprecated,
                detail: if event.deprecated {
                    format!(
                        "deprecated event removed (versions {}); its events left in streams are now unknown",
                        versions.join(", ")
                    )
                } else {
                    format!(
                        "event removed without being deprecated first (versions {}); \
                         its events left in streams are now unknown",
                        versions.join(", ")
                    )
                },
            });
        }
    }
    Diff { changes }
}

/// Where a comparison writes its changes, and about what.
struct Ctx<'a> {
    changes: &'a mut Vec<Change>,
    old: &'a Catalog,
    new: &'a Catalog,
    event: &'a str,
    version: u32,
    from_version: Option<u32>,
}

impl Ctx<'_> {
    fn push(
        &mut self,
        field: Option<&str>,
        kind: ChangeKind,
        (old_readers, new_readers): (Compat, Compat),
        detail: String,
    ) {
        let breaking = old_readers == Compat::Breaking || new_readers == Compat::Breaking;
        self.changes.push(Change {
            event: self.event.to_owned(),
            version: self.version,
            from_version: self.from_version,
            field: field.map(str::to_owned),
            kind,
            old_readers,
            new_readers,
            // A breaking edit of a version that exists on both sides.
            violation: breaking && self.from_version.is_none(),
            detail,
        });
    }
}

fn compare_event(
    changes: &mut Vec<Change>,
    old: &Catalog,
    before: &Event,
    new: &Catalog,
    after: &Event,
) {
    let event = after.type_string.as_str();
    let push = |changes: &mut Vec<Change>,
                version: u32,
                kind,
                compat: (Compat, Compat),
                violation,
                detail: String| {
        changes.push(Change {
            event: event.to_owned(),
            version,
            from_version: None,
            field: None,
            kind,
            old_readers: compat.0,
            new_readers: compat.1,
            violation,
            detail,
        });
    };
    let (old_latest, new_latest) = (before.latest().version, after.latest().version);
    if before.deprecated != after.deprecated {
        let detail = if after.deprecated {
            "event deprecated"
        } else {
            "event no longer deprecated"
        };
        push(
            changes,
            new_latest,
            ChangeKind::DeprecationChanged,
            (C, C),
            false,
            detail.into(),
        );
    }

    // Versions declared on both sides must not change in a breaking way.
    for version in &after.versions {
        let Some(previous) = before
            .versions
            .iter()
            .find(|v| v.version == version.version)
        else {
            continue;
        };
        let mut ctx = Ctx {
            changes: &mut *changes,
            old,
            new,
            event,
            version: version.version,
            from_version: None,
        };
        compare_version(&mut ctx, previous, version);
    }

    // Versions that appeared.
    for version in &after.versions {
        if before.versions.iter().any(|v| v.version == version.version) {
            continue;
        }
        if version.version > old_latest {
            push(
                changes,
                version.version,
                ChangeKind::VersionAdded,
                (B, C),
                false,
                format!(
                    "emitters now produce version {}; consumers built from the old schemas dead-letter it, \
                     so deploy consumers that handle (or upcast to) it first",
                    version.version
                ),
            );
            // What the new version changes with respect to the previous newest one.
            if version.latest {
                let mut ctx = Ctx {
                    changes: &mut *changes,
                    old,
                    new,
                    event,
                    version: version.version,
                    from_version: Some(old_latest),
                };
                compare_version(&mut ctx, before.latest(), version);
            }
        } else {
            push(
                changes,
                version.version,
                ChangeKind::VersionAdded,
                (C, C),
                false,
                format!("older version {} is declared (again)", version.version),
            );
        }
    }

    // Versions that were retired.
    for version in &before.versions {
        if after.versions.iter().any(|v| v.version == version.version) {
            continue;
        }
        let newest_gone = version.version == old_latest && new_latest < old_latest;
        let detail = if newest_gone {
            format!(
                "version {} was the newest and no newer version replaces it (now {new_latest})",
                version.version
            )
        } else {
            format!(
                "version {} is no longer declared: its events still in streams, retries or dead letters \
                 become poison for consumers built from the new schemas",
                version.version
            )
        };
        push(
            changes,
            version.version,
            ChangeKind::VersionRetired,
            (C, B),
            newest_gone,
            detail,
        );
    }
}

fn compare_version(ctx: &mut Ctx<'_>, old: &EventVersion, new: &EventVersion) {
    if old.key.parts != new.key.parts {
        ctx.push(
            None,
            ChangeKind::KeyTemplateChanged,
            (B, B),
            format!(
                "`{}` -> `{}`: the same emission gets another idempotency key, so deduplication across \
                 the change (producer claims, consumer done records, BullMQ job ids) no longer matches",
                old.key.source, new.key.source
            ),
        );
    }
    if old.correlation != new.correlation {
        ctx.push(
            None,
            ChangeKind::CorrelationChanged,
            (B, B),
            format!(
                "`{}` -> `{}`: correlationId carries another value, so events no longer group with \
                 the ones emitted before",
                old.correlation, new.correlation
            ),
        );
    }
    compare_fields(ctx, "", &old.fields, &new.fields);
}

fn compare_fields(ctx: &mut Ctx<'_>, prefix: &str, old: &[Field], new: &[Field]) {
    for before in old {
        let path = format!("{prefix}{}", before.name);
        match new.iter().find(|f| f.name == before.name) {
            Some(after) => compare_field(ctx, &path, before, after),
            None if before.optional => ctx.push(
                Some(&path),
                ChangeKind::FieldRemovedOptional,
                (C, C),
                format!("optional {} removed", describe(ctx.old, &before.ty)),
            ),
            None => ctx.push(
                Some(&path),
                ChangeKind::FieldRemovedRequired,
                (B, C),
                format!(
                    "required {} removed: old readers reject new events without it",
                    describe(ctx.old, &before.ty)
                ),
            ),
        }
    }
    for after in new {
        if old.iter().any(|f| f.name == after.name) {
            continue;
        }
        let path = format!("{prefix}{}", after.name);
        if after.optional {
            ctx.push(
                Some(&path),
                ChangeKind::FieldAddedOptional,
                (C, C),
                format!("optional {} added", describe(ctx.new, &after.ty)),
            );
        } else {
            ctx.push(
                Some(&path),
                ChangeKind::FieldAddedRequired,
                (C, B),
                format!(
                    "required {} added: new readers reject old events without it",
                    describe(ctx.new, &after.ty)
                ),
            );
        }
    }
}

fn compare_field(ctx: &mut Ctx<'_>, path: &str, old: &Field, new: &Field) {
    match (old.optional, new.optional) {
        (false, true) => ctx.push(
            Some(path),
            ChangeKind::FieldMadeOptional,
            (B, C),
            "required -> optional: old readers reject new events that omit it".into(),
        ),
        (true, false) => ctx.push(
            Some(path),
            ChangeKind::FieldMadeRequired,
            (C, B),
            "optional -> required: new readers reject old events that omit it".into(),
        ),
        _ => {}
    }
    if old.deprecated != new.deprecated {
        let detail = if new.deprecated {
            "field deprecated"
        } else {
            "field no longer deprecated"
        };
        ctx.push(
            Some(path),
            ChangeKind::DeprecationChanged,
            (C, C),
            detail.into(),
        );
    }
    if compare_type(ctx, path, &old.ty, &new.ty) {
        compare_constraints(ctx, path, &old.constraints, &new.constraints);
    }
}

/// A type with named types looked up.
enum Shape<'a> {
    Scalar(&'a FieldType),
    List(&'a FieldType),
    Map(&'a FieldType),
    Enum(&'a [String]),
    Object(&'a [Field]),
}

fn shape<'a>(catalog: &'a Catalog, ty: &'a FieldType) -> Shape<'a> {
    match ty {
        FieldType::List(inner) => Shape::List(inner),
        FieldType::Map(inner) => Shape::Map(inner),
        FieldType::Named(name) => match catalog.named(name).map(|t| &t.kind) {
            Some(NamedKind::Enum(values)) => Shape::Enum(values),
            Some(NamedKind::Object(fields)) => Shape::Object(fields),
            // A validated catalog declares every name it uses.
            None => Shape::Scalar(ty),
        },
        other => Shape::Scalar(other),
    }
}

/// `uint`, `list<string>`, `enum (web, mobile-app)`, `object Customer`.
fn describe(catalog: &Catalog, ty: &FieldType) -> String {
    match shape(catalog, ty) {
        Shape::Scalar(FieldType::Named(name)) => name.clone(),
        Shape::Scalar(other) => crate::validate::type_label(other),
        Shape::List(inner) => format!("list<{}>", describe(catalog, inner)),
        Shape::Map(inner) => format!("map<{}>", describe(catalog, inner)),
        Shape::Enum(values) => format!("enum ({})", values.join(", ")),
        Shape::Object(_) => format!("object {}", crate::validate::type_label(ty)),
    }
}

/// Whether every value of `narrow` is a value of `wide` (and reads as one).
fn widens(narrow: &Shape<'_>, wide: &Shape<'_>) -> bool {
    use FieldType as T;
    let string_like = |s: &Shape<'_>| {
        matches!(
            s,
            Shape::Enum(_) | Shape::Scalar(T::Timestamp | T::Date | T::Uuid | T::Url | T::Email)
        )
    };
    let integer = |s: &Shape<'_>| matches!(s, Shape::Scalar(T::Int | T::UInt));
    match wide {
        Shape::Scalar(T::String) => string_like(narrow),
        Shape::Scalar(T::Float) => integer(narrow),
        _ => false,
    }
}

/// Compares two types at `path`, reporting type and enum changes and the changes inside object
/// types. Returns whether the values are of the same kind, so constraints can be compared.
fn compare_type(ctx: &mut Ctx<'_>, path: &str, old: &FieldType, new: &FieldType) -> bool {
    let (old_catalog, new_catalog) = (ctx.old, ctx.new);
    let (before, after) = (shape(old_catalog, old), shape(new_catalog, new));
    match (&before, &after) {
        (Shape::List(a), Shape::List(b)) => return compare_type(ctx, &format!("{path}[]"), a, b),
        (Shape::Map(a), Shape::Map(b)) => return compare_type(ctx, &format!("{path}{{}}"), a, b),
        (Shape::Object(a), Shape::Object(b)) => {
            compare_fields(ctx, &format!("{path}."), a, b);
            return true;
        }
        (Shape::Enum(a), Shape::Enum(b)) => {
            for value in b.iter().filter(|v| !a.contains(v)) {
                ctx.push(
                    Some(path),
                    ChangeKind::EnumValueAdded,
                    (B, C),
                    format!("value `{value}` added: old readers reject new events that carry it"),
                );
            }
            for value in a.iter().filter(|v| !b.contains(v)) {
                ctx.push(
                    Some(path),
                    ChangeKind::EnumValueRemoved,
                    (C, B),
                    format!("value `{value}` removed: new readers reject old events that carry it"),
                );
            }
            return true;
        }
        (Shape::Scalar(a), Shape::Scalar(b)) if a == b => return true,
        _ => {}
    }
    let compat = if widens(&before, &after) {
        (B, C)
    } else if widens(&after, &before) {
        (C, B)
    } else {
        (B, B)
    };
    let how = match compat {
        (B, C) => " (widened: old readers reject the new values)",
        (C, B) => " (narrowed: new readers reject the old values)",
        _ => "",
    };
    ctx.push(
        Some(path),
        ChangeKind::TypeChanged,
        compat,
        format!(
            "{} -> {}{how}",
            describe(old_catalog, old),
            describe(new_catalog, new)
        ),
    );
    false
}

fn number(n: Number) -> String {
    match n {
        Number::Int(i) => i.to_string(),
        Number::Float(x) => x.to_string(),
    }
}

/// A bound's change: `lower` bounds tighten when they rise, upper ones when they fall.
fn bound(
    ctx: &mut Ctx<'_>,
    path: &str,
    name: &str,
    lower: bool,
    old: Option<(f64, String)>,
    new: Option<(f64, String)>,
) {
    let (kind, detail) = match (old, new) {
        (None, Some((_, b))) => (ChangeKind::ConstraintTightened, format!("{name} {b} added")),
        (Some((_, a)), None) => (
            ChangeKind::ConstraintLoosened,
            format!("{name} {a} removed"),
        ),
        (Some((a, at)), Some((b, bt))) if a != b => {
            let tighter = if lower { b > a } else { b < a };
            let verb = if b > a { "raised" } else { "lowered" };
            let kind = if tighter {
                ChangeKind::ConstraintTightened
            } else {
                ChangeKind::ConstraintLoosened
            };
            (kind, format!("{name} {verb} from {at} to {bt}"))
        }
        _ => return,
    };
    let (compat, why) = match kind {
        ChangeKind::ConstraintTightened => ((C, B), "new readers reject old events outside it"),
        _ => (
            (B, C),
            "old readers reject new events outside the old bound",
        ),
    };
    ctx.push(Some(path), kind, compat, format!("{detail}: {why}"));
}

fn compare_constraints(ctx: &mut Ctx<'_>, path: &str, old: &Constraints, new: &Constraints) {
    let num = |n: Option<Number>| n.map(|n| (n.as_f64(), number(n)));
    let count = |n: Option<u64>| n.map(|n| (n as f64, n.to_string()));
    bound(ctx, path, "min", true, num(old.min), num(new.min));
    bound(ctx, path, "max", false, num(old.max), num(new.max));
    bound(
        ctx,
        path,
        "min_length",
        true,
        count(old.min_length),
        count(new.min_length),
    );
    bound(
        ctx,
        path,
        "max_length",
        false,
        count(old.max_length),
        count(new.max_length),
    );
    bound(
        ctx,
        path,
        "min_items",
        true,
        count(old.min_items),
        count(new.min_items),
    );
    bound(
        ctx,
        path,
        "max_items",
        false,
        count(old.max_items),
        count(new.max_items),
    );
    match (&old.pattern, &new.pattern) {
        (None, Some(p)) => ctx.push(
            Some(path),
            ChangeKind::ConstraintTightened,
            (C, B),
            format!("pattern `{p}` added: new readers reject old events that do not match"),
        ),
        (Some(p), None) => ctx.push(
            Some(path),
            ChangeKind::ConstraintLoosened,
            (B, C),
            format!("pattern `{p}` removed: old readers reject new events that do not match it"),
        ),
        (Some(a), Some(b)) if a != b => ctx.push(
            Some(path),
            ChangeKind::ConstraintChanged,
            (B, B),
            format!("pattern `{a}` -> `{b}`: each side may reject the other's values"),
        ),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An `image.toml` with one event `thing` whose fields are `fields` (TOML inline-table body)
    /// and whose extra event keys are `extra`.
    fn catalog(extra: &str, fields: &str) -> Catalog {
        let key = if extra.contains("idempotency_key") {
            ""
        } else {
            "idempotency_key = \"thing:{id}\""
        };
        let text = format!(
            r#"
            category = "image"
            correlation = "id"
            [types.Size]
            values = ["s", "m"]
            [types.Dims]
            fields = {{ width = "uint", height = {{ type = "uint", max = 100 }} }}
            [events.thing]
            {key}
            {extra}
            fields = {{ id = "string", {fields} }}
            "#
        );
        match Catalog::from_sources(&[("image.toml", &text)]) {
            Ok(c) => c,
            Err(e) => panic!("bad test schema:\n{e}\n{text}"),
        }
    }

    fn changes(
        old: &Catalog,
        new: &Catalog,
    ) -> Vec<(Option<String>, ChangeKind, Compat, Compat, bool)> {
        diff(old, new)
            .changes
            .into_iter()
            .map(|c| (c.field, c.kind, c.old_readers, c.new_readers, c.violation))
            .collect()
    }

    /// The one change between two field lists of the same event version.
    fn one(old_fields: &str, new_fields: &str) -> Change {
        let d = diff(&catalog("", old_fields), &catalog("", new_fields));
        assert_eq!(d.changes.len(), 1, "{:#?}", d.changes);
        d.changes.into_iter().next().unwrap()
    }

    fn field(s: &str) -> Option<String> {
        Some(s.to_owned())
    }

    #[test]
    fn identical_catalogs_have_no_changes() {
        let c = catalog("", r#"a = "uint", b = "Size?""#);
        let d = diff(&c, &c);
        assert!(d.is_empty() && !d.has_violations());
        assert_eq!(d.table(), "ok: no changes\n");
        // Descriptions and sensitivity are not on the wire.
        let described = catalog(
            "description = \"x\"",
            r#"a = { type = "uint", sensitive = true, description = "y" }, b = "Size?""#,
        );
        assert!(diff(&c, &described).is_empty());
    }

    #[test]
    fn adding_an_optional_field_is_safe_both_ways() {
        let c = one(r#"a = "uint""#, r#"a = "uint", b = "string?""#);
        assert_eq!(
            (c.kind, c.old_readers, c.new_readers, c.violation),
            (ChangeKind::FieldAddedOptional, C, C, false)
        );
        assert_eq!(c.field.as_deref(), Some("b"));
        assert_eq!(
            (c.event.as_str(), c.version, c.from_version),
            ("image:thing", 1, None)
        );
    }

    #[test]
    fn adding_a_required_field_breaks_new_readers() {
        let c = one(r#"a = "uint""#, r#"a = "uint", b = "string""#);
        assert_eq!(
            (c.kind, c.old_readers, c.new_readers, c.violation),
            (ChangeKind::FieldAddedRequired, C, B, true)
        );
    }

    #[test]
    fn removing_fields() {
        let c = one(r#"a = "uint", b = "string?""#, r#"a = "uint""#);
        assert_eq!(
            (c.kind, c.old_readers, c.new_readers, c.violation),
            (ChangeKind::FieldRemovedOptional, C, C, false)
        );
        let c = one(r#"a = "uint", b = "string""#, r#"a = "uint""#);
        assert_eq!(
            (c.kind, c.old_readers, c.new_readers, c.violation),
            (ChangeKind::FieldRemovedRequired, B, C, true)
        );
    }

    #[test]
    fn optionality_changes() {
        let c = one(r#"a = "uint""#, r#"a = "uint?""#);
        assert_eq!(
            (c.kind, c.old_readers, c.new_readers, c.violation),
            (ChangeKind::FieldMadeOptional, B, C, true)
        );
        let c = one(r#"a = "uint?""#, r#"a = "uint""#);
        assert_eq!(
            (c.kind, c.old_readers, c.new_readers, c.violation),
            (ChangeKind::FieldMadeRequired, C, B, true)
        );
    }

    #[test]
    fn type_changes_widen_narrow_or_break() {
        let c = one(r#"a = "uint""#, r#"a = "string""#);
        assert_eq!(
            (c.kind, c.old_readers, c.new_readers, c.violation),
            (ChangeKind::TypeChanged, B, B, true)
        );
        assert_eq!(c.detail, "uint -> string");
        // A format to plain string, an enum to string, an integer to float: widening.
        for (from, to) in [
            ("timestamp", "string"),
            ("Size", "string"),
            ("int", "float"),
            ("list<uuid>", "list<string>"),
        ] {
            let c = one(&format!("a = \"{from}\""), &format!("a = \"{to}\""));
            assert_eq!(
                (c.kind, c.old_readers, c.new_readers),
                (ChangeKind::TypeChanged, B, C),
                "{from} -> {to}"
            );
            let c = one(&format!("a = \"{to}\""), &format!("a = \"{from}\""));
            assert_eq!(
                (c.kind, c.old_readers, c.new_readers),
                (ChangeKind::TypeChanged, C, B),
                "{to} -> {from}"
            );
            assert!(c.violation);
        }
        let c = one(r#"a = "list<uint>""#, r#"a = "list<bool>""#);
        assert_eq!(
            (c.field.as_deref(), c.kind),
            (Some("a[]"), ChangeKind::TypeChanged)
        );
        let c = one(r#"a = "map<uint>""#, r#"a = "list<uint>""#);
        assert_eq!(
            (c.field.as_deref(), c.old_readers, c.new_readers),
            (Some("a"), B, B)
        );
        // The same type under another spelling is no change.
        assert!(
            diff(
                &catalog("", r#"a = "list<Size>""#),
                &catalog("", r#"a = { type = "list<Size>" }"#)
            )
            .is_empty()
        );
    }

    #[test]
    fn constraints_tighten_and_loosen() {
        let cases = [
            (
                r#"a = { type = "uint", min = 1 }"#,
                r#"a = { type = "uint", min = 2 }"#,
                ChangeKind::ConstraintTightened,
                "min raised from 1 to 2",
            ),
            (
                r#"a = { type = "uint", min = 2 }"#,
                r#"a = { type = "uint", min = 1 }"#,
                ChangeKind::ConstraintLoosened,
                "min lowered from 2 to 1",
            ),
            (
                r#"a = { type = "uint", max = 9 }"#,
                r#"a = { type = "uint", max = 5 }"#,
                ChangeKind::ConstraintTightened,
                "max lowered from 9 to 5",
            ),
            (
                r#"a = "string""#,
                r#"a = { type = "string", max_length = 5 }"#,
                ChangeKind::ConstraintTightened,
                "max_length 5 added",
            ),
            (
                r#"a = { type = "string", min_length = 1 }"#,
                r#"a = "string""#,
                ChangeKind::ConstraintLoosened,
                "min_length 1 removed",
            ),
            (
                r#"a = { type = "list<string>", max_items = 3 }"#,
                r#"a = { type = "list<string>", max_items = 4 }"#,
                ChangeKind::ConstraintLoosened,
                "max_items raised from 3 to 4",
            ),
            (
                r#"a = { type = "list<string>?", min_items = 1 }"#,
                r#"a = { type = "list<string>?", min_items = 2 }"#,
                ChangeKind::ConstraintTightened,
                "min_items raised from 1 to 2",
            ),
            (
                r#"a = { type = "float", max = 1.0 }"#,
                r#"a = { type = "float", max = 1.5 }"#,
                ChangeKind::ConstraintLoosened,
                "max raised from 1 to 1.5",
            ),
            (
                r#"a = "string""#,
                r#"a = { type = "string", pattern = "^x" }"#,
                ChangeKind::ConstraintTightened,
                "pattern `^x` added",
            ),
            (
                r#"a = { type = "string", pattern = "^x" }"#,
                r#"a = "string""#,
                ChangeKind::ConstraintLoosened,
                "pattern `^x` removed",
            ),
            (
                r#"a = { type = "string", pattern = "^x" }"#,
                r#"a = { type = "string", pattern = "^y" }"#,
                ChangeKind::ConstraintChanged,
                "pattern `^x` -> `^y`",
            ),
        ];
        for (old, new, kind, detail) in cases {
            let c = one(old, new);
            assert_eq!(c.kind, kind, "{old} -> {new}");
            assert!(
                c.detail.starts_with(detail),
                "{} does not start with {detail}",
                c.detail
            );
            let expected = match kind {
                ChangeKind::ConstraintTightened => (C, B),
                ChangeKind::ConstraintLoosened => (B, C),
                _ => (B, B),
            };
            assert_eq!((c.old_readers, c.new_readers), expected, "{old} -> {new}");
            assert!(c.violation);
        }
        // Constraints of a field whose type changed are not compared.
        assert_eq!(
            one(
                r#"a = { type = "string", min_length = 1 }"#,
                r#"a = { type = "uint", min = 1 }"#
            )
            .kind,
            ChangeKind::TypeChanged
        );
    }

    #[test]
    fn enum_values_added_break_old_readers_and_removed_break_new_readers() {
        let old = catalog("", r#"a = { type = "enum", values = ["x", "y"] }"#);
        let new = catalog("", r#"a = { type = "enum", values = ["x", "z"] }"#);
        assert_eq!(
            changes(&old, &new),
            [
                (field("a"), ChangeKind::EnumValueAdded, B, C, true),
                (field("a"), ChangeKind::EnumValueRemoved, C, B, true),
            ]
        );
        // Named enums are compared by value, wherever they are used.
        let old =
            Catalog::from_sources(&[("image.toml", &SIZE_USER.replace("VALUES", r#""s", "m""#))])
                .unwrap();
        let new = Catalog::from_sources(&[(
            "image.toml",
            &SIZE_USER.replace("VALUES", r#""s", "m", "l""#),
        )])
        .unwrap();
        let d = diff(&old, &new);
        let got: Vec<_> = d
            .changes
            .iter()
            .map(|c| (c.event.as_str(), c.field.as_deref(), c.kind))
            .collect();
        assert_eq!(
            got,
            [
                ("image:one", Some("size"), ChangeKind::EnumValueAdded),
                ("image:two", Some("sizes[]"), ChangeKind::EnumValueAdded),
            ]
        );
    }

    const SIZE_USER: &str = r#"
        category = "image"
        correlation = "id"
        [types.Size]
        values = [VALUES]
        [events.one]
        idempotency_key = "one:{id}"
        fields = { id = "string", size = "Size" }
        [events.two]
        idempotency_key = "two:{id}"
        fields = { id = "string", sizes = "list<Size>" }
    "#;

    #[test]
    fn nested_object_fields_are_compared_by_path() {
        let old = catalog("", r#"dims = "Dims", all = "list<Dims>?""#);
        let new_text = r#"
            category = "image"
            correlation = "id"
            [types.Size]
            values = ["s", "m"]
            [types.Dims]
            fields = { width = "uint", height = { type = "uint", max = 50 }, depth = "uint" }
            [events.thing]
            idempotency_key = "thing:{id}"
            fields = { id = "string", dims = "Dims", all = "list<Dims>?" }
        "#;
        let new = Catalog::from_sources(&[("image.toml", new_text)]).unwrap();
        assert_eq!(
            changes(&old, &new),
            [
                (
                    field("dims.height"),
                    ChangeKind::ConstraintTightened,
                    C,
                    B,
                    true
                ),
                (
                    field("dims.depth"),
                    ChangeKind::FieldAddedRequired,
                    C,
                    B,
                    true
                ),
                (
                    field("all[].height"),
                    ChangeKind::ConstraintTightened,
                    C,
                    B,
                    true
                ),
                (
                    field("all[].depth"),
                    ChangeKind::FieldAddedRequired,
                    C,
                    B,
                    true
                ),
            ]
        );
    }

    #[test]
    fn key_template_and_correlation_changes_break_both_ways() {
        let old = catalog("", r#"a = "uint""#);
        let new = catalog(
            "idempotency_key = \"thing:{id}:{a}\"\ncorrelation = \"a\"",
            r#"a = "uint""#,
        );
        assert_eq!(
            changes(&old, &new),
            [
                (None, ChangeKind::KeyTemplateChanged, B, B, true),
                (None, ChangeKind::CorrelationChanged, B, B, true),
            ]
        );
        let d = diff(&old, &new);
        assert!(
            d.changes[0]
                .detail
                .contains("`thing:{id}` -> `thing:{id}:{a}`"),
            "{}",
            d.changes[0].detail
        );
    }

    #[test]
    fn deprecation_is_reported_and_compatible() {
        let old = catalog("", r#"a = "uint""#);
        let new = catalog(
            "deprecated = true",
            r#"a = { type = "uint", deprecated = true }"#,
        );
        assert_eq!(
            changes(&old, &new),
            [
                (None, ChangeKind::DeprecationChanged, C, C, false),
                (field("a"), ChangeKind::DeprecationChanged, C, C, false),
            ]
        );
    }

    const TWO_EVENTS: &str = r#"
        category = "image"
        correlation = "id"
        [events.kept]
        idempotency_key = "kept:{id}"
        fields = { id = "string" }
        [events.gone]
        DEPRECATED
        idempotency_key = "gone:{id}"
        fields = { id = "string" }
    "#;

    #[test]
    fn adding_and_removing_events() {
        let one_event = catalog("", r#"a = "uint""#);
        let both = Catalog::from_sources(&[
            (
                "image.toml",
                r#"
                category = "image"
                correlation = "id"
                [types.Size]
                values = ["s", "m"]
                [types.Dims]
                fields = { width = "uint", height = { type = "uint", max = 100 } }
                [events.thing]
                idempotency_key = "thing:{id}"
                fields = { id = "string", a = "uint" }
            "#,
            ),
            (
                "funnel.toml",
                r#"
                category = "funnel"
                [events.signup]
                correlation = "userId"
                idempotency_key = "signup:{userId}"
                fields = { userId = "string" }
            "#,
            ),
        ])
        .unwrap();
        let d = diff(&one_event, &both);
        assert_eq!(d.changes.len(), 1);
        let c = &d.changes[0];
        assert_eq!(
            (
                c.event.as_str(),
                c.kind,
                c.old_readers,
                c.new_readers,
                c.violation
            ),
            ("funnel:signup", ChangeKind::EventAdded, C, C, false)
        );

        let d = diff(&both, &one_event);
        let c = &d.changes[0];
        assert_eq!(
            (
                c.event.as_str(),
                c.kind,
                c.old_readers,
                c.new_readers,
                c.violation
            ),
            ("funnel:signup", ChangeKind::EventRemoved, C, B, true)
        );

        // Removing an event that was deprecated first is reported, and allowed.
        let deprecated = Catalog::from_sources(&[(
            "image.toml",
            &TWO_EVENTS.replace("DEPRECATED", "deprecated = true"),
        )])
        .unwrap();
        let kept_only = Catalog::from_sources(&[(
            "image.toml",
            TWO_EVENTS.split("[events.gone]").next().unwrap(),
        )])
        .unwrap();
        let d = diff(&deprecated, &kept_only);
        assert_eq!(d.changes.len(), 1);
        assert!(!d.changes[0].violation && d.changes[0].is_breaking());
        assert_eq!(d.changes[0].verdict(), "ok: was deprecated");
    }

    /// `image:thing` at version `latest`, with older versions `older` (TOML tables).
    fn versioned(latest: u32, fields: &str, older: &str) -> Catalog {
        let text = format!(
            r#"
            category = "image"
            correlation = "id"
            [events.thing]
            version = {latest}
            idempotency_key = "thing:{{id}}"
            fields = {{ {fields} }}
            {older}
            "#
        );
        match Catalog::from_sources(&[("image.toml", &text)]) {
            Ok(c) => c,
            Err(e) => panic!("bad test schema:\n{e}\n{text}"),
        }
    }

    const V1: &str = r#"id = "string", a = "uint""#;
    const V1_KEPT: &str = "[events.thing.versions.1]\nfields = { id = \"string\", a = \"uint\" }";

    #[test]
    fn a_breaking_change_with_a_new_version_is_no_violation() {
        let old = versioned(1, V1, "");
        let new = versioned(2, r#"id = "string", a = "string", b = "uint""#, V1_KEPT);
        let d = diff(&old, &new);
        let got: Vec<_> = d
            .changes
            .iter()
            .map(|c| (c.version_label(), c.field.clone(), c.kind, c.violation))
            .collect();
        assert_eq!(
            got,
            [
                ("2".to_owned(), None, ChangeKind::VersionAdded, false),
                (
                    "1->2".to_owned(),
                    field("a"),
                    ChangeKind::TypeChanged,
                    false
                ),
                (
                    "1->2".to_owned(),
                    field("b"),
                    ChangeKind::FieldAddedRequired,
                    false
                ),
            ]
        );
        assert!(!d.has_violations());
        assert_eq!((d.changes[0].old_readers, d.changes[0].new_readers), (B, C));
        assert_eq!(d.changes[1].verdict(), "ok: new version");
    }

    #[test]
    fn editing_a_kept_older_version_in_place_is_a_violation() {
        let old = versioned(2, r#"id = "string", b = "uint""#, V1_KEPT);
        let new = versioned(
            2,
            r#"id = "string", b = "uint""#,
            &V1_KEPT.replace("a = \"uint\"", "a = \"uint\", c = \"bool\""),
        );
        assert_eq!(
            changes(&old, &new),
            [(field("c"), ChangeKind::FieldAddedRequired, C, B, true)]
        );
        assert_eq!(diff(&old, &new).changes[0].version, 1);
    }

    #[test]
    fn retiring_an_older_version_is_reported_not_a_violation() {
        let old = versioned(2, r#"id = "string", b = "uint""#, V1_KEPT);
        let new = versioned(2, r#"id = "string", b = "uint""#, "");
        let d = diff(&old, &new);
        assert_eq!(
            changes(&old, &new),
            [(None, ChangeKind::VersionRetired, C, B, false)]
        );
        assert_eq!(d.changes[0].version, 1);
        assert_eq!(d.changes[0].verdict(), "ok: older version retired");

        // Bumping and retiring the old version at once: allowed, and both are reported.
        let d = diff(&versioned(1, V1, ""), &versioned(2, V1, ""));
        let kinds: Vec<_> = d
            .changes
            .iter()
            .map(|c| (c.kind, c.version, c.violation))
            .collect();
        assert_eq!(
            kinds,
            [
                (ChangeKind::VersionAdded, 2, false),
                (ChangeKind::VersionRetired, 1, false)
            ]
        );
    }

    #[test]
    fn removing_the_newest_version_is_a_violation() {
        let old = versioned(2, r#"id = "string", b = "uint""#, V1_KEPT);
        let new = versioned(1, V1, "");
        assert_eq!(
            changes(&old, &new),
            [(None, ChangeKind::VersionRetired, C, B, true)]
        );
    }

    #[test]
    fn declaring_an_older_version_again_is_compatible() {
        let old = versioned(2, V1, "");
        let new = versioned(2, V1, V1_KEPT);
        assert_eq!(
            changes(&old, &new),
            [(None, ChangeKind::VersionAdded, C, C, false)]
        );
    }

    #[test]
    fn json_and_table() {
        let old = catalog("", r#"a = "uint""#);
        let new = catalog("", r#"a = "uint", b = "string", c = "string?""#);
        let d = diff(&old, &new);
        let json = d.to_json();
        assert_eq!(json["ok"], false);
        assert_eq!(json["violations"], 1);
        assert_eq!(json["breaking"], 1);
        assert_eq!(
            json["changes"][0],
            json!({
                "event": "image:thing", "version": 1, "fromVersion": null, "field": "b",
                "kind": "field-added-required", "oldReaders": "compatible", "newReaders": "breaking",
                "violation": true, "detail": "required string added: new readers reject old events without it",
            })
        );
        let table = d.table();
        let lines: Vec<&str> = table.lines().collect();
        assert!(
            lines[0].starts_with("EVENT        VERSION  FIELD  CHANGE"),
            "{table}"
        );
        assert!(lines[1].starts_with("image:thing  1        b      field added (required)  compatible   breaking     VIOLATION"), "{table}");
        assert!(
            lines[2].contains("field added (optional)") && lines[2].contains(" ok "),
            "{table}"
        );
        assert!(
            table.contains("error: 2 changes, 1 breaking change of an event without a new version"),
            "{table}"
        );
        assert!(
            table.contains("help: bump the event's `version`"),
            "{table}"
        );

        let ok = diff(&old, &catalog("", r#"a = "uint", c = "string?""#)).table();
        assert!(
            ok.ends_with("ok: 1 change, 0 breaking, none without a new version\n"),
            "{ok}"
        );
    }

    #[test]
    fn every_kind_has_a_distinct_label() {
        let mut labels: Vec<_> = ChangeKind::ALL.iter().map(|k| k.label()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), ChangeKind::ALL.len());
        assert_eq!(
            serde_json::to_value(ChangeKind::FieldMadeOptional).unwrap(),
            "field-made-optional"
        );
    }
}
