//! [`BullmqTransport`]: the emitter's side of BullMQ.

use std::fmt;

use bullmq::{BulkJob, Queue, QueueOptions};
use domain_events::{BoxFuture, OutgoingEvent, PublishOutcome, Transport, TransportError, Uuid};
use redis::Value;
use serde::Deserialize;
use tokio::sync::OnceCell;

use crate::config::BullmqConfig;
use crate::error::Error;
use crate::job_id::job_id;

/// Adds events as BullMQ jobs for the platform's Node.js consumers (CONTRACT.md section 5): one
/// job per event in the configured queue (default `DOMAIN_EVENTS` under prefix `bull`), named by
/// the event's type string, with the envelope as its data and [`job_id`] of the idempotency key
/// as its id, carrying the configured `attempts`, `backoff`, `removeOnComplete` and
/// `removeOnFail`.
///
/// Jobs are written by the BullMQ Rust port (crate `bullmq-official`), which runs BullMQ's own
/// `addStandardJob` Lua script, so the Redis state is exactly what `Queue.add` in Node.js writes.
/// A batch is added with the port's `add_bulk` (the adds are sent concurrently over one
/// multiplexed connection), then one pipeline reads back which event each job holds.
///
/// # Duplicates
///
/// BullMQ does not add a job whose id is already taken by a job that is still kept (in any state)
/// and answers with that id, exactly as for a new job. To tell the two apart, the transport reads
/// the `eventId` of the data stored under each returned id: the event's own id means this
/// emission (or an earlier try of the same emission) stored the job, [`PublishOutcome::Published`];
/// another id means an earlier emission of the key holds the job,
/// [`PublishOutcome::Duplicate`] with that `eventId`. This is race-free: whichever of two racing
/// emissions BullMQ stored, its data names it. If the job is already gone when it is read back
/// (retention [`Retention::Nothing`](crate::Retention::Nothing) and a fast worker), the event is
/// reported as published.
///
/// The dedup window is the retention of finished jobs (24 hours by default, see
/// [`BullmqConfig::remove_on_complete`]); a duplicate emitted after its job was removed becomes a
/// new job.
///
/// # Round trips
///
/// One `EXISTS` for the [BullMQ 5 pause guard](BullmqConfig::v5_pause_guard) (if on), the adds,
/// and one pipeline of `HGET`s. The connection is opened by the first publish (or by
/// [`connect`](Self::connect)), so an emitter can start while Redis is down.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use domain_events::Emitter;
/// use domain_events_bullmq::{BullmqConfig, BullmqTransport};
///
/// let transport = BullmqTransport::new(BullmqConfig::new("redis://127.0.0.1:6379")?)?;
/// transport.connect().await?; // optional: fail fast when Redis is not there
/// let emitter = Emitter::new("image-generator", transport);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct BullmqTransport {
    inner: std::sync::Arc<Inner>,
}

struct Inner {
    config: BullmqConfig,
    queue: OnceCell<Queue>,
}

/// The one field of a job's data the transport reads back.
#[derive(Deserialize)]
struct StoredEvent {
    #[serde(rename = "eventId", default)]
    event_id: Option<Uuid>,
}

impl BullmqTransport {
    /// A transport for `config`. Checks the queue name and prefix; does not connect yet.
    pub fn new(config: BullmqConfig) -> Result<Self, Error> {
        config.validate()?;
        Ok(Self {
            inner: std::sync::Arc::new(Inner {
                config,
                queue: OnceCell::new(),
            }),
        })
    }

    /// The configuration, for its redacted URL and queue.
    pub fn config(&self) -> &BullmqConfig {
        &self.inner.config
    }

    /// Opens the connection now (the first publish does it otherwise) and checks that Redis
    /// answers.
    pub async fn connect(&self) -> Result<(), Error> {
        let queue = self.queue().await?;
        let mut conn = queue.connection().connection();
        redis::cmd("PING")
            .query_async::<()>(&mut conn)
            .await
            .map_err(|error| Error::from_redis(&error, self.config()))
    }

    async fn queue(&self) -> Result<&Queue, Error> {
        let config = &self.inner.config;
        self.inner
            .queue
            .get_or_try_init(|| async {
                config.probe().await?;
                let options = QueueOptions::new()
                    .connection(config.connection_options())
                    .prefix(config.key_prefix());
                let queue = config
                    .within_connect_timeout(Queue::with_options(config.queue_name(), options))
                    .await?;
                tracing::debug!(url = %config.redacted_url(), queue = %config.queue_key(), "BullMQ queue connected");
                Ok(queue)
            })
            .await
    }

