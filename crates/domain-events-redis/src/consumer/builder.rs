//! [`RedisConsumerBuilder`]: the settings of a [`RedisConsumer`], checked when it is built.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain_events::{Handlers, Pipeline, RetryPolicy};

use super::{
    DEFAULT_BLOCK, DEFAULT_CLAIM_IDLE, DEFAULT_CONCURRENCY, DEFAULT_MAX_BATCH_BYTES,
    DEFAULT_MAX_DELIVERIES, DEFAULT_MAX_ENTRY_BYTES, DEFAULT_PARTITION_LEASE, DEFAULT_PREFETCH,
    DEFAULT_SHUTDOWN_GRACE, Inner, Partitioned, RedisConsumer,
};
use crate::acker::Acker;
use crate::config::RedisConfig;
use crate::error::Error;
use crate::keys::Keys;
use crate::partitions::Leases;
use crate::scripts::ttl_ms;

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
    pub(super) fn id(self) -> &'static str {
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
    partition_lease: Duration,
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
            partition_lease: DEFAULT_PARTITION_LEASE,
        }
    }
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

    /// How long this consumer's lease of a partition lasts unless renewed (every third of it);
    /// default [`DEFAULT_PARTITION_LEASE`]. Only partitioned categories
    /// ([`RedisConfig::partitions`]) have leases: a partition is read by one consumer of the
    /// group at a time, and a consumer that died has its partitions taken by the others about
    /// this long after its last renewal. Must be longer than a stall of the process (a lease not
    /// renewed in time lets another consumer read the partition too).
    pub fn partition_lease(mut self, lease: Duration) -> Self {
        self.partition_lease = lease.max(Duration::from_millis(30));
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
        let mut streams = Vec::new();
        let mut fixed = Vec::new();
        let mut partitioned = Vec::new();
        for category in &categories {
            let partitions = self.config.partitions_of(category);
            if partitions <= 1 {
                fixed.push(keys.stream(category));
                streams.push(keys.stream(category));
            } else {
                let tags: Vec<String> = (0..partitions)
                    .map(|p| Keys::tag(category, p, partitions))
                    .collect();
                streams.extend(tags.iter().map(|tag| keys.stream(tag)));
                partitioned.push(Partitioned {
                    category: (*category).to_owned(),
                    tags,
                });
            }
        }
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
        let leases = Leases::new(keys.clone(), &self.group, &consumer, self.partition_lease);
        let inner = Inner {
            keys,
            group: self.group,
            consumer,
            pipeline,
            streams,
            categories: categories.iter().map(|c| (*c).to_owned()).collect(),
            partitioned,
            ownership: Mutex::default(),
            reading: Mutex::new(Arc::new(fixed)),
            leases,
            lease_ttl: self.partition_lease,
            wake: tokio::sync::Notify::new(),
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
