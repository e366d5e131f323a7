//! Partitioned categories in Redis (docs/contract.md sections 4.1 and 4.6): the record of a
//! category's partition count, checked once per process and category, and the leases by which
//! the consumers of a group share a category's partitions.
//!
//! Each script here touches the keys of one hash tag only, so each is legal on a cluster.

use std::sync::LazyLock;
use std::time::Duration;

use redis::{RedisError, Script, Value};

use crate::config::RedisConfig;
use crate::connection::Connection;
use crate::error::Error;
use crate::keys::Keys;
use crate::scripts::ttl_ms;

/// The partition count Redis records for a category, recording it if there is none yet.
///
/// - `KEYS[1]`: `<prefix>:{<category>}:partitions`; `KEYS[2]`: the unpartitioned stream
///   `<prefix>:{<category>}`.
/// - `ARGV[1]`: the count this process is configured with.
/// - Returns the recorded count: the record if there is one; else `1` when the configured count
///   is 1 (nothing is written) or when the unpartitioned stream exists (the category is live with
///   one partition); else the configured count, now recorded.
const LAYOUT: &str = r#"
local recorded = redis.call('GET', KEYS[1])
if recorded then return recorded end
if ARGV[1] == '1' or redis.call('EXISTS', KEYS[2]) == 1 then return '1' end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
"#;

/// Takes or renews the lease of a partition for a consumer.
///
/// - `KEYS[1]`: `<prefix>:{<category>#<p>}:owner:<group>`.
/// - `ARGV[1]`: the consumer; `ARGV[2]`: the lease TTL in ms.
/// - Returns 1 if the lease is now the consumer's (free, or already its own; the TTL set anew),
///   else 0 (another consumer holds it).
const LEASE: &str = r#"
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"#;

/// Gives a lease up: `KEYS[1]` as in [`LEASE`], deleted if it is `ARGV[1]`'s. Returns 1 if it was.
const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"#;

/// Marks a consumer alive in its group on a category and counts the live ones.
///
/// - `KEYS[1]`: `<prefix>:{<category>}:members:<group>`.
/// - `ARGV[1]`: the consumer; `ARGV[2]`: how long its membership lasts in ms; `ARGV[3]`: 1 to
///   join (or stay), 0 to leave.
/// - Members are scored by when their membership expires (Redis' clock, `TIME`), so the expired
///   ones (consumers that died) are dropped here. Returns the number of live members.
const MEMBERS: &str = r#"
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[3] == '1' then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
else
  redis.call('ZREM', KEYS[1], ARGV[1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[2]))
return redis.call('ZCARD', KEYS[1])
"#;

static LAYOUT_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(LAYOUT));
static LEASE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(LEASE));
static RELEASE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(RELEASE));
static MEMBERS_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(MEMBERS));

/// Checks that Redis records the partition count `config` has for `category` (recording it when
/// this is the category's first use with more than one partition). Redis errors come back as
/// they are, for the caller's retry policy; a different count is [`Error::PartitionsChanged`].
pub(crate) async fn check_layout(
    conn: &Connection,
    config: &RedisConfig,
    category: &str,
) -> Result<Result<(), Error>, RedisError> {
    let keys = config.keys();
    let configured = config.partitions_of(category);
    let marker = keys.partitions(category);
    let recorded: Value = if configured == 1 {
        // What the script does for one partition, without it: a plain read, which writes nothing.
        match redis::cmd("GET")
            .arg(&marker)
            .query_async(&mut conn.clone())
            .await?
        {
            Value::Nil => Value::Int(1),
            recorded => recorded,
        }
    } else {
        LAYOUT_SCRIPT
            .key(&marker)
            .key(keys.stream(category))
            .arg(configured)
            .invoke_async(&mut conn.clone())
            .await?
    };
    Ok(match count_of(&recorded) {
        Some(recorded) if recorded == configured => Ok(()),
        Some(recorded) => Err(Error::PartitionsChanged {
            category: category.to_owned(),
            configured,
            recorded,
            marker,
        }),
        None => Err(Error::Protocol(format!(
            "`{marker}` holds no partition count"
        ))),
    })
}

/// The partition count a reply holds (a record's text, or the script's answer).
fn count_of(reply: &Value) -> Option<u32> {
    match reply {
        Value::BulkString(bytes) => std::str::from_utf8(bytes).ok().and_then(|s| s.parse().ok()),
        Value::SimpleString(text) => text.parse().ok(),
        Value::Int(n) => u32::try_from(*n).ok(),
        _ => None,
    }
}

impl RedisConfig {
    /// The partition count Redis records for `category` (`<prefix>:{<category>}:partitions`,
    /// written by the first producer or consumer configured with more than one partition): 1 when
    /// none is recorded. Only reads; the count configured here plays no part.
    ///
    /// For tools that work on the categories the services use, like the command-line tool: the
    /// partitions of a category are its streams `Keys::tag(category, p, count)` for `p` in
    /// `0..count`. Must be called inside a Tokio runtime; connects for the call.
    pub async fn recorded_partitions(&self, category: &str) -> Result<u32, Error> {
        let conn = Connection::in_runtime(self, "RedisConfig::recorded_partitions")?;
        self.read_partitions(&conn, category).await
    }

