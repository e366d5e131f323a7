//! Our side of every scenario. Each runs an untimed warm-up on events that share no key with the
//! timed ones, then times `n` events and checks what happened to them (all published, all
//! duplicates, all handled), so a fast wrong answer cannot pass for a result.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use domain_events::{
    DEFAULT_CAPACITY, EmitBatch, Emitter, Envelope, HandlerError, Handlers, MemoryBus,
};
use domain_events_bullmq::{BullmqConfig, BullmqTransport};
use domain_events_catalog::{
    DomainEvent, ImageVariationCompletedEvent, ImageVariationCompletedPayload,
};
use domain_events_redis::{RedisConfig, RedisConsumer, RedisTransport, StartFrom};
use futures_util::future::join_all;

use crate::Measured;
use crate::payload::{WARM_BASE, payload};

/// The `source` of every benchmark envelope.
pub const SOURCE: &str = "image-generator";
/// Events per batch in the batch scenarios (and when pre-filling streams).
pub const BATCH: u64 = 1_000;
/// Emits in flight in `emit_concurrent64`.
pub const IN_FLIGHT: u64 = 64;
/// Distinct keys of `emit_duplicates`.
pub const DUPLICATE_KEYS: u64 = 100;
/// The consumer group of the consume scenarios.
const GROUP: &str = "bench";
/// The key prefix of warm-up streams of the consume scenarios.
const WARM_PREFIX: &str = "bench-warm";

/// The envelope JSON of event 0, as the emitter writes it.
pub fn sample_envelope() -> anyhow::Result<String> {
    let envelope = Envelope::new(SOURCE, payload(0))?;
    Ok(serde_json::to_string(&envelope)?)
}

/// An emitter on Redis Streams under `prefix`, with or without the idempotency claim.
pub fn redis_emitter(url: &str, prefix: &str, claims: bool) -> anyhow::Result<Emitter> {
    let config = RedisConfig::new(url)?
        .key_prefix(prefix)
        .idempotency_claims(claims);
    Ok(Emitter::new(SOURCE, RedisTransport::new(config)?))
}

/// Emits events `from..from + n`, awaiting each.
pub async fn serial(emitter: &Emitter, from: u64, n: u64) -> anyhow::Result<Duration> {
    let started = Instant::now();
    for i in from..from + n {
        let emitted = emitter.emit(payload(i)).await?;
        ensure!(emitted.published(), "event {i} was not published");
    }
    Ok(started.elapsed())
}

/// Emits events `from..from + n`, 64 at a time, awaiting each window.
async fn concurrent(emitter: &Emitter, from: u64, n: u64) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut next = from;
    while next < from + n {
        let end = (next + IN_FLIGHT).min(from + n);
        let results = join_all((next..end).map(|i| emitter.emit(payload(i)))).await;
        for result in results {
            ensure!(result?.published(), "an event was not published");
        }
        next = end;
    }
    Ok(started.elapsed())
}

/// What the clock of [`batches_of`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timed {
    /// Building the payloads too, as BullMQ's side builds its job data in its loop.
    WithPayloads,
    /// The library only: each batch's payloads are built before its clock starts, as
    /// `redis-benchmark` sends one entry built once.
    LibraryOnly,
}

/// Emits events `from..from + n` in batches of 1,000.
async fn batches(emitter: &Emitter, from: u64, n: u64, timed: Timed) -> anyhow::Result<Duration> {
    batches_of(emitter, from, n, BATCH, timed).await
}

/// Emits events `from..from + n` in batches of `size`.
pub async fn batches_of(
    emitter: &Emitter,
    from: u64,
    n: u64,
    size: u64,
    timed: Timed,
) -> anyhow::Result<Duration> {
    let mut elapsed = Duration::ZERO;
    let mut next = from;
    while next < from + n {
        let end = (next + size.max(1)).min(from + n);
        let mut started = Instant::now();
        let payloads: Vec<_> = (next..end).map(payload).collect();
        if timed == Timed::LibraryOnly {
            started = Instant::now();
        }
        let mut batch = EmitBatch::new();
        for payload in payloads {
            batch.push(payload)?;
        }
        let emitted = emitter.emit_batch(batch).await?;
        elapsed += started.elapsed();
        ensure!(
            emitted.iter().all(|e| e.published()),
            "an event of a batch was not published"
        );
        next = end;
    }
    Ok(elapsed)
}

pub async fn emit_serial(url: &str, n: u64, warmup: u64) -> anyhow::Result<Measured> {
    let emitter = redis_emitter(url, domain_events_redis::DEFAULT_KEY_PREFIX, true)?;
    serial(&emitter, WARM_BASE, warmup).await?;
    let elapsed = serial(&emitter, 0, n).await?;
    Ok(Measured::new("emit_serial", n, elapsed))
}

pub async fn emit_concurrent64(url: &str, n: u64, warmup: u64) -> anyhow::Result<Measured> {
    let emitter = redis_emitter(url, domain_events_redis::DEFAULT_KEY_PREFIX, true)?;
    concurrent(&emitter, WARM_BASE, warmup).await?;
    let elapsed = concurrent(&emitter, 0, n).await?;
    Ok(Measured::new("emit_concurrent64", n, elapsed))
}

