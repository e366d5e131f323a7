//! [`Inspector`]: what the event streams, consumer groups and dead letters under a key prefix look
//! like right now, for `domain-events status` and dashboards.
//!
//! The streams are found by the key layout of docs/contract.md section 4.1 ([`Keys`]): `SCAN`
//! (never `KEYS`, which blocks Redis) for streams matching `<prefix>:{*`, keeping the category
//! streams `<prefix>:{<category>}` and the dead-letter streams `<prefix>:{<category>}:dlq:<group>`.
//! Then two pipelined round trips gather the rest: `XINFO STREAM` and `XINFO GROUPS` of every
//! category stream with `XLEN` of every dead-letter stream, then the oldest pending entry
//! (`XPENDING <stream> <group> - + 1`) and `XINFO CONSUMERS` of every group. `XINFO STREAM`
//! sends the first and last entries whole; only their ids are kept.
//!
//! Rows are keyed by the stream key, with the category as a field, so that a category spread over
//! several streams gives one row per stream.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use domain_events::Timestamp;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Cmd, RedisResult, Value};
use serde::{Deserialize, Serialize};

use crate::config::RedisConfig;
use crate::connection::Connection;
use crate::entry::text_of;
use crate::error::Error;
use crate::keys::Keys;

/// Keys one `SCAN` call looks at (a hint to Redis): large enough for few round trips, small
/// enough that no call keeps Redis busy for long.
const SCAN_COUNT: usize = 1000;
/// Commands per pipelined round trip at most, so that a keyspace with many streams does not build
/// one huge request and reply.
const PIPELINE_CHUNK: usize = 512;

/// The state of every event stream, consumer group and dead-letter stream under one prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// The key prefix looked under.
    pub prefix: String,
    /// Every category stream, by key.
    pub streams: Vec<StreamStatus>,
    /// Every dead-letter stream, by key, including those of groups that no longer exist on their
    /// category's stream (or whose stream is gone).
    pub dead_letters: Vec<DeadLetterStatus>,
}

impl Status {
    /// The dead-letter streams whose group is not a group of any stream of their category: dead
    /// letters nobody will look at unless told.
    pub fn orphan_dead_letters(&self) -> impl Iterator<Item = &DeadLetterStatus> {
        self.dead_letters.iter().filter(|letters| {
            !self.streams.iter().any(|stream| {
                stream.category == letters.category
                    && stream
                        .groups
                        .iter()
                        .any(|group| group.group == letters.group)
            })
        })
    }
}

/// One category stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamStatus {
    /// The stream's key, `<prefix>:{<category>}`.
    pub stream: String,
    /// The category the stream holds events of.
    pub category: String,
    /// Entries in the stream now.
    pub length: u64,
    /// The oldest entry, `None` when the stream is empty.
    pub first_entry: Option<EntryStamp>,
    /// The newest entry, `None` when the stream is empty.
    pub last_entry: Option<EntryStamp>,
    /// The id of the last entry ever added (it may have been deleted since).
    pub last_generated_id: String,
    /// Entries ever added to the stream (trimmed ones included); `None` before Redis 7.0.
    /// Sampled twice, its difference is the stream's throughput.
    pub entries_added: Option<u64>,
    /// The consumer groups reading the stream, by name.
    pub groups: Vec<GroupStatus>,
}

/// A stream entry's id and the time it was added (the id's milliseconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryStamp {
    /// The entry id, `<milliseconds>-<sequence>`.
    pub id: String,
    /// When Redis added the entry, in UTC.
    pub at: Timestamp,
}

impl EntryStamp {
    /// The stamp of entry `id`; `None` when `id` is not a stream entry id.
    pub fn of(id: &str) -> Option<Self> {
        let millis: i128 = id.split_once('-').map_or(id, |(ms, _)| ms).parse().ok()?;
        let at =
            time::OffsetDateTime::from_unix_timestamp_nanos(millis.checked_mul(1_000_000)?).ok()?;
        Some(EntryStamp {
            id: id.to_owned(),
            at: Timestamp::from_datetime(at),
        })
    }
}

