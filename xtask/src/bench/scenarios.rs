//! The scenarios of the comparison: what each side runs, how many events, the goal and the bound
//! that applies.

use super::limits::Limit;
use super::report::trim_float;

/// The type string of the benchmark event.
pub(super) const EVENT_TYPE: &str = "image:variation_completed";

/// Which program measures one side of a scenario.
#[derive(Debug, Clone, Copy)]
pub(super) enum Side {
    /// `domain-events-bench <subcommand> [--url URL] --n N --warmup W`.
    Bench { command: &'static str, redis: bool },
    /// `node bench/peer/peer.mjs <scenario> <url> <n> --warmup W`.
    Node { scenario: &'static str },
    /// `redis-benchmark -P 64 ... XADD <stream> MAXLEN ~ 1000000 * type .. event <envelope>`.
    RedisBenchmark,
}

/// What a scenario compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Metric {
    /// Events per second; higher is better.
    Throughput,
    /// Peak resident set size; lower is better.
    PeakRss,
}

/// The goal for ours ÷ peer.
#[derive(Debug, Clone, Copy)]
pub(super) enum Goal {
    AtLeast(f64),
    AtMost(f64),
}

impl Goal {
    pub(super) fn met(self, ratio: f64) -> bool {
        match self {
            Goal::AtLeast(goal) => ratio >= goal,
            Goal::AtMost(goal) => ratio <= goal,
        }
    }

    pub(super) fn value(self) -> f64 {
        match self {
            Goal::AtLeast(goal) | Goal::AtMost(goal) => goal,
        }
    }

