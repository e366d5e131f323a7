//! Looking one event up by its event id or its idempotency key ([`Inspector::find_event`],
//! [`Inspector::find_key`]): the stream entries that hold it, whether the producer's claim
//! `<prefix>:{<category>}:idem:<key>` exists, and which groups have a done record
//! `<prefix>:{<category>}:done:<group>:<key>` for it (docs/contract.md section 4).
//!
//! Redis has no index by event id, so the entries are found by reading the category streams
//! newest first, at most [`SEARCH_LIMIT`] entries per stream. An event id that is a UUID v7 (every
//! emitter's) carries its time: then the search starts at the newest entry and stops a minute
//! before that time, so the entry and every later replay of it are found however long the stream
//! is, unless more than [`SEARCH_LIMIT`] entries were added after it.

use std::fmt;

use domain_events::RawEnvelope;
use redis::Value;
use uuid::Uuid;

use crate::entry::parse_entries;
use crate::error::Error;
use crate::status::{Inspector, int, record};

/// Entries read from one stream, at most, while looking for an event.
pub const SEARCH_LIMIT: usize = 10_000;
/// Entries read per `XREVRANGE`.
const CHUNK: usize = 500;
/// How long before the time of a UUID v7 event id its entry may have been added (clocks differ
/// between the emitter and Redis).
const CLOCK_SKEW_MS: u64 = 60_000;

/// What is known of one event (or idempotency key) in Redis.
#[derive(Debug, Clone)]
pub struct EventLookup {
    /// The stream entries holding it, newest first: the emitted entry and any replays.
    pub entries: Vec<FoundEntry>,
    /// The idempotency key looked at (given, or read from the first entry found).
    pub idempotency_key: Option<String>,
    /// The producer claims of the key that exist, one per category holding it.
    pub claims: Vec<KeyRecord>,
    /// Every consumer group of the categories looked in, with its done record for the key if
    /// it has one.
    pub groups: Vec<GroupRecord>,
    /// Entries read while searching.
    pub scanned: u64,
    /// Whether a stream had more entries in the searched range than [`SEARCH_LIMIT`]: an older
    /// entry of the event may exist that was not read.
    pub truncated: bool,
}

/// A stream entry holding the event.
#[derive(Clone)]
pub struct FoundEntry {
    /// The stream's key.
    pub stream: String,
    /// Its category.
    pub category: String,
    /// The entry id.
    pub id: String,
    /// The envelope, its payload unparsed.
    pub envelope: RawEnvelope,
}

impl fmt::Debug for FoundEntry {
    /// The payload is left out: it may hold sensitive fields.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FoundEntry")
            .field("stream", &self.stream)
            .field("category", &self.category)
            .field("id", &self.id)
            .field("event_id", &self.envelope.event_id)
            .field("event_type", &self.envelope.event_type)
            .finish_non_exhaustive()
    }
}

/// A claim or done record: a key whose value is an event id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// The category whose keys these are.
    pub category: String,
    /// The Redis key.
    pub key: String,
    /// Its value: the id of the event that took the claim or was handled.
    pub event_id: String,
    /// Milliseconds until it expires; `None` when it never does.
    pub ttl_ms: Option<u64>,
}

/// A consumer group of a category, and its done record of the key looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRecord {
    /// The category.
    pub category: String,
    /// The group.
    pub group: String,
    /// Its done record, `None` when the group has not handled the key (or the record expired).
    pub done: Option<KeyRecord>,
}

/// What an entry must hold to be a match.
enum Wanted<'a> {
    EventId(Uuid),
    Key(&'a str),
}

impl Wanted<'_> {
    fn matches(&self, envelope: &RawEnvelope) -> bool {
        match self {
            Wanted::EventId(id) => envelope.event_id == *id,
            Wanted::Key(key) => envelope.idempotency_key == *key,
        }
    }
}

impl Inspector {
    /// The entries of the event `event_id` (a UUID), its claim and the groups' done records of
    /// its idempotency key. An id that is no UUID finds nothing.
    pub async fn find_event(&self, event_id: &str) -> Result<EventLookup, Error> {
        let mut lookup = EventLookup::empty();
        let Ok(id) = Uuid::parse_str(event_id.trim()) else {
            return Ok(lookup);
        };
        // Entry ids are milliseconds: stop a little before the event's own time.
        let oldest = id.get_timestamp().map(|at| {
            let (secs, nanos) = at.to_unix();
            (secs * 1000 + u64::from(nanos) / 1_000_000).saturating_sub(CLOCK_SKEW_MS)
        });
        let streams = self.category_streams().await?;
        self.search(&streams, &Wanted::EventId(id), oldest, &mut lookup)
            .await?;
        let Some(first) = lookup.entries.first() else {
            return Ok(lookup);
        };
        let key = first.envelope.idempotency_key.clone();
        let category = first.category.clone();
        let streams: Vec<_> = streams
            .into_iter()
            .filter(|(_, c)| *c == category)
            .collect();
        self.records(&streams, &key, &mut lookup).await?;
        lookup.idempotency_key = Some(key);
        Ok(lookup)
    }

