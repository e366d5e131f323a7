//! `domain-events-bench`: our side of every scenario of `cargo xtask bench` (see
//! `docs/benchmarks.md`), one subcommand per scenario, each printing one JSON line
//! `{"scenario", "n", "seconds", "per_sec"}` (plus `peak_rss_bytes` for the memory scenario).
//!
//! The peers run elsewhere: BullMQ in `bench/peer/peer.mjs`, `redis-benchmark` from the xtask,
//! and the bare Tokio channel here (`tokio_channel`). Every scenario warms up untimed first
//! (connections, the Lua script cache), as the peer harness does.
//!
//! The outbox scenarios (`outbox_commit`, `outbox_relay`, `outbox_emit_batch`, `outbox_latency`,
//! in `outbox.rs`) run against a durable PostgreSQL that `postgres_server` starts.
//!
//! The cluster scenarios (`cluster_emit`, `cluster_consume`, in `cluster.rs`) run on the
//! three-master Redis Cluster that `redis_cluster` starts.
//!
//! Helpers for the xtask: `redis_server` (a private `redis-server`, the test harness's),
//! `postgres_server` (a private PostgreSQL with default durability, the test harness's),
//! `redis_cluster` (a private cluster of three masters and three replicas, the test harness's), `fill`
//! (pre-fills a stream), `sample_envelope` (the envelope `redis-benchmark` appends) and `allocs`
//! (allocations per event on the hot paths, counted by the global allocator of this binary).
//! `memory_consume` (emit + `MemoryConsumer`, with `--prometheus` under the `metrics` feature)
//! measures what the metrics cost (docs/benchmarks.md, "Cost of the metrics").

mod alloc;
mod allocs;
mod cluster;
mod outbox;
mod payload;
mod scenarios;

use std::io::{BufRead as _, Write as _};
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

#[global_allocator]
static GLOBAL: alloc::Counting = alloc::Counting;

