//! Consuming Redis Streams with `RedisConsumer` against a real `redis-server`: typed handlers per
//! type and per category, acknowledgement with the done record, skipped duplicates, bounded
//! concurrency, graceful shutdown, taking back a restarted consumer's pending entries, and where a
//! new group starts.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain_events::{Emitter, Handlers, Timestamp};
use domain_events_catalog::{
    DomainEvent, FunnelSignupMethod, FunnelSignupPayload, ImageFamilyCompletedEvent,
    ImageFamilyCompletedPayload,
};
use domain_events_redis::{RedisConfig, RedisConsumer, RedisTransport, StartFrom};
use domain_events_tests::redis_server::{RedisServer, pending};
use domain_events_tests::redis_worker::{eventually, family_completed, init_tracing};
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;
use tokio::sync::{Semaphore, mpsc};

const WAIT: Duration = Duration::from_secs(30);

/// How many entries of `group` are pending idle for at least the default claim idle time (30 s):
/// released by a consumer for claiming, since nothing in these tests is that old otherwise.
async fn released(conn: &mut MultiplexedConnection, stream: &str, group: &str) -> usize {
    let entries: Vec<redis::Value> = redis::cmd("XPENDING")
        .arg(stream)
        .arg(group)
        .arg("IDLE")
        .arg(30_000)
        .arg("-")
        .arg("+")
        .arg(10)
        .query_async(conn)
        .await
        .expect("XPENDING IDLE");
    entries.len()
}

/// How many clients wait in a blocking command (`INFO clients`: `blocked_clients`).
async fn blocked_clients(conn: &mut MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("clients")
        .query_async(conn)
        .await
        .expect("INFO clients");
    info.lines()
        .find_map(|line| line.strip_prefix("blocked_clients:"))
        .map_or(0, |n| n.trim().parse().expect("a number of clients"))
}

fn signup(user: &str) -> FunnelSignupPayload {
    FunnelSignupPayload {
        user_id: user.to_owned(),
        anonymous_id: None,
        method: FunnelSignupMethod::Email,
        occurred_at: Timestamp::now(),
    }
}

