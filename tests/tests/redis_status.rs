//! [`Inspector`] and dead-letter deletion against a real `redis-server`, on streams, groups,
//! pending entries and dead letters made by the runtime itself: an emitter, a consumer whose
//! handler fails, one whose handler never finishes, one whose group is destroyed afterwards.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use domain_events::{Emitter, HandlerError, Handlers};
use domain_events_catalog::{DomainEvent, ImageFamilyCompletedEvent};
use domain_events_redis::{
    ConsumerStatus, DeadLetterStatus, DeadLetters, GroupStatus, Inspector, RedisConfig,
    RedisTransport, Status,
};
use domain_events_tests::redis_server::{RedisServer, pending};
use domain_events_tests::redis_worker::{
    eventually, exact_consumer, family_completed, init_tracing,
};
use redis::AsyncCommands;

const WAIT: Duration = Duration::from_secs(30);
const STREAM: &str = "status:{image}";

/// Runs a consumer of group `group` with `handlers` until `settled` holds, then shuts it down
/// (a handler still running is abandoned, its entry stays pending).
async fn consume_until<F, Fut>(config: &RedisConfig, group: &str, handlers: Handlers, settled: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let handle = exact_consumer(config.clone(), group, handlers)
        .build()
        .unwrap()
        .spawn();
    eventually(&format!("group {group} settles"), WAIT, settled).await;
    handle.shutdown().await.unwrap();
}