/// Benchmarks of domain-events; run them all with `cargo xtask bench`
#[derive(Debug, Parser)]
#[command(name = "domain-events-bench")]
struct Cli {
    /// Run on a current-thread Tokio runtime instead of the default multi-thread one
    #[arg(long, global = true)]
    current_thread: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
#[command(rename_all = "snake_case")]
enum Command {
    /// Typed emit awaited one at a time, Redis Streams with the idempotency claim
    EmitSerial(RedisArgs),
    /// Typed emits, 64 in flight at a time, Redis Streams with the idempotency claim
    EmitConcurrent64(RedisArgs),
    /// Batch emit of 1,000 events, Redis Streams with the idempotency claim
    EmitBatch1000(RedisArgs),
    /// Every emit a duplicate of one of 100 keys
    EmitDuplicates(RedisArgs),
    /// Batch emit of 1,000 without the idempotency claim (plain pipelined XADD), payloads built
    /// before the clock starts
    EmitBatchUnclaimed(RedisArgs),
    /// Consumer runtime at concurrency 1: no-op typed handler, done record and ack
    ConsumeC1(RedisArgs),
    /// Consumer runtime at concurrency 50: no-op typed handler, done record and ack
    ConsumeC50(RedisArgs),
    /// Peak RSS of a consumer (concurrency 50) working through a backlog of N events
    ConsumeMemory(RedisArgs),
    /// Typed emit awaited one at a time through the BullMQ transport
    BullmqEmitSerial(RedisArgs),
    /// In-memory bus: emit, delivered to one typed subscriber
    MemoryBus(CountArgs),
    /// Peer of `memory_bus`: the same envelopes through a bare Tokio channel
    TokioChannel(CountArgs),
    /// In-memory bus: emit, handled by a `MemoryConsumer` (the delivery pipeline), no-op handler
    MemoryConsume(MetricsArgs),
    /// A transaction inserting a business row, with and without its outbox event (alternating):
    /// median and p99 of each, and their ratio
    OutboxCommit(PostgresArgs),
    /// The outbox relay publishing a committed backlog of N rows to Redis Streams
    OutboxRelay(OutboxArgs),
    /// Peer of `outbox_relay`: `Emitter::emit_batch` of the same events in batches of the relay's
    /// size, straight to Redis
    OutboxEmitBatch(RedisArgs),
    /// Commit → stream entry latency of the outbox under writers paced at a steady rate
    OutboxLatency(LatencyArgs),
    /// Redis Cluster: `emit_batch` of 500 from 50 tasks at once, the category in `--partitions`
    /// streams; events/s, the CPU and commands of every node
    ClusterEmit(ClusterArgs),
    /// Redis Cluster: a consumer group at concurrency 50 draining a backlog, the handler only
    /// counting, the category in `--partitions` streams; events/s, the CPU and commands of every node
    ClusterConsume(ClusterArgs),
    /// Allocations per event on the hot paths (emit, decode, consume, memory bus)
    Allocs(RedisArgs),
    /// Appends N events to the stream (untimed helper of `consume_memory`)
    Fill(FillArgs),
    /// Starts a private redis-server, prints its URL, and stops it when stdin closes
    RedisServer,
    /// Starts a private PostgreSQL with default durability (fsync, synchronous_commit on), prints
    /// its URL, and stops it when stdin closes
    PostgresServer,
    /// Starts a private Redis Cluster (three masters, three replicas), prints its
    /// `redis+cluster://` URL, and stops it when stdin closes
    RedisCluster,
    /// Prints the envelope JSON of the benchmark event (what `redis-benchmark` appends)
    SampleEnvelope,
}

/// Where Redis is and how many events to time.
#[derive(Debug, Clone, Args)]
struct RedisArgs {
    /// The Redis URL, e.g. redis://127.0.0.1:6379 (use a scratch server: keys are written)
    #[arg(long)]
    url: String,
    /// Events to time
    #[arg(long, default_value_t = 20_000)]
    n: u64,
    /// Events of the untimed warm-up
    #[arg(long, default_value_t = 500)]
    warmup: u64,
}

/// Where PostgreSQL is and how many transactions to time.
#[derive(Debug, Clone, Args)]
struct PostgresArgs {
    /// The PostgreSQL URL (use a scratch database: tables are made and emptied)
    #[arg(long)]
    database_url: String,
    /// Transactions of each kind to time
    #[arg(long, default_value_t = 5_000)]
    n: u64,
    /// Transactions of each kind of the untimed warm-up
    #[arg(long, default_value_t = 500)]
    warmup: u64,
}

/// Where Redis and PostgreSQL are and how many events to time.
#[derive(Debug, Clone, Args)]
struct OutboxArgs {
    #[command(flatten)]
    redis: RedisArgs,
    /// The PostgreSQL URL (use a scratch database: tables are made and emptied)
    #[arg(long)]
    database_url: String,
}

/// The paced writers of `outbox_latency`.
#[derive(Debug, Clone, Args)]
struct LatencyArgs {
    /// The Redis URL (use a scratch server: keys are written)
    #[arg(long)]
    url: String,
    /// The PostgreSQL URL (use a scratch database: tables are made and emptied)
    #[arg(long)]
    database_url: String,
    /// Transactions (each one event) per second
    #[arg(long, default_value_t = 1_000)]
    rate: u64,
    /// Seconds timed
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Seconds of the untimed warm-up at the same rate
    #[arg(long, default_value_t = 1.0)]
    warmup_seconds: f64,
}

/// Where the cluster is, how the category is split and how many events to time.
#[derive(Debug, Clone, Args)]
struct ClusterArgs {
    /// The cluster URL, redis+cluster://host:port,... (use a scratch cluster: every master is
    /// flushed first)
    #[arg(long)]
    url: String,
    /// Streams of the category `image`
    #[arg(long, default_value_t = 1)]
    partitions: u32,
    /// Events to time
    #[arg(long, default_value_t = 50_000)]
    n: u64,
    /// Events of the untimed warm-up
    #[arg(long, default_value_t = 500)]
    warmup: u64,
}

/// How many events to time.
#[derive(Debug, Clone, Args)]
struct CountArgs {
    /// Events to time
    #[arg(long, default_value_t = 200_000)]
    n: u64,
    /// Events of the untimed warm-up
    #[arg(long, default_value_t = 500)]
    warmup: u64,
}

/// How many events to time, and whether metrics are recorded.
#[derive(Debug, Clone, Args)]
struct MetricsArgs {
    #[command(flatten)]
    count: CountArgs,
    /// Install the Prometheus recorder first (needs the `metrics` feature of this binary)
    #[arg(long)]
    prometheus: bool,
}

/// What `fill` appends.
#[derive(Debug, Clone, Args)]
struct FillArgs {
    /// The Redis URL
    #[arg(long)]
    url: String,
    /// Events to append
    #[arg(long)]
    n: u64,
    /// The key prefix of the stream
    #[arg(long, default_value = domain_events_redis::DEFAULT_KEY_PREFIX)]
    prefix: String,
}

/// One measured run, printed as a JSON line.
#[derive(Debug, Clone)]
pub struct Measured {
    pub scenario: &'static str,
    pub n: u64,
    pub elapsed: Duration,
    pub peak_rss_bytes: Option<u64>,
}

impl Measured {
    pub fn new(scenario: &'static str, n: u64, elapsed: Duration) -> Self {
        Self {
            scenario,
            n,
            elapsed,
            peak_rss_bytes: None,
        }
    }

