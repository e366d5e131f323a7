//! `emit`, `tail` and `dlq` run as a user would, against a private `redis-server` per test.

mod support;

use std::collections::HashMap;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{RUN_LIMIT, Setup, finish, stderr, stdout};

/// The `shop` category of these tests: two events, one with an optional contact address.
const SHOP: &str = r#"category = "shop"
correlation = "orderId"

[events.order_placed]
idempotency_key = "order_placed:{orderId}"

[events.order_placed.fields]
orderId = { type = "string", min_length = 1 }
total   = "uint"
contact = "email?"

[events.order_shipped]
idempotency_key = "order_shipped:{orderId}:{attempt}"

[events.order_shipped.fields]
orderId = { type = "string", min_length = 1 }
attempt = "uint"
"#;

const STREAM: &str = "domain-events:{shop}";

impl Setup {
    fn emit(&self, event_type: &str, payload: &Value) -> Output {
        self.run(&[
            "emit",
            "--source",
            "cli-test",
            "--type",
            event_type,
            "--payload",
            &payload.to_string(),
        ])
    }

    /// The `event` field of every entry of the stream, oldest first.
    fn events(&self) -> Vec<String> {
        let entries: Vec<(String, HashMap<String, String>)> = redis::cmd("XRANGE")
            .arg(STREAM)
            .arg("-")
            .arg("+")
            .query(&mut self.conn())
            .expect("XRANGE");
        entries
            .into_iter()
            .map(|(_, mut fields)| fields.remove("event").unwrap_or_default())
            .collect()
    }
}

/// The single JSON line of a successful run.
fn json_line(output: &Output) -> Value {
    assert!(output.status.success(), "{}", stderr(output));
    let text = stdout(output);
    assert_eq!(text.lines().count(), 1, "{text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn order(id: &str) -> Value {
    json!({"orderId": id, "total": 1250, "contact": "buyer@example.com"})
}

#[test]
fn emit_publishes_once_and_reports_the_duplicate() {
    let setup = Setup::new(SHOP);
    // The payload goes into the envelope as written, on one line: key order and number text kept.
    let payload = "{\n  \"total\": 1250,\n  \"orderId\": \"o-1\"\n}";
    let args = [
        "emit",
        "--source",
        "cli-test",
        "--type",
        "shop:order_placed",
        "--payload",
        payload,
        "--causation-id",
        "0193a6c4-7b7e-7c1e-9d0a-5f2b8e4a1c33",
        "--traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ];
    let first = json_line(&setup.run(&args));
    assert_eq!(first["type"], "shop:order_placed");
    assert_eq!(first["idempotencyKey"], "order_placed:o-1");
    assert_eq!(first["duplicate"], false);
    assert!(first.get("existingEventId").is_none(), "{first}");
    let event_id = first["eventId"].as_str().expect("an eventId").to_owned();

    let events = setup.events();
    assert_eq!(events.len(), 1);
    let envelope: Value = serde_json::from_str(&events[0]).expect("the envelope is JSON");
    assert_eq!(envelope["eventId"], event_id.as_str());
    assert_eq!(envelope["version"], 1);
    assert_eq!(envelope["source"], "cli-test");
    assert_eq!(envelope["correlationId"], "o-1");
    assert_eq!(
        envelope["causationId"],
        "0193a6c4-7b7e-7c1e-9d0a-5f2b8e4a1c33"
    );
    assert_eq!(
        envelope["traceparent"],
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    );
    let occurred_at = envelope["occurredAt"].as_str().expect("occurredAt");
    assert!(
        occurred_at.len() == 24 && occurred_at.ends_with('Z'),
        "{occurred_at}"
    );
    assert!(
        events[0].ends_with(r#""payload":{"total":1250,"orderId":"o-1"}}"#),
        "{}",
        events[0]
    );

    // The same key again: nothing appended, the first event named.
    let second = json_line(&setup.run(&args));
    assert_eq!(second["duplicate"], true);
    assert_eq!(second["existingEventId"], event_id.as_str());
    assert_ne!(second["eventId"], event_id.as_str());
    assert_eq!(setup.xlen(STREAM), 1);

    // Keys take integers in their JSON form.
    let shipped = json_line(&setup.emit(
        "shop:order_shipped",
        &json!({"orderId": "o-1", "attempt": 2}),
    ));
    assert_eq!(shipped["idempotencyKey"], "order_shipped:o-1:2");
    assert_eq!(setup.xlen(STREAM), 2);
}

#[test]
fn emit_lists_every_schema_violation_and_emits_nothing() {
    let setup = Setup::new(SHOP);
    let output = setup.emit(
        "shop:order_placed",
        &json!({"total": -5, "contact": "not an address"}),
    );
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout(&output), "");
    let err = stderr(&output);
    assert!(
        err.starts_with(
            "error: the payload does not match the schema of `shop:order_placed` version 1:\n"
        ),
        "{err}"
    );
    assert!(
        err.contains("at payload: \"orderId\" is a required property"),
        "{err}"
    );
    assert!(
        err.contains("at payload/total: value is less than the minimum of 0"),
        "{err}"
    );
    assert!(err.contains("at payload/contact: "), "{err}");
    assert!(err.contains("email"), "{err}");
    assert!(err.trim_end().ends_with("nothing was emitted"), "{err}");

    let output = setup.emit("shop:order_placed", &json!({"orderId": "", "total": 1}));
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("at payload/orderId: "),
        "{}",
        stderr(&output)
    );

    let output = setup.run(&[
        "emit",
        "--source",
        "cli-test",
        "--type",
        "shop:order_placed",
        "--payload",
        "{orderId: 1}",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).starts_with("error: the payload is not valid JSON: key must be a string"),
        "{}",
        stderr(&output)
    );

    let mut conn = setup.conn();
    let exists: i64 = redis::cmd("EXISTS")
        .arg(STREAM)
        .query(&mut conn)
        .expect("EXISTS");
    assert_eq!(exists, 0, "nothing may be emitted");
}

#[test]
fn emit_names_close_matches_of_an_unknown_type() {
    let setup = Setup::new(SHOP);
    let output = setup.emit("shop:order_placd", &order("o-1"));
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert_eq!(
        err,
        "error: unknown event type `shop:order_placd` in the schema folder `schemas`\n  \
         help: did you mean `shop:order_placed`?\n"
    );

    let output = setup.emit("order_shipped", &order("o-1"));
    assert!(
        stderr(&output).contains("did you mean `shop:order_shipped`?"),
        "{}",
        stderr(&output)
    );

    let output = setup.emit("billing:invoice_paid", &order("o-1"));
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("help: the folder declares 2 event types"),
        "{}",
        stderr(&output)
    );
    assert_eq!(setup.xlen(STREAM), 0);
}

