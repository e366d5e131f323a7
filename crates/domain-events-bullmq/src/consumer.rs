//! [`BullmqConsumer`]: runs [`Handlers`] on the jobs of a BullMQ queue, on the BullMQ Rust port's
//! `Worker`.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bullmq::redis_connection::{AnyConnection, RedisConnection};
use bullmq::worker::{CancellationToken, WorkerEvent};
use bullmq::{Job, Worker, WorkerOptions};
use domain_events::{
    ConsumerHandle, ConsumerStats, DecodeError, Handlers, Incoming, Pipeline, RawEnvelope,
    RetryPolicy, Settle, Shutdown, Verdict,
};
use domain_events_redis::reconnect_backoff;
use serde_json::json;
use tracing::Instrument;

use crate::config::{BullmqConfig, millis};
use crate::error::Error;
use crate::telemetry::traceparent_of_options;

/// Jobs handled at once unless configured otherwise: 16.
pub const DEFAULT_CONCURRENCY: usize = 16;
/// How long a worker's lock on a job lasts before it must be renewed, unless configured otherwise:
/// 30 seconds (BullMQ's default). A job whose lock expires (a crashed process) is handed to
/// another worker by the stalled-job check.
pub const DEFAULT_LOCK_DURATION: Duration = Duration::from_secs(30);
/// How long an idle worker blocks waiting for a job before it looks again, unless configured
/// otherwise: 5 seconds (BullMQ's `drainDelay`). A shutdown may wait this long.
pub const DEFAULT_DRAIN_DELAY: Duration = Duration::from_secs(5);
/// How long a shutdown waits for the jobs in flight, unless configured otherwise: 30 seconds.
pub const DEFAULT_CLOSE_TIMEOUT: Duration = Duration::from_secs(30);

/// Attempts of one done-record command while Redis is unreachable.
const DONE_RECORD_TRIES: u32 = 3;

/// Configures a [`BullmqConsumer`]; made by [`BullmqConsumer::builder`].
pub struct BullmqConsumerBuilder {
    config: BullmqConfig,
    group: String,
    handlers: Handlers,
    concurrency: usize,
    lock_duration: Duration,
    stalled_interval: Option<Duration>,
    max_stalled_count: u32,
    drain_delay: Duration,
    close_timeout: Duration,
    worker_name: Option<String>,
    retry: RetryPolicy,
}

impl BullmqConsumerBuilder {
    /// Sets the retries of a failed handler within one attempt of the job; default
    /// [`RetryPolicy::never`]: BullMQ's own attempts (the job's `attempts` and `backoff`, set by
    /// the producer) retry a failed job.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// How many jobs are handled at once; default [`DEFAULT_CONCURRENCY`], at least 1.
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// How long the lock on a job lasts (renewed at half that while its handlers run); default
    /// [`DEFAULT_LOCK_DURATION`], at least 1 ms.
    pub fn lock_duration(mut self, duration: Duration) -> Self {
        self.lock_duration = duration.max(Duration::from_millis(1));
        self
    }

    /// How often jobs whose lock expired are looked for; default the lock duration.
    pub fn stalled_interval(mut self, interval: Duration) -> Self {
        self.stalled_interval = Some(interval.max(Duration::from_millis(1)));
        self
    }

    /// How often a job may stall (lose its lock) before it is failed; default 1 (BullMQ's default).
    pub fn max_stalled_count(mut self, count: u32) -> Self {
        self.max_stalled_count = count;
        self
    }

    /// How long an idle worker blocks waiting for a job; default [`DEFAULT_DRAIN_DELAY`]; whole
    /// seconds, at least 1.
    pub fn drain_delay(mut self, delay: Duration) -> Self {
        self.drain_delay = delay.max(Duration::from_secs(1));
        self
    }

