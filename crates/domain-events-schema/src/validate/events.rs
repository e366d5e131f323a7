//! Categories, events and their versions: names, version numbers, and what every version
//! declares (fields, idempotency key, correlation field).

use toml::Spanned;

use super::{At, Context};
use crate::diag::SourceFile;
use crate::model::{Category, Event, EventVersion};
use crate::raw::{Ordered, RawEvent, RawField, RawFile};
use crate::{ident, naming};

/// One version of an event as declared, with what it inherits from the event already filled in:
/// the input of [`Context::event_version`].
pub(super) struct VersionDecl<'a> {
    /// The event's (or the older version's) name, for messages.
    pub at: At<'a>,
    /// The Rust name prefix of its types (`ImageVariationStarted`, `ImageVariationStartedV1`).
    pub prefix: &'a str,
    /// Its version number.
    pub version: u32,
    /// Whether it is the version emitters produce.
    pub latest: bool,
    /// Its documentation.
    pub description: Option<&'a Spanned<String>>,
    /// Its `fields` table.
    pub fields: Option<&'a Spanned<Ordered<Spanned<RawField>>>>,
    /// Its idempotency-key template.
    pub key: Option<&'a Spanned<String>>,
    /// Its correlation field.
    pub correlation: Option<&'a Spanned<String>>,
}

impl Context<'_> {
    pub(super) fn category(&mut self, file: &SourceFile, raw: &RawFile) -> Option<Category> {
        let stem = file
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        // Without a usable `category`, checking goes on with the file name's.
        let (name, category_span) = match &raw.category {
            Some(category) => (category.get_ref().clone(), category.span()),
            None => {
                self.diags.error_help(
                    file,
                    0..0,
                    "the file declares no `category`",
                    format!("add `category = \"{stem}\"` at the top of the file"),
                );
                (stem.clone(), 0..0)
            }
        };
        let name = &name;
        if raw.category.is_none() {
            // Reported above.
        } else if !ident::is_snake_case(name) {
            self.diags.error_help(
                file,
                category_span.clone(),
                format!("category `{name}` is not lower snake_case"),
                "use lowercase letters, digits and single underscores, starting with a letter",
            );
        } else if *name != stem {
            self.diags.error_help(
                file,
                category_span.clone(),
                format!("category `{name}` does not match the file name `{stem}.toml`"),
                format!("rename the file to `{name}.toml` or set `category = \"{stem}\"`"),
            );
        }
        // A bad version is reported; checking goes on with version 1 to find the other problems.
        let default_version = raw
            .version
            .as_ref()
            .map_or(Some(1), |v| self.version_number(file, v))
            .unwrap_or(1);

        // Named types declared in this file.
        for (type_name, ty) in &raw.types.0 {
            if self
                .named
                .get(type_name.get_ref())
                .is_some_and(|(f, _)| *f == file.display)
            {
                self.named_type(file, name, type_name, ty);
            }
        }

        let Some(events) = &raw.events else {
            self.diags.error_help(
                file,
                category_span,
                format!("category `{name}` declares no events"),
                "add an `[events.<name>]` table with its `fields`",
            );
            return None;
        };
        if events.get_ref().0.is_empty() {
            self.diags.error_help(
                file,
                events.span(),
                "the `events` table is empty",
                "declare at least one event",
            );
        }
        let mut out = Vec::new();
        for (event_name, event) in &events.get_ref().0 {
            if let Some(e) = self.event(file, raw, name, default_version, event_name, event) {
                out.push(e);
            }
        }
        Some(Category {
            name: name.clone(),
            description: raw.description.as_ref().map(|d| d.get_ref().clone()),
            file: file.path.clone(),
            events: out,
        })
    }

    pub(super) fn version_number(&mut self, file: &SourceFile, v: &Spanned<i64>) -> Option<u32> {
        match u32::try_from(*v.get_ref()) {
            Ok(n) if n >= 1 => Some(n),
            _ => {
                self.diags.error_help(
                    file,
                    v.span(),
                    format!("version {} is not a positive integer", v.get_ref()),
                    "versions start at 1 and grow by one with every breaking change",
                );
                None
            }
        }
    }

    pub(super) fn event(
        &mut self,
        file: &SourceFile,
        raw_file: &RawFile,
        category: &str,
        default_version: u32,
        name: &Spanned<String>,
        raw: &RawEvent,
    ) -> Option<Event> {
        let event_at = At {
            file,
            span: name.span(),
        };
        // A bad name or version is reported; the event's body is still checked.
        let name_ok = ident::is_snake_case(name.get_ref());
        if !name_ok {
            self.diags.error_help(
                file,
                name.span(),
                format!("event name `{}` is not lower snake_case", name.get_ref()),
                format!("name it like `{}`", heck_snake(name.get_ref())),
            );
        }
        let variant = naming::event_variant(category, name.get_ref());
        let type_string = format!("{category}:{}", name.get_ref());
        let latest_version = match &raw.version {
            Some(v) => self.version_number(file, v).unwrap_or(default_version),
            None => default_version,
        };
        let mut ok = name_ok
            && self.claim_name(
                &naming::payload_struct(&naming::version_prefix(&variant, latest_version, true)),
                file,
                name.span(),
                &format!("event `{type_string}`"),
            );

        let correlation = raw.correlation.as_ref().or(raw_file.correlation.as_ref());
        let mut versions = Vec::new();
        let latest = self.event_version(VersionDecl {
            at: event_at,
            prefix: &variant,
            version: latest_version,
            latest: true,
            description: raw.description.as_ref(),
            fields: raw.fields.as_ref(),
            key: raw.idempotency_key.as_ref(),
            correlation,
        });
        for (number, old) in &raw.versions.0 {
            let parsed = number
                .get_ref()
                .parse::<u32>()
                .ok()
                .filter(|n| *n >= 1 && *n < latest_version);
            let Some(n) = parsed else {
                self.diags.error_help(
                    file,
                    number.span(),
                    format!("older version `{}` must be a whole number from 1 to {}", number.get_ref(), latest_version - 1),
                    format!("the event's current version is {latest_version}; list only earlier versions under `versions`"),
                );
                ok = false;
                continue;
            };
            let prefix = naming::version_prefix(&variant, n, false);
            ok &= self.claim_name(
                &naming::payload_struct(&prefix),
                file,
                number.span(),
                &format!("version {n} of `{type_string}`"),
            );
            // An older version inherits what it does not set from the event.
            let version = self.event_version(VersionDecl {
                at: At {
                    file,
                    span: number.span(),
                },
                prefix: &prefix,
                version: n,
                latest: false,
                description: old.description.as_ref().or(raw.description.as_ref()),
                fields: old.fields.as_ref(),
                key: old
                    .idempotency_key
                    .as_ref()
                    .or(raw.idempotency_key.as_ref()),
                correlation: old.correlation.as_ref().or(correlation),
            });
            match version {
                Some(v) => versions.push(v),
                None => ok = false,
            }
        }
        let latest = latest?;
        versions.push(latest);
        versions.sort_by_key(|v| v.version);
        if !ok {
            return None;
        }
        Some(Event {
            category: category.to_owned(),
            name: name.get_ref().clone(),
            type_string,
            variant,
            description: raw.description.as_ref().map(|d| d.get_ref().clone()),
            deprecated: raw.deprecated,
            versions,
        })
    }

    /// Checks one version of an event: its fields, idempotency key and correlation field.
    pub(super) fn event_version(&mut self, decl: VersionDecl<'_>) -> Option<EventVersion> {
        let VersionDecl {
            at,
            prefix,
            version,
            latest,
            description,
            fields,
            key,
            correlation,
        } = decl;
        let file = at.file;
        let Some(raw_fields) = fields else {
            self.diags.error_help(
                file,
                at.span.clone(),
                "event declares no `fields`",
                "add a `fields` table; an event needs at least the fields its idempotency key uses",
            );
            return None;
        };
        let category = file
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let fields = self.fields(file, &category, prefix, raw_fields);
        let key = match key {
            Some(k) => self.key_template(file, k, &fields),
            None => {
                self.diags.error_help(
                    file,
                    at.span.clone(),
                    "event declares no `idempotency_key`",
                    "add e.g. `idempotency_key = \"<prefix>:{<id field>}\"` naming the fields that make an emission unique",
                );
                None
            }
        };
        let correlation = match correlation {
            Some(c) => self.correlation(file, c, &fields),
            None => {
                self.diags.error_help(
                    file,
                    at.span.clone(),
                    "event has no correlation field",
                    "set `correlation = \"<field>\"` on the event, or once at the top of the file for all its events",
                );
                None
            }
        };
        Some(EventVersion {
            version,
            latest,
            description: description.map(|d| d.get_ref().clone()),
            fields: fields.complete()?,
            key: key?,
            correlation: correlation?,
        })
    }
}

