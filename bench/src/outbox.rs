//! The outbox scenarios (docs/benchmarks.md, "The outbox"), against a PostgreSQL with its default
//! durability (`fsync` and `synchronous_commit` on) and the private Redis of the run:
//!
//! - `outbox_commit`: a transaction inserting a business row, with and without its outbox event,
//!   alternating one of each, so drift on a shared machine hits both alike;
//! - `outbox_relay`: a backlog of committed rows relayed to Redis Streams, timed from the commit
//!   of the backlog to the last row published (its peer, `outbox_emit_batch`, sends the same
//!   events with `Emitter::emit_batch` in batches of the relay's size);
//! - `outbox_latency`: commit → entry read from the stream (`XREAD BLOCK`), under writers paced
//!   at a steady rate, the relay woken by `LISTEN/NOTIFY`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use domain_events::{EmitBatch, EventPayload as _, RawEnvelope, Uuid};
use domain_events_catalog::ImageVariationCompletedPayload;
use domain_events_outbox::relay::DEFAULT_BATCH_SIZE;
use domain_events_outbox::{Outbox, OutboxTable, Relay, RelayHandle, migrate};
use domain_events_redis::{DEFAULT_KEY_PREFIX, Keys, RedisConfig, RedisTransport};
use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::payload::{WARM_BASE, payload};
use crate::scenarios::{SOURCE, Timed, batches_of, redis_emitter};

/// The business table of the commit and latency scenarios.
const BUSINESS_TABLE: &str = "bench_variations";
/// Rows per transaction when filling the relay's backlog.
const FILL_BATCH: u64 = 1_000;
/// How long to wait for the relay or the stream before giving up (a bound against hanging).
const WAIT: Duration = Duration::from_secs(120);

/// A pool on `url`, the outbox table migrated and emptied, the business table made and emptied.
async fn database(url: &str, connections: u32) -> anyhow::Result<PgPool> {
    let pool = PgPoolOptions::new()
        .max_connections(connections)
        .connect(url)
        .await
        .context("cannot connect to PostgreSQL")?;
    let table = OutboxTable::default();
    migrate(&pool, &table).await?;
    let create = format!(
        "CREATE TABLE IF NOT EXISTS {BUSINESS_TABLE} ( \
             id bigint PRIMARY KEY, variation_id text NOT NULL, status text NOT NULL, \
             updated_at timestamptz NOT NULL DEFAULT now())"
    );
    sqlx::query(&create).execute(&pool).await?;
    let truncate = format!("TRUNCATE {BUSINESS_TABLE}, public.domain_events_outbox");
    sqlx::query(&truncate).execute(&pool).await?;
    Ok(pool)
}

/// What a business transaction writes besides its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Nothing: the transaction the outbox is compared with.
    Plain,
    /// The row's outbox event.
    Event,
    /// An empty statement (`SELECT 1`): one more round trip and nothing else, the least any
    /// second statement costs (the bound of [`Shape::Event`]).
    RoundTrip,
}

/// One business transaction: the row of variation `i`, and what `shape` adds. The payload is
/// built before the clock starts (the service has its data at hand); the envelope, validation and
/// insert of the event are timed. Returns the time from `BEGIN` to the end of `COMMIT`, and the
/// event id written.
async fn business_transaction(
    pool: &PgPool,
    outbox: &Outbox,
    shape: Shape,
    i: u64,
) -> anyhow::Result<(Duration, Option<Uuid>)> {
    let event = (shape == Shape::Event).then(|| payload(i));
    let variation_id = format!("var_{i}");
    let insert = format!(
        "INSERT INTO {BUSINESS_TABLE} (id, variation_id, status) VALUES ($1, $2, 'completed')"
    );
    let id = i64::try_from(i)?;
    let started = Instant::now();
    let mut tx = pool.begin().await?;
    sqlx::query(&insert)
        .bind(id)
        .bind(variation_id)
        .execute(&mut *tx)
        .await?;
    let mut written = None;
    if let Some(event) = event {
        let conn: &mut sqlx::PgConnection = &mut tx;
        written = Some(outbox.emit(conn, event).await?.event_id);
    }
    if shape == Shape::RoundTrip {
        sqlx::query("SELECT 1").execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok((started.elapsed(), written))
}

/// The `q` quantile (0..=1) of `sorted`, nearest rank.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn micros(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e7).round() / 10.0
}

