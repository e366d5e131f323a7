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
//!
//! A category split into `N > 1` partitions has each of these keys once per partition `p`
//! (`0..N`), under the partition's own hash tag `{<category>#<p>}` instead of `{<category>}`, so
//! partitions spread over the masters of a cluster. The partition of an event is
//! [`partition_of`]`(correlationId, N)`. Three more keys describe and share the partitions:
//!
//! | key | type | what |
//! |---|---|---|
//! | `<prefix>:{<category>}:partitions` | string | the category's partition count, written when first used with `N > 1` |
//! | `<prefix>:{<category>#<p>}:owner:<group>` | string | the consumer of `<group>` reading partition `p`, with a lease TTL |
//! | `<prefix>:{<category>}:members:<group>` | sorted set | the live consumers of `<group>` on the category, scored by when their membership expires |
//!
//! With `N = 1` nothing changes: the keys are those of the first table, under `{<category>}`.

/// The partition (`0..partitions`) of an event with correlation id `correlation_id` in a category
/// of `partitions` partitions: the FNV-1a 32-bit hash of the id's UTF-8 bytes modulo the count
/// (docs/contract.md section 4.1). Always 0 when `partitions` is 0 or 1.
///
/// ```
/// use domain_events_redis::partition_of;
///
/// assert_eq!(partition_of("var-123", 4), 3);
/// assert_eq!(partition_of("var-123", 1), 0);
/// ```
pub fn partition_of(correlation_id: &str, partitions: u32) -> u32 {
    domain_events::wire::fnv1a32(correlation_id.as_bytes()) % partitions.max(1)
}

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
/// assert_eq!(keys.dead_letters_of("domain-events:{image}:dlq:crm"), Some(("image", "crm")));
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

    /// The hash tag (without braces) of partition `partition` of a category of `partitions`
    /// partitions: `<category>` when `partitions` is 0 or 1 (today's names exactly), else
    /// `<category>#<partition>`. Every method here that takes a category takes a tag as well, and
    /// then names that partition's key: `keys.stream(&Keys::tag("image", 2, 4))` is
    /// `<prefix>:{image#2}`.
    pub fn tag(category: &str, partition: u32, partitions: u32) -> String {
        if partitions <= 1 {
            category.to_owned()
        } else {
            format!("{category}#{partition}")
        }
    }

    /// The category and partition of a tag ([`tag`](Self::tag)): `image#2` is `("image",
    /// Some(2))`, `image` is `("image", None)`.
    pub fn split_tag(tag: &str) -> (&str, Option<u32>) {
        match tag.rsplit_once('#') {
            Some((category, partition)) if !category.is_empty() => match partition.parse() {
                Ok(partition) => (category, Some(partition)),
                Err(_) => (tag, None),
            },
            _ => (tag, None),
        }
    }

    /// The record of a category's partition count: `<prefix>:{<category>}:partitions`.
    pub fn partitions(&self, category: &str) -> String {
        format!("{}:{{{category}}}:partitions", self.prefix)
    }

    /// The lease of the consumer of `group` that reads the partition of tag `tag`:
    /// `<prefix>:{<tag>}:owner:<group>`.
    pub fn owner(&self, tag: &str, group: &str) -> String {
        format!("{}:{{{tag}}}:owner:{group}", self.prefix)
    }

    /// The live consumers of `group` on a partitioned category:
    /// `<prefix>:{<category>}:members:<group>`.
    pub fn members(&self, category: &str, group: &str) -> String {
        format!("{}:{{{category}}}:members:{group}", self.prefix)
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

    /// The category of a stream key of this layout, `None` for any other key. For a partition's
    /// stream it is the partition's tag, `<category>#<p>` ([`split_tag`](Self::split_tag) parts it).
    pub fn category_of_stream<'a>(&self, stream: &'a str) -> Option<&'a str> {
        let rest = stream
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix(":{")?;
        let category = rest.strip_suffix('}')?;
        (!category.is_empty() && !category.contains(['{', '}'])).then_some(category)
    }

    /// The category and group of a dead-letter stream key of this layout, `None` for any other
    /// key. A category holds no braces, so the first `}` ends it and the group is the rest after
    /// `:dlq:`, whatever it holds.
    pub fn dead_letters_of<'a>(&self, key: &'a str) -> Option<(&'a str, &'a str)> {
        let rest = key.strip_prefix(self.prefix.as_str())?.strip_prefix(":{")?;
        let (category, rest) = rest.split_once('}')?;
        let group = rest.strip_prefix(":dlq:")?;
        (!category.is_empty() && !category.contains('{') && !group.is_empty())
            .then_some((category, group))
    }

    /// A `SCAN ... MATCH` pattern for every key of every category (`<prefix>:{*`), the prefix's
    /// glob characters escaped.
    pub(crate) fn category_pattern(&self) -> String {
        let mut pattern = String::with_capacity(self.prefix.len() + 3);
        for c in self.prefix.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push_str(":{*");
        pattern
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

    #[test]
    fn dead_letter_keys_read_back_to_their_category_and_group() {
        let keys = Keys::new("p");
        for (category, group) in [("seo", "crm"), ("seo", "a:dlq:b}{c"), ("x", "g")] {
            let key = keys.dlq(category, group);
            assert_eq!(keys.dead_letters_of(&key), Some((category, group)), "{key}");
        }
        for other in [
            "p:{seo}",
            "p:{seo}:dlq:",
            "p:{seo}:done:g:k",
            "q:{seo}:dlq:g",
            "p:{}:dlq:g",
            "p:{a{b}:dlq:g",
            "p:seo:dlq:g",
        ] {
            assert_eq!(keys.dead_letters_of(other), None, "{other}");
        }
    }

    #[test]
    fn partitions_have_their_own_hash_tags_and_one_partition_keeps_todays_names() {
        let keys = Keys::new("p");
        assert_eq!(keys.stream(&Keys::tag("seo", 0, 1)), "p:{seo}");
        assert_eq!(keys.stream(&Keys::tag("seo", 3, 4)), "p:{seo#3}");
        let tag = Keys::tag("seo", 1, 4);
        for key in [
            keys.stream(&tag),
            keys.idem(&tag, "k"),
            keys.done(&tag, "g", "k"),
            keys.dlq(&tag, "g"),
            keys.owner(&tag, "g"),
        ] {
            assert!(key.starts_with("p:{seo#1}"), "{key}");
        }
        assert_eq!(keys.category_of_stream("p:{seo#1}"), Some("seo#1"));
        assert_eq!(
            keys.dead_letters_of("p:{seo#1}:dlq:g"),
            Some(("seo#1", "g"))
        );
        assert_eq!(Keys::split_tag("seo#1"), ("seo", Some(1)));
        assert_eq!(Keys::split_tag("seo"), ("seo", None));
        assert_eq!(Keys::split_tag("a#b"), ("a#b", None));
        assert_eq!(keys.partitions("seo"), "p:{seo}:partitions");
        assert_eq!(keys.members("seo", "g"), "p:{seo}:members:g");
    }

    #[test]
    fn partitions_follow_the_contracts_test_vectors() {
        // docs/contract.md section 4.1 lists these: other languages check against them.
        for (id, hash, of4) in [
            ("var-123", 0xabef_d847_u32, 3),
            ("order-1", 0x2b7f_cd6d, 1),
            ("42", 0x87e3_8583, 3),
            ("image-7", 0x62a5_3ae6, 2),
            ("", 0x811c_9dc5, 1),
        ] {
            assert_eq!(domain_events::wire::fnv1a32(id.as_bytes()), hash, "{id}");
            assert_eq!(partition_of(id, 4), of4, "{id}");
        }
        assert_eq!(partition_of("anything", 1), 0);
        assert_eq!(partition_of("anything", 0), 0);
    }

    #[test]
    fn the_category_pattern_escapes_glob_characters_of_the_prefix() {
        assert_eq!(
            Keys::new("domain-events").category_pattern(),
            "domain-events:{*"
        );
        assert_eq!(
            Keys::new("a*b?[c]").category_pattern(),
            "a\\*b\\?\\[c\\]:{*"
        );
    }
}
