//! [`RedisTransport`]: the emitter's side of Redis Streams.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use crate::connection::Connection;
use domain_events::{BoxFuture, OutgoingEvent, PublishOutcome, Transport, TransportError, Uuid};
use redis::{Cmd, RedisResult, RedisWrite as _, Value};

use crate::coalesce::{Answer, Coalescer, Sink, submit};
use crate::config::RedisConfig;
use crate::durability;
use crate::error::Error;
use crate::keys::{Keys, partition_of};
use crate::partitions::check_layout;
use crate::scripts::{EMIT, EMIT_SCRIPT, calls_by_key, send_calls, ttl_ms};

/// Publishes events to one Redis stream per category (`<prefix>:{<category>}`), each entry with
/// the fields `type` and `event`, trimmed with `MAXLEN ~`.
///
/// Each event's idempotency claim and its entry are written by one Lua script
/// ([the emit script](crate#lua-scripts)), so two emissions of one key inside the claim TTL give
/// one entry, even when they race from different processes; the second gets
/// [`PublishOutcome::Duplicate`] with the eventId holding the claim. A batch is one round trip:
/// one script call per category (and per 256 events), sent as one pipeline.
///
/// Publishes of one transport (and its clones) that overlap are sent together: one that finds
/// another in flight waits for it, then goes to Redis with the others that came meanwhile, as one
/// batch. A serial emitter never waits; concurrent emitters cost Redis one script call per batch
/// instead of one per event.
///
/// A producer that does not need the claim turns it off with
/// [`RedisConfig::idempotency_claims`]`(false)`: then a batch is one pipeline of plain `XADD`s
/// and every event is reported published.
///
/// Cloning is cheap and clones share the connection, which reconnects by itself after Redis went
/// away. Wrap it in an [`Emitter`](struct@domain_events::Emitter), whose timeout bounds every call.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use domain_events::Emitter;
/// use domain_events_redis::{RedisConfig, RedisTransport};
///
/// let transport = RedisTransport::new(RedisConfig::new("redis://127.0.0.1:6379")?)?;
/// let emitter = Emitter::new("image-generator", transport);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisTransport {
    config: RedisConfig,
    keys: Keys,
    conn: Connection,
    /// Publishes waiting for the call in flight (shared by clones).
    coalescer: Arc<Coalescer<RedisTransport>>,
    /// The categories whose partition count Redis was found to agree with (shared by clones).
    layouts: Arc<Mutex<HashSet<&'static str>>>,
}

impl RedisTransport {
    /// A transport for `config`. Does not connect yet: the first publish does, so an emitter can
    /// start while Redis is down. Must be called inside a Tokio runtime (an error otherwise).
    ///
    /// Fails with [`Error::Config`] when [`RedisConfig::wait_for_replicas`] is unusable.
    pub fn new(config: RedisConfig) -> Result<Self, Error> {
        if let Some(wait) = config.replica_wait() {
            wait.check(&config)?;
        }
        let conn = Connection::in_runtime(&config, "RedisTransport::new")?;
        Ok(Self {
            keys: config.keys(),
            config,
            conn,
            coalescer: Arc::default(),
            layouts: Arc::default(),
        })
    }

    /// The configuration, for its redacted URL and key layout.
    pub fn config(&self) -> &RedisConfig {
        &self.config
    }

    /// Checks that Redis answers.
    pub async fn ping(&self) -> Result<(), Error> {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<()>(&mut conn)
            .await
            .map_err(|error| self.config.error(&error))
    }