/// Handlers that send every family-completed payload they get to a channel.
fn reporting() -> (Handlers, mpsc::UnboundedReceiver<ImageFamilyCompletedEvent>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let handlers = Handlers::new()
        .on(move |event: ImageFamilyCompletedEvent| {
            let tx = tx.clone();
            async move { tx.send(event).map_err(|_| "receiver gone".into()) }
        })
        .knowing::<DomainEvent>();
    (handlers, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_handlers_get_generated_payloads_and_entries_are_acked_with_a_done_record() {
    init_tracing();
    let server = RedisServer::start();
    let config = RedisConfig::new(&server.url()).unwrap().key_prefix("typed");
    let emitter = Emitter::new("typed-test", RedisTransport::new(config.clone()).unwrap());
    let (tx, mut typed) = mpsc::unbounded_channel::<ImageFamilyCompletedPayload>();
    let by_category = Arc::new(Mutex::new(Vec::new()));
    let handlers = Handlers::new()
        .on(move |event: ImageFamilyCompletedEvent| {
            let tx = tx.clone();
            async move { tx.send(event.payload).map_err(|_| "receiver gone".into()) }
        })
        .on_category::<DomainEvent, _, _>("funnel", {
            let by_category = by_category.clone();
            move |event: DomainEvent| {
                let by_category = by_category.clone();
                async move {
                    if let DomainEvent::FunnelSignup(signup) = event {
                        by_category.lock().unwrap().push(signup.payload.user_id);
                    }
                    Ok(())
                }
            }
        });
    let consumer = RedisConsumer::builder(config.clone(), "typed-group", handlers)
        .block(Duration::from_millis(100))
        .build()
        .unwrap();
    assert_eq!(consumer.streams(), ["typed:{funnel}", "typed:{image}"]);
    let handle = consumer.spawn();

    let mut sent = Vec::new();
    for index in 0..20 {
        let payload = family_completed("typed", index);
        emitter.emit(payload.clone()).await.unwrap();
        sent.push(payload);
    }
    emitter.emit(signup("u-1")).await.unwrap();
    emitter.emit(signup("u-2")).await.unwrap();

    let mut received = Vec::new();
    while received.len() < sent.len() {
        received.push(
            tokio::time::timeout(WAIT, typed.recv())
                .await
                .expect("handled in time")
                .expect("open"),
        );
    }
    received.sort_by_key(|p| p.family_index);
    assert_eq!(
        received, sent,
        "the handler got the generated payload type, field for field"
    );
    eventually("both signups are handled", WAIT, || async {
        by_category.lock().unwrap().len() == 2
    })
    .await;

    let mut conn = server.connection().await;
    eventually("every entry is acknowledged", WAIT, || {
        let mut conn = conn.clone();
        async move {
            pending(&mut conn, "typed:{image}", "typed-group").await == 0
                && pending(&mut conn, "typed:{funnel}", "typed-group").await == 0
        }
    })
    .await;
    let stats = handle.shutdown().await.unwrap();
    assert_eq!(
        (
            stats.received,
            stats.handled,
            stats.duplicates,
            stats.poison
        ),
        (22, 22, 0, 0)
    );

    let done = config
        .keys()
        .done("image", "typed-group", "image_family:typed:7");
    assert_eq!(done, "typed:{image}:done:typed-group:image_family:typed:7");
    let value: String = conn.get(&done).await.unwrap();
    assert!(
        domain_events::Uuid::parse_str(&value).is_ok(),
        "the done record holds the eventId"
    );
    let ttl: i64 = conn.pttl(&done).await.unwrap();
    assert!(
        ttl > 6 * 24 * 3600 * 1000 && ttl <= 7 * 24 * 3600 * 1000,
        "done TTL {ttl} ms is 7 days"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_or_redelivered_event_never_runs_its_handler_again() {
    init_tracing();
    let server = RedisServer::start();
    let config = RedisConfig::new(&server.url()).unwrap().key_prefix("dup");
    let emitter = Emitter::new("dup-test", RedisTransport::new(config.clone()).unwrap());
    let runs = Arc::new(AtomicUsize::new(0));
    let handlers = Handlers::new().on({
        let runs = runs.clone();
        move |_: ImageFamilyCompletedEvent| {
            runs.fetch_add(1, Ordering::SeqCst);
            async { Ok(()) }
        }
    });
    let handle = RedisConsumer::builder(config.clone(), "dup-group", handlers)
        .block(Duration::from_millis(100))
        .build()
        .unwrap()
        .spawn();
    emitter.emit(family_completed("dup", 1)).await.unwrap();
    eventually("the event is handled", WAIT, || async {
        handle.stats().handled == 1
    })
    .await;

    // The same event appended again (as after the producer claim expired, or a replay), twice.
    let mut conn = server.connection().await;
    let stream = config.keys().stream("image");
    let entries: redis::streams::StreamRangeReply = conn.xrange_all(&stream).await.unwrap();
    let event: String = entries.ids[0].get("event").unwrap();
    for _ in 0..2 {
        let _: String = conn
            .xadd(
                &stream,
                "*",
                &[
                    ("type", "image:family_completed"),
                    ("event", event.as_str()),
                ],
            )
            .await
            .unwrap();
    }
    eventually("both copies are skipped", WAIT, || async {
        handle.stats().duplicates == 2
    })
    .await;
    eventually("and acknowledged", WAIT, || {
        let mut conn = conn.clone();
        async move { pending(&mut conn, "dup:{image}", "dup-group").await == 0 }
    })
    .await;
    let stats = handle.shutdown().await.unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the handler ran once");
    assert_eq!((stats.received, stats.handled, stats.duplicates), (3, 1, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_more_handlers_run_at_once_than_the_concurrency() {
    init_tracing();
    let server = RedisServer::start();
    let config = RedisConfig::new(&server.url()).unwrap().key_prefix("conc");
    let emitter = Emitter::new("conc-test", RedisTransport::new(config.clone()).unwrap());
    for index in 0..30 {
        emitter.emit(family_completed("conc", index)).await.unwrap();
    }
    let (now, max) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let handlers = Handlers::new().on({
        let (now, max) = (now.clone(), max.clone());
        move |_: ImageFamilyCompletedEvent| {
            let (now, max) = (now.clone(), max.clone());
            async move {
                let running = now.fetch_add(1, Ordering::SeqCst) + 1;
                max.fetch_max(running, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            }
        }
    });
    let handle = RedisConsumer::builder(config, "conc-group", handlers)
        .concurrency(3)
        .block(Duration::from_millis(50))
        .build()
        .unwrap()
        .spawn();
    eventually("all 30 events are handled", WAIT, || async {
        handle.stats().handled == 30
    })
    .await;
    handle.shutdown().await.unwrap();
    let max = max.load(Ordering::SeqCst);
    assert!(
        max <= 3,
        "{max} handlers ran at once with a concurrency of 3"
    );
    assert!(max >= 2, "handlers did run concurrently ({max} at most)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_and_acks_the_handlers_in_flight_and_starts_no_other() {
    init_tracing();
    let server = RedisServer::start();
    let config = RedisConfig::new(&server.url()).unwrap().key_prefix("stop");
    let emitter = Emitter::new("stop-test", RedisTransport::new(config.clone()).unwrap());
    for index in 0..5 {
        emitter.emit(family_completed("stop", index)).await.unwrap();
    }
    let release = Arc::new(Semaphore::new(0));
    let started = Arc::new(Mutex::new(Vec::new()));
    let handlers = Handlers::new().on({
        let (release, started) = (release.clone(), started.clone());
        move |event: ImageFamilyCompletedEvent| {
            let (release, started) = (release.clone(), started.clone());
            async move {
                started.lock().unwrap().push(event.payload.family_index);
                release.acquire().await.map_err(|_| "closed")?.forget();
                Ok(())
            }
        }
    });
    let handle = RedisConsumer::builder(config.clone(), "stop-group", handlers)
        .concurrency(2)
        .block(Duration::from_millis(50))
        .build()
        .unwrap()
        .spawn();
    eventually("two handlers are running", WAIT, || async {
        started.lock().unwrap().len() == 2
    })
    .await;
    let shutdown = tokio::spawn(handle.shutdown());
    // The shutdown first releases the entries read ahead (marks them idle for the claim time),
    // then waits for the handlers in flight: once the release shows in Redis, a shutdown that did
    // not wait would be over.
    let mut conn = server.connection().await;
    eventually("the entries read ahead are released", WAIT, || {
        let mut conn = conn.clone();
        async move { released(&mut conn, "stop:{image}", "stop-group").await == 3 }
    })
    .await;
    assert!(
        !shutdown.is_finished(),
        "the shutdown waits for the handlers in flight"
    );
    release.add_permits(2);
    let stats = tokio::time::timeout(WAIT, shutdown)
        .await
        .expect("stopped in time")
        .unwrap()
        .unwrap();
    assert_eq!((stats.received, stats.handled), (2, 2));
    assert_eq!(
        started.lock().unwrap().len(),
        2,
        "no handler started after the shutdown"
    );

    // Both were acknowledged; the three read ahead are still pending, released: marked idle for
    // the claim time, so the next consumer claims them at once instead of after 30 s.
    assert_eq!(pending(&mut conn, "stop:{image}", "stop-group").await, 3);
    assert_eq!(
        released(&mut conn, "stop:{image}", "stop-group").await,
        3,
        "released for claiming"
    );

    // The three events not run are there for the next consumer of the group.
    let (handlers, mut rx) = reporting();
    let next = RedisConsumer::builder(config, "stop-group", handlers)
        .block(Duration::from_millis(50))
        .build()
        .unwrap()
        .spawn();
    let mut rest = HashSet::new();
    while rest.len() < 3 {
        rest.insert(
            tokio::time::timeout(WAIT, rx.recv())
                .await
                .unwrap()
                .unwrap()
                .payload
                .family_index,
        );
    }
    let first: HashSet<u64> = started.lock().unwrap().iter().copied().collect();
    assert!(rest.is_disjoint(&first) && rest.len() + first.len() == 5);
    assert_eq!(next.shutdown().await.unwrap().handled, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_read_ahead_a_shutdown_leaves_entries_not_run_unread() {
    init_tracing();
    let server = RedisServer::start();
    let config = RedisConfig::new(&server.url())
        .unwrap()
        .key_prefix("noahead");
    let emitter = Emitter::new("stop-test", RedisTransport::new(config.clone()).unwrap());
    for index in 0..5 {
        emitter
            .emit(family_completed("noahead", index))
            .await
            .unwrap();
    }
    let release = Arc::new(Semaphore::new(0));
    let started = Arc::new(Mutex::new(0));
    let handlers = Handlers::new().on({
        let (release, started) = (release.clone(), started.clone());
        move |_: ImageFamilyCompletedEvent| {
            let (release, started) = (release.clone(), started.clone());
            async move {
                *started.lock().unwrap() += 1;
                release.acquire().await.map_err(|_| "closed")?.forget();
                Ok(())
            }
        }
    });
    let handle = RedisConsumer::builder(config.clone(), "stop-group", handlers)
        .concurrency(2)
        .prefetch(0)
        .block(Duration::from_millis(50))
        .build()
        .unwrap()
        .spawn();
    eventually("two handlers are running", WAIT, || async {
        *started.lock().unwrap() == 2
    })
    .await;
    // Triggered before the handlers are released, or the freed slots would take more entries.
    handle.shutdown_handle().trigger();
    let shutdown = tokio::spawn(handle.join());
    release.add_permits(2);
    let stats = tokio::time::timeout(WAIT, shutdown)
        .await
        .expect("stopped in time")
        .unwrap()
        .unwrap();
    assert_eq!((stats.received, stats.handled), (2, 2));
    let mut conn = server.connection().await;
    assert_eq!(
        pending(&mut conn, "noahead:{image}", "stop-group").await,
        0,
        "both were acknowledged and no other entry was read"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_restarted_under_its_name_takes_back_its_pending_entries_at_once() {
    init_tracing();
    let server = RedisServer::start();
    let config = RedisConfig::new(&server.url()).unwrap().key_prefix("own");
    let emitter = Emitter::new("own-test", RedisTransport::new(config.clone()).unwrap());
    for index in 0..4 {
        emitter.emit(family_completed("own", index)).await.unwrap();
    }
    // "worker-1" read all four and died before handling them.
    let mut conn = server.connection().await;
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg("own:{image}")
        .arg("own-group")
        .arg("0")
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("own-group")
        .arg("worker-1")
        .arg("COUNT")
        .arg(10)
        .arg("STREAMS")
        .arg("own:{image}")
        .arg(">")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(pending(&mut conn, "own:{image}", "own-group").await, 4);

    let (handlers, mut rx) = reporting();
    let handle = RedisConsumer::builder(config, "own-group", handlers)
        .consumer_name("worker-1")
        .claim_idle(Duration::from_secs(3600))
        .block(Duration::from_millis(50))
        .build()
        .unwrap()
        .spawn();
    let mut got = HashSet::new();
    while got.len() < 4 {
        got.insert(
            tokio::time::timeout(WAIT, rx.recv())
                .await
                .expect("without waiting for the claim idle time")
                .unwrap()
                .payload
                .family_index,
        );
    }
    eventually("all are acknowledged", WAIT, || {
        let mut conn = conn.clone();
        async move { pending(&mut conn, "own:{image}", "own-group").await == 0 }
    })
    .await;
    assert_eq!(handle.shutdown().await.unwrap().handled, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_group_starts_at_the_beginning_or_with_new_entries_only() {
    init_tracing();
    let server = RedisServer::start();
    let config = RedisConfig::new(&server.url()).unwrap().key_prefix("start");
    let emitter = Emitter::new("start-test", RedisTransport::new(config.clone()).unwrap());
    for index in 0..3 {
        emitter
            .emit(family_completed("start", index))
            .await
            .unwrap();
    }
    let (handlers, _all_rx) = reporting();
    let all = RedisConsumer::builder(config.clone(), "from-beginning", handlers)
        .block(Duration::from_millis(50))
        .build()
        .unwrap()
        .spawn();
    let (handlers, mut new_rx) = reporting();
    let new_only = RedisConsumer::builder(config.clone(), "new-only", handlers)
        .start_from(StartFrom::NewOnly)
        .block(Duration::from_millis(50))
        .build()
        .unwrap()
        .spawn();
    let conn = server.connection().await;
    eventually("both groups exist", WAIT, || {
        let mut conn = conn.clone();
        async move {
            let groups: redis::streams::StreamInfoGroupsReply =
                conn.xinfo_groups("start:{image}").await.unwrap();
            groups.groups.len() == 2
        }
    })
    .await;
    emitter.emit(family_completed("start", 10)).await.unwrap();
    eventually("the first group handled all four", WAIT, || async {
        all.stats().handled == 4
    })
    .await;
    let first = tokio::time::timeout(WAIT, new_rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        first.payload.family_index, 10,
        "the new-only group skipped what was there before"
    );
    all.shutdown().await.unwrap();
    assert_eq!(new_only.shutdown().await.unwrap().handled, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_setup_redis_refuses_fails_the_run_instead_of_retrying_forever() {
    init_tracing();
    let server = RedisServer::start();
    let config = RedisConfig::new(&server.url()).unwrap().key_prefix("wrong");
    let mut conn = server.connection().await;
    let _: () = conn
        .set("wrong:{image}", "a string, not a stream")
        .await
        .unwrap();
    let (handlers, _rx) = reporting();
    let run = RedisConsumer::builder(config.clone(), "g", handlers)
        .build()
        .unwrap()
        .run();
    let error = tokio::time::timeout(WAIT, run)
        .await
        .expect("fails fast")
        .expect_err("WRONGTYPE");
    assert!(!error.is_transient(), "{error:?}");
    assert!(error.to_string().contains("WRONGTYPE"), "{error}");

    let (handlers, _rx) = reporting();
    let error = RedisConsumer::builder(config.clone(), "", handlers)
        .build()
        .expect_err("empty group");
    assert!(error.to_string().contains("group name is empty"), "{error}");
    let error = RedisConsumer::builder(config, "g", Handlers::new())
        .build()
        .expect_err("nothing to read");
    assert!(error.to_string().contains("no handler"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_read_ahead_with_one_key_run_once() {
    init_tracing();
    let server = RedisServer::start();
    // Without producer claims both emissions of one key reach the stream; the group's done
    // record is then the only guard, also for two entries read in one batch.
    let config = RedisConfig::new(&server.url())
        .unwrap()
        .key_prefix("onekey")
        .idempotency_claims(false);
    let emitter = Emitter::new("onekey-test", RedisTransport::new(config.clone()).unwrap());
    for _ in 0..3 {
        for index in 0..4 {
            emitter
                .emit(family_completed("onekey", index))
                .await
                .unwrap();
        }
    }
    let (handlers, mut rx) = reporting();
    let consumer = RedisConsumer::builder(config, "onekey-group", handlers)
        .concurrency(1)
        .prefetch(16)
        .block(Duration::from_millis(50))
        .build()
        .unwrap()
        .spawn();
    let mut runs = Vec::new();
    while runs.len() < 4 {
        runs.push(
            tokio::time::timeout(WAIT, rx.recv())
                .await
                .unwrap()
                .unwrap()
                .payload
                .family_index,
        );
    }
    eventually(
        "the 8 repeats are acknowledged as duplicates",
        WAIT,
        || async { consumer.stats().duplicates == 8 },
    )
    .await;
    let stats = consumer.shutdown().await.unwrap();
    runs.sort_unstable();
    assert_eq!(runs, vec![0, 1, 2, 3], "each key ran once");
    assert_eq!((stats.received, stats.handled), (12, 4));
    assert!(rx.try_recv().is_err(), "no key ran twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_read_ahead_that_wait_too_long_are_released_not_run_twice() {
    init_tracing();
    let server = RedisServer::start();
    let config = RedisConfig::new(&server.url()).unwrap().key_prefix("ahead");
    let emitter = Emitter::new("ahead-test", RedisTransport::new(config.clone()).unwrap());
    const EVENTS: u64 = 12;
    for index in 0..EVENTS {
        emitter
            .emit(family_completed("ahead", index))
            .await
            .unwrap();
    }
    let runs = Arc::new(Mutex::new(Vec::new()));
    let slow_handlers = |runs: Arc<Mutex<Vec<u64>>>, delay: Duration| {
        Handlers::new().on(move |event: ImageFamilyCompletedEvent| {
            let runs = runs.clone();
            async move {
                runs.lock().unwrap().push(event.payload.family_index);
                tokio::time::sleep(delay).await;
                Ok(())
            }
        })
    };
    // A slow consumer reads ten entries ahead of its one slot: at 100 ms a handler, the last of
    // them would wait a second, past the claim idle time of 400 ms, and the other consumer would
    // claim and run them while they still wait here.
    let claim_idle = Duration::from_millis(400);
    let slow = RedisConsumer::builder(
        config.clone(),
        "ahead-group",
        slow_handlers(runs.clone(), Duration::from_millis(100)),
    )
    .consumer_name("slow")
    .concurrency(1)
    .prefetch(10)
    .claim_idle(claim_idle)
    .block(Duration::from_millis(50))
    .build()
    .unwrap()
    .spawn();
    eventually("the slow consumer started", WAIT, || async {
        !runs.lock().unwrap().is_empty()
    })
    .await;
    let other = RedisConsumer::builder(
        config,
        "ahead-group",
        slow_handlers(runs.clone(), Duration::ZERO),
    )
    .consumer_name("other")
    .concurrency(4)
    .claim_idle(claim_idle)
    .block(Duration::from_millis(50))
    .build()
    .unwrap()
    .spawn();
    eventually("every event ran", WAIT, || async {
        runs.lock().unwrap().len() as u64 >= EVENTS
    })
    .await;
    // A second run could only come from an entry still held by a consumer. Once every entry is
    // acknowledged and both consumers wait in a blocking read (which each starts only with no
    // entry held: see `RedisConsumer`'s loop), nothing is held and nothing new can come.
    let conn = server.connection().await;
    eventually(
        "every entry is acknowledged and both consumers wait for new ones",
        WAIT,
        || {
            let mut conn = conn.clone();
            async move {
                pending(&mut conn, "ahead:{image}", "ahead-group").await == 0
                    && blocked_clients(&mut conn).await >= 2
            }
        },
    )
    .await;
    let (slow, other) = (
        slow.shutdown().await.unwrap(),
        other.shutdown().await.unwrap(),
    );
    let mut seen = runs.lock().unwrap().clone();
    seen.sort_unstable();
    assert_eq!(seen, (0..EVENTS).collect::<Vec<_>>(), "each event ran once");
    assert!(
        other.handled > 0,
        "the other consumer took over entries the slow one released"
    );
    assert_eq!(slow.handled + other.handled, EVENTS);
    assert_eq!((slow.failed, other.failed), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledgements_of_handlers_finishing_together_go_in_one_call() {
    init_tracing();
    let server = RedisServer::start();
    let config = RedisConfig::new(&server.url()).unwrap().key_prefix("acks");
    let emitter = Emitter::new("acks-test", RedisTransport::new(config.clone()).unwrap());
    const EVENTS: u64 = 200;
    let mut batch = domain_events::EmitBatch::new();
    for index in 0..EVENTS {
        batch.push(family_completed("acks", index)).unwrap();
    }
    assert!(
        emitter
            .emit_batch(batch)
            .await
            .unwrap()
            .iter()
            .all(|e| e.published())
    );
    let mut conn = server.connection().await;
    server.reset_command_stats().await;
    let (handlers, mut rx) = reporting();
    let consumer = RedisConsumer::builder(config.clone(), "acks-group", handlers)
        .concurrency(50)
        .block(Duration::from_millis(50))
        .build()
        .unwrap()
        .spawn();
    for _ in 0..EVENTS {
        tokio::time::timeout(WAIT, rx.recv())
            .await
            .unwrap()
            .unwrap();
    }
    eventually("every entry is acknowledged", WAIT, || async {
        consumer.stats().handled == EVENTS
    })
    .await;
    let stats = consumer.shutdown().await.unwrap();
    assert_eq!((stats.received, stats.handled), (EVENTS, EVENTS));
    assert_eq!(pending(&mut conn, "acks:{image}", "acks-group").await, 0);
    let done: Vec<String> = conn.keys("acks:{image}:done:acks-group:*").await.unwrap();
    assert_eq!(done.len() as u64, EVENTS, "a done record per event");
    assert_eq!(server.command_calls("xack").await, EVENTS);
    let scripts = server.command_calls("evalsha").await + server.command_calls("eval").await;
    assert!(
        scripts < EVENTS / 2,
        "{scripts} script calls settled {EVENTS} entries handled 50 at a time"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_ahead_churn_never_dead_letters_an_event_that_did_not_fail() {
    init_tracing();
    let server = RedisServer::start();
    let config = RedisConfig::new(&server.url()).unwrap().key_prefix("churn");
    let emitter = Emitter::new("churn-test", RedisTransport::new(config.clone()).unwrap());
    const EVENTS: u64 = 40;
    for index in 0..EVENTS {
        emitter
            .emit(family_completed("churn", index))
            .await
            .unwrap();
    }
    // One slot, a read-ahead far larger than the claim idle time allows: entries wait, are
    // released for claiming, claimed again, ... Every handler succeeds.
    let runs = Arc::new(AtomicUsize::new(0));
    let handlers = Handlers::new()
        .on({
            let runs = runs.clone();
            move |_: ImageFamilyCompletedEvent| {
                let runs = runs.clone();
                async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Ok(())
                }
            }
        })
        .knowing::<DomainEvent>();
    let handle = RedisConsumer::builder(config, "churn-group", handlers)
        .concurrency(1)
        .prefetch(64)
        .claim_idle(Duration::from_millis(400))
        .max_deliveries(2)
        .block(Duration::from_millis(100))
        .build()
        .unwrap()
        .spawn();
    let mut conn = server.connection().await;
    eventually("every entry is settled", Duration::from_secs(60), || {
        let mut conn = conn.clone();
        let handle = &handle;
        async move {
            let stats = handle.stats();
            stats.handled + stats.failed == EVENTS
                && pending(&mut conn, "churn:{image}", "churn-group").await == 0
        }
    })
    .await;
    let stats = handle.shutdown().await.expect("the consumer ran");
    let dead: u64 = conn.xlen("churn:{image}:dlq:churn-group").await.unwrap();
    assert_eq!(
        (dead, stats.failed),
        (0, 0),
        "no event that never failed is dead-lettered: {stats:?}"
    );
    assert_eq!(stats.handled, EVENTS);
    assert_eq!(runs.load(Ordering::SeqCst) as u64, EVENTS, "each ran once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_of_several_categories_on_redis_cluster_fails_with_a_clear_error() {
    init_tracing();
    let server = RedisServer::start_with_args(
        false,
        &[
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
        ],
    );
    let mut conn = server.connection().await;
    let _: () = redis::cmd("CLUSTER")
        .arg("ADDSLOTSRANGE")
        .arg(0)
        .arg(16383)
        .query_async(&mut conn)
        .await
        .expect("CLUSTER ADDSLOTSRANGE");
    eventually("the one-node cluster is up", WAIT, || {
        let mut conn = conn.clone();
        async move {
            let info: String = redis::cmd("CLUSTER")
                .arg("INFO")
                .query_async(&mut conn)
                .await
                .expect("CLUSTER INFO");
            info.contains("cluster_state:ok")
        }
    })
    .await;
    let config = RedisConfig::new(&server.url())
        .unwrap()
        .key_prefix("cluster");
    let handlers = Handlers::new()
        .on(|_: ImageFamilyCompletedEvent| async { Ok(()) })
        .on_category::<DomainEvent, _, _>("funnel", |_: DomainEvent| async { Ok(()) });
    let consumer = RedisConsumer::builder(config, "cluster-group", handlers)
        .block(Duration::from_millis(100))
        .build()
        .unwrap();
    let error = tokio::time::timeout(WAIT, consumer.run())
        .await
        .expect("the consumer stops instead of retrying forever")
        .expect_err("streams in different slots cannot be read together");
    let shown = error.to_string();
    assert!(
        shown.contains("Cluster") && shown.contains("funnel") && shown.contains("image"),
        "the error names the cause and the categories: {shown}"
    );
}
