//! Prometheus metrics: the name, kind, labels and meaning of every metric domain-events records,
//! and (with the `metrics` cargo feature) the recording itself.
//!
//! The runtime records through the [`metrics`](https://docs.rs/metrics) facade, in two places
//! only: the [`Emitter`](struct@crate::Emitter)'s one path (every event it publishes, finds
//! claimed, or fails) and the one delivery [`Pipeline`](crate::Pipeline) (every verdict of every
//! transport's consumer, each handler attempt, each retry). Nothing is recorded until a
//! recorder is installed: `domain-events-prometheus` installs the Prometheus exporter and turns
//! the feature on; any other `metrics` recorder works too, with the feature enabled by hand.
//!
//! Metric handles are resolved once per event type (and emitter or pipeline) on first use:
//! install the recorder before the first event is emitted or consumed.
//!
//! Labels are bounded: event types (those of the schemas; a consumer labels a type none of its
//! handlers knows, or an entry without an envelope, [`OTHER_TYPE`]), consumer groups, transport
//! names, outcomes, and for the Redis gauges categories and stream keys. Never ids or keys.
//!
//! The names are in [`ALL`]; those of the Redis collector (`domain_events_redis::metrics`) and
//! those of the outbox's relay (`domain-events-outbox`, feature `metrics`) are listed here too, so
//! that a dashboard has one list to check.

#[cfg(feature = "metrics")]
mod cache;
#[cfg(feature = "metrics")]
mod record;
#[cfg(not(feature = "metrics"))]
#[path = "off.rs"]
mod record;

pub(crate) use record::{EmitMetrics, PipelineMetrics};

/// What kind of Prometheus metric a name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up; the name ends in `_total`.
    Counter,
    /// A value that goes up and down, set from what was last read.
    Gauge,
    /// Observations in buckets (`_bucket`, `_sum` and `_count` series).
    Histogram,
}

/// What records a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordedBy {
    /// The [`Emitter`](struct@crate::Emitter), for every event it is given.
    Emitter,
    /// The delivery [`Pipeline`](crate::Pipeline) of every consumer.
    Pipeline,
    /// The periodic collector of `domain_events_redis::metrics`, from Redis's own counts.
    RedisCollector,
    /// The outbox's relay (`domain-events-outbox`, feature `metrics`), from its table, every
    /// `metrics_interval`.
    Outbox,
}

/// One metric: its name, kind, labels and meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    /// The Prometheus name.
    pub name: &'static str,
    /// Counter, gauge or histogram.
    pub kind: Kind,
    /// Its label names. `partition` is set only on the series of a partitioned category's
    /// streams (the Redis collector's gauges).
    pub labels: &'static [&'static str],
    /// What it counts or measures (the `# HELP` text).
    pub help: &'static str,
    /// What records it.
    pub recorded_by: RecordedBy,
}

/// Published events, by type and transport.
pub const EMITTED: &str = "domain_events_emitted_total";
/// Events not published because their idempotency key was already claimed.
pub const EMIT_DUPLICATES: &str = "domain_events_emit_duplicates_total";
/// Events whose emission failed.
pub const EMIT_FAILED: &str = "domain_events_emit_failed_total";
/// Events whose emission outcome is unknown (the transport did not answer in time).
pub const EMIT_UNKNOWN: &str = "domain_events_emit_unknown_total";
/// Events a consumer group finished processing, by type and [`Outcome`].
pub const CONSUMED: &str = "domain_events_consumed_total";
/// Further attempts of failed handlers, in the consumer or by a redelivery.
pub const RETRIES: &str = "domain_events_retries_total";
/// Poison and finally failed events given up by a group.
pub const DEAD_LETTERED: &str = "domain_events_dead_lettered_total";
/// How long one attempt of an event's handlers took.
pub const HANDLER_DURATION: &str = "domain_events_handler_duration_seconds";
/// Entries in a category stream.
pub const STREAM_LENGTH: &str = "domain_events_stream_length";
/// Entries ever added to a category stream (Redis 7.0 and later).
pub const STREAM_ENTRIES_ADDED: &str = "domain_events_stream_entries_added_total";
/// Entries of a stream not yet delivered to a group.
pub const CONSUMER_LAG: &str = "domain_events_consumer_lag";
/// Entries delivered to a group and not acknowledged yet.
pub const CONSUMER_PENDING: &str = "domain_events_consumer_pending";
/// Seconds since the oldest pending entry of a group was last delivered.
pub const CONSUMER_OLDEST_PENDING: &str = "domain_events_consumer_oldest_pending_idle_seconds";
/// Consumers (processes) of a group.
pub const CONSUMERS: &str = "domain_events_consumers";
/// Dead letters of a group in a category.
pub const DEAD_LETTERS: &str = "domain_events_dead_letters";
/// 1 when the collector's last read of Redis succeeded, 0 when it failed.
pub const COLLECTOR_UP: &str = "domain_events_collector_up";
/// Failed reads of the collector.
pub const COLLECTOR_ERRORS: &str = "domain_events_collector_errors_total";
/// Events committed to an outbox table and not yet relayed (dead rows not counted).
pub const OUTBOX_BACKLOG: &str = "domain_events_outbox_backlog";
/// Age in seconds of the oldest event not yet relayed from an outbox table; 0 when none.
pub const OUTBOX_OLDEST_AGE: &str = "domain_events_outbox_oldest_age_seconds";