/// One consumer group of a stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupStatus {
    /// The group's name (the consuming service).
    pub group: String,
    /// Entries of the stream not yet delivered to the group. `None` when Redis cannot tell:
    /// before Redis 7.0, or when entries after the group's position were deleted (`XDEL`), until
    /// the group reads past them; `Some(0)` when the group has read the last entry ever added.
    pub lag: Option<u64>,
    /// Entries delivered to the group and not yet acknowledged.
    pub pending: u64,
    /// The oldest of them (the smallest id), `None` when nothing is pending.
    pub oldest_pending: Option<PendingEntry>,
    /// The id of the last entry delivered to the group.
    pub last_delivered_id: String,
    /// Entries the group has read (Redis 7.0 and later, when it can tell).
    pub entries_read: Option<u64>,
    /// The group's consumers (processes), by name.
    pub consumers: Vec<ConsumerStatus>,
    /// The group's dead letters of the stream's category: entries of
    /// `<prefix>:{<category>}:dlq:<group>`.
    pub dead_letters: u64,
}

/// A pending entry: delivered to a consumer, not acknowledged yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingEntry {
    /// The entry id.
    pub id: String,
    /// The consumer it was last delivered to.
    pub consumer: String,
    /// Milliseconds since it was last delivered.
    pub idle_ms: u64,
    /// How often it was delivered.
    pub deliveries: u64,
}

/// One consumer of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerStatus {
    /// The consumer's name (by default `<hostname>-<pid>-<random>`).
    pub name: String,
    /// Entries pending under it.
    pub pending: u64,
    /// Milliseconds since it last read or claimed anything.
    pub idle_ms: u64,
    /// Milliseconds since its last successful read or claim (Redis 7.2 and later).
    pub inactive_ms: Option<u64>,
}

/// One dead-letter stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetterStatus {
    /// Its key, `<prefix>:{<category>}:dlq:<group>`.
    pub stream: String,
    /// The category.
    pub category: String,
    /// The group that gave up on the entries.
    pub group: String,
    /// Dead letters in it.
    pub length: u64,
}

/// Reads the [`Status`] of the streams under a configuration's prefix.
///
/// ```no_run
/// # async fn demo() -> Result<(), domain_events_redis::Error> {
/// use domain_events_redis::{Inspector, RedisConfig};
///
/// let inspector = Inspector::new(RedisConfig::new("redis://127.0.0.1")?)?;
/// for stream in inspector.status().await?.streams {
///     for group in &stream.groups {
///         println!("{} {}: lag {:?}, {} pending", stream.stream, group.group, group.lag, group.pending);
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Inspector {
    pub(crate) config: RedisConfig,
    pub(crate) keys: Keys,
    pub(crate) conn: Connection,
}

impl Inspector {
    /// An inspector under `config`. Does not connect yet; must be called inside a Tokio runtime.
    pub fn new(config: RedisConfig) -> Result<Self, Error> {
        let conn = Connection::in_runtime(&config, "Inspector::new")?;
        Ok(Self {
            keys: config.keys(),
            config,
            conn,
        })
    }

    /// The state of every category stream, consumer group and dead-letter stream now. A stream
    /// or group deleted while this runs is left out.
    pub async fn status(&self) -> Result<Status, Error> {
        let mut streams = BTreeMap::new();
        let mut dlqs = BTreeMap::new();
        for key in self.scan_streams().await? {
            if let Some(category) = self.keys.category_of_stream(&key) {
                streams.insert(key.clone(), category.to_owned());
            } else if let Some((category, group)) = self.keys.dead_letters_of(&key) {
                dlqs.insert(key.clone(), (category.to_owned(), group.to_owned()));
            }
        }
        let (found, dead_letters) = self.streams(streams, dlqs).await?;
        let streams = self.groups(found, &dead_letters).await?;
        Ok(Status {
            prefix: self.keys.prefix().to_owned(),
            streams,
            dead_letters,
        })
    }

