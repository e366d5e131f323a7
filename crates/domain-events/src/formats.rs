//! Validated string types for the schema's format types (`timestamp`, `date`, `url`, `email`).
//!
//! Each keeps the exact text it was built from (nothing is re-formatted on the wire) and can only be
//! built from text that has the format, so a payload holding one is valid by construction.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

/// The text given for a format type did not have that format.
///
/// It names the format and the text's length, never the text: the value may be sensitive (an
/// email address), and these errors reach logs and dead-letter reasons.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid {format} ({length} character{})", if *length == 1 { "" } else { "s" })]
pub struct FormatError {
    /// The name of the format (`RFC 3339 timestamp`, `date`, `absolute URL`, `email address`).
    pub format: &'static str,
    /// How many characters the rejected text has.
    pub length: usize,
}

impl FormatError {
    fn new(format: &'static str, value: &str) -> Self {
        Self {
            format,
            length: value.chars().count(),
        }
    }
}

macro_rules! string_format {
    ($(#[$doc:meta])* $name:ident, $label:literal, $json_format:literal, $check:path) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Checks `text` and wraps it.
            pub fn parse(text: impl Into<String>) -> Result<Self, FormatError> {
                let text = text.into();
                if $check(&text) {
                    Ok(Self(text))
                } else {
                    Err(FormatError::new($label, &text))
                }
            }

            /// The text, exactly as given.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The text, exactly as given.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = FormatError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = FormatError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(s)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = FormatError;
            fn try_from(s: &str) -> Result<Self, Self::Error> {
                Self::parse(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                Self::parse(text).map_err(serde::de::Error::custom)
            }
        }

        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn inline_schema() -> bool {
                true
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({ "type": "string", "format": $json_format })
            }
        }
    };
}

string_format!(
    /// An RFC 3339 date and time (`2026-11-26T17:04:05.123Z`), schema type `timestamp`.
    Timestamp,
    "RFC 3339 timestamp",
    "date-time",
    is_rfc3339
);
string_format!(
    /// A calendar date (`2026-11-26`), schema type `date`.
    Date,
    "date (YYYY-MM-DD)",
    "date",
    is_date
);
string_format!(
    /// An absolute URI (`https://cdn.example/a.png`), schema type `url`.
    Url,
    "absolute URL",
    "uri",
    is_absolute_uri
);
string_format!(
    /// An email address (`someone@example.com`), schema type `email`.
    Email,
    "email address",
    "email",
    is_email
);

impl Timestamp {
    /// The current time in UTC with millisecond precision, as the envelope's `occurredAt` uses it.
    pub fn now() -> Self {
        Self::from_datetime(OffsetDateTime::now_utc())
    }

    /// Formats `at` in UTC with millisecond precision (`2026-11-26T17:04:05.123Z`).
    pub fn from_datetime(at: OffsetDateTime) -> Self {
        let at = at.to_offset(UtcOffset::UTC);
        if !(0..=9999).contains(&at.year()) {
            // Years outside 0..=9999 cannot be written with four digits; fall back to RFC 3339.
            return Self(at.format(&Rfc3339).unwrap_or_default());
        }
        // Written digit by digit into one exact-size allocation: every envelope takes this path,
        // and both `time`'s formatter and `write!` with padding cost several times more.
        fn digits(out: &mut Vec<u8>, value: u32, width: u32) {
            for place in (0..width).rev() {
                // `% 10` keeps each digit below 10, so the cast cannot truncate.
                out.push(b'0' + ((value / 10u32.pow(place)) % 10) as u8);
            }
        }
        let mut text = Vec::with_capacity(24);
        digits(&mut text, at.year().unsigned_abs(), 4);
        text.push(b'-');
        digits(&mut text, u32::from(u8::from(at.month())), 2);
        text.push(b'-');
        digits(&mut text, u32::from(at.day()), 2);
        text.push(b'T');
        digits(&mut text, u32::from(at.hour()), 2);
        text.push(b':');
        digits(&mut text, u32::from(at.minute()), 2);
        text.push(b':');
        digits(&mut text, u32::from(at.second()), 2);
        text.push(b'.');
        digits(&mut text, u32::from(at.millisecond()), 3);
        text.push(b'Z');
        // Only ASCII digits and separators were written.
        let text = String::from_utf8(text).unwrap_or_default();
        Self(text)
    }

