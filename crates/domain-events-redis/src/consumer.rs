//! [`RedisConsumer`]: runs [`Handlers`] on the streams of a consumer group.
//!
//! See [`RedisConsumer`] for what it does with each entry.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::Duration;

use crate::connection::Connection;
use domain_events::{
    ConsumerHandle, ConsumerStats, Handlers, Incoming, Pipeline, RawEnvelope, RetryPolicy, Settle,
    Shutdown, Verdict,
};
use redis::{RedisError, Value};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::Instrument;

use crate::acker::{Ack, Acker};
use crate::config::RedisConfig;
use crate::connection_config::reconnect_backoff;
use crate::entry::{DeadLettered, Entry, entry_size, parse_pending, parse_read, parse_scripted};
use crate::error::{Error, is_transient, waiting_for};
use crate::keys::Keys;
use crate::scripts::{
    CLAIM, CLAIM_SCRIPT, DEAD_LETTER_SCRIPT, READ, READ_SCRIPT, send_calls, ttl_ms,
};

/// Handlers running at once unless configured otherwise: 16.
pub const DEFAULT_CONCURRENCY: usize = 16;
/// Deliveries of an entry before it is dead-lettered, unless configured otherwise: 5.
pub const DEFAULT_MAX_DELIVERIES: u32 = 5;
/// How long an entry must have been pending before another consumer claims it, unless configured
/// otherwise: 30 seconds. Must be longer than a handler's longest run, retries included.
pub const DEFAULT_CLAIM_IDLE: Duration = Duration::from_secs(30);
/// How long one read waits for new entries, unless configured otherwise: 2 seconds.
pub const DEFAULT_BLOCK: Duration = Duration::from_secs(2);
/// Entries read ahead of the free handler slots, unless configured otherwise: 64.
pub const DEFAULT_PREFETCH: usize = 64;
/// Bytes of entries one read or claim takes at most, unless configured otherwise: 64 MiB. A
/// batch of the default 80 entries of a few KiB each stays far below it; it is also large enough
/// that a read of several streams still takes many entries per step (see
/// [`max_batch_bytes`](RedisConsumerBuilder::max_batch_bytes)).
pub const DEFAULT_MAX_BATCH_BYTES: usize = 64 * 1024 * 1024;
/// The largest entry delivered to a handler, unless configured otherwise: 1 MiB, hundreds of
/// times a typical event. A larger entry is dead-lettered inside Redis, with its size as the
/// reason, without this process ever holding it.
pub const DEFAULT_MAX_ENTRY_BYTES: usize = 1024 * 1024;

/// How long a shutdown may take unless configured otherwise: 10 seconds.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Attempts to settle (acknowledge or dead-letter) an entry once a shutdown was asked for.
const SETTLE_ATTEMPTS_AFTER_STOP: u32 = 3;

/// Where a new consumer group starts reading a stream it is created on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartFrom {
    /// From the first entry still in the stream (`0`).
    #[default]
    Beginning,
    /// Only entries appended after the group was created (`$`).
    NewOnly,
}

impl StartFrom {
    fn id(self) -> &'static str {
        match self {
            StartFrom::Beginning => "0",
            StartFrom::NewOnly => "$",
        }
    }
}

/// Configures a [`RedisConsumer`]; made by [`RedisConsumer::builder`].
pub struct RedisConsumerBuilder {
    config: RedisConfig,
    group: String,
    handlers: Handlers,
    consumer_name: Option<String>,
    concurrency: usize,
    batch_size: Option<usize>,
    prefetch: usize,
    block: Duration,
    retry: RetryPolicy,
    max_deliveries: u32,
    claim_idle: Duration,
    claim_interval: Option<Duration>,
    start_from: StartFrom,
    shutdown_grace: Duration,
    max_batch_bytes: usize,
    max_entry_bytes: usize,
}

impl RedisConsumerBuilder {
    /// The consumer's name within the group; default `<hostname>-<pid>-<random>`. A process that
    /// restarts under the same name takes back its own pending entries at once.
    pub fn consumer_name(mut self, name: impl Into<String>) -> Self {
        self.consumer_name = Some(name.into());
        self
    }

    /// How many handlers run at once; default [`DEFAULT_CONCURRENCY`], at least 1.
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// How many entries one read asks for at most; default the concurrency plus the
    /// [prefetch](Self::prefetch).
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = Some(batch_size.max(1));
        self
    }

    /// How many entries may wait in this process for a free handler slot; default
    /// [`DEFAULT_PREFETCH`]; 0 reads only as many entries as there are free slots.
    ///
    /// Reading ahead saves a read and a done check per entry: they are made for a whole batch.
    /// An entry read ahead is pending under this consumer while it waits, so keep
    /// `prefetch ÷ concurrency × a handler's run` well under the claim idle time. An entry that
    /// waited longer than half of it is not run but released for claiming (and the read-ahead
    /// halved); so are the entries still waiting at shutdown.
    pub fn prefetch(mut self, prefetch: usize) -> Self {
        self.prefetch = prefetch;
        self
    }

    /// How long one read waits for new entries; default [`DEFAULT_BLOCK`], at least 1 ms.
    pub fn block(mut self, block: Duration) -> Self {
        self.block = block.max(Duration::from_millis(1));
        self
    }

    /// How many bytes of entries one read or claim takes at most; default
    /// [`DEFAULT_MAX_BATCH_BYTES`], at least the [entry limit](Self::max_entry_bytes). An entry's
    /// size is the sum of its field names' and values' lengths. The budget is shared by the
    /// streams read (each gets an equal part, at least one entry's worth); a read always takes at
    /// least one entry when one is there.
    pub fn max_batch_bytes(mut self, bytes: usize) -> Self {
        self.max_batch_bytes = bytes.max(1);
        self
    }

    /// The largest entry delivered to a handler; default [`DEFAULT_MAX_ENTRY_BYTES`], at least 1.
    /// A larger entry is dead-lettered (with the reason `entry of <size> bytes is larger than the
    /// limit of <limit> bytes`) by a script inside Redis, without this process holding it; only
    /// one that arrives while a read waits for new entries is received once (at most one per
    /// stream) before it is dead-lettered.
    pub fn max_entry_bytes(mut self, bytes: usize) -> Self {
        self.max_entry_bytes = bytes.max(1);
        self
    }

    /// In-process retries of a failing handler; default [`RetryPolicy::default`].
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Deliveries before a failing entry is dead-lettered; default [`DEFAULT_MAX_DELIVERIES`], at
    /// least 1.
    pub fn max_deliveries(mut self, max: u32) -> Self {
        self.max_deliveries = max.max(1);
        self
    }

    /// How long an entry must have been pending before it is claimed (from a dead consumer, or
    /// for redelivery after its handler failed); default [`DEFAULT_CLAIM_IDLE`]. Keep it longer
    /// than a handler's longest run including in-process retries, or a slow handler's entry may be
    /// claimed and run by another consumer at the same time.
    pub fn claim_idle(mut self, idle: Duration) -> Self {
        self.claim_idle = idle;
        self
    }

    /// How often pending entries are looked for; default half the claim idle time (between 50 ms
    /// and 10 s).
    pub fn claim_interval(mut self, interval: Duration) -> Self {
        self.claim_interval = Some(interval.max(Duration::from_millis(1)));
        self
    }

    /// Where the group starts when this consumer creates it; default [`StartFrom::Beginning`].
    /// An existing group keeps its position.
    pub fn start_from(mut self, start: StartFrom) -> Self {
        self.start_from = start;
        self
    }

    /// How long a shutdown may take at most; default [`DEFAULT_SHUTDOWN_GRACE`]. Within it the
    /// handlers in flight finish and their entries are settled; whatever is not settled when it
    /// ends (a handler still running, Redis not answering) stays pending and is delivered again
    /// later, to this consumer name or another of the group.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// Checks the settings and makes the consumer. Does not connect yet; must be called inside a
    /// Tokio runtime.
    pub fn build(self) -> Result<RedisConsumer, Error> {
        if self.group.is_empty() {
            return Err(Error::Config("the consumer group name is empty".into()));
        }
        let categories = self.handlers.categories();
        if categories.is_empty() {
            return Err(Error::Config(
                "no handler is registered, so there is no stream to read".into(),
            ));
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::Config(
                "RedisConsumer must be built inside a Tokio runtime".into(),
            ));
        }
        let consumer = self.consumer_name.unwrap_or_else(default_consumer_name);
        if consumer.is_empty() {
            return Err(Error::Config("the consumer name is empty".into()));
        }
        let keys = self.config.keys();
        let streams = categories
            .iter()
            .map(|category| keys.stream(category))
            .collect();
        let connection = self.config.connection();
        let commands = connection.open(None)?;
        let reads = connection.open(Some(self.block + connection.response_timeout_value()))?;
        let claim_interval = self.claim_interval.unwrap_or_else(|| {
            (self.claim_idle / 2).clamp(Duration::from_millis(50), Duration::from_secs(10))
        });
        let acker = Acker::new(
            commands.clone(),
            self.group.clone(),
            ttl_ms(self.config.done_ttl_value()),
        );
        let pipeline = Pipeline::builder(self.group.clone(), self.handlers)
            .retry(self.retry)
            .build();
        let inner = Inner {
            keys,
            group: self.group,
            consumer,
            pipeline,
            streams,
            concurrency: self.concurrency,
            batch_size: self
                .batch_size
                .unwrap_or(self.concurrency.saturating_add(self.prefetch)),
            prefetch: self.prefetch,
            block: self.block,
            max_deliveries: self.max_deliveries,
            claim_idle: self.claim_idle,
            claim_interval,
            start_from: self.start_from,
            shutdown_grace: self.shutdown_grace,
            max_batch_bytes: self.max_batch_bytes.max(self.max_entry_bytes),
            max_entry_bytes: self.max_entry_bytes,
            acker,
            commands,
            reads,
            in_flight: Mutex::default(),
            config: self.config,
        };
        Ok(RedisConsumer {
            inner: Arc::new(inner),
        })
    }
}