    /// This configuration with, for every category of `events`, the partition count Redis
    /// records for it ([`recorded_partitions`](Self::recorded_partitions)), checked as
    /// [`partitions`](Self::partitions) checks a count against an event set: `events` stand for
    /// the set (the runtime's description of every event version, as a generated `DomainEvent`'s
    /// `EVENTS` or one built from a schema folder at run time). A producer or consumer built
    /// from it agrees with the services on every partitioned category and never records a count
    /// itself: a category without a record stays in one partition.
    ///
    /// Errors: Redis unreachable, a record that holds no count, a recorded count above
    /// [`MAX_PARTITIONS`](crate::MAX_PARTITIONS) or one that some event version of the category
    /// cannot be partitioned with (its key template lacks the correlation field).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), domain_events_redis::Error> {
    /// use domain_events::EventSet;
    /// use domain_events_catalog::DomainEvent;
    /// use domain_events_redis::RedisConfig;
    ///
    /// let config = RedisConfig::new("redis://127.0.0.1:6379")?
    ///     .with_recorded_partitions(DomainEvent::EVENTS)
    ///     .await?;
    /// println!("image: {} partitions", config.partitions_of("image"));
    /// # Ok(()) }
    /// ```
    pub async fn with_recorded_partitions(
        mut self,
        events: &[domain_events::EventInfo],
    ) -> Result<Self, Error> {
        let conn = Connection::in_runtime(&self, "RedisConfig::with_recorded_partitions")?;
        let mut categories: Vec<&str> = events.iter().map(|info| info.category).collect();
        categories.sort_unstable();
        categories.dedup();
        for category in categories {
            let count = self.read_partitions(&conn, category).await?;
            self = self.partitions_checked(category, count, events, "the events given")?;
        }
        Ok(self)
    }

    /// [`recorded_partitions`](Self::recorded_partitions) on `conn`.
    async fn read_partitions(&self, conn: &Connection, category: &str) -> Result<u32, Error> {
        let marker = self.keys().partitions(category);
        let recorded: Value = redis::cmd("GET")
            .arg(&marker)
            .query_async(&mut conn.clone())
            .await
            .map_err(|error| self.error(&error))?;
        match recorded {
            Value::Nil => Ok(1),
            recorded => count_of(&recorded)
                .ok_or_else(|| Error::Protocol(format!("`{marker}` holds no partition count"))),
        }
    }
}

/// The lease and membership calls of one consumer of one group.
#[derive(Clone)]
pub(crate) struct Leases {
    keys: Keys,
    group: String,
    consumer: String,
    ttl_ms: u64,
}

impl Leases {
    /// The calls of `consumer` in `group`, with leases and memberships lasting `ttl`.
    pub(crate) fn new(keys: Keys, group: &str, consumer: &str, ttl: Duration) -> Self {
        Self {
            keys,
            group: group.to_owned(),
            consumer: consumer.to_owned(),
            ttl_ms: ttl_ms(ttl),
        }
    }

    /// Marks the consumer alive on `category` (or, with `alive` false, gone); the number of live
    /// consumers of the group on it.
    pub(crate) async fn members(
        &self,
        conn: &Connection,
        category: &str,
        alive: bool,
    ) -> Result<u32, RedisError> {
        MEMBERS_SCRIPT
            .key(self.keys.members(category, &self.group))
            .arg(&self.consumer)
            .arg(self.ttl_ms)
            .arg(u8::from(alive))
            .invoke_async(&mut conn.clone())
            .await
    }

    /// Takes or renews the lease of the partition of `tag`; whether the consumer holds it now.
    pub(crate) async fn lease(&self, conn: &Connection, tag: &str) -> Result<bool, RedisError> {
        LEASE_SCRIPT
            .key(self.keys.owner(tag, &self.group))
            .arg(&self.consumer)
            .arg(self.ttl_ms)
            .invoke_async::<u8>(&mut conn.clone())
            .await
            .map(|held| held == 1)
    }

    /// Gives up the lease of the partition of `tag` if the consumer holds it.
    pub(crate) async fn release(&self, conn: &Connection, tag: &str) -> Result<(), RedisError> {
        RELEASE_SCRIPT
            .key(self.keys.owner(tag, &self.group))
            .arg(&self.consumer)
            .invoke_async::<u8>(&mut conn.clone())
            .await
            .map(drop)
    }
}

/// How many partitions of `partitions` one of `members` consumers reads at most: a fair share,
/// rounded up so that every partition has a reader.
pub(crate) fn fair_share(partitions: u32, members: u32) -> u32 {
    partitions.div_ceil(members.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fair_shares_cover_every_partition() {
        assert_eq!(fair_share(4, 0), 4);
        assert_eq!(fair_share(4, 1), 4);
        assert_eq!(fair_share(4, 2), 2);
        assert_eq!(fair_share(4, 3), 2);
        assert_eq!(fair_share(4, 5), 1);
        for members in 1..10 {
            assert!(fair_share(7, members) * members >= 7);
        }
    }
}