/// The `type` label of a consumed event whose type none of the group's handlers knows, or of an
/// entry without an envelope: a type string always holds a `:`, so it never collides.
pub const OTHER_TYPE: &str = "other";

/// The `outcome` label of [`CONSUMED`]: what became of one delivery of an event. The counts
/// match [`ConsumerStats`](crate::ConsumerStats): `handled`, `duplicate`, `unhandled`, `poison`
/// and `failed` are its fields of the same names; `redelivered` is the part of its `retries`
/// left to the transport; `deferred` is counted in `received` only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The handlers succeeded and the transport recorded it.
    Handled,
    /// The group had handled the idempotency key already.
    Duplicate,
    /// No handler for the event.
    Unhandled,
    /// Not an envelope, unknown type or version, a payload breaking its schema, or refused by
    /// the transport.
    Poison,
    /// Given up after its handlers kept failing (or delivered too often).
    Failed,
    /// The handlers failed; the transport delivers the event again.
    Redelivered,
    /// Left for a later delivery without an attempt counted (the done record could not be
    /// read, a shutdown came during a backoff, or a handled outcome could not be recorded).
    Deferred,
}

impl Outcome {
    /// Every outcome, in label order.
    pub const ALL: [Outcome; 7] = [
        Outcome::Handled,
        Outcome::Duplicate,
        Outcome::Unhandled,
        Outcome::Poison,
        Outcome::Failed,
        Outcome::Redelivered,
        Outcome::Deferred,
    ];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Handled => "handled",
            Outcome::Duplicate => "duplicate",
            Outcome::Unhandled => "unhandled",
            Outcome::Poison => "poison",
            Outcome::Failed => "failed",
            Outcome::Redelivered => "redelivered",
            Outcome::Deferred => "deferred",
        }
    }
}

/// The buckets of [`HANDLER_DURATION`], in seconds: 1 ms to 30 s.
pub const HANDLER_DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

const EMIT_LABELS: &[&str] = &["type", "transport"];
// `partition` only on the series of a partitioned category's streams.
const STREAM_LABELS: &[&str] = &["category", "partition", "stream"];
const GROUP_LABELS: &[&str] = &["category", "partition", "stream", "group"];

const fn metric(
    name: &'static str,
    kind: Kind,
    labels: &'static [&'static str],
    help: &'static str,
    recorded_by: RecordedBy,
) -> Metric {
    Metric {
        name,
        kind,
        labels,
        help,
        recorded_by,
    }
}

