//! References to payload fields: idempotency-key templates and correlation fields.

use std::ops::Range;

use toml::Spanned;

use super::{Context, Fields, type_label};
use crate::diag::{SourceFile, did_you_mean};
use crate::model::{KeyPart, KeyTemplate};

impl Context<'_> {
    pub(super) fn key_template(
        &mut self,
        file: &SourceFile,
        raw: &Spanned<String>,
        fields: &Fields,
    ) -> Option<KeyTemplate> {
        let text = raw.get_ref();
        // Offsets inside the string: the span includes the opening quote.
        let base = raw.span().start + 1;
        let at = |i: usize| base + i..base + i + 1;
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut refs: Vec<(String, usize)> = Vec::new();
        // Whether the literal text since the last reference holds a `:`, and whether every two
        // references are separated by one: only then does a key split back into its values.
        let mut colon_since_ref = false;
        let mut separated = true;
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'{' if bytes.get(i + 1) == Some(&b'{') => {
                    literal.push('{');
                    i += 2;
                }
                b'}' if bytes.get(i + 1) == Some(&b'}') => {
                    literal.push('}');
                    i += 2;
                }
                b'{' => {
                    let Some(len) = text[i + 1..].find('}') else {
                        self.diags.error_help(
                            file,
                            at(i),
                            "`{` in the idempotency key is never closed",
                            "close the field reference with `}`, or write `{{` for a literal brace",
                        );
                        return None;
                    };
                    let name = &text[i + 1..i + 1 + len];
                    if name.is_empty() || name.contains('{') {
                        self.diags.error_help(
                            file,
                            at(i),
                            "the idempotency key has an empty or malformed `{...}` reference",
                            "put a payload field name between the braces, e.g. `{variationId}`",
                        );
                        return None;
                    }
                    if let Some((previous, start)) = refs.last().filter(|_| !colon_since_ref) {
                        self.diags.error_help(
                            file,
                            base + start..base + i + len + 2,
                            format!(
                                "the idempotency key's `{{{previous}}}` and `{{{name}}}` are not \
                                 separated by a `:`, so the key cannot show where one value ends \
                                 and two different payloads could get the same key"
                            ),
                            format!(
                                "put literal text containing `:` between the two references, e.g. \
                                 `{{{previous}}}:{{{name}}}`; values are written with `:` escaped \
                                 as `%3A`, so a literal `:` always marks the boundary"
                            ),
                        );
                        separated = false;
                    }
                    colon_since_ref = false;
                    if !literal.is_empty() {
                        parts.push(KeyPart::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(KeyPart::Field(name.to_owned()));
                    refs.push((name.to_owned(), i));
                    i += len + 2;
                }
                b'}' => {
                    self.diags.error_help(
                        file,
                        at(i),
                        "unmatched `}` in the idempotency key",
                        "write `}}` for a literal brace",
                    );
                    return None;
                }
                _ => {
                    let ch = text[i..].chars().next().unwrap_or_default();
                    colon_since_ref |= ch == ':';
                    literal.push(ch);
                    i += ch.len_utf8().max(1);
                }
            }
        }
        if !literal.is_empty() {
            parts.push(KeyPart::Literal(literal));
        }
        if refs.is_empty() {
            self.diags.error_help(
                file,
                raw.span(),
                "the idempotency key references no field, so every emission after the first would be dropped as a duplicate",
                "add the fields that make an emission unique, e.g. `image_complete:{variationId}`",
            );
            return None;
        }
        let mut ok = separated;
        for (name, offset) in refs {
            let span = base + offset..base + offset + name.len() + 2;
            ok &= self.scalar_field_ref(file, span, &name, fields, "the idempotency key");
        }
        ok.then(|| KeyTemplate {
            source: text.clone(),
            parts,
        })
    }

    pub(super) fn correlation(
        &mut self,
        file: &SourceFile,
        raw: &Spanned<String>,
        fields: &Fields,
    ) -> Option<String> {
        self.scalar_field_ref(
            file,
            raw.span(),
            raw.get_ref(),
            fields,
            "the correlation field",
        )
        .then(|| raw.get_ref().clone())
    }

    /// Checks that `name` is a required scalar field; `what` names the referrer in messages.
    pub(super) fn scalar_field_ref(
        &mut self,
        file: &SourceFile,
        span: Range<usize>,
        name: &str,
        fields: &Fields,
        what: &str,
    ) -> bool {
        if fields.broken.contains(name) {
            // Already reported where the field is declared.
            return false;
        }
        let all: Vec<&str> = fields
            .parsed
            .iter()
            .map(|f| f.name.as_str())
            .chain(fields.broken.iter().map(String::as_str))
            .collect();
        let fields = &fields.parsed;
        let Some(field) = fields.iter().find(|f| f.name == name) else {
            let help = match did_you_mean(name, all.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!(
                    "the payload fields are {}",
                    all.iter()
                        .map(|f| format!("`{f}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            self.diags.error_help(
                file,
                span,
                format!("{what} references `{name}`, which is not a payload field"),
                help,
            );
            return false;
        };
        if field.optional {
            self.diags.error_help(
                file,
                span,
                format!("{what} references `{name}`, which is optional"),
                "only required fields always have a value; make the field required or use another one",
            );
            return false;
        }
        if field.sensitive {
            self.diags.error_help(
                file,
                span,
                format!("{what} references `{name}`, which is marked sensitive"),
                "idempotency keys and correlation ids are logged and become Redis key names, so a \
                 sensitive value would show in clear; reference a field that identifies the event \
                 without revealing it (an id)",
            );
            return false;
        }
        if !field.ty.is_key_scalar(&self.types) && !self.is_enum_name(&field.ty) {
            self.diags.error_help(
                file,
                span,
                format!(
                    "{what} references `{name}`, whose type `{}` has no single text form",
                    type_label(&field.ty)
                ),
                "use a string, integer, boolean, timestamp, date, uuid, url, email or enum field",
            );
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    fn with_key(key: &str, fields: &str) -> String {
        format!(
            "category = \"a\"\ncorrelation = \"id\"\n[events.happened]\n\
             idempotency_key = \"{key}\"\nfields = {{ {fields} }}\n"
        )
    }

    #[test]
    fn references_to_a_field_with_a_broken_type_are_not_reported_again() {
        let out = errors(&[(
            "a.toml",
            &with_key("a:{id}:{n}", "id = \"strng\", n = \"int\""),
        )]);
        assert!(out.contains("unknown type `strng`"), "{out}");
        assert!(!out.contains("references `id`"), "{out}");
        assert_eq!(out.matches("error:").count(), 1, "{out}");
    }

    #[test]
    fn references_are_checked_even_when_another_field_is_broken() {
        let out = errors(&[(
            "a.toml",
            &with_key("a:{id}:{coutn}", "id = \"string\", count = \"intt\""),
        )]);
        assert!(out.contains("unknown type `intt`"), "{out}");
        assert!(
            out.contains(
                "references `coutn`, which is not a payload field\n  help: did you mean `count`?"
            ),
            "{out}"
        );
    }

    #[test]
    fn key_templates() {
        for (key, message) in [
            ("a:{id", "is never closed"),
            ("a:{}", "empty or malformed"),
            ("a:}", "unmatched `}`"),
            ("constant", "references no field"),
            ("a:{id}{n}", "are not separated by a `:`"),
        ] {
            let out = errors(&[("a.toml", &with_key(key, "id = \"string\", n = \"int\""))]);
            assert!(out.contains(message), "{key}: {out}");
        }
    }

    #[test]
    fn key_and_correlation_fields_are_not_sensitive() {
        // Keys and correlation ids are logged and become Redis key names: a sensitive value
        // there would be printed and stored in clear.
        let out = errors(&[(
            "a.toml",
            &with_key(
                "a:{mail}",
                "id = { type = \"email\", sensitive = true }, mail = { type = \"email\", sensitive = true }",
            ),
        )]);
        assert!(
            out.contains("the idempotency key references `mail`, which is marked sensitive"),
            "{out}"
        );
        assert!(
            out.contains("the correlation field references `id`, which is marked sensitive"),
            "{out}"
        );
    }

    #[test]
    fn key_and_correlation_fields_are_required_scalars() {
        let out = errors(&[(
            "a.toml",
            &with_key(
                "a:{opt}:{list}",
                "id = \"string?\", opt = \"string?\", list = \"list<string>\"",
            ),
        )]);
        assert!(
            out.contains("the idempotency key references `opt`, which is optional"),
            "{out}"
        );
        assert!(
            out.contains("whose type `list<string>` has no single text form"),
            "{out}"
        );
        assert!(
            out.contains("the correlation field references `id`, which is optional"),
            "{out}"
        );
    }
}
