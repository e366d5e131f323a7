//! [`BullmqTransport`]: the emitter's side of BullMQ.

use std::collections::HashSet;
use std::fmt;

use bullmq::{BulkJob, Job, Queue, QueueOptions};
use domain_events::{BoxFuture, OutgoingEvent, PublishOutcome, Transport, TransportError, Uuid};
use redis::Value;
use serde::Deserialize;
use tokio::sync::OnceCell;

use crate::config::BullmqConfig;
use crate::error::Error;
use crate::job_id::job_id;
use crate::telemetry::{ADD_TM_SCRIPT, tm_entry};

/// Adds events as BullMQ jobs for the platform's Node.js consumers (docs/contract.md section 5): one
/// job per event in the configured queue (default `DOMAIN_EVENTS` under prefix `bull`), named by
/// the event's type string, with the envelope as its data and [`job_id`] of the idempotency key
/// as its id, carrying the configured `attempts`, `backoff`, `removeOnComplete` and
/// `removeOnFail`.
///
/// Jobs are written by the BullMQ Rust port (crate `bullmq-official`), which runs BullMQ's own
/// `addStandardJob` Lua script, so the Redis state is exactly what `Queue.add` in Node.js writes.
/// A batch is added with the port's `add_bulk` (the adds are sent concurrently over one
/// multiplexed connection), and one pipeline of `HGET`s, sent right behind the adds on the same
/// connection, reads back which event each job holds.
///
/// # Duplicates
///
/// BullMQ does not add a job whose id is already taken by a job that is still kept (in any state)
/// and answers with that id, exactly as for a new job. To tell the two apart, the transport reads
/// the `eventId` of the data stored under each returned id: the event's own id means this
/// emission (or an earlier try of the same emission) stored the job, [`PublishOutcome::Published`];
/// another id means an earlier emission of the key holds the job,
/// [`PublishOutcome::Duplicate`] with that `eventId`. This is race-free: whichever of two racing
/// emissions BullMQ stored, its data names it (for the one exception, right after Redis lost its
/// script cache, see the next section). If the job is already gone when it is read back
/// (retention [`Retention::Nothing`](crate::Retention::Nothing) and a fast worker), the event is
/// reported as published.
///
/// The dedup window is the retention of finished jobs (24 hours by default, see
/// [`BullmqConfig::remove_on_complete`]); a duplicate emitted after its job was removed becomes a
/// new job.
///
/// # Round trips
///
/// One. The adds and one pipeline of the `HGET`s that read the jobs back, with the `EXISTS` of the
/// [BullMQ 5 pause guard](BullmqConfig::v5_pause_guard) (if on) at its end, are sent together, in
/// that order, on one connection; Redis runs a connection's commands in order, so the `HGET`s see
/// what the adds did. Rarer cases cost one more round trip:
///
/// - a job the read-back did not find is read again once every add has finished: after Redis
///   lost its script cache (a restart, `SCRIPT FLUSH`), BullMQ's client re-sends an add as `EVAL`
///   behind the `HGET`s, which then ran before it (a job already removed again, with
///   [`Retention::Nothing`](crate::Retention::Nothing) and a fast worker, is also read twice).
///   A read-back that found an earlier emission's job stands: that job was there before the add,
///   so the add did not store this one. The one misreport this leaves needs a script cache flush
///   and that job removed in the instant between the `HGET` and the re-sent add: the event is
///   then reported as a duplicate although its job was added (and is delivered);
/// - when the guard finds a `paused` list, the jobs just added are read again and those this
///   call stored are removed (BullMQ's `removeJob`) before [`Error::NotReady`] is returned; a job
///   another emission holds is never removed.
///
/// # Trace context
///
/// A job whose envelope has a `traceparent` also gets it in the job option `tm`, where BullMQ's
/// own telemetry (`bullmq-otel`) carries a job's trace context, so that a Node.js worker with
/// BullMQ telemetry continues the trace (docs/contract.md section 5.1). The port's add cannot
/// write `tm`, so a script adds it to the job's options right behind the adds, with the
/// read-back; it touches only a job holding the event's own `eventId` and without a `tm`. A job
/// whose add ran after it (NOSCRIPT) gets it in one more round trip. It is not atomic with the
/// add: a worker that takes the job in between goes without `tm` (the envelope in its data still
/// carries the `traceparent`).
///
/// The connection is opened by the first publish (or by [`connect`](Self::connect)), so an
/// emitter can start while Redis is down.
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
                    .prefix(config.bullmq_prefix_value());
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
        // The job ids are known before the add, so the read-back can travel with it.
        let ids: Vec<String> = events
            .iter()
            .map(|event| job_id(&event.idempotency_key))
            .collect();
        // The envelopes' traceparents, for BullMQ's telemetry option `tm`.
        let mut traced: Vec<(&str, Uuid, String)> = Vec::new();
        let jobs = events
            .iter()
            .zip(&ids)
            .map(|(event, id)| {
                let data: serde_json::Value =
                    serde_json::from_str(&event.json).map_err(|error| {
                        Error::protocol(format!(
                            "the envelope of {} ({}) is not JSON: {error}",
                            event.event_type, event.event_id
                        ))
                    })?;
                if let Some(traceparent) = data.get("traceparent").and_then(|tp| tp.as_str()) {
                    traced.push((id, event.event_id, tm_entry(traceparent)));
                }
                let options = bullmq::JobOptions {
                    job_id: Some(id.clone()),
                    ..config.job_options()
                };
                Ok(BulkJob::with_options(event.event_type, data, options))
            })
            .collect::<Result<Vec<_>, Error>>()?;

        let guarded = config.v5_pause_guard_enabled();
        let mut reads = read_back(queue, ids.iter().map(String::as_str));
        // The trace context goes into the job options' `tm`, where BullMQ's own telemetry
        // carries it; the port's add cannot write it, so a script adds it right behind the adds,
        // in the same round trip (see `add_tm`).
        add_tm(&mut reads, queue, &traced);
        if guarded {
            // The pause guard's check goes after the adds, at the end of the read-back's
            // pipeline: there it sees a BullMQ 5 pause that landed before the adds or between
            // them and the check (a job it finds stored is then removed again, see `undo`); it
            // misses only a pause and its resume both landing in that gap. Sent before the adds,
            // it would miss a single pause landing between it and the adds. And it needs no
            // message of its own on the connection.
            reads.cmd("EXISTS").arg(queue.keys().paused());
        }
        // A clone of the connection `add_bulk` uses (`Queue::connection().connection()`).
        let mut read_conn = queue.connection().connection();

        // One round trip: the adds and the read-back (with the guard's EXISTS) are sent together
        // on one connection, and Redis runs the commands of a connection in the order they
        // arrive, so the HGETs see what the adds did. They arrive adds first because:
        // - `join!(biased; ..)` polls `add_bulk` first, every time (the unbiased form rotates
        //   which comes first);
        // - each reaches the connection's send queue on its first poll, awaiting nothing before:
        //   `add_bulk` does its work synchronously up to a `join_all` of one EVALSHA future per
        //   job, which polls them in order (up to 30 as a list, beyond that in a
        //   `FuturesOrdered`, in the order they were pushed); a command goes through the
        //   `ConnectionManager` (its connection future already resolved) to the
        //   `MultiplexedConnection`, whose bounded tokio channel is the send queue, FIFO in the
        //   order of the sends (its semaphore queues waiters fairly when the channel is full);
        // - if one of them has to wait (a reconnect in progress, the channel full, the task's
        //   coop budget spent), all that follow it in this task wait too, and are polled again
        //   in the same order.
        // The exception is BullMQ's NOSCRIPT fallback: when Redis lost its script cache
        // (restart, SCRIPT FLUSH), the EVALSHA fails and `add_bulk` re-sends the add as EVAL,
        // which then runs after the HGETs. The HGET then saw the state before the add; `settle`
        // corrects that.
        // Taken before `add_bulk` stamps its jobs (from the same clock): `undo` tells the jobs
        // this call stored by it.
        let since = unix_millis();
        let (added, read) = tokio::join!(
            biased;
            queue.add_bulk(jobs),
            reads.query_async::<Vec<Value>>(&mut read_conn),
        );

        let (replies, paused) = match read {
            Ok(mut replies) => {
                let paused = if guarded {
                    match replies.pop() {
                        Some(Value::Int(exists)) => Ok(exists > 0),
                        other => Err(Error::protocol(format!(
                            "EXISTS of the `paused` list answered {other:?}"
                        ))),
                    }
                } else {
                    Ok(false)
                };
                (Ok(replies), paused)
            }
            Err(error) => {
                let error = Error::from_redis(&error, config);
                (Err(error.clone()), Err(error))
            }
        };
        match paused {
            Ok(false) => {}
            Ok(true) => {
                let undo = self.undo(queue, events, &ids, &added, since).await;
                return Err(v5_paused(config, undo));
            }
            Err(error) if guarded => {
                // Whether the queue is paused is unknown, so the jobs may not stay.
                if let Err(undo) = self.undo(queue, events, &ids, &added, since).await {
                    tracing::warn!(queue = %config.queue_key(), error = %undo,
                        "pause guard failed; jobs added meanwhile not removed");
                }
                return Err(error);
            }
            Err(_) => {}
        }

        let added = added.map_err(|error| Error::from_bullmq(&error, config))?;
        if added.len() != events.len() {
            return Err(Error::protocol(format!(
                "{} jobs added for {} events",
                added.len(),
                events.len()
            )));
        }
        let returned: Vec<&str> = added.iter().map(|job| job.id()).collect();
        let mut replies = replies?;
        let tm_replies = replies.split_off(replies.len().min(returned.len()));
        let stored = parse_read_back(replies, returned.len())?;
        let stored = self.settle(queue, &ids, &returned, stored).await?;
        let outcomes: Vec<PublishOutcome> = events
            .iter()
            .zip(returned.iter().zip(stored))
            .map(|(event, (id, stored))| self.outcome(event, id, stored))
            .collect();
        let published: HashSet<Uuid> = events
            .iter()
            .zip(&outcomes)
            .filter(|(_, outcome)| !outcome.is_duplicate())
            .map(|(event, _)| event.event_id)
            .collect();
        self.add_missed_tm(queue, &traced, &tm_replies, &published)
            .await;
        Ok(outcomes)
    }

    /// Adds `tm` again to the jobs of `traced` whose script (`tm_replies`, in order) did not add
    /// it although their event was `published`: the add ran after it (BullMQ's NOSCRIPT fallback
    /// re-sends an add as EVAL, behind the read-back; always so for the first add after Redis
    /// lost its script cache). One more round trip, only then. A failure loses the trace context
    /// only, not the event.
    async fn add_missed_tm(
        &self,
        queue: &Queue,
        traced: &[(&str, Uuid, String)],
        tm_replies: &[Value],
        published: &HashSet<Uuid>,
    ) {
        let missed: Vec<(&str, Uuid, String)> = traced
            .iter()
            .zip(tm_replies.iter().map(Some).chain(std::iter::repeat(None)))
            .filter(|((_, event_id, _), reply)| {
                !matches!(reply, Some(Value::Int(1))) && published.contains(event_id)
            })
            .map(|((id, event_id, tm), _)| (*id, *event_id, tm.clone()))
            .collect();
        if missed.is_empty() {
            return;
        }
        let mut pipe = redis::pipe();
        add_tm(&mut pipe, queue, &missed);
        let mut conn = queue.connection().connection();
        if let Err(error) = pipe.query_async::<Vec<Value>>(&mut conn).await {
            tracing::warn!(queue = %self.config().queue_key(), error = %Error::from_redis(&error, self.config()),
                "the trace context of the jobs could not be written to their `tm` option");
        }
    }

    /// Makes the read-back exact where it may not be: a job read back as gone may have been
    /// stored by an add that ran after the read (BullMQ's NOSCRIPT fallback re-sends the add as
    /// EVAL, behind the HGETs), so it is read again, now that every add has finished; so is a job
    /// whose returned id is not the id asked for (never the case for ids without deduplication
    /// options, but then the read-back read another key). One more round trip, only for those.
    ///
    /// A read-back that found another event's job is taken as it is: if the add ran in order,
    /// that event holds the job; if it ran after the HGET (the NOSCRIPT fallback), the job it
    /// found was there before the add, which then did not store ours. The one misreport left is
    /// that job being removed in the instant between the HGET and the re-sent add, after a script
    /// cache flush: the event is then reported as a duplicate although its job was added (it is
    /// delivered all the same).
    async fn settle(
        &self,
        queue: &Queue,
        ids: &[String],
        returned: &[&str],
        mut stored: Vec<StoredJob>,
    ) -> Result<Vec<StoredJob>, Error> {
        let again: Vec<usize> = stored
            .iter()
            .enumerate()
            .filter(|(index, stored)| {
                matches!(stored, StoredJob::Gone) || ids[*index] != returned[*index]
            })
            .map(|(index, _)| index)
            .collect();
        if again.is_empty() {
            return Ok(stored);
        }
        tracing::debug!(queue = %self.config().queue_key(), jobs = again.len(),
            "job data not found by the read-back (script cache reloaded, or job already gone); read again");
        let reread = self
            .read_stored(queue, again.iter().map(|&index| returned[index]))
            .await?;
        for (index, job) in again.into_iter().zip(reread) {
            stored[index] = job;
        }
        Ok(stored)
    }

    /// Removes the jobs this call stored, after the pause guard found a BullMQ 5 `paused` list
    /// (or could not tell): a BullMQ 5 resume renames `paused` over `wait`, which would drop them
    /// from `wait` and leave their hashes blocking their ids, so that the event would never run
    /// while a retry of the emission reported it published.
    ///
    /// The jobs are read again, now that every add has finished (the read-back that travelled
    /// with the adds may have run before an add re-sent after NOSCRIPT). A job is removed only if
    /// its data names the event's own `eventId` (never a job another emission holds) and its
    /// `timestamp` (set by BullMQ's client when it builds the job, from the same clock) is not
    /// before `since`, taken before this call's adds: a job an earlier try of the same emission
    /// stored (kept safe in the `paused` list, or already completed) stays. `Err` lists the jobs
    /// that could not be removed.
    async fn undo(
        &self,
        queue: &Queue,
        events: &[OutgoingEvent],
        ids: &[String],
        added: &Result<Vec<Job>, bullmq::Error>,
        since: u64,
    ) -> Result<(), String> {
        let targets: Vec<&str> = match added {
            Ok(jobs) if jobs.len() == ids.len() => jobs.iter().map(|job| job.id()).collect(),
            _ => ids.iter().map(String::as_str).collect(),
        };
        let mut pipe = redis::pipe();
        for id in &targets {
            pipe.cmd("HMGET")
                .arg(queue.keys().job_key(id))
                .arg("data")
                .arg("timestamp");
        }
        let mut conn = queue.connection().connection();
        let replies: Vec<(Option<String>, Option<u64>)> =
            pipe.query_async(&mut conn).await.map_err(|error| {
                format!(
                    "the jobs could not be read back: {}",
                    Error::from_redis(&error, self.config())
                )
            })?;
        if replies.len() != targets.len() {
            return Err(format!(
                "{} replies to {} reads of job data",
                replies.len(),
                targets.len()
            ));
        }
        let ours: Vec<String> = events
            .iter()
            .zip(targets.iter().zip(replies))
            .filter(|(event, (_, (data, timestamp)))| {
                let holder = data
                    .as_deref()
                    .and_then(|data| serde_json::from_str::<StoredEvent>(data).ok())
                    .and_then(|stored| stored.event_id);
                holder == Some(event.event_id) && timestamp.is_some_and(|at| at >= since)
            })
            .map(|(_, (id, _))| (*id).to_owned())
            .collect();
        let mut removals = tokio::task::JoinSet::new();
        for id in ours {
            let queue = queue.clone();
            removals.spawn(async move {
                let removed = queue.remove(&id).await;
                (id, removed)
            });
        }
        let mut failed = Vec::new();
        while let Some(joined) = removals.join_next().await {
            match joined {
                Ok((id, Ok(true))) => {
                    tracing::debug!(queue = %self.config().queue_key(), job_id = %id,
                        "job added while the queue was BullMQ 5-paused removed again");
                }
                Ok((id, Ok(false))) => failed.push(format!("{id} (locked by a worker)")),
                Ok((id, Err(error))) => failed.push(format!(
                    "{id} ({})",
                    Error::from_bullmq(&error, self.config())
                )),
                Err(error) => failed.push(format!("a removal did not finish: {error}")),
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            failed.sort();
            Err(failed.join(", "))
        }
    }

    /// The `eventId` in the data of each job, [`StoredJob::Gone`] for a job that is gone, in one
    /// pipeline.
    async fn read_stored<'a>(
        &self,
        queue: &Queue,
        ids: impl ExactSizeIterator<Item = &'a str>,
    ) -> Result<Vec<StoredJob>, Error> {
        let count = ids.len();
        let mut conn = queue.connection().connection();
        let replies: Vec<Value> = read_back(queue, ids)
            .query_async(&mut conn)
            .await
            .map_err(|error| Error::from_redis(&error, self.config()))?;
        parse_read_back(replies, count)
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

/// The pipeline that reads the data of each job: one `HGET <job key> data` per id.
fn read_back<'a>(queue: &Queue, ids: impl Iterator<Item = &'a str>) -> redis::Pipeline {
    let mut pipe = redis::pipe();
    for id in ids {
        pipe.cmd("HGET").arg(queue.keys().job_key(id)).arg("data");
    }
    pipe
}

