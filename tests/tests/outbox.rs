//! The PostgreSQL outbox (crate `domain-events-outbox`) against a real PostgreSQL and a real
//! Redis, both started by the tests: writing in the caller's transaction, relaying to Redis
//! Streams with several relays at once, late commits, per-correlation order, re-sends, dead rows,
//! retention, outages of Redis and PostgreSQL.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use domain_events::{EmitBatch, Emitter, MemoryBus, RawEnvelope, Uuid};
use domain_events_catalog::{ImageFamilyCompletedPayload, SeoTextGeneratedPayload};
use domain_events_outbox::{
    DeadSelection, Error, Outbox, OutboxTable, Relay, RelayHandle, dead_rows, migrate, retry_dead,
    status,
};
use domain_events_redis::{RedisConfig, RedisTransport};
use domain_events_tests::postgres_server::PostgresServer;
use domain_events_tests::redis_server::RedisServer;
use domain_events_tests::redis_worker::{eventually, family_completed, init_tracing};
use redis::AsyncCommands;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

/// A bound against hanging, not a performance assertion.
const WAIT: Duration = Duration::from_secs(60);

const IMAGE_STREAM: &str = "domain-events:{image}";

struct Servers {
    pg: PostgresServer,
    redis: RedisServer,
    pool: PgPool,
}

async fn servers() -> Servers {
    init_tracing();
    let pg = PostgresServer::start();
    let redis = RedisServer::start();
    let pool = pool(&pg, 20).await;
    migrate(&pool, &OutboxTable::default()).await.unwrap();
    Servers { pg, redis, pool }
}

async fn pool(pg: &PostgresServer, size: u32) -> PgPool {
    PgPoolOptions::new()
        .max_connections(size)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&pg.url())
        .await
        .unwrap()
}

fn transport(redis: &RedisServer) -> RedisTransport {
    RedisTransport::new(RedisConfig::new(&redis.url()).unwrap()).unwrap()
}

/// A relay with its own pool (as a relay process has), polling often so tests never wait long on
/// a lost notification.
async fn relay(servers: &Servers) -> RelayHandle {
    Relay::builder(pool(&servers.pg, 3).await, transport(&servers.redis))
        .poll_interval(Duration::from_millis(200))
        .backoff(Duration::from_millis(50), Duration::from_millis(500))
        .build()
        .spawn()
}

/// The envelopes of a stream, oldest first (read a page at a time: a whole stream of 10,000 in
/// one reply takes longer than the client's response timeout).
async fn stream(redis: &RedisServer, key: &str) -> Vec<RawEnvelope> {
    let mut conn = redis.connection().await;
    let mut envelopes = Vec::new();
    let mut from = "-".to_owned();
    loop {
        let reply: redis::streams::StreamRangeReply =
            conn.xrange_count(key, &from, "+", 1000).await.unwrap();
        let Some(last) = reply.ids.last() else {
            return envelopes;
        };
        from = format!("({}", last.id);
        for entry in &reply.ids {
            let json: String = entry.get("event").expect("event field");
            envelopes.push(RawEnvelope::from_slice(json.as_bytes()).expect("an envelope"));
        }
    }
}

async fn stream_len(redis: &RedisServer, key: &str) -> usize {
    let mut conn = redis.connection().await;
    conn.xlen(key).await.unwrap()
}

