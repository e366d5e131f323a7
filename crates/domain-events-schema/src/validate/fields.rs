//! Payload and object fields: names, types and constraints.

use std::collections::HashMap;
use std::ops::Range;

use toml::Spanned;

use super::{Context, Fields, type_label};
use crate::diag::{Diagnostics, SourceFile};
use crate::model::{Constraints, Field, FieldType, Number};
use crate::raw::{Ordered, RawField, RawFieldTable, RawNumber};
use crate::{ident, naming};

impl Context<'_> {
    pub(super) fn fields(
        &mut self,
        file: &SourceFile,
        category: &str,
        prefix: &str,
        raw: &Spanned<Ordered<Spanned<RawField>>>,
    ) -> Fields {
        let mut out = Fields::default();
        let mut rust_names: HashMap<String, String> = HashMap::new();
        for (name, field) in &raw.get_ref().0 {
            let wire = name.get_ref();
            // A bad name is reported and the field's type is still checked; references to the
            // field are not reported again.
            let mut name_ok = true;
            if !ident::is_lower_camel_case(wire) {
                self.diags.error_help(
                    file,
                    name.span(),
                    format!("field name `{wire}` is not lowerCamelCase"),
                    format!("name it like `{}`", heck_lower_camel(wire)),
                );
                name_ok = false;
            }
            let rust_name = ident::rust_field_name(wire);
            if name_ok && let Some(other) = rust_names.insert(rust_name.clone(), wire.clone()) {
                self.diags.error_help(
                    file,
                    name.span(),
                    format!(
                        "fields `{other}` and `{wire}` both become the Rust field `{rust_name}`"
                    ),
                    "rename one of them",
                );
                name_ok = false;
            }
            match self.field(file, category, prefix, name, field) {
                Some(f) if name_ok => out.parsed.push(Field { rust_name, ..f }),
                _ => {
                    out.broken.insert(wire.clone());
                }
            }
        }
        out
    }

    pub(super) fn field(
        &mut self,
        file: &SourceFile,
        category: &str,
        prefix: &str,
        name: &Spanned<String>,
        raw: &Spanned<RawField>,
    ) -> Option<Field> {
        let empty = RawFieldTable::empty();
        let (ty_text, ty_span, table) = match raw.get_ref() {
            RawField::Short(ty) => (ty.clone(), raw.span(), &empty),
            RawField::Table(t) => match &t.ty {
                Some(ty) => (ty.get_ref().clone(), ty.span(), t.as_ref()),
                None => {
                    self.diags.error_help(
                        file,
                        raw.span(),
                        format!("field `{}` has no `type`", name.get_ref()),
                        "add e.g. `type = \"string\"`",
                    );
                    return None;
                }
            },
        };
        let (text, optional) = match ty_text.trim().strip_suffix('?') {
            Some(t) => (t.trim().to_owned(), true),
            None => (ty_text.trim().to_owned(), false),
        };
        let enum_name = naming::inline_enum(prefix, name.get_ref());
        let ty = self.type_expr(file, &text, ty_span.clone(), table, &enum_name, category)?;
        let constraints = self.constraints(file, name.get_ref(), &ty, table)?;
        if table.values.is_some() && !matches!(ty.element(), FieldType::Named(n) if *n == enum_name)
        {
            self.diags.error_help(
                file,
                table.values.as_ref().map_or(ty_span.clone(), |v| v.span()),
                format!(
                    "`values` only applies to `enum` fields, but `{}` is `{text}`",
                    name.get_ref()
                ),
                "remove `values`, or set `type = \"enum\"`",
            );
            return None;
        }
        Some(Field {
            name: name.get_ref().clone(),
            rust_name: String::new(),
            ty,
            optional,
            description: table.description.as_ref().map(|d| d.get_ref().clone()),
            deprecated: table.deprecated,
            sensitive: table.sensitive,
            constraints,
        })
    }

    pub(super) fn constraints(
        &mut self,
        file: &SourceFile,
        field: &str,
        ty: &FieldType,
        t: &RawFieldTable,
    ) -> Option<Constraints> {
        let element = ty.element();
        let numeric = matches!(element, FieldType::Int | FieldType::UInt | FieldType::Float);
        let stringy = matches!(
            element,
            FieldType::String
                | FieldType::Timestamp
                | FieldType::Date
                | FieldType::Url
                | FieldType::Email
                | FieldType::Uuid
        );
        let is_list = matches!(ty, FieldType::List(_));
        let kind = type_label(ty);
        let mut ok = true;
        let mut wrong = |diags: &mut Diagnostics, key: &str, span: Range<usize>, applies: &str| {
            diags.error_help(
                file,
                span,
                format!("`{key}` does not apply to `{field}`, whose type is `{kind}`"),
                format!("`{key}` applies to {applies}"),
            );
            ok = false;
        };
        for (key, value) in [("min", &t.min), ("max", &t.max)] {
            if let Some(v) = value
                && !numeric
            {
                wrong(
                    self.diags,
                    key,
                    v.span(),
                    "`int`, `uint` and `float` fields (and lists of them)",
                );
            }
        }
        for (key, value) in [("min_length", &t.min_length), ("max_length", &t.max_length)] {
            if let Some(v) = value
                && !stringy
            {
                wrong(
                    self.diags,
                    key,
                    v.span(),
                    "string fields (and lists of them)",
                );
            }
        }
        if let Some(p) = &t.pattern
            && !stringy
        {
            wrong(
                self.diags,
                "pattern",
                p.span(),
                "string fields (and lists of them)",
            );
        }
        for (key, value) in [("min_items", &t.min_items), ("max_items", &t.max_items)] {
            if let Some(v) = value
                && !is_list
            {
                wrong(self.diags, key, v.span(), "`list<..>` fields");
            }
        }
        if !ok {
            return None;
        }

        let integer = matches!(element, FieldType::Int | FieldType::UInt);
        let number = |cx: &mut Self,
                      v: &Option<Spanned<RawNumber>>,
                      key: &str|
         -> Result<Option<Number>, ()> {
            let Some(v) = v else { return Ok(None) };
            let n = match *v.get_ref() {
                RawNumber::Int(i) => Number::Int(i),
                RawNumber::Float(x) if integer => {
                    cx.diags.error_help(
                        file,
                        v.span(),
                        format!(
                            "`{key}` of the integer field `{field}` is not a whole number: {x}"
                        ),
                        "use a whole number",
                    );
                    return Err(());
                }
                RawNumber::Float(x) if !x.is_finite() => {
                    cx.diags.error_help(
                        file,
                        v.span(),
                        format!("`{key}` must be a finite number"),
                        "use a finite number",
                    );
                    return Err(());
                }
                RawNumber::Float(x) => Number::Float(x),
            };
            if matches!(element, FieldType::UInt) && n.as_f64() < 0.0 {
                cx.diags.error_help(
                    file,
                    v.span(),
                    format!("`{key}` of `{field}` is negative, but `uint` values never are"),
                    "use a bound of 0 or more, or make the field `int`",
                );
                return Err(());
            }
            Ok(Some(n))
        };
        // Every constraint is checked; a bad one is reported and does not stop the others.
        let mut ok = true;
        let min = number(self, &t.min, "min").unwrap_or_else(|()| {
            ok = false;
            None
        });
        let max = number(self, &t.max, "max").unwrap_or_else(|()| {
            ok = false;
            None
        });
        if let (Some(lo), Some(hi), Some(span)) = (min, max, t.min.as_ref().map(|m| m.span()))
            && lo.as_f64() > hi.as_f64()
        {
            self.bad_range(file, span, "min", "max", field);
            ok = false;
        }
        let mut count = |cx: &mut Self, v: &Option<Spanned<i64>>, key: &str| {
            cx.count(file, v, key).unwrap_or_else(|| {
                ok = false;
                None
            })
        };
        let min_length = count(self, &t.min_length, "min_length");
        let max_length = count(self, &t.max_length, "max_length");
        let min_items = count(self, &t.min_items, "min_items");
        let max_items = count(self, &t.max_items, "max_items");
        for (lo, hi, lo_key, hi_key, span) in [
            (
                min_length,
                max_length,
                "min_length",
                "max_length",
                t.min_length.as_ref().map(|v| v.span()),
            ),
            (
                min_items,
                max_items,
                "min_items",
                "max_items",
                t.min_items.as_ref().map(|v| v.span()),
            ),
        ] {
            if let (Some(lo), Some(hi), Some(span)) = (lo, hi, span)
                && lo > hi
            {
                self.bad_range(file, span, lo_key, hi_key, field);
                ok = false;
            }
        }
        let pattern = match &t.pattern {
            Some(p) => match regex::Regex::new(p.get_ref()) {
                Ok(_) => Some(p.get_ref().clone()),
                Err(e) => {
                    // The regex crate's last line reads `error: <what>`; keep only `<what>`.
                    let text = e.to_string();
                    let last = text.lines().last().unwrap_or("invalid").trim();
                    let detail = last.strip_prefix("error: ").unwrap_or(last).to_owned();
                    self.diags.error_help(
                        file,
                        p.span(),
                        format!(
                            "`pattern` of `{field}` is not a valid regular expression: {detail}"
                        ),
                        "patterns use the Rust `regex` syntax (no look-around or back-references)",
                    );
                    ok = false;
                    None
                }
            },
            None => None,
        };
        if !ok {
            return None;
        }
        Some(Constraints {
            min,
            max,
            min_length,
            max_length,
            pattern,
            min_items,
            max_items,
        })
    }

    pub(super) fn count(
        &mut self,
        file: &SourceFile,
        v: &Option<Spanned<i64>>,
        key: &str,
    ) -> Option<Option<u64>> {
        match v {
            None => Some(None),
            Some(v) => match u64::try_from(*v.get_ref()) {
                Ok(n) => Some(Some(n)),
                Err(_) => {
                    self.diags.error_help(
                        file,
                        v.span(),
                        format!("`{key}` is negative: {}", v.get_ref()),
                        "lengths and item counts are 0 or more",
                    );
                    None
                }
            },
        }
    }

    pub(super) fn bad_range(
        &mut self,
        file: &SourceFile,
        span: Range<usize>,
        lo: &str,
        hi: &str,
        field: &str,
    ) {
        self.diags.error_help(
            file,
            span,
            format!("`{lo}` of `{field}` is greater than its `{hi}`, so no value can pass"),
            format!("make `{lo}` less than or equal to `{hi}`"),
        );
    }
}