impl fmt::Debug for RedisConsumerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConsumerBuilder")
            .field("config", &self.config)
            .field("group", &self.group)
            .field("handlers", &self.handlers)
            .field("concurrency", &self.concurrency)
            .field("max_deliveries", &self.max_deliveries)
            .field("claim_idle", &self.claim_idle)
            .finish_non_exhaustive()
    }
}

/// A member of a Redis consumer group running [`Handlers`].
///
/// For every entry delivered to this consumer:
///
/// 1. an entry without an `event` field, or whose `event` is not an envelope, is dead-lettered at
///    once (poison), with the reason; so is an entry larger than
///    [`max_entry_bytes`](RedisConsumerBuilder::max_entry_bytes), inside Redis, before it is
///    delivered (reads and claims are also bounded in bytes:
///    [`max_batch_bytes`](RedisConsumerBuilder::max_batch_bytes));
/// 2. if the group's done record for the event's idempotency key exists, the entry is acknowledged
///    without running a handler (a redelivery or a duplicate);
/// 3. an entry delivered more than `max_deliveries` times (by consumers that died meanwhile) is
///    dead-lettered without running;
/// 4. [`Handlers::dispatch`] runs the handlers; on success the done record and the acknowledgement
///    are written in one step (a Lua script), so the only window for a second run is a crash
///    between a handler's success and that step;
/// 5. an event no handler takes is acknowledged; a poison event (unknown type or version, payload
///    that fails its schema) is dead-lettered at once;
/// 6. a failing handler is retried in-process with exponential backoff ([`RetryPolicy`]; a
///    shutdown abandons the wait and leaves the entry pending); if it still fails, the entry stays pending and is delivered again once it has been idle for the
///    claim time (to this consumer or another of the group); on its `max_deliveries`-th delivery
///    it is dead-lettered with the reason `handler failed ...: <last error>`.
///
/// Entries left pending by a consumer that died are claimed by the others after the claim idle
/// time; a consumer restarted under the same name first takes back its own pending entries.
/// Handlers of one consumer run concurrently up to the configured concurrency; up to
/// [`prefetch`](RedisConsumerBuilder::prefetch) more entries are read ahead and wait for a slot in
/// this process, so reads and done checks are made per batch, not per entry. When Redis goes
/// away the consumer logs (without secrets), waits with exponential backoff (up to 5 s) and goes on.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use domain_events::{HandlerError, Handlers};
/// use domain_events_catalog::{DomainEvent, ImageVariationCompletedEvent};
/// use domain_events_redis::{RedisConfig, RedisConsumer};
///
/// let handlers = Handlers::new()
///     .on(|event: ImageVariationCompletedEvent| async move {
///         println!("{} is done", event.payload.variation_id);
///         Ok::<_, HandlerError>(())
///     })
///     .knowing::<DomainEvent>(); // unknown types are poison, not merely unhandled
/// let config = RedisConfig::new("redis://127.0.0.1:6379")?;
/// let consumer = RedisConsumer::builder(config, "notifications", handlers).concurrency(8).build()?;
/// let handle = consumer.spawn();
/// // ... later, on SIGTERM: stop reading, finish the handlers in flight, exit.
/// let stats = handle.shutdown().await?;
/// # Ok(()) }
/// ```
pub struct RedisConsumer {
    inner: Arc<Inner>,
}

impl RedisConsumer {
    /// A builder for a consumer of `group` running `handlers`; it reads the streams of the
    /// categories the handlers need ([`Handlers::categories`]).
    pub fn builder(
        config: RedisConfig,
        group: impl Into<String>,
        handlers: Handlers,
    ) -> RedisConsumerBuilder {
        RedisConsumerBuilder {
            config,
            group: group.into(),
            handlers,
            consumer_name: None,
            concurrency: DEFAULT_CONCURRENCY,
            batch_size: None,
            prefetch: DEFAULT_PREFETCH,
            block: DEFAULT_BLOCK,
            retry: RetryPolicy::default(),
            max_deliveries: DEFAULT_MAX_DELIVERIES,
            claim_idle: DEFAULT_CLAIM_IDLE,
            claim_interval: None,
            start_from: StartFrom::default(),
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            max_batch_bytes: DEFAULT_MAX_BATCH_BYTES,
            max_entry_bytes: DEFAULT_MAX_ENTRY_BYTES,
        }
    }

    /// The consumer group.
    pub fn group(&self) -> &str {
        &self.inner.group
    }

    /// This consumer's name within the group.
    pub fn consumer_name(&self) -> &str {
        &self.inner.consumer
    }

    /// The stream keys this consumer reads.
    pub fn streams(&self) -> &[String] {
        &self.inner.streams
    }

    /// The counters so far.
    pub fn stats(&self) -> ConsumerStats {
        self.inner.pipeline.stats()
    }

    /// A handle that stops [`run`](Self::run) when triggered.
    pub fn shutdown_handle(&self) -> Shutdown {
        self.inner.pipeline.shutdown_handle()
    }

    /// Runs until the [`Shutdown`] is triggered: then stops reading, lets the handlers in flight
    /// finish and settle their entries, and returns the final counters.
    ///
    /// Fails only for a setup Redis refuses (e.g. a stream key that holds another type, a missing
    /// ACL permission); an unreachable Redis is waited for.
    ///
    /// Counters: `received` entries taken, `handled` (done record written), `duplicates` (done
    /// record already there), `unhandled` (no handler), `retries` (in-process retries), `poison`
    /// (dead-lettered at once) and `failed` (dead-lettered after too many deliveries).
    pub async fn run(self) -> Result<ConsumerStats, Error> {
        let RedisConsumer { inner } = self;
        let shutdown = inner.pipeline.shutdown_handle();
        let result = inner.clone().run(&shutdown).await;
        let stats = inner.pipeline.stats();
        match result {
            Ok(()) => {
                tracing::debug!(group = %inner.group, consumer = %inner.consumer, ?stats, "consumer stopped");
                Ok(stats)
            }
            Err(error) => {
                tracing::error!(group = %inner.group, consumer = %inner.consumer, %error, "consumer failed");
                Err(error)
            }
        }
    }