    /// How long a shutdown waits for jobs in flight before abandoning them (their locks expire
    /// and another worker takes them); default [`DEFAULT_CLOSE_TIMEOUT`].
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// The worker's name, shown by BullMQ tools (`Queue.getWorkers`); default none.
    pub fn worker_name(mut self, name: impl Into<String>) -> Self {
        self.worker_name = Some(name.into());
        self
    }

    /// Checks the settings and makes the consumer. Does not connect yet.
    pub fn build(self) -> Result<BullmqConsumer, Error> {
        self.config.validate()?;
        if self.group.is_empty() {
            return Err(Error::Config("the consumer group name is empty".into()));
        }
        if self.handlers.categories().is_empty() {
            return Err(Error::Config(
                "no handler is registered, so every job would complete unhandled".into(),
            ));
        }
        let settings = Settings {
            concurrency: self.concurrency,
            lock_duration: self.lock_duration,
            stalled_interval: self.stalled_interval.unwrap_or(self.lock_duration),
            max_stalled_count: self.max_stalled_count,
            drain_delay: self.drain_delay,
            close_timeout: self.close_timeout,
            worker_name: self.worker_name,
        };
        let pipeline = Pipeline::builder(self.group.clone(), self.handlers)
            .retry(self.retry)
            .build();
        Ok(BullmqConsumer {
            inner: Arc::new(Inner {
                pipeline,
                config: self.config,
                group: self.group,
                running: KeyLocks::default(),
            }),
            settings,
        })
    }
}

impl fmt::Debug for BullmqConsumerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BullmqConsumerBuilder")
            .field("config", &self.config)
            .field("group", &self.group)
            .field("handlers", &self.handlers)
            .field("concurrency", &self.concurrency)
            .field("lock_duration", &self.lock_duration)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
struct Settings {
    concurrency: usize,
    lock_duration: Duration,
    stalled_interval: Duration,
    max_stalled_count: u32,
    drain_delay: Duration,
    close_timeout: Duration,
    worker_name: Option<String>,
}

/// Runs typed [`Handlers`] on the jobs of a BullMQ queue (default `DOMAIN_EVENTS` under prefix
/// `bull`), built on the BullMQ Rust port's `Worker`: the same queue a NestJS
/// `@Processor('DOMAIN_EVENTS')` reads, fed by [`BullmqTransport`](crate::BullmqTransport) or by
/// Node.js `Queue.add(type, envelope)`.
///
/// For every job:
///
/// 1. its data is read as an envelope; data that is not one is **poison**;
/// 2. if the group's done record for the envelope's idempotency key exists, the job completes
///    without running a handler (a duplicate enqueued under another job id, or a redelivery after
///    a crash between the handlers' success and the job's completion). Jobs of one key are
///    handled one after the other within a consumer, so a duplicate that arrives while the first
///    job runs waits for it and then finds its record; two consumer processes can still run two
///    such jobs at the same moment;
/// 3. [`Handlers::dispatch`] runs the handlers; on success the done record is written
///    (`SET <key> <eventId> PX <done ttl>`, at [`BullmqConfig::done_key`]) and the job completes;
/// 4. an event no handler takes completes as unhandled;
/// 5. a **poison** job (data that is not an envelope; an unknown type or version when the handlers
///    know an event set, see [`Handlers::knowing`]; a payload that does not match its schema) is
///    failed at once with BullMQ's unrecoverable error, whatever attempts it has left; its
///    `failedReason` says why (`poison event: ...`);
/// 6. a failing handler fails the attempt, so BullMQ retries the job per the job's own `attempts`
///    and `backoff` options, and fails it for good after the last attempt.
///
/// A shutdown stops taking jobs, lets the jobs in flight finish (up to the close timeout) and hands
/// a job that was taken meanwhile back to the queue unstarted. Jobs whose lock expired (a crashed
/// process) are taken over by BullMQ's stalled-job check.
/// Delivery is at least once: handlers must be idempotent, and the done record makes repeats rare.
/// Jobs enqueued without `removeOnComplete` / `removeOnFail` are kept per the configured
/// retention (the worker's fallback), so they do not pile up.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use domain_events::{HandlerError, Handlers};
/// use domain_events_bullmq::{BullmqConfig, BullmqConsumer};
/// use domain_events_catalog::{DomainEvent, ImageVariationCompletedEvent};
///
/// let handlers = Handlers::new()
///     .on(|event: ImageVariationCompletedEvent| async move {
///         println!("{} is done", event.payload.variation_id);
///         Ok::<_, HandlerError>(())
///     })
///     .knowing::<DomainEvent>(); // unknown types are poison, not merely unhandled
/// let config = BullmqConfig::new("redis://127.0.0.1:6379")?;
/// let handle = BullmqConsumer::builder(config, "notifications", handlers).build()?.spawn();
/// // ... later, on SIGTERM: stop taking jobs, finish the ones in flight, exit.
/// let stats = handle.shutdown().await?;
/// # Ok(()) }
/// ```
pub struct BullmqConsumer {
    inner: Arc<Inner>,
    settings: Settings,
}

