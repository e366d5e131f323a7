//! Comparing two catalogs event by event, version by version and field by field.

use super::model::{Change, ChangeKind, Compat, Diff};
use super::types::{compare_constraints, compare_type, describe};
use crate::model::{Catalog, Event, EventVersion, Field};

// Short names for the verdicts below.
use Compat::{Breaking as B, Compatible as C};

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
pub(super) struct Ctx<'a> {
    changes: &'a mut Vec<Change>,
    /// The old catalog, for named types.
    pub(super) old: &'a Catalog,
    /// The new catalog, for named types.
    pub(super) new: &'a Catalog,
    event: &'a str,
    version: u32,
    from_version: Option<u32>,
}

impl Ctx<'_> {
    /// Records a change of the current event version.
    pub(super) fn push(
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

pub(super) fn compare_fields(ctx: &mut Ctx<'_>, prefix: &str, old: &[Field], new: &[Field]) {
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

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

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
}
