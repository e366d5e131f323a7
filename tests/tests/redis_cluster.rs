//! The Redis Streams transport, consumer, dead letters and inspector on a real local Redis
//! Cluster (three masters, three replicas; see `tests/redis_cluster.rs`), reached through a
//! `redis+cluster://` URL: six categories whose streams hash to slots on all three masters; with
//! `wait_for_replicas`, a batch over them is on every master's replica when it returns.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain_events::{EmitBatch, Emitter, Envelope, EventPayload, Handlers, RetryPolicy, Uuid};
use domain_events_catalog::{
    AnalyticsHourlyAggregationCompletePayload, DomainEvent, EmailQueuedPayload,
    FunnelSignupPayload, ImageFamilyCompletedPayload, SeoPageQueuedPayload,
    SystemServiceHealthyPayload,
};
use domain_events_redis::{DeadLetters, Inspector, RedisConfig, RedisConsumer, RedisTransport};
use domain_events_tests::redis_cluster::RedisCluster;
use domain_events_tests::redis_worker::{eventually, family_completed, init_tracing};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);
const CATEGORIES: [&str; 6] = ["analytics", "email", "funnel", "image", "seo", "system"];
const GROUP: &str = "cluster-group";
/// The family index whose handler fails while `failing` is set.
const POISON_INDEX: u64 = 999;

/// Handled event ids, each with how often its handler succeeded.
type Seen = Arc<Mutex<HashMap<Uuid, usize>>>;

/// `handlers` with a handler for `P` that counts each successful run per event id.
fn counting<P: EventPayload>(handlers: Handlers, seen: &Seen) -> Handlers {
    let seen = seen.clone();
    handlers.on(move |event: Envelope<P>| {
        *seen.lock().unwrap().entry(event.event_id).or_default() += 1;
        async { Ok(()) }
    })
}

const AT: &str = "2026-12-03T10:00:00.000Z";

fn analytics(n: u64) -> AnalyticsHourlyAggregationCompletePayload {
    serde_json::from_value(json!({
        "periodStart": format!("2026-12-03T10:{:02}:00.000Z", n % 60), "periodEnd": AT,
        "rowsAggregated": n, "durationMs": 5,
    }))
    .unwrap()
}

fn email(n: u64) -> EmailQueuedPayload {
    serde_json::from_value(json!({
        "emailLogId": format!("log-{n}"), "templateId": "welcome",
        "recipient": "someone@example.com", "queuedAt": AT,
    }))
    .unwrap()
}

fn funnel(n: u64) -> FunnelSignupPayload {
    serde_json::from_value(
        json!({ "userId": format!("u-{n}"), "method": "email", "occurredAt": AT }),
    )
    .unwrap()
}

fn seo(n: u64) -> SeoPageQueuedPayload {
    serde_json::from_value(json!({
        "contentId": format!("c-{n}"), "slug": "page", "locale": "en", "queuedAt": AT,
    }))
    .unwrap()
}

fn system(n: u64) -> SystemServiceHealthyPayload {
    serde_json::from_value(json!({
        "serviceName": "api", "checkedAt": format!("2026-12-03T10:{:02}:00.000Z", n % 60),
        "latencyMs": n,
    }))
    .unwrap()
}

/// Pushes one payload of each category, told apart by `n`, in the order of [`CATEGORIES`].
fn payloads(batch: &mut EmitBatch, n: u64) {
    batch.push(analytics(n)).unwrap();
    batch.push(email(n)).unwrap();
    batch.push(funnel(n)).unwrap();
    batch.push(family_completed("cluster", n)).unwrap();
    batch.push(seo(n)).unwrap();
    batch.push(system(n)).unwrap();
}

