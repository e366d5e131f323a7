//! Partitioned categories on one real redis-server (docs/contract.md sections 4.1 and 4.6): where
//! events land, duplicate detection, the refusal of a changed partition count and the documented
//! way to change it, dead letters and the tools per partition, and the takeover of a killed
//! consumer's partitions with their pending entries. The six test-only categories are those of
//! `tests/schemas/partitioned` (`domain_events_tests::partitioned`).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain_events::{EmitBatch, Emitter, Envelope, Handlers, Uuid};
use domain_events_redis::{
    DeadLetters, Error, Inspector, Keys, RedisConfig, RedisConsumer, RedisTransport, partition_of,
};
use domain_events_tests::partitioned::{
    CATEGORIES, CartStepPayload, DomainEvent, Step, Worker, WorkerSettings, handled_key, order_key,
    partitioned, push_step,
};
use domain_events_tests::redis_server::RedisServer;
use domain_events_tests::redis_worker::{eventually, exact_consumer, init_tracing};
use redis::AsyncCommands;

const WAIT: Duration = Duration::from_secs(60);

fn config(server: &RedisServer, prefix: &str) -> RedisConfig {
    RedisConfig::new(&server.url()).unwrap().key_prefix(prefix)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_land_in_the_partition_of_their_correlation_id_and_duplicates_are_still_found() {
    init_tracing();
    let server = RedisServer::start();
    let config = partitioned(config(&server, "land"), 4).unwrap();
    let keys = config.keys();
    let emitter = Emitter::new("partition-test", RedisTransport::new(config).unwrap());
    let mut batch = EmitBatch::new();
    for entity in 0..10 {
        for seq in 0..3 {
            batch
                .push(CartStepPayload::new(&format!("e{entity}"), seq))
                .unwrap();
        }
    }
    let results = emitter.emit_batch(batch).await.unwrap();
    assert!(results.iter().all(|r| r.published()));

    let mut conn = server.connection().await;
    for p in 0..4 {
        let expected = (0..10)
            .filter(|entity| partition_of(&format!("e{entity}"), 4) == p)
            .count()
            * 3;
        let len: usize = conn.xlen(format!("land:{{cart#{p}}}")).await.unwrap();
        assert_eq!(len, expected, "partition {p}");
    }
    assert!(!conn.exists::<_, bool>("land:{cart}").await.unwrap());
    let recorded: String = conn.get("land:{cart}:partitions").await.unwrap();
    assert_eq!(recorded, "4");
    // The claim lives in its partition, next to the stream it guards.
    let p = partition_of("e3", 4);
    let claim: String = conn
        .get(keys.idem(&Keys::tag("cart", p, 4), "cart_step:e3:1"))
        .await
        .unwrap();
    assert_eq!(claim, results[3 * 3 + 1].event_id.to_string());

    // The same key again, alone and in a batch with a new event: a duplicate, nothing appended.
    let again = emitter.emit(CartStepPayload::new("e3", 1)).await.unwrap();
    assert!(again.duplicate, "{again:?}");
    assert_eq!(again.existing_event_id, Some(results[3 * 3 + 1].event_id));
    let mut batch = EmitBatch::new();
    batch.push(CartStepPayload::new("e3", 1)).unwrap();
    batch.push(CartStepPayload::new("e3", 3)).unwrap();
    let mixed = emitter.emit_batch(batch).await.unwrap();
    assert!(mixed[0].duplicate && mixed[1].published(), "{mixed:?}");
    let total: usize = {
        let mut total = 0;
        for p in 0..4 {
            total += conn
                .xlen::<_, usize>(format!("land:{{cart#{p}}}"))
                .await
                .unwrap();
        }
        total
    };
    assert_eq!(total, 31);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_count_other_than_the_recorded_one_is_refused_until_the_documented_reset() {
    init_tracing();
    let server = RedisServer::start();
    let four = partitioned(config(&server, "layout"), 4).unwrap();
    let two = partitioned(config(&server, "layout"), 2).unwrap();
    let one = config(&server, "layout");
    let emit = |config: &RedisConfig| {
        let emitter = Emitter::new("layout-test", RedisTransport::new(config.clone()).unwrap());
        async move { emitter.emit(CartStepPayload::new("e1", 0)).await }
    };
    assert!(emit(&four).await.unwrap().published());

    for (config, configured) in [(&two, 2), (&one, 1)] {
        let error = emit(config).await.unwrap_err().to_string();
        assert!(
            error.contains(&format!(
                "category `cart` is configured with {configured} partition(s) here, but Redis records 4 (`layout:{{cart}}:partitions`)"
            )),
            "{error}"
        );
    }
    let handlers = Handlers::new()
        .on(|_: Envelope<CartStepPayload>| async { Ok(()) })
        .knowing::<DomainEvent>();
    let refused = RedisConsumer::builder(two.clone(), "layout-group", handlers)
        .build()
        .unwrap()
        .run()
        .await
        .unwrap_err();
    assert!(
        matches!(
            &refused,
            Error::PartitionsChanged { category, configured: 2, recorded: 4, marker }
                if category == "cart" && marker == "layout:{cart}:partitions"
        ),
        "{refused:?}"
    );

    // A category live with one stream is refused to a producer of four partitions.
    let device = |partitions| {
        config(&server, "layout")
            .partitions::<DomainEvent>("device", partitions)
            .unwrap()
    };
    let emitter = Emitter::new("layout-test", RedisTransport::new(device(1)).unwrap());
    let mut batch = EmitBatch::new();
    push_step(&mut batch, 1, "d1", 0).unwrap();
    emitter.emit_batch(batch).await.unwrap();
    let emitter = Emitter::new("layout-test", RedisTransport::new(device(4)).unwrap());
    let mut batch = EmitBatch::new();
    push_step(&mut batch, 1, "d1", 1).unwrap();
    let error = emitter.emit_batch(batch).await.unwrap_err().to_string();
    assert!(
        error.contains("configured with 4 partition(s) here, but Redis records 1"),
        "{error}"
    );

    // The README's procedure, once the streams are drained: delete the streams and the record,
    // then every process uses the new count.
    let mut conn = server.connection().await;
    let _: () = redis::cmd("DEL")
        .arg("layout:{cart#0}")
        .arg("layout:{cart#1}")
        .arg("layout:{cart#2}")
        .arg("layout:{cart#3}")
        .arg("layout:{cart}:partitions")
        .arg("layout:{device}")
        .query_async(&mut conn)
        .await
        .unwrap();
    let emitter = Emitter::new("layout-test", RedisTransport::new(two.clone()).unwrap());
    assert!(
        emitter
            .emit(CartStepPayload::new("e1", 5))
            .await
            .unwrap()
            .published()
    );
    let recorded: String = conn.get("layout:{cart}:partitions").await.unwrap();
    assert_eq!(recorded, "2");
    let emitter = Emitter::new("layout-test", RedisTransport::new(device(4)).unwrap());
    let mut batch = EmitBatch::new();
    push_step(&mut batch, 1, "d1", 2).unwrap();
    assert!(emitter.emit_batch(batch).await.unwrap()[0].published());
}

#[test]
fn a_category_whose_key_lacks_its_correlation_field_cannot_be_partitioned() {
    // `funnel:subscribe` is keyed by `subscriptionId` but correlated by `userId`: one key could
    // land in two partitions.
    let error = RedisConfig::new("redis://127.0.0.1:1")
        .unwrap()
        .partitions::<domain_events_catalog::DomainEvent>("funnel", 4)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains(
            "category `funnel` cannot be partitioned: funnel:subscribe v1 has the idempotency-key \
             template `funnel_subscribe:{subscriptionId}`, which does not contain its correlation \
             field `userId`"
        ),
        "{error}"
    );
    // One partition is always allowed; an unknown category or a count of 0 is not.
    let one = RedisConfig::new("redis://127.0.0.1:1")
        .unwrap()
        .partitions::<domain_events_catalog::DomainEvent>("funnel", 1)
        .unwrap();
    assert_eq!(one.partitions_of("funnel"), 1);
    for (category, count) in [("nope", 4), ("image", 0), ("image", 5000)] {
        assert!(
            RedisConfig::new("redis://127.0.0.1:1")
                .unwrap()
                .partitions::<domain_events_catalog::DomainEvent>(category, count)
                .is_err(),
            "{category} {count}"
        );
    }
    let image = RedisConfig::new("redis://127.0.0.1:1")
        .unwrap()
        .partitions::<domain_events_catalog::DomainEvent>("image", 8)
        .unwrap();
    assert_eq!(image.partitions_of("image"), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_consumer_reads_every_partition_and_dead_letters_stay_in_their_partition() {
    init_tracing();
    let server = RedisServer::start();
    let config = partitioned(config(&server, "one"), 4).unwrap();
    let emitter = Emitter::new(
        "partition-test",
        RedisTransport::new(config.clone()).unwrap(),
    );
    let mut batch = EmitBatch::new();
    for entity in 0..8 {
        for seq in 0..5 {
            batch
                .push(CartStepPayload::new(&format!("e{entity}"), seq))
                .unwrap();
        }
    }
    let results = emitter.emit_batch(batch).await.unwrap();
    let poison = results[2 * 5 + 3].event_id; // e2, step 3
    let seen: Arc<Mutex<HashMap<Uuid, usize>>> = Arc::default();
    let handlers = Handlers::new()
        .on({
            let seen = seen.clone();
            move |event: Envelope<CartStepPayload>| {
                let fail = event.event_id == poison;
                if !fail {
                    *seen.lock().unwrap().entry(event.event_id).or_default() += 1;
                }
                async move {
                    if fail {
                        Err("fails on purpose".into())
                    } else {
                        Ok(())
                    }
                }
            }
        })
        .knowing::<DomainEvent>();
    let consumer = exact_consumer(config.clone(), "one-group", handlers)
        .partition_lease(Duration::from_millis(600))
        .build()
        .unwrap();
    assert_eq!(
        consumer.streams().len(),
        4,
        "every partition of the one category handled"
    );
    let handle = consumer.spawn();
    eventually("every other event is handled", WAIT, || async {
        seen.lock().unwrap().len() == results.len() - 1
    })
    .await;

    let tag = Keys::tag("cart", partition_of("e2", 4), 4);
    let dead = DeadLetters::new(config.clone()).unwrap();
    eventually("the failing event is dead-lettered", WAIT, || async {
        dead.len(&tag, "one-group").await.unwrap() == 1
    })
    .await;
    let letters = dead.list(&tag, "one-group", 10).await.unwrap();
    assert_eq!(letters[0].envelope().map(|raw| raw.event_id), Some(poison));
    assert_eq!(letters[0].stream, config.keys().stream(&tag));

    // The inspector lists each partition's stream, the group on it, and the dead letters.
    let status = Inspector::new(config.clone())
        .unwrap()
        .status()
        .await
        .unwrap();
    let categories: BTreeSet<&str> = status.streams.iter().map(|s| s.category.as_str()).collect();
    for p in 0..4 {
        assert!(
            categories.contains(format!("cart#{p}").as_str()),
            "{categories:?}"
        );
    }
    assert!(
        status
            .streams
            .iter()
            .filter(|s| s.category.starts_with("cart#"))
            .all(|s| s.groups.iter().any(|g| g.group == "one-group"))
    );
    let stats = handle.shutdown().await.unwrap();
    assert_eq!(stats.handled, results.len() as u64 - 1);
    assert!(seen.lock().unwrap().values().all(|count| *count == 1));
    // Leases are given up at shutdown.
    let mut conn = server.connection().await;
    for p in 0..4 {
        let owner: Option<String> = conn
            .get(config.keys().owner(&Keys::tag("cart", p, 4), "one-group"))
            .await
            .unwrap();
        assert_eq!(owner, None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_consumers_partitions_are_taken_over_with_their_pending_entries() {
    init_tracing();
    let server = RedisServer::start();
    let config = partitioned(config(&server, "kill"), 4).unwrap();
    let keys = config.keys();
    let settings = |consumer: &str| WorkerSettings {
        url: server.url(),
        counter_url: server.url(),
        prefix: "kill".into(),
        group: "kill-group".into(),
        consumer: consumer.into(),
        counters: "kill-records".into(),
        partitions: 4,
        lease_ms: 1000,
    };
    let exe = env!("CARGO_BIN_EXE_redis-partition-worker");
    let mut first = Worker::spawn(exe, &settings("first"));
    let second = Worker::spawn(exe, &settings("second"));
    let mut conn = server.connection().await;
    let owners = |conn: &redis::aio::MultiplexedConnection| {
        let mut conn = conn.clone();
        let keys = keys.clone();
        async move {
            let mut owners: HashMap<String, usize> = HashMap::new();
            for category in CATEGORIES {
                for p in 0..4 {
                    let owner: Option<String> = conn
                        .get(keys.owner(&Keys::tag(category, p, 4), "kill-group"))
                        .await
                        .unwrap();
                    *owners.entry(owner.unwrap_or_default()).or_default() += 1;
                }
            }
            owners
        }
    };
    eventually("the workers share the partitions", WAIT, || async {
        let owners = owners(&conn).await;
        owners.get("first") == Some(&12) && owners.get("second") == Some(&12)
    })
    .await;

    const EVENTS: usize = 3000;
    const ENTITIES: usize = 10;
    let emitter = Emitter::new("kill-test", RedisTransport::new(config.clone()).unwrap());
    let mut steps = HashMap::new();
    let mut ids = Vec::new();
    for chunk in (0..EVENTS).collect::<Vec<_>>().chunks(500) {
        let mut batch = EmitBatch::new();
        for i in chunk {
            let (category, entity) = (i % 6, format!("k{}", (i / 6) % ENTITIES));
            let seq = steps.entry((category, entity.clone())).or_insert(0u64);
            ids.push(push_step(&mut batch, category, &entity, *seq).unwrap());
            *seq += 1;
        }
        emitter.emit_batch(batch).await.unwrap();
    }
    let handled_keys: Vec<String> = ids
        .iter()
        .map(|id| handled_key("kill-records", &id.to_string()))
        .collect();
    let count_handled = |conn: &redis::aio::MultiplexedConnection| {
        let mut conn = conn.clone();
        let handled_keys = handled_keys.clone();
        async move {
            let mut handled = 0;
            for chunk in handled_keys.chunks(1000) {
                let counts: Vec<Option<u64>> = conn.mget(chunk).await.unwrap();
                handled += counts.iter().filter(|c| c.is_some()).count();
            }
            handled
        }
    };
    eventually("some events are handled", WAIT, || async {
        count_handled(&conn).await >= EVENTS / 10
    })
    .await;
    first.sigkill();
    let pending_of_first = || {
        let mut conn = conn.clone();
        let keys = keys.clone();
        async move {
            let mut pending = 0;
            for category in CATEGORIES {
                for p in 0..4 {
                    let reply: redis::Value = redis::cmd("XPENDING")
                        .arg(keys.stream(&Keys::tag(category, p, 4)))
                        .arg("kill-group")
                        .arg("-")
                        .arg("+")
                        .arg(1000)
                        .arg("first")
                        .query_async(&mut conn)
                        .await
                        .unwrap();
                    if let redis::Value::Array(rows) = reply {
                        pending += rows.len();
                    }
                }
            }
            pending
        }
    };
    assert!(
        count_handled(&conn).await < EVENTS && pending_of_first().await > 0,
        "the first worker died with entries pending"
    );

    eventually("the second worker holds every partition", WAIT, || async {
        owners(&conn).await.get("second") == Some(&24)
    })
    .await;
    eventually("every event is handled", WAIT, || async {
        count_handled(&conn).await == EVENTS
    })
    .await;
    assert_eq!(
        pending_of_first().await,
        0,
        "its pending entries were taken over"
    );
    second.stop();
    // At least once (a handler the kill interrupted after its effect may run again), and each
    // entity's steps in order: repeats only of a step directly before the next.
    for chunk in handled_keys.chunks(1000) {
        let counts: Vec<Option<u64>> = conn.mget(chunk).await.unwrap();
        assert!(
            counts.iter().all(|c| matches!(c, Some(1..=2))),
            "{counts:?}"
        );
    }
    for ((category, entity), emitted) in &steps {
        let mut ran: Vec<u64> = conn
            .lrange(
                order_key("kill-records", CATEGORIES[*category], entity),
                0,
                -1,
            )
            .await
            .unwrap();
        ran.dedup();
        assert_eq!(
            ran,
            (0..*emitted).collect::<Vec<_>>(),
            "{category} {entity}"
        );
    }
}
