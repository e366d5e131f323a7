//! `emit`, `tail`, `dlq list` and `status` with `--redis redis+cluster://...`, against a private
//! local Redis Cluster (three masters, three replicas).

mod support;

use std::process::{Command, Output, Stdio};

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
