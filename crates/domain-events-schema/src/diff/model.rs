//! What a diff is made of: the verdicts, the kinds of change, one change and the whole diff.

use std::fmt;

use serde::Serialize;

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
}

#[cfg(test)]
mod tests {
    use super::*;

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