struct Inner {
    /// The delivery rules, the counters, and the shutdown signal (jobs taken after it was
    /// triggered go back to `wait`).
    pipeline: Pipeline,
    config: BullmqConfig,
    group: String,
    /// One lock per done record: jobs of one idempotency key run one after the other here.
    running: KeyLocks,
}

impl BullmqConsumer {
    /// A builder for a consumer of `group` (the consuming service: it names the done records)
    /// running `handlers` on the configured queue.
    pub fn builder(
        config: BullmqConfig,
        group: impl Into<String>,
        handlers: Handlers,
    ) -> BullmqConsumerBuilder {
        BullmqConsumerBuilder {
            config,
            group: group.into(),
            handlers,
            concurrency: DEFAULT_CONCURRENCY,
            lock_duration: DEFAULT_LOCK_DURATION,
            stalled_interval: None,
            max_stalled_count: 1,
            drain_delay: DEFAULT_DRAIN_DELAY,
            close_timeout: DEFAULT_CLOSE_TIMEOUT,
            worker_name: None,
            retry: RetryPolicy::never(),
        }
    }

    /// The consumer group.
    pub fn group(&self) -> &str {
        &self.inner.group
    }

    /// The configuration.
    pub fn config(&self) -> &BullmqConfig {
        &self.inner.config
    }

    /// The counters so far.
    pub fn stats(&self) -> ConsumerStats {
        self.inner.pipeline.stats()
    }

    /// A handle that stops [`run`](Self::run) when triggered.
    pub fn shutdown_handle(&self) -> Shutdown {
        self.inner.pipeline.shutdown_handle()
    }

    /// Connects (waiting for Redis while it is unreachable), processes jobs until the
    /// [`Shutdown`] is triggered, then stops taking jobs, lets the jobs in flight finish (up to the
    /// close timeout) and returns the final counters.
    ///
    /// Fails only when the BullMQ client refuses the setup (not for an unreachable Redis).
    ///
    /// Counters: `received` jobs taken, `handled` (done record written), `duplicates` (done record
    /// already there), `unhandled` (no handler), `poison` (failed at once), `retries` (failed
    /// attempts BullMQ will retry) and `failed` (failed attempts that were the job's last).
    pub async fn run(self) -> Result<ConsumerStats, Error> {
        let BullmqConsumer { inner, settings } = self;
        let shutdown = inner.pipeline.shutdown_handle();
        let result = inner.clone().work(&settings, &shutdown).await;
        let stats = inner.pipeline.stats();
        match result {
            Ok(()) => {
                tracing::debug!(group = %inner.group, queue = %inner.config.queue_key(), ?stats, "consumer stopped");
                Ok(stats)
            }
            Err(error) => {
                tracing::error!(group = %inner.group, queue = %inner.config.queue_key(), %error, "consumer failed");
                Err(error)
            }
        }
    }

