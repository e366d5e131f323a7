//! Partitioned categories on a real local Redis Cluster (three masters, three replicas; see
//! `tests/redis_cluster.rs`): 20,000 events over six categories of four partitions each, consumed
//! by two worker processes of one group at concurrency 1 (`redis-partition-worker`), the second
//! joining while the first holds every partition. Each event is handled exactly once, and the
//! steps of each entity (one correlation id) run in the order they were emitted. The handlers
//! record their runs in a separate plain Redis.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use domain_events::{EmitBatch, Emitter, Uuid};
use domain_events_redis::{Keys, RedisConfig, RedisTransport, partition_of};
use domain_events_tests::partitioned::{
    CATEGORIES, Worker, WorkerSettings, handled_key, order_key, partitioned, push_step,
};
use domain_events_tests::redis_cluster::RedisCluster;
use domain_events_tests::redis_server::RedisServer;
use domain_events_tests::redis_worker::{eventually, init_tracing};
use redis::AsyncCommands;

const WAIT: Duration = Duration::from_secs(240);
const PREFIX: &str = "parts";
const GROUP: &str = "partition-group";
const COUNTERS: &str = "parts-test";
const PARTITIONS: u32 = 4;
const EVENTS: usize = 20_000;
/// Entities per category; each gets its steps in order.
const ENTITIES: usize = 40;
const BATCH: usize = 500;

