//! `emit`, `tail` and `dlq` on a partitioned category (docs/contract.md sections 4.1 and 4.6),
//! against a private `redis-server` per test: the services' producers (the library, configured
//! with 4 partitions) record the count, and the tool follows it with nothing to configure. The
//! schema folder is that of the partition tests, `tests/schemas/partitioned`.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Output;

use domain_events::{EmitBatch, Emitter, Uuid};
use domain_events_redis::{Keys, RedisConfig, RedisTransport, partition_of};
use domain_events_tests::partitioned::{CartStepPayload, Step, partitioned};
use serde_json::{Value, json};
use support::{SHOP, Setup, json_lines, stderr};

const PARTITIONS: u32 = 4;

/// The partition tests' schema folder.
fn schemas() -> String {
    format!(
        "{}/../../tests/schemas/partitioned",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// The stream of partition `p` of `cart` under the default prefix.
fn stream(p: u32) -> String {
    Keys::new("domain-events").stream(&Keys::tag("cart", p, PARTITIONS))
}

/// The dead letters of `group` in partition `p` of `cart`.
fn dlq(p: u32, group: &str) -> String {
    Keys::new("domain-events").dlq(&Keys::tag("cart", p, PARTITIONS), group)
}

impl Setup {
    /// Runs the binary with `args` and `--schemas` the partition tests' folder.
    fn run_partitioned(&self, args: &[&str]) -> Output {
        let schemas = schemas();
        let mut all = args.to_vec();
        all.extend(["--schemas", &schemas]);
        self.run(&all)
    }

    /// Emits `cart:step` of `entity` number `seq` with the tool; its one JSON line.
    fn emit_step(&self, entity: &str, seq: u64) -> Value {
        let payload = json!({"entity": entity, "seq": seq}).to_string();
        let lines = json_lines(&self.run_partitioned(&[
            "emit",
            "--source",
            "cli-test",
            "--type",
            "cart:step",
            "--payload",
            &payload,
        ]));
        assert_eq!(lines.len(), 1, "{lines:?}");
        lines.into_iter().next().unwrap_or_default()
    }

    /// The eventId of every entry of `stream`, oldest first.
    fn event_ids(&self, stream: &str) -> Vec<String> {
        let entries: Vec<(String, BTreeMap<String, String>)> = redis::cmd("XRANGE")
            .arg(stream)
            .arg("-")
            .arg("+")
            .query(&mut self.conn())
            .expect("XRANGE");
        entries
            .into_iter()
            .map(|(_, fields)| {
                let event: Value = serde_json::from_str(&fields["event"]).expect("an envelope");
                event["eventId"].as_str().unwrap_or_default().to_owned()
            })
            .collect()
    }
}

/// Emits, as a service does with `cart` in [`PARTITIONS`] partitions, step 0 of each entity:
/// this records the partition count in Redis. The event ids, in order.
fn emit_as_a_service(setup: &Setup, entities: &[String]) -> Vec<Uuid> {
    let runtime = tokio::runtime::Runtime::new().expect("a Tokio runtime");
    runtime.block_on(async {
        let config = partitioned(
            RedisConfig::new(&setup.redis.url()).expect("a valid URL"),
            PARTITIONS,
        )
        .expect("cart can be partitioned");
        let emitter = Emitter::new("service", RedisTransport::new(config).expect("a transport"));
        let mut batch = EmitBatch::new();
        for entity in entities {
            batch
                .push(CartStepPayload::new(entity, 0))
                .expect("a valid payload");
        }
        let results = emitter.emit_batch(batch).await.expect("emitted");
        assert!(results.iter().all(|r| r.published()), "{results:?}");
        results.iter().map(|r| r.event_id).collect()
    })
}

fn entities(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix}{i}")).collect()
}

#[test]
fn emit_goes_to_the_partition_the_services_pick_and_tail_reads_every_partition() {
    let setup = Setup::new(SHOP);
    let service = entities("s", 8);
    let service_ids = emit_as_a_service(&setup, &service);

    // The tool's events: each in the partition of its correlation id, beside the services' own.
    let tool = entities("t", 12);
    let mut expected: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for (entity, id) in service.iter().zip(&service_ids) {
        expected
            .entry(partition_of(entity, PARTITIONS))
            .or_default()
            .push(id.to_string());
    }
    for entity in &tool {
        let line = setup.emit_step(entity, 1);
        assert_eq!(line["duplicate"], false, "{line}");
        assert_eq!(line["idempotencyKey"], format!("cart_step:{entity}:1"));
        expected
            .entry(partition_of(entity, PARTITIONS))
            .or_default()
            .push(line["eventId"].as_str().unwrap_or_default().to_owned());
    }
    assert!(
        expected.len() > 1,
        "the entities spread over partitions: {expected:?}"
    );
    for p in 0..PARTITIONS {
        assert_eq!(
            setup.event_ids(&stream(p)),
            expected.get(&p).cloned().unwrap_or_default(),
            "partition {p}"
        );
    }
    assert_eq!(
        setup.xlen("domain-events:{cart}"),
        0,
        "nothing on the unpartitioned stream"
    );

    // A key a service emitted is found in its partition: a duplicate naming the service's event.
    let again = setup.emit_step(&service[3], 0);
    assert_eq!(again["duplicate"], true, "{again}");
    assert_eq!(again["existingEventId"], service_ids[3].to_string());
    let total: i64 = (0..PARTITIONS).map(|p| setup.xlen(&stream(p))).sum();
    assert_eq!(total, 20);

    // Tail reads all 20 from the four partitions, and acknowledges every one.
    let output = setup.run_partitioned(&[
        "tail",
        "--group",
        "audit",
        "--category",
        "cart",
        "--count",
        "20",
    ]);
    let keys: BTreeSet<String> = json_lines(&output)
        .iter()
        .map(|event| {
            event["idempotencyKey"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    let wanted: BTreeSet<String> = service
        .iter()
        .map(|entity| format!("cart_step:{entity}:0"))
        .chain(tool.iter().map(|entity| format!("cart_step:{entity}:1")))
        .collect();
    assert_eq!(keys, wanted);
    let mut conn = setup.conn();
    for p in 0..PARTITIONS {
        let (pending, _, _, _): (i64, redis::Value, redis::Value, redis::Value) =
            redis::cmd("XPENDING")
                .arg(stream(p))
                .arg("audit")
                .query(&mut conn)
                .expect("XPENDING");
        assert_eq!(pending, 0, "partition {p}");
    }
}

/// Adds a dead letter holding the envelope of `cart:step` of `entity` to the dead letters of
/// `group` in partition `p`, as a consumer leaves it after its handler kept failing; its id.
fn add_dead_letter(setup: &Setup, p: u32, group: &str, entity: &str) -> String {
    let envelope = json!({
        "eventId": Uuid::now_v7().to_string(), "type": "cart:step", "version": 1,
        "occurredAt": "2026-12-07T17:04:05.123Z", "source": "service",
        "correlationId": entity, "causationId": null,
        "idempotencyKey": format!("cart_step:{entity}:9"),
        "payload": {"entity": entity, "seq": 9},
    });
    redis::cmd("XADD")
        .arg(dlq(p, group))
        .arg("*")
        .arg("stream")
        .arg(stream(p))
        .arg("entryId")
        .arg("1-1")
        .arg("group")
        .arg(group)
        .arg("reason")
        .arg("handler failed 5 times")
        .arg("deliveries")
        .arg(5)
        .arg("event")
        .arg(envelope.to_string())
        .query(&mut setup.conn())
        .expect("XADD to the dead letters")
}

#[test]
fn dlq_lists_replays_deletes_and_purges_the_dead_letters_of_every_partition() {
    let setup = Setup::new(SHOP);
    // An entity of a partition other than 0, and the services' events recording the count.
    let entity = entities("d", 50)
        .into_iter()
        .find(|e| partition_of(e, PARTITIONS) == 2)
        .expect("an entity of partition 2");
    let p = partition_of(&entity, PARTITIONS);
    emit_as_a_service(&setup, &entities("s", 4));

    // A poison entry in partition 2, then an event after it there: tail dead-letters the poison
    // in its partition before it prints that event (one at a time, in stream order), and prints
    // all five events.
    let poison_entry = setup.add_not_json(&stream(p));
    emit_as_a_service(&setup, std::slice::from_ref(&entity));
    let output = setup.run_partitioned(&[
        "tail",
        "--group",
        "billing",
        "--category",
        "cart",
        "--count",
        "5",
    ]);
    assert_eq!(json_lines(&output).len(), 5);
    assert!(
        stderr(&output).contains("1 entry of group `billing` could not be handled"),
        "{}",
        stderr(&output)
    );
    let letter = add_dead_letter(&setup, p, "billing", &entity);
    assert_eq!(setup.xlen(&dlq(p, "billing")), 2);

    // Listed with their partition, by category or from the whole schema folder alike.
    for args in [
        &["dlq", "list", "--group", "billing", "--category", "cart"][..],
        &["dlq", "list", "--group", "billing"][..],
    ] {
        let listed = json_lines(&setup.run_partitioned(args));
        assert_eq!(listed.len(), 2, "{args:?}: {listed:?}");
        for line in &listed {
            assert_eq!(line["category"], "cart", "{line}");
            assert_eq!(line["partition"], p, "{line}");
            assert_eq!(line["stream"], stream(p), "{line}");
        }
        assert_eq!(listed[0]["entryId"], poison_entry.as_str());
        assert_eq!(listed[0]["eventText"], "not json");
        assert_eq!(listed[1]["id"], letter.as_str());
        assert_eq!(listed[1]["event"]["correlationId"], entity.as_str());
    }
    // `<category>#<p>` narrows to one partition.
    let other = format!("cart#{}", (p + 1) % PARTITIONS);
    let listed = json_lines(&setup.run_partitioned(&[
        "dlq",
        "list",
        "--group",
        "billing",
        "--category",
        &other,
    ]));
    assert!(listed.is_empty(), "{listed:?}");
    let mine = format!("cart#{p}");
    let listed = json_lines(&setup.run_partitioned(&[
        "dlq",
        "list",
        "--group",
        "billing",
        "--category",
        &mine,
    ]));
    assert_eq!(listed.len(), 2, "{listed:?}");

    // Replayed by id onto its own partition's stream.
    let before = setup.xlen(&stream(p));
    let replayed = json_lines(&setup.run_partitioned(&[
        "dlq",
        "replay",
        "--group",
        "billing",
        "--category",
        "cart",
        "--id",
        &letter,
    ]));
    assert_eq!(replayed.len(), 1);
    assert_eq!(replayed[0]["category"], "cart");
    assert_eq!(replayed[0]["partition"], p);
    assert_eq!(replayed[0]["replayed"], 1);
    assert_eq!(setup.xlen(&stream(p)), before + 1);
    assert_eq!(setup.xlen(&dlq(p, "billing")), 1);

    // The poison dead letter cannot be replayed; it is deleted by id.
    let poison = json_lines(&setup.run_partitioned(&[
        "dlq",
        "list",
        "--group",
        "billing",
        "--category",
        "cart",
    ]));
    let poison_id = poison[0]["id"].as_str().expect("an id").to_owned();
    let deleted = json_lines(&setup.run_partitioned(&[
        "dlq",
        "delete",
        "--group",
        "billing",
        "--category",
        "cart",
        "--id",
        &poison_id,
    ]));
    assert_eq!(
        deleted,
        [
            json!({"category": "cart", "partition": p, "group": "billing", "id": poison_id, "deleted": true})
        ]
    );
    assert_eq!(setup.xlen(&dlq(p, "billing")), 0);

    // Replay and purge of all: one line per category, the partitions added up.
    add_dead_letter(&setup, p, "billing", &entity);
    add_dead_letter(&setup, 0, "billing", "zero");
    add_dead_letter(&setup, 0, "billing", "zero-too");
    let replayed = json_lines(&setup.run_partitioned(&[
        "dlq",
        "replay",
        "--group",
        "billing",
        "--category",
        "cart",
    ]));
    assert_eq!(
        replayed,
        [json!({"category": "cart", "group": "billing", "replayed": 3, "left": 0})]
    );
    assert_eq!(setup.xlen(&dlq(0, "billing")), 0);
    add_dead_letter(&setup, p, "billing", &entity);
    add_dead_letter(&setup, 3, "billing", "three");
    let refused =
        setup.run_partitioned(&["dlq", "purge", "--group", "billing", "--category", "cart"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains("cart: 2"), "{}", stderr(&refused));
    let purged = json_lines(&setup.run_partitioned(&[
        "dlq",
        "purge",
        "--group",
        "billing",
        "--category",
        "cart",
        "--yes",
    ]));
    assert_eq!(
        purged,
        [json!({"category": "cart", "group": "billing", "purged": 2})]
    );
    for q in 0..PARTITIONS {
        assert_eq!(setup.xlen(&dlq(q, "billing")), 0, "partition {q}");
    }
}

#[test]
fn a_recorded_count_the_schema_folder_cannot_be_partitioned_with_is_refused() {
    // `shop:order_placed` of this folder keys on `total` alone, without its correlation field.
    let setup = Setup::new(&SHOP.replace("order_placed:{orderId}", "order_placed:{total}"));
    let _: () = redis::cmd("SET")
        .arg("domain-events:{shop}:partitions")
        .arg(4)
        .query(&mut setup.conn())
        .expect("SET");
    let payload = json!({"orderId": "o-1", "total": 3}).to_string();
    let output = setup.run(&[
        "emit",
        "--source",
        "cli-test",
        "--type",
        "shop:order_placed",
        "--payload",
        &payload,
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("category `shop` cannot be partitioned")
            && stderr(&output).contains("`order_placed:{total}`"),
        "{}",
        stderr(&output)
    );
    for p in 0..4 {
        assert_eq!(setup.xlen(&format!("domain-events:{{shop#{p}}}")), 0);
    }
    assert_eq!(setup.xlen("domain-events:{shop}"), 0, "nothing emitted");
}

#[test]
fn an_id_in_two_partitions_is_refused_until_the_partition_is_named() {
    let setup = Setup::new(SHOP);
    emit_as_a_service(&setup, &entities("s", 2));
    for p in [0, 2] {
        let _: String = redis::cmd("XADD")
            .arg(dlq(p, "twin"))
            .arg("5-1")
            .arg("stream")
            .arg(stream(p))
            .arg("event")
            .arg("")
            .query(&mut setup.conn())
            .expect("XADD");
    }
    for action in ["delete", "replay"] {
        let output = setup.run_partitioned(&[
            "dlq",
            action,
            "--group",
            "twin",
            "--category",
            "cart",
            "--id",
            "5-1",
        ]);
        assert_eq!(output.status.code(), Some(1), "{action}");
        assert_eq!(
            stderr(&output),
            "error: dead letter `5-1` of group `twin` exists in categories `cart#0`, `cart#2`; \
             say which with --category (`<category>#<p>` names partition p)\n"
        );
    }
    let deleted = json_lines(&setup.run_partitioned(&[
        "dlq",
        "delete",
        "--group",
        "twin",
        "--category",
        "cart#2",
        "--id",
        "5-1",
    ]));
    assert_eq!(
        deleted,
        [
            json!({"category": "cart", "partition": 2, "group": "twin", "id": "5-1", "deleted": true})
        ]
    );
    assert_eq!(setup.xlen(&dlq(2, "twin")), 0);
    assert_eq!(setup.xlen(&dlq(0, "twin")), 1);
}