/// Emits one payload of each category one by one, as [`payloads`] orders them; their event ids.
async fn emit_each(emitter: &Emitter, n: u64) -> Vec<Uuid> {
    let emitted = [
        emitter.emit(analytics(n)).await,
        emitter.emit(email(n)).await,
        emitter.emit(funnel(n)).await,
        emitter.emit(family_completed("cluster", n)).await,
        emitter.emit(seo(n)).await,
        emitter.emit(system(n)).await,
    ];
    emitted
        .into_iter()
        .map(|emitted| {
            let emitted = emitted.unwrap();
            assert!(emitted.published(), "{emitted:?}");
            emitted.event_id
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_categories_over_three_masters_are_emitted_consumed_dead_lettered_and_replayed() {
    init_tracing();
    let cluster = RedisCluster::start();
    let config = RedisConfig::new(&cluster.url())
        .unwrap()
        .key_prefix("clustered");
    assert!(config.connection().is_cluster());
    config.connection().probe().await.unwrap();
    let nowhere = RedisConfig::new("redis+cluster://127.0.0.1:1").unwrap();
    let refused = nowhere.connection().probe().await.unwrap_err();
    assert!(
        matches!(refused, domain_events_redis::Error::Unavailable { .. }),
        "{refused:?}"
    );
    let masters: BTreeSet<u16> = CATEGORIES
        .iter()
        .map(|category| cluster.master_of(&config.keys().stream(category)))
        .collect();
    assert_eq!(masters.len(), 3, "the categories spread over every master");

    let emitter = Emitter::new("cluster-test", RedisTransport::new(config.clone()).unwrap());
    // One event per category, one by one.
    let singles = emit_each(&emitter, 0).await;

    // A batch over all six categories (one call per slot), with a duplicate of each earlier event.
    let mut batch = EmitBatch::new();
    payloads(&mut batch, 0);
    for n in 1..4 {
        payloads(&mut batch, n);
    }
    batch
        .push(family_completed("cluster", POISON_INDEX))
        .unwrap();
    let results = emitter.emit_batch(batch).await.unwrap();
    assert_eq!(results.len(), 6 * 4 + 1);
    for (result, earlier) in results[..6].iter().zip(&singles) {
        assert!(result.duplicate, "{result:?}");
        assert_eq!(result.existing_event_id, Some(*earlier));
    }
    assert!(results[6..].iter().all(|result| result.published()));
    let poison_id = results[6 * 4].event_id;
    let mut expected: BTreeSet<Uuid> = singles.iter().copied().collect();
    expected.extend(results[6..].iter().map(|result| result.event_id));

    // Every node forgets its scripts (as after a restart or a failover to a replica): the next
    // batch, and the consumer's scripts, load them again where they run.
    for port in cluster.ports() {
        let _: () = redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query(&mut cluster.node_connection(port))
            .unwrap();
    }
    let mut batch = EmitBatch::new();
    payloads(&mut batch, 4);
    let results = emitter.emit_batch(batch).await.unwrap();
    assert!(results.iter().all(|result| result.published()));
    expected.extend(results.iter().map(|result| result.event_id));
    assert_eq!(expected.len(), 6 + 6 * 3 + 1 + 6);

    // One consumer of all six categories; the poison event's handler fails until told otherwise.
    let seen: Seen = Arc::default();
    let failing = Arc::new(AtomicBool::new(true));
    let mut handlers = Handlers::new();
    handlers = counting::<AnalyticsHourlyAggregationCompletePayload>(handlers, &seen);
    handlers = counting::<EmailQueuedPayload>(handlers, &seen);
    handlers = counting::<FunnelSignupPayload>(handlers, &seen);
    handlers = counting::<SeoPageQueuedPayload>(handlers, &seen);
    handlers = counting::<SystemServiceHealthyPayload>(handlers, &seen);
    let handlers = handlers
        .on({
            let seen = seen.clone();
            let failing = failing.clone();
            move |event: Envelope<ImageFamilyCompletedPayload>| {
                let fail =
                    event.payload.family_index == POISON_INDEX && failing.load(Ordering::SeqCst);
                if !fail {
                    *seen.lock().unwrap().entry(event.event_id).or_default() += 1;
                }
                async move {
                    if fail {
                        Err("the handler fails on purpose".into())
                    } else {
                        Ok(())
                    }
                }
            }
        })
        .knowing::<DomainEvent>();
    let consumer = RedisConsumer::builder(config.clone(), GROUP, handlers)
        .block(Duration::from_millis(200))
        .claim_idle(Duration::from_millis(200))
        .max_deliveries(2)
        .retry(RetryPolicy::never())
        .build()
        .unwrap();
    assert_eq!(consumer.streams().len(), 6);
    let handle = consumer.spawn();

    let dead = DeadLetters::new(config.clone()).unwrap();
    eventually("the failing event is dead-lettered", WAIT, || async {
        dead.len("image", GROUP).await.unwrap() == 1
    })
    .await;
    eventually("every other event is handled", WAIT, || async {
        seen.lock().unwrap().len() == expected.len() - 1
    })
    .await;
    let letters = dead.list("image", GROUP, 10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].deliveries, 2);
    assert_eq!(
        letters[0].envelope().map(|raw| raw.event_id),
        Some(poison_id)
    );

    // Replayed once the handler works: handled like any other event.
    failing.store(false, Ordering::SeqCst);
    assert!(
        dead.replay("image", GROUP, &letters[0].id)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(dead.len("image", GROUP).await.unwrap(), 0);
    eventually("the replayed event is handled", WAIT, || async {
        seen.lock().unwrap().contains_key(&poison_id)
    })
    .await;

    // The inspector finds every stream, on every master, with nothing pending.
    let inspector = Inspector::new(config.clone()).unwrap();
    eventually("nothing is pending in any category", WAIT, || async {
        let status = inspector.status().await.unwrap();
        status.streams.len() == 6
            && status
                .streams
                .iter()
                .all(|stream| stream.groups.iter().all(|group| group.pending == 0))
    })
    .await;
    let status = inspector.status().await.unwrap();
    let streams: Vec<&str> = status.streams.iter().map(|s| s.category.as_str()).collect();
    assert_eq!(streams, CATEGORIES);

    let stats = handle.shutdown().await.unwrap();
    let seen = seen.lock().unwrap();
    let handled: BTreeSet<Uuid> = seen.keys().copied().collect();
    assert_eq!(handled, expected, "every published event was handled");
    assert!(
        seen.values().all(|count| *count == 1),
        "each exactly once: {seen:?}"
    );
    assert_eq!(stats.handled, expected.len() as u64);
    assert_eq!((stats.failed, stats.duplicates, stats.poison), (1, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_wait_for_replicas_a_batch_over_three_masters_is_on_each_replica_when_it_returns() {
    init_tracing();
    let cluster = RedisCluster::start();
    let config = RedisConfig::new(&cluster.url())
        .unwrap()
        .key_prefix("durable")
        .wait_for_replicas(1, Duration::from_millis(500));
    let replica_of: HashMap<u16, u16> = cluster
        .masters()
        .into_iter()
        .map(|(master, replica)| (master, replica.expect("every master has a replica")))
        .collect();
    assert_eq!(replica_of.len(), 3);

    let emitter = Emitter::new("durable", RedisTransport::new(config.clone()).unwrap());
    let mut batch = EmitBatch::new();
    for n in 0..4 {
        payloads(&mut batch, n);
    }
    let results = emitter.emit_batch(batch).await.unwrap();
    assert!(
        results.iter().all(|result| result.published()),
        "{results:?}"
    );
    // No waiting here: the WAIT on each master written counted its replica before the batch
    // returned.
    for category in CATEGORIES {
        let stream = config.keys().stream(category);
        let master = cluster.master_of(&stream);
        let mut replica = cluster.node_connection(replica_of[&master]);
        let () = redis::cmd("READONLY").query(&mut replica).unwrap();
        let len: usize = redis::cmd("XLEN").arg(&stream).query(&mut replica).unwrap();
        assert_eq!(len, 4, "{category} on the replica of {master}");
    }
}