    /// Runs the consumer on a new Tokio task.
    pub fn spawn(self) -> RedisConsumerHandle {
        let pipeline = self.inner.pipeline.clone();
        ConsumerHandle::spawn(self.run(), &pipeline)
    }
}

impl fmt::Debug for RedisConsumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConsumer")
            .field("config", &self.inner.config)
            .field("group", &self.inner.group)
            .field("consumer", &self.inner.consumer)
            .field("streams", &self.inner.streams)
            .field("handlers", self.inner.pipeline.handlers())
            .field("concurrency", &self.inner.concurrency)
            .field("max_deliveries", &self.inner.max_deliveries)
            .field("claim_idle", &self.inner.claim_idle)
            .finish_non_exhaustive()
    }
}

/// A [`RedisConsumer`] running on its own task; made by [`RedisConsumer::spawn`]. Dropping the
/// handle leaves the consumer running; [`shutdown`](ConsumerHandle::shutdown) stops it
/// gracefully (see [`RedisConsumer::run`]).
pub type RedisConsumerHandle = ConsumerHandle<Error>;

/// An entry taken by this consumer, with the stream it came from and its delivery count.
#[derive(Debug)]
struct Delivery {
    stream: Arc<str>,
    entry: Entry,
    deliveries: u64,
    /// Filled by [`Inner::check_done`] for the entries of a read whose envelope parses.
    checked: Option<Checked>,
}

/// An entry's envelope, parsed once, and whether its done record existed when the batch it came
/// in was checked (`None` when Redis did not answer, or another entry of its key was held then:
/// [`Inner::process`] checks again).
#[derive(Debug)]
struct Checked {
    raw: RawEnvelope,
    done_key: String,
    done: Option<bool>,
}

/// What became of an entry's settlement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settled {
    Done,
    /// Left pending (Redis refused or stayed away); it will be delivered again.
    Pending,
}

struct Inner {
    config: RedisConfig,
    keys: Keys,
    group: String,
    consumer: String,
    /// The delivery rules, the counters and the shutdown signal.
    pipeline: Pipeline,
    streams: Vec<String>,
    concurrency: usize,
    batch_size: usize,
    prefetch: usize,
    block: Duration,
    max_deliveries: u32,
    claim_idle: Duration,
    claim_interval: Duration,
    start_from: StartFrom,
    shutdown_grace: Duration,
    /// Bytes of entries one read or claim takes at most (≥ `max_entry_bytes`).
    max_batch_bytes: usize,
    /// The largest entry delivered; larger ones are dead-lettered.
    max_entry_bytes: usize,
    /// Scripts, acknowledgements, claims.
    commands: Connection,
    /// Done records and acknowledgements, on `commands`, in groups.
    acker: Acker,
    /// Blocking reads only, so they never hold up an acknowledgement.
    reads: Connection,
    /// The entries read ahead or being processed here.
    in_flight: Mutex<InFlight>,
}

/// The entries this consumer holds: read ahead and waiting for a slot, or being processed.
#[derive(Default)]
struct InFlight {
    /// `(stream, entry id)`: never claimed again while held here.
    entries: HashSet<(Arc<str>, String)>,
    /// The done record keys of the held entries.
    keys: HashMap<String, KeyState>,
}

/// The held entries of one done record key.
#[derive(Default)]
struct KeyState {
    /// How many are held. An entry read while another of its key is held has its done record
    /// checked again just before it runs.
    held: usize,
    /// Whether one of them is running: the next waits until it settled, so its check sees the
    /// done record.
    running: bool,
}

impl InFlight {
    /// Holds `delivery`: `None` if it is held already, else whether another entry held has the
    /// same done record key.
    fn hold(&mut self, delivery: &Delivery) -> Option<bool> {
        if !self
            .entries
            .insert((delivery.stream.clone(), delivery.entry.id.clone()))
        {
            return None;
        }
        let Some(checked) = &delivery.checked else {
            return Some(false);
        };
        let state = self.keys.entry(checked.done_key.clone()).or_default();
        state.held += 1;
        Some(state.held > 1)
    }

    /// Whether an entry of `done_key` is running.
    fn is_running(&self, done_key: &str) -> bool {
        self.keys.get(done_key).is_some_and(|state| state.running)
    }

    /// Marks the held entry of `done_key` that starts as running.
    fn start(&mut self, done_key: &str) {
        if let Some(state) = self.keys.get_mut(done_key) {
            state.running = true;
        }
    }

    /// Lets go of an entry held by [`hold`](Self::hold): one that `ran`, or one released unrun.
    fn release(&mut self, stream: &Arc<str>, entry_id: &str, done_key: Option<&str>, ran: bool) {
        self.entries.remove(&(stream.clone(), entry_id.to_owned()));
        let Some(done_key) = done_key else {
            return;
        };
        if let Some(state) = self.keys.get_mut(done_key) {
            state.running &= !ran;
            state.held -= 1;
            if state.held == 0 {
                self.keys.remove(done_key);
            }
        }
    }
}

/// An entry being processed; lets go of it in [`InFlight`] when dropped.
struct Held {
    inner: Arc<Inner>,
    stream: Arc<str>,
    entry_id: String,
    done_key: Option<String>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.inner.lock_in_flight().release(
            &self.stream,
            &self.entry_id,
            self.done_key.as_deref(),
            true,
        );
    }
}

/// An entry read ahead, waiting for a handler slot since `since`.
struct Waiting {
    delivery: Delivery,
    since: Instant,
}

/// Sleeps for `duration` unless `stop` is triggered first; returns whether it was.
async fn sleep_or_stop(duration: Duration, stop: &Shutdown) -> bool {
    tokio::select! {
        biased;
        () = stop.triggered() => true,
        () = tokio::time::sleep(duration) => false,
    }
}

fn is_error_code(error: &RedisError, code: &str) -> bool {
    error.code() == Some(code) || error.to_string().contains(code)
}