    /// The first round trip: `XINFO STREAM` and `XINFO GROUPS` of each category stream (by key,
    /// with its category), `XLEN` of each dead-letter stream (by key, with category and group).
    async fn streams(
        &self,
        streams: BTreeMap<String, String>,
        dlqs: BTreeMap<String, (String, String)>,
    ) -> Result<(Vec<(StreamStatus, Vec<GroupInfo>)>, Vec<DeadLetterStatus>), Error> {
        let mut first = Vec::with_capacity(streams.len() * 2 + dlqs.len());
        for key in streams.keys() {
            first.push(redis::cmd("XINFO").arg("STREAM").arg(key).clone());
            first.push(redis::cmd("XINFO").arg("GROUPS").arg(key).clone());
        }
        for key in dlqs.keys() {
            first.push(redis::cmd("XLEN").arg(key).clone());
        }
        let mut replies = self.pipelined(first).await?.into_iter();

        let mut found = Vec::with_capacity(streams.len());
        for (key, category) in streams {
            let (Some(info), Some(groups)) = (replies.next(), replies.next()) else {
                break;
            };
            let (Some(info), Some(groups)) = (self.present(info)?, self.present(groups)?) else {
                continue;
            };
            if let Some(stream) = parse_stream(key, category, info) {
                found.push((stream, parse_groups(groups)));
            }
        }
        let mut dead_letters = Vec::with_capacity(dlqs.len());
        for (key, (category, group)) in dlqs {
            let Some(reply) = replies.next() else { break };
            if let Some(length) = self.present(reply)?.as_ref().and_then(int) {
                dead_letters.push(DeadLetterStatus {
                    stream: key,
                    category,
                    group,
                    length,
                });
            }
        }

        Ok((found, dead_letters))
    }

    /// The second round trip: the oldest pending entry and the consumers of each group; the
    /// streams with their groups filled in.
    async fn groups(
        &self,
        found: Vec<(StreamStatus, Vec<GroupInfo>)>,
        dead_letters: &[DeadLetterStatus],
    ) -> Result<Vec<StreamStatus>, Error> {
        let mut second = Vec::new();
        for (stream, groups) in &found {
            for group in groups {
                second.push(
                    redis::cmd("XPENDING")
                        .arg(&stream.stream)
                        .arg(&group.name)
                        .arg("-")
                        .arg("+")
                        .arg(1)
                        .clone(),
                );
                second.push(
                    redis::cmd("XINFO")
                        .arg("CONSUMERS")
                        .arg(&stream.stream)
                        .arg(&group.name)
                        .clone(),
                );
            }
        }
        let mut replies = self.pipelined(second).await?.into_iter();
        let depths: BTreeMap<&str, u64> = dead_letters
            .iter()
            .map(|letters| (letters.stream.as_str(), letters.length))
            .collect();
        let mut out = Vec::with_capacity(found.len());
        for (mut stream, groups) in found {
            for group in groups {
                let (Some(oldest), Some(consumers)) = (replies.next(), replies.next()) else {
                    break;
                };
                let (Some(oldest), Some(consumers)) =
                    (self.present(oldest)?, self.present(consumers)?)
                else {
                    continue;
                };
                let dlq = self.keys.dlq(&stream.category, &group.name);
                let dead = depths.get(dlq.as_str()).copied().unwrap_or(0);
                stream.groups.push(group.into_status(
                    &stream.last_generated_id,
                    parse_oldest_pending(&oldest),
                    parse_consumers(consumers),
                    dead,
                ));
            }
            out.push(stream);
        }
        Ok(out)
    }

