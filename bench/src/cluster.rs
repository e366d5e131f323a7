//! The Redis Cluster scenarios (docs/benchmarks.md, "Redis Cluster"), on a cluster of three
//! masters with a replica each (the test harness's, through `domain-events-bench redis_cluster`),
//! the category `image` split into `--partitions` streams:
//!
//! - `cluster_emit`: `Emitter::emit_batch` of 500 events from 50 tasks at once, with the
//!   idempotency claim;
//! - `cluster_consume`: one consumer group at concurrency 50 draining a backlog (filled untimed the
//!   same way), its handler doing nothing but count.
//!
//! Each prints events/s and, for every node, the Redis CPU seconds (`used_cpu_sys +
//! used_cpu_user`) and commands (`total_commands_processed`) of the timed part, the partitions
//! each master holds and the timed events in them, and this process's own CPU seconds. The
//! per-event figures, shares and projection are worked out by the xtask
//! (`xtask/src/bench/cluster.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use domain_events::{EmitBatch, Emitter, HandlerError, Handlers};
use domain_events_catalog::{DomainEvent, ImageVariationCompletedEvent};
use domain_events_redis::{
    Keys, RedisConfig, RedisConsumer, RedisTransport, StartFrom, partition_of,
};
use serde_json::json;

use crate::payload::{WARM_BASE, id36, payload};
use crate::scenarios::SOURCE;

/// The partitioned category (the benchmark event's).
const CATEGORY: &str = "image";
/// Tasks emitting at once.
pub const TASKS: u64 = 50;
/// Events per `emit_batch`.
pub const BATCH: u64 = 500;
/// Handlers in flight in the consumer.
const CONCURRENCY: usize = 50;
/// The key prefix of the timed events, and of the warm-up of the consume scenario.
const PREFIX: &str = "bench-cluster";
const WARM_PREFIX: &str = "bench-cluster-warm";
/// The consumer group.
const GROUP: &str = "bench";
/// How long to wait for the consumer before giving up (a bound against hanging).
const WAIT: Duration = Duration::from_secs(120);
/// Clock ticks per second of `/proc/self/stat` (`USER_HZ`, 100 on Linux).
const USER_HZ: f64 = 100.0;

/// One node of the cluster, as `CLUSTER NODES` lists it.
#[derive(Debug, Clone)]
struct Node {
    port: u16,
    master: bool,
    /// Slot ranges it serves (masters).
    slots: Vec<(u16, u16)>,
}

/// A node's counters at one instant.
#[derive(Debug, Clone, Copy)]
struct Counters {
    cpu_seconds: f64,
    commands: u64,
}

/// The cluster seen from the bench: its nodes, and a plain connection to each.
struct Cluster {
    nodes: Vec<Node>,
    conns: Vec<redis::aio::MultiplexedConnection>,
}

impl Cluster {
    /// Reads the nodes from the first seed of `url` (`redis+cluster://host:port,...`).
    async fn discover(url: &str) -> anyhow::Result<Self> {
        let seeds = url
            .strip_prefix("redis+cluster://")
            .with_context(|| format!("not a redis+cluster:// URL: {url}"))?;
        let seed = seeds.split(',').next().context("no seed node")?;
        let mut conn = connect(&format!("redis://{seed}")).await?;
        let text: String = redis::cmd("CLUSTER")
            .arg("NODES")
            .query_async(&mut conn)
            .await?;
        let nodes = parse_nodes(&text)?;
        let host = seed.rsplit_once(':').map_or(seed, |(host, _)| host);
        let mut conns = Vec::with_capacity(nodes.len());
        for node in &nodes {
            conns.push(connect(&format!("redis://{host}:{}", node.port)).await?);
        }
        Ok(Cluster { nodes, conns })
    }

    /// `FLUSHALL` on every master: each run starts on an empty cluster.
    async fn flush(&mut self) -> anyhow::Result<()> {
        for (node, conn) in self.nodes.iter().zip(&mut self.conns) {
            if node.master {
                redis::cmd("FLUSHALL")
                    .query_async::<()>(conn)
                    .await
                    .with_context(|| format!("FLUSHALL on node {}", node.port))?;
            }
        }
        Ok(())
    }

    /// The counters of every node, in the order of `nodes`.
    async fn counters(&mut self) -> anyhow::Result<Vec<Counters>> {
        let mut all = Vec::with_capacity(self.conns.len());
        for conn in &mut self.conns {
            let info: String = redis::cmd("INFO").query_async(conn).await?;
            all.push(parse_counters(&info)?);
        }
        Ok(all)
    }

