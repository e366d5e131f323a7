//! Type expressions (`list<T>`, `map<T>`, built-ins, named types), inline and named enums, and
//! the bodies of named types.

use std::collections::HashMap;
use std::ops::Range;

use toml::Spanned;

use super::Context;
use crate::diag::{SourceFile, did_you_mean};
use crate::ident;
use crate::model::{FieldType, NamedKind, NamedType, SCALAR_TYPES};
use crate::raw::{RawFieldTable, RawType};

/// The built-in types besides the scalars ([`SCALAR_TYPES`]), as suggestions show them.
const COMPOSITE_TYPES: &[&str] = &["enum", "list<T>", "map<T>"];

/// Every built-in type as messages name it: the scalars, then [`COMPOSITE_TYPES`].
fn builtin_types() -> impl Iterator<Item = &'static str> {
    SCALAR_TYPES
        .iter()
        .map(|(name, _)| *name)
        .chain(COMPOSITE_TYPES.iter().copied())
}

impl Context<'_> {
    pub(super) fn type_expr(
        &mut self,
        file: &SourceFile,
        text: &str,
        span: Range<usize>,
        table: &RawFieldTable,
        enum_name: &str,
        category: &str,
    ) -> Option<FieldType> {
        let text = text.trim();
        for (wrapper, make) in [
            ("list<", FieldType::List as fn(Box<FieldType>) -> FieldType),
            ("map<", FieldType::Map),
        ] {
            if let Some(rest) = text.strip_prefix(wrapper) {
                let Some(inner) = rest.strip_suffix('>') else {
                    self.diags.error_help(
                        file,
                        span,
                        format!("type `{text}` is missing its closing `>`"),
                        format!("write it like `{wrapper}string>`"),
                    );
                    return None;
                };
                if inner.trim().ends_with('?') {
                    self.diags.error_help(
                        file,
                        span,
                        format!("elements of `{text}` cannot be optional"),
                        "only a whole field can be optional: put the `?` after the `>`",
                    );
                    return None;
                }
                let inner = self.type_expr(file, inner, span, table, enum_name, category)?;
                return Some(make(Box::new(inner)));
            }
        }
        if let Some(scalar) = FieldType::scalar(text) {
            return Some(scalar);
        }
        let ty = match text {
            "enum" => return self.inline_enum(file, span, table, enum_name, category),
            named if self.named.contains_key(named) => FieldType::Named(named.to_owned()),
            unknown => {
                let mut candidates: Vec<&str> = builtin_types().collect();
                candidates.extend(self.named.keys().map(String::as_str));
                let help = match did_you_mean(unknown, candidates) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!(
                        "use one of {}, or a type declared under `[types]`",
                        builtin_types()
                            .map(|t| format!("`{t}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                self.diags
                    .error_help(file, span, format!("unknown type `{unknown}`"), help);
                return None;
            }
        };
        Some(ty)
    }

    pub(super) fn inline_enum(
        &mut self,
        file: &SourceFile,
        span: Range<usize>,
        table: &RawFieldTable,
        enum_name: &str,
        category: &str,
    ) -> Option<FieldType> {
        let Some(values) = &table.values else {
            self.diags.error_help(
                file,
                span,
                "an `enum` field needs its `values`",
                "add e.g. `values = [\"email\", \"google\"]` to the field's table",
            );
            return None;
        };
        let values = self.enum_values(file, values)?;
        if !self.claim_name(enum_name, file, span, "this inline enum") {
            return None;
        }
        if !self.types.iter().any(|t| t.name == enum_name) {
            self.types.push(NamedType {
                name: enum_name.to_owned(),
                category: category.to_owned(),
                description: None,
                kind: NamedKind::Enum(values),
            });
        }
        self.named
            .insert(enum_name.to_owned(), (file.display.clone(), true));
        Some(FieldType::Named(enum_name.to_owned()))
    }

    pub(super) fn enum_values(
        &mut self,
        file: &SourceFile,
        values: &Spanned<Vec<Spanned<String>>>,
    ) -> Option<Vec<String>> {
        if values.get_ref().is_empty() {
            self.diags.error_help(
                file,
                values.span(),
                "an enum needs at least one value",
                "list the allowed strings",
            );
            return None;
        }
        let mut seen: HashMap<String, String> = HashMap::new();
        let mut ok = true;
        for v in values.get_ref() {
            let Some(variant) = ident::rust_variant_name(v.get_ref()) else {
                self.diags.error_help(
                    file,
                    v.span(),
                    format!(
                        "enum value `{}` has no letters or digits to name a Rust variant",
                        v.get_ref()
                    ),
                    "use values made of letters, digits, `_` or `-`",
                );
                ok = false;
                continue;
            };
            if let Some(other) = seen.insert(variant.clone(), v.get_ref().clone()) {
                let message = if other == *v.get_ref() {
                    format!("enum value `{other}` is listed twice")
                } else {
                    format!(
                        "enum values `{other}` and `{}` both become the Rust variant `{variant}`",
                        v.get_ref()
                    )
                };
                self.diags
                    .error_help(file, v.span(), message, "remove or rename one of them");
                ok = false;
            }
        }
        ok.then(|| {
            values
                .get_ref()
                .iter()
                .map(|v| v.get_ref().clone())
                .collect()
        })
    }

    pub(super) fn named_type(
        &mut self,
        file: &SourceFile,
        category: &str,
        name: &Spanned<String>,
        raw: &RawType,
    ) {
        let kind = match (&raw.fields, &raw.values) {
            (Some(_), Some(values)) => {
                self.diags.error_help(
                    file,
                    values.span(),
                    format!("type `{}` has both `fields` and `values`", name.get_ref()),
                    "an object type has `fields`, an enum type has `values`; keep one",
                );
                return;
            }
            (None, None) => {
                self.diags.error_help(
                    file,
                    name.span(),
                    format!(
                        "type `{}` has neither `fields` nor `values`",
                        name.get_ref()
                    ),
                    "give an object type a `fields` table or an enum type a `values` list",
                );
                return;
            }
            (None, Some(values)) => match self.enum_values(file, values) {
                Some(v) => NamedKind::Enum(v),
                None => return,
            },
            // Pushed even with broken fields, so the cycle check sees the fields that parsed.
            (Some(fields), None) => {
                NamedKind::Object(self.fields(file, category, name.get_ref(), fields).parsed)
            }
        };
        self.types.push(NamedType {
            name: name.get_ref().clone(),
            category: category.to_owned(),
            description: raw.description.as_ref().map(|d| d.get_ref().clone()),
            kind,
        });
    }

    pub(super) fn is_enum_name(&self, ty: &FieldType) -> bool {
        matches!(ty, FieldType::Named(n) if self.named.get(n).is_some_and(|(_, is_enum)| *is_enum))
    }
}

/// The schema-language spelling of a type, for messages.
pub fn type_label(ty: &FieldType) -> String {
    ty.label()
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    #[test]
    fn unknown_types_get_the_closest_known_one() {
        let out = errors(&[(
            "a.toml",
            &event_file("a", "id = \"string\", u = \"ulr\", m = \"map<intt>\""),
        )]);
        assert!(
            out.contains("unknown type `ulr`\n  help: did you mean `url`?"),
            "{out}"
        );
        assert!(
            out.contains("unknown type `intt`\n  help: did you mean `int`?"),
            "{out}"
        );
    }

    #[test]
    fn malformed_type_expressions() {
        let out = errors(&[(
            "a.toml",
            &event_file(
                "a",
                "id = \"string\", l = \"list<string\", o = \"list<int?>\", e = \"enum\"",
            ),
        )]);
        assert!(
            out.contains("type `list<string` is missing its closing `>`"),
            "{out}"
        );
        assert!(
            out.contains("elements of `list<int?>` cannot be optional"),
            "{out}"
        );
        assert!(out.contains("an `enum` field needs its `values`"), "{out}");
    }

    #[test]
    fn named_types_have_fields_or_values() {
        let text = format!(
            "{}[types.Both]\nfields = {{ a = \"string\" }}\nvalues = [\"x\"]\n[types.Neither]\n\
             description = \"d\"\n[types.Dupes]\nvalues = [\"a-b\", \"a_b\"]\n",
            event_file("a", "id = \"string\"")
        );
        let out = errors(&[("a.toml", &text)]);
        assert!(
            out.contains("type `Both` has both `fields` and `values`"),
            "{out}"
        );
        assert!(
            out.contains("type `Neither` has neither `fields` nor `values`"),
            "{out}"
        );
        assert!(
            out.contains("enum values `a-b` and `a_b` both become the Rust variant"),
            "{out}"
        );
    }

    #[test]
    fn labels_are_schema_spellings() {
        use crate::model::FieldType;
        let ty = FieldType::Map(Box::new(FieldType::List(Box::new(FieldType::Named(
            "T".into(),
        )))));
        assert_eq!(super::type_label(&ty), "map<list<T>>");
    }
}