impl Inner {
    async fn run(self: Arc<Self>, stop: &Shutdown) -> Result<(), Error> {
        tracing::info!(group = %self.group, consumer = %self.consumer, streams = ?self.streams,
            url = %self.config.redacted_url(), "consumer starting");
        if !self.ensure_groups(stop).await? {
            return Ok(());
        }
        let permits = Arc::new(Semaphore::new(self.concurrency));
        let mut tasks = JoinSet::new();
        self.recover_own(stop, &permits, &mut tasks).await;

        let mut failures = 0u32;
        let mut next_claim = Instant::now();
        let mut waiting: VecDeque<Waiting> = VecDeque::new();
        let mut read_ahead = self.prefetch;
        // Whether the entries waiting were topped up since a handler slot last freed.
        let mut topped_up = false;
        while !stop.is_triggered() {
            while let Some(joined) = tasks.try_join_next() {
                log_join(joined);
            }
            if self
                .start_waiting(&mut waiting, &mut read_ahead, &permits, &mut tasks, stop)
                .await
            {
                // The next entry waits for one of its key to settle.
                tokio::select! {
                    biased;
                    () = stop.triggered() => break,
                    joined = tasks.join_next() => { if let Some(joined) = joined { log_join(joined); } }
                }
                continue;
            }
            let free = permits.available_permits();
            let room = (free + read_ahead).saturating_sub(waiting.len());
            // Top up entries waiting for a slot once they are down to half the read-ahead, with a
            // read that does not block: the slots are busy, and a read of a few entries per
            // freed slot would cost as much as no read-ahead.
            let top_up = !waiting.is_empty() && !topped_up && waiting.len() <= read_ahead / 2;
            if room == 0 || (!waiting.is_empty() && !top_up) {
                // A slot frees when a handler finished (its entry may still be settling).
                tokio::select! {
                    biased;
                    () = stop.triggered() => break,
                    joined = tasks.join_next() => { if let Some(joined) = joined { log_join(joined); } }
                    _ = permits.acquire() => {}
                }
                topped_up = false;
                continue;
            }
            if Instant::now() >= next_claim {
                next_claim = Instant::now() + self.claim_interval;
                match self.claim_idle_entries(room).await {
                    Ok(claimed) => {
                        failures = 0;
                        let any = !claimed.is_empty();
                        self.hold(claimed, &mut waiting).await;
                        if any {
                            continue;
                        }
                    }
                    Err(error) => {
                        failures += 1;
                        if self
                            .on_redis_error(&error, failures, "claiming pending entries", stop)
                            .await?
                        {
                            break;
                        }
                        continue;
                    }
                }
            }
            let block = (!top_up).then(|| {
                self.block
                    .min(next_claim.saturating_duration_since(Instant::now()))
                    .max(Duration::from_millis(1))
            });
            topped_up |= top_up;
            let count = self.batch_size.min(room);
            let read = tokio::select! {
                biased;
                () = stop.triggered() => break,
                read = self.read_new(count, block) => read,
            };
            match read {
                Ok(deliveries) => {
                    if failures > 0 {
                        tracing::info!(group = %self.group, consumer = %self.consumer, "Redis is back, consuming again");
                    }
                    failures = 0;
                    self.hold(deliveries, &mut waiting).await;
                }
                Err(error) => {
                    failures += 1;
                    if self
                        .on_redis_error(&error, failures, "reading new entries", stop)
                        .await?
                    {
                        break;
                    }
                }
            }
        }
        self.shut_down(waiting, tasks).await;
        self.leave_group().await;
        Ok(())
    }

    /// Removes this consumer from the group of each stream where it holds no pending entry
    /// (`XGROUP DELCONSUMER`), so consumers that come and go under new names (every restart of a
    /// service with the default name, every `tail`) leave nothing behind. A consumer with pending
    /// entries stays: they are its until another consumer claims them. Best effort.
    async fn leave_group(&self) {
        let mut conn = self.commands.clone();
        for stream in &self.streams {
            let pending = redis::cmd("XPENDING")
                .arg(stream)
                .arg(&self.group)
                .arg("-")
                .arg("+")
                .arg(1)
                .arg(&self.consumer)
                .query_async::<Vec<Value>>(&mut conn)
                .await;
            let left = match pending {
                Ok(pending) if pending.is_empty() => redis::cmd("XGROUP")
                    .arg("DELCONSUMER")
                    .arg(stream)
                    .arg(&self.group)
                    .arg(&self.consumer)
                    .query_async::<u64>(&mut conn)
                    .await
                    .map(|_| true),
                Ok(_) => Ok(false),
                Err(error) => Err(error),
            };
            match left {
                Ok(true) => tracing::debug!(group = %self.group, consumer = %self.consumer, stream,
                    "left the group: nothing pending"),
                Ok(false) => {
                    tracing::debug!(group = %self.group, consumer = %self.consumer, stream,
                    "staying in the group: entries pending")
                }
                Err(error) => {
                    tracing::debug!(group = %self.group, consumer = %self.consumer, stream,
                    error = %self.config.error(&error), "could not leave the group")
                }
            }
        }
    }

    /// Releases the entries read ahead and lets the handlers in flight finish and settle, within
    /// the shutdown grace period; what is left when it ends stays pending (delivered again later).
    async fn shut_down(&self, waiting: VecDeque<Waiting>, mut tasks: JoinSet<()>) {
        let deadline = Instant::now() + self.shutdown_grace;
        if !waiting.is_empty() {
            tracing::debug!(group = %self.group, consumer = %self.consumer, waiting = waiting.len(),
                "shutting down: releasing the entries read ahead");
            let release = self.release(waiting.into_iter().map(|w| w.delivery).collect());
            if tokio::time::timeout_at(deadline, release).await.is_err() {
                tracing::warn!(group = %self.group, consumer = %self.consumer,
                    "Redis did not answer the release of the entries read ahead within the shutdown \
                     grace period; they are claimed once idle for the claim time");
            }
        }
        tracing::debug!(group = %self.group, consumer = %self.consumer, in_flight = tasks.len(),
            "shutting down: waiting for the handlers in flight");
        loop {
            match tokio::time::timeout_at(deadline, tasks.join_next()).await {
                Ok(Some(joined)) => log_join(joined),
                Ok(None) => return,
                Err(_elapsed) => {
                    tracing::warn!(group = %self.group, consumer = %self.consumer, in_flight = tasks.len(),
                        grace = ?self.shutdown_grace, "shutdown grace period over: the entries still in \
                        flight are abandoned; they stay pending and are delivered again");
                    tasks.abort_all();
                    while tasks.join_next().await.is_some() {}
                    return;
                }
            }
        }
    }

    /// Holds newly read or claimed entries (see [`check_done`](Self::check_done)) to wait for a
    /// slot.
    async fn hold(&self, deliveries: Vec<Delivery>, waiting: &mut VecDeque<Waiting>) {
        let since = Instant::now();
        waiting.extend(
            self.check_done(deliveries)
                .await
                .into_iter()
                .map(|delivery| Waiting { delivery, since }),
        );
    }

