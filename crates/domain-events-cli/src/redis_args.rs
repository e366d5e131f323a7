//! The options every Redis command shares ([`RedisArgs`]), and what they share besides: the
//! async runtime they run on, category names from the command line, compact JSON lines.

use std::fmt;
use std::future::Future;

use domain_events::EventInfo;
use domain_events_redis::{DEFAULT_KEY_PREFIX, RedisConfig, redact_url};
use domain_events_schema::Catalog;

use crate::{Error, SchemaArgs};

/// The environment variable `--redis` falls back to. Prefer it to the option: a command line is
/// visible to every user of the machine, and the URL may hold a password.
pub const REDIS_URL_ENV: &str = "DOMAIN_EVENTS_REDIS_URL";

/// Where Redis is and how the keys there are named; flattened into `emit`, `tail` and `dlq`.
///
/// `Debug` shows the URL with its password replaced by `***`.
#[derive(Clone, clap::Args)]
pub struct RedisArgs {
    /// Redis URL, like redis://user:password@host:6379/0 (user, password, port and database
    /// optional), or rediss:// for TLS
    #[arg(
        long = "redis",
        value_name = "URL",
        env = REDIS_URL_ENV,
        hide_env_values = true
    )]
    pub url: String,

    /// Prefix of every Redis key (streams are `<PREFIX>:{<category>}`)
    #[arg(long, value_name = "PREFIX", default_value = DEFAULT_KEY_PREFIX)]
    pub key_prefix: String,
}

impl RedisArgs {
    /// The client configuration; an invalid URL is an error that shows the URL redacted.
    pub fn config(&self) -> Result<RedisConfig, Error> {
        Ok(RedisConfig::new(&self.url)?.key_prefix(self.key_prefix.clone()))
    }

    /// The client configuration with the partition counts Redis records for the categories of
    /// `events` ([`RedisConfig::with_recorded_partitions`]): the tool never chooses a count, so it
    /// cannot disagree with the services. Call inside the Tokio runtime.
    pub(crate) async fn partitioned_config(
        &self,
        events: &[EventInfo],
    ) -> Result<RedisConfig, Error> {
        Ok(self.config()?.with_recorded_partitions(events).await?)
    }
}

/// Every version of the events of `categories` in `catalog`, described as the runtime describes a
/// generated event set's ([`EventInfo`]): what the recorded partition counts are checked against.
pub(crate) fn event_infos(catalog: &Catalog, categories: &[impl AsRef<str>]) -> Vec<EventInfo> {
    // `EventInfo` holds `&'static str`, as generated code has them. The tool runs one command and
    // exits, so leaking these few short strings costs nothing.
    fn leak(text: &str) -> &'static str {
        Box::leak(text.to_owned().into_boxed_str())
    }
    catalog
        .events()
        .filter(|event| categories.iter().any(|c| c.as_ref() == event.category))
        .flat_map(|event| {
            event.versions.iter().map(|version| EventInfo {
                event_type: leak(&event.type_string),
                category: leak(&event.category),
                name: leak(&event.name),
                version: version.version,
                latest: version.latest,
                key_template: leak(&version.key.source),
                correlation_field: leak(&version.correlation),
                deprecated: event.deprecated,
                description: leak(version.description.as_deref().unwrap_or_default()),
            })
        })
        .collect()
}

impl fmt::Debug for RedisArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisArgs")
            .field("url", &redact_url(&self.url))
            .field("key_prefix", &self.key_prefix)
            .finish()
    }
}

/// Runs `future` to completion on a single-threaded Tokio runtime: the Redis commands are one-shot
/// and need no more.
pub(crate) fn block_on<F: Future>(future: F) -> Result<F::Output, Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    Ok(runtime.block_on(future))
}

/// Checks a `--category` value: a non-empty name without the `{`, `}` and `:` that delimit keys.
pub(crate) fn parse_category(name: &str) -> Result<String, String> {
    if name.is_empty() {
        return Err("a category name cannot be empty".into());
    }
    if name.contains(['{', '}', ':']) || name.chars().any(char::is_whitespace) {
        return Err(format!(
            "`{name}` is not a category name (no `{{`, `}}`, `:` or spaces)"
        ));
    }
    Ok(name.to_owned())
}

/// The categories a command works on: those given with `--category`, else every category of the
/// schema folder (which is then loaded and must be valid).
pub(crate) fn categories(given: &[String], schema: &SchemaArgs) -> Result<Vec<String>, Error> {
    if !given.is_empty() {
        let mut names = given.to_vec();
        names.sort();
        names.dedup();
        return Ok(names);
    }
    let catalog = schema.load()?;
    Ok(catalog.categories.into_iter().map(|c| c.name).collect())
}

/// `json` (valid JSON text) without whitespace between tokens, so that it fits on one line; the
/// order of keys and the text of every value stay as they are.
pub(crate) fn compact_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_json_drops_only_whitespace_between_tokens() {
        let json = "{\n  \"b\": [1, 2.50, true],\n  \"a\": \"x y \\\" z\\\\\",\t\"c\" : {}\r\n}";
        let compact = compact_json(json);
        assert_eq!(compact, r#"{"b":[1,2.50,true],"a":"x y \" z\\","c":{}}"#);
        let before: serde_json::Value = serde_json::from_str(json).expect("valid");
        let after: serde_json::Value = serde_json::from_str(&compact).expect("valid");
        assert_eq!(before, after);
    }

    #[test]
    fn categories_are_checked() {
        assert_eq!(parse_category("image").as_deref(), Ok("image"));
        for bad in ["", "a:b", "{x}", "a b"] {
            assert!(parse_category(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_hides_the_password() {
        let args = RedisArgs {
            url: "redis://app:s3cret@cache:6379".into(),
            key_prefix: DEFAULT_KEY_PREFIX.into(),
        };
        let shown = format!("{args:?}");
        assert!(
            !shown.contains("s3cret") && shown.contains("app:***@cache"),
            "{shown}"
        );
    }

    #[test]
    fn debug_and_errors_hide_passwords_with_url_delimiters() {
        for url in [
            "redis://:Pa/ssWORD@127.0.0.1:6379",
            "redis://app:pä/ss?w#o@r:d%@127.0.0.1:6379/0",
            "rediss://app:pä/ss?w#o@r:d%@127.0.0.1:badport",
            "redis://user:Lim1ted:Pw@/#x@host",
        ] {
            let args = RedisArgs {
                url: url.into(),
                key_prefix: DEFAULT_KEY_PREFIX.into(),
            };
            let mut shown = format!("{args:?}");
            if let Err(error) = args.config() {
                shown.push_str(&format!("{error} {error:?} {}", error.report()));
            }
            for trace in ["ssWORD", "ss?w", "r:d", "Lim1ted", "Pw@", "#x"] {
                assert!(!shown.contains(trace), "{url}: {shown}");
            }
        }
    }
}
