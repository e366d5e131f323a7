//! The event catalog as the catalog page shows it: categories, events, versions and fields.

use domain_events_schema::Catalog;
use domain_events_schema::model::{Field, NamedKind};
use serde::Serialize;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CatalogView {
    /// Whether the dashboard was given a catalog.
    loaded: bool,
    categories: Vec<CategoryView>,
    types: Vec<TypeView>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CategoryView {
    name: String,
    description: Option<String>,
    events: Vec<EventView>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct EventView {
    #[serde(rename = "type")]
    type_string: String,
    name: String,
    description: Option<String>,
    deprecated: bool,
    versions: Vec<VersionView>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct VersionView {
    version: u32,
    latest: bool,
    description: Option<String>,
    /// The idempotency key template, as written in the schema.
    idempotency_key: String,
    correlation: String,
    fields: Vec<FieldView>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct FieldView {
    name: String,
    /// The schema-language spelling: `string`, `list<url>`, a named type.
    #[serde(rename = "type")]
    ty: String,
    optional: bool,
    sensitive: bool,
    deprecated: bool,
    description: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TypeView {
    name: String,
    category: String,
    description: Option<String>,
    /// `object` or `enum`.
    kind: &'static str,
    fields: Vec<FieldView>,
    values: Vec<String>,
}

fn fields(fields: &[Field]) -> Vec<FieldView> {
    fields
        .iter()
        .map(|field| FieldView {
            name: field.name.clone(),
            ty: field.ty.label(),
            optional: field.optional,
            sensitive: field.sensitive,
            deprecated: field.deprecated,
            description: field.description.clone(),
        })
        .collect()
}

pub(crate) fn catalog_view(catalog: Option<&Catalog>) -> CatalogView {
    let Some(catalog) = catalog else {
        return CatalogView {
            loaded: false,
            categories: Vec::new(),
            types: Vec::new(),
        };
    };
    let categories = catalog
        .categories
        .iter()
        .map(|category| CategoryView {
            name: category.name.clone(),
            description: category.description.clone(),
            events: category
                .events
                .iter()
                .map(|event| EventView {
                    type_string: event.type_string.clone(),
                    name: event.name.clone(),
                    description: event.description.clone(),
                    deprecated: event.deprecated,
                    versions: event
                        .versions
                        .iter()
                        .map(|version| VersionView {
                            version: version.version,
                            latest: version.latest,
                            description: version.description.clone(),
                            idempotency_key: version.key.source.clone(),
                            correlation: version.correlation.clone(),
                            fields: fields(&version.fields),
                        })
                        .collect(),
                })
                .collect(),
        })
        .collect();
    let types = catalog
        .types
        .iter()
        .map(|named| {
            let (kind, fields, values) = match &named.kind {
                NamedKind::Object(list) => ("object", fields(list), Vec::new()),
                NamedKind::Enum(values) => ("enum", Vec::new(), values.clone()),
            };
            TypeView {
                name: named.name.clone(),
                category: named.category.clone(),
                description: named.description.clone(),
                kind,
                fields,
                values,
            }
        })
        .collect();
    CatalogView {
        loaded: true,
        categories,
        types,
    }
}