#[test]
fn tail_reads_a_new_group_from_the_beginning_and_acknowledges() {
    let setup = Setup::new(SHOP);
    for id in ["o-1", "o-2"] {
        json_line(&setup.emit("shop:order_placed", &order(id)));
    }
    // `--category` and `--schemas` both name `shop`; the schema folder is the default.
    let output = setup.run(&["tail", "--group", "audit", "--count", "2"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stderr(&output), "");
    let printed: Vec<String> = stdout(&output).lines().map(str::to_owned).collect();
    // Each event exactly as it is in the stream.
    assert_eq!(printed, setup.events());

    let mut conn = setup.conn();
    let pending: Vec<redis::Value> = redis::cmd("XPENDING")
        .arg(STREAM)
        .arg("audit")
        .arg("-")
        .arg("+")
        .arg(10)
        .query(&mut conn)
        .expect("XPENDING");
    assert!(pending.is_empty(), "{pending:?}");
    for id in ["o-1", "o-2"] {
        let done: i64 = redis::cmd("EXISTS")
            .arg(format!("{STREAM}:done:audit:order_placed:{id}"))
            .query(&mut conn)
            .expect("EXISTS");
        assert_eq!(done, 1, "no done record for {id}");
    }

    // The group goes on where it is: the next run gets only the new event.
    json_line(&setup.emit("shop:order_placed", &order("o-3")));
    let output = setup.run(&[
        "tail",
        "--group",
        "audit",
        "--category",
        "shop",
        "--count",
        "1",
    ]);
    let line = json_line(&output);
    assert_eq!(line["idempotencyKey"], "order_placed:o-3");
}

#[test]
fn tail_from_new_skips_what_was_there_before() {
    let setup = Setup::new(SHOP);
    json_line(&setup.emit("shop:order_placed", &order("before")));
    let tail = setup
        .command(&[
            "tail",
            "--group",
            "fresh",
            "--from",
            "new",
            "--count",
            "1",
            "--consumer",
            "t1",
        ])
        .spawn()
        .expect("tail starts");

    // Emit only once the group exists, or the event could come before it.
    let deadline = Instant::now() + RUN_LIMIT;
    loop {
        let groups: Vec<redis::Value> = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(STREAM)
            .query(&mut setup.conn())
            .expect("XINFO GROUPS");
        if !groups.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "tail never created its group");
        std::thread::sleep(Duration::from_millis(20));
    }
    json_line(&setup.emit("shop:order_placed", &order("after")));

    let line = json_line(&finish(tail));
    assert_eq!(line["idempotencyKey"], "order_placed:after");
}