pub async fn emit_batch1000(url: &str, n: u64, warmup: u64) -> anyhow::Result<Measured> {
    let emitter = redis_emitter(url, domain_events_redis::DEFAULT_KEY_PREFIX, true)?;
    batches(&emitter, WARM_BASE, warmup, Timed::WithPayloads).await?;
    let elapsed = batches(&emitter, 0, n, Timed::WithPayloads).await?;
    Ok(Measured::new("emit_batch1000", n, elapsed))
}

pub async fn emit_batch_unclaimed(url: &str, n: u64, warmup: u64) -> anyhow::Result<Measured> {
    let emitter = redis_emitter(url, domain_events_redis::DEFAULT_KEY_PREFIX, false)?;
    batches(&emitter, WARM_BASE, warmup, Timed::LibraryOnly).await?;
    let elapsed = batches(&emitter, 0, n, Timed::LibraryOnly).await?;
    Ok(Measured::new("emit_batch_unclaimed", n, elapsed))
}

/// Claims the 100 keys (untimed), then emits `n` events that each repeat one of them.
pub async fn emit_duplicates(url: &str, n: u64, warmup: u64) -> anyhow::Result<Measured> {
    let emitter = redis_emitter(url, domain_events_redis::DEFAULT_KEY_PREFIX, true)?;
    batches(&emitter, 0, DUPLICATE_KEYS, Timed::WithPayloads).await?;
    let run = |count: u64| {
        let emitter = emitter.clone();
        async move {
            let started = Instant::now();
            for i in 0..count {
                let emitted = emitter.emit(payload(i % DUPLICATE_KEYS)).await?;
                ensure!(emitted.duplicate, "event {i} was not a duplicate");
            }
            anyhow::Ok(started.elapsed())
        }
    };
    run(warmup).await?;
    let elapsed = run(n).await?;
    let stats = emitter.stats();
    ensure!(
        stats.emitted == DUPLICATE_KEYS && stats.duplicates == warmup + n,
        "dedup did not hold: {stats:?}"
    );
    Ok(Measured::new("emit_duplicates", n, elapsed))
}

pub async fn bullmq_emit_serial(url: &str, n: u64, warmup: u64) -> anyhow::Result<Measured> {
    let transport = BullmqTransport::new(BullmqConfig::new(url)?)?;
    transport.connect().await?;
    let emitter = Emitter::new(SOURCE, transport);
    serial(&emitter, WARM_BASE, warmup).await?;
    let elapsed = serial(&emitter, 0, n).await?;
    Ok(Measured::new("bullmq_emit_serial", n, elapsed))
}

/// Appends events `0..n` to the stream under `prefix`, in batches, with claims (untimed).
pub async fn fill_prefix(url: &str, prefix: &str, n: u64) -> anyhow::Result<()> {
    let emitter = redis_emitter(url, prefix, true)?;
    batches(&emitter, 0, n, Timed::WithPayloads).await?;
    Ok(())
}

/// No-op handlers for the benchmark event; the rest of the catalog is known (so poison is poison).
fn noop_handlers() -> Handlers {
    Handlers::new()
        .on(|_event: ImageVariationCompletedEvent| async { Ok::<(), HandlerError>(()) })
        .knowing::<DomainEvent>()
}