    /// The port of the master serving `key`'s slot.
    async fn master_of(&mut self, key: &str) -> anyhow::Result<u16> {
        let conn = self.conns.first_mut().context("no node")?;
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query_async(conn)
            .await?;
        self.nodes
            .iter()
            .find(|node| node.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot)))
            .map(|node| node.port)
            .with_context(|| format!("no master serves slot {slot}"))
    }
}

async fn connect(url: &str) -> anyhow::Result<redis::aio::MultiplexedConnection> {
    redis::Client::open(url)?
        .get_multiplexed_async_connection()
        .await
        .with_context(|| format!("cannot connect to {url}"))
}

/// The nodes of a `CLUSTER NODES` reply, by port.
fn parse_nodes(text: &str) -> anyhow::Result<Vec<Node>> {
    let mut nodes = Vec::new();
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        ensure!(fields.len() >= 8, "unexpected CLUSTER NODES line: {line}");
        let port = fields[1]
            .split(['@', ','])
            .next()
            .and_then(|address| address.rsplit_once(':'))
            .and_then(|(_, port)| port.parse().ok())
            .with_context(|| format!("no port in `{}`", fields[1]))?;
        let slots = fields[8..]
            .iter()
            // Slots being migrated (`[...]`) are not served yet.
            .filter(|range| !range.starts_with('['))
            .filter_map(|range| match range.split_once('-') {
                Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                None => range.parse().ok().map(|slot| (slot, slot)),
            })
            .collect();
        nodes.push(Node {
            port,
            master: fields[2].contains("master") && !fields[2].contains("fail"),
            slots,
        });
    }
    nodes.sort_by_key(|node| node.port);
    Ok(nodes)
}

/// CPU seconds and commands processed from an `INFO` reply.
fn parse_counters(info: &str) -> anyhow::Result<Counters> {
    let field = |name: &str| -> anyhow::Result<&str> {
        info.lines()
            .find_map(|line| line.trim().strip_prefix(name)?.strip_prefix(':'))
            .with_context(|| format!("no {name} in INFO"))
    };
    Ok(Counters {
        cpu_seconds: field("used_cpu_sys")?.parse::<f64>()?
            + field("used_cpu_user")?.parse::<f64>()?,
        commands: field("total_commands_processed")?.parse()?,
    })
}

/// CPU seconds this process used so far (`utime + stime` of `/proc/self/stat`).
fn own_cpu_seconds() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat")
        .context("cannot read /proc/self/stat (Linux only)")?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').context("bad /proc/self/stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after `) state`.
    let ticks = |i: usize| -> anyhow::Result<f64> {
        Ok(fields
            .get(i)
            .context("short /proc/self/stat")?
            .parse::<f64>()?)
    };
    Ok((ticks(11)? + ticks(12)?) / USER_HZ)
}

/// The configuration of every producer and consumer of a run.
fn config(url: &str, prefix: &str, partitions: u32) -> anyhow::Result<RedisConfig> {
    Ok(RedisConfig::new(url)?
        .key_prefix(prefix)
        .partitions::<DomainEvent>(CATEGORY, partitions)?)
}

/// Emits events `from..from + n` in batches of `batch` from [`TASKS`] tasks at once, each taking
/// the next batch when its last one is published.
async fn emit_concurrently(
    emitter: &Emitter,
    from: u64,
    n: u64,
    batch: u64,
) -> anyhow::Result<Duration> {
    let next = Arc::new(AtomicU64::new(from));
    let end = from + n;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..TASKS {
        let (emitter, next) = (emitter.clone(), next.clone());
        tasks.spawn(async move {
            loop {
                let first = next.fetch_add(batch, Ordering::Relaxed);
                if first >= end {
                    return anyhow::Ok(());
                }
                let mut events = EmitBatch::new();
                for i in first..(first + batch).min(end) {
                    events.push(payload(i))?;
                }
                let emitted = emitter.emit_batch(events).await?;
                ensure!(
                    emitted.iter().all(|e| e.published()),
                    "an event of a batch was not published"
                );
            }
        });
    }
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    Ok(started.elapsed())
}