/// Every metric, recorded or reserved.
pub const ALL: &[Metric] = &[
    metric(
        EMITTED,
        Kind::Counter,
        EMIT_LABELS,
        "Events published by the emitter.",
        RecordedBy::Emitter,
    ),
    metric(
        EMIT_DUPLICATES,
        Kind::Counter,
        EMIT_LABELS,
        "Events not published because their idempotency key was already claimed.",
        RecordedBy::Emitter,
    ),
    metric(
        EMIT_FAILED,
        Kind::Counter,
        EMIT_LABELS,
        "Events whose emission failed (invalid payload, transport error).",
        RecordedBy::Emitter,
    ),
    metric(
        EMIT_UNKNOWN,
        Kind::Counter,
        EMIT_LABELS,
        "Events whose emission outcome is unknown: the transport did not answer in time.",
        RecordedBy::Emitter,
    ),
    metric(
        CONSUMED,
        Kind::Counter,
        &["group", "type", "outcome"],
        "Deliveries of events a consumer group finished processing, by outcome.",
        RecordedBy::Pipeline,
    ),
    metric(
        RETRIES,
        Kind::Counter,
        &["group", "type"],
        "Further attempts of failed handlers, in the consumer or by a redelivery.",
        RecordedBy::Pipeline,
    ),
    metric(
        DEAD_LETTERED,
        Kind::Counter,
        &["group", "type"],
        "Poison and finally failed events given up by the group (dead-lettered where the \
         transport has dead letters, dropped on the in-memory bus).",
        RecordedBy::Pipeline,
    ),
    metric(
        HANDLER_DURATION,
        Kind::Histogram,
        &["group", "type"],
        "Duration of one attempt of an event's handlers.",
        RecordedBy::Pipeline,
    ),
    metric(
        STREAM_LENGTH,
        Kind::Gauge,
        STREAM_LABELS,
        "Entries in the category stream.",
        RecordedBy::RedisCollector,
    ),
    metric(
        STREAM_ENTRIES_ADDED,
        Kind::Counter,
        STREAM_LABELS,
        "Entries ever added to the category stream, as Redis counts them (Redis 7.0 and later).",
        RecordedBy::RedisCollector,
    ),
    metric(
        CONSUMER_LAG,
        Kind::Gauge,
        GROUP_LABELS,
        "Entries of the stream not yet delivered to the group (when Redis can tell).",
        RecordedBy::RedisCollector,
    ),
    metric(
        CONSUMER_PENDING,
        Kind::Gauge,
        GROUP_LABELS,
        "Entries delivered to the group and not yet acknowledged.",
        RecordedBy::RedisCollector,
    ),
    metric(
        CONSUMER_OLDEST_PENDING,
        Kind::Gauge,
        GROUP_LABELS,
        "Seconds since the group's oldest pending entry was last delivered; 0 when none is pending.",
        RecordedBy::RedisCollector,
    ),
    metric(
        CONSUMERS,
        Kind::Gauge,
        GROUP_LABELS,
        "Consumers (processes) of the group.",
        RecordedBy::RedisCollector,
    ),
    metric(
        DEAD_LETTERS,
        Kind::Gauge,
        &["category", "partition", "group", "stream"],
        "Dead letters of the group in the category's dead-letter stream (`stream` is its key).",
        RecordedBy::RedisCollector,
    ),
    metric(
        COLLECTOR_UP,
        Kind::Gauge,
        &[],
        "1 when the collector's last read of Redis succeeded, 0 when it failed.",
        RecordedBy::RedisCollector,
    ),
    metric(
        COLLECTOR_ERRORS,
        Kind::Counter,
        &[],
        "Failed reads of Redis by the collector.",
        RecordedBy::RedisCollector,
    ),
    metric(
        OUTBOX_BACKLOG,
        Kind::Gauge,
        &["table"],
        "Events committed to the outbox table and not yet relayed to the transport (dead rows not counted).",
        RecordedBy::Outbox,
    ),
    metric(
        OUTBOX_OLDEST_AGE,
        Kind::Gauge,
        &["table"],
        "Age in seconds of the oldest event not yet relayed from the outbox; 0 when none.",
        RecordedBy::Outbox,
    ),
];

/// The metric named `name`, if domain-events records or reserves it.
pub fn by_name(name: &str) -> Option<&'static Metric> {
    ALL.iter().find(|metric| metric.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_conventions_and_are_unique() {
        let mut names: Vec<_> = ALL.iter().map(|m| m.name).collect();
        for metric in ALL {
            assert!(metric.name.starts_with("domain_events_"), "{}", metric.name);
            assert!(
                metric
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{}",
                metric.name
            );
            assert_eq!(
                metric.kind == Kind::Counter,
                metric.name.ends_with("_total"),
                "{}: counters, and only they, end in _total",
                metric.name
            );
            assert!(!metric.help.is_empty());
            for label in metric.labels {
                assert!(!["id", "key", "event_id"].contains(label), "{label}");
            }
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
        assert_eq!(by_name(CONSUMED).map(|m| m.kind), Some(Kind::Counter));
        assert!(by_name("nope").is_none());
        assert!(!OTHER_TYPE.contains(':'));
    }
}