/// Times a fresh consumer group (from the beginning) until it handled the `n` events of the
/// stream under `prefix`: typed decode, no-op handler, done record and acknowledgement.
async fn drain(url: &str, prefix: &str, n: u64, concurrency: usize) -> anyhow::Result<Duration> {
    let config = RedisConfig::new(url)?.key_prefix(prefix);
    let consumer = RedisConsumer::builder(config, GROUP, noop_handlers())
        .concurrency(concurrency)
        .start_from(StartFrom::Beginning)
        .build()?;
    let started = Instant::now();
    let handle = consumer.spawn();
    while handle.stats().handled < n {
        if handle.is_finished() {
            let result = handle.join().await;
            bail!("the consumer stopped early: {result:?}");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = started.elapsed();
    let stats = handle.shutdown().await?;
    ensure!(
        stats.handled == n && stats.poison == 0 && stats.failed == 0 && stats.duplicates == 0,
        "the consumer did not handle exactly the {n} events: {stats:?}"
    );
    Ok(elapsed)
}

pub async fn consume(
    url: &str,
    n: u64,
    warmup: u64,
    concurrency: usize,
) -> anyhow::Result<Measured> {
    let prefix = domain_events_redis::DEFAULT_KEY_PREFIX;
    if warmup > 0 {
        fill_prefix(url, WARM_PREFIX, warmup).await?;
        drain(url, WARM_PREFIX, warmup, concurrency).await?;
    }
    fill_prefix(url, prefix, n).await?;
    let elapsed = drain(url, prefix, n, concurrency).await?;
    let scenario = if concurrency == 1 {
        "consume_c1"
    } else {
        "consume_c50"
    };
    Ok(Measured::new(scenario, n, elapsed))
}

/// Peak RSS of this process while a consumer at concurrency 50 drains a backlog of `n` events,
/// which another process (`fill`) appended first, so the producer's memory is not counted.
pub async fn consume_memory(url: &str, n: u64) -> anyhow::Result<Measured> {
    let prefix = domain_events_redis::DEFAULT_KEY_PREFIX;
    let exe = std::env::current_exe().context("cannot find this program")?;
    let status = tokio::process::Command::new(exe)
        .args([
            "fill",
            "--url",
            url,
            "--prefix",
            prefix,
            "--n",
            &n.to_string(),
        ])
        .status()
        .await
        .context("cannot run the fill helper")?;
    ensure!(status.success(), "the fill helper failed: {status}");
    let elapsed = drain(url, prefix, n, 50).await?;
    let mut measured = Measured::new("consume_memory", n, elapsed);
    measured.peak_rss_bytes = Some(peak_rss_bytes()?);
    Ok(measured)
}

/// `VmHWM` of `/proc/self/status`: the peak resident set size, in bytes.
pub fn peak_rss_bytes() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")
        .context("cannot read /proc/self/status (Linux only)")?;
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .context("no VmHWM in /proc/self/status")?;
    let kib: u64 = line
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .context("VmHWM is not a number")?;
    Ok(kib * 1024)
}

/// Emits `from..from + n` into a memory bus and counts them at one typed subscriber.
async fn bus_round(from: u64, n: u64) -> anyhow::Result<Duration> {
    let bus = MemoryBus::new();
    let mut subscription = bus.subscribe_to::<ImageVariationCompletedPayload>();
    let emitter = Emitter::new(SOURCE, bus.clone());
    let started = Instant::now();
    let receiver = tokio::spawn(async move {
        for _ in 0..n {
            match subscription.recv().await {
                Some(Ok(event)) => drop(event),
                Some(Err(error)) => bail!("undecodable event: {error}"),
                None => bail!("the bus closed early"),
            }
        }
        anyhow::Ok(())
    });
    for i in from..from + n {
        let emitted = emitter.emit(payload(i)).await?;
        ensure!(emitted.published(), "event {i} was not published");
    }
    receiver.await??;
    Ok(started.elapsed())
}

pub async fn memory_bus(n: u64, warmup: u64) -> anyhow::Result<Measured> {
    bus_round(WARM_BASE, warmup).await?;
    let elapsed = bus_round(0, n).await?;
    Ok(Measured::new("memory_bus", n, elapsed))
}

/// Emits `from..from + n` on a new bus to a `MemoryConsumer` (the delivery pipeline: done
/// check, dispatch to a no-op typed handler, done record), until every event is handled.
async fn consume_round(from: u64, n: u64) -> anyhow::Result<Duration> {
    let bus = MemoryBus::new();
    let handlers = Handlers::new()
        .on(|_event: ImageVariationCompletedEvent| async { Ok::<(), HandlerError>(()) });
    let consumer = bus.consumer(GROUP, handlers).build().spawn();
    let emitter = Emitter::new(SOURCE, bus.clone());
    let started = Instant::now();
    for i in from..from + n {
        let emitted = emitter.emit(payload(i)).await?;
        ensure!(emitted.published(), "event {i} was not published");
    }
    // The consumer drains the bus, then stops.
    bus.close();
    let stats = consumer.join().await?;
    let elapsed = started.elapsed();
    ensure!(
        stats.handled == n && stats.received == n,
        "not every event was handled: {stats:?}"
    );
    Ok(elapsed)
}

pub async fn memory_consume(n: u64, warmup: u64) -> anyhow::Result<Measured> {
    consume_round(WARM_BASE, warmup).await?;
    let elapsed = consume_round(0, n).await?;
    Ok(Measured::new("memory_consume", n, elapsed))
}

/// The same envelopes (`Envelope::new`, as the emitter builds them) through a bounded Tokio
/// channel of the bus's default capacity to one receiver.
async fn channel_round(from: u64, n: u64) -> anyhow::Result<Duration> {
    let (tx, mut rx) =
        tokio::sync::mpsc::channel::<Envelope<ImageVariationCompletedPayload>>(DEFAULT_CAPACITY);
    let started = Instant::now();
    let receiver = tokio::spawn(async move {
        for _ in 0..n {
            let Some(event) = rx.recv().await else {
                bail!("the channel closed early");
            };
            drop(event);
        }
        anyhow::Ok(())
    });
    for i in from..from + n {
        let envelope = Envelope::new(SOURCE, payload(i))?;
        tx.send(envelope)
            .await
            .map_err(|_| anyhow::anyhow!("the receiver is gone"))?;
    }
    receiver.await??;
    Ok(started.elapsed())
}

pub async fn tokio_channel(n: u64, warmup: u64) -> anyhow::Result<Measured> {
    channel_round(WARM_BASE, warmup).await?;
    let elapsed = channel_round(0, n).await?;
    Ok(Measured::new("tokio_channel", n, elapsed))
}