/// The partitions of the category (by stream key) with their master, and how many of events
/// `0..n` each partition holds.
async fn layout(
    cluster: &mut Cluster,
    partitions: u32,
    n: u64,
) -> anyhow::Result<BTreeMap<u16, (Vec<u32>, u64)>> {
    let keys = Keys::new(PREFIX);
    let mut per_partition = vec![0u64; partitions as usize];
    for i in 0..n {
        // The correlation id of event `i` (its `variationId`).
        let id = format!("var_{}", id36(i));
        per_partition[partition_of(&id, partitions) as usize] += 1;
    }
    let mut masters: BTreeMap<u16, (Vec<u32>, u64)> = cluster
        .nodes
        .iter()
        .filter(|node| node.master)
        .map(|node| (node.port, (Vec::new(), 0)))
        .collect();
    for p in 0..partitions {
        let stream = keys.stream(&Keys::tag(CATEGORY, p, partitions));
        let master = cluster.master_of(&stream).await?;
        let entry = masters.entry(master).or_default();
        entry.0.push(p);
        entry.1 += per_partition[p as usize];
    }
    Ok(masters)
}

/// One timed run.
struct Run {
    scenario: &'static str,
    partitions: u32,
    n: u64,
    elapsed: Duration,
    /// CPU seconds of this process in the timed part.
    client_cpu_seconds: f64,
    /// The counters of every node before and after it.
    before: Vec<Counters>,
    after: Vec<Counters>,
}

impl Run {
    /// Its JSON line, with the partitions each master holds and their events.
    fn line(
        &self,
        cluster: &Cluster,
        layout: &BTreeMap<u16, (Vec<u32>, u64)>,
    ) -> serde_json::Value {
        let seconds = self.elapsed.as_secs_f64();
        let nodes: Vec<serde_json::Value> = cluster
            .nodes
            .iter()
            .zip(self.before.iter().zip(&self.after))
            .map(|(node, (b, a))| {
                let (held, events) = layout.get(&node.port).cloned().unwrap_or_default();
                json!({
                    "port": node.port,
                    "role": if node.master { "master" } else { "replica" },
                    "partitions": held,
                    "events": events,
                    "cpu_seconds": ((a.cpu_seconds - b.cpu_seconds).max(0.0) * 1e6).round() / 1e6,
                    "commands": a.commands.saturating_sub(b.commands),
                })
            })
            .collect();
        json!({
            "scenario": self.scenario,
            "partitions": self.partitions,
            "n": self.n,
            "seconds": (seconds * 10_000.0).round() / 10_000.0,
            "per_sec": (self.n as f64 / seconds.max(1e-9)).round() as u64,
            "client_cpu_seconds": (self.client_cpu_seconds * 1000.0).round() / 1000.0,
            "nodes": nodes,
        })
    }
}

/// `cluster_emit`: `warmup` events untimed (the same 50 tasks, smaller batches), then events
/// `0..n` timed; every master flushed first.
pub async fn emit(
    url: &str,
    partitions: u32,
    n: u64,
    warmup: u64,
) -> anyhow::Result<serde_json::Value> {
    let mut cluster = Cluster::discover(url).await?;
    cluster.flush().await?;
    let emitter = Emitter::new(
        SOURCE,
        RedisTransport::new(config(url, PREFIX, partitions)?)?,
    );
    if warmup > 0 {
        emit_concurrently(&emitter, WARM_BASE, warmup, warmup.div_ceil(TASKS)).await?;
    }
    let line = measure(&mut cluster, "cluster_emit", partitions, n, async || {
        let cpu_before = own_cpu_seconds()?;
        let elapsed = emit_concurrently(&emitter, 0, n, BATCH).await?;
        Ok((elapsed, own_cpu_seconds()? - cpu_before))
    })
    .await?;
    let stats = emitter.stats();
    ensure!(
        stats.emitted == warmup + n && stats.duplicates == 0,
        "not every event was emitted once: {stats:?}"
    );
    Ok(line)
}

/// Runs `timed` (which returns its time and this process's CPU seconds) between two readings of
/// every node's counters, after reading which master holds which partition: the run's JSON line.
async fn measure(
    cluster: &mut Cluster,
    scenario: &'static str,
    partitions: u32,
    n: u64,
    timed: impl AsyncFnOnce() -> anyhow::Result<(Duration, f64)>,
) -> anyhow::Result<serde_json::Value> {
    let layout = layout(cluster, partitions, n).await?;
    let before = cluster.counters().await?;
    let (elapsed, client_cpu_seconds) = timed().await?;
    let after = cluster.counters().await?;
    let run = Run {
        scenario,
        partitions,
        n,
        elapsed,
        client_cpu_seconds,
        before,
        after,
    };
    Ok(run.line(cluster, &layout))
}

