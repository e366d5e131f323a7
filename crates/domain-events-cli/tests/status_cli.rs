//! `status`, `dlq delete` and `dlq purge` run as a user would, against a private `redis-server`
//! holding what the runtime leaves: events emitted by `emit`, an entry whose event is not JSON,
//! a group whose handler always fails, one whose handler never finishes, one that `tail` read and
//! that was destroyed afterwards.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use domain_events::{HandlerError, Handlers, RawEnvelope};
use domain_events_redis::{EntryStamp, RedisConfig, Status};
use domain_events_tests::redis_worker::exact_consumer;
use domain_events_tests::secrets::{PASSWORD, WRONG, assert_clean, encode};
use serde_json::{Value, json};
use support::{RUN_LIMIT, SHOP, Setup, json_lines, stderr, stdout};

const STREAM: &str = "domain-events:{shop}";

/// The rows of a table section whose first line starts with `header`, split on whitespace.
fn section(table: &str, header: &str) -> Vec<Vec<String>> {
    let block = table
        .split("\n\n")
        .find(|block| block.starts_with(header))
        .unwrap_or_else(|| panic!("no section {header} in\n{table}"));
    block
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().map(str::to_owned).collect())
        .collect()
}

fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| (*c).to_owned()).collect()
}

/// Whether `text` is a duration as `status` prints it (`850ms`, `1.2s`, `4m05s`, ...).
fn is_duration(text: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit() || c == '.');
    ["ms", "s"].iter().any(|unit| {
        text.strip_suffix(unit).is_some_and(|rest| {
            digits(rest)
                || rest
                    .split_once('m')
                    .is_some_and(|(m, s)| digits(m) && digits(s))
        })
    }) || text
        .split_once('h')
        .is_some_and(|(h, m)| digits(h) && m.ends_with('m'))
}

impl Setup {
    /// The ids of the stream's entries, oldest first.
    fn ids(&self) -> Vec<String> {
        let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
            .arg(STREAM)
            .arg("-")
            .arg("+")
            .query(&mut self.conn())
            .expect("XRANGE");
        entries.into_iter().map(|(id, _)| id).collect()
    }

    /// Runs an [`exact_consumer`] of `group` with `handlers` until `settled` holds, then stops it;
    /// a handler still running is abandoned and its entry stays pending.
    fn consume_until(&self, group: &str, handlers: Handlers, settled: impl Fn() -> bool) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let config = RedisConfig::new(&self.redis.url()).expect("the URL");
            let handle = exact_consumer(config, group, handlers)
                .build()
                .expect("a consumer")
                .spawn();
            let deadline = Instant::now() + RUN_LIMIT;
            while !settled() {
                assert!(Instant::now() < deadline, "group {group} never settled");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            handle.shutdown().await.expect("the consumer stops");
        });
    }
}

/// Raw handlers for `shop` running `handler`.
fn shop_handlers<F, Fut>(handler: F) -> Handlers
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    Handlers::new().on_raw(["shop"], move |_: Arc<RawEnvelope>| handler())
}

/// The seeded Redis: 1 entry that is not JSON, then 4 events; dead letters of `billing` (all 5)
/// and `search` (1), whose consumer stopped with nothing pending and left the group; `search` has
/// 1 entry pending and 3 unread; `ops` read everything and was
/// destroyed, leaving 1 dead letter.
fn seeded(setup: &Setup) -> Vec<String> {
    setup.add_not_json(STREAM);
    for id in ["o-1", "o-2", "o-3", "o-4"] {
        let payload = json!({"orderId": id, "total": 10}).to_string();
        let output = setup.run(&[
            "emit",
            "--source",
            "status-test",
            "--type",
            "shop:order_placed",
            "--payload",
            &payload,
        ]);
        assert!(output.status.success(), "{}", stderr(&output));
    }

    setup.consume_until(
        "billing",
        shop_handlers(|| async { Err(HandlerError::msg("billing is down")) }),
        || setup.xlen(&format!("{STREAM}:dlq:billing")) == 5,
    );

    let started = Arc::new(AtomicBool::new(false));
    let handler_started = started.clone();
    setup.consume_until(
        "search",
        shop_handlers(move || {
            handler_started.store(true, Ordering::SeqCst);
            std::future::pending()
        }),
        || started.load(Ordering::SeqCst),
    );

    let output = setup.run(&["tail", "--group", "ops", "--count", "4"]);
    assert_eq!(json_lines(&output).len(), 4);
    let _: i64 = redis::cmd("XGROUP")
        .arg("DESTROY")
        .arg(STREAM)
        .arg("ops")
        .query(&mut setup.conn())
        .expect("XGROUP DESTROY");
    setup.ids()
}

