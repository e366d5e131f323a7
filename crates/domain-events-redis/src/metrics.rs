//! [`Collector`]: the gauges of the streams, consumer groups and dead letters, read from Redis
//! periodically (the `metrics` feature).
//!
//! Redis counts lag and pending entries per stream and group itself; the collector reads them
//! with an [`Inspector`] every interval and sets the gauges of [`domain_events::metrics`]
//! (`domain_events_consumer_lag`, `..._pending`, `..._oldest_pending_idle_seconds`,
//! `domain_events_consumers`, `domain_events_stream_length`,
//! `domain_events_stream_entries_added_total`, `domain_events_dead_letters`) with the labels
//! `category`, `stream` (the stream's key) and `group`. A partitioned category has a series per
//! partition: `category` is the category's name and `partition` the partition's number, a label
//! only the streams of partitions have (`image` partition 2 is `category="image",partition="2"`,
//! stream `<prefix>:{image#2}`). One collector per Redis and prefix is enough, whatever the
//! number of consumers.
//!
//! The series of a stream or group that disappears keep their last value until the process
//! restarts (the `metrics` facade cannot remove a series).

use std::time::Duration;

use domain_events::Shutdown;
use domain_events::metrics::{
    COLLECTOR_ERRORS, COLLECTOR_UP, CONSUMER_LAG, CONSUMER_OLDEST_PENDING, CONSUMER_PENDING,
    CONSUMERS, DEAD_LETTERS, STREAM_ENTRIES_ADDED, STREAM_LENGTH,
};
use metrics::{Label, counter, gauge};
use tokio::task::JoinHandle;

use crate::config::RedisConfig;
use crate::error::Error;
use crate::keys::Keys;
use crate::status::{Inspector, Status};

/// How often a [`Collector`] reads Redis unless told otherwise: 15 seconds, Prometheus's default
/// scrape interval.
pub const DEFAULT_COLLECT_INTERVAL: Duration = Duration::from_secs(15);

/// Sets the gauges of lag, pending entries and dead letters from Redis, every interval.
///
/// ```no_run
/// # async fn demo() -> Result<(), domain_events_redis::Error> {
/// use std::time::Duration;
/// use domain_events_redis::{RedisConfig, metrics::Collector};
///
/// let collector = Collector::new(RedisConfig::new("redis://127.0.0.1")?)?
///     .interval(Duration::from_secs(10))
///     .spawn();
/// // ...
/// collector.stop().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Collector {
    inspector: Inspector,
    interval: Duration,
}

impl Collector {
    /// A collector of the streams under `config`'s prefix. Does not connect yet; must be called
    /// inside a Tokio runtime.
    pub fn new(config: RedisConfig) -> Result<Self, Error> {
        Ok(Self {
            inspector: Inspector::new(config)?,
            interval: DEFAULT_COLLECT_INTERVAL,
        })
    }

    /// Reads Redis every `interval` (at least 1 ms); default [`DEFAULT_COLLECT_INTERVAL`].
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(Duration::from_millis(1));
        self
    }

    /// Reads Redis once and sets the gauges. A failed read sets `domain_events_collector_up` to
    /// 0, counts one `domain_events_collector_errors_total`, leaves the other gauges as they were
    /// and returns the error.
    pub async fn collect(&self) -> Result<(), Error> {
        match self.inspector.status().await {
            Ok(status) => {
                set_gauges(&status);
                gauge!(COLLECTOR_UP).set(1.0);
                Ok(())
            }
            Err(error) => {
                gauge!(COLLECTOR_UP).set(0.0);
                counter!(COLLECTOR_ERRORS).increment(1);
                Err(error)
            }
        }
    }

    /// Collects every interval (the first time at once) on a new Tokio task until the handle
    /// is stopped. A failed read is logged and tried again at the next interval.
    pub fn spawn(self) -> CollectorHandle {
        let shutdown = Shutdown::new();
        let stop = shutdown.clone();
        let task = tokio::spawn(async move {
            let mut every = tokio::time::interval(self.interval);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    biased;
                    () = stop.triggered() => break,
                    _ = every.tick() => {}
                }
                if let Err(error) = self.collect().await {
                    tracing::warn!(%error, "reading the stream metrics from Redis failed");
                }
            }
        });
        CollectorHandle { shutdown, task }
    }
}

impl std::fmt::Debug for Collector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collector")
            .field("inspector", &self.inspector)
            .field("interval", &self.interval)
            .finish()
    }
}

/// A [`Collector`] running on its task. Dropping the handle leaves it running.
#[derive(Debug)]
pub struct CollectorHandle {
    shutdown: Shutdown,
    task: JoinHandle<()>,
}

impl CollectorHandle {
    /// Stops the collector (a read under way finishes first).
    pub async fn stop(self) {
        self.shutdown.trigger();
        if let Err(error) = self.task.await {
            tracing::error!(%error, "the metrics collector ended abnormally");
        }
    }
}

/// Sets every gauge from `status`. Counts are far below 2^53: exact as `f64`.
#[allow(clippy::cast_precision_loss)]
fn set_gauges(status: &Status) {
    for stream in &status.streams {
        let labels = series_labels(&stream.category, &stream.stream, None);
        gauge!(STREAM_LENGTH, labels.clone()).set(stream.length as f64);
        if let Some(added) = stream.entries_added {
            counter!(STREAM_ENTRIES_ADDED, labels).absolute(added);
        }
        for group in &stream.groups {
            let labels = series_labels(&stream.category, &stream.stream, Some(&group.group));
            if let Some(lag) = group.lag {
                gauge!(CONSUMER_LAG, labels.clone()).set(lag as f64);
            }
            gauge!(CONSUMER_PENDING, labels.clone()).set(group.pending as f64);
            let idle_ms = group.oldest_pending.as_ref().map_or(0, |p| p.idle_ms);
            gauge!(CONSUMER_OLDEST_PENDING, labels.clone()).set(idle_ms as f64 / 1000.0);
            gauge!(CONSUMERS, labels).set(group.consumers.len() as f64);
        }
    }
    for letters in &status.dead_letters {
        let labels = series_labels(&letters.category, &letters.stream, Some(&letters.group));
        gauge!(DEAD_LETTERS, labels).set(letters.length as f64);
    }
}

/// The labels of the series of `stream`, whose hash tag is `tag` (what [`Status`] calls its
/// category): `category`, the category's name also for a partition's stream; `partition`, for a
/// partition's stream only (so `sum by (category)` adds a partitioned category's partitions up);
/// `stream`, the key; and `group` when given.
fn series_labels(tag: &str, stream: &str, group: Option<&str>) -> Vec<Label> {
    let (category, partition) = Keys::split_tag(tag);
    let mut labels = vec![Label::new("category", category.to_owned())];
    if let Some(partition) = partition {
        labels.push(Label::new("partition", partition.to_string()));
    }
    labels.push(Label::new("stream", stream.to_owned()));
    if let Some(group) = group {
        labels.push(Label::new("group", group.to_owned()));
    }
    labels
}