/// How many partitions each consumer holds, from the lease keys.
async fn owners(cluster: &RedisCluster, keys: &Keys) -> BTreeMap<String, usize> {
    let mut conn = cluster.connection().await;
    let mut owners = BTreeMap::new();
    for category in CATEGORIES {
        for p in 0..PARTITIONS {
            let tag = Keys::tag(category, p, PARTITIONS);
            let owner: Option<String> = conn.get(keys.owner(&tag, GROUP)).await.unwrap();
            *owners.entry(owner.unwrap_or_default()).or_default() += 1;
        }
    }
    owners
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_events_in_six_categories_of_four_partitions_are_handled_once_in_order_by_two_processes()
 {
    init_tracing();
    let cluster = RedisCluster::start();
    let counters = RedisServer::start();
    let config = partitioned(
        RedisConfig::new(&cluster.url()).unwrap().key_prefix(PREFIX),
        PARTITIONS,
    )
    .unwrap();
    let keys = config.keys();
    // The 24 partition streams have their own hash tags and spread over every master.
    let masters: BTreeSet<u16> = CATEGORIES
        .iter()
        .flat_map(|category| {
            (0..PARTITIONS)
                .map(|p| cluster.master_of(&keys.stream(&Keys::tag(category, p, PARTITIONS))))
        })
        .collect();
    assert_eq!(masters.len(), 3, "the partitions spread over every master");

    // Steps in emission order: event i is of category i % 6, of one of its entities.
    let mut next_seq: HashMap<(usize, usize), u64> = HashMap::new();
    let steps: Vec<(usize, String, u64)> = (0..EVENTS)
        .map(|i| {
            let category = i % CATEGORIES.len();
            let entity = (i / CATEGORIES.len()) % ENTITIES;
            let seq = next_seq.entry((category, entity)).or_default();
            let step = (category, format!("entity-{entity}"), *seq);
            *seq += 1;
            step
        })
        .collect();
    let emitter = Emitter::new(
        "partition-test",
        RedisTransport::new(config.clone()).unwrap(),
    );
    let mut event_ids: Vec<Uuid> = Vec::with_capacity(EVENTS);
    let emit = |range: std::ops::Range<usize>| {
        let emitter = emitter.clone();
        let steps = &steps;
        async move {
            let mut ids = Vec::new();
            for chunk in steps[range].chunks(BATCH) {
                let mut batch = EmitBatch::new();
                for (category, entity, seq) in chunk {
                    push_step(&mut batch, *category, entity, *seq).unwrap();
                }
                let results = emitter.emit_batch(batch).await.unwrap();
                assert!(results.iter().all(|r| r.published()), "{results:?}");
                ids.extend(results.iter().map(|r| r.event_id));
            }
            ids
        }
    };

    // The first worker alone takes every partition, then the second joins while half the events
    // wait: the first gives half its partitions up and the second takes them over.
    let worker = |name: &str| WorkerSettings {
        url: cluster.url(),
        counter_url: counters.url(),
        prefix: PREFIX.into(),
        group: GROUP.into(),
        consumer: name.into(),
        counters: COUNTERS.into(),
        partitions: PARTITIONS,
        lease_ms: 1500,
    };
    let first = Worker::spawn(
        env!("CARGO_BIN_EXE_redis-partition-worker"),
        &worker("first"),
    );
    event_ids.extend(emit(0..EVENTS / 2).await);
    eventually("the first worker holds every partition", WAIT, || async {
        owners(&cluster, &keys).await.get("first") == Some(&24)
    })
    .await;
    let second = Worker::spawn(
        env!("CARGO_BIN_EXE_redis-partition-worker"),
        &worker("second"),
    );
    event_ids.extend(emit(EVENTS / 2..EVENTS).await);
    eventually(
        "the workers hold half the partitions each",
        WAIT,
        || async {
            let owners = owners(&cluster, &keys).await;
            owners.get("first") == Some(&12) && owners.get("second") == Some(&12)
        },
    )
    .await;

    // Each event is recorded once.
    let mut conn = counters.connection().await;
    let handled_keys: Vec<String> = event_ids
        .iter()
        .map(|id| handled_key(COUNTERS, &id.to_string()))
        .collect();
    eventually("every event is handled", WAIT, || {
        let mut conn = conn.clone();
        let handled_keys = &handled_keys;
        async move {
            for chunk in handled_keys.chunks(1000) {
                let counts: Vec<Option<u64>> = conn.mget(chunk).await.unwrap();
                if counts.iter().any(Option::is_none) {
                    return false;
                }
            }
            true
        }
    })
    .await;
    let handled_first = first.stop();
    let handled_second = second.stop();
    assert!(
        handled_first > 0 && handled_second > 0,
        "both workers handled events"
    );
    assert_eq!(handled_first + handled_second, EVENTS as u64);
    for chunk in handled_keys.chunks(1000) {
        let counts: Vec<Option<u64>> = conn.mget(chunk).await.unwrap();
        assert!(
            counts.iter().all(|count| *count == Some(1)),
            "each event exactly once"
        );
    }
    let recorded: Vec<String> = conn.keys(format!("{COUNTERS}:handled:*")).await.unwrap();
    assert_eq!(recorded.len(), EVENTS, "no other event was handled");

    // Each entity's steps ran in the order they were emitted; each category's entities landed in
    // the partitions their correlation ids give.
    for (index, category) in CATEGORIES.iter().enumerate() {
        for entity in 0..ENTITIES {
            let entity = format!("entity-{entity}");
            let ran: Vec<u64> = conn
                .lrange(order_key(COUNTERS, category, &entity), 0, -1)
                .await
                .unwrap();
            let emitted = next_seq[&(index, entity.trim_start_matches("entity-").parse().unwrap())];
            assert_eq!(ran, (0..emitted).collect::<Vec<_>>(), "{category} {entity}");
        }
    }
    let mut cluster_conn = cluster.connection().await;
    for (index, category) in CATEGORIES.iter().enumerate() {
        for p in 0..PARTITIONS {
            let tag = Keys::tag(category, p, PARTITIONS);
            let len: usize = cluster_conn.xlen(keys.stream(&tag)).await.unwrap();
            let expected = steps
                .iter()
                .filter(|(c, entity, _)| *c == index && partition_of(entity, PARTITIONS) == p)
                .count();
            assert_eq!(len, expected, "{tag}");
        }
        let single: bool = cluster_conn.exists(keys.stream(category)).await.unwrap();
        assert!(!single, "no unpartitioned stream of {category}");
    }
}