fn group<'a>(status: &'a Status, name: &str) -> &'a GroupStatus {
    status.streams[0]
        .groups
        .iter()
        .find(|g| g.group == name)
        .unwrap_or_else(|| panic!("no group {name} in {status:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_counts_what_the_runtime_left_and_dead_letters_of_any_kind_can_be_removed() {
    init_tracing();
    let server = RedisServer::start();
    let config = RedisConfig::new(&server.url())
        .unwrap()
        .key_prefix("status");
    let mut conn = server.connection().await;

    // Five events, then an entry whose event is not JSON.
    let emitter = Emitter::new("status-test", RedisTransport::new(config.clone()).unwrap());
    for index in 1..=5 {
        emitter.emit(family_completed("v", index)).await.unwrap();
    }
    let poison_id: String = conn
        .xadd(
            STREAM,
            "*",
            &[("type", "image:family_completed"), ("event", "not json")],
        )
        .await
        .unwrap();
    let ids: Vec<String> = conn
        .xrange_all::<_, redis::streams::StreamRangeReply>(STREAM)
        .await
        .unwrap()
        .ids
        .into_iter()
        .map(|entry| entry.id)
        .collect();
    assert_eq!(ids.len(), 6);
    // Keys and streams of other kinds and prefixes are not event streams.
    let _: () = conn.set("status:{image}:idem:x", "e").await.unwrap();
    let _: String = conn
        .xadd("other:{image}", "*", &[("a", "b")])
        .await
        .unwrap();

    // `failing`: every handler run fails, so all six entries end as its dead letters.
    let failing = Handlers::new()
        .on(|_: ImageFamilyCompletedEvent| async { Err(HandlerError::msg("boom")) })
        .knowing::<DomainEvent>();
    let letters = DeadLetters::new(config.clone()).unwrap();
    consume_until(&config, "failing", failing, || async {
        letters.len("image", "failing").await.unwrap() == 6
    })
    .await;

    // `slow`: its handler never finishes, so its first entry stays pending and five are unread.
    let started = Arc::new(AtomicBool::new(false));
    let slow = Handlers::new()
        .on({
            let started = started.clone();
            move |_: ImageFamilyCompletedEvent| {
                started.store(true, Ordering::SeqCst);
                std::future::pending::<Result<(), HandlerError>>()
            }
        })
        .knowing::<DomainEvent>();
    consume_until(&config, "slow", slow, || async {
        started.load(Ordering::SeqCst)
    })
    .await;

    // `retired`: handles everything, dead-letters the poison entry, then its group is destroyed.
    let fine = Handlers::new()
        .on(|_: ImageFamilyCompletedEvent| async { Ok(()) })
        .knowing::<DomainEvent>();
    consume_until(&config, "retired", fine, || {
        let mut conn = conn.clone();
        let letters = &letters;
        async move {
            letters.len("image", "retired").await.unwrap() == 1
                && pending(&mut conn, STREAM, "retired").await == 0
        }
    })
    .await;
    let _: i64 = redis::cmd("XGROUP")
        .arg("DESTROY")
        .arg(STREAM)
        .arg("retired")
        .query_async(&mut conn)
        .await
        .unwrap();

    let inspector = Inspector::new(config.clone()).unwrap();
    server.reset_command_stats().await;
    let status = inspector.status().await.unwrap();
    // Found by SCAN, never by KEYS; then one command of each kind per stream, group and
    // dead-letter stream.
    assert_eq!(server.command_calls("keys").await, 0);
    assert!(server.command_calls("scan").await >= 1);
    for (command, calls) in [
        ("xinfo|stream", 1),
        ("xinfo|groups", 1),
        ("xinfo|consumers", 2),
        ("xpending", 2),
        ("xlen", 2),
    ] {
        assert_eq!(server.command_calls(command).await, calls, "{command}");
    }

    assert_eq!(status.prefix, "status");
    assert_eq!(status.streams.len(), 1, "{status:?}");
    let stream = &status.streams[0];
    assert_eq!(
        (stream.stream.as_str(), stream.category.as_str()),
        (STREAM, "image")
    );
    assert_eq!(stream.length, 6);
    assert_eq!(stream.entries_added, Some(6));
    assert_eq!(
        stream.first_entry.as_ref().map(|e| e.id.as_str()),
        Some(ids[0].as_str())
    );
    assert_eq!(
        stream.last_entry.as_ref().map(|e| e.id.as_str()),
        Some(poison_id.as_str())
    );
    assert_eq!(stream.last_generated_id, poison_id);
    let millis: i64 = ids[0].split('-').next().unwrap().parse().unwrap();
    let first_at = stream.first_entry.as_ref().unwrap().at.to_datetime();
    assert_eq!(
        first_at.unix_timestamp_nanos() / 1_000_000,
        i128::from(millis)
    );
    let names: Vec<&str> = stream.groups.iter().map(|g| g.group.as_str()).collect();
    assert_eq!(names, ["failing", "slow"]);

    let failing = group(&status, "failing");
    assert_eq!(failing.lag, Some(0));
    assert_eq!(failing.pending, 0);
    assert_eq!(failing.oldest_pending, None);
    assert_eq!(failing.entries_read, Some(6));
    assert_eq!(failing.last_delivered_id, poison_id);
    assert_eq!(failing.dead_letters, 6);
    // Its consumer stopped with nothing pending, and left the group.
    assert!(failing.consumers.is_empty(), "{:?}", failing.consumers);

    let slow = group(&status, "slow");
    assert_eq!(slow.lag, Some(5));
    assert_eq!(slow.pending, 1);
    assert_eq!(slow.entries_read, Some(1));
    assert_eq!(slow.last_delivered_id, ids[0]);
    assert_eq!(slow.dead_letters, 0);
    let oldest = slow.oldest_pending.as_ref().expect("an entry is pending");
    assert_eq!(
        (
            oldest.id.as_str(),
            oldest.consumer.as_str(),
            oldest.deliveries
        ),
        (ids[0].as_str(), "slow-1", 1)
    );
    let [ConsumerStatus { name, pending, .. }] = slow.consumers.as_slice() else {
        panic!("one consumer: {slow:?}");
    };
    assert_eq!((name.as_str(), *pending), ("slow-1", 1));

    assert_eq!(
        status.dead_letters,
        vec![
            DeadLetterStatus {
                stream: "status:{image}:dlq:failing".into(),
                category: "image".into(),
                group: "failing".into(),
                length: 6,
            },
            DeadLetterStatus {
                stream: "status:{image}:dlq:retired".into(),
                category: "image".into(),
                group: "retired".into(),
                length: 1,
            },
        ]
    );
    let orphans: Vec<&str> = status
        .orphan_dead_letters()
        .map(|d| d.group.as_str())
        .collect();
    assert_eq!(orphans, ["retired"]);

    // An entry deleted after the slow group's position: Redis cannot tell its lag any more, the
    // group that read everything still has none.
    let _: i64 = conn.xdel(STREAM, &[&ids[2]]).await.unwrap();
    let status = inspector.status().await.unwrap();
    assert_eq!(status.streams[0].length, 5);
    assert_eq!(group(&status, "slow").lag, None);
    assert_eq!(group(&status, "failing").lag, Some(0));

    // The dead letter whose event is not JSON cannot be replayed, but can be deleted.
    let listed = letters.list("image", "failing", 100).await.unwrap();
    let not_json: Vec<_> = listed.iter().filter(|l| l.envelope().is_none()).collect();
    assert_eq!(not_json.len(), 1, "{listed:?}");
    assert_eq!(not_json[0].event, b"not json");
    assert_eq!(not_json[0].entry_id, poison_id);
    assert!(
        letters
            .replay("image", "failing", &not_json[0].id)
            .await
            .is_err()
    );
    assert!(
        letters
            .delete("image", "failing", &not_json[0].id)
            .await
            .unwrap()
    );
    assert!(
        !letters
            .delete("image", "failing", &not_json[0].id)
            .await
            .unwrap()
    );
    assert_eq!(letters.len("image", "failing").await.unwrap(), 5);

    // Purging removes every dead letter of a group, whatever it holds, and says how many.
    assert_eq!(letters.purge("image", "retired").await.unwrap(), 1);
    assert_eq!(letters.purge("image", "failing").await.unwrap(), 5);
    assert_eq!(letters.purge("image", "failing").await.unwrap(), 0);
    let status = inspector.status().await.unwrap();
    assert_eq!(group(&status, "failing").dead_letters, 0);
    assert!(
        status.dead_letters.iter().all(|d| d.length == 0),
        "{status:?}"
    );
    assert_eq!(
        status
            .orphan_dead_letters()
            .filter(|d| d.length > 0)
            .count(),
        0
    );
}

#[tokio::test]
async fn nothing_under_the_prefix_is_an_empty_status() {
    let server = RedisServer::start();
    let config = RedisConfig::new(&server.url()).unwrap().key_prefix("none");
    let mut conn = server.connection().await;
    let _: String = conn
        .xadd("elsewhere:{image}", "*", &[("a", "b")])
        .await
        .unwrap();
    let status = Inspector::new(config).unwrap().status().await.unwrap();
    assert_eq!(
        status,
        Status {
            prefix: "none".into(),
            streams: Vec::new(),
            dead_letters: Vec::new(),
        }
    );
}