    /// Every stream key under the prefix (`SCAN ... MATCH <prefix>:{* TYPE stream`), sorted; on
    /// Redis Cluster, of every master.
    pub(crate) async fn scan_streams(&self) -> Result<BTreeSet<String>, Error> {
        let mut keys = BTreeSet::new();
        match self.conn.as_cluster() {
            None => self.scan_node(None, &mut keys).await?,
            Some(cluster) => {
                let mut cluster = cluster.clone();
                let nodes: String = cluster
                    .route_command(
                        redis::cmd("CLUSTER").arg("NODES").clone(),
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
                    )
                    .await
                    .and_then(|reply| Ok(redis::FromRedisValue::from_redis_value(reply)?))
                    .map_err(|e| self.config.error(&e))?;
                for (host, port) in cluster_masters(&nodes) {
                    self.scan_node(
                        Some(RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                            host,
                            port,
                        })),
                        &mut keys,
                    )
                    .await?;
                }
            }
        }
        Ok(keys)
    }

    /// Adds the stream keys under the prefix of one node (`route`, on a cluster) to `keys`.
    async fn scan_node(
        &self,
        route: Option<RoutingInfo>,
        keys: &mut BTreeSet<String>,
    ) -> Result<(), Error> {
        let pattern = self.keys.category_pattern();
        let mut conn = self.conn.clone();
        let mut cursor = 0u64;
        loop {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .arg("TYPE")
                .arg("stream");
            let reply = match (&route, conn.as_cluster()) {
                (Some(route), Some(cluster)) => {
                    cluster.clone().route_command(scan, route.clone()).await
                }
                _ => scan.query_async::<Value>(&mut conn).await,
            };
            let (next, batch): (u64, Vec<Vec<u8>>) = reply
                .and_then(|reply| Ok(redis::FromRedisValue::from_redis_value(reply)?))
                .map_err(|e| self.config.error(&e))?;
            // Keys that are not UTF-8 belong to no category of the layout.
            keys.extend(
                batch
                    .into_iter()
                    .filter_map(|key| String::from_utf8(key).ok()),
            );
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }

    /// Sends `commands` in pipelined round trips; each reply or server error in order.
    pub(crate) async fn pipelined(
        &self,
        commands: Vec<Cmd>,
    ) -> Result<Vec<RedisResult<Value>>, Error> {
        let mut replies = Vec::with_capacity(commands.len());
        let mut conn = self.conn.clone();
        for chunk in commands.chunks(PIPELINE_CHUNK) {
            let mut pipe = redis::pipe();
            pipe.ignore_errors();
            for command in chunk {
                pipe.add_command(command.clone());
            }
            let answers: Vec<RedisResult<Value>> = pipe
                .query_async(&mut conn)
                .await
                .map_err(|e| self.config.error(&e))?;
            replies.extend(answers);
        }
        Ok(replies)
    }

    /// A reply, or `None` when its key or group was deleted meanwhile; any other error fails.
    pub(crate) fn present(&self, reply: RedisResult<Value>) -> Result<Option<Value>, Error> {
        match reply {
            Ok(value) => Ok(Some(value)),
            Err(error) if is_gone(&error) => Ok(None),
            Err(error) => Err(self.config.error(&error)),
        }
    }
}

impl fmt::Debug for Inspector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inspector")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Whether `error` says a stream or group does not exist (any more).
fn is_gone(error: &redis::RedisError) -> bool {
    error.code() == Some("NOGROUP") || error.detail().is_some_and(|d| d.contains("no such key"))
}

/// The field-value pairs of an `XINFO` reply: a flat array in RESP2, a map in RESP3.
pub(crate) fn record(value: Value) -> Vec<(String, Value)> {
    match value {
        Value::Map(pairs) => pairs
            .into_iter()
            .filter_map(|(k, v)| Some((text_of(&k)?, v)))
            .collect(),
        Value::Array(flat) => {
            let mut pairs = Vec::with_capacity(flat.len() / 2);
            let mut flat = flat.into_iter();
            while let (Some(k), Some(v)) = (flat.next(), flat.next()) {
                if let Some(k) = text_of(&k) {
                    pairs.push((k, v));
                }
            }
            pairs
        }
        _ => Vec::new(),
    }
}

/// The value of `name` in a record.
fn field<'a>(record: &'a [(String, Value)], name: &str) -> Option<&'a Value> {
    record.iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// A non-negative integer, sent as an integer or as its text; `None` for nil and anything else.
pub(crate) fn int(value: &Value) -> Option<u64> {
    match value {
        Value::Int(n) => u64::try_from(*n).ok(),
        Value::Nil => None,
        other => text_of(other)?.parse().ok(),
    }
}

/// The id of an entry `[id, fields]` (`first-entry`, `last-entry`); `None` when nil.
fn entry_id(value: &Value) -> Option<String> {
    match value {
        Value::Array(parts) => text_of(parts.first()?),
        _ => None,
    }
}