    /// Runs the consumer on a new Tokio task.
    pub fn spawn(self) -> BullmqConsumerHandle {
        let pipeline = self.inner.pipeline.clone();
        ConsumerHandle::spawn(self.run(), &pipeline)
    }
}

impl fmt::Debug for BullmqConsumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BullmqConsumer")
            .field("config", &self.inner.config)
            .field("group", &self.inner.group)
            .field("handlers", self.inner.pipeline.handlers())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// A [`BullmqConsumer`] running on its own task; made by [`BullmqConsumer::spawn`]. Dropping the
/// handle leaves the consumer running; [`shutdown`](ConsumerHandle::shutdown) stops it, waiting
/// for the jobs in flight (up to the close timeout).
pub type BullmqConsumerHandle = ConsumerHandle<Error>;

impl Inner {
    /// Starts the worker, runs until the shutdown, closes the worker.
    async fn work(self: Arc<Self>, settings: &Settings, shutdown: &Shutdown) -> Result<(), Error> {
        let Some(worker) = self.start(settings, shutdown).await? else {
            return Ok(());
        };
        let worker = Arc::new(worker);
        tracing::debug!(group = %self.group, queue = %self.config.queue_key(), url = %self.config.redacted_url(),
            concurrency = settings.concurrency, "consumer started");
        let events = tokio::spawn({
            let worker = worker.clone();
            let this = self.clone();
            async move {
                // The worker's event channel is unbounded: drain it, logging what matters.
                while let Some(event) = worker.next_event().await {
                    match event {
                        WorkerEvent::Error(message) => {
                            tracing::warn!(group = %this.group, error = %this.config.scrub(&message), "BullMQ worker error");
                        }
                        WorkerEvent::Stalled { job_id } => {
                            tracing::warn!(group = %this.group, job_id = %job_id, "job stalled (its lock expired), it will run again");
                        }
                        WorkerEvent::Closed => break,
                        _ => {}
                    }
                }
            }
        });
        shutdown.triggered().await;
        tracing::debug!(group = %self.group, "shutting down: finishing the jobs in flight");
        let closed = worker.close(millis(settings.close_timeout)).await;
        if tokio::time::timeout(Duration::from_secs(1), events)
            .await
            .is_err()
        {
            tracing::debug!(group = %self.group, "worker events not closed in time");
        }
        closed.map_err(|error| Error::from_bullmq(&error, &self.config))
    }