/// Times a fresh consumer group at concurrency 50 (from the beginning) until its handler counted
/// the `n` events under `prefix`; returns that time and this process's CPU seconds from the
/// consumer's start to its shutdown (the last acknowledgements included).
async fn drain(
    url: &str,
    prefix: &str,
    partitions: u32,
    n: u64,
) -> anyhow::Result<(Duration, f64)> {
    let counted = Arc::new(AtomicU64::new(0));
    let handlers = {
        let counted = counted.clone();
        Handlers::new()
            .on(move |_event: ImageVariationCompletedEvent| {
                counted.fetch_add(1, Ordering::Relaxed);
                async { Ok::<(), HandlerError>(()) }
            })
            .knowing::<DomainEvent>()
    };
    let consumer = RedisConsumer::builder(config(url, prefix, partitions)?, GROUP, handlers)
        .concurrency(CONCURRENCY)
        .start_from(StartFrom::Beginning)
        .build()?;
    let cpu_before = own_cpu_seconds()?;
    let started = Instant::now();
    let handle = consumer.spawn();
    while counted.load(Ordering::Relaxed) < n {
        if handle.is_finished() {
            let result = handle.join().await;
            bail!("the consumer stopped early: {result:?}");
        }
        if started.elapsed() > WAIT {
            bail!(
                "the consumer handled {} of {n} events within {WAIT:?}",
                counted.load(Ordering::Relaxed)
            );
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = started.elapsed();
    let stats = handle.shutdown().await?;
    let client_cpu = own_cpu_seconds()? - cpu_before;
    ensure!(
        stats.handled == n
            && counted.load(Ordering::Relaxed) == n
            && stats.poison == 0
            && stats.failed == 0
            && stats.duplicates == 0,
        "the consumer did not handle exactly the {n} events: {stats:?}"
    );
    Ok((elapsed, client_cpu))
}

/// `cluster_consume`: `warmup` events filled and drained under another prefix, then `n` filled
/// (untimed, as `cluster_emit` sends them) and drained by a fresh group; every master flushed
/// first.
pub async fn consume(
    url: &str,
    partitions: u32,
    n: u64,
    warmup: u64,
) -> anyhow::Result<serde_json::Value> {
    let mut cluster = Cluster::discover(url).await?;
    cluster.flush().await?;
    if warmup > 0 {
        let emitter = Emitter::new(
            SOURCE,
            RedisTransport::new(config(url, WARM_PREFIX, partitions)?)?,
        );
        emit_concurrently(&emitter, WARM_BASE, warmup, warmup.div_ceil(TASKS)).await?;
        drain(url, WARM_PREFIX, partitions, warmup).await?;
    }
    let emitter = Emitter::new(
        SOURCE,
        RedisTransport::new(config(url, PREFIX, partitions)?)?,
    );
    emit_concurrently(&emitter, 0, n, BATCH).await?;
    measure(&mut cluster, "cluster_consume", partitions, n, async || {
        drain(url, PREFIX, partitions, n).await
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_nodes_and_info_are_read() {
        let text = "\
07c3 127.0.0.1:30004@40004,hostname slave e7d1 0 1426238317239 4 connected
67ed 127.0.0.1:30002@40002 master - 0 1426238316232 2 connected 5461-10922 [10923->-292f]
e7d1 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460 16383
";
        let nodes = parse_nodes(text).expect("parsed");
        assert_eq!(nodes.len(), 3);
        assert_eq!(nodes[0].port, 30001);
        assert!(nodes[0].master);
        assert_eq!(nodes[0].slots, vec![(0, 5460), (16383, 16383)]);
        assert_eq!(nodes[1].slots, vec![(5461, 10922)]);
        assert!(!nodes[2].master && nodes[2].slots.is_empty());

        let info = "# CPU\r\nused_cpu_sys:1.500000\r\nused_cpu_user:2.250000\r\n\
                    used_cpu_sys_children:9.0\r\n# Stats\r\ntotal_commands_processed:42\r\n";
        let counters = parse_counters(info).expect("parsed");
        assert_eq!(counters.cpu_seconds, 3.75);
        assert_eq!(counters.commands, 42);
        assert!(parse_counters("# CPU\r\n").is_err());
        assert!(own_cpu_seconds().expect("read") >= 0.0);
    }
}
