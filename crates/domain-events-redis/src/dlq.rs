//! [`DeadLetters`]: read, replay, delete and purge the dead letters of a consumer group.
//!
//! A dead letter is an entry of `<prefix>:{<category>}:dlq:<group>` with the fields `stream`,
//! `entryId`, `group`, `reason`, `deliveries` and `event` (the raw bytes of the original entry's
//! `event` field), written by a [`RedisConsumer`](crate::RedisConsumer).
//!
//! Replaying appends the raw `event` unchanged (same eventId, same idempotency key) to its
//! category stream and removes the dead letter, in one step. Replay is meant for events that
//! failed: they have no done record for the group, so the group runs them again. Mind that the
//! replayed entry is a new entry of the stream, so every group reading the category receives it;
//! groups that handled the event before skip it while their done record lives (7 days by
//! default).
//!
//! Deleting and purging work on every dead letter, also on those whose event is not an envelope
//! (not JSON, or no event at all), which can never be replayed.

use std::fmt;

use crate::connection::Connection;
use domain_events::RawEnvelope;
use redis::Value;

use crate::config::RedisConfig;
use crate::entry::{Entry, parse_entries, text_of};
use crate::error::Error;
use crate::keys::Keys;
use crate::scripts::REPLAY_SCRIPT;

/// One dead letter of a group.
#[derive(Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The dead letter's own entry id in the dead-letter stream.
    pub id: String,
    /// The stream the entry came from.
    pub stream: String,
    /// The entry's id in that stream.
    pub entry_id: String,
    /// The consumer group that gave up on it.
    pub group: String,
    /// Why: the decoding error of a poison entry, or the last handler error.
    pub reason: String,
    /// How often the entry had been delivered.
    pub deliveries: u64,
    /// The raw `event` bytes (empty when the entry had no `event` field).
    pub event: Vec<u8>,
}

impl DeadLetter {
    /// The envelope of [`event`](Self::event), if it is one.
    pub fn envelope(&self) -> Option<RawEnvelope> {
        RawEnvelope::from_slice(&self.event).ok()
    }

    fn from_entry(entry: &Entry) -> Self {
        let text = |name: &str| {
            entry
                .field(name)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default()
        };
        DeadLetter {
            id: entry.id.clone(),
            stream: text("stream"),
            entry_id: text("entryId"),
            group: text("group"),
            reason: text("reason"),
            deliveries: text("deliveries").parse().unwrap_or(0),
            event: entry.field("event").map(<[u8]>::to_vec).unwrap_or_default(),
        }
    }
}

impl fmt::Debug for DeadLetter {
    /// The event is shown by size only: it may hold sensitive payload fields.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadLetter")
            .field("id", &self.id)
            .field("stream", &self.stream)
            .field("entry_id", &self.entry_id)
            .field("group", &self.group)
            .field("reason", &self.reason)
            .field("deliveries", &self.deliveries)
            .field("event", &format_args!("<{} bytes>", self.event.len()))
            .finish()
    }
}

/// Reads, replays, deletes and purges dead letters.
#[derive(Clone)]
pub struct DeadLetters {
    config: RedisConfig,
    keys: Keys,
    conn: Connection,
}

impl DeadLetters {
    /// Dead letters under `config`. Does not connect yet; must be called inside a Tokio runtime.
    pub fn new(config: RedisConfig) -> Result<Self, Error> {
        let conn = Connection::in_runtime(&config, "DeadLetters::new")?;
        Ok(Self {
            keys: config.keys(),
            config,
            conn,
        })
    }

    /// The number of dead letters of `group` in `category`.
    pub async fn len(&self, category: &str, group: &str) -> Result<u64, Error> {
        let mut conn = self.conn.clone();
        redis::cmd("XLEN")
            .arg(self.keys.dlq(category, group))
            .query_async(&mut conn)
            .await
            .map_err(|e| self.config.error(&e))
    }

    /// Up to `count` dead letters of `group` in `category`, oldest first.
    pub async fn list(
        &self,
        category: &str,
        group: &str,
        count: usize,
    ) -> Result<Vec<DeadLetter>, Error> {
        self.range(category, group, "-", count).await
    }

