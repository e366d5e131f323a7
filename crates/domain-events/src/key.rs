//! How field values are written into idempotency keys and correlation ids.
//!
//! A key template's `{field}` becomes the value's canonical text ([`KeyPart::write_key`]) with
//! `%` written as `%25` and `:` written as `%3A` ([`escape_key_value`]); literal text is copied as
//! it is. The schema language requires literal text containing `:` between any two references.
//!
//! Why two payloads share a key only when the fields the template names are equal: with `:`
//! escaped in values and a `:` in every literal between two references, the colons of the key are
//! exactly those of the literals, so the key splits back into its values (and, `%` being escaped
//! too, each escaped value back into its canonical text).

use crate::formats::{Date, Email, Timestamp, Url};

/// A value that may appear in a key template (`{field}`): its canonical text form.
///
/// Canonical forms: strings (and URLs, emails, enum values) as given, integers in decimal, `true`
/// or `false`, UUIDs lower-case hyphenated, dates `YYYY-MM-DD`, timestamps RFC 3339 in UTC with
/// exactly three fractional digits and `Z` ([`Timestamp::canonical`]). A key holds this text
/// escaped ([`write_key_part`]).
pub trait KeyPart {
    /// Appends the value's canonical text to `out`, not escaped.
    fn write_key(&self, out: &mut String);

    /// Appends the value's text as a correlation id carries it: the canonical text, except that a
    /// timestamp keeps the text it was written with.
    fn write_correlation(&self, out: &mut String) {
        self.write_key(out);
    }
}

/// Appends what a key template's `{field}` becomes for `value`: its canonical text
/// ([`KeyPart::write_key`]) escaped by [`escape_key_value`].
///
/// ```
/// use domain_events::{Timestamp, write_key_part};
///
/// let mut key = String::from("seo_text:");
/// write_key_part("post:42", &mut key);
/// key.push(':');
/// write_key_part("en", &mut key);
/// assert_eq!(key, "seo_text:post%3A42:en");
///
/// let mut key = String::new();
/// write_key_part(&Timestamp::parse("2026-11-26T17:00:00+01:00").unwrap(), &mut key);
/// assert_eq!(key, "2026-11-26T16%3A00%3A00.000Z");
/// ```
pub fn write_key_part<T: KeyPart + ?Sized>(value: &T, out: &mut String) {
    let start = out.len();
    value.write_key(out);
    // Most values hold neither character: they are written once, in place.
    if out.as_bytes()[start..]
        .iter()
        .any(|b| matches!(b, b'%' | b':'))
    {
        let text = out.split_off(start);
        escape_key_value(&text, out);
    }
}

