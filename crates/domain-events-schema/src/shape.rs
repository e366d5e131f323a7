//! The keys each table of a schema file accepts, checked on the parsed TOML tree before it becomes
//! the raw model, so that one misspelled key or wrongly typed value does not hide every other
//! problem of the file.
//!
//! Every unknown key is reported (with the closest known key as "did you mean"), every value of
//! the wrong TOML type is reported, and both are taken out of the tree; a misspelled key whose
//! suggestion is not set in the same table is read as the suggested key, so the checks of its
//! value still run. What is left deserializes into [`RawFile`](crate::raw::RawFile) cleanly.

use std::borrow::Cow;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::diag::{Diagnostics, SourceFile, did_you_mean};

/// The TOML type a key's value must have.
#[derive(Clone, Copy)]
enum Expect {
    Str,
    Int,
    Bool,
    Number,
    StrList,
    Table,
}

impl Expect {
    fn accepts(self, v: &DeValue<'_>) -> bool {
        match self {
            Expect::Str => v.is_str(),
            Expect::Int => v.is_integer(),
            Expect::Bool => v.is_bool(),
            Expect::Number => v.is_integer() || v.is_float(),
            Expect::StrList => v.is_array(),
            Expect::Table => v.is_table(),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Expect::Str => "a string",
            Expect::Int => "an integer",
            Expect::Bool => "`true` or `false`",
            Expect::Number => "a number",
            Expect::StrList => "a list of strings",
            Expect::Table => "a table",
        }
    }
}

type Keys = &'static [(&'static str, Expect)];

const FILE_KEYS: Keys = &[
    ("category", Expect::Str),
    ("description", Expect::Str),
    ("correlation", Expect::Str),
    ("version", Expect::Int),
    ("events", Expect::Table),
    ("types", Expect::Table),
];

const EVENT_KEYS: Keys = &[
    ("description", Expect::Str),
    ("idempotency_key", Expect::Str),
    ("correlation", Expect::Str),
    ("version", Expect::Int),
    ("deprecated", Expect::Bool),
    ("fields", Expect::Table),
    ("versions", Expect::Table),
];

const VERSION_KEYS: Keys = &[
    ("description", Expect::Str),
    ("idempotency_key", Expect::Str),
    ("correlation", Expect::Str),
    ("fields", Expect::Table),
];

const TYPE_KEYS: Keys = &[
    ("description", Expect::Str),
    ("fields", Expect::Table),
    ("values", Expect::StrList),
];

const FIELD_KEYS: Keys = &[
    ("type", Expect::Str),
    ("description", Expect::Str),
    ("deprecated", Expect::Bool),
    ("sensitive", Expect::Bool),
    ("values", Expect::StrList),
    ("min", Expect::Number),
    ("max", Expect::Number),
    ("min_length", Expect::Int),
    ("max_length", Expect::Int),
    ("pattern", Expect::Str),
    ("min_items", Expect::Int),
    ("max_items", Expect::Int),
];

/// Checks the whole file: reports every unknown key and wrongly typed value, and removes them.
pub(crate) fn check_file(file: &SourceFile, root: &mut DeTable<'_>, diags: &mut Diagnostics) {
    let mut cx = Shape { file, diags };
    cx.table(root, FILE_KEYS, "the top level of the file");
    if let Some(events) = root.get_mut("events") {
        cx.entries(events.get_mut(), "an event", |cx, event| {
            cx.table(event, EVENT_KEYS, "an `[events.<name>]` table");
            cx.fields(event);
            if let Some(versions) = event.get_mut("versions") {
                cx.entries(versions.get_mut(), "an older version", |cx, version| {
                    cx.table(
                        version,
                        VERSION_KEYS,
                        "an `[events.<name>.versions.<n>]` table",
                    );
                    cx.fields(version);
                });
            }
        });
    }
    if let Some(types) = root.get_mut("types") {
        cx.entries(types.get_mut(), "a type", |cx, ty| {
            cx.table(ty, TYPE_KEYS, "a `[types.<Name>]` table");
            cx.fields(ty);
        });
    }
}

struct Shape<'a> {
    file: &'a SourceFile,
    diags: &'a mut Diagnostics,
}