/// A category stream from its `XINFO STREAM` reply (groups still empty).
fn parse_stream(stream: String, category: String, info: Value) -> Option<StreamStatus> {
    let info = record(info);
    let length = int(field(&info, "length")?)?;
    let stamp = |name| {
        field(&info, name)
            .and_then(entry_id)
            .and_then(|id| EntryStamp::of(&id))
    };
    Some(StreamStatus {
        stream,
        category,
        length,
        first_entry: stamp("first-entry"),
        last_entry: stamp("last-entry"),
        last_generated_id: field(&info, "last-generated-id")
            .and_then(text_of)
            .unwrap_or_default(),
        entries_added: field(&info, "entries-added").and_then(int),
        groups: Vec::new(),
    })
}

/// A group as `XINFO GROUPS` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GroupInfo {
    name: String,
    pending: u64,
    last_delivered_id: String,
    entries_read: Option<u64>,
    lag: Option<u64>,
}

impl GroupInfo {
    fn into_status(
        self,
        last_generated_id: &str,
        oldest_pending: Option<PendingEntry>,
        consumers: Vec<ConsumerStatus>,
        dead_letters: u64,
    ) -> GroupStatus {
        // Redis before 7.0 sends no lag; a group that read the last entry ever added has none.
        let caught_up = self.last_delivered_id == last_generated_id;
        GroupStatus {
            group: self.name,
            lag: self.lag.or(caught_up.then_some(0)),
            pending: self.pending,
            oldest_pending,
            last_delivered_id: self.last_delivered_id,
            entries_read: self.entries_read,
            consumers,
            dead_letters,
        }
    }
}

/// The rows of an `XINFO GROUPS` or `XINFO CONSUMERS` reply that `read` makes sense of, sorted by
/// `name`.
fn rows<T>(
    reply: Value,
    read: impl Fn(&[(String, Value)]) -> Option<T>,
    name: impl Fn(&T) -> &str,
) -> Vec<T> {
    let Value::Array(rows) = reply else {
        return Vec::new();
    };
    let mut rows: Vec<T> = rows
        .into_iter()
        .filter_map(|row| read(&record(row)))
        .collect();
    rows.sort_by(|a, b| name(a).cmp(name(b)));
    rows
}

/// The groups of an `XINFO GROUPS` reply, by name.
fn parse_groups(reply: Value) -> Vec<GroupInfo> {
    let read = |row: &[(String, Value)]| {
        Some(GroupInfo {
            name: field(row, "name").and_then(text_of)?,
            pending: field(row, "pending").and_then(int).unwrap_or(0),
            last_delivered_id: field(row, "last-delivered-id")
                .and_then(text_of)
                .unwrap_or_default(),
            entries_read: field(row, "entries-read").and_then(int),
            lag: field(row, "lag").and_then(int),
        })
    };
    rows(reply, read, |group| &group.name)
}

/// The entry of an `XPENDING <stream> <group> - + 1` reply: `[[id, consumer, idle, deliveries]]`.
fn parse_oldest_pending(reply: &Value) -> Option<PendingEntry> {
    let Value::Array(rows) = reply else {
        return None;
    };
    let Value::Array(cols) = rows.first()? else {
        return None;
    };
    let [id, consumer, idle, deliveries, ..] = cols.as_slice() else {
        return None;
    };
    Some(PendingEntry {
        id: text_of(id)?,
        consumer: text_of(consumer)?,
        idle_ms: int(idle)?,
        deliveries: int(deliveries)?,
    })
}