    pub(super) fn text(self) -> String {
        match self {
            Goal::AtLeast(goal) => format!("≥ {}", trim_float(goal)),
            Goal::AtMost(goal) => format!("≤ {}", trim_float(goal)),
        }
    }
}

/// One row of the comparison.
#[derive(Debug, Clone, Copy)]
pub(super) struct Scenario {
    pub(super) id: &'static str,
    pub(super) title: &'static str,
    pub(super) ours_text: &'static str,
    pub(super) peer_text: &'static str,
    pub(super) ours: Side,
    pub(super) peer: Side,
    /// Events per run: `[full, quick]`, ours then peer.
    pub(super) ours_n: [u64; 2],
    pub(super) peer_n: [u64; 2],
    pub(super) metric: Metric,
    pub(super) goal: Goal,
    /// The upper bound this machine sets on our side.
    pub(super) limit: Limit,
}

const fn bench(command: &'static str) -> Side {
    Side::Bench {
        command,
        redis: true,
    }
}

const fn node(scenario: &'static str) -> Side {
    Side::Node { scenario }
}

/// The scenarios of the issue, in report order.
pub(super) const SCENARIOS: &[Scenario] = &[
    Scenario {
        id: "emit_serial",
        title: "emit serial",
        ours_text: "typed emit, awaited one at a time, Redis Streams with the idempotency claim",
        peer_text: "BullMQ Queue.add serial with jobId",
        ours: bench("emit_serial"),
        peer: node("bullmq_add_serial"),
        ours_n: [20_000, 3_000],
        peer_n: [20_000, 3_000],
        metric: Metric::Throughput,
        goal: Goal::AtLeast(2.5),
        limit: Limit::RoundTrip,
    },
    Scenario {
        id: "emit_concurrent",
        title: "emit concurrent",
        ours_text: "64 typed emits in flight",
        peer_text: "BullMQ 64 Queue.add in flight",
        ours: bench("emit_concurrent64"),
        peer: node("bullmq_add_concurrent64"),
        ours_n: [50_000, 10_000],
        peer_n: [50_000, 10_000],
        metric: Metric::Throughput,
        goal: Goal::AtLeast(4.0),
        limit: Limit::RedisCpu,
    },
    Scenario {
        id: "emit_batch",
        title: "emit batch",
        ours_text: "EmitBatch of 1,000",
        peer_text: "BullMQ addBulk of 1,000",
        ours: bench("emit_batch1000"),
        peer: node("bullmq_addbulk_1000"),
        ours_n: [100_000, 20_000],
        peer_n: [50_000, 10_000],
        metric: Metric::Throughput,
        goal: Goal::AtLeast(8.0),
        limit: Limit::RedisCpu,
    },
    Scenario {
        id: "emit_duplicates",
        title: "emit duplicates",
        ours_text: "every emit a duplicate of one of 100 keys",
        peer_text: "BullMQ Queue.add with an existing jobId",
        ours: bench("emit_duplicates"),
        peer: node("bullmq_add_duplicate"),
        ours_n: [20_000, 3_000],
        peer_n: [20_000, 3_000],
        metric: Metric::Throughput,
        goal: Goal::AtLeast(2.5),
        limit: Limit::RoundTrip,
    },
    Scenario {
        id: "consume_c1",
        title: "consume c1",
        ours_text: "RedisConsumer, no-op typed handler, done record + ack, concurrency 1",
        peer_text: "BullMQ Worker, no-op processor, concurrency 1",
        ours: bench("consume_c1"),
        peer: node("bullmq_worker_c1"),
        ours_n: [20_000, 3_000],
        peer_n: [20_000, 3_000],
        metric: Metric::Throughput,
        goal: Goal::AtLeast(3.0),
        limit: Limit::None,
    },
    Scenario {
        id: "consume_c50",
        title: "consume c50",
        ours_text: "RedisConsumer, no-op typed handler, done record + ack, concurrency 50",
        peer_text: "BullMQ Worker, no-op processor, concurrency 50",
        ours: bench("consume_c50"),
        peer: node("bullmq_worker_c50"),
        ours_n: [50_000, 10_000],
        peer_n: [50_000, 10_000],
        metric: Metric::Throughput,
        goal: Goal::AtLeast(3.0),
        limit: Limit::None,
    },
    Scenario {
        id: "bullmq_transport",
        title: "BullMQ transport",
        ours_text: "typed emit through our BullmqTransport, serial",
        peer_text: "BullMQ Queue.add serial with jobId",
        ours: bench("bullmq_emit_serial"),
        peer: node("bullmq_add_serial"),
        ours_n: [10_000, 2_000],
        peer_n: [10_000, 2_000],
        metric: Metric::Throughput,
        goal: Goal::AtLeast(1.2),
        limit: Limit::RoundTrip,
    },
    Scenario {
        id: "raw_limit",
        title: "raw limit",
        ours_text: "EmitBatch of 1,000 without the idempotency claim (pipelined XADD), payloads built before the clock starts",
        peer_text: "redis-benchmark XADD of the same entry, pipeline 64, 50 clients",
        ours: bench("emit_batch_unclaimed"),
        peer: Side::RedisBenchmark,
        ours_n: [200_000, 40_000],
        peer_n: [1_000_000, 200_000],
        metric: Metric::Throughput,
        goal: Goal::AtLeast(0.4),
        limit: Limit::RedisCpu,
    },
    Scenario {
        id: "memory_bus",
        title: "in-memory bus",
        ours_text: "MemoryBus: emit → delivered to one typed subscriber",
        peer_text: "the same envelopes through a bare Tokio channel",
        ours: Side::Bench {
            command: "memory_bus",
            redis: false,
        },
        peer: Side::Bench {
            command: "tokio_channel",
            redis: false,
        },
        ours_n: [200_000, 50_000],
        peer_n: [200_000, 50_000],
        metric: Metric::Throughput,
        goal: Goal::AtLeast(0.5),
        limit: Limit::None,
    },
    Scenario {
        id: "memory",
        title: "memory",
        ours_text: "peak RSS of a RedisConsumer (concurrency 50) working through a backlog",
        peer_text: "peak RSS of a BullMQ Worker (concurrency 50), same backlog",
        ours: bench("consume_memory"),
        peer: node("bullmq_worker_memory"),
        ours_n: [100_000, 20_000],
        peer_n: [100_000, 20_000],
        metric: Metric::PeakRss,
        goal: Goal::AtMost(0.2),
        limit: Limit::None,
    },
];

/// The program of a side, as recorded in `results.json`.
pub(super) fn program_name(side: Side) -> String {
    match side {
        Side::Bench { command, .. } => format!("domain-events-bench {command}"),
        Side::Node { scenario } => format!("node bench/peer/peer.mjs {scenario}"),
        Side::RedisBenchmark => "redis-benchmark -P 64 XADD".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goals() {
        assert!(Goal::AtLeast(2.5).met(2.5) && !Goal::AtLeast(2.5).met(2.4));
        assert!(Goal::AtMost(0.2).met(0.1) && !Goal::AtMost(0.2).met(0.3));
        assert_eq!(Goal::AtLeast(2.5).text(), "≥ 2.5");
        let ids: std::collections::HashSet<_> = SCENARIOS.iter().map(|s| s.id).collect();
        assert_eq!(ids.len(), SCENARIOS.len(), "scenario ids are unique");
    }
}
