//! Comparing field types and their constraints: which changes widen, narrow or break.

use super::compare::{Ctx, compare_fields};
use super::model::{ChangeKind, Compat};
use crate::model::{Catalog, Constraints, Field, FieldType, NamedKind, Number};

// Short names for the verdicts below.
use Compat::{Breaking as B, Compatible as C};

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
pub(super) fn describe(catalog: &Catalog, ty: &FieldType) -> String {
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
pub(super) fn compare_type(
    ctx: &mut Ctx<'_>,
    path: &str,
    old: &FieldType,
    new: &FieldType,
) -> bool {
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

pub(super) fn compare_constraints(
    ctx: &mut Ctx<'_>,
    path: &str,
    old: &Constraints,
    new: &Constraints,
) {
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
    use super::super::test_support::*;
    use super::super::*;
    use super::*;

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
}