    fn to_json(&self) -> serde_json::Value {
        let seconds = self.elapsed.as_secs_f64();
        let mut line = serde_json::json!({
            "scenario": self.scenario,
            "n": self.n,
            "seconds": (seconds * 10_000.0).round() / 10_000.0,
            "per_sec": (self.n as f64 / seconds.max(1e-9)).round() as u64,
        });
        if let Some(rss) = self.peak_rss_bytes {
            line["peak_rss_bytes"] = rss.into();
        }
        line
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::RedisServer => {
            let server = domain_events_tests::redis_server::RedisServer::start();
            return serve(&server.url());
        }
        Command::PostgresServer => {
            let server = domain_events_tests::postgres_server::PostgresServer::start_durable();
            return serve(&server.url());
        }
        Command::RedisCluster => {
            let cluster = domain_events_tests::redis_cluster::RedisCluster::start();
            return serve(&cluster.url());
        }
        Command::SampleEnvelope => {
            println!("{}", scenarios::sample_envelope()?);
            return Ok(());
        }
        _ => {}
    }
    let mut builder = if cli.current_thread {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = builder
        .enable_all()
        .build()
        .context("cannot start the Tokio runtime")?;
    // Every scenario runs in a spawned task, as the code of a service (a request handler, a
    // consumer) does; `block_on`'s own thread is not a worker of the runtime, so awaiting there
    // would add two thread hand-offs to every round trip.
    runtime.block_on(async move {
        tokio::spawn(run(cli.command))
            .await
            .context("the benchmark task failed")?
    })
}

/// Runs one scenario and prints its measurement.
async fn run(command: Command) -> anyhow::Result<()> {
    {
        let measured = match command {
            Command::EmitSerial(a) => scenarios::emit_serial(&a.url, a.n, a.warmup).await?,
            Command::EmitConcurrent64(a) => {
                scenarios::emit_concurrent64(&a.url, a.n, a.warmup).await?
            }
            Command::EmitBatch1000(a) => scenarios::emit_batch1000(&a.url, a.n, a.warmup).await?,
            Command::EmitDuplicates(a) => scenarios::emit_duplicates(&a.url, a.n, a.warmup).await?,
            Command::EmitBatchUnclaimed(a) => {
                scenarios::emit_batch_unclaimed(&a.url, a.n, a.warmup).await?
            }
            Command::ConsumeC1(a) => scenarios::consume(&a.url, a.n, a.warmup, 1).await?,
            Command::ConsumeC50(a) => scenarios::consume(&a.url, a.n, a.warmup, 50).await?,
            Command::ConsumeMemory(a) => scenarios::consume_memory(&a.url, a.n).await?,
            Command::BullmqEmitSerial(a) => {
                scenarios::bullmq_emit_serial(&a.url, a.n, a.warmup).await?
            }
            Command::MemoryBus(a) => scenarios::memory_bus(a.n, a.warmup).await?,
            Command::TokioChannel(a) => scenarios::tokio_channel(a.n, a.warmup).await?,
            Command::MemoryConsume(a) => {
                if a.prometheus {
                    install_prometheus()?;
                }
                scenarios::memory_consume(a.count.n, a.count.warmup).await?
            }
            Command::OutboxCommit(a) => {
                println!("{}", outbox::commit(&a.database_url, a.n, a.warmup).await?);
                return Ok(());
            }
            Command::OutboxRelay(a) => {
                let (n, elapsed) =
                    outbox::relay_backlog(&a.redis.url, &a.database_url, a.redis.n, a.redis.warmup)
                        .await?;
                Measured::new("outbox_relay", n, elapsed)
            }
            Command::OutboxEmitBatch(a) => {
                let (n, elapsed) = outbox::emit_batch(&a.url, a.n, a.warmup).await?;
                Measured::new("outbox_emit_batch", n, elapsed)
            }
            Command::OutboxLatency(a) => {
                println!(
                    "{}",
                    outbox::latency(&a.url, &a.database_url, a.rate, a.seconds, a.warmup_seconds)
                        .await?
                );
                return Ok(());
            }
            Command::ClusterEmit(a) => {
                println!(
                    "{}",
                    cluster::emit(&a.url, a.partitions, a.n, a.warmup).await?
                );
                return Ok(());
            }
            Command::ClusterConsume(a) => {
                println!(
                    "{}",
                    cluster::consume(&a.url, a.partitions, a.n, a.warmup).await?
                );
                return Ok(());
            }
            Command::Allocs(a) => {
                for line in allocs::run(&a.url, a.n).await? {
                    println!("{line}");
                }
                return Ok(());
            }
            Command::Fill(a) => {
                scenarios::fill_prefix(&a.url, &a.prefix, a.n).await?;
                return Ok(());
            }
            Command::RedisServer
            | Command::PostgresServer
            | Command::RedisCluster
            | Command::SampleEnvelope => {
                unreachable!("handled above")
            }
        };
        println!("{}", measured.to_json());
        Ok(())
    }
}

/// Installs the Prometheus recorder (no listener): the metrics are recorded, never scraped.
#[cfg(feature = "metrics")]
fn install_prometheus() -> anyhow::Result<()> {
    domain_events_prometheus::install_recorder()?;
    Ok(())
}

#[cfg(not(feature = "metrics"))]
fn install_prometheus() -> anyhow::Result<()> {
    anyhow::bail!(
        "built without the `metrics` feature: cargo build -p domain-events-bench --features metrics"
    )
}

/// Prints the URL of a server of the test harness and keeps it (the caller drops it after) until
/// stdin is closed or says `stop`.
fn serve(url: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{url}")?;
    out.flush()?;
    drop(out);
    for line in std::io::stdin().lock().lines() {
        if line?.trim() == "stop" {
            break;
        }
    }
    Ok(())
}