    /// The dead letter `id`, if it exists.
    pub async fn get(
        &self,
        category: &str,
        group: &str,
        id: &str,
    ) -> Result<Option<DeadLetter>, Error> {
        let mut conn = self.conn.clone();
        let reply: Value = redis::cmd("XRANGE")
            .arg(self.keys.dlq(category, group))
            .arg(id)
            .arg(id)
            .query_async(&mut conn)
            .await
            .map_err(|e| self.config.error(&e))?;
        Ok(parse_entries(reply)?.first().map(DeadLetter::from_entry))
    }

    async fn range(
        &self,
        category: &str,
        group: &str,
        start: &str,
        count: usize,
    ) -> Result<Vec<DeadLetter>, Error> {
        let mut conn = self.conn.clone();
        let reply: Value = redis::cmd("XRANGE")
            .arg(self.keys.dlq(category, group))
            .arg(start)
            .arg("+")
            .arg("COUNT")
            .arg(count.max(1))
            .query_async(&mut conn)
            .await
            .map_err(|e| self.config.error(&e))?;
        Ok(parse_entries(reply)?
            .iter()
            .map(DeadLetter::from_entry)
            .collect())
    }

    /// Moves the dead letter `id` back to the category stream (same raw event, same eventId) and
    /// deletes it, in one step. Returns the new entry id, or `None` if the dead letter does not
    /// exist (any more, e.g. replayed concurrently). Fails for a dead letter whose event is not an
    /// envelope: it can never be handled, delete it instead.
    pub async fn replay(
        &self,
        category: &str,
        group: &str,
        id: &str,
    ) -> Result<Option<String>, Error> {
        let Some(letter) = self.get(category, group, id).await? else {
            return Ok(None);
        };
        let Some(envelope) = letter.envelope() else {
            return Err(Error::Config(format!(
                "dead letter {id} holds no event envelope and cannot be replayed"
            )));
        };
        let mut invocation = REPLAY_SCRIPT.prepare_invoke();
        invocation
            .key(self.keys.dlq(category, group))
            .key(self.keys.stream(category))
            .arg(id)
            .arg(self.config.max_len())
            .arg(&envelope.event_type)
            .arg(letter.event.as_slice());
        let mut conn = self.conn.clone();
        let reply: Value = invocation
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.config.error(&e))?;
        let new_id = match &reply {
            Value::Nil => None,
            other => text_of(other),
        };
        if let Some(new_id) = &new_id {
            tracing::info!(group, category, dead_letter = id, entry_id = %new_id, event_id = %envelope.event_id,
                "dead letter replayed");
        }
        Ok(new_id)
    }

    /// Replays every dead letter of `group` in `category` that holds an envelope (see
    /// [`replay`](Self::replay)); returns how many were replayed. Dead letters without an envelope
    /// are left in place.
    pub async fn replay_all(&self, category: &str, group: &str) -> Result<usize, Error> {
        let mut replayed = 0;
        let mut start = "-".to_owned();
        loop {
            let batch = self.range(category, group, &start, 100).await?;
            let Some(last) = batch.last() else { break };
            start = format!("({}", last.id);
            for letter in &batch {
                if letter.envelope().is_some()
                    && self.replay(category, group, &letter.id).await?.is_some()
                {
                    replayed += 1;
                }
            }
        }
        Ok(replayed)
    }

    /// Deletes the dead letter `id`; returns whether it existed.
    pub async fn delete(&self, category: &str, group: &str, id: &str) -> Result<bool, Error> {
        let mut conn = self.conn.clone();
        let deleted: u64 = redis::cmd("XDEL")
            .arg(self.keys.dlq(category, group))
            .arg(id)
            .query_async(&mut conn)
            .await
            .map_err(|e| self.config.error(&e))?;
        Ok(deleted > 0)
    }

    /// Deletes every dead letter of `group` in `category`, in one step (`XTRIM <dlq> MAXLEN 0`);
    /// returns how many were deleted. Dead letters added after it ran are kept.
    pub async fn purge(&self, category: &str, group: &str) -> Result<u64, Error> {
        let mut conn = self.conn.clone();
        let purged: u64 = redis::cmd("XTRIM")
            .arg(self.keys.dlq(category, group))
            .arg("MAXLEN")
            .arg(0)
            .query_async(&mut conn)
            .await
            .map_err(|e| self.config.error(&e))?;
        if purged > 0 {
            tracing::info!(group, category, purged, "dead letters purged");
        }
        Ok(purged)
    }
}

impl fmt::Debug for DeadLetters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadLetters")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