/// The consumers of an `XINFO CONSUMERS` reply, by name.
fn parse_consumers(reply: Value) -> Vec<ConsumerStatus> {
    let read = |row: &[(String, Value)]| {
        Some(ConsumerStatus {
            name: field(row, "name").and_then(text_of)?,
            pending: field(row, "pending").and_then(int).unwrap_or(0),
            idle_ms: field(row, "idle").and_then(int).unwrap_or(0),
            inactive_ms: field(row, "inactive").and_then(int),
        })
    };
    rows(reply, read, |consumer| &consumer.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    /// A flat RESP2 record of `pairs`.
    fn flat(pairs: Vec<(&str, Value)>) -> Value {
        Value::Array(pairs.into_iter().flat_map(|(k, v)| [bulk(k), v]).collect())
    }

    /// The same record as a RESP3 map.
    fn map(pairs: Vec<(&str, Value)>) -> Value {
        Value::Map(pairs.into_iter().map(|(k, v)| (bulk(k), v)).collect())
    }

    fn entry(id: &str) -> Value {
        Value::Array(vec![
            bulk(id),
            Value::Array(vec![
                bulk("type"),
                bulk("shop:x"),
                bulk("event"),
                bulk("{}"),
            ]),
        ])
    }

    fn stream_info() -> Vec<(&'static str, Value)> {
        vec![
            ("length", Value::Int(3)),
            ("radix-tree-keys", Value::Int(1)),
            ("last-generated-id", bulk("1764176645124-0")),
            ("max-deleted-entry-id", bulk("0-0")),
            ("entries-added", Value::Int(7)),
            ("groups", Value::Int(1)),
            ("first-entry", entry("1764176645123-0")),
            ("last-entry", entry("1764176645124-0")),
        ]
    }

    #[test]
    fn stream_info_is_read_in_both_protocols() {
        for reply in [flat(stream_info()), map(stream_info())] {
            let stream = parse_stream("p:{shop}".into(), "shop".into(), reply).expect("parsed");
            assert_eq!(stream.length, 3);
            assert_eq!(stream.entries_added, Some(7));
            assert_eq!(stream.last_generated_id, "1764176645124-0");
            let first = stream.first_entry.expect("a first entry");
            assert_eq!(first.id, "1764176645123-0");
            assert_eq!(first.at, "2025-11-26T17:04:05.123Z");
            assert_eq!(
                stream.last_entry.map(|e| e.at.as_str().to_owned()),
                Some("2025-11-26T17:04:05.124Z".to_owned())
            );
        }
    }

    #[test]
    fn an_empty_stream_of_an_old_redis_has_no_entries_and_no_count_of_them() {
        let reply = flat(vec![
            ("length", Value::Int(0)),
            ("last-generated-id", bulk("5-1")),
            ("groups", Value::Int(0)),
            ("first-entry", Value::Nil),
            ("last-entry", Value::Nil),
        ]);
        let stream = parse_stream("p:{a}".into(), "a".into(), reply).expect("parsed");
        assert_eq!(
            (stream.length, stream.first_entry, stream.last_entry),
            (0, None, None)
        );
        assert_eq!(stream.entries_added, None);
        assert_eq!(parse_stream("k".into(), "a".into(), Value::Int(1)), None);
    }

    #[test]
    fn groups_keep_an_unknown_lag_unknown_unless_the_group_caught_up() {
        let group = |name: &str, last: &str, read: Value, lag: Option<Value>| {
            let mut pairs = vec![
                ("name", bulk(name)),
                ("consumers", Value::Int(1)),
                ("pending", Value::Int(2)),
                ("last-delivered-id", bulk(last)),
                ("entries-read", read),
            ];
            if let Some(lag) = lag {
                pairs.push(("lag", lag));
            }
            flat(pairs)
        };
        let reply = Value::Array(vec![
            group("search", "2-0", Value::Int(2), Some(Value::Int(3))),
            // Redis 7 cannot tell (entries deleted after the group's position).
            group("billing", "3-0", Value::Int(3), Some(Value::Nil)),
            // Redis 6.2: no lag field at all; one group read everything, the other did not.
            group("audit", "9-0", Value::Nil, None),
            group("crm", "4-0", Value::Nil, None),
        ]);
        let groups = parse_groups(reply);
        let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["audit", "billing", "crm", "search"]);
        let lags: Vec<Option<u64>> = groups
            .into_iter()
            .map(|g| g.into_status("9-0", None, Vec::new(), 0).lag)
            .collect();
        assert_eq!(lags, [Some(0), None, None, Some(3)]);
    }

    #[test]
    fn the_oldest_pending_entry_and_the_consumers_are_read() {
        let pending = Value::Array(vec![Value::Array(vec![
            bulk("1-0"),
            bulk("worker-1"),
            Value::Int(1500),
            Value::Int(3),
        ])]);
        assert_eq!(
            parse_oldest_pending(&pending),
            Some(PendingEntry {
                id: "1-0".into(),
                consumer: "worker-1".into(),
                idle_ms: 1500,
                deliveries: 3,
            })
        );
        assert_eq!(parse_oldest_pending(&Value::Array(Vec::new())), None);
        assert_eq!(
            parse_oldest_pending(&Value::Array(vec![Value::Array(vec![bulk("1-0")])])),
            None
        );

        let consumers = Value::Array(vec![
            map(vec![
                ("name", bulk("w-2")),
                ("pending", Value::Int(0)),
                ("idle", Value::Int(10)),
                ("inactive", Value::Int(-1)),
            ]),
            flat(vec![
                ("name", bulk("w-1")),
                ("pending", Value::Int(2)),
                ("idle", Value::Int(20)),
            ]),
        ]);
        let consumers = parse_consumers(consumers);
        assert_eq!(
            consumers,
            vec![
                ConsumerStatus {
                    name: "w-1".into(),
                    pending: 2,
                    idle_ms: 20,
                    inactive_ms: None,
                },
                ConsumerStatus {
                    name: "w-2".into(),
                    pending: 0,
                    idle_ms: 10,
                    inactive_ms: None,
                },
            ]
        );
    }

    #[test]
    fn entry_ids_give_their_time() {
        let stamp = EntryStamp::of("1764176645123-7").expect("an id");
        assert_eq!(stamp.at, "2025-11-26T17:04:05.123Z");
        assert_eq!(
            EntryStamp::of("0-1").map(|s| s.at),
            Timestamp::parse("1970-01-01T00:00:00.000Z").ok()
        );
        for bad in ["", "x-1", "-1-0", "99999999999999999999999-0"] {
            assert_eq!(EntryStamp::of(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_status_serializes_in_camel_case_with_unknowns_as_null() {
        let status = Status {
            prefix: "p".into(),
            streams: vec![StreamStatus {
                stream: "p:{shop}".into(),
                category: "shop".into(),
                length: 0,
                first_entry: None,
                last_entry: None,
                last_generated_id: "0-0".into(),
                entries_added: None,
                groups: vec![
                    GroupInfo {
                        name: "g".into(),
                        pending: 0,
                        last_delivered_id: "0-0".into(),
                        entries_read: None,
                        lag: None,
                    }
                    .into_status("1-0", None, Vec::new(), 2),
                ],
            }],
            dead_letters: Vec::new(),
        };
        let json = serde_json::to_value(&status).expect("serialized");
        let group = &json["streams"][0]["groups"][0];
        assert_eq!(group["lag"], serde_json::Value::Null);
        assert_eq!(group["deadLetters"], 2);
        assert_eq!(group["lastDeliveredId"], "0-0");
        assert_eq!(json["streams"][0]["firstEntry"], serde_json::Value::Null);
        let back: Status = serde_json::from_value(json).expect("read back");
        assert_eq!(back, status);
    }
}

/// The address of every master that serves slots, from the text of `CLUSTER NODES`
/// (`<id> <ip:port@bus[,hostname]> <flags> <master> <ping> <pong> <epoch> <link> <slot>...`).
fn cluster_masters(nodes: &str) -> Vec<(String, u16)> {
    nodes
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let flags = fields.get(2)?;
            let serving = fields.len() > 8;
            let master = flags.split(',').any(|flag| flag == "master")
                && !flags
                    .split(',')
                    .any(|flag| flag == "fail" || flag == "noaddr");
            if !(master && serving) {
                return None;
            }
            let address = fields.get(1)?.split(['@', ',']).next()?;
            let (host, port) = address.rsplit_once(':')?;
            Some((host.to_owned(), port.parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod cluster_tests {
    use super::cluster_masters;

    #[test]
    fn the_masters_serving_slots_are_read_from_cluster_nodes() {
        let nodes = "\
a1 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460
b2 127.0.0.1:7001@17001,host-b master - 0 0 2 connected 5461-10922
c3 127.0.0.1:7003@17003 slave a1 0 0 1 connected
d4 127.0.0.1:7004@17004 master,fail - 0 0 4 disconnected 10923-16383
e5 127.0.0.1:7005@17005 master - 0 0 5 connected
";
        assert_eq!(
            cluster_masters(nodes),
            vec![
                ("127.0.0.1".to_owned(), 7000),
                ("127.0.0.1".to_owned(), 7001)
            ]
        );
    }
}