impl Shape<'_> {
    /// Checks the keys of `table` against `known`, in place.
    fn table(&mut self, table: &mut DeTable<'_>, known: Keys, what: &str) {
        let present: Vec<String> = table.keys().map(|k| k.get_ref().to_string()).collect();
        let entries = std::mem::take(table);
        for (key, mut value) in entries {
            let name = key.get_ref().to_string();
            let (key, expect) = match known.iter().find(|(k, _)| *k == name) {
                Some((_, expect)) => (key, *expect),
                None => {
                    let suggestion = did_you_mean(&name, known.iter().map(|(k, _)| *k));
                    let help = match suggestion {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!(
                            "{what} accepts {}",
                            known
                                .iter()
                                .map(|(k, _)| format!("`{k}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    };
                    self.diags.error_help(
                        self.file,
                        key.span(),
                        format!("unknown key `{name}` in {what}"),
                        help,
                    );
                    // Read the value as the key it was probably meant to be, unless that key is
                    // also set: its value is still checked, and nothing is reported missing.
                    match suggestion.filter(|s| !present.iter().any(|p| p == s)) {
                        Some(s) => {
                            let expect = known
                                .iter()
                                .find(|(k, _)| *k == s)
                                .map_or(Expect::Str, |(_, e)| *e);
                            (Spanned::new(key.span(), Cow::Borrowed(s)), expect)
                        }
                        None => continue,
                    }
                }
            };
            if !expect.accepts(value.get_ref()) {
                self.wrong_type(&key, &value, expect);
                continue;
            }
            if let (Expect::StrList, DeValue::Array(items)) = (expect, value.get_mut())
                && let Some(bad) = items.iter().find(|v| !v.get_ref().is_str())
            {
                self.diags.error_help(
                    self.file,
                    bad.span(),
                    format!(
                        "`{}` holds {}, but it is a list of strings",
                        key.get_ref(),
                        article(bad.get_ref().type_str())
                    ),
                    "write every value in double quotes",
                );
                continue;
            }
            table.insert(key, value);
        }
    }

    fn wrong_type(&mut self, key: &Spanned<Cow<'_, str>>, value: &Spanned<DeValue<'_>>, e: Expect) {
        self.diags.error_help(
            self.file,
            value.span(),
            format!(
                "`{}` must be {}, not {}",
                key.get_ref(),
                e.label(),
                article(value.get_ref().type_str())
            ),
            "see docs/schema-language.md for the keys each table accepts",
        );
    }

    /// Runs `check` on every entry of a table whose values must be tables themselves.
    fn entries(
        &mut self,
        value: &mut DeValue<'_>,
        what: &str,
        mut check: impl FnMut(&mut Self, &mut DeTable<'_>),
    ) {
        let DeValue::Table(table) = value else { return };
        let entries = std::mem::take(table);
        for (key, mut value) in entries {
            let span = value.span();
            match value.get_mut() {
                DeValue::Table(inner) => check(self, inner),
                other => {
                    self.diags.error_help(
                        self.file,
                        span,
                        format!(
                            "`{}` must be a table describing {what}, not {}",
                            key.get_ref(),
                            article(other.type_str())
                        ),
                        "see docs/schema-language.md for the keys each table accepts",
                    );
                    continue;
                }
            }
            table.insert(key, value);
        }
    }

    /// Checks the `fields` of an event, version or type: each is a type string or a table.
    fn fields(&mut self, owner: &mut DeTable<'_>) {
        let Some(fields) = owner.get_mut("fields") else {
            return;
        };
        let DeValue::Table(table) = fields.get_mut() else {
            return;
        };
        let entries = std::mem::take(table);
        for (key, mut value) in entries {
            let span = value.span();
            match value.get_mut() {
                DeValue::String(_) => {}
                DeValue::Table(inner) => self.table(inner, FIELD_KEYS, "a field's table"),
                other => {
                    self.diags.error_help(
                        self.file,
                        span,
                        format!(
                            "field `{}` must be a type string or a table, not {}",
                            key.get_ref(),
                            article(other.type_str())
                        ),
                        "write e.g. `name = \"string\"` or `name = { type = \"string\" }`",
                    );
                    continue;
                }
            }
            table.insert(key, value);
        }
    }
}

fn article(type_str: &str) -> String {
    match type_str.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => format!("an {type_str}"),
        _ => format!("a {type_str}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> (String, String) {
        let file = SourceFile::new("x.toml".into(), "x.toml".into(), text.into());
        let mut diags = Diagnostics::new();
        let mut root = DeTable::parse(text).unwrap().into_inner();
        check_file(&file, &mut root, &mut diags);
        let kept = format!("{:?}", root.keys().map(|k| k.get_ref()).collect::<Vec<_>>());
        let out = diags
            .finish()
            .err()
            .map(|d| d.to_string())
            .unwrap_or_default();
        (out, kept)
    }

    #[test]
    fn every_unknown_key_is_named_with_a_suggestion() {
        let (out, kept) = check(
            "category = \"a\"\ncorelation = \"x\"\nzzz = 1\n[events.e]\nidempotency_kye = \"k\"\n\
             fields = { x = { type = \"string\", descripton = \"d\" } }\n",
        );
        assert!(
            out.contains("x.toml:2:1: error: unknown key `corelation`"),
            "{out}"
        );
        assert!(out.contains("did you mean `correlation`?"), "{out}");
        assert!(
            out.contains("x.toml:3:1: error: unknown key `zzz`"),
            "{out}"
        );
        assert!(
            out.contains("the top level of the file accepts `category`"),
            "{out}"
        );
        assert!(out.contains("did you mean `idempotency_key`?"), "{out}");
        assert!(out.contains("did you mean `description`?"), "{out}");
        // The misspelled key is read as the suggested one, the unknown one is dropped.
        assert!(kept.contains("\"correlation\""), "{kept}");
        assert!(!kept.contains("zzz"), "{kept}");
    }

    #[test]
    fn a_misspelling_next_to_the_real_key_is_only_reported() {
        let (out, kept) = check("category = \"a\"\ncategroy = \"b\"\n");
        assert!(out.contains("unknown key `categroy`"), "{out}");
        assert_eq!(kept, "[\"category\"]");
    }

    #[test]
    fn values_of_the_wrong_type_are_reported_and_dropped() {
        let (out, kept) = check(
            "category = \"a\"\nversion = \"two\"\n[events.e]\ndeprecated = \"yes\"\n\
             fields = { x = 3, y = { type = \"enum\", values = [\"a\", 1] } }\n",
        );
        assert!(
            out.contains("`version` must be an integer, not a string"),
            "{out}"
        );
        assert!(
            out.contains("`deprecated` must be `true` or `false`, not a string"),
            "{out}"
        );
        assert!(
            out.contains("field `x` must be a type string or a table, not an integer"),
            "{out}"
        );
        assert!(
            out.contains("`values` holds an integer, but it is a list of strings"),
            "{out}"
        );
        assert!(!kept.contains("version"), "{kept}");
    }
}