/// `outbox_commit`: `n` transactions of each shape, in turns (the order rotating), after
/// `warmup` of each.
pub async fn commit(database_url: &str, n: u64, warmup: u64) -> anyhow::Result<serde_json::Value> {
    const SHAPES: [Shape; 3] = [Shape::Plain, Shape::Event, Shape::RoundTrip];
    let pool = database(database_url, 1).await?;
    let outbox = Outbox::new(SOURCE);
    let mut times: [Vec<Duration>; 3] = Default::default();
    let started = Instant::now();
    for round in 0..warmup + n {
        // Warm-up ids far above the timed ones.
        let base = if round < warmup { WARM_BASE } else { 0 };
        for k in 0..3 {
            let index = (k + round as usize) % 3;
            let i = base + 3 * round + index as u64;
            let (elapsed, _) = business_transaction(&pool, &outbox, SHAPES[index], i).await?;
            if round >= warmup {
                times[index].push(elapsed);
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM public.domain_events_outbox")
        .fetch_one(&pool)
        .await?;
    ensure!(
        u64::try_from(events)? == warmup + n,
        "the outbox holds {events} rows, not {}",
        warmup + n
    );
    for t in &mut times {
        t.sort();
    }
    let [plain, with, round_trip] = &times;
    let median = |v: &[Duration]| quantile(v, 0.5);
    let ratio = |v: &[Duration]| {
        let r = median(v).as_secs_f64() / median(plain).as_secs_f64().max(1e-9);
        (r * 1000.0).round() / 1000.0
    };
    Ok(json!({
        "scenario": "outbox_commit",
        "n": n,
        "seconds": (seconds * 10_000.0).round() / 10_000.0,
        "with_median_us": micros(median(with)),
        "with_p99_us": micros(quantile(with, 0.99)),
        "without_median_us": micros(median(plain)),
        "without_p99_us": micros(quantile(plain, 0.99)),
        "round_trip_median_us": micros(median(round_trip)),
        "round_trip_p99_us": micros(quantile(round_trip, 0.99)),
        "ratio": ratio(with),
        "round_trip_ratio": ratio(round_trip),
    }))
}

/// Commits events `from..from + n` into the outbox, `FILL_BATCH` per statement, in one
/// transaction (so the relay sees the whole backlog at once).
async fn fill(pool: &PgPool, outbox: &Outbox, from: u64, n: u64) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    let mut next = from;
    while next < from + n {
        let end = (next + FILL_BATCH).min(from + n);
        let mut batch = EmitBatch::new();
        for i in next..end {
            batch.push(payload(i))?;
        }
        outbox.emit_batch(&mut tx, batch).await?;
        next = end;
    }
    tx.commit().await?;
    Ok(())
}

/// A relay of the default outbox table to the Redis at `url`, with its default settings.
async fn relay(database_url: &str, url: &str) -> anyhow::Result<RelayHandle> {
    let pool = PgPoolOptions::new()
        .max_connections(3)
        .connect(database_url)
        .await
        .context("cannot connect to PostgreSQL")?;
    let transport = RedisTransport::new(RedisConfig::new(url)?)?;
    Ok(Relay::builder(pool, transport).build().spawn())
}

/// Waits until `relay` published `target` rows in all.
async fn published(relay: &RelayHandle, target: u64) -> anyhow::Result<()> {
    let deadline = Instant::now() + WAIT;
    while relay.stats().published < target {
        if Instant::now() > deadline {
            bail!(
                "the relay published {} of {target} rows within {WAIT:?}: {:?}",
                relay.stats().published,
                relay.stats()
            );
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

/// The stream the benchmark event is appended to.
fn stream_key() -> String {
    Keys::new(DEFAULT_KEY_PREFIX).stream(ImageVariationCompletedPayload::CATEGORY)
}

/// `outbox_relay`: a committed backlog of `n` rows relayed to Redis, timed from its commit to the
/// last row published, by a relay that already relayed `warmup` rows.
pub async fn relay_backlog(
    url: &str,
    database_url: &str,
    n: u64,
    warmup: u64,
) -> anyhow::Result<(u64, Duration)> {
    let pool = database(database_url, 2).await?;
    let outbox = Outbox::new(SOURCE);
    let relay = relay(database_url, url).await?;
    fill(&pool, &outbox, WARM_BASE, warmup).await?;
    published(&relay, warmup).await?;
    fill(&pool, &outbox, 0, n).await?;
    let started = Instant::now();
    published(&relay, warmup + n).await?;
    let elapsed = started.elapsed();
    let stats = relay.shutdown().await;
    ensure!(
        stats.published == warmup + n && stats.duplicates == 0 && stats.dead == 0,
        "the relay did not publish exactly the {} rows: {stats:?}",
        warmup + n
    );
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let mut xlen = redis::cmd("XLEN");
    xlen.arg(stream_key());
    let length: u64 = xlen.query_async(&mut conn).await?;
    ensure!(
        length == warmup + n,
        "the stream holds {length} entries, not {}",
        warmup + n
    );
    Ok((n, elapsed))
}

/// `outbox_emit_batch`: the relay's peer, `Emitter::emit_batch` of the same events in batches of
/// the relay's size, straight to the same Redis, envelopes built in the timed loop.
pub async fn emit_batch(url: &str, n: u64, warmup: u64) -> anyhow::Result<(u64, Duration)> {
    let emitter = redis_emitter(url, DEFAULT_KEY_PREFIX, true)?;
    let size = DEFAULT_BATCH_SIZE as u64;
    batches_of(&emitter, WARM_BASE, warmup, size, Timed::WithPayloads).await?;
    let elapsed = batches_of(&emitter, 0, n, size, Timed::WithPayloads).await?;
    Ok((n, elapsed))
}

/// What the latency scenario's tasks note down: event id → instant.
type Instants = Arc<Mutex<HashMap<Uuid, Instant>>>;

/// `outbox_latency`: writers paced at `rate` transactions per second (each a business row and its
/// event) for `warmup_seconds` untimed, then `seconds` timed; a reader blocked on the stream notes
/// when each entry arrives. Latency = entry read − commit returned.
pub async fn latency(
    url: &str,
    database_url: &str,
    rate: u64,
    seconds: f64,
    warmup_seconds: f64,
) -> anyhow::Result<serde_json::Value> {
    ensure!(rate > 0, "the rate must be positive");
    let pool = database(database_url, 32).await?;
    let relay = relay(database_url, url).await?;
    let committed: Instants = Arc::default();
    let received: Instants = Arc::default();
    let client = redis::Client::open(url)?;
    let mut reader_conn = client.get_multiplexed_async_connection().await?;
    let (stop_reader, mut reader_stopped) = tokio::sync::watch::channel(false);
    let reader = {
        let received = received.clone();
        tokio::spawn(async move {
            let key = stream_key();
            let mut last = "0-0".to_owned();
            loop {
                let mut xread = redis::cmd("XREAD");
                xread
                    .arg("COUNT")
                    .arg(1_000)
                    .arg("BLOCK")
                    .arg(100)
                    .arg("STREAMS")
                    .arg(&key)
                    .arg(&last);
                let reply: Option<redis::streams::StreamReadReply> =
                    xread.query_async(&mut reader_conn).await?;
                let now = Instant::now();
                let entries = reply
                    .into_iter()
                    .flat_map(|r| r.keys)
                    .flat_map(|k| k.ids)
                    .collect::<Vec<_>>();
                if entries.is_empty() && *reader_stopped.borrow_and_update() {
                    return anyhow::Ok(());
                }
                let mut received = received.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                for entry in entries {
                    let json: String = entry.get("event").context("an entry without event")?;
                    let envelope = RawEnvelope::from_slice(json.as_bytes())?;
                    received.insert(envelope.event_id, now);
                    last = entry.id;
                }
            }
        })
    };

    let outbox = Outbox::new(SOURCE);
    let period = Duration::from_secs_f64(1.0 / rate as f64);
    let warm = (warmup_seconds * rate as f64) as u64;
    let timed = (seconds * rate as f64) as u64;
    let mut writers = tokio::task::JoinSet::new();
    let mut timed_ids = Vec::with_capacity(usize::try_from(timed)?);
    let (ids_tx, mut ids_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut timed_from = started;
    for k in 0..warm + timed {
        ticks.tick().await;
        if k == warm {
            timed_from = Instant::now();
        }
        let (pool, outbox, committed, ids_tx) = (
            pool.clone(),
            outbox.clone(),
            committed.clone(),
            ids_tx.clone(),
        );
        let i = if k < warm { WARM_BASE + k } else { k - warm };
        let is_timed = k >= warm;
        writers.spawn(async move {
            let (_, id) = business_transaction(&pool, &outbox, Shape::Event, i).await?;
            let done = Instant::now();
            let id = id.context("no event written")?;
            committed
                .lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?
                .insert(id, done);
            if is_timed {
                let _ = ids_tx.send(id);
            }
            anyhow::Ok(())
        });
        // Collect finished writers as we go, so a failure stops the run early.
        while let Some(result) = writers.try_join_next() {
            result??;
        }
    }
    let offered = (Instant::now() - timed_from).as_secs_f64();
    while let Some(result) = writers.join_next().await {
        result??;
    }
    drop(ids_tx);
    while let Some(id) = ids_rx.recv().await {
        timed_ids.push(id);
    }
    // Every timed event on the stream.
    let deadline = Instant::now() + WAIT;
    loop {
        let seen = {
            let received = received.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            timed_ids
                .iter()
                .filter(|id| received.contains_key(id))
                .count()
        };
        if seen == timed_ids.len() {
            break;
        }
        if Instant::now() > deadline || reader.is_finished() {
            bail!(
                "{seen} of {} events reached the stream within {WAIT:?}",
                timed_ids.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = stop_reader.send(true);
    reader.await??;
    let stats = relay.shutdown().await;
    ensure!(
        stats.published == warm + timed && stats.dead == 0,
        "the relay did not publish exactly the {} rows: {stats:?}",
        warm + timed
    );

    let committed = committed.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let received = received.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let mut latencies: Vec<Duration> = timed_ids
        .iter()
        .filter_map(|id| {
            let (c, r) = (committed.get(id)?, received.get(id)?);
            // The relay may see a commit before its writer hears back: count that as 0.
            Some(r.saturating_duration_since(*c))
        })
        .collect();
    ensure!(
        latencies.len() == timed_ids.len(),
        "a timed event lacks an instant"
    );
    latencies.sort();
    let ms = |d: Duration| (d.as_secs_f64() * 1e5).round() / 100.0;
    Ok(json!({
        "scenario": "outbox_latency",
        "n": timed,
        "seconds": (offered * 10_000.0).round() / 10_000.0,
        "rate": rate,
        "per_sec": (timed as f64 / offered.max(1e-9)).round(),
        "p50_ms": ms(quantile(&latencies, 0.5)),
        "p99_ms": ms(quantile(&latencies, 0.99)),
        "max_ms": ms(latencies.last().copied().unwrap_or_default()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile(&v, 0.5), Duration::from_millis(50));
        assert_eq!(quantile(&v, 0.99), Duration::from_millis(99));
        assert_eq!(quantile(&v, 1.0), Duration::from_millis(100));
        assert_eq!(quantile(&[], 0.5), Duration::ZERO);
    }
}
