//! What the partition tests and their worker processes share: six test-only categories
//! (`tests/schemas/partitioned`, one `step` event each, correlated by `entity`, whose key holds
//! the entity and the step number) and a handler that records, in a Redis of the test's own, how
//! often each event ran and in which order each entity's steps ran.

use std::io::Read;
use std::process::{Child, Command};

use domain_events::{EmitBatch, Envelope, EventPayload, HandlerError, Handlers, ValidationError};
use domain_events_redis::{Error, RedisConfig};

use crate::worker_process::spawn_ready;
use redis::aio::ConnectionManager;

domain_events::include_events!("schemas/partitioned");

/// The six categories, in the order their schema files sort.
pub const CATEGORIES: [&str; 6] = ["cart", "device", "ledger", "parcel", "review", "ticket"];

/// `config` with each of the six categories split into `partitions`.
pub fn partitioned(mut config: RedisConfig, partitions: u32) -> Result<RedisConfig, Error> {
    for category in CATEGORIES {
        config = config.partitions::<DomainEvent>(category, partitions)?;
    }
    Ok(config)
}

/// A `step` payload of one of the six categories.
pub trait Step: EventPayload {
    /// The payload of step `seq` of `entity`.
    fn new(entity: &str, seq: u64) -> Self;
    /// The entity (the correlation id).
    fn entity(&self) -> &str;
    /// The step number.
    fn seq(&self) -> u64;
}

macro_rules! steps {
    ($($payload:ident),*) => {$(
        impl Step for $payload {
            fn new(entity: &str, seq: u64) -> Self {
                Self { entity: entity.to_owned(), seq }
            }
            fn entity(&self) -> &str {
                &self.entity
            }
            fn seq(&self) -> u64 {
                self.seq
            }
        }
    )*};
}

steps!(
    CartStepPayload,
    DeviceStepPayload,
    LedgerStepPayload,
    ParcelStepPayload,
    ReviewStepPayload,
    TicketStepPayload
);

/// Pushes step `seq` of `entity` of the category at `index` of [`CATEGORIES`] onto `batch`.
pub fn push_step(
    batch: &mut EmitBatch,
    index: usize,
    entity: &str,
    seq: u64,
) -> Result<domain_events::Uuid, ValidationError> {
    match index % CATEGORIES.len() {
        0 => batch.push(CartStepPayload::new(entity, seq)),
        1 => batch.push(DeviceStepPayload::new(entity, seq)),
        2 => batch.push(LedgerStepPayload::new(entity, seq)),
        3 => batch.push(ParcelStepPayload::new(entity, seq)),
        4 => batch.push(ReviewStepPayload::new(entity, seq)),
        _ => batch.push(TicketStepPayload::new(entity, seq)),
    }
}

/// The key counting the runs of one event: `<counters>:handled:<eventId>`.
pub fn handled_key(counters: &str, event_id: &str) -> String {
    format!("{counters}:handled:{event_id}")
}

/// The list of the step numbers of one entity, in the order their handlers ran:
/// `<counters>:order:<category>:<entity>`.
pub fn order_key(counters: &str, category: &str, entity: &str) -> String {
    format!("{counters}:order:{category}:{entity}")
}

/// Handlers for the six `step` events that, per event, count the run (`INCR` of
/// [`handled_key`]) and append the step number to its entity's [`order_key`] list, in one
/// `MULTI`, on `redis` (not the Redis under test, which may be a cluster).
pub fn step_handlers(redis: ConnectionManager, counters: &str) -> Handlers {
    let handlers = Handlers::new();
    let handlers = recording::<CartStepPayload>(handlers, &redis, counters);
    let handlers = recording::<DeviceStepPayload>(handlers, &redis, counters);
    let handlers = recording::<LedgerStepPayload>(handlers, &redis, counters);
    let handlers = recording::<ParcelStepPayload>(handlers, &redis, counters);
    let handlers = recording::<ReviewStepPayload>(handlers, &redis, counters);
    let handlers = recording::<TicketStepPayload>(handlers, &redis, counters);
    handlers.knowing::<DomainEvent>()
}

fn recording<P: Step>(handlers: Handlers, redis: &ConnectionManager, counters: &str) -> Handlers {
    let redis = redis.clone();
    let counters = counters.to_owned();
    handlers.on(move |event: Envelope<P>| {
        let mut redis = redis.clone();
        let handled = handled_key(&counters, &event.event_id.to_string());
        let order = order_key(&counters, P::CATEGORY, event.payload.entity());
        let seq = event.payload.seq();
        async move {
            redis::pipe()
                .atomic()
                .incr(&handled, 1)
                .ignore()
                .rpush(&order, seq)
                .ignore()
                .query_async::<()>(&mut redis)
                .await
                .map_err(HandlerError::from_error)
        }
    })
}

/// The settings of a `redis-partition-worker` process (see its documentation).
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// `REDIS_URL`: the Redis under test.
    pub url: String,
    /// `COUNTER_URL`: the plain Redis of the records.
    pub counter_url: String,
    /// `KEY_PREFIX`.
    pub prefix: String,
    /// `GROUP`.
    pub group: String,
    /// `CONSUMER`.
    pub consumer: String,
    /// `COUNTERS`: the prefix of the record keys.
    pub counters: String,
    /// `PARTITIONS`: of each of the six categories.
    pub partitions: u32,
    /// `LEASE_MS`: the partition lease.
    pub lease_ms: u64,
}

/// A `redis-partition-worker` process; killed when dropped.
pub struct Worker(Child);

impl Worker {
    /// Starts the worker binary `exe` (`env!("CARGO_BIN_EXE_redis-partition-worker")`) and waits
    /// until it is ready.
    pub fn spawn(exe: &str, settings: &WorkerSettings) -> Self {
        Worker(spawn_ready(
            Command::new(exe)
                .env("REDIS_URL", &settings.url)
                .env("COUNTER_URL", &settings.counter_url)
                .env("KEY_PREFIX", &settings.prefix)
                .env("GROUP", &settings.group)
                .env("CONSUMER", &settings.consumer)
                .env("COUNTERS", &settings.counters)
                .env("PARTITIONS", settings.partitions.to_string())
                .env("LEASE_MS", settings.lease_ms.to_string()),
        ))
    }

    /// Kills it with `SIGKILL` (a crash) and reaps it.
    pub fn sigkill(&mut self) {
        self.0.kill().expect("SIGKILL");
        self.0.wait().expect("reaped");
    }

    /// Closes its standard input (a graceful shutdown), waits for it to exit and returns how many
    /// events it handled.
    pub fn stop(mut self) -> u64 {
        drop(self.0.stdin.take());
        let mut out = String::new();
        self.0
            .stdout
            .take()
            .expect("stdout")
            .read_to_string(&mut out)
            .expect("worker output");
        let status = self.0.wait().expect("exited");
        assert!(status.success(), "worker exited with {status}: {out}");
        out.split_whitespace()
            .find_map(|word| word.strip_prefix("handled="))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no handled count in {out:?}"))
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