#[test]
fn dead_letters_are_listed_and_replayed() {
    let setup = Setup::new(SHOP);
    let mut conn = setup.conn();
    // A poison entry, then a good event: the consumer dead-letters the first, prints the second.
    setup.add_not_json(STREAM);
    json_line(&setup.emit("shop:order_placed", &order("o-1")));
    let output = setup.run(&["tail", "--group", "billing", "--count", "1"]);
    let printed = json_line(&output);
    assert_eq!(printed["idempotencyKey"], "order_placed:o-1");
    assert!(
        stderr(&output).contains("1 entry of group `billing` could not be handled"),
        "{}",
        stderr(&output)
    );

    // Two dead letters holding envelopes, as a typed consumer leaves them after its handler kept
    // failing.
    let dlq = format!("{STREAM}:dlq:billing");
    let mut letters = Vec::new();
    for id in ["o-7", "o-8"] {
        let envelope = json!({
            "eventId": "0193a6c4-7b7e-7c1e-9d0a-5f2b8e4a1c3f", "type": "shop:order_placed",
            "version": 1, "occurredAt": "2026-11-26T17:04:05.123Z", "source": "shop",
            "correlationId": id, "causationId": null, "idempotencyKey": format!("order_placed:{id}"),
            "payload": order(id),
        });
        let letter: String = redis::cmd("XADD")
            .arg(&dlq)
            .arg("*")
            .arg("stream")
            .arg(STREAM)
            .arg("entryId")
            .arg("1-1")
            .arg("group")
            .arg("billing")
            .arg("reason")
            .arg("handler failed 5 times")
            .arg("deliveries")
            .arg(5)
            .arg("event")
            .arg(envelope.to_string())
            .query(&mut conn)
            .expect("XADD to the dead letters");
        letters.push(letter);
    }

    let output = setup.run(&["dlq", "list", "--group", "billing"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let listed: Vec<Value> = stdout(&output)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(listed.len(), 3, "{listed:?}");
    let poison = &listed[0];
    assert_eq!(poison["category"], "shop");
    assert_eq!(poison["stream"], STREAM);
    assert_eq!(poison["group"], "billing");
    assert_eq!(poison["deliveries"], 1);
    assert_eq!(poison["eventText"], "not json");
    assert!(poison.get("event").is_none());
    assert!(
        poison["reason"]
            .as_str()
            .is_some_and(|r| r.contains("not an event envelope")),
        "{poison}"
    );
    assert_eq!(listed[1]["id"], letters[0].as_str());
    assert_eq!(listed[1]["event"]["correlationId"], "o-7");
    assert!(listed[1].get("eventText").is_none());

    // One by id, then the rest; the poison entry cannot be replayed and stays.
    let stream_before = setup.xlen(STREAM);
    let output = setup.run(&["dlq", "replay", "--group", "billing", "--id", &letters[0]]);
    let replayed = json_line(&output);
    assert_eq!(replayed["replayed"], 1);
    assert_eq!(replayed["category"], "shop");
    assert!(replayed["entryId"].is_string(), "{replayed}");
    assert_eq!(setup.xlen(STREAM), stream_before + 1);
    assert_eq!(setup.xlen(&dlq), 2);

    let output = setup.run(&["dlq", "replay", "--group", "billing", "--category", "shop"]);
    assert_eq!(
        json_line(&output),
        json!({"category": "shop", "group": "billing", "replayed": 1, "left": 1})
    );
    assert_eq!(setup.xlen(STREAM), stream_before + 2);
    assert_eq!(setup.xlen(&dlq), 1);
    let last = setup.events().pop().unwrap_or_default();
    assert!(last.contains(r#""correlationId":"o-8""#), "{last}");

    let poison_id = poison["id"].as_str().expect("an id");
    let output = setup.run(&["dlq", "replay", "--group", "billing", "--id", poison_id]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        format!(
            "error: dead letter `{poison_id}` of group `billing` in `shop` holds no event envelope and cannot be replayed\n"
        )
    );
    let output = setup.run(&["dlq", "replay", "--group", "billing", "--id", "1-1"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("does not exist in category `shop`"),
        "{}",
        stderr(&output)
    );
    assert_eq!(setup.xlen(&dlq), 1);
}

#[test]
fn an_unreachable_redis_fails_fast_without_showing_the_password() {
    let setup = Setup::new(SHOP);
    // A port nobody listens on: bind one, then let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let url = format!("redis://app:s3cret-pw@127.0.0.1:{port}/0");
    let commands: [&[&str]; 3] = [
        &[
            "emit",
            "--source",
            "cli-test",
            "--type",
            "shop:order_placed",
            "--payload",
            r#"{"orderId":"o-1","total":1}"#,
        ],
        &["tail", "--group", "g", "--count", "1"],
        &["dlq", "list", "--group", "g"],
    ];
    for args in commands {
        for from_env in [true, false] {
            let started = Instant::now();
            let output = setup.run_at(args, &url, from_env);
            let took = started.elapsed();
            let err = stderr(&output);
            assert_eq!(output.status.code(), Some(1), "{args:?}: {err}");
            assert!(took < Duration::from_secs(10), "{args:?} took {took:?}");
            assert!(!err.contains("s3cret"), "{args:?}: {err}");
            assert!(
                err.contains(&format!("app:***@127.0.0.1:{port}")),
                "{args:?}: {err}"
            );
            assert_eq!(stdout(&output), "");
        }
    }
}

#[cfg(unix)]
#[test]
fn tail_stops_gracefully_on_sigterm() {
    let setup = Setup::new(SHOP);
    json_line(&setup.emit("shop:order_placed", &order("o-1")));
    let tail = setup
        .command(&["tail", "--group", "ops"])
        .spawn()
        .expect("tail starts");

    // Once the event is handled (its done record written), ask tail to stop.
    let done = format!("{STREAM}:done:ops:order_placed:o-1");
    let deadline = Instant::now() + RUN_LIMIT;
    loop {
        let exists: i64 = redis::cmd("EXISTS")
            .arg(&done)
            .query(&mut setup.conn())
            .expect("EXISTS");
        if exists == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "tail never handled the event");
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed = Command::new("kill")
        .arg("-TERM")
        .arg(tail.id().to_string())
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let started = Instant::now();
    let output = finish(tail);
    assert!(started.elapsed() < Duration::from_secs(5));
    let line = json_line(&output);
    assert_eq!(line["idempotencyKey"], "order_placed:o-1");
}

#[test]
fn emit_reads_a_large_payload_from_a_file_or_stdin() {
    const NOTES: &str = r#"category = "shop"
correlation = "orderId"

[events.order_noted]
idempotency_key = "order_noted:{orderId}"

[events.order_noted.fields]
orderId = { type = "string", min_length = 1 }
note    = "string"
"#;
    let setup = Setup::new(NOTES);
    // Over 200 KiB: more than one command-line argument may hold (E2BIG past 128 KiB).
    let payload = |id: &str| json!({"orderId": id, "note": "n".repeat(210 * 1024)}).to_string();
    let emit = ["emit", "--source", "cli-test", "--type", "shop:order_noted"];

    // From a file.
    let from_file = payload("o-file");
    let path = setup.dir.path().join("payload.json");
    std::fs::write(&path, &from_file).expect("the payload file");
    let mut args = emit.to_vec();
    args.extend(["--payload-file", "payload.json"]);
    let first = json_line(&setup.run(&args));
    assert_eq!(first["idempotencyKey"], "order_noted:o-file");

    // From standard input.
    let from_stdin = payload("o-stdin");
    let mut args = emit.to_vec();
    args.extend(["--payload-file", "-"]);
    let mut child = setup
        .command(&args)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = from_stdin.clone();
    let writer = std::thread::spawn(move || {
        use std::io::Write as _;
        stdin
            .write_all(input.as_bytes())
            .expect("the payload on stdin");
    });
    let second = json_line(&finish(child));
    writer.join().expect("the writer");
    assert_eq!(second["idempotencyKey"], "order_noted:o-stdin");

    let events = setup.events();
    assert_eq!(events.len(), 2);
    for (event, sent) in events.iter().zip([&from_file, &from_stdin]) {
        let envelope: Value = serde_json::from_str(event).expect("the envelope is JSON");
        let sent: Value = serde_json::from_str(sent).expect("JSON");
        assert_eq!(envelope["payload"], sent);
    }

    // A missing file: a clear error naming it, nothing emitted.
    let mut args = emit.to_vec();
    args.extend(["--payload-file", "no-such-payload.json"]);
    let output = setup.run(&args);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(err.contains("no-such-payload.json"), "{err}");
    assert!(err.contains("cannot read the payload"), "{err}");
    assert_eq!(setup.events().len(), 2);

    // Exactly one of `--payload` and `--payload-file`.
    let mut args = emit.to_vec();
    args.extend(["--payload", "{}", "--payload-file", "payload.json"]);
    assert_eq!(setup.run(&args).status.code(), Some(2));
    assert_eq!(setup.run(&emit).status.code(), Some(2));
}

/// Key templates whose values may hold `:` or be written several ways.
const KEYED: &str = r#"category = "shop"
correlation = "orderId"

[events.line_added]
idempotency_key = "line_added:{orderId}:{sku}"

[events.line_added.fields]
orderId = "string"
sku     = "string"

[events.order_checked]
idempotency_key = "order_checked:{checkId}:{checkedAt}"

[events.order_checked.fields]
orderId   = "string"
checkId   = "uuid"
checkedAt = "timestamp"
"#;

#[test]
fn emit_writes_keys_as_the_runtime_does_escaped_and_canonical() {
    let setup = Setup::new(KEYED);
    let line = |order: &str, sku: &str| json!({"orderId": order, "sku": sku});
    let first = json_line(&setup.emit("shop:line_added", &line("o:1", "s")));
    let second = json_line(&setup.emit("shop:line_added", &line("o", "1:s")));
    assert_eq!(first["idempotencyKey"], "line_added:o%3A1:s");
    assert_eq!(second["idempotencyKey"], "line_added:o:1%3As");
    assert_eq!(
        (&first["duplicate"], &second["duplicate"]),
        (&json!(false), &json!(false)),
        "two different payloads share one key"
    );

    let check = |id: &str, at: &str| json!({"orderId": "o-2", "checkId": id, "checkedAt": at});
    let id = "0193a6c4-7b7e-7c1e-9d0a-5f2b8e4a1c33";
    let canonical = format!("order_checked:{id}:2026-11-26T16%3A00%3A00.000Z");
    let first = json_line(&setup.emit(
        "shop:order_checked",
        &check(&id.to_uppercase(), "2026-11-26T17:00:00+01:00"),
    ));
    assert_eq!(first["idempotencyKey"], canonical.as_str());
    assert_eq!(first["duplicate"], false);
    for at in ["2026-11-26T16:00:00Z", "2026-11-26T16:00:00.000Z"] {
        let again = json_line(&setup.emit("shop:order_checked", &check(id, at)));
        assert_eq!(again["idempotencyKey"], canonical.as_str(), "{at}");
        assert_eq!(again["duplicate"], true, "{at}");
    }
    assert_eq!(setup.xlen(STREAM), 3);
}

/// `SHOP` with the buyer's address marked sensitive.
const SECRET_SHOP: &str = r#"category = "shop"
correlation = "orderId"

[events.order_placed]
idempotency_key = "order_placed:{orderId}"

[events.order_placed.fields]
orderId = { type = "string", min_length = 1 }
total   = "uint"
contact = { type = "email?", sensitive = true }
"#;

/// Appends an entry whose envelope is well formed, as another producer might write it.
fn xadd_envelope(setup: &Setup, event_type: &str, key: &str, payload: &str) {
    let envelope = format!(
        r#"{{"eventId":"{}","type":"{event_type}","version":1,"occurredAt":"2026-12-03T10:00:00.000Z","source":"elsewhere","correlationId":"c","idempotencyKey":"{key}","payload":{payload}}}"#,
        domain_events::Uuid::now_v7()
    );
    let _: String = redis::cmd("XADD")
        .arg(STREAM)
        .arg("*")
        .arg("type")
        .arg(event_type)
        .arg("event")
        .arg(envelope)
        .query(&mut setup.conn())
        .expect("XADD");
}

#[test]
fn tail_dead_letters_what_a_consumer_would_and_redacts_sensitive_fields() {
    let setup = Setup::new(SECRET_SHOP);
    // Neither of the first two is an event of the schema folder; a service's consumer would
    // dead-letter both.
    xadd_envelope(
        &setup,
        "shop:order_refunded",
        "refund:1",
        r#"{"orderId":"o-0"}"#,
    );
    xadd_envelope(
        &setup,
        "shop:order_placed",
        "order_placed:bad",
        r#"{"orderId":"bad","total":"lots"}"#,
    );
    let secret = "buyer-7f3a@example.com";
    json_line(&setup.emit(
        "shop:order_placed",
        &json!({"orderId": "o-1", "total": 5, "contact": secret}),
    ));

    let output = setup.run(&["tail", "--group", "audit", "--count", "1"]);
    let printed = json_line(&output);
    assert_eq!(printed["idempotencyKey"], "order_placed:o-1");
    assert_eq!(printed["payload"]["contact"], "[redacted]");
    assert_eq!(printed["payload"]["total"], 5);
    let err = stderr(&output);
    assert!(
        !err.contains(secret) && !stdout(&output).contains(secret),
        "{err}"
    );
    assert_eq!(
        err.matches("is poison, not printed, dead-lettered").count(),
        2,
        "{err}"
    );
    assert!(
        err.contains("unknown event type `shop:order_refunded`"),
        "{err}"
    );
    assert!(err.contains("does not match its schema"), "{err}");
    assert!(
        err.contains("2 entries of group `audit` could not be handled"),
        "{err}"
    );
    assert_eq!(setup.xlen("domain-events:{shop}:dlq:audit"), 2);

    // Asked for, the value is shown.
    let shown = json_line(&setup.run(&[
        "tail",
        "--group",
        "support",
        "--count",
        "1",
        "--show-sensitive",
    ]));
    assert_eq!(shown["payload"]["contact"], secret);
}

#[test]
fn tail_refuses_a_category_the_schemas_do_not_declare_before_touching_redis() {
    let setup = Setup::new(SHOP);
    let output = setup.run(&[
        "tail",
        "--group",
        "audit",
        "--category",
        "Shop",
        "--count",
        "1",
    ]);
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(err.contains("unknown category `Shop`"), "{err}");
    assert!(err.contains("did you mean `shop`?"), "{err}");
    let keys: i64 = redis::cmd("DBSIZE")
        .query(&mut setup.conn())
        .expect("DBSIZE");
    assert_eq!(keys, 0, "nothing was created in Redis");
}

#[test]
fn tail_leaves_no_consumer_behind_when_nothing_is_pending() {
    let setup = Setup::new(SHOP);
    json_line(&setup.emit("shop:order_placed", &order("o-1")));
    for _ in 0..2 {
        let output = setup.run(&[
            "tail",
            "--group",
            "audit",
            "--count",
            "1",
            "--from",
            "beginning",
        ]);
        assert!(output.status.success(), "{}", stderr(&output));
        json_line(&setup.emit(
            "shop:order_placed",
            &order(&domain_events::Uuid::now_v7().to_string()),
        ));
    }
    let consumers: Vec<redis::Value> = redis::cmd("XINFO")
        .arg("CONSUMERS")
        .arg(STREAM)
        .arg("audit")
        .query(&mut setup.conn())
        .expect("XINFO CONSUMERS");
    assert!(consumers.is_empty(), "{consumers:?}");
}