#[test]
fn status_shows_streams_groups_consumers_and_dead_letters_as_tables_and_json() {
    let setup = Setup::new(SHOP);
    let ids = seeded(&setup);
    assert_eq!(ids.len(), 5);
    let at = |id: &str| EntryStamp::of(id).expect("an entry id").at.to_string();

    let json = setup.run(&["status", "--json"]);
    assert!(json.status.success(), "{}", stderr(&json));
    let status: Status = serde_json::from_str(&stdout(&json)).expect("the status JSON");
    let value: Value = serde_json::from_str(&stdout(&json)).expect("JSON");
    assert_eq!(value["prefix"], "domain-events");
    let stream = &value["streams"][0];
    assert_eq!(value["streams"].as_array().map(Vec::len), Some(1));
    assert_eq!(stream["stream"], STREAM);
    assert_eq!(stream["category"], "shop");
    assert_eq!(stream["length"], 5);
    assert_eq!(stream["entriesAdded"], 5);
    assert_eq!(
        stream["firstEntry"],
        json!({"id": ids[0], "at": at(&ids[0])})
    );
    assert_eq!(
        stream["lastEntry"],
        json!({"id": ids[4], "at": at(&ids[4])})
    );
    let groups = stream["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 2);
    let (billing, search) = (&groups[0], &groups[1]);
    assert_eq!(billing["group"], "billing");
    assert_eq!(
        (
            &billing["lag"],
            &billing["pending"],
            &billing["deadLetters"]
        ),
        (&json!(0), &json!(0), &json!(5))
    );
    assert_eq!(billing["oldestPending"], Value::Null);
    // Its consumer stopped with nothing pending, and left the group.
    assert_eq!(billing["consumers"], json!([]));
    assert_eq!(search["group"], "search");
    assert_eq!(
        (&search["lag"], &search["pending"], &search["deadLetters"]),
        (&json!(3), &json!(1), &json!(1))
    );
    assert_eq!(search["entriesRead"], 2);
    assert_eq!(search["lastDeliveredId"], ids[1].as_str());
    let oldest = &search["oldestPending"];
    assert_eq!(
        (&oldest["id"], &oldest["consumer"], &oldest["deliveries"]),
        (&json!(ids[1]), &json!("search-1"), &json!(1))
    );
    assert!(oldest["idleMs"].is_u64(), "{oldest}");
    assert_eq!(search["consumers"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        (
            &search["consumers"][0]["name"],
            &search["consumers"][0]["pending"]
        ),
        (&json!("search-1"), &json!(1))
    );
    let dead: Vec<(&str, &str, u64)> = status
        .dead_letters
        .iter()
        .map(|d| (d.stream.as_str(), d.group.as_str(), d.length))
        .collect();
    assert_eq!(
        dead,
        [
            ("domain-events:{shop}:dlq:billing", "billing", 5),
            ("domain-events:{shop}:dlq:ops", "ops", 1),
            ("domain-events:{shop}:dlq:search", "search", 1),
        ]
    );

    let table = setup.run(&["status"]);
    assert!(table.status.success(), "{}", stderr(&table));
    let table = stdout(&table);
    assert_eq!(
        section(&table, "STREAM                CATEGORY"),
        [row(&[STREAM, "shop", "5", &at(&ids[0]), &at(&ids[4])])]
    );
    let groups = section(&table, "STREAM                GROUP    CONSUMERS");
    assert_eq!(groups.len(), 2, "{table}");
    assert_eq!(
        groups[0],
        row(&[STREAM, "billing", "0", "0", "0", "-", "5"])
    );
    assert_eq!(groups[1][..5], row(&[STREAM, "search", "1", "3", "1"]));
    assert!(is_duration(&groups[1][5]), "{table}");
    assert_eq!(groups[1][6], "1");
    let consumers = section(&table, "STREAM                GROUP   CONSUMER  ");
    assert_eq!(consumers.len(), 1, "{table}");
    assert_eq!(consumers[0][..4], row(&[STREAM, "search", "search-1", "1"]));
    assert!(consumers.iter().all(|c| is_duration(&c[4])), "{table}");
    assert_eq!(
        section(&table, "DEAD LETTERS OF GROUPS NOT ON A STREAM"),
        [row(&["domain-events:{shop}:dlq:ops", "shop", "ops", "1"])]
    );
    assert!(!table.contains("lag ?"), "{table}");
    // The header lines, exactly.
    for header in [
        "STREAM                CATEGORY  LENGTH  FIRST ENTRY               LAST ENTRY",
        "STREAM                GROUP    CONSUMERS  LAG  PENDING  OLDEST PENDING IDLE  DEAD LETTERS",
    ] {
        assert!(
            table.lines().any(|line| line == header),
            "{header}\n{table}"
        );
    }

    // An entry deleted after the search group's position: its lag is unknown, and said so.
    let _: i64 = redis::cmd("XDEL")
        .arg(STREAM)
        .arg(&ids[3])
        .query(&mut setup.conn())
        .expect("XDEL");
    let output = setup.run(&["status", "--json"]);
    let value: Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    assert_eq!(value["streams"][0]["groups"][1]["lag"], Value::Null);
    assert_eq!(value["streams"][0]["groups"][0]["lag"], 0);
    let table = stdout(&setup.run(&["status"]));
    let groups = section(&table, "STREAM                GROUP    CONSUMERS");
    assert_eq!(groups[1][..5], row(&[STREAM, "search", "1", "?", "1"]));
    assert!(table.trim_end().ends_with(
        "lag ?: Redis cannot tell (entries were deleted after the group's position, or Redis is older than 7.0)"
    ), "{table}");
}

#[test]
fn status_of_an_empty_redis_says_so() {
    let setup = Setup::new(SHOP);
    let output = setup.run(&["status"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "no event streams under the prefix `domain-events`\n"
    );
    let output = setup.run(&["status", "--json", "--key-prefix", "other"]);
    let value: Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    assert_eq!(
        value,
        json!({"prefix": "other", "streams": [], "deadLetters": []})
    );
}

#[test]
fn dead_letters_of_any_kind_are_deleted_by_id_or_purged() {
    let setup = Setup::new(SHOP);
    seeded(&setup);
    let dlq = format!("{STREAM}:dlq:billing");
    let listed = json_lines(&setup.run(&["dlq", "list", "--group", "billing"]));
    assert_eq!(listed.len(), 5);
    let not_json = &listed[0];
    assert_eq!(not_json["eventText"], "not json");
    let not_json_id = not_json["id"].as_str().expect("an id");

    // A mistyped id among good ones: nothing is deleted.
    let output = setup.run(&[
        "dlq",
        "delete",
        "--group",
        "billing",
        "--id",
        not_json_id,
        "--id",
        "1-1",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        "error: dead letter `1-1` of group `billing` does not exist in category `shop`\n"
    );
    assert_eq!(setup.xlen(&dlq), 5);

    // The dead letter that is not JSON cannot be replayed, but it can be deleted.
    let output = setup.run(&["dlq", "replay", "--group", "billing", "--id", not_json_id]);
    assert_eq!(output.status.code(), Some(1));
    let output = setup.run(&["dlq", "delete", "--group", "billing", "--id", not_json_id]);
    assert_eq!(
        json_lines(&output),
        [json!({"category": "shop", "group": "billing", "id": not_json_id, "deleted": true})]
    );
    assert_eq!(setup.xlen(&dlq), 4);
    let left = json_lines(&setup.run(&["dlq", "list", "--group", "billing"]));
    assert!(left.iter().all(|l| l["id"] != not_json_id), "{left:?}");

    // One id in two categories: which one must be said.
    for category in ["shop", "other"] {
        let _: String = redis::cmd("XADD")
            .arg(format!("domain-events:{{{category}}}:dlq:twin"))
            .arg("5-1")
            .arg("stream")
            .arg(format!("domain-events:{{{category}}}"))
            .arg("event")
            .arg("")
            .query(&mut setup.conn())
            .expect("XADD");
    }
    let both = [
        "dlq",
        "delete",
        "--group",
        "twin",
        "--category",
        "shop",
        "--category",
        "other",
    ];
    let output = setup.run(&[&both[..], &["--id", "5-1"]].concat());
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        "error: dead letter `5-1` of group `twin` exists in categories `other`, `shop`; say which with --category\n"
    );
    let output = setup.run(&[
        "dlq",
        "delete",
        "--group",
        "twin",
        "--category",
        "other",
        "--id",
        "5-1",
    ]);
    assert_eq!(
        json_lines(&output),
        [json!({"category": "other", "group": "twin", "id": "5-1", "deleted": true})]
    );
    assert_eq!(setup.xlen("domain-events:{shop}:dlq:twin"), 1);
    // `--id` is required.
    assert_eq!(
        setup
            .run(&["dlq", "delete", "--group", "billing"])
            .status
            .code(),
        Some(2)
    );

    // Purging asks for --yes and says what it would delete.
    let output = setup.run(&["dlq", "purge", "--group", "billing"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout(&output), "");
    assert_eq!(
        stderr(&output),
        "error: not purging 4 dead letters of group `billing` without --yes:\n  shop: 4\n  \
         help: nothing was deleted; `dlq list` shows them, the same command with --yes deletes them\n"
    );
    assert_eq!(setup.xlen(&dlq), 4);
    let output = setup.run(&["dlq", "purge", "--group", "billing", "--yes"]);
    assert_eq!(
        json_lines(&output),
        [json!({"category": "shop", "group": "billing", "purged": 4})]
    );
    assert_eq!(setup.xlen(&dlq), 0);
    // Nothing left: nothing to confirm.
    let output = setup.run(&["dlq", "purge", "--group", "billing"]);
    assert_eq!(
        json_lines(&output),
        [json!({"category": "shop", "group": "billing", "purged": 0})]
    );

    let output = setup.run(&["status", "--json"]);
    let status: Status = serde_json::from_str(&stdout(&output)).expect("the status JSON");
    assert_eq!(status.streams[0].groups[0].group, "billing");
    assert_eq!(status.streams[0].groups[0].dead_letters, 0);
}

#[test]
fn status_and_dead_letter_commands_never_show_the_password() {
    let setup = Setup::with_redis_args(SHOP, &["--requirepass", PASSWORD]);
    let port = setup.redis.port();
    let right = format!("redis://:{}@127.0.0.1:{port}/0", encode(PASSWORD));
    let commands: [&[&str]; 5] = [
        &["status"],
        &["status", "--json"],
        &["dlq", "delete", "--group", "g", "--id", "1-1"],
        &["dlq", "purge", "--group", "g"],
        &["dlq", "purge", "--group", "g", "--yes"],
    ];
    let mut urls = vec![right.clone()];
    for secret in [PASSWORD.to_owned(), WRONG.to_owned(), encode(WRONG)] {
        urls.push(format!("redis://app:{secret}@127.0.0.1:{port}/0"));
        urls.push(format!("redis://:{secret}@127.0.0.1:badport"));
    }
    for url in &urls {
        for args in commands {
            for from_env in [true, false] {
                let output = setup.run_at(args, url, from_env);
                let what = format!("{args:?} with {url}");
                let expected = if url != &right {
                    Some(1)
                } else if args[0] == "dlq" && args[1] == "delete" {
                    // No such dead letter; the error names the id, not the server.
                    Some(1)
                } else {
                    Some(0)
                };
                assert_eq!(
                    output.status.code(),
                    expected,
                    "{what}: {}",
                    stderr(&output)
                );
                assert_clean(&format!("{}{}", stdout(&output), stderr(&output)), &what);
            }
        }
    }
}
