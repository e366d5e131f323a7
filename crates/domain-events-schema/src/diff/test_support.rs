//! Test catalogs shared by the diff tests.

use super::*;
use crate::model::Catalog;

/// An `image.toml` with one event `thing` whose fields are `fields` (TOML inline-table body)
/// and whose extra event keys are `extra`.
pub(super) fn catalog(extra: &str, fields: &str) -> Catalog {
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

pub(super) fn changes(
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
pub(super) fn one(old_fields: &str, new_fields: &str) -> Change {
    let d = diff(&catalog("", old_fields), &catalog("", new_fields));
    assert_eq!(d.changes.len(), 1, "{:#?}", d.changes);
    d.changes.into_iter().next().unwrap()
}

pub(super) fn field(s: &str) -> Option<String> {
    Some(s.to_owned())
}

/// `image:thing` at version `latest`, with older versions `older` (TOML tables).
pub(super) fn versioned(latest: u32, fields: &str, older: &str) -> Catalog {
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

pub(super) const V1: &str = r#"id = "string", a = "uint""#;
pub(super) const V1_KEPT: &str =
    "[events.thing.versions.1]\nfields = { id = \"string\", a = \"uint\" }";
