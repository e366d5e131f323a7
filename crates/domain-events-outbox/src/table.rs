//! [`OutboxTable`]: where the outbox lives (schema and table name) and the names derived from it.

use std::fmt;

use crate::error::Error;

/// The schema of the outbox table unless configured otherwise.
pub const DEFAULT_SCHEMA: &str = "public";
/// The name of the outbox table unless configured otherwise.
pub const DEFAULT_TABLE: &str = "domain_events_outbox";
/// The longest schema or table name accepted, so that every derived name (`<table>_relays`, the
/// notification channel `<schema>.<table>`) fits PostgreSQL's 63-byte identifiers.
pub const MAX_NAME_LEN: usize = 31;

/// The schema and name of an outbox table: `public.domain_events_outbox` by default.
///
/// Names are lower-case SQL identifiers (`[a-z_][a-z0-9_]*`, at most [`MAX_NAME_LEN`] bytes), so
/// they are safe to splice into SQL. Next to the table live `<table>_relays` (the relays seen),
/// the indexes `<table>_pending`, `<table>_published` and `<table>_dead`, and the trigger and
/// function `<table>_notify`, which notifies the channel `<schema>.<table>` once per inserting
/// statement.
///
/// ```
/// use domain_events_outbox::OutboxTable;
///
/// let table = OutboxTable::new("billing", "events_outbox").unwrap();
/// assert_eq!(table.to_string(), "billing.events_outbox");
/// assert!(OutboxTable::new("public", "Robert'); DROP TABLE x; --").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OutboxTable {
    schema: String,
    table: String,
}

impl Default for OutboxTable {
    fn default() -> Self {
        OutboxTable {
            schema: DEFAULT_SCHEMA.to_owned(),
            table: DEFAULT_TABLE.to_owned(),
        }
    }
}

impl OutboxTable {
    /// The table `schema.table`; both names must be lower-case SQL identifiers.
    pub fn new(schema: impl Into<String>, table: impl Into<String>) -> Result<Self, Error> {
        let (schema, table) = (schema.into(), table.into());
        check_name(&schema)?;
        check_name(&table)?;
        Ok(OutboxTable { schema, table })
    }

    /// The schema name.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The channel the table's trigger notifies on commit: `<schema>.<table>`.
    pub fn channel(&self) -> String {
        format!("{}.{}", self.schema, self.table)
    }

    /// `"schema"."table"`.
    pub(crate) fn qualified(&self) -> String {
        self.qualified_with("")
    }

    /// `"schema"."table<suffix>"`: a table, index or function that belongs to the outbox.
    pub(crate) fn qualified_with(&self, suffix: &str) -> String {
        format!("\"{}\".\"{}{suffix}\"", self.schema, self.table)
    }

    /// The advisory-lock class (first key of the two-key form) of one use of this table. Every
    /// lock the outbox takes is in the two-key space, which never meets the one-key locks an
    /// application takes.
    pub(crate) fn lock_class(&self, purpose: LockPurpose) -> i32 {
        let name = format!("{}.{}/{}", self.schema, self.table, purpose.name());
        i32::from_ne_bytes(domain_events::wire::fnv1a32(name.as_bytes()).to_ne_bytes())
    }
}

impl fmt::Display for OutboxTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.table)
    }
}

/// What an advisory lock of the outbox protects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockPurpose {
    /// Writers of one correlation id, one transaction at a time (second key: the id's hash), so
    /// that the sequence of its events is their commit order.
    Correlation,
    /// Relays of the table, one batch at a time.
    Relay,
    /// Migrations of the table, one at a time.
    Migration,
}

impl LockPurpose {
    fn name(self) -> &'static str {
        match self {
            LockPurpose::Correlation => "correlation",
            LockPurpose::Relay => "relay",
            LockPurpose::Migration => "migration",
        }
    }
}

/// The second lock key of a correlation id: a stable 32-bit hash (FNV-1a), the same in every
/// process and version.
pub(crate) fn correlation_lock_key(correlation_id: &str) -> i32 {
    i32::from_ne_bytes(domain_events::wire::fnv1a32(correlation_id.as_bytes()).to_ne_bytes())
}

fn check_name(name: &str) -> Result<(), Error> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > MAX_NAME_LEN {
        Some("it is longer than 31 bytes")
    } else if name.starts_with(|c: char| c.is_ascii_digit()) {
        Some("it starts with a digit")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        Some("only a-z, 0-9 and _ are allowed")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_quoted() {
        let table = OutboxTable::default();
        assert_eq!(table.qualified(), "\"public\".\"domain_events_outbox\"");
        assert_eq!(
            table.qualified_with("_relays"),
            "\"public\".\"domain_events_outbox_relays\""
        );
        assert_eq!(table.channel(), "public.domain_events_outbox");
        for bad in ["", "Outbox", "1table", "a-b", "a\"b", &"x".repeat(32)] {
            let err = OutboxTable::new("public", bad).expect_err(bad);
            assert!(err.to_string().contains("invalid outbox name"), "{err}");
        }
        assert!(OutboxTable::new("s_1", "x".repeat(31)).is_ok());
    }

    #[test]
    fn lock_keys_are_stable_and_differ_by_purpose_and_table() {
        let a = OutboxTable::default();
        let b = OutboxTable::new("public", "other").expect("valid");
        assert_ne!(
            a.lock_class(LockPurpose::Correlation),
            a.lock_class(LockPurpose::Relay)
        );
        assert_ne!(
            a.lock_class(LockPurpose::Relay),
            b.lock_class(LockPurpose::Relay)
        );
        // FNV-1a of "a": fixed forever, since processes of different versions share the locks.
        assert_eq!(domain_events::wire::fnv1a32(b"a"), 0xe40c_292c);
        assert_eq!(correlation_lock_key("a"), 0xe40c_292c_u32 as i32);
    }
}