fn heck_snake(name: &str) -> String {
    heck::ToSnakeCase::to_snake_case(name)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    #[test]
    fn an_event_with_a_bad_name_still_has_its_body_checked() {
        let text = "category = \"a\"\ncorrelation = \"id\"\n[events.HappenedNow]\n\
                    idempotency_key = \"a:{idd}\"\nfields = { id = \"strng\" }\n";
        let out = errors(&[("a.toml", text)]);
        assert!(
            out.contains("event name `HappenedNow` is not lower snake_case"),
            "{out}"
        );
        assert!(out.contains("unknown type `strng`"), "{out}");
        assert!(out.contains("references `idd`"), "{out}");
    }

    #[test]
    fn a_file_without_category_is_checked_as_its_file_name() {
        let text = "correlation = \"id\"\n[events.happened]\n\
                    idempotency_key = \"a:{id}\"\nfields = { id = \"uuidd\" }\n";
        let out = errors(&[("a.toml", text)]);
        assert!(
            out.contains("a.toml:1:1: error: the file declares no `category`"),
            "{out}"
        );
        assert!(out.contains("add `category = \"a\"`"), "{out}");
        assert!(out.contains("unknown type `uuidd`"), "{out}");
    }

    #[test]
    fn versions_and_required_keys() {
        let text = "category = \"a\"\nversion = 2\n[events.happened]\nfields = { id = \"string\" }\n\
                    [events.happened.versions.2]\nfields = { id = \"string\" }\n";
        let out = errors(&[("a.toml", text)]);
        assert!(out.contains("event declares no `idempotency_key`"), "{out}");
        assert!(out.contains("event has no correlation field"), "{out}");
        assert!(
            out.contains("older version `2` must be a whole number from 1 to 1"),
            "{out}"
        );
    }

    #[test]
    fn an_older_version_inherits_key_and_correlation() {
        let text = "category = \"a\"\ncorrelation = \"id\"\nversion = 2\n[events.happened]\n\
                    idempotency_key = \"a:{id}\"\nfields = { id = \"string\", n = \"int\" }\n\
                    [events.happened.versions.1]\nfields = { id = \"string\" }\n";
        let catalog = catalog(&[("a.toml", text)]);
        let event = catalog.events().next().unwrap();
        assert_eq!(event.versions.len(), 2);
        assert_eq!(event.versions[0].key.source, "a:{id}");
        assert_eq!(event.versions[0].correlation, "id");
    }
}