/// Appends `text` to `out` with `%` written as `%25` and `:` written as `%3A`, everything else as
/// it is. Escaping `%` too makes this reversible, so two different texts never give the same
/// result.
///
/// ```
/// let mut out = String::new();
/// domain_events::escape_key_value("a:b%3Ac", &mut out);
/// assert_eq!(out, "a%3Ab%253Ac");
/// ```
pub fn escape_key_value(text: &str, out: &mut String) {
    let mut rest = text;
    while let Some(i) = rest.find(['%', ':']) {
        out.push_str(&rest[..i]);
        out.push_str(if rest.as_bytes()[i] == b'%' {
            "%25"
        } else {
            "%3A"
        });
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
}

impl KeyPart for String {
    fn write_key(&self, out: &mut String) {
        out.push_str(self);
    }
}

impl KeyPart for str {
    fn write_key(&self, out: &mut String) {
        out.push_str(self);
    }
}

impl KeyPart for Timestamp {
    fn write_key(&self, out: &mut String) {
        out.push_str(self.canonical().as_str());
    }

    fn write_correlation(&self, out: &mut String) {
        out.push_str(self.as_str());
    }
}

macro_rules! key_as_str {
    ($($t:ty),*) => {$(
        impl KeyPart for $t {
            fn write_key(&self, out: &mut String) {
                out.push_str(self.as_str());
            }
        }
    )*};
}
// A date is checked to be `YYYY-MM-DD` when built, so its text is already canonical.
key_as_str!(Date, Url, Email);

macro_rules! key_display {
    ($($t:ty),*) => {$(
        impl KeyPart for $t {
            fn write_key(&self, out: &mut String) {
                use std::fmt::Write as _;
                // Writing into a String cannot fail.
                let _ = write!(out, "{self}");
            }
        }
    )*};
}
// `Uuid`'s `Display` is the lower-case hyphenated form.
key_display!(i64, u64, bool, uuid::Uuid);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_render_canonically() {
        let mut s = String::new();
        "var-1".write_key(&mut s);
        s.push(':');
        7u64.write_key(&mut s);
        s.push(':');
        (-3i64).write_key(&mut s);
        s.push(':');
        true.write_key(&mut s);
        s.push(':');
        Timestamp::parse("2026-11-26T17:00:00Z")
            .unwrap()
            .write_key(&mut s);
        assert_eq!(s, "var-1:7:-3:true:2026-11-26T17:00:00.000Z");
    }

    #[test]
    fn correlation_ids_keep_a_timestamp_as_written_and_are_not_escaped() {
        let at = Timestamp::parse("2026-11-26T17:00:00+01:00").unwrap();
        assert_eq!(
            crate::__private::correlation(&at),
            "2026-11-26T17:00:00+01:00"
        );
        assert_eq!(crate::__private::correlation("post:42"), "post:42");
        let id = uuid::Uuid::parse_str("0193A6C4-7B7E-7C1E-9D0A-5F2B8E4A1C33").unwrap();
        assert_eq!(
            crate::__private::correlation(&id),
            "0193a6c4-7b7e-7c1e-9d0a-5f2b8e4a1c33"
        );
    }

    /// The key part a template's `{field}` contributes, as generated code writes it.
    fn part<T: KeyPart + ?Sized>(value: &T) -> String {
        let mut out = String::new();
        crate::__private::key_part(value, &mut out);
        out
    }

    /// `seo_text:{contentId}:{locale}` of a payload, as generated code builds it.
    fn seo_text(content_id: &str, locale: &str) -> String {
        let mut key = String::from("seo_text:");
        crate::__private::key_part(content_id, &mut key);
        key.push(':');
        crate::__private::key_part(locale, &mut key);
        key
    }

    #[test]
    fn values_with_colons_cannot_move_a_separator() {
        let (a, b) = (seo_text("post:42", "en"), seo_text("post", "42:en"));
        assert_ne!(a, b, "two different payloads share one key");
        assert_eq!(a, "seo_text:post%3A42:en");
        assert_eq!(b, "seo_text:post:42%3Aen");
    }

    #[test]
    fn percent_and_colon_are_escaped_and_nothing_else() {
        assert_eq!(part("var-123"), "var-123");
        assert_eq!(part("a:b"), "a%3Ab");
        // `%` is escaped too, so an escaped colon in the input stays distinct from a raw one.
        assert_eq!(part("a%3Ab"), "a%253Ab");
        assert_ne!(part("a%3Ab"), part("a:b"));
        assert_eq!(part("%:%"), "%25%3A%25");
        assert_eq!(part("ünï/😀 {x}"), "ünï/😀 {x}");
        assert_eq!(part(""), "");
        let url = Url::parse("https://cdn.example/a.png").unwrap();
        assert_eq!(part(&url), "https%3A//cdn.example/a.png");
    }

    #[test]
    fn every_pair_of_short_values_gets_its_own_key() {
        // All texts of up to three characters from the characters that matter to the escaping.
        let mut texts = vec![String::new()];
        for len in 1..=3 {
            let shorter: Vec<String> = texts
                .iter()
                .filter(|t| t.len() == len - 1)
                .cloned()
                .collect();
            for text in shorter {
                for c in ['a', ':', '%', '3', 'A'] {
                    texts.push(format!("{text}{c}"));
                }
            }
        }
        assert_eq!(texts.len(), 1 + 5 + 25 + 125);
        let mut keys = std::collections::HashSet::new();
        for a in &texts {
            for b in &texts {
                assert!(keys.insert(seo_text(a, b)), "({a:?}, {b:?}) shares a key");
            }
        }
    }

    #[test]
    fn one_instant_gives_one_key_however_it_is_written() {
        let spellings = [
            "2026-11-26T16:00:00Z",
            "2026-11-26T17:00:00+01:00",
            "2026-11-26T16:00:00.000Z",
            "2026-11-26t16:00:00.000000z",
            "2026-11-26T11:30:00-04:30",
        ];
        for text in spellings {
            let at = Timestamp::parse(text).unwrap();
            assert_eq!(part(&at), "2026-11-26T16%3A00%3A00.000Z", "{text}");
        }
        // Milliseconds count; a different instant gives a different key.
        let later = Timestamp::parse("2026-11-26T16:00:00.001Z").unwrap();
        assert_eq!(part(&later), "2026-11-26T16%3A00%3A00.001Z");
    }

    #[test]
    fn other_values_are_written_canonically() {
        let id = uuid::Uuid::parse_str("0193A6C4-7B7E-7C1E-9D0A-5F2B8E4A1C33").unwrap();
        assert_eq!(part(&id), "0193a6c4-7b7e-7c1e-9d0a-5f2b8e4a1c33");
        assert_eq!(part(&-3i64), "-3");
        assert_eq!(part(&7u64), "7");
        assert_eq!(part(&false), "false");
        assert_eq!(part(&Date::parse("2026-02-28").unwrap()), "2026-02-28");
        let email = Email::parse("ops@example.com").unwrap();
        assert_eq!(part(&email), "ops@example.com");
    }
}