    /// Starts the entries waiting, in order, as many as there are free slots. Entries that waited
    /// longer than half the claim idle time are released for claiming instead (another consumer
    /// may claim them soon), and the read-ahead is halved. Returns true when the next entry must
    /// wait for a running one of the same key to settle.
    async fn start_waiting(
        self: &Arc<Self>,
        waiting: &mut VecDeque<Waiting>,
        read_ahead: &mut usize,
        permits: &Arc<Semaphore>,
        tasks: &mut JoinSet<()>,
        stop: &Shutdown,
    ) -> bool {
        let stale_after = self.claim_idle / 2;
        let mut stale = Vec::new();
        let mut blocked = false;
        while let Some(next) = waiting.front() {
            if let Some(checked) = &next.delivery.checked
                && self.lock_in_flight().is_running(&checked.done_key)
            {
                blocked = true;
                break;
            }
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                break;
            };
            let Some(Waiting { delivery, since }) = waiting.pop_front() else {
                break;
            };
            if since.elapsed() > stale_after {
                drop(permit);
                stale.push(delivery);
                continue;
            }
            self.start(delivery, permit, tasks, stop);
        }
        if !stale.is_empty() {
            *read_ahead /= 2;
            tracing::warn!(group = %self.group, consumer = %self.consumer, entries = stale.len(),
                read_ahead = *read_ahead, "entries read ahead waited too long for a handler slot; \
                released for claiming, reading fewer ahead");
            self.release(stale).await;
        }
        blocked
    }

    /// Lets go of entries held but not run: they stay pending under this consumer, marked idle
    /// for the claim idle time, so any consumer of the group claims them at its next look for
    /// pending entries. Their delivery count is set back to what it was before this consumer took
    /// them (`XCLAIM ... IDLE ... RETRYCOUNT ... JUSTID`): a delivery that ran no handler never
    /// counts toward dead-lettering, however often read-ahead churn releases an entry.
    async fn release(&self, deliveries: Vec<Delivery>) {
        let idle_ms = u64::try_from(self.claim_idle.as_millis()).unwrap_or(u64::MAX);
        let mut by_stream: HashMap<(Arc<str>, u64), Vec<String>> = HashMap::new();
        {
            let mut in_flight = self.lock_in_flight();
            for delivery in deliveries {
                let done_key = delivery.checked.as_ref().map(|c| c.done_key.as_str());
                in_flight.release(&delivery.stream, &delivery.entry.id, done_key, false);
                by_stream
                    .entry((delivery.stream, delivery.deliveries.saturating_sub(1)))
                    .or_default()
                    .push(delivery.entry.id);
            }
        }
        for ((stream, before), ids) in by_stream {
            let mut cmd = redis::cmd("XCLAIM");
            cmd.arg(&*stream)
                .arg(&self.group)
                .arg(&self.consumer)
                .arg(0)
                .arg(&ids)
                .arg("IDLE")
                .arg(idle_ms)
                .arg("RETRYCOUNT")
                .arg(before)
                .arg("JUSTID");
            let mut conn = self.commands.clone();
            if let Err(error) = cmd.query_async::<Value>(&mut conn).await {
                tracing::debug!(group = %self.group, stream = %stream, entries = ids.len(),
                    error = %self.config.error(&error),
                    "could not release entries; they are claimed once idle for the claim time");
            }
        }
    }

    /// Logs a Redis error and waits before the next attempt. Fails for errors that waiting cannot
    /// fix; returns whether a shutdown came meanwhile.
    async fn on_redis_error(
        &self,
        error: &RedisError,
        failures: u32,
        doing: &str,
        stop: &Shutdown,
    ) -> Result<bool, Error> {
        let shown = self.config.error(error);
        if is_error_code(error, "CROSSSLOT") {
            // Redis Cluster: one read of several streams needs them in one hash slot.
            return Err(Error::Config(format!(
                "Redis Cluster refuses to read the streams {} in one command (CROSSSLOT: they hash \
                 to different slots); on Redis Cluster, run one consumer per category",
                self.streams.join(", ")
            )));
        }
        if is_error_code(error, "NOGROUP") {
            tracing::warn!(group = %self.group, consumer = %self.consumer, error = %shown,
                "consumer group missing (Redis lost its data?), creating it again");
            return self.ensure_groups(stop).await.map(|running| !running);
        }
        if !is_transient(error) {
            tracing::error!(group = %self.group, consumer = %self.consumer, error = %shown, "Redis refused {doing}");
        } else if failures == 1 {
            tracing::warn!(group = %self.group, consumer = %self.consumer, error = %shown, "{doing}: {}, retrying",
                waiting_for(error));
        } else {
            tracing::debug!(group = %self.group, consumer = %self.consumer, error = %shown, failures, "Redis still unavailable");
        }
        Ok(sleep_or_stop(reconnect_backoff(failures), stop).await)
    }

    /// Creates the group on every stream (and the streams) unless it exists. Waits for Redis while
    /// it is unreachable; returns false if a shutdown came first.
    async fn ensure_groups(&self, stop: &Shutdown) -> Result<bool, Error> {
        let mut failures = 0;
        'retry: loop {
            if stop.is_triggered() {
                return Ok(false);
            }
            for stream in &self.streams {
                let mut conn = self.commands.clone();
                let created = redis::cmd("XGROUP")
                    .arg("CREATE")
                    .arg(stream)
                    .arg(&self.group)
                    .arg(self.start_from.id())
                    .arg("MKSTREAM")
                    .query_async::<()>(&mut conn)
                    .await;
                match created {
                    Ok(()) => {
                        tracing::debug!(group = %self.group, stream = %stream, "consumer group created")
                    }
                    Err(error) if is_error_code(&error, "BUSYGROUP") => {}
                    Err(error) if is_transient(&error) => {
                        failures += 1;
                        let shown = self.config.error(&error);
                        if failures == 1 {
                            tracing::warn!(group = %self.group, error = %shown, "creating the consumer group: {}, waiting",
                                waiting_for(&error));
                        }
                        if sleep_or_stop(reconnect_backoff(failures), stop).await {
                            return Ok(false);
                        }
                        continue 'retry;
                    }
                    Err(error) => return Err(self.config.error(&error)),
                }
            }
            return Ok(true);
        }
    }

    /// Takes back the entries still pending for this consumer's name (a restart under the same
    /// name) and processes them before reading new ones.
    async fn recover_own(
        self: &Arc<Self>,
        stop: &Shutdown,
        permits: &Arc<Semaphore>,
        tasks: &mut JoinSet<()>,
    ) {
        for stream in &self.streams {
            let mut cursor = "-".to_owned();
            let mut failures = 0;
            loop {
                if stop.is_triggered() {
                    return;
                }
                while permits.available_permits() == 0 {
                    if let Some(joined) = tasks.join_next().await {
                        log_join(joined);
                    }
                }
                let count = self.batch_size.min(permits.available_permits());
                match self
                    .claim(stream, Duration::ZERO, Some(&self.consumer), &cursor, count)
                    .await
                {
                    Ok((claimed, last)) => {
                        let Some(last) = last else { break };
                        cursor = format!("({last}");
                        for delivery in claimed {
                            if self.lock_in_flight().hold(&delivery).is_none() {
                                continue;
                            }
                            // A slot is free: the claim asked for no more entries than that.
                            match permits.clone().try_acquire_owned() {
                                Ok(permit) => self.start(delivery, permit, tasks, stop),
                                Err(_) => self.lock_in_flight().release(
                                    &delivery.stream,
                                    &delivery.entry.id,
                                    None,
                                    false,
                                ),
                            }
                        }
                    }
                    Err(error) => {
                        failures += 1;
                        match self
                            .on_redis_error(
                                &error,
                                failures,
                                "taking back own pending entries",
                                stop,
                            )
                            .await
                        {
                            Ok(false) if failures < 10 => {}
                            _ => break,
                        }
                    }
                }
            }
        }
    }

    /// Claims entries idle for the claim time from any consumer (this one included: a failed
    /// entry left pending is delivered again this way), up to `budget`.
    async fn claim_idle_entries(
        self: &Arc<Self>,
        budget: usize,
    ) -> Result<Vec<Delivery>, RedisError> {
        let mut claimed = Vec::new();
        for stream in &self.streams {
            let left = budget.saturating_sub(claimed.len());
            if left == 0 {
                break;
            }
            match self.claim(stream, self.claim_idle, None, "-", left).await {
                Ok((mut got, _)) => claimed.append(&mut got),
                Err(error) if error.is_timeout() => {
                    self.log_timeout(&error, "claiming pending entries");
                    break;
                }
                Err(error) => return Err(error),
            }
        }
        Ok(claimed)
    }

    /// `XPENDING` (idle at least `min_idle`, after `start`, of `owner` if given) then `XCLAIM` of
    /// those rows not in flight here, up to `count` entries. Returns the claimed deliveries and the
    /// last pending id looked at (`None` when there was none).
    async fn claim(
        &self,
        stream: &str,
        min_idle: Duration,
        owner: Option<&str>,
        start: &str,
        count: usize,
    ) -> Result<(Vec<Delivery>, Option<String>), RedisError> {
        let idle_ms = u64::try_from(min_idle.as_millis()).unwrap_or(u64::MAX);
        let in_flight_here = self
            .lock_in_flight()
            .entries
            .iter()
            .filter(|(s, _)| &**s == stream)
            .count();
        let mut pending = redis::cmd("XPENDING");
        pending
            .arg(stream)
            .arg(&self.group)
            .arg("IDLE")
            .arg(idle_ms)
            .arg(start)
            .arg("+")
            .arg(count + in_flight_here);
        if let Some(owner) = owner {
            pending.arg(owner);
        }
        let mut conn = self.commands.clone();
        let reply: Value = pending.query_async(&mut conn).await?;
        let rows = parse_pending(&reply)
            .map_err(|e| RedisError::from((redis::ErrorKind::Parse, "XPENDING", e.to_string())))?;
        let last = rows.last().map(|row| row.id.clone());
        let stream_key: Arc<str> = Arc::from(stream);
        let rows: Vec<_> = {
            let in_flight = self.lock_in_flight();
            rows.into_iter()
                .filter(|row| {
                    !in_flight
                        .entries
                        .contains(&(stream_key.clone(), row.id.clone()))
                })
                .take(count)
                .collect()
        };
        if rows.is_empty() {
            return Ok((Vec::new(), last));
        }
        let dlq = self.dlq_of(stream);
        let replies = send_calls(&self.commands, CLAIM, 1, || {
            let mut cmd = redis::cmd("EVALSHA");
            cmd.arg(CLAIM_SCRIPT.get_hash())
                .arg(2)
                .arg(stream)
                .arg(&dlq)
                .arg(&self.group)
                .arg(&self.consumer)
                .arg(idle_ms)
                .arg(self.stream_budget())
                .arg(self.max_entry_bytes)
                .arg(self.config.max_len());
            for row in &rows {
                cmd.arg(&row.id);
            }
            std::iter::once(cmd)
        })
        .await?;
        let reply = replies.into_iter().next().ok_or_else(|| {
            RedisError::from((
                redis::ErrorKind::Parse,
                "claim script",
                "no reply".to_owned(),
            ))
        })??;
        let (entries, dead) = parse_scripted(reply).map_err(|e| {
            RedisError::from((redis::ErrorKind::Parse, "claim script", e.to_string()))
        })?;
        self.dead_lettered_in_redis(stream, &dead);
        let deliveries = entries
            .into_iter()
            .map(|entry| {
                let before = rows.iter().find(|row| row.id == entry.id).map_or(0, |row| row.deliveries);
                if owner.is_none() {
                    let from = rows.iter().find(|row| row.id == entry.id).map_or("?", |row| row.consumer.as_str());
                    tracing::debug!(group = %self.group, consumer = %self.consumer, stream, entry_id = %entry.id,
                        from, deliveries = before + 1, "claimed a pending entry");
                }
                Delivery { stream: stream_key.clone(), entry, deliveries: before + 1, checked: None }
            })
            .collect();
        Ok((deliveries, last))
    }

    /// New entries of every stream, bounded in entries (`count` per stream) and in bytes: the
    /// [`READ`] script of each stream, in one round trip, which dead-letters the entries over the
    /// entry limit inside Redis. Only when no stream had anything, waits up to `block` (if given)
    /// with `XREADGROUP ... COUNT 1 BLOCK`, so at most one entry per stream arrives that way; one
    /// over the entry limit is then dead-lettered without being sent back.
    async fn read_new(
        &self,
        count: usize,
        block: Option<Duration>,
    ) -> Result<Vec<Delivery>, RedisError> {
        let budget = self.stream_budget();
        let dlqs: Vec<String> = self.streams.iter().map(|s| self.dlq_of(s)).collect();
        let replies = send_calls(&self.reads, READ, self.streams.len(), || {
            self.streams.iter().zip(&dlqs).map(|(stream, dlq)| {
                let mut cmd = redis::cmd("EVALSHA");
                cmd.arg(READ_SCRIPT.get_hash())
                    .arg(2)
                    .arg(stream)
                    .arg(dlq)
                    .arg(&self.group)
                    .arg(&self.consumer)
                    .arg(count)
                    .arg(budget)
                    .arg(self.max_entry_bytes)
                    .arg(self.config.max_len());
                cmd
            })
        })
        .await;
        let replies = match replies {
            Ok(replies) => replies,
            Err(error) => return self.read_failed(error),
        };
        let mut deliveries = Vec::new();
        let mut dead_lettered = false;
        let mut failed = None;
        for (stream, reply) in self.streams.iter().zip(replies) {
            let parsed = reply.and_then(|reply| {
                parse_scripted(reply).map_err(|e| {
                    RedisError::from((redis::ErrorKind::Parse, "read script", e.to_string()))
                })
            });
            let (entries, dead) = match parsed {
                Ok(parsed) => parsed,
                Err(error) => {
                    failed = Some(error);
                    continue;
                }
            };
            dead_lettered |= !dead.is_empty();
            self.dead_lettered_in_redis(stream, &dead);
            let stream: Arc<str> = Arc::from(stream.as_str());
            deliveries.extend(entries.into_iter().map(|entry| Delivery {
                stream: stream.clone(),
                entry,
                deliveries: 1,
                checked: None,
            }));
        }
        if !deliveries.is_empty() || dead_lettered {
            // A failed stream fails again at the next read.
            return Ok(deliveries);
        }
        if let Some(error) = failed {
            return self.read_failed(error);
        }
        let Some(block) = block else {
            return Ok(deliveries);
        };
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(&self.group)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(1)
            .arg("BLOCK")
            .arg(u64::try_from(block.as_millis()).unwrap_or(u64::MAX).max(1))
            .arg("STREAMS");
        for stream in &self.streams {
            cmd.arg(stream);
        }
        for _ in &self.streams {
            cmd.arg(">");
        }
        let mut conn = self.reads.clone();
        let reply: Value = match cmd.query_async(&mut conn).await {
            Ok(reply) => reply,
            Err(error) => return self.read_failed(error),
        };
        let read = parse_read(reply).map_err(|e| {
            RedisError::from((redis::ErrorKind::Parse, "XREADGROUP", e.to_string()))
        })?;
        for (stream, entries) in read {
            let stream: Arc<str> = Arc::from(stream);
            for entry in entries {
                let size = entry_size(&entry);
                if size > self.max_entry_bytes {
                    let Entry { id, fields } = entry;
                    drop(fields);
                    self.dead_letter_too_large(&stream, id, size).await;
                    continue;
                }
                deliveries.push(Delivery {
                    stream: stream.clone(),
                    entry,
                    deliveries: 1,
                    checked: None,
                });
            }
        }
        Ok(deliveries)
    }

    /// A failed read: a response timeout is logged here as what it is (an answer that did not
    /// come in time, not an unreachable Redis) and the read counts as empty; anything else is
    /// the caller's to handle.
    fn read_failed(&self, error: RedisError) -> Result<Vec<Delivery>, RedisError> {
        if error.is_timeout() {
            self.log_timeout(&error, "reading new entries");
            return Ok(Vec::new());
        }
        Err(error)
    }

    /// Logs a response timeout honestly: Redis may be slow or busy, and what the command did is
    /// unknown.
    fn log_timeout(&self, error: &RedisError, doing: &str) {
        tracing::warn!(group = %self.group, consumer = %self.consumer, error = %self.config.error(error),
            "no answer from Redis within the response timeout while {doing} (Redis slow or busy?); \
            its outcome is unknown: entries it delivered stay pending and are claimed after the claim \
            idle time");
    }

    /// Dead-letters an entry over the entry limit that a blocking read delivered, its bytes
    /// already dropped: the script copies them from the stream. Tried once; if that fails, the
    /// entry stays pending and the claim script dead-letters it later.
    async fn dead_letter_too_large(&self, stream: &str, entry_id: String, size: usize) {
        let dlq = self.dlq_of(stream);
        let reason = format!(
            "entry of {size} bytes is larger than the limit of {} bytes",
            self.max_entry_bytes
        );
        let mut invocation = DEAD_LETTER_SCRIPT.prepare_invoke();
        invocation
            .key(stream)
            .key(&dlq)
            .arg(&self.group)
            .arg(&entry_id)
            .arg(&reason)
            .arg(1)
            .arg(self.config.max_len());
        let mut conn = self.commands.clone();
        match invocation.invoke_async::<Value>(&mut conn).await {
            Ok(_) => self.dead_lettered_in_redis(
                stream,
                &[DeadLettered {
                    id: entry_id,
                    reason,
                    deliveries: 1,
                }],
            ),
            Err(error) => {
                tracing::warn!(group = %self.group, stream, entry_id, error = %self.config.error(&error),
                    "could not dead-letter an entry over the size limit; it stays pending and is dead-lettered when claimed");
            }
        }
    }

    /// Counts and logs entries a script dead-lettered inside Redis.
    fn dead_lettered_in_redis(&self, stream: &str, dead: &[DeadLettered]) {
        if dead.is_empty() {
            return;
        }
        let dlq = self.dlq_of(stream);
        for letter in dead {
            let span = tracing::error_span!("entry", stream, entry_id = %letter.id,
                deliveries = letter.deliveries, dead_letters = %dlq);
            span.in_scope(|| self.pipeline.refused(&letter.reason));
        }
    }

    /// The group's dead-letter stream of `stream`'s category.
    fn dlq_of(&self, stream: &str) -> String {
        let category = self.keys.category_of_stream(stream).unwrap_or_default();
        self.keys.dlq(category, &self.group)
    }

    /// The byte budget of one stream's read or claim: an equal part of the batch budget, at least
    /// one entry's worth.
    fn stream_budget(&self) -> usize {
        (self.max_batch_bytes / self.streams.len().max(1)).max(self.max_entry_bytes)
    }

    /// Parses the envelopes of a batch of entries, holds the entries ([`InFlight::hold`]; those
    /// held already are dropped) and checks their done records in one pipeline, instead of one
    /// round trip per entry from [`process`](Self::process).
    ///
    /// Entries whose envelope does not parse are left for `process` (it dead-letters them). The
    /// done record of an entry is checked again by `process`, just before it runs, when Redis does
    /// not answer here, or when another entry of the same key was held at this check: that one
    /// may settle after the check. Entries are held before the check is sent, so one of the same
    /// key that settled before was acknowledged before the check (one connection, in order).
    async fn check_done(&self, mut deliveries: Vec<Delivery>) -> Vec<Delivery> {
        for delivery in &mut deliveries {
            let Some(Ok(raw)) = delivery.entry.field("event").map(RawEnvelope::from_slice) else {
                continue;
            };
            let category = self
                .keys
                .category_of_stream(&delivery.stream)
                .unwrap_or_default();
            let done_key = self.keys.done(category, &self.group, &raw.idempotency_key);
            delivery.checked = Some(Checked {
                raw,
                done_key,
                done: None,
            });
        }
        let mut to_check = Vec::with_capacity(deliveries.len());
        {
            let mut in_flight = self.lock_in_flight();
            deliveries.retain(|delivery| match in_flight.hold(delivery) {
                None => false,
                Some(shared) => {
                    to_check.push(delivery.checked.is_some() && !shared);
                    true
                }
            });
        }
        let mut pipe = redis::Pipeline::with_capacity(deliveries.len());
        for (delivery, check) in deliveries.iter().zip(&to_check) {
            if let (true, Some(checked)) = (check, &delivery.checked) {
                pipe.cmd("EXISTS").arg(&checked.done_key);
            }
        }
        let asked = to_check.iter().filter(|check| **check).count();
        if asked == 0 {
            return deliveries;
        }
        let mut conn = self.commands.clone();
        match pipe.query_async::<Vec<u64>>(&mut conn).await {
            Ok(found) if found.len() == asked => {
                let mut found = found.into_iter();
                for (delivery, check) in deliveries.iter_mut().zip(to_check) {
                    if let (true, Some(checked)) = (check, &mut delivery.checked) {
                        checked.done = found.next().map(|n| n > 0);
                    }
                }
            }
            Ok(found) => {
                tracing::warn!(group = %self.group, answers = found.len(), asked,
                    "unexpected answer to the done checks; checking each entry on its own");
            }
            Err(error) => {
                tracing::debug!(group = %self.group, error = %self.config.error(&error),
                    "done checks failed; checking each entry on its own");
            }
        }
        deliveries
    }

    fn lock_in_flight(&self) -> std::sync::MutexGuard<'_, InFlight> {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Processes `delivery`, held by [`InFlight::hold`], on a new task holding the handler slot
    /// `permit`; lets go of the entry when done.
    fn start(
        self: &Arc<Self>,
        delivery: Delivery,
        permit: OwnedSemaphorePermit,
        tasks: &mut JoinSet<()>,
        stop: &Shutdown,
    ) {
        let stream = delivery.stream.clone();
        let entry_id = delivery.entry.id.clone();
        let done_key = delivery.checked.as_ref().map(|c| c.done_key.clone());
        if let Some(done_key) = &done_key {
            self.lock_in_flight().start(done_key);
        }
        let this = self.clone();
        let stop = stop.clone();
        tasks.spawn(async move {
            // Let go of the entry however the task ends (a panicking handler included).
            let _held = Held {
                inner: this.clone(),
                stream,
                entry_id,
                done_key,
            };
            this.process(delivery, &stop, permit).await;
        });
    }

    /// Runs a held entry through the [`Pipeline`] and settles it by the verdict.
    async fn process(&self, delivery: Delivery, stop: &Shutdown, permit: OwnedSemaphorePermit) {
        let Delivery {
            stream,
            entry,
            deliveries,
            checked,
        } = delivery;
        if entry.fields.is_none() {
            // Deleted from the stream while pending: no event to run, nothing to count.
            self.settle(stop, &stream, &entry.id, |conn| {
                self.xack(conn, &stream, &entry.id)
            })
            .await;
            return;
        }
        let (raw, done_key, known_done) = match checked {
            Some(Checked {
                raw,
                done_key,
                done,
            }) => (Ok(raw), Some(done_key), done),
            None => {
                let raw = match entry.field("event") {
                    None => Err("entry has no `event` field".to_owned()),
                    Some(event) => RawEnvelope::from_slice(event).map_err(|e| e.to_string()),
                };
                let done_key = raw.as_ref().ok().map(|raw| self.done_key(&stream, raw));
                (raw, done_key, None)
            }
        };
        let incoming = match &raw {
            Ok(raw) => Incoming::decoded(raw).known_done(known_done),
            Err(reason) => Incoming::unreadable(reason.clone()),
        }
        .delivery(deliveries, Some(u64::from(self.max_deliveries)));
        let settle = EntrySettle {
            inner: self,
            stop,
            stream: &stream,
            entry: &entry,
            deliveries,
            done_key: done_key.as_deref(),
            event_id: raw.as_ref().ok().map(|raw| raw.event_id),
            permit: Some(permit),
        };
        let span =
            tracing::debug_span!("entry", stream = %stream, entry_id = %entry.id, deliveries);
        self.pipeline
            .process(incoming, settle)
            .instrument(span)
            .await;
    }

    /// The group's done record key of `raw`, an event of `stream`.
    fn done_key(&self, stream: &str, raw: &RawEnvelope) -> String {
        let category = self.keys.category_of_stream(stream).unwrap_or_default();
        self.keys.done(category, &self.group, &raw.idempotency_key)
    }

    /// Acknowledges an entry.
    fn xack(
        &self,
        mut conn: Connection,
        stream: &str,
        entry_id: &str,
    ) -> impl std::future::Future<Output = Result<(), RedisError>> + use<> {
        let mut cmd = redis::cmd("XACK");
        cmd.arg(stream).arg(&self.group).arg(entry_id);
        async move { cmd.query_async::<()>(&mut conn).await }
    }

    /// Whether the done record exists; `None` if Redis stayed unreachable (or a shutdown came).
    async fn is_done(&self, stop: &Shutdown, done_key: &str) -> Option<bool> {
        let mut failures = 0;
        loop {
            let mut conn = self.commands.clone();
            match redis::cmd("EXISTS")
                .arg(done_key)
                .query_async::<u64>(&mut conn)
                .await
            {
                Ok(n) => return Some(n > 0),
                Err(error) => {
                    failures += 1;
                    let shown = self.config.error(&error);
                    if !is_transient(&error) || stop.is_triggered() || failures >= 10 {
                        tracing::warn!(group = %self.group, error = %shown, "cannot check the done record, entry left pending");
                        return None;
                    }
                    if sleep_or_stop(reconnect_backoff(failures), stop).await {
                        return None;
                    }
                }
            }
        }
    }

    /// Resets the idle time of an entry this consumer holds (`XCLAIM ... JUSTID`, which Redis
    /// allows also when it refuses writes for lack of memory, and which leaves the delivery count
    /// alone), so other consumers of the group do not claim it while its outcome waits to be
    /// settled. Best effort: if Redis does not answer, it does not take writes either.
    async fn touch(&self, stream: &str, entry_id: &str) {
        let mut conn = self.commands.clone();
        let touched = redis::cmd("XCLAIM")
            .arg(stream)
            .arg(&self.group)
            .arg(&self.consumer)
            .arg(0)
            .arg(entry_id)
            .arg("JUSTID")
            .query_async::<Value>(&mut conn)
            .await;
        if let Err(error) = touched {
            tracing::debug!(group = %self.group, stream, entry_id, error = %self.config.error(&error),
                "could not keep the entry from being claimed");
        }
    }

    /// Copies the entry to the dead-letter stream and acknowledges it (one script).
    async fn dead_letter(
        &self,
        stop: &Shutdown,
        stream: &str,
        entry: &Entry,
        deliveries: u64,
        reason: &str,
    ) -> Settled {
        let dlq = self.dlq_of(stream);
        let settled = self
            .settle(stop, stream, &entry.id, |mut conn| {
                let mut invocation = DEAD_LETTER_SCRIPT.prepare_invoke();
                invocation
                    .key(stream)
                    .key(&dlq)
                    .arg(&self.group)
                    .arg(&entry.id)
                    .arg(reason)
                    .arg(deliveries)
                    .arg(self.config.max_len());
                async move { invocation.invoke_async::<Value>(&mut conn).await.map(drop) }
            })
            .await;
        if settled == Settled::Done {
            tracing::info!(group = %self.group, dead_letters = %dlq, "entry dead-lettered");
        }
        settled
    }

    /// Runs a settling step (ack, done+ack, dead letter), retrying while Redis is unreachable
    /// (a few attempts only once a shutdown was asked for).
    async fn settle<F, Fut>(
        &self,
        stop: &Shutdown,
        stream: &str,
        entry_id: &str,
        step: F,
    ) -> Settled
    where
        F: Fn(Connection) -> Fut,
        Fut: std::future::Future<Output = Result<(), RedisError>>,
    {
        self.settle_releasing(stop, stream, entry_id, None, step)
            .await
    }

    /// [`settle`](Self::settle), giving back the handler slot `release` as soon as the first
    /// attempt is on its way (polled once: sent, or queued for the next acknowledgement call), so
    /// the next entry can start while this one is acknowledged. An entry of the same key waits
    /// until this one settled ([`InFlight`]), so its done check sees this step's write.
    async fn settle_releasing<F, Fut>(
        &self,
        stop: &Shutdown,
        stream: &str,
        entry_id: &str,
        mut release: Option<OwnedSemaphorePermit>,
        step: F,
    ) -> Settled
    where
        F: Fn(Connection) -> Fut,
        Fut: std::future::Future<Output = Result<(), RedisError>>,
    {
        let mut failures = 0;
        let mut after_stop = 0;
        let mut touched = Instant::now();
        loop {
            let attempt = step(self.commands.clone());
            let result = match release.take() {
                None => attempt.await,
                Some(permit) => {
                    let mut attempt = std::pin::pin!(attempt);
                    let first =
                        std::future::poll_fn(|cx| Poll::Ready(attempt.as_mut().poll(cx))).await;
                    drop(permit);
                    match first {
                        Poll::Ready(result) => result,
                        Poll::Pending => attempt.await,
                    }
                }
            };
            match result {
                Ok(()) => return Settled::Done,
                Err(error) => {
                    failures += 1;
                    let shown = self.config.error(&error);
                    if !is_transient(&error) {
                        tracing::error!(group = %self.group, stream, entry_id, error = %shown,
                            "Redis refused to settle the entry; it stays pending");
                        return Settled::Pending;
                    }
                    if stop.is_triggered() {
                        after_stop += 1;
                        if after_stop > SETTLE_ATTEMPTS_AFTER_STOP {
                            tracing::warn!(group = %self.group, stream, entry_id, error = %shown,
                                "shutting down while {}: the entry stays pending", waiting_for(&error));
                            return Settled::Pending;
                        }
                        tokio::time::sleep(reconnect_backoff(after_stop)).await;
                    } else {
                        // The outcome is kept here (the entry stays held, so this consumer does
                        // not claim it) and settled once Redis accepts it: a handled event never
                        // runs again because Redis refused its done record for a while.
                        if failures == 1 {
                            tracing::warn!(group = %self.group, stream, entry_id, error = %shown,
                                "settling an entry: {}; keeping its outcome and trying again",
                                waiting_for(&error));
                        }
                        if touched.elapsed() >= self.claim_idle / 3 {
                            touched = Instant::now();
                            self.touch(stream, entry_id).await;
                        }
                        sleep_or_stop(reconnect_backoff(failures), stop).await;
                    }
                }
            }
        }
    }
}