    /// Connects the done-record connection and the worker, retrying while Redis is unreachable;
    /// `None` when a shutdown came first.
    async fn start(
        self: &Arc<Self>,
        settings: &Settings,
        shutdown: &Shutdown,
    ) -> Result<Option<Worker>, Error> {
        let mut failures = 0u32;
        loop {
            if shutdown.is_triggered() {
                return Ok(None);
            }
            let attempt = tokio::select! {
                () = shutdown.triggered() => return Ok(None),
                attempt = self.try_start(settings) => attempt,
            };
            match attempt {
                Ok(worker) => return Ok(Some(worker)),
                Err(error) if error.is_transient() => {
                    failures += 1;
                    if failures == 1 {
                        tracing::warn!(group = %self.group, %error, "cannot start the BullMQ worker yet, retrying");
                    }
                    let wait = reconnect_backoff(failures);
                    tokio::select! {
                        () = shutdown.triggered() => return Ok(None),
                        () = tokio::time::sleep(wait) => {}
                    }
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn try_start(self: &Arc<Self>, settings: &Settings) -> Result<Worker, Error> {
        let config = &self.config;
        config.probe().await?;
        let options = config.connection_options();
        let conn = config
            .within_connect_timeout(RedisConnection::new_managed_only(&options))
            .await?;
        let done_conn = conn.connection();
        let this = self.clone();
        let processor = move |job: Job, _token: CancellationToken| {
            let this = this.clone();
            let conn = done_conn.clone();
            async move { this.process(job, conn).await }
        };
        let mut worker_options = WorkerOptions::new()
            .connection(options)
            .prefix(config.bullmq_prefix_value())
            .concurrency(settings.concurrency)
            .lock_duration(settings.lock_duration)
            .stalled_interval(settings.stalled_interval)
            .max_stalled_count(settings.max_stalled_count)
            .drain_delay(settings.drain_delay)
            .remove_on_complete(config.completed_retention().policy())
            .remove_on_fail(config.failed_retention().policy());
        if let Some(name) = &settings.worker_name {
            worker_options = worker_options.name(name.clone());
        }
        config
            .within_connect_timeout(Worker::with_options(
                config.queue_name(),
                processor,
                worker_options,
            ))
            .await
    }

    /// What the worker runs for each job: the [`Pipeline`], and the job's result by its verdict.
    async fn process(
        &self,
        job: Job,
        conn: AnyConnection,
    ) -> Result<serde_json::Value, bullmq::Error> {
        if self.pipeline.shutdown_handle().is_triggered() {
            // Taken while stopping (BullMQ fetches the next job as it completes one): start no
            // new job, hand it back to `wait` for the next worker, without using an attempt.
            tracing::debug!(group = %self.group, job_id = %job.id(), "shutting down: job handed back to the queue");
            return match job.move_to_wait(None).await {
                // "Already moved by the processor": the worker leaves the job alone.
                Ok(_) => Err(bullmq::Error::Delayed),
                // Let the worker move it back itself, as for a rate-limited job.
                Err(_) => Err(bullmq::Error::RateLimited { delay_ms: 0 }),
            };
        }
        let raw = decode(&job);
        if let Ok(raw) = &raw
            && job.name() != raw.event_type
        {
            tracing::debug!(group = %self.group, job_id = %job.id(), job_name = %job.name(), event_type = %raw.event_type,
                "job name differs from the envelope's type; the envelope's type is used");
        }
        let done_key = raw.as_ref().ok().map(|raw| {
            self.config
                .done_key(raw.category(), &self.group, &raw.idempotency_key)
        });
        // A second job of the same key waits for the first, then finds its done record.
        let _running = match &done_key {
            Some(done_key) => Some(self.running.lock(done_key).await),
            None => None,
        };
        let attempts = u64::from(job.opts().attempts.unwrap_or(0).max(1));
        let trace_context = match &raw {
            Ok(raw) if raw.traceparent.is_none() => self.trace_context(&job, &conn).await,
            _ => None,
        };
        let incoming = match &raw {
            Ok(raw) => Incoming::decoded(raw),
            Err(error) => Incoming::unreadable(error.to_string()),
        }
        .delivery(u64::from(job.attempts_made()) + 1, Some(attempts))
        .trace_context(trace_context);
        let recorded = AtomicBool::new(false);
        let settle = JobSettle {
            inner: self,
            conn: &conn,
            done_key: done_key.as_deref(),
            event_id: raw.as_ref().ok().map(|raw| raw.event_id),
            recorded: &recorded,
        };
        let span = tracing::debug_span!("job", job_id = %job.id(), job_name = %job.name());
        let verdict = self
            .pipeline
            .process(incoming, settle)
            .instrument(span)
            .await;
        match verdict {
            Verdict::Handled { handlers } if recorded.load(Ordering::Relaxed) => {
                Ok(json!({ "handled": handlers }))
            }
            Verdict::Handled { .. } => Err(bullmq::Error::ProcessingError(
                "handlers succeeded but the done record could not be written".to_owned(),
            )),
            Verdict::Duplicate => Ok(json!({ "skipped": "already handled", "group": self.group })),
            Verdict::Unhandled => Ok(json!({ "handled": 0 })),
            Verdict::Poison { reason } => Err(bullmq::Error::Unrecoverable(reason)),
            Verdict::Failed { error, .. } => Err(bullmq::Error::ProcessingError(format!(
                "handler failed: {error}"
            ))),
            other => Err(bullmq::Error::ProcessingError(
                other.reason().unwrap_or("not processed").to_owned(),
            )),
        }
    }

    /// The `traceparent` BullMQ's telemetry put in the job's `tm` option (a Node.js producer
    /// with `bullmq-otel`), for an envelope without one; read only when the runtime follows trace
    /// contexts (its `opentelemetry` feature). The port's `Job` does not keep `tm`, so the
    /// options are read from the job hash: one more command for such a job.
    async fn trace_context(&self, job: &Job, conn: &AnyConnection) -> Option<String> {
        if !domain_events::trace::propagates_trace_context() {
            return None;
        }
        let key = format!("{}:{}", self.config.queue_key(), job.id());
        let mut conn = conn.clone();
        let opts: Option<String> = redis::cmd("HGET")
            .arg(key)
            .arg("opts")
            .query_async(&mut conn)
            .await
            .inspect_err(|error| {
                tracing::debug!(group = %self.group, job_id = %job.id(), error = %Error::from_redis(error, &self.config),
                    "job options not read; the handler starts a new trace")
            })
            .ok()
            .flatten();
        opts.as_deref().and_then(traceparent_of_options)
    }

    /// Runs a done-record command, trying again a few times while Redis is unreachable. The
    /// error is classified and scrubbed.
    async fn query<T: redis::FromRedisValue>(
        &self,
        conn: &AnyConnection,
        cmd: &redis::Cmd,
    ) -> Result<T, Error> {
        let mut tries = 0;
        loop {
            let mut conn = conn.clone();
            match cmd.query_async::<T>(&mut conn).await {
                Ok(value) => return Ok(value),
                Err(error) => {
                    tries += 1;
                    let error = Error::from_redis(&error, &self.config);
                    if !error.is_transient() || tries >= DONE_RECORD_TRIES {
                        return Err(error);
                    }
                    tokio::time::sleep(reconnect_backoff(tries)).await;
                }
            }
        }
    }
}

/// The job's data as an envelope (the payload left unparsed).
fn decode(job: &Job) -> Result<RawEnvelope, DecodeError> {
    let bytes = serde_json::to_vec(job.data()).map_err(DecodeError::NotAnEnvelope)?;
    RawEnvelope::from_slice(&bytes)
}

/// How a job is settled by its [`Verdict`]: only a handled job writes something (its done
/// record); the rest is the job's result, which BullMQ records.
struct JobSettle<'a> {
    inner: &'a Inner,
    conn: &'a AnyConnection,
    /// `None` when the job holds no envelope.
    done_key: Option<&'a str>,
    event_id: Option<domain_events::Uuid>,
    /// Set once the done record of a handled job is written.
    recorded: &'a AtomicBool,
}

impl Settle for JobSettle<'_> {
    async fn is_done(&self, _: &RawEnvelope) -> Option<bool> {
        let done_key = self.done_key?;
        let mut exists = redis::cmd("EXISTS");
        exists.arg(done_key);
        match self.inner.query::<u64>(self.conn, &exists).await {
            Ok(found) => Some(found > 0),
            Err(error) => {
                tracing::warn!(group = %self.inner.group, %error, "cannot check the done record; the job is tried again");
                None
            }
        }
    }

    async fn settle(self, verdict: &Verdict) -> bool {
        let (Verdict::Handled { .. }, Some(done_key), Some(event_id)) =
            (verdict, self.done_key, self.event_id)
        else {
            return true;
        };
        let mut set = redis::cmd("SET");
        set.arg(done_key)
            .arg(event_id.to_string())
            .arg("PX")
            .arg(millis(self.inner.config.done_ttl_value()).max(1));
        match self.inner.query::<()>(self.conn, &set).await {
            Ok(()) => {
                self.recorded.store(true, Ordering::Relaxed);
                true
            }
            Err(error) => {
                tracing::warn!(group = %self.inner.group, %error,
                    "handlers succeeded but the done record could not be written; the job will run again");
                false
            }
        }
    }
}

/// Async locks by key, each dropped from the map when its last user is done.
#[derive(Default)]
struct KeyLocks {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl KeyLocks {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<tokio::sync::Mutex<()>>>> {
        // Nothing panics while the map is locked; should it ever, the map is still consistent.
        self.locks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until no one else holds `key`, and holds it until the guard is dropped.
    async fn lock(&self, key: &str) -> KeyGuard<'_> {
        let mutex = self.map().entry(key.to_owned()).or_default().clone();
        let guard = mutex.clone().lock_owned().await;
        KeyGuard {
            locks: self,
            key: key.to_owned(),
            mutex,
            guard: Some(guard),
        }
    }
}

/// Holds one key of [`KeyLocks`].
struct KeyGuard<'a> {
    locks: &'a KeyLocks,
    key: String,
    mutex: Arc<tokio::sync::Mutex<()>>,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut map = self.locks.map();
        // Only the map and this guard still know the lock: no one waits for it.
        if Arc::strong_count(&self.mutex) <= 2 {
            map.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(data: serde_json::Value) -> Job {
        Job::new("image:variation_completed", data, None)
    }

    #[test]
    fn job_data_that_is_not_an_envelope_is_poison() {
        for data in [
            serde_json::Value::Null,
            json!("text"),
            json!({"hello": "world"}),
            json!({"type": "image:variation_completed", "payload": {}}),
        ] {
            let error = decode(&job(data.clone())).expect_err("not an envelope");
            assert!(matches!(error, DecodeError::NotAnEnvelope(_)), "{data}");
        }
        let envelope = json!({
            "eventId": "0193a6c4-7b7e-7c1e-9d0a-5f2b8e4a1c33", "type": "image:variation_completed",
            "version": 1, "occurredAt": "2026-11-26T17:04:05.123Z", "source": "node",
            "correlationId": "var-1", "causationId": null, "idempotencyKey": "image_complete:var-1",
            "payload": {"anything": true}, "extraField": 1
        });
        let raw = decode(&job(envelope)).expect("an envelope");
        assert_eq!(raw.idempotency_key, "image_complete:var-1");
        assert_eq!(raw.payload.get(), r#"{"anything":true}"#);
    }

    #[tokio::test]
    async fn key_locks_serialize_one_key_and_forget_it_afterwards() {
        let locks = Arc::new(KeyLocks::default());
        let first = locks.lock("k").await;
        let other = locks.lock("other").await;
        let waiter = tokio::spawn({
            let locks = locks.clone();
            async move {
                let _second = locks.lock("k").await;
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "waits for the first holder");
        drop(first);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("in time")
            .expect("joined");
        drop(other);
        assert!(locks.map().is_empty(), "no lock left behind");
    }

    #[test]
    fn builder_refuses_unusable_settings() {
        let config = BullmqConfig::new("redis://127.0.0.1:1").expect("valid");
        let empty = BullmqConsumer::builder(config.clone(), "crm", Handlers::new()).build();
        assert!(matches!(empty, Err(Error::Config(_))));
        let handlers = || {
            Handlers::new()
                .on(|_: domain_events_catalog::ImageVariationCompletedEvent| async { Ok(()) })
        };
        assert!(matches!(
            BullmqConsumer::builder(config.clone(), "", handlers()).build(),
            Err(Error::Config(_))
        ));
        assert!(matches!(
            BullmqConsumer::builder(config.clone().queue("a:b"), "crm", handlers()).build(),
            Err(Error::Config(_))
        ));
        let consumer = BullmqConsumer::builder(config, "crm", handlers())
            .concurrency(0)
            .drain_delay(Duration::from_millis(10))
            .build()
            .expect("valid");
        assert_eq!(consumer.settings.concurrency, 1);
        assert_eq!(consumer.settings.drain_delay, Duration::from_secs(1));
        assert_eq!(consumer.group(), "crm");
    }
}
