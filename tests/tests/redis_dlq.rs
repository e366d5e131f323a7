//! Dead letters against a real `redis-server`: every kind of poison entry is dead-lettered at once
//! with its reason while the consumer goes on; a failing handler is retried with backoff and
//! dead-lettered after the maximum number of deliveries; dead letters replay.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain_events::{Emitter, HandlerError, Handlers, RetryPolicy};
use domain_events_catalog::{DomainEvent, ImageFamilyCompletedEvent};
use domain_events_redis::{DeadLetters, RedisConfig, RedisConsumer, RedisTransport};
use domain_events_tests::redis_server::{RedisServer, pending};
use domain_events_tests::redis_worker::{eventually, family_completed, init_tracing};
use redis::AsyncCommands;
use tokio::time::Instant;

const WAIT: Duration = Duration::from_secs(30);

/// The fields of a stream entry written by hand.
type Fields = Vec<(&'static str, Vec<u8>)>;

fn envelope(event_type: &str, version: u32, key: &str, payload: &str) -> String {
    format!(
        r#"{{"eventId":"{}","type":"{event_type}","version":{version},"occurredAt":"2026-11-26T17:04:05.123Z","source":"test","correlationId":"c","causationId":null,"idempotencyKey":"{key}","payload":{payload}}}"#,
        domain_events::Uuid::now_v7()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_poison_kind_is_dead_lettered_at_once_with_its_reason_and_the_consumer_goes_on() {
    init_tracing();
    let server = RedisServer::start();
    let config = RedisConfig::new(&server.url())
        .unwrap()
        .key_prefix("poison");
    let stream = config.keys().stream("image");
    let mut conn = server.connection().await;
    let good_payload = serde_json::to_string(&family_completed("poison", 1)).unwrap();
    let mut missing_field: serde_json::Value = serde_json::from_str(&good_payload).unwrap();
    missing_field.as_object_mut().unwrap().remove("familyIndex");
    let mut bad_url: serde_json::Value = serde_json::from_str(&good_payload).unwrap();
    bad_url["publicUrl"] = "not a url".into();
    // (fields, the reason must contain)
    let poison: Vec<(Fields, &str)> = vec![
        (
            vec![("type", b"image:family_completed".to_vec())],
            "no `event` field",
        ),
        (
            vec![
                ("type", b"image:family_completed".to_vec()),
                ("event", b"{not json".to_vec()),
            ],
            "not an event envelope",
        ),
        (
            vec![("event", b"\xff\xfe binary".to_vec())],
            "not an event envelope",
        ),
        (
            vec![(
                "event",
                envelope("image:from_the_future", 1, "k1", "{}").into_bytes(),
            )],
            "unknown event type `image:from_the_future`",
        ),
        (
            vec![(
                "event",
                envelope("image:family_completed", 9, "k2", &good_payload).into_bytes(),
            )],
            "has no declared version 9",
        ),
        (
            vec![(
                "event",
                envelope(
                    "image:family_completed",
                    1,
                    "k3",
                    &missing_field.to_string(),
                )
                .into_bytes(),
            )],
            "does not match its schema",
        ),
        (
            vec![(
                "event",
                envelope("image:family_completed", 1, "k4", &bad_url.to_string()).into_bytes(),
            )],
            "does not match its schema",
        ),
    ];
    let mut ids = Vec::new();
    for (fields, _) in &poison {
        let id: String = conn.xadd(&stream, "*", fields).await.unwrap();
        ids.push(id);
    }
    let emitter = Emitter::new("poison-test", RedisTransport::new(config.clone()).unwrap());
    emitter.emit(family_completed("poison", 2)).await.unwrap();

    let handled = Arc::new(AtomicUsize::new(0));
    let handlers = Handlers::new()
        .on({
            let handled = handled.clone();
            move |_: ImageFamilyCompletedEvent| {
                handled.fetch_add(1, Ordering::SeqCst);
                async { Ok(()) }
            }
        })
        .knowing::<DomainEvent>();
    let handle = RedisConsumer::builder(config.clone(), "poison-group", handlers)
        .block(Duration::from_millis(50))
        .build()
        .unwrap()
        .spawn();
    eventually("the good event is handled", WAIT, || async {
        handled.load(Ordering::SeqCst) == 1
    })
    .await;
    eventually("every entry is settled", WAIT, || {
        let mut conn = conn.clone();
        async move { pending(&mut conn, "poison:{image}", "poison-group").await == 0 }
    })
    .await;
    let stats = handle.shutdown().await.unwrap();
    assert_eq!(
        (stats.poison, stats.handled, stats.retries),
        (poison.len() as u64, 1, 0)
    );

    let dead = DeadLetters::new(config.clone()).unwrap();
    assert_eq!(
        dead.len("image", "poison-group").await.unwrap(),
        poison.len() as u64
    );
    let letters = dead.list("image", "poison-group", 100).await.unwrap();
    assert_eq!(
        config.keys().dlq("image", "poison-group"),
        "poison:{image}:dlq:poison-group"
    );
    assert_eq!(letters.len(), poison.len());
    for ((fields, reason), id) in poison.iter().zip(&ids) {
        // Entries are handled concurrently, so dead letters may come in another order.
        let letter = letters
            .iter()
            .find(|letter| &letter.entry_id == id)
            .expect("a dead letter per poison entry");
        assert!(
            letter.reason.contains(reason),
            "reason {:?} should contain {reason:?}",
            letter.reason
        );
        assert_eq!(letter.stream, stream);
        assert_eq!(&letter.entry_id, id);
        assert_eq!(letter.group, "poison-group");
        assert_eq!(letter.deliveries, 1);
        let original = fields
            .iter()
            .find(|(name, _)| *name == "event")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        assert_eq!(letter.event, original, "the raw bytes are kept");
        assert!(
            !format!("{letter:?}").contains("cdn.example"),
            "Debug shows no payload"
        );
    }
    // The dead letters carry exactly the contract's fields.
    let raw: redis::streams::StreamRangeReply = conn
        .xrange_all(config.keys().dlq("image", "poison-group"))
        .await
        .unwrap();
    let mut names: Vec<&str> = raw.ids[1].map.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "deliveries",
            "entryId",
            "event",
            "group",
            "reason",
            "stream"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_handler_is_retried_with_backoff_and_dead_lettered_after_max_deliveries() {
    init_tracing();
    let server = RedisServer::start();
    let config = RedisConfig::new(&server.url())
        .unwrap()
        .key_prefix("failing");
    let emitter = Emitter::new("failing-test", RedisTransport::new(config.clone()).unwrap());
    let attempts = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let handlers = Handlers::new().on({
        let attempts = attempts.clone();
        move |_: ImageFamilyCompletedEvent| {
            attempts.lock().unwrap().push(Instant::now());
            async { Err(HandlerError::msg("the thumbnail service is down")) }
        }
    });
    let policy = RetryPolicy {
        max_retries: 2,
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_secs(1),
    };
    let handle = RedisConsumer::builder(config.clone(), "failing-group", handlers)
        .retry(policy)
        .max_deliveries(3)
        .claim_idle(Duration::from_millis(300))
        .block(Duration::from_millis(50))
        .build()
        .unwrap()
        .spawn();
    let emitted = emitter.emit(family_completed("failing", 1)).await.unwrap();
    let dead = DeadLetters::new(config.clone()).unwrap();
    eventually("the event is dead-lettered", WAIT, || async {
        dead.len("image", "failing-group").await.unwrap() == 1
    })
    .await;
    let stats = handle.shutdown().await.unwrap();

    let attempts = attempts.lock().unwrap().clone();
    assert_eq!(attempts.len(), 9, "3 deliveries of 3 attempts each");
    for delivery in attempts.chunks(3) {
        // Backoff 50 ms then 100 ms between the attempts of one delivery (lower bounds only).
        assert!(
            delivery[1] - delivery[0] >= Duration::from_millis(50),
            "{:?}",
            delivery[1] - delivery[0]
        );
        assert!(
            delivery[2] - delivery[1] >= Duration::from_millis(100),
            "{:?}",
            delivery[2] - delivery[1]
        );
    }
    for pair in attempts.chunks(3).collect::<Vec<_>>().windows(2) {
        // Idle time counts from the delivery, just before its first attempt. Redis keeps delivery
        // times in whole milliseconds, and the first attempt of a delivery may start a little
        // later after the read than after a claim: a few milliseconds of slack.
        let gap = pair[1][0] - pair[0][0];
        assert!(
            gap >= Duration::from_millis(290),
            "redelivered {gap:?} after the previous delivery, before the claim idle time"
        );
    }
    assert_eq!((stats.retries, stats.failed, stats.handled), (8, 1, 0));

    let letter = dead
        .list("image", "failing-group", 10)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(letter.deliveries, 3);
    assert!(
        letter.reason.starts_with("handler failed 3 times"),
        "{}",
        letter.reason
    );
    assert!(
        letter.reason.ends_with("the thumbnail service is down"),
        "{}",
        letter.reason
    );
    assert_eq!(letter.envelope().unwrap().event_id, emitted.event_id);
    let mut conn = server.connection().await;
    assert_eq!(
        pending(&mut conn, "failing:{image}", "failing-group").await,
        0
    );
    let done: bool = conn
        .exists(
            config
                .keys()
                .done("image", "failing-group", "image_family:failing:1"),
        )
        .await
        .unwrap();
    assert!(!done, "no done record for a failed event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_that_recovers_within_its_retries_is_handled_once() {
    init_tracing();
    let server = RedisServer::start();
    let config = RedisConfig::new(&server.url())
        .unwrap()
        .key_prefix("recover");
    let attempts = Arc::new(AtomicUsize::new(0));
    let handlers = Handlers::new().on({
        let attempts = attempts.clone();
        move |_: ImageFamilyCompletedEvent| {
            let n = attempts.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                if n < 3 {
                    Err(HandlerError::msg(format!("attempt {n} failed")))
                } else {
                    Ok(())
                }
            }
        }
    });
    let policy = RetryPolicy {
        max_retries: 3,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(100),
    };
    let handle = RedisConsumer::builder(config.clone(), "recover-group", handlers)
        .retry(policy)
        .max_deliveries(1)
        .block(Duration::from_millis(50))
        .build()
        .unwrap()
        .spawn();
    Emitter::new("recover-test", RedisTransport::new(config.clone()).unwrap())
        .emit(family_completed("recover", 1))
        .await
        .unwrap();
    eventually("the event is handled", WAIT, || async {
        handle.stats().handled == 1
    })
    .await;
    let stats = handle.shutdown().await.unwrap();
    assert_eq!((stats.retries, stats.failed), (2, 0));
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    assert_eq!(
        DeadLetters::new(config)
            .unwrap()
            .len("image", "recover-group")
            .await
            .unwrap(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_replay_to_their_stream_and_run_again() {
    init_tracing();
    let server = RedisServer::start();
    let config = RedisConfig::new(&server.url())
        .unwrap()
        .key_prefix("replay");
    let broken = Arc::new(AtomicBool::new(true));
    let handled = Arc::new(Mutex::new(Vec::new()));
    let handlers = Handlers::new()
        .on({
            let (broken, handled) = (broken.clone(), handled.clone());
            move |event: ImageFamilyCompletedEvent| {
                let result = if broken.load(Ordering::SeqCst) {
                    Err(HandlerError::msg("not yet"))
                } else {
                    handled.lock().unwrap().push(event.event_id);
                    Ok(())
                };
                async move { result }
            }
        })
        .knowing::<DomainEvent>();
    let handle = RedisConsumer::builder(config.clone(), "replay-group", handlers)
        .retry(RetryPolicy::never())
        .max_deliveries(1)
        .block(Duration::from_millis(50))
        .build()
        .unwrap()
        .spawn();
    let emitter = Emitter::new("replay-test", RedisTransport::new(config.clone()).unwrap());
    let first = emitter.emit(family_completed("replay", 1)).await.unwrap();
    let second = emitter.emit(family_completed("replay", 2)).await.unwrap();
    let mut conn = server.connection().await;
    let _: String = conn
        .xadd(
            config.keys().stream("image"),
            "*",
            &[("event", "{not json")],
        )
        .await
        .unwrap();
    let dead = DeadLetters::new(config.clone()).unwrap();
    eventually("three dead letters", WAIT, || async {
        dead.len("image", "replay-group").await.unwrap() == 3
    })
    .await;

    broken.store(false, Ordering::SeqCst);
    let letters = dead.list("image", "replay-group", 10).await.unwrap();
    let poison = letters
        .iter()
        .find(|l| l.envelope().is_none())
        .unwrap()
        .id
        .clone();
    let error = dead
        .replay("image", "replay-group", &poison)
        .await
        .expect_err("no envelope to replay");
    assert!(error.to_string().contains("cannot be replayed"), "{error}");

    assert_eq!(dead.replay_all("image", "replay-group").await.unwrap(), 2);
    eventually("both replayed events are handled", WAIT, || async {
        handled.lock().unwrap().len() == 2
    })
    .await;
    let mut ids = handled.lock().unwrap().clone();
    ids.sort();
    assert_eq!(
        ids,
        vec![first.event_id, second.event_id],
        "replayed with their own eventIds"
    );
    assert_eq!(
        dead.len("image", "replay-group").await.unwrap(),
        1,
        "only the poison one is left"
    );
    let replayed = letters.iter().find(|l| l.envelope().is_some()).unwrap();
    assert_eq!(
        dead.replay("image", "replay-group", &replayed.id)
            .await
            .unwrap(),
        None,
        "a replayed letter is gone"
    );
    assert!(dead.delete("image", "replay-group", &poison).await.unwrap());
    assert_eq!(dead.len("image", "replay-group").await.unwrap(), 0);
    eventually("every entry is settled", WAIT, || {
        let mut conn = conn.clone();
        async move { pending(&mut conn, "replay:{image}", "replay-group").await == 0 }
    })
    .await;
    let stats = handle.shutdown().await.unwrap();
    assert_eq!(stats.handled, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_a_dead_consumer_delivered_too_often_are_dead_lettered_without_running() {
    init_tracing();
    let server = RedisServer::start();
    let config = RedisConfig::new(&server.url()).unwrap().key_prefix("ghost");
    let emitter = Emitter::new("ghost-test", RedisTransport::new(config.clone()).unwrap());
    emitter.emit(family_completed("ghost", 1)).await.unwrap();
    emitter.emit(family_completed("ghost", 2)).await.unwrap();
    let stream = config.keys().stream("image");
    let mut conn = server.connection().await;
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&stream)
        .arg("ghost-group")
        .arg("0")
        .query_async(&mut conn)
        .await
        .unwrap();
    // A consumer that died long ago got both entries delivered five times.
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("ghost-group")
        .arg("ghost")
        .arg("COUNT")
        .arg(10)
        .arg("STREAMS")
        .arg(&stream)
        .arg(">")
        .query_async(&mut conn)
        .await
        .unwrap();
    let entries: redis::streams::StreamRangeReply = conn.xrange_all(&stream).await.unwrap();
    let ids: Vec<String> = entries.ids.iter().map(|entry| entry.id.clone()).collect();
    for _ in 0..4 {
        let _: redis::Value = redis::cmd("XCLAIM")
            .arg(&stream)
            .arg("ghost-group")
            .arg("ghost")
            .arg(0)
            .arg(&ids)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    // The second one's handlers had succeeded; the ghost died before acknowledging it.
    let _: () = conn
        .set(
            config
                .keys()
                .done("image", "ghost-group", "image_family:ghost:2"),
            "someone",
        )
        .await
        .unwrap();

    let runs = Arc::new(AtomicUsize::new(0));
    let handlers = Handlers::new().on({
        let runs = runs.clone();
        move |_: ImageFamilyCompletedEvent| {
            runs.fetch_add(1, Ordering::SeqCst);
            async { Ok(()) }
        }
    });
    let handle = RedisConsumer::builder(config.clone(), "ghost-group", handlers)
        .max_deliveries(3)
        .claim_idle(Duration::from_millis(100))
        .block(Duration::from_millis(50))
        .build()
        .unwrap()
        .spawn();
    eventually("both entries are settled", WAIT, || {
        let mut conn = conn.clone();
        let stream = stream.clone();
        async move { pending(&mut conn, &stream, "ghost-group").await == 0 }
    })
    .await;
    let stats = handle.shutdown().await.unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 0, "no handler ran");
    assert_eq!((stats.failed, stats.duplicates), (1, 1));
    let letters = DeadLetters::new(config)
        .unwrap()
        .list("image", "ghost-group", 10)
        .await
        .unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].entry_id, ids[0]);
    assert_eq!(letters[0].deliveries, 6);
    assert!(
        letters[0].reason.contains("more than the maximum of 3"),
        "{}",
        letters[0].reason
    );
}