/// How a Redis stream entry is settled by its [`Verdict`].
struct EntrySettle<'a> {
    inner: &'a Inner,
    stop: &'a Shutdown,
    stream: &'a Arc<str>,
    entry: &'a Entry,
    deliveries: u64,
    /// `None` when the entry holds no envelope.
    done_key: Option<&'a str>,
    event_id: Option<domain_events::Uuid>,
    /// The handler slot, given back as soon as a handled entry's acknowledgement is on its way.
    permit: Option<OwnedSemaphorePermit>,
}

impl Settle for EntrySettle<'_> {
    async fn is_done(&self, _: &RawEnvelope) -> Option<bool> {
        match self.done_key {
            Some(done_key) => self.inner.is_done(self.stop, done_key).await,
            None => Some(false),
        }
    }

    async fn settle(self, verdict: &Verdict) -> bool {
        let EntrySettle {
            inner,
            stop,
            stream,
            entry,
            deliveries,
            done_key,
            event_id,
            permit,
        } = self;
        let settled = match verdict {
            Verdict::Handled { .. } => {
                let (Some(done_key), Some(event_id)) = (done_key, event_id) else {
                    return false;
                };
                inner
                    .settle_releasing(stop, stream, &entry.id, permit, |_| {
                        inner.acker.ack(Ack {
                            stream: stream.clone(),
                            entry_id: entry.id.clone(),
                            done_key: done_key.to_owned(),
                            event_id,
                        })
                    })
                    .await
            }
            Verdict::Duplicate | Verdict::Unhandled => {
                inner
                    .settle(stop, stream, &entry.id, |conn| {
                        inner.xack(conn, stream, &entry.id)
                    })
                    .await
            }
            verdict if verdict.is_dead_letter() => {
                let reason = verdict.reason().unwrap_or("dead-lettered");
                inner
                    .dead_letter(stop, stream, entry, deliveries, reason)
                    .await
            }
            // Left pending: delivered again once idle for the claim time.
            _ => Settled::Pending,
        };
        settled == Settled::Done
    }
}

fn log_join(joined: Result<(), tokio::task::JoinError>) {
    if let Err(error) = joined {
        tracing::error!(error = %error, "an entry's task ended abnormally; the entry stays pending");
    }
}

/// `<hostname>-<pid>-<random>`.
fn default_consumer_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .or_else(|| {
            std::env::var("HOSTNAME")
                .ok()
                .filter(|name| !name.is_empty())
        })
        .or_else(|| {
            std::env::var("COMPUTERNAME")
                .ok()
                .filter(|name| !name.is_empty())
        })
        .unwrap_or_else(|| "host".to_owned());
    let random = domain_events::Uuid::now_v7().simple().to_string();
    let suffix = random
        .get(random.len().saturating_sub(8)..)
        .unwrap_or(&random);
    format!("{host}-{}-{suffix}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_differ_per_consumer() {
        let (a, b) = (default_consumer_name(), default_consumer_name());
        assert_ne!(a, b);
        assert!(a.contains(&format!("-{}-", std::process::id())), "{a}");
    }
}