async fn rows(pool: &PgPool, condition: &str) -> i64 {
    sqlx::query_scalar(&format!(
        "SELECT count(*) FROM public.domain_events_outbox WHERE {condition}"
    ))
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Commits `count` `family_completed` events of `variation` in one transaction.
async fn commit_families(pool: &PgPool, variation: &str, count: u64) {
    let outbox = Outbox::new("svc");
    let mut tx = pool.begin().await.unwrap();
    for i in 0..count {
        outbox
            .emit(&mut tx, family_completed(variation, i))
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
}

/// Asserts every event of `envelopes` is there once, and returns their ids.
fn once_each(envelopes: &[RawEnvelope]) -> HashSet<Uuid> {
    let ids: HashSet<Uuid> = envelopes.iter().map(|e| e.event_id).collect();
    assert_eq!(
        ids.len(),
        envelopes.len(),
        "an event is on the stream twice"
    );
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_event_is_the_emitters_envelope_and_a_rolled_back_or_invalid_one_leaves_nothing()
 {
    let servers = servers().await;
    let pool = &servers.pool;
    let cause = Uuid::now_v7();
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let outbox = Outbox::new("image-generator")
        .with_causation(cause)
        .with_traceparent(tp);

    // Rolled back: nothing behind.
    let mut tx = pool.begin().await.unwrap();
    outbox
        .emit(&mut tx, family_completed("rolled-back", 1))
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    // Invalid: an error before anything is written, though the transaction then commits.
    let mut tx = pool.begin().await.unwrap();
    let err = outbox
        .emit(&mut tx, family_completed("", 1))
        .await
        .expect_err("an empty variationId breaks min_length");
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");
    tx.commit().await.unwrap();
    assert_eq!(rows(pool, "true").await, 0);

    // Committed: one row holding the envelope exactly as the emitter builds it.
    let mut tx = pool.begin().await.unwrap();
    let written = outbox
        .emit(&mut tx, family_completed("var-1", 3))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let (event_id, category, event_type, version, key, correlation, envelope): (
        Uuid,
        String,
        String,
        i32,
        String,
        String,
        String,
    ) = sqlx::query_as(
        "SELECT event_id, category, event_type, version, idempotency_key, correlation_id, envelope \
         FROM public.domain_events_outbox",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(event_id, written.event_id);
    assert_eq!(
        (category.as_str(), event_type.as_str(), version),
        ("image", "image:family_completed", 1)
    );
    assert_eq!(key, "image_family:var-1:3");
    assert_eq!(written.idempotency_key, key);
    assert_eq!(correlation, "var-1");
    let raw = RawEnvelope::from_slice(envelope.as_bytes()).unwrap();
    assert_eq!(raw.event_id, written.event_id);
    assert_eq!(raw.source, "image-generator");
    assert_eq!(raw.causation_id, Some(cause));
    assert_eq!(raw.traceparent.as_deref(), Some(tp));
    assert_eq!(raw.idempotency_key, key);
    assert_eq!(
        raw.decode::<ImageFamilyCompletedPayload>().unwrap().payload,
        family_completed("var-1", 3)
    );
    // The emitter's envelope of the same payload differs only in eventId and occurredAt.
    let emitted = domain_events::EnvelopeBuilder::new("image-generator")
        .with_causation(cause)
        .with_traceparent(tp)
        .outgoing(family_completed("var-1", 3))
        .unwrap();
    let mut ours: serde_json::Value = serde_json::from_str(&envelope).unwrap();
    let mut theirs: serde_json::Value = serde_json::from_str(&emitted.json).unwrap();
    for value in [&mut ours, &mut theirs] {
        let object = value.as_object_mut().unwrap();
        object.remove("eventId");
        object.remove("occurredAt");
    }
    assert_eq!(ours, theirs);

    // The relay publishes the committed event only.
    let relay = relay(&servers).await;
    eventually("the committed event is on the stream", WAIT, || async {
        rows(pool, "published_at IS NOT NULL").await == 1
    })
    .await;
    let stats = relay.shutdown().await;
    assert_eq!(stats.published, 1);
    let entries = stream(&servers.redis, IMAGE_STREAM).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].event_id, written.event_id);
    assert_eq!(entries[0].correlation_id, "var-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_written_in_push_order_and_derived_typed_methods_write_into_the_outbox() {
    #[derive(domain_events::Emitter)]
    #[emitter(catalog = domain_events_catalog, events("image:family_completed"))]
    struct ImageEvents {
        emitter: Emitter,
    }

    let servers = servers().await;
    let pool = &servers.pool;
    let events = ImageEvents {
        emitter: Emitter::new("image-generator", MemoryBus::new()),
    };
    let outbox = Outbox::with_envelopes(events.emitter.envelopes().clone());

    let mut tx = pool.begin().await.unwrap();
    let mut batch = EmitBatch::new();
    for index in 0..5 {
        batch.push(family_completed("var-b", index)).unwrap();
    }
    let written = outbox.emit_batch(&mut tx, batch).await.unwrap();
    let typed = events
        .emit_image_family_completed_into(&mut outbox.writer(&mut tx), family_completed("var-b", 9))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    assert_eq!(written.len(), 5);
    assert!(written.windows(2).all(|w| w[0].sequence < w[1].sequence));
    assert!(typed.sequence > written[4].sequence);
    let keys: Vec<String> = sqlx::query_scalar(
        "SELECT idempotency_key FROM public.domain_events_outbox ORDER BY sequence",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(
        keys,
        [0, 1, 2, 3, 4, 9].map(|i| format!("image_family:var-b:{i}"))
    );
    assert!(
        outbox
            .emit_batch(&mut pool.acquire().await.unwrap(), EmitBatch::new())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_can_run_again_and_concurrently_and_names_are_configurable() {
    let servers = servers().await;
    let table = OutboxTable::new("billing", "events_outbox").unwrap();
    let runs = (0..4).map(|_| migrate(&servers.pool, &table));
    for result in futures_util::future::join_all(runs).await {
        result.unwrap();
    }
    migrate(&servers.pool, &OutboxTable::default())
        .await
        .unwrap();

    let outbox = Outbox::new("billing").table(table.clone());
    let mut tx = servers.pool.begin().await.unwrap();
    outbox
        .emit(&mut tx, family_completed("var-t", 1))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let relay = Relay::builder(servers.pool.clone(), transport(&servers.redis))
        .table(table.clone())
        .build()
        .spawn();
    eventually(
        "the event of the other table is published",
        WAIT,
        || async { stream_len(&servers.redis, IMAGE_STREAM).await == 1 },
    )
    .await;
    relay.shutdown().await;
    assert_eq!(status(&servers.pool, &table).await.unwrap().published, 1);
    assert_eq!(
        rows(&servers.pool, "true").await,
        0,
        "the default table is untouched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_committing_late_with_an_earlier_sequence_is_published_once() {
    let servers = servers().await;
    let pool = &servers.pool;
    let outbox = Outbox::new("svc");
    let relay = relay(&servers).await;

    // The early transaction takes the lower sequence and stays open.
    let mut early = pool.begin().await.unwrap();
    let first = outbox
        .emit(&mut early, family_completed("var-early", 1))
        .await
        .unwrap();
    let mut later = Vec::new();
    for i in 0..20 {
        let mut tx = pool.begin().await.unwrap();
        later.push(
            outbox
                .emit(&mut tx, family_completed(&format!("var-late-{i}"), 1))
                .await
                .unwrap(),
        );
        tx.commit().await.unwrap();
    }
    assert!(later.iter().all(|w| w.sequence > first.sequence));
    eventually("the later transactions are published", WAIT, || async {
        stream_len(&servers.redis, IMAGE_STREAM).await == 20
    })
    .await;
    early.commit().await.unwrap();
    eventually("the early transaction is published too", WAIT, || async {
        stream_len(&servers.redis, IMAGE_STREAM).await == 21
    })
    .await;
    let stats = relay.shutdown().await;
    let entries = stream(&servers.redis, IMAGE_STREAM).await;
    let ids = once_each(&entries);
    assert!(ids.contains(&first.event_id));
    assert_eq!(entries.last().unwrap().event_id, first.event_id);
    assert_eq!(stats.published, 21);
    assert_eq!(rows(pool, "published_at IS NULL").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_of_one_correlation_id_take_turns_so_the_sequence_is_the_commit_order() {
    let servers = servers().await;
    let pool = servers.pool.clone();
    let outbox = Outbox::new("svc");

    let mut first = pool.begin().await.unwrap();
    outbox
        .emit(&mut first, family_completed("var-x", 1))
        .await
        .unwrap();
    // Another correlation id is not held up.
    let mut other = pool.begin().await.unwrap();
    outbox
        .emit(&mut other, family_completed("var-y", 1))
        .await
        .unwrap();
    other.commit().await.unwrap();
    // The same one waits for the first transaction to end.
    let second = tokio::spawn({
        let (pool, outbox) = (pool.clone(), outbox.clone());
        async move {
            let mut tx = pool.begin().await.unwrap();
            let written = outbox
                .emit(&mut tx, family_completed("var-x", 2))
                .await
                .unwrap();
            tx.commit().await.unwrap();
            written
        }
    });
    eventually(
        "the second writer waits on the correlation lock",
        WAIT,
        || async {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            waiting == 1
        },
    )
    .await;
    assert!(!second.is_finished());
    let first_written: i64 =
        sqlx::query_scalar("SELECT max(sequence) FROM public.domain_events_outbox")
            .fetch_one(&mut *first)
            .await
            .unwrap();
    first.commit().await.unwrap();
    let second = second.await.unwrap();
    assert!(second.sequence > first_written);
}

/// Three relays, writers racing on 40 correlation ids, and one transaction that commits last with
/// the lowest sequence: 10,000 events, each once on the stream, each correlation id's in commit
/// order. Each transaction bumps its variation's counter row (the business change, locked until
/// commit) and emits `family_completed` with the new count as `familyIndex`, so commit order per
/// variation is 1, 2, 3, ...
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_relays_publish_ten_thousand_events_from_concurrent_writers_once_each_in_commit_order()
 {
    const EVENTS: usize = 10_000;
    const WRITERS: usize = 8;
    const VARIATIONS: usize = 40;
    let servers = servers().await;
    let pool = servers.pool.clone();
    sqlx::query("CREATE TABLE counters (variation text PRIMARY KEY, n bigint NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO counters SELECT 'var-' || i, 0 FROM generate_series(0, $1 - 1) AS i")
        .bind(i32::try_from(VARIATIONS).unwrap())
        .execute(&pool)
        .await
        .unwrap();
    let outbox = Outbox::new("svc");
    let relays = [
        relay(&servers).await,
        relay(&servers).await,
        relay(&servers).await,
    ];

    let mut late = pool.begin().await.unwrap();
    let late_event = outbox
        .emit(&mut late, family_completed("var-late", 1))
        .await
        .unwrap();

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (pool, outbox) = (pool.clone(), outbox.clone());
            tokio::spawn(async move {
                for i in (w..EVENTS - 1).step_by(WRITERS) {
                    let variation = format!("var-{}", (i * 7 + w) % VARIATIONS);
                    let mut tx = pool.begin().await.unwrap();
                    let n: i64 = sqlx::query_scalar(
                        "UPDATE counters SET n = n + 1 WHERE variation = $1 RETURNING n",
                    )
                    .bind(&variation)
                    .fetch_one(&mut *tx)
                    .await
                    .unwrap();
                    let payload = family_completed(&variation, u64::try_from(n).unwrap());
                    outbox.emit(&mut tx, payload).await.unwrap();
                    tx.commit().await.unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    late.commit().await.unwrap();
    eventually(
        "every event is on the stream",
        Duration::from_secs(180),
        || async { stream_len(&servers.redis, IMAGE_STREAM).await >= EVENTS },
    )
    .await;
    let mut published = 0;
    for relay in relays {
        let stats = relay.shutdown().await;
        assert_eq!((stats.dead, stats.duplicates), (0, 0), "{stats:?}");
        published += stats.published;
    }
    assert_eq!(
        published,
        u64::try_from(EVENTS).unwrap(),
        "each row published once"
    );

    let entries = stream(&servers.redis, IMAGE_STREAM).await;
    assert_eq!(entries.len(), EVENTS);
    let ids = once_each(&entries);
    assert!(ids.contains(&late_event.event_id));
    let mut last: HashMap<String, u64> = HashMap::new();
    for entry in &entries {
        let index = entry
            .decode::<ImageFamilyCompletedPayload>()
            .unwrap()
            .payload
            .family_index;
        let previous = last
            .insert(entry.correlation_id.clone(), index)
            .unwrap_or(0);
        assert_eq!(
            index,
            previous + 1,
            "events of {} out of commit order",
            entry.correlation_id
        );
    }
    assert_eq!(rows(&pool, "published_at IS NULL").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_re_send_after_a_crash_is_absorbed_by_the_idempotency_claim() {
    let servers = servers().await;
    let pool = &servers.pool;
    commit_families(pool, "var-r", 50).await;
    let relay = relay(&servers).await;
    eventually("the events are published", WAIT, || async {
        rows(pool, "published_at IS NOT NULL").await == 50
    })
    .await;
    // A relay that died after publishing and before its commit leaves the rows pending: the next
    // batch sends them again.
    sqlx::query("UPDATE public.domain_events_outbox SET published_at = NULL")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("SELECT pg_notify('public.domain_events_outbox', '')")
        .execute(pool)
        .await
        .unwrap();
    eventually("the re-sent events are marked again", WAIT, || async {
        rows(pool, "published_at IS NOT NULL").await == 50
    })
    .await;
    let stats = relay.shutdown().await;
    // Its own earlier claim reads as published: the stream holds each event once.
    assert_eq!(stats.published, 100, "{stats:?}");
    let entries = stream(&servers.redis, IMAGE_STREAM).await;
    assert_eq!(entries.len(), 50);
    once_each(&entries);
    assert_eq!(rows(pool, "attempts = 2").await, 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_the_transport_rejects_goes_dead_with_its_reason_without_stopping_the_others() {
    let servers = servers().await;
    let pool = &servers.pool;
    // The seo stream's key holds a string: Redis refuses every append to it (WRONGTYPE).
    let mut conn = servers.redis.connection().await;
    let _: () = conn
        .set("domain-events:{seo}", "not a stream")
        .await
        .unwrap();

    let outbox = Outbox::new("svc");
    let seo = SeoTextGeneratedPayload {
        content_id: "post:42".into(),
        locale: "en".into(),
        word_count: 300,
        generation_time_ms: 1200,
    };
    let mut tx = pool.begin().await.unwrap();
    let mut batch = EmitBatch::new();
    for i in 0..3 {
        batch.push(family_completed("var-d", i)).unwrap();
    }
    let dead_id = batch.push(seo).unwrap();
    for i in 3..6 {
        batch.push(family_completed("var-d", i)).unwrap();
    }
    outbox.emit_batch(&mut tx, batch).await.unwrap();
    tx.commit().await.unwrap();

    let relay = relay(&servers).await;
    eventually(
        "the rows behind the rejected one are published",
        WAIT,
        || async { rows(pool, "published_at IS NOT NULL").await == 6 },
    )
    .await;
    assert_eq!(stream_len(&servers.redis, IMAGE_STREAM).await, 6);
    let dead = dead_rows(pool, &OutboxTable::default(), 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].event_id, dead_id);
    assert_eq!(dead[0].event_type, SeoTextGeneratedPayload::TYPE);
    assert!(dead[0].reason.contains("WRONGTYPE"), "{}", dead[0].reason);
    let state = status(pool, &OutboxTable::default()).await.unwrap();
    assert_eq!((state.pending, state.dead, state.published), (0, 1, 6));

    // Fixed, and retried: published.
    let _: () = conn.del("domain-events:{seo}").await.unwrap();
    let revived = retry_dead(
        pool,
        &OutboxTable::default(),
        &DeadSelection::Events(vec![dead_id]),
    )
    .await
    .unwrap();
    assert_eq!(revived, 1);
    eventually("the retried row is published", WAIT, || async {
        stream_len(&servers.redis, "domain-events:{seo}").await == 1
    })
    .await;
    let stats = relay.shutdown().await;
    assert_eq!((stats.published, stats.dead), (7, 1), "{stats:?}");
    assert_eq!(rows(pool, "dead_at IS NOT NULL").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_while_two_thousand_transactions_commit_then_all_are_published_once() {
    let mut servers = servers().await;
    let relay = relay(&servers).await;
    servers.redis.stop();
    let stopped_at = std::time::Instant::now();

    let outbox = Outbox::new("svc");
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (pool, outbox) = (servers.pool.clone(), outbox.clone());
            tokio::spawn(async move {
                for i in 0..500 {
                    let mut tx = pool.begin().await.unwrap();
                    outbox
                        .emit(&mut tx, family_completed(&format!("var-{w}"), i))
                        .await
                        .unwrap();
                    tx.commit().await.unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    // Redis stays down at least 5 seconds, and the relay has failed against it meanwhile.
    eventually(
        "Redis was down 5 s and the relay kept failing",
        WAIT,
        || async {
            stopped_at.elapsed() >= Duration::from_secs(5) && relay.stats().transport_errors >= 2
        },
    )
    .await;
    assert_eq!(rows(&servers.pool, "published_at IS NULL").await, 2000);
    let attempted = rows(&servers.pool, "last_error IS NOT NULL").await;
    assert!(attempted > 0, "failed attempts are recorded on the rows");
    servers.redis.restart();

    eventually("all 2,000 are on the stream", WAIT, || async {
        stream_len(&servers.redis, IMAGE_STREAM).await == 2000
    })
    .await;
    relay.shutdown().await;
    once_each(&stream(&servers.redis, IMAGE_STREAM).await);
    assert_eq!(rows(&servers.pool, "published_at IS NULL").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_mid_run_the_relay_recovers_and_nothing_is_lost() {
    let mut servers = servers().await;
    let relay = relay(&servers).await;
    let outbox = Outbox::new("svc");
    let write = |from: u64, to: u64| {
        let (pool, outbox) = (servers.pool.clone(), outbox.clone());
        async move {
            for i in from..to {
                // A write may meet the server down: retried as an application would.
                loop {
                    let Ok(mut tx) = pool.begin().await else {
                        continue;
                    };
                    if outbox
                        .emit(&mut tx, family_completed("var-pg", i))
                        .await
                        .is_ok()
                        && tx.commit().await.is_ok()
                    {
                        break;
                    }
                }
            }
        }
    };
    write(0, 300).await;
    eventually("the first events are published", WAIT, || async {
        stream_len(&servers.redis, IMAGE_STREAM).await > 0
    })
    .await;
    servers.pg.kill();
    servers.pg.restart();
    write(300, 600).await;
    eventually("every event is on the stream", WAIT, || async {
        stream_len(&servers.redis, IMAGE_STREAM).await >= 600
    })
    .await;
    // Whether the relay itself met the outage (it may have been waiting for a notification the
    // whole time) depends on timing; what must hold is that every event got through once.
    let stats = relay.shutdown().await;
    assert_eq!(stats.dead, 0, "{stats:?}");
    let entries = stream(&servers.redis, IMAGE_STREAM).await;
    assert_eq!(entries.len(), 600);
    once_each(&entries);
    assert_eq!(rows(&servers.pool, "published_at IS NULL").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_rows_are_swept_after_the_retention_and_kept_before() {
    let servers = servers().await;
    let pool = &servers.pool;
    commit_families(pool, "var-s", 10).await;

    let keeping = relay(&servers).await; // default retention: an hour
    eventually("published", WAIT, || async {
        rows(pool, "published_at IS NOT NULL").await == 10
    })
    .await;
    keeping.shutdown().await;
    assert_eq!(rows(pool, "true").await, 10, "kept within the retention");

    let sweeping = Relay::builder(servers.pool.clone(), transport(&servers.redis))
        .retention(Duration::ZERO)
        .sweep_interval(Duration::from_millis(100))
        .build()
        .spawn();
    eventually("the published rows are deleted", WAIT, || async {
        rows(pool, "true").await == 0
    })
    .await;
    let state = status(pool, &OutboxTable::default()).await.unwrap();
    let stopped = state.relays.iter().filter(|r| r.stopped).count();
    assert_eq!((state.relays.len(), stopped), (2, 1), "{state:?}");
    sweeping.shutdown().await;
    let state = status(pool, &OutboxTable::default()).await.unwrap();
    assert!(state.relays.iter().all(|r| r.stopped), "{state:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_feeds_any_transport_through_its_batch_path() {
    let servers = servers().await;
    let bus = MemoryBus::new();
    let mut subscription = bus.subscribe(domain_events::Filter::All);
    let relay = Relay::builder(servers.pool.clone(), bus.clone())
        .build()
        .spawn();
    let outbox = Outbox::new("svc");
    let mut tx = servers.pool.begin().await.unwrap();
    let written = outbox
        .emit(&mut tx, family_completed("var-m", 1))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let delivered = tokio::time::timeout(WAIT, subscription.recv())
        .await
        .unwrap()
        .unwrap();
    let envelope = delivered.envelope().unwrap();
    assert_eq!(envelope.event_id, written.event_id);
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_publishes_into_the_partition_of_each_rows_correlation_id() {
    // The relay hands the transport each row's correlation id from its column; the partition is
    // the one the emitter would choose, so one entity's events share a stream whatever path
    // they took.
    let servers = servers().await;
    let config = RedisConfig::new(&servers.redis.url())
        .unwrap()
        .partitions::<domain_events_catalog::DomainEvent>("image", 4)
        .unwrap();
    let relay = Relay::builder(
        pool(&servers.pg, 3).await,
        RedisTransport::new(config).unwrap(),
    )
    .poll_interval(Duration::from_millis(200))
    .build()
    .spawn();
    let variations: Vec<String> = (0..12).map(|v| format!("var-p{v}")).collect();
    for variation in &variations {
        commit_families(&servers.pool, variation, 3).await;
    }
    eventually("every row published", WAIT, || async {
        rows(&servers.pool, "published_at IS NULL").await == 0
    })
    .await;
    let mut total = 0;
    for p in 0..4 {
        let envelopes = stream(&servers.redis, &format!("domain-events:{{image#{p}}}")).await;
        let expected: HashSet<&str> = variations
            .iter()
            .filter(|v| domain_events_redis::partition_of(v, 4) == p)
            .map(String::as_str)
            .collect();
        let found: HashSet<&str> = envelopes
            .iter()
            .map(|e| e.correlation_id.as_str())
            .collect();
        assert_eq!(found, expected, "partition {p}");
        assert_eq!(envelopes.len(), expected.len() * 3, "partition {p}");
        total += envelopes.len();
    }
    assert_eq!(total, 36);
    assert_eq!(stream_len(&servers.redis, IMAGE_STREAM).await, 0);
    relay.shutdown().await;
}