/// Adds to `pipe`, for each job of `traced` (job id, event id, `tm` entry), the script that
/// writes BullMQ's telemetry option `tm` into the job's options ([`ADD_TM_SCRIPT`]); each answers
/// 1 when it wrote it.
///
/// Sent right behind the adds, it is not atomic with them: a worker that takes the job in
/// between (one already waiting on the queue may) goes without `tm`; the envelope in the job's
/// data still carries the `traceparent`.
fn add_tm(pipe: &mut redis::Pipeline, queue: &Queue, traced: &[(&str, Uuid, String)]) {
    for (id, event_id, tm) in traced {
        pipe.cmd("EVAL")
            .arg(ADD_TM_SCRIPT)
            .arg(1)
            .arg(queue.keys().job_key(id))
            .arg(event_id.to_string())
            .arg(tm);
    }
}

/// The replies of [`read_back`] for `count` jobs.
fn parse_read_back(replies: Vec<Value>, count: usize) -> Result<Vec<StoredJob>, Error> {
    if replies.len() != count {
        return Err(Error::protocol(format!(
            "{} replies to {count} reads of job data",
            replies.len(),
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

/// Milliseconds since the Unix epoch, as BullMQ's client stamps a job it builds.
fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

/// The error of a batch refused by the pause guard; `undo` says whether its jobs were removed.
fn v5_paused(config: &BullmqConfig, undo: Result<(), String>) -> Error {
    let mut reason = String::from(
        "a BullMQ 5 client paused it while jobs were waiting (its `paused` list exists); a job \
         added now would be dropped from the queue when BullMQ 5 resumes it. Retry after the \
         queue is resumed.",
    );
    if let Err(failed) = undo {
        tracing::error!(queue = %config.queue_key(), jobs = %failed,
            "jobs added while the queue was BullMQ 5-paused could not be removed; a BullMQ 5 resume drops them");
        reason.push_str(&format!(
            " Jobs added meanwhile could not be removed and may be dropped at the resume: {failed}."
        ));
    }
    Error::NotReady {
        queue: config.queue_key(),
        reason,
    }
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
