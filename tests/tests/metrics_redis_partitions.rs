//! The Redis collector's gauges of a partitioned category, against a real `redis-server`: one
//! series per partition, labelled with the category's name and the partition's number, with
//! each partition's own length, lag, pending entries and dead letters; an unpartitioned category
//! beside it keeps its labels without `partition`.

use std::collections::BTreeMap;

use domain_events::metrics as names;
use domain_events::{EmitBatch, Emitter};
use domain_events_redis::metrics::Collector;
use domain_events_redis::{Keys, RedisConfig, RedisTransport, partition_of};
use domain_events_tests::partitioned::{CartStepPayload, DeviceStepPayload, DomainEvent, Step};
use domain_events_tests::prometheus_text::{only, samples};
use domain_events_tests::redis_server::RedisServer;
use domain_events_tests::redis_worker::init_tracing;

const PARTITIONS: u32 = 4;
const GROUP: &str = "reader";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_pending_and_dead_letters_are_reported_per_partition() {
    init_tracing();
    let handle = domain_events_prometheus::install_recorder().unwrap();
    let server = RedisServer::start();
    // `cart` in four partitions, `device` in one.
    let config = RedisConfig::new(&server.url())
        .unwrap()
        .key_prefix("pm")
        .partitions::<DomainEvent>("cart", PARTITIONS)
        .unwrap();
    let keys = config.keys();
    let stream = |p: u32| keys.stream(&Keys::tag("cart", p, PARTITIONS));

    let emitter = Emitter::new("metrics-test", RedisTransport::new(config.clone()).unwrap());
    let mut batch = EmitBatch::new();
    let mut lengths: BTreeMap<u32, u64> = (0..PARTITIONS).map(|p| (p, 0)).collect();
    for entity in 0..24 {
        let entity = format!("e{entity}");
        batch.push(CartStepPayload::new(&entity, 0)).unwrap();
        *lengths
            .entry(partition_of(&entity, PARTITIONS))
            .or_default() += 1;
    }
    for entity in 0..3 {
        batch
            .push(DeviceStepPayload::new(&format!("d{entity}"), 0))
            .unwrap();
    }
    let emitted = emitter.emit_batch(batch).await.unwrap();
    assert!(emitted.iter().all(|e| e.published()));
    assert!(
        lengths.values().all(|length| *length >= 3),
        "every partition holds a few events: {lengths:?}"
    );

    // Group `reader` on every partition: it handled all of partition 0, took two entries of
    // partition 1 without acknowledging them, and has not read partitions 2 and 3 yet.
    let mut conn = server.connection().await;
    for p in 0..PARTITIONS {
        let _: () = redis::cmd("XGROUP")
            .arg(&["CREATE", &stream(p), GROUP, "0"][..])
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    let reader = conn.clone();
    let read = |p: u32, count: u64| {
        let mut conn = reader.clone();
        let stream = stream(p);
        async move {
            let reply: redis::streams::StreamReadReply = redis::cmd("XREADGROUP")
                .arg(&["GROUP", GROUP, "reader-1", "COUNT"][..])
                .arg(count)
                .arg(&["STREAMS", &stream, ">"][..])
                .query_async(&mut conn)
                .await
                .unwrap();
            let ids: Vec<String> = reply
                .keys
                .into_iter()
                .flat_map(|key| key.ids.into_iter().map(|entry| entry.id))
                .collect();
            assert_eq!(ids.len() as u64, count, "partition {p}");
            ids
        }
    };
    let handled = read(0, lengths[&0]).await;
    let _: u64 = redis::cmd("XACK")
        .arg(stream(0))
        .arg(GROUP)
        .arg(&handled)
        .query_async(&mut conn)
        .await
        .unwrap();
    read(1, 2).await;
    // And a dead letter in partition 3.
    let _: String = redis::cmd("XADD")
        .arg(keys.dlq(&Keys::tag("cart", 3, PARTITIONS), GROUP))
        .arg("*")
        .arg(&["stream", &stream(3), "entryId", "1-1", "group", GROUP][..])
        .arg(&["reason", "handler failed", "deliveries", "5", "event", "{}"][..])
        .query_async(&mut conn)
        .await
        .unwrap();

    Collector::new(config).unwrap().collect().await.unwrap();
    let text = handle.render();

    let expected_lag = |p: u32| match p {
        0 => 0,
        1 => lengths[&1] - 2,
        _ => lengths[&p],
    };
    for p in 0..PARTITIONS {
        let partition = p.to_string();
        let key = stream(p);
        let group = [
            ("category", "cart"),
            ("partition", partition.as_str()),
            ("stream", key.as_str()),
            ("group", GROUP),
        ];
        assert_eq!(
            only(&text, names::STREAM_LENGTH, &group[..3]),
            lengths[&p] as f64,
            "partition {p}\n{text}"
        );
        assert_eq!(
            only(&text, names::CONSUMER_LAG, &group),
            expected_lag(p) as f64,
            "partition {p}\n{text}"
        );
        assert_eq!(
            only(&text, names::CONSUMER_PENDING, &group),
            if p == 1 { 2.0 } else { 0.0 },
            "partition {p}\n{text}"
        );
        assert_eq!(
            only(&text, names::CONSUMERS, &group),
            if p <= 1 { 1.0 } else { 0.0 },
            "partition {p}"
        );
    }
    assert_eq!(
        only(
            &text,
            names::DEAD_LETTERS,
            &[("category", "cart"), ("partition", "3"), ("group", GROUP)]
        ),
        1.0
    );

    // Per category, the partitions add up (as `sum by (category)` would); no series names a
    // partition's hash tag as its category; the unpartitioned category has no `partition`.
    let all = samples(&text);
    let cart_lag: f64 = all
        .iter()
        .filter(|s| s.name == names::CONSUMER_LAG && s.labels["category"] == "cart")
        .map(|s| s.value)
        .sum();
    assert_eq!(
        cart_lag,
        (0..PARTITIONS).map(expected_lag).sum::<u64>() as f64
    );
    assert!(
        all.iter()
            .all(|s| !s.labels.get("category").is_some_and(|c| c.contains('#'))),
        "{text}"
    );
    let device: Vec<_> = all
        .iter()
        .filter(|s| s.labels.get("category").is_some_and(|c| c == "device"))
        .collect();
    assert!(!device.is_empty(), "{text}");
    assert!(
        device.iter().all(|s| !s.labels.contains_key("partition")),
        "{text}"
    );
    assert_eq!(
        only(
            &text,
            names::STREAM_LENGTH,
            &[("category", "device"), ("stream", "pm:{device}")]
        ),
        3.0
    );
}
