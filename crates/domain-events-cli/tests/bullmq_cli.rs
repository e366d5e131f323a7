//! `emit` and `tail` with `--transport bullmq`, run as a user would, against a private
//! `redis-server` per test. (Node.js BullMQ reading these jobs is tested in
//! `tests/tests/bullmq_interop.rs`.)

mod support;

use std::collections::HashMap;
use std::process::Output;

use serde_json::{Value, json};
use support::{SHOP, Setup, stderr};

impl Setup {
    fn emit(&self, order: &str, extra: &[&str]) -> Output {
        let payload = json!({"orderId": order, "total": 1250}).to_string();
        let mut args = vec![
            "emit",
            "--transport",
            "bullmq",
            "--source",
            "cli-test",
            "--type",
            "shop:order_placed",
            "--payload",
            &payload,
        ];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    fn hash(&self, key: &str) -> HashMap<String, String> {
        redis::cmd("HGETALL")
            .arg(key)
            .query(&mut self.conn())
            .expect("HGETALL")
    }

    fn list(&self, key: &str) -> Vec<String> {
        redis::cmd("LRANGE")
            .arg(key)
            .arg(0)
            .arg(-1)
            .query(&mut self.conn())
            .expect("LRANGE")
    }
}

/// The JSON lines of a successful run.
fn json_lines(output: &Output) -> Vec<Value> {
    assert!(output.status.success(), "{}", stderr(output));
    String::from_utf8(output.stdout.clone())
        .expect("UTF-8 output")
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

#[test]
fn emit_over_bullmq_adds_one_job_per_key_and_reports_the_duplicate() {
    let setup = Setup::new(SHOP);
    let first = json_lines(&setup.emit("o-1", &[]));
    assert_eq!(first.len(), 1);
    let first = &first[0];
    assert_eq!(first["type"], "shop:order_placed");
    assert_eq!(first["idempotencyKey"], "order_placed:o-1");
    assert_eq!(first["duplicate"], false);

    // The job of docs/contract.md section 5.
    let job = setup.hash("bull:DOMAIN_EVENTS:ik-order_placed%3Ao-1");
    assert_eq!(job["name"], "shop:order_placed");
    let data: Value = serde_json::from_str(&job["data"]).expect("data is JSON");
    assert_eq!(data["eventId"], first["eventId"]);
    assert_eq!(data["type"], "shop:order_placed");
    assert_eq!(data["idempotencyKey"], "order_placed:o-1");
    assert_eq!(data["payload"], json!({"orderId": "o-1", "total": 1250}));
    let opts: Value = serde_json::from_str(&job["opts"]).expect("opts are JSON");
    assert_eq!(opts["jobId"], "ik-order_placed%3Ao-1");
    assert_eq!(opts["removeOnComplete"], json!({"age": 86_400}));
    assert_eq!(
        setup.list("bull:DOMAIN_EVENTS:wait"),
        vec!["ik-order_placed%3Ao-1"]
    );

    let again = json_lines(&setup.emit("o-1", &[]));
    assert_eq!(again[0]["duplicate"], true);
    assert_eq!(again[0]["existingEventId"], first["eventId"]);
    assert_ne!(again[0]["eventId"], first["eventId"]);
    assert_eq!(
        setup.list("bull:DOMAIN_EVENTS:wait").len(),
        1,
        "no second job"
    );
}

#[test]
fn emit_over_bullmq_uses_the_queue_and_prefix_given() {
    let setup = Setup::new(SHOP);
    json_lines(&setup.emit("o-1", &["--queue", "orders", "--bullmq-prefix", "{shop}"]));
    let job = setup.hash("{shop}:orders:ik-order_placed%3Ao-1");
    assert_eq!(job["name"], "shop:order_placed");
    assert!(
        setup
            .hash("bull:DOMAIN_EVENTS:ik-order_placed%3Ao-1")
            .is_empty()
    );
}

#[test]
fn bullmq_options_need_the_bullmq_transport() {
    let setup = Setup::new(SHOP);
    let payload = json!({"orderId": "o-1", "total": 1}).to_string();
    let output = setup.run(&[
        "emit",
        "--source",
        "cli-test",
        "--type",
        "shop:order_placed",
        "--payload",
        &payload,
        "--queue",
        "orders",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("apply only with `--transport bullmq`"),
        "{}",
        stderr(&output)
    );
    let output = setup.run(&["tail", "--group", "g", "--bullmq-prefix", "x"]);
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn tail_over_bullmq_prints_each_jobs_envelope_and_stops_after_count() {
    let setup = Setup::new(SHOP);
    let mut emitted = Vec::new();
    for order in ["o-1", "o-2", "o-3"] {
        emitted.push(json_lines(&setup.emit(order, &[]))[0]["eventId"].clone());
    }
    let lines = json_lines(&setup.run(&[
        "tail",
        "--transport",
        "bullmq",
        "--group",
        "debug",
        "--count",
        "2",
    ]));
    assert_eq!(lines.len(), 2, "{lines:?}");
    for (line, (event_id, order)) in lines.iter().zip(emitted.iter().zip(["o-1", "o-2"])) {
        assert_eq!(&line["eventId"], event_id, "queue order: {line}");
        assert_eq!(line["type"], "shop:order_placed");
        assert_eq!(line["payload"], json!({"orderId": order, "total": 1250}));
    }
    // The two printed jobs completed (done records of group `debug` written); the third waits.
    assert_eq!(
        setup.list("bull:DOMAIN_EVENTS:wait"),
        vec!["ik-order_placed%3Ao-3"]
    );
    let done: Option<String> = redis::cmd("GET")
        .arg("domain-events:{shop}:done:debug:order_placed:o-1")
        .query(&mut setup.conn())
        .expect("GET");
    assert_eq!(done.as_deref(), emitted[0].as_str());

    // The next tail prints the rest.
    let rest = json_lines(&setup.run(&[
        "tail",
        "--transport",
        "bullmq",
        "--group",
        "debug",
        "--count",
        "1",
    ]));
    assert_eq!(rest[0]["eventId"], emitted[2]);
}

#[test]
fn an_unreachable_redis_is_reported_without_the_password() {
    let setup = Setup::new(SHOP);
    let url = format!("redis://:t0psecret@127.0.0.1:{}", setup.redis.port());
    let payload = json!({"orderId": "o-1", "total": 1}).to_string();
    let output = setup.run(&[
        "emit",
        "--transport",
        "bullmq",
        "--redis",
        &url,
        "--source",
        "cli-test",
        "--type",
        "shop:order_placed",
        "--payload",
        &payload,
    ]);
    assert_eq!(output.status.code(), Some(1));
    let shown = stderr(&output);
    assert!(!shown.contains("t0psecret"), "{shown}");
    assert!(shown.contains("cannot emit `shop:order_placed`"), "{shown}");

    let output = setup.run(&[
        "tail",
        "--transport",
        "bullmq",
        "--redis",
        &url,
        "--group",
        "g",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        !stderr(&output).contains("t0psecret"),
        "{}",
        stderr(&output)
    );
}