    /// Publishes `events`; one outcome per event, in order. What [`Transport::publish`] calls.
    ///
    /// The events go to Redis in one round trip, at once when no other publish of this transport
    /// (or a clone) is in flight; otherwise they wait for it and then go together with the
    /// others that came meanwhile (see [`RedisTransport`]).
    pub async fn publish_events(
        &self,
        events: &[OutgoingEvent],
    ) -> Result<Vec<PublishOutcome>, Error> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let results = submit(self, events).await?;
        let total = results.len();
        results
            .into_iter()
            .zip(events)
            .enumerate()
            .map(|(index, (result, event))| {
                result.map_err(|error| Self::event_error(index, total, event, error))
            })
            // The first failed event, if any, is the caller's error.
            .collect()
    }

    /// Publishes `events` in one round trip, now, then waits for the replicas when
    /// [`RedisConfig::wait_for_replicas`] asks for it: one result per event, in order, or the
    /// error that kept the whole call from Redis.
    pub(crate) async fn publish_now(
        &self,
        events: &[OutgoingEvent],
    ) -> Result<Vec<Result<PublishOutcome, Error>>, Error> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        self.check_layouts(events).await?;
        // Each event's hash tag, worked out once: the append writes to it, and `WAIT` goes to the
        // master of its slot (a partition's, when the category is partitioned).
        let tags = events
            .iter()
            .map(|event| self.tag(event))
            .collect::<Vec<_>>();
        let results = self.append(events, &tags).await?;
        Ok(
            durability::confirm(&self.conn, &self.config, results, |index| {
                self.keys.stream(&tags[index])
            })
            .await,
        )
    }

    /// Writes `events` in one round trip, each to the stream of its hash tag in `tags`: one
    /// result per event, in order, or the error that kept the whole call from Redis.
    async fn append(
        &self,
        events: &[OutgoingEvent],
        tags: &[Cow<'static, str>],
    ) -> Result<Vec<Result<PublishOutcome, Error>>, Error> {
        if !self.config.idempotency_claims_enabled() {
            // Plain `XADD`s never answer NOSCRIPT, so the script is never loaded.
            let replies = send_calls(&self.conn, EMIT, events.len(), || {
                events
                    .iter()
                    .zip(tags)
                    .map(|(event, tag)| self.append_call(event, tag))
            })
            .await
            .map_err(|error| self.config.error(&error))?;
            return Ok(replies
                .into_iter()
                .map(|reply| {
                    // A plain `XADD` answers the new entry id.
                    match reply.map_err(|error| self.config.error(&error))? {
                        Value::BulkString(_) | Value::SimpleString(_) => {
                            Ok(PublishOutcome::Published)
                        }
                        other => Err(Error::Protocol(format!("XADD answered {other:?}"))),
                    }
                })
                .collect());
        }
        let calls = calls_by_key(tags.iter());
        let replies = send_calls(&self.conn, EMIT, calls.len(), || {
            calls
                .iter()
                .map(|indices| self.emit_call(events, tags, indices))
        })
        .await
        .map_err(|error| self.config.error(&error))?;
        let mut outcomes: Vec<Option<Result<PublishOutcome, Error>>> = vec![None; events.len()];
        for (indices, reply) in calls.iter().zip(replies) {
            match self.call_outcomes(events, indices, reply) {
                Ok(answers) => {
                    for (&index, answer) in indices.iter().zip(answers) {
                        outcomes[index] = Some(answer);
                    }
                }
                // The call as a whole failed: so did each of its events.
                Err(error) => {
                    for &index in indices {
                        outcomes[index] = Some(Err(error.clone()));
                    }
                }
            }
        }
        Ok(outcomes
            .into_iter()
            .map(|outcome| {
                outcome.unwrap_or_else(|| Err(Error::Protocol("an event got no answer".into())))
            })
            .collect())
    }

    /// The result of each event of one emit script call, from its reply.
    fn call_outcomes(
        &self,
        events: &[OutgoingEvent],
        indices: &[usize],
        reply: RedisResult<Value>,
    ) -> Result<Vec<Result<PublishOutcome, Error>>, Error> {
        let value = reply.map_err(|error| self.config.error(&error))?;
        let Value::Array(items) = value else {
            return Err(Error::Protocol(format!("emit script answered {value:?}")));
        };
        if items.len() != 2 * indices.len() {
            return Err(Error::Protocol(format!(
                "emit script answered {} items for {} events",
                items.len(),
                indices.len()
            )));
        }
        Ok(indices
            .iter()
            .zip(items.chunks_exact(2))
            .map(|(&index, pair)| Self::outcome(pair, &events[index]))
            .collect())
    }

    /// Checks, once per category and transport, that Redis records the partition count this
    /// transport is configured with ([`Error::PartitionsChanged`] otherwise).
    async fn check_layouts(&self, events: &[OutgoingEvent]) -> Result<(), Error> {
        let unchecked: Vec<&'static str> = {
            let layouts = self.layouts.lock().unwrap_or_else(PoisonError::into_inner);
            let mut unchecked: Vec<&'static str> = events
                .iter()
                .map(|event| event.category)
                .filter(|category| !layouts.contains(category))
                .collect();
            unchecked.sort_unstable();
            unchecked.dedup();
            unchecked
        };
        for category in unchecked {
            check_layout(&self.conn, &self.config, category)
                .await
                .map_err(|error| self.config.error(&error))??;
            self.layouts
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(category);
        }
        Ok(())
    }

    /// The hash tag of the partition `event` goes to: its category, or for a partitioned one
    /// `<category>#<p>` with `p` from the event's correlation id.
    fn tag(&self, event: &OutgoingEvent) -> Cow<'static, str> {
        let partitions = self.config.partitions_of(event.category);
        if partitions <= 1 {
            return Cow::Borrowed(event.category);
        }
        let partition = partition_of(&event.correlation_id, partitions);
        Cow::Owned(Keys::tag(event.category, partition, partitions))
    }

    /// `XADD <stream> MAXLEN ~ <maxlen> * type <type> event <event>` (no claim) to the stream of
    /// `tag`, written straight into one buffer of the right size.
    fn append_call(&self, event: &OutgoingEvent, tag: &str) -> Cmd {
        let json = event.json.as_bytes();
        let size = json.len()
            + self.config.key_prefix_value().len()
            + tag.len()
            + event.event_type.len()
            + 96;
        let mut cmd = Cmd::with_capacity(10, size);
        cmd.arg("XADD");
        let _ = self.keys.write_stream(&mut cmd.writer_for_next_arg(), tag);
        cmd.arg("MAXLEN")
            .arg("~")
            .arg(self.config.max_len())
            .arg("*")
            .arg("type")
            .arg(event.event_type)
            .arg("event")
            .arg(json);
        cmd
    }

    /// `EVALSHA <emit> <1 + n> <stream> <claim>... <ttl> <maxlen> (<eventId> <type> <event>)...`
    /// for the events at `indices` (one tag: a category, or a partition of one), written straight
    /// into one buffer of the right size (keys and eventIds included, no intermediate strings).
    fn emit_call(&self, events: &[OutgoingEvent], tags: &[Cow<'_, str>], indices: &[usize]) -> Cmd {
        let prefix = self.config.key_prefix_value().len();
        let size: usize = indices
            .iter()
            .map(|&i| {
                let event = &events[i];
                event.json.len()
                    + prefix
                    + tags[i].len()
                    + event.idempotency_key.len()
                    + event.event_type.len()
                    + 96
            })
            .sum::<usize>()
            + 128;
        let mut cmd = Cmd::with_capacity(6 + 4 * indices.len(), size);
        cmd.arg("EVALSHA")
            .arg(EMIT_SCRIPT.get_hash())
            .arg(1 + indices.len());
        let Some(&first) = indices.first() else {
            return cmd;
        };
        let _ = self
            .keys
            .write_stream(&mut cmd.writer_for_next_arg(), &tags[first]);
        for &i in indices {
            let _ = self.keys.write_idem(
                &mut cmd.writer_for_next_arg(),
                &tags[i],
                &events[i].idempotency_key,
            );
        }
        cmd.arg(ttl_ms(self.config.claim_ttl_value()))
            .arg(self.config.max_len());
        let mut event_id = Uuid::encode_buffer();
        for &i in indices {
            let event = &events[i];
            cmd.arg(&*event.event_id.hyphenated().encode_lower(&mut event_id))
                .arg(event.event_type)
                .arg(event.json.as_bytes());
        }
        cmd
    }

    /// `error` of the event at `index` of `total` a caller published, naming the event when Redis
    /// refused it.
    pub(crate) fn event_error(
        index: usize,
        total: usize,
        event: &OutgoingEvent,
        error: Error,
    ) -> Error {
        match error {
            Error::Server(message) => Error::Server(format!(
                "event {} of {total} ({}, {}): {message}",
                index + 1,
                event.event_type,
                event.event_id
            )),
            other => other,
        }
    }

    /// The outcome of one event from its two items of the emit script's answer.
    fn outcome(pair: &[Value], event: &OutgoingEvent) -> Result<PublishOutcome, Error> {
        let (flag, detail) = match pair {
            [Value::Int(flag), detail] => (*flag, detail),
            _ => return Err(Error::Protocol(format!("emit script answered {pair:?}"))),
        };
        let detail: &[u8] = match detail {
            Value::BulkString(bytes) => bytes,
            Value::SimpleString(text) => text.as_bytes(),
            other => return Err(Error::Protocol(format!("emit script answered {other:?}"))),
        };
        match flag {
            1 => {
                tracing::trace!(event_type = event.event_type, event_id = %event.event_id,
                    entry_id = %String::from_utf8_lossy(detail), "event appended");
                Ok(PublishOutcome::Published)
            }
            0 => {
                let existing = Uuid::try_parse_ascii(detail).ok();
                if existing == Some(event.event_id) {
                    // Our own earlier attempt holds the claim (a retried call): it was published.
                    return Ok(PublishOutcome::Published);
                }
                tracing::debug!(event_type = event.event_type, idempotency_key = %event.idempotency_key,
                    existing_event_id = %String::from_utf8_lossy(detail), "duplicate emission, not appended");
                Ok(PublishOutcome::Duplicate {
                    existing_event_id: existing,
                })
            }
            _ => Err(Error::Server(String::from_utf8_lossy(detail).into_owned())),
        }
    }
}

impl Sink for RedisTransport {
    type Item = OutgoingEvent;
    type Outcome = PublishOutcome;
    type Error = Error;

    fn coalescer(&self) -> &Coalescer<Self> {
        &self.coalescer
    }

    fn send(&self, items: &[OutgoingEvent]) -> impl Future<Output = Answer<Self>> + Send {
        self.publish_now(items)
    }

    fn abandoned(&self) -> Error {
        Error::Unavailable {
            url: self.config.redacted_url().to_owned(),
            message: "the call carrying this event was abandoned (the runtime shut down); the \
                      event may have been published, and emitting it again with the same \
                      idempotency key is safe"
                .into(),
        }
    }
}

impl Transport for RedisTransport {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn publish<'a>(
        &'a self,
        events: &'a [OutgoingEvent],
    ) -> BoxFuture<'a, Result<Vec<PublishOutcome>, TransportError>> {
        Box::pin(async move {
            self.publish_events(events)
                .await
                .map_err(TransportError::from)
        })
    }
}

impl fmt::Debug for RedisTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTransport")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
