//! Allocations per event on the hot paths, counted by the global allocator over every thread of
//! the process (Tokio workers and the Redis connection tasks included). Payloads are built before
//! counting starts, so only the library's (and the Redis client's) allocations are counted.

use std::time::Duration;

use anyhow::ensure;
use domain_events::{
    BoxFuture, EmitBatch, Emitter, Envelope, MemoryBus, OutgoingEvent, PublishOutcome, RawEnvelope,
    Transport, TransportError,
};
use domain_events_catalog::{ImageVariationCompletedEvent, ImageVariationCompletedPayload};
use domain_events_redis::{RedisConfig, RedisConsumer, StartFrom};

use crate::alloc::{Counted, Counter};
use crate::payload::{WARM_BASE, payload};
use crate::scenarios::{SOURCE, fill_prefix, redis_emitter};

/// Accepts every event and drops it: the emitter's own cost, without a transport.
struct Discard;

impl Transport for Discard {
    fn name(&self) -> &'static str {
        "discard"
    }

    fn publish<'a>(
        &'a self,
        events: &'a [OutgoingEvent],
    ) -> BoxFuture<'a, Result<Vec<PublishOutcome>, TransportError>> {
        Box::pin(async move { Ok(vec![PublishOutcome::Published; events.len()]) })
    }
}

fn payloads(from: u64, n: u64) -> Vec<ImageVariationCompletedPayload> {
    (from..from + n).map(payload).collect()
}

fn line(path: &str, what: &str, n: u64, counted: Counted) -> serde_json::Value {
    let per = |x: u64| (x as f64 / n.max(1) as f64 * 10.0).round() / 10.0;
    serde_json::json!({
        "scenario": "allocs",
        "path": path,
        "what": what,
        "n": n,
        "allocs_per_event": per(counted.allocs),
        "bytes_per_event": per(counted.bytes).round(),
    })
}

async fn serial_counted(emitter: &Emitter, from: u64, n: u64) -> anyhow::Result<Counted> {
    let warm = payloads(WARM_BASE + from, 100);
    for p in warm {
        emitter.emit(p).await?;
    }
    let todo = payloads(from, n);
    let counter = Counter::start();
    for p in todo {
        let emitted = emitter.emit(p).await?;
        ensure!(emitted.published(), "not published");
    }
    Ok(counter.stop())
}

/// One JSON line per hot path.
pub async fn run(url: &str, n: u64) -> anyhow::Result<Vec<serde_json::Value>> {
    let mut lines = Vec::new();

    let emitter = Emitter::new(SOURCE, Discard);
    let counted = serial_counted(&emitter, 0, n).await?;
    lines.push(line(
        "emit_library",
        "Emitter::emit into a transport that drops the event: validate, envelope, JSON",
        n,
        counted,
    ));

    let emitter = redis_emitter(url, "allocs-serial", true)?;
    let counted = serial_counted(&emitter, 0, n).await?;
    lines.push(line(
        "emit_serial_redis",
        "Emitter::emit through RedisTransport (claim + XADD script), Redis client included",
        n,
        counted,
    ));

    let emitter = redis_emitter(url, "allocs-batch", true)?;
    let batch_payloads = payloads(0, n);
    let counter = Counter::start();
    let mut batch = EmitBatch::new();
    for p in batch_payloads {
        batch.push(p)?;
        if batch.len() == 1_000 {
            let full = std::mem::take(&mut batch);
            emitter.emit_batch(full).await?;
        }
    }
    emitter.emit_batch(batch).await?;
    lines.push(line(
        "emit_batch_redis",
        "EmitBatch of 1,000 through RedisTransport (claim + XADD script per event)",
        n,
        counter.stop(),
    ));

    let jsons: Vec<Vec<u8>> = payloads(0, n)
        .into_iter()
        .map(|p| Envelope::new(SOURCE, p).map(|e| serde_json::to_vec(&e).unwrap_or_default()))
        .collect::<Result<_, _>>()?;
    let counter = Counter::start();
    for json in &jsons {
        let raw = RawEnvelope::from_slice(json)?;
        let event = raw.decode::<ImageVariationCompletedPayload>()?;
        std::hint::black_box(event);
    }
    lines.push(line(
        "decode",
        "RawEnvelope::from_slice + decode::<ImageVariationCompletedPayload>",
        n,
        counter.stop(),
    ));

    fill_prefix(url, "allocs-consume", n).await?;
    let config = RedisConfig::new(url)?.key_prefix("allocs-consume");
    let handlers =
        domain_events::Handlers::new().on(|_event: ImageVariationCompletedEvent| async {
            Ok::<(), domain_events::HandlerError>(())
        });
    let consumer = RedisConsumer::builder(config, "allocs", handlers)
        .concurrency(50)
        .start_from(StartFrom::Beginning)
        .build()?;
    let counter = Counter::start();
    let handle = consumer.spawn();
    while handle.stats().handled < n {
        ensure!(!handle.is_finished(), "the consumer stopped early");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let counted = counter.stop();
    handle.shutdown().await?;
    lines.push(line(
        "consume_c50_redis",
        "RedisConsumer at concurrency 50: read, decode, no-op handler, done record + ack",
        n,
        counted,
    ));

    let bus = MemoryBus::new();
    let mut subscription = bus.subscribe_to::<ImageVariationCompletedPayload>();
    let emitter = Emitter::new(SOURCE, bus.clone());
    let todo = payloads(0, n);
    let counter = Counter::start();
    let receiver = tokio::spawn(async move {
        for _ in 0..n {
            let Some(event) = subscription.recv().await else {
                anyhow::bail!("bus closed early");
            };
            std::hint::black_box(event?);
        }
        anyhow::Ok(())
    });
    for p in todo {
        emitter.emit(p).await?;
    }
    receiver.await??;
    lines.push(line(
        "memory_bus",
        "MemoryBus: emit, delivered to one typed subscriber",
        n,
        counter.stop(),
    ));
    Ok(lines)
}