    /// Adds `events` as jobs; one outcome per event, in order. What [`Transport::publish`] calls.
    pub async fn publish_events(
        &self,
        events: &[OutgoingEvent],
    ) -> Result<Vec<PublishOutcome>, Error> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let config = self.config();
        let queue = self.queue().await?;
        if config.v5_pause_guard_enabled() {
            self.check_not_v5_paused(queue).await?;
        }
        let jobs = events
            .iter()
            .map(|event| {
                let data: serde_json::Value =
                    serde_json::from_str(&event.json).map_err(|error| {
                        Error::Protocol(format!(
                            "the envelope of {} ({}) is not JSON: {error}",
                            event.event_type, event.event_id
                        ))
                    })?;
                let options = bullmq::JobOptions {
                    job_id: Some(job_id(&event.idempotency_key)),
                    ..config.job_options()
                };
                Ok(BulkJob::with_options(event.event_type, data, options))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let added = queue
            .add_bulk(jobs)
            .await
            .map_err(|error| Error::from_bullmq(&error, config))?;
        if added.len() != events.len() {
            return Err(Error::Protocol(format!(
                "{} jobs added for {} events",
                added.len(),
                events.len()
            )));
        }
        let ids: Vec<String> = added.iter().map(|job| job.id().to_owned()).collect();
        let stored = self.stored_event_ids(queue, &ids).await?;
        Ok(events
            .iter()
            .zip(ids.iter().zip(stored))
            .map(|(event, (id, stored))| self.outcome(event, id, stored))
            .collect())
    }

    /// Fails with [`Error::NotReady`] when the queue has a BullMQ 5 `paused` list.
    async fn check_not_v5_paused(&self, queue: &Queue) -> Result<(), Error> {
        let mut conn = queue.connection().connection();
        let paused: u64 = redis::cmd("EXISTS")
            .arg(queue.keys().paused())
            .query_async(&mut conn)
            .await
            .map_err(|error| Error::from_redis(&error, self.config()))?;
        if paused > 0 {
            return Err(Error::NotReady {
                queue: self.config().queue_key(),
                reason: "a BullMQ 5 client paused it while jobs were waiting (its `paused` list \
                         exists); a job added now would be dropped from the queue when BullMQ 5 \
                         resumes it. Retry after the queue is resumed."
                    .into(),
            });
        }
        Ok(())
    }

    /// The `eventId` in the data of each job, `Ok(None)` for a job that is gone, in one pipeline.
    async fn stored_event_ids(
        &self,
        queue: &Queue,
        ids: &[String],
    ) -> Result<Vec<StoredJob>, Error> {
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.cmd("HGET").arg(queue.keys().job_key(id)).arg("data");
        }
        let mut conn = queue.connection().connection();
        let replies: Vec<Value> = pipe
            .query_async(&mut conn)
            .await
            .map_err(|error| Error::from_redis(&error, self.config()))?;
        if replies.len() != ids.len() {
            return Err(Error::Protocol(format!(
                "{} replies to {} reads of job data",
                replies.len(),
                ids.len()
            )));
        }
        Ok(replies
            .into_iter()
            .map(|reply| match reply {
                Value::BulkString(bytes) => StoredJob::Data(
                    serde_json::from_slice::<StoredEvent>(&bytes)
                        .ok()
                        .and_then(|stored| stored.event_id),
                ),
                Value::SimpleString(text) => StoredJob::Data(
                    serde_json::from_str::<StoredEvent>(&text)
                        .ok()
                        .and_then(|stored| stored.event_id),
                ),
                _ => StoredJob::Gone,
            })
            .collect())
    }

    fn outcome(&self, event: &OutgoingEvent, id: &str, stored: StoredJob) -> PublishOutcome {
        let expected = job_id(&event.idempotency_key);
        match stored {
            StoredJob::Data(Some(existing)) if existing == event.event_id && id == expected => {
                tracing::trace!(event_type = event.event_type, event_id = %event.event_id, job_id = %id, "job added");
                PublishOutcome::Published
            }
            StoredJob::Gone if id == expected => {
                tracing::debug!(event_type = event.event_type, event_id = %event.event_id, job_id = %id,
                    "job already removed when read back; reported as published");
                PublishOutcome::Published
            }
            StoredJob::Data(existing) => {
                tracing::debug!(event_type = event.event_type, idempotency_key = %event.idempotency_key,
                    job_id = %id, existing_event_id = ?existing, "duplicate emission, job not added");
                PublishOutcome::Duplicate {
                    existing_event_id: existing,
                }
            }
            StoredJob::Gone => PublishOutcome::Duplicate {
                existing_event_id: None,
            },
        }
    }
}

/// What a job's hash held when it was read back.
enum StoredJob {
    /// The hash exists; the `eventId` of its data, if it has one.
    Data(Option<Uuid>),
    /// The hash is gone.
    Gone,
}

impl Transport for BullmqTransport {
    fn name(&self) -> &'static str {
        "bullmq"
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

impl fmt::Debug for BullmqTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BullmqTransport")
            .field("config", self.config())
            .field("connected", &self.inner.queue.initialized())
            .finish()
    }
}
