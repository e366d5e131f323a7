//! [`RedisConsumer`]: runs [`Handlers`] on the streams of a consumer group.
//!
//! See [`RedisConsumer`] for what it does with each entry.
//!
//! The parts: `builder` configures a consumer, `run` is its main loop and shutdown, `read` takes
//! entries from Redis (reads, claims, done checks), `in_flight` tracks the entries held here, and
//! `settle` runs one entry through the [`Pipeline`] and settles it by the verdict.
//!
//! [`Handlers`]: domain_events::Handlers

mod builder;
mod in_flight;
mod ownership;
mod read;
mod run;
mod settle;

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain_events::{ConsumerHandle, ConsumerStats, Pipeline, RawEnvelope, Shutdown};
use redis::RedisError;

use crate::acker::Acker;
use crate::config::RedisConfig;
use crate::connection::Connection;
use crate::entry::Entry;
use crate::error::Error;
use crate::keys::Keys;
use crate::partitions::Leases;

pub use builder::{RedisConsumerBuilder, StartFrom};
use in_flight::InFlight;
use ownership::{Ownership, Partitioned};

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

/// How long a consumer's lease of a partition lasts unless renewed (every third of it), unless
/// configured otherwise: 10 seconds. The partitions of a consumer that died are taken by the
/// others within about this time.
pub const DEFAULT_PARTITION_LEASE: Duration = Duration::from_secs(10);

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
///
/// [`Handlers`]: domain_events::Handlers
/// [`Handlers::dispatch`]: domain_events::Handlers::dispatch
/// [`RetryPolicy`]: domain_events::RetryPolicy
pub struct RedisConsumer {
    inner: Arc<Inner>,
}

impl RedisConsumer {
    /// The consumer group.
    pub fn group(&self) -> &str {
        &self.inner.group
    }

    /// This consumer's name within the group.
    pub fn consumer_name(&self) -> &str {
        &self.inner.consumer
    }

    /// The stream keys this consumer may read: every category's, and for a partitioned category
    /// every partition's (it reads those whose leases it holds).
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

struct Inner {
    config: RedisConfig,
    keys: Keys,
    group: String,
    consumer: String,
    /// The delivery rules, the counters and the shutdown signal.
    pipeline: Pipeline,
    /// Every stream this consumer may read (all partitions of the partitioned categories).
    streams: Vec<String>,
    /// The categories read, in the order of `streams`.
    categories: Vec<String>,
    /// The categories of more than one partition.
    partitioned: Vec<Partitioned>,
    /// The partitions whose leases this consumer holds.
    ownership: Mutex<Ownership>,
    /// The streams read now: every unpartitioned category's and those of the partitions held.
    reading: Mutex<Arc<Vec<String>>>,
    /// The lease and membership calls.
    leases: Leases,
    /// How long a partition lease lasts unless renewed.
    lease_ttl: Duration,
    /// Woken when a partition was taken (the main loop may be waiting with nothing to read).
    wake: tokio::sync::Notify,
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

fn is_error_code(error: &RedisError, code: &str) -> bool {
    error.code() == Some(code) || error.to_string().contains(code)
}

fn log_join(joined: Result<(), tokio::task::JoinError>) {
    if let Err(error) = joined {
        tracing::error!(error = %error, "an entry's task ended abnormally; the entry stays pending");
    }
}