    /// The entries holding idempotency key `key` (the newest [`SEARCH_LIMIT`] entries of each
    /// stream are read), its claims and every group's done record of it, in every category.
    pub async fn find_key(&self, key: &str) -> Result<EventLookup, Error> {
        let mut lookup = EventLookup::empty();
        let streams = self.category_streams().await?;
        self.search(&streams, &Wanted::Key(key), None, &mut lookup)
            .await?;
        self.records(&streams, key, &mut lookup).await?;
        lookup.idempotency_key = Some(key.to_owned());
        Ok(lookup)
    }

    /// Every category stream under the prefix, with its category.
    async fn category_streams(&self) -> Result<Vec<(String, String)>, Error> {
        Ok(self
            .scan_streams()
            .await?
            .into_iter()
            .filter_map(|key| {
                let category = self.keys.category_of_stream(&key)?.to_owned();
                Some((key, category))
            })
            .collect())
    }

    /// Reads each stream newest first, down to `oldest` (milliseconds) or [`SEARCH_LIMIT`]
    /// entries, keeping the entries that match.
    async fn search(
        &self,
        streams: &[(String, String)],
        wanted: &Wanted<'_>,
        oldest: Option<u64>,
        lookup: &mut EventLookup,
    ) -> Result<(), Error> {
        let stop = oldest.map_or_else(|| "-".to_owned(), |ms| ms.to_string());
        let mut conn = self.conn.clone();
        for (stream, category) in streams {
            let mut end = "+".to_owned();
            let mut read = 0;
            loop {
                let reply: Value = redis::cmd("XREVRANGE")
                    .arg(stream)
                    .arg(&end)
                    .arg(&stop)
                    .arg("COUNT")
                    .arg(CHUNK)
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| self.config.error(&e))?;
                let entries = parse_entries(reply)?;
                let Some(last) = entries.last() else { break };
                end = format!("({}", last.id);
                let count = entries.len();
                read += count;
                lookup.scanned += count as u64;
                for entry in entries {
                    let Some(envelope) = entry
                        .field("event")
                        .and_then(|event| RawEnvelope::from_slice(event).ok())
                    else {
                        continue;
                    };
                    if wanted.matches(&envelope) {
                        lookup.entries.push(FoundEntry {
                            stream: stream.clone(),
                            category: category.clone(),
                            id: entry.id,
                            envelope,
                        });
                    }
                }
                if count < CHUNK {
                    break;
                }
                if read >= SEARCH_LIMIT {
                    lookup.truncated = true;
                    break;
                }
            }
        }
        Ok(())
    }

    /// The claim of `key` in the categories of `streams` and every group's done record of it,
    /// in two pipelined round trips.
    async fn records(
        &self,
        streams: &[(String, String)],
        key: &str,
        lookup: &mut EventLookup,
    ) -> Result<(), Error> {
        let groups_of = streams
            .iter()
            .map(|(stream, _)| redis::cmd("XINFO").arg("GROUPS").arg(stream).clone())
            .collect();
        let mut groups = Vec::new();
        for ((_, category), reply) in streams.iter().zip(self.pipelined(groups_of).await?) {
            let Some(Value::Array(rows)) = self.present(reply)? else {
                continue;
            };
            for row in rows {
                let name = record(row)
                    .into_iter()
                    .find(|(field, _)| field == "name")
                    .and_then(|(_, value)| crate::entry::text_of(&value));
                if let Some(name) = name {
                    groups.push((category.clone(), name));
                }
            }
        }
        let mut categories: Vec<&String> = streams.iter().map(|(_, c)| c).collect();
        categories.dedup();

        let mut wanted: Vec<(String, Option<String>)> = categories
            .iter()
            .map(|category| (self.keys.idem(category, key), None))
            .collect();
        wanted.extend(
            groups.iter().map(|(category, group)| {
                (self.keys.done(category, group, key), Some(group.clone()))
            }),
        );
        let mut commands = Vec::with_capacity(wanted.len() * 2);
        for (redis_key, _) in &wanted {
            commands.push(redis::cmd("GET").arg(redis_key).clone());
            commands.push(redis::cmd("PTTL").arg(redis_key).clone());
        }
        let mut replies = self.pipelined(commands).await?.into_iter();
        let owners = categories
            .iter()
            .map(|c| (*c).clone())
            .chain(groups.iter().map(|(c, _)| c.clone()));
        for ((redis_key, group), category) in wanted.into_iter().zip(owners) {
            let (Some(value), Some(ttl)) = (replies.next(), replies.next()) else {
                break;
            };
            let found = match value.map_err(|e| self.config.error(&e))? {
                Value::Nil => None,
                other => crate::entry::text_of(&other).map(|event_id| KeyRecord {
                    category: category.clone(),
                    key: redis_key,
                    event_id,
                    // PTTL: -1 when the key never expires.
                    ttl_ms: ttl.ok().as_ref().and_then(int),
                }),
            };
            match group {
                None => lookup.claims.extend(found),
                Some(group) => lookup.groups.push(GroupRecord {
                    category,
                    group,
                    done: found,
                }),
            }
        }
        Ok(())
    }
}

impl EventLookup {
    fn empty() -> Self {
        Self {
            entries: Vec::new(),
            idempotency_key: None,
            claims: Vec::new(),
            groups: Vec::new(),
            scanned: 0,
            truncated: false,
        }
    }
}