impl RawFieldTable {
    fn empty() -> Self {
        RawFieldTable {
            ty: None,
            description: None,
            deprecated: false,
            sensitive: false,
            values: None,
            min: None,
            max: None,
            min_length: None,
            max_length: None,
            pattern: None,
            min_items: None,
            max_items: None,
        }
    }
}

fn heck_lower_camel(name: &str) -> String {
    heck::ToLowerCamelCase::to_lower_camel_case(name)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    #[test]
    fn a_field_with_a_bad_name_still_has_its_type_checked() {
        let out = errors(&[(
            "a.toml",
            &event_file("a", "id = \"string\", bad_name = \"strng\""),
        )]);
        assert!(
            out.contains("field name `bad_name` is not lowerCamelCase"),
            "{out}"
        );
        assert!(out.contains("unknown type `strng`"), "{out}");
    }

    #[test]
    fn every_constraint_of_a_field_is_checked() {
        let field = "id = \"string\", tags = { type = \"list<string>\", min_length = -1, \
                     pattern = \"[\", min_items = 3, max_items = 1 }";
        let out = errors(&[("a.toml", &event_file("a", field))]);
        assert!(out.contains("`min_length` is negative"), "{out}");
        assert!(
            out.contains("`pattern` of `tags` is not a valid regular expression"),
            "{out}"
        );
        assert!(
            out.contains("`min_items` of `tags` is greater than its `max_items`"),
            "{out}"
        );
    }

    #[test]
    fn two_fields_with_one_rust_name() {
        let out = errors(&[(
            "a.toml",
            &event_file("a", "id = \"string\", uRL = \"url\", uRl = \"url\""),
        )]);
        assert!(out.contains("both become the Rust field"), "{out}");
    }

    #[test]
    fn values_only_on_enums() {
        let out = errors(&[(
            "a.toml",
            &event_file("a", "id = { type = \"string\", values = [\"x\"] }"),
        )]);
        assert!(
            out.contains("`values` only applies to `enum` fields"),
            "{out}"
        );
    }
}
