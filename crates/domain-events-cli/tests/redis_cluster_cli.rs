//! `emit`, `tail`, `dlq list` and `status` with `--redis redis+cluster://...`, against a private
//! local Redis Cluster (three masters, three replicas); and `emit`, `tail` and `dlq` on a category
//! partitioned over the masters.

mod support;

use std::collections::BTreeSet;
use std::process::{Command, Output, Stdio};

use domain_events::{EmitBatch, Emitter};
use domain_events_redis::{Keys, RedisConfig, RedisTransport, partition_of};
use domain_events_tests::partitioned::{CartStepPayload, Step, partitioned};
use domain_events_tests::redis_cluster::RedisCluster;
use serde_json::{Value, json};
use support::{SHOP, finish, json_lines, stderr, stdout};

const STREAM: &str = "domain-events:{shop}";

/// Runs the binary with `args` and `--redis <cluster URL>` in `dir` (holding `schemas/`).
fn run(dir: &std::path::Path, cluster: &RedisCluster, args: &[&str]) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_domain-events"))
        .args(args)
        .arg("--redis")
        .arg(cluster.url())
        .current_dir(dir)
        .env_remove("DOMAIN_EVENTS_REDIS_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    finish(child)
}

#[test]
fn emit_tail_dlq_and_status_work_on_a_cluster() {
    let cluster = RedisCluster::start();
    let dir = tempfile::tempdir().expect("a temporary folder");
    std::fs::create_dir(dir.path().join("schemas")).expect("the schema folder");
    std::fs::write(dir.path().join("schemas/shop.toml"), SHOP).expect("the schema file");

    let emit = |order: &str| {
        let payload = json!({"orderId": order, "total": 12}).to_string();
        let args = [
            "emit",
            "--source",
            "cli",
            "--type",
            "shop:order_placed",
            "--payload",
            &payload,
        ];
        json_lines(&run(dir.path(), &cluster, &args))
    };
    let first = emit("o-1");
    assert_eq!(first.len(), 1);
    assert_eq!(first[0]["duplicate"], false, "{first:?}");
    let again = emit("o-1");
    assert_eq!(
        again[0]["duplicate"], true,
        "the claim holds on the cluster: {again:?}"
    );

    // A poison entry ahead of a good event: tail dead-letters it and prints the event.
    let mut node = cluster.node_connection(cluster.master_of(STREAM));
    let _: String = redis::cmd("XADD")
        .arg(STREAM)
        .arg("*")
        .arg("type")
        .arg("shop:order_placed")
        .arg("event")
        .arg("not json")
        .query(&mut node)
        .expect("XADD");
    emit("o-2");
    let tailed = json_lines(&run(
        dir.path(),
        &cluster,
        &["tail", "--group", "audit", "--count", "2"],
    ));
    let keys: Vec<&str> = tailed
        .iter()
        .map(|event| event["idempotencyKey"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(keys, ["order_placed:o-1", "order_placed:o-2"]);

    let letters = json_lines(&run(
        dir.path(),
        &cluster,
        &["dlq", "list", "--group", "audit"],
    ));
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["stream"], STREAM);
    assert_eq!(letters[0]["eventText"], "not json");

    let status = run(dir.path(), &cluster, &["status", "--json"]);
    assert!(status.status.success(), "{}", stderr(&status));
    let status: Value = serde_json::from_str(&stdout(&status)).expect("status JSON");
    assert_eq!(status["streams"][0]["stream"], STREAM, "{status}");
    assert_eq!(status["streams"][0]["length"], 3, "{status}");
}

#[test]
fn emit_tail_and_dlq_work_on_a_partitioned_category_on_a_cluster() {
    const PARTITIONS: u32 = 4;
    let cluster = RedisCluster::start();
    let dir = tempfile::tempdir().expect("a temporary folder");
    let schemas = format!(
        "{}/../../tests/schemas/partitioned",
        env!("CARGO_MANIFEST_DIR")
    );
    let keys = Keys::new("domain-events");
    let stream = |p: u32| keys.stream(&Keys::tag("cart", p, PARTITIONS));
    let masters: BTreeSet<u16> = (0..PARTITIONS)
        .map(|p| cluster.master_of(&stream(p)))
        .collect();
    assert!(masters.len() > 1, "the partitions are on several masters");
    let xlen = |p: u32| -> i64 {
        redis::cmd("XLEN")
            .arg(stream(p))
            .query(&mut cluster.node_connection(cluster.master_of(&stream(p))))
            .expect("XLEN")
    };
    let with_schemas = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--schemas", &schemas]);
        run(dir.path(), &cluster, &all)
    };

    // A service records the count with one event of each of four entities.
    let service: Vec<String> = (0..4).map(|i| format!("s{i}")).collect();
    tokio::runtime::Runtime::new()
        .expect("a Tokio runtime")
        .block_on(async {
            let config = partitioned(RedisConfig::new(&cluster.url()).expect("a URL"), PARTITIONS)
                .expect("cart can be partitioned");
            let emitter = Emitter::new("service", RedisTransport::new(config).expect("transport"));
            let mut batch = EmitBatch::new();
            for entity in &service {
                batch.push(CartStepPayload::new(entity, 0)).expect("valid");
            }
            let results = emitter.emit_batch(batch).await.expect("emitted");
            assert!(results.iter().all(|r| r.published()));
        });

    // The tool's events land in the partitions the library picks, on their masters.
    let tool: Vec<String> = (0..8).map(|i| format!("t{i}")).collect();
    for entity in &tool {
        let payload = json!({"entity": entity, "seq": 1}).to_string();
        let line = json_lines(&with_schemas(&[
            "emit",
            "--source",
            "cli",
            "--type",
            "cart:step",
            "--payload",
            &payload,
        ]));
        assert_eq!(line[0]["duplicate"], false, "{line:?}");
    }
    for p in 0..PARTITIONS {
        let expected = service
            .iter()
            .chain(&tool)
            .filter(|entity| partition_of(entity, PARTITIONS) == p)
            .count();
        assert_eq!(xlen(p), expected as i64, "partition {p}");
    }

    // A poison entry in partition 1, then an event after it there: tail prints all 13 events and
    // dead-letters the poison in partition 1, where `dlq list` finds it.
    let mut node = cluster.node_connection(cluster.master_of(&stream(1)));
    let _: String = redis::cmd("XADD")
        .arg(stream(1))
        .arg("*")
        .arg("type")
        .arg("cart:step")
        .arg("event")
        .arg("not json")
        .query(&mut node)
        .expect("XADD");
    let late = (0..50)
        .map(|i| format!("late{i}"))
        .find(|e| partition_of(e, PARTITIONS) == 1)
        .expect("an entity of partition 1");
    let payload = json!({"entity": late, "seq": 1}).to_string();
    json_lines(&with_schemas(&[
        "emit",
        "--source",
        "cli",
        "--type",
        "cart:step",
        "--payload",
        &payload,
    ]));
    let tailed = json_lines(&with_schemas(&[
        "tail",
        "--group",
        "audit",
        "--category",
        "cart",
        "--count",
        "13",
    ]));
    let keys: BTreeSet<&str> = tailed
        .iter()
        .map(|event| event["idempotencyKey"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(keys.len(), 13, "{keys:?}");
    let letters = json_lines(&with_schemas(&[
        "dlq",
        "list",
        "--group",
        "audit",
        "--category",
        "cart",
    ]));
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["partition"], 1);
    assert_eq!(letters[0]["stream"], stream(1));
    assert_eq!(letters[0]["eventText"], "not json");
    let id = letters[0]["id"].as_str().expect("an id").to_owned();
    let deleted = json_lines(&with_schemas(&[
        "dlq",
        "delete",
        "--group",
        "audit",
        "--category",
        "cart",
        "--id",
        &id,
    ]));
    assert_eq!(deleted[0]["deleted"], true, "{deleted:?}");
    assert!(
        json_lines(&with_schemas(&[
            "dlq",
            "list",
            "--group",
            "audit",
            "--category",
            "cart"
        ]))
        .is_empty()
    );
}
