//! [`RedisTransport`]: the emitter's side of Redis Streams.

use std::fmt;

use domain_events::{BoxFuture, OutgoingEvent, PublishOutcome, Transport, TransportError, Uuid};
use redis::aio::ConnectionManager;
use redis::{Cmd, ErrorKind, Pipeline, RedisResult, RedisWrite as _, ServerErrorKind, Value};

use crate::config::RedisConfig;
use crate::error::Error;
use crate::keys::Keys;
use crate::scripts::{EMIT, EMIT_SCRIPT, ttl_ms};

/// Publishes events to one Redis stream per category (`<prefix>:{<category>}`), each entry with
/// the fields `type` and `event`, trimmed with `MAXLEN ~`.
///
/// Each event's idempotency claim and its entry are written by one Lua script
/// ([the emit script](crate#lua-scripts)), so two emissions of one key inside the claim TTL give
/// one entry, even when they race from different processes; the second gets
/// [`PublishOutcome::Duplicate`] with the eventId holding the claim. A batch is one pipeline of
/// script calls: one round trip.
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
    conn: ConnectionManager,
}

impl RedisTransport {
    /// A transport for `config`. Does not connect yet: the first publish does, so an emitter can
    /// start while Redis is down. Must be called inside a Tokio runtime (an error otherwise).
    pub fn new(config: RedisConfig) -> Result<Self, Error> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::Config(
                "RedisTransport::new must be called inside a Tokio runtime".into(),
            ));
        }
        let conn = config.connection(None)?;
        Ok(Self {
            keys: config.keys(),
            config,
            conn,
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

    /// Publishes `events` in one round trip; one outcome per event, in order. What
    /// [`Transport::publish`] calls.
    pub async fn publish_events(
        &self,
        events: &[OutgoingEvent],
    ) -> Result<Vec<PublishOutcome>, Error> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let mut replies = self.send(events, false).await?;
        if replies.iter().any(is_noscript) {
            // The script cache was emptied (a restart): nothing ran. Load and send again, in one
            // round trip.
            tracing::debug!(url = %self.config.redacted_url(), "emit script not loaded, loading it");
            replies = self.send(events, true).await?;
        }
        replies
            .into_iter()
            .zip(events)
            .enumerate()
            .map(|(i, (reply, event))| self.outcome(i, events.len(), reply, event))
            .collect()
    }

    /// `EVALSHA <emit> 2 <idem> <stream> <eventId> <ttl> <maxlen> <type> <event>`, or without
    /// claims `XADD <stream> MAXLEN ~ <maxlen> * type <type> event <event>`, written straight into
    /// one buffer of the right size (keys and eventId included, no intermediate strings).
    fn emit_call(&self, event: &OutgoingEvent) -> Cmd {
        let json = event.json.as_bytes();
        let size = json.len()
            + 2 * (self.config.prefix().len() + event.category.len())
            + event.idempotency_key.len()
            + event.event_type.len()
            + 160;
        let mut cmd = Cmd::with_capacity(12, size);
        if !self.config.idempotency_claims_enabled() {
            cmd.arg("XADD");
            let _ = self
                .keys
                .write_stream(&mut cmd.writer_for_next_arg(), event.category);
            cmd.arg("MAXLEN")
                .arg("~")
                .arg(self.config.max_len())
                .arg("*")
                .arg("type")
                .arg(event.event_type)
                .arg("event")
                .arg(json);
            return cmd;
        }
        cmd.arg("EVALSHA").arg(EMIT_SCRIPT.get_hash()).arg(2);
        let _ = self.keys.write_idem(
            &mut cmd.writer_for_next_arg(),
            event.category,
            &event.idempotency_key,
        );
        let _ = self
            .keys
            .write_stream(&mut cmd.writer_for_next_arg(), event.category);
        let mut event_id = Uuid::encode_buffer();
        cmd.arg(&*event.event_id.hyphenated().encode_lower(&mut event_id))
            .arg(ttl_ms(self.config.claim_ttl_value()))
            .arg(self.config.max_len())
            .arg(event.event_type)
            .arg(json);
        cmd
    }

    /// Sends one call per event as one pipeline (preceded by `SCRIPT LOAD` when `load`), returning
    /// one reply per event.
    async fn send(
        &self,
        events: &[OutgoingEvent],
        load: bool,
    ) -> Result<Vec<RedisResult<Value>>, Error> {
        let mut pipe = Pipeline::with_capacity(events.len() + 1);
        if load {
            pipe.add_command(redis::cmd("SCRIPT").arg("LOAD").arg(EMIT).clone())
                .ignore();
        }
        for event in events {
            pipe.add_command(self.emit_call(event));
        }
        pipe.ignore_errors();
        let mut conn = self.conn.clone();
        let mut replies: Vec<RedisResult<Value>> = pipe
            .query_async(&mut conn)
            .await
            .map_err(|error| self.config.error(&error))?;
        if load && replies.len() == events.len() + 1 {
            // `ignore()` does not drop replies when errors are kept; drop the SCRIPT LOAD reply.
            drop(replies.remove(0));
        }
        if replies.len() != events.len() {
            return Err(Error::Protocol(format!(
                "{} replies to {} emit calls",
                replies.len(),
                events.len()
            )));
        }
        Ok(replies)
    }

    fn outcome(
        &self,
        index: usize,
        total: usize,
        reply: RedisResult<Value>,
        event: &OutgoingEvent,
    ) -> Result<PublishOutcome, Error> {
        let value = reply.map_err(|error| {
            let error = self.config.error(&error);
            match error {
                Error::Server(message) => Error::Server(format!(
                    "event {} of {total} ({}, {}): {message}",
                    index + 1,
                    event.event_type,
                    event.event_id
                )),
                other => other,
            }
        })?;
        if !self.config.idempotency_claims_enabled() {
            // A plain `XADD` answers the new entry id.
            return match value {
                Value::BulkString(_) | Value::SimpleString(_) => Ok(PublishOutcome::Published),
                other => Err(Error::Protocol(format!("XADD answered {other:?}"))),
            };
        }
        let Value::Array(items) = value else {
            return Err(Error::Protocol(format!("emit script answered {value:?}")));
        };
        let (flag, detail) = match items.as_slice() {
            [Value::Int(flag), detail] => (*flag, detail),
            _ => {
                return Err(Error::Protocol(format!(
                    "emit script answered {} items",
                    items.len()
                )));
            }
        };
        let detail: &[u8] = match detail {
            Value::BulkString(bytes) => bytes,
            Value::SimpleString(text) => text.as_bytes(),
            other => return Err(Error::Protocol(format!("emit script answered {other:?}"))),
        };
        if flag == 1 {
            tracing::trace!(event_type = event.event_type, event_id = %event.event_id,
                entry_id = %String::from_utf8_lossy(detail), "event appended");
            return Ok(PublishOutcome::Published);
        }
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
}

fn is_noscript(reply: &RedisResult<Value>) -> bool {
    matches!(reply, Err(error) if error.kind() == ErrorKind::Server(ServerErrorKind::NoScript))
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