    /// The same instant in the one form the envelope's `occurredAt` uses: RFC 3339 in UTC with
    /// exactly three fractional digits and `Z` ([`from_datetime`](Self::from_datetime)), so that
    /// every spelling of an instant gives one idempotency key. Digits below the millisecond are
    /// dropped. An instant whose UTC year has no four-digit form (before 0000 or after 9999) keeps
    /// its text as written.
    ///
    /// ```
    /// use domain_events::Timestamp;
    ///
    /// for text in ["2026-11-26T16:00:00Z", "2026-11-26T17:00:00+01:00", "2026-11-26T16:00:00.000Z"] {
    ///     let at = Timestamp::parse(text).unwrap();
    ///     assert_eq!(at.canonical().as_str(), "2026-11-26T16:00:00.000Z");
    /// }
    /// ```
    pub fn canonical(&self) -> Self {
        // In UTC first: the conversion fails (instead of panicking) past the last supported year.
        match self.to_datetime().checked_to_offset(UtcOffset::UTC) {
            Some(at) if (0..=9999).contains(&at.year()) => Self::from_datetime(at),
            _ => self.clone(),
        }
    }

    /// The instant this timestamp names.
    pub fn to_datetime(&self) -> OffsetDateTime {
        // Only text that parsed is ever stored, so this cannot fail; the epoch keeps it total.
        OffsetDateTime::parse(&self.0, &Rfc3339).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

impl From<OffsetDateTime> for Timestamp {
    fn from(at: OffsetDateTime) -> Self {
        Self::from_datetime(at)
    }
}

fn is_rfc3339(text: &str) -> bool {
    OffsetDateTime::parse(text, &Rfc3339).is_ok()
}

fn is_date(text: &str) -> bool {
    text.len() == 10 && time::Date::parse(text, format_description!("[year]-[month]-[day]")).is_ok()
}

/// An RFC 3986 URI with a scheme (what JSON Schema's `uri` format accepts), checked by the same
/// parser the `jsonschema` validators use, so Rust and the exported schema agree.
fn is_absolute_uri(text: &str) -> bool {
    fluent_uri::Uri::parse(text).is_ok()
}

/// An RFC 5321 address whose domain is a host name or an address literal, as JSON Schema's `email`
/// format checks it.
fn is_email(text: &str) -> bool {
    let Ok(address) = text.parse::<email_address::EmailAddress>() else {
        return false;
    };
    let domain = address.domain();
    if let Some(literal) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
        return match literal.get(..5) {
            Some(tag) if tag.eq_ignore_ascii_case("IPv6:") => {
                literal[5..].parse::<std::net::Ipv6Addr>().is_ok()
            }
            _ => literal.parse::<std::net::Ipv4Addr>().is_ok(),
        };
    }
    is_hostname(domain)
}

/// RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens.
fn is_hostname(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_errors_name_the_format_and_length_never_the_value() {
        let errors = [
            Email::parse("not-an-email-SECRET123").unwrap_err(),
            Url::parse("relative/SECRET123").unwrap_err(),
            Timestamp::parse("SECRET123").unwrap_err(),
            Date::parse("SECRET123").unwrap_err(),
        ];
        for error in errors {
            let shown = format!("{error} {error:?}");
            assert!(!shown.contains("SECRET123"), "{shown}");
            assert!(shown.contains(error.format), "{shown}");
        }
        let error = Email::parse("not-an-email-SECRET123").unwrap_err();
        assert_eq!(
            error.to_string(),
            "not a valid email address (22 characters)"
        );
        let value: Result<Email, _> = serde_json::from_str(r#""ä-SECRET123""#);
        let shown = value.unwrap_err().to_string();
        assert!(!shown.contains("SECRET123"), "{shown}");
    }

    #[test]
    fn timestamps_keep_their_text_and_reject_garbage() {
        let ts = Timestamp::parse("2026-11-26T17:04:05.123+01:00").unwrap();
        assert_eq!(ts.as_str(), "2026-11-26T17:04:05.123+01:00");
        assert!(Timestamp::parse("2026-11-26 17:04:05").is_err());
        assert!(Timestamp::parse("yesterday").is_err());
    }

    #[test]
    fn datetimes_are_written_in_utc_with_truncated_milliseconds() {
        use time::macros::datetime;
        let cases = [
            (
                datetime!(2026-11-26 17:04:05.123999 +01:00),
                "2026-11-26T16:04:05.123Z",
            ),
            (
                datetime!(0007-01-02 03:04:05 UTC),
                "0007-01-02T03:04:05.000Z",
            ),
            (
                datetime!(9999-12-31 23:59:59.999 UTC),
                "9999-12-31T23:59:59.999Z",
            ),
        ];
        for (at, want) in cases {
            let ts = Timestamp::from_datetime(at);
            assert_eq!(ts.as_str(), want);
            assert_eq!(
                ts.to_datetime(),
                at.to_offset(UtcOffset::UTC)
                    .replace_nanosecond(at.millisecond() as u32 * 1_000_000)
                    .unwrap()
            );
        }
    }

    #[test]
    fn canonical_timestamps_are_utc_milliseconds() {
        let cases = [
            ("2026-11-26T17:00:00+01:00", "2026-11-26T16:00:00.000Z"),
            ("2026-11-26T16:00:00.000Z", "2026-11-26T16:00:00.000Z"),
            ("2026-11-26T16:00:00.1Z", "2026-11-26T16:00:00.100Z"),
            ("2026-11-26T16:00:00.123999Z", "2026-11-26T16:00:00.123Z"),
            ("2026-11-27T00:30:00+01:00", "2026-11-26T23:30:00.000Z"),
            // No four-digit UTC year: kept as written rather than given an empty text.
            ("9999-12-31T23:30:00-01:00", "9999-12-31T23:30:00-01:00"),
            ("0000-01-01T00:30:00+01:00", "0000-01-01T00:30:00+01:00"),
        ];
        for (text, want) in cases {
            let at = Timestamp::parse(text).unwrap();
            assert_eq!(at.canonical().as_str(), want, "{text}");
            assert_eq!(at.as_str(), text, "the value itself keeps its text");
        }
    }

    #[test]
    fn now_is_utc_with_milliseconds() {
        let now = Timestamp::now();
        let text = now.as_str();
        assert_eq!(text.len(), "2026-11-26T17:04:05.123Z".len(), "{text}");
        assert!(text.ends_with('Z'));
        assert!(Timestamp::parse(text).is_ok());
    }

    #[test]
    fn dates_urls_and_emails() {
        assert!(Date::parse("2026-02-28").is_ok());
        assert!(Date::parse("2026-02-30").is_err());
        assert!(Date::parse("2026-2-3").is_err());
        assert!(Url::parse("https://cdn.example/a.png").is_ok());
        assert!(Url::parse("urn:isbn:0451450523").is_ok());
        assert!(Url::parse("/relative/path").is_err());
        assert!(Url::parse("https://with space").is_err());
        assert!(Email::parse("ops@example.com").is_ok());
        assert!(Email::parse("ops@localhost").is_ok());
        assert!(Email::parse("a..b@example.com").is_err());
        assert!(Email::parse("ops@exa_mple.com").is_err());
        assert!(Url::parse("http://[bad").is_err());
        assert!(Url::parse("https://example.com/%zz").is_err());
        assert!(Url::parse("https://example.com/a{b}").is_err());
        assert!(Email::parse("ops example.com").is_err());
        assert!(Email::parse("a@b@example.com").is_err());
    }

    #[test]
    fn serde_checks_the_format() {
        let ok: Url = serde_json::from_str("\"https://x.example\"").unwrap();
        assert_eq!(ok, "https://x.example");
        let err = serde_json::from_str::<Url>("\"nope\"").unwrap_err();
        assert!(
            err.to_string().contains("not a valid absolute URL"),
            "{err}"
        );
    }
}
