//! The Redis key layout of docs/contract.md section 4.
//!
//! Every key of a category carries the category as a hash tag (`{image}`), so all keys one atomic
//! step touches live in one slot and the same layout works on Redis Cluster:
//!
//! | key | type | what |
//! |---|---|---|
//! | `<prefix>:{<category>}` | stream | the category's events, fields `type` and `event` |
//! | `<prefix>:{<category>}:idem:<idempotencyKey>` | string | producer-side claim, value the eventId |
//! | `<prefix>:{<category>}:done:<group>:<idempotencyKey>` | string | group `<group>` handled the key |
//! | `<prefix>:{<category>}:dlq:<group>` | stream | dead letters of group `<group>` |

/// Names the keys of one prefix.
///
/// ```
/// use domain_events_redis::Keys;
///
/// let keys = Keys::new("domain-events");
/// assert_eq!(keys.stream("image"), "domain-events:{image}");
/// assert_eq!(keys.idem("image", "image_complete:v1"), "domain-events:{image}:idem:image_complete:v1");
/// assert_eq!(keys.done("image", "crm", "image_complete:v1"), "domain-events:{image}:done:crm:image_complete:v1");
/// assert_eq!(keys.dlq("image", "crm"), "domain-events:{image}:dlq:crm");
/// assert_eq!(keys.category_of_stream("domain-events:{image}"), Some("image"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// The layout under `prefix`.
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The stream of `category`: `<prefix>:{<category>}`.
    pub fn stream(&self, category: &str) -> String {
        let mut key = Vec::with_capacity(self.prefix.len() + category.len() + 3);
        let _ = self.write_stream(&mut key, category);
        String::from_utf8(key).unwrap_or_default()
    }

    /// The producer-side claim of `key`: `<prefix>:{<category>}:idem:<key>`.
    pub fn idem(&self, category: &str, key: &str) -> String {
        let mut out = Vec::with_capacity(self.prefix.len() + category.len() + key.len() + 9);
        let _ = self.write_idem(&mut out, category, key);
        String::from_utf8(out).unwrap_or_default()
    }

    /// The done record of `group` for `key`: `<prefix>:{<category>}:done:<group>:<key>`.
    pub fn done(&self, category: &str, group: &str, key: &str) -> String {
        format!("{}:{{{category}}}:done:{group}:{key}", self.prefix)
    }

    /// The dead-letter stream of `group`: `<prefix>:{<category>}:dlq:<group>`.
    pub fn dlq(&self, category: &str, group: &str) -> String {
        format!("{}:{{{category}}}:dlq:{group}", self.prefix)
    }

    /// Writes [`stream`](Self::stream) into `out` (a command argument, without a `String`).
    pub(crate) fn write_stream(
        &self,
        out: &mut impl std::io::Write,
        category: &str,
    ) -> std::io::Result<()> {
        write!(out, "{}:{{{category}}}", self.prefix)
    }

    /// Writes [`idem`](Self::idem) into `out` (a command argument, without a `String`).
    pub(crate) fn write_idem(
        &self,
        out: &mut impl std::io::Write,
        category: &str,
        key: &str,
    ) -> std::io::Result<()> {
        write!(out, "{}:{{{category}}}:idem:{key}", self.prefix)
    }

    /// The category of a stream key of this layout, `None` for any other key.
    pub fn category_of_stream<'a>(&self, stream: &'a str) -> Option<&'a str> {
        let rest = stream
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix(":{")?;
        let category = rest.strip_suffix('}')?;
        (!category.is_empty() && !category.contains(['{', '}'])).then_some(category)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_a_category_shares_its_hash_tag() {
        let keys = Keys::new("p");
        for key in [
            keys.stream("seo"),
            keys.idem("seo", "k"),
            keys.done("seo", "g", "k"),
            keys.dlq("seo", "g"),
        ] {
            assert!(key.starts_with("p:{seo}"), "{key}");
        }
    }

    #[test]
    fn only_streams_of_the_layout_have_a_category() {
        let keys = Keys::new("p");
        assert_eq!(keys.category_of_stream("p:{funnel}"), Some("funnel"));
        for other in [
            "p:{funnel}:dlq:g",
            "q:{funnel}",
            "p:{}",
            "p:funnel",
            "p:{a}b}",
        ] {
            assert_eq!(keys.category_of_stream(other), None, "{other}");
        }
    }
}
