//! Redis going away in the ways production sees, against real `redis-server` processes: idle
//! connections closed by the server, a frozen server, out-of-memory, restarts, and a shutdown while
//! Redis does not answer. Each test pins an outcome the hardening issue asked for.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain_events::{Emitter, HandlerError, Handlers};
use domain_events_catalog::{DomainEvent, ImageFamilyCompletedEvent};
use domain_events_redis::{RedisConfig, RedisConsumer, RedisTransport};
use domain_events_tests::redis_server::{RedisServer, pending};
use domain_events_tests::redis_worker::{eventually, family_completed, init_tracing};
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;

const WAIT: Duration = Duration::from_secs(30);

async fn connected_clients(conn: &mut MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("clients")
        .query_async(conn)
        .await
        .expect("INFO clients");
    info.lines()
        .find_map(|line| line.strip_prefix("connected_clients:"))
        .map_or(0, |n| n.trim().parse().expect("a number"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rare_emitter_behind_a_one_second_idle_timeout_loses_no_event() {
    init_tracing();
    let mut server = RedisServer::start_with_args(false, &["--timeout", "1"]);
    let config = RedisConfig::new(&server.url()).unwrap().key_prefix("idle");
    let emitter = Emitter::new("idle-test", RedisTransport::new(config).unwrap());
    let mut probe = server.connection().await;
    const EVENTS: u64 = 20;
    for index in 0..EVENTS {
        if index > 0 {
            // Every other time the server's idle timeout closes the connection; in between an
            // operator (or a proxy) kills it at once.
            if index % 2 == 1 {
                let _: redis::Value = redis::cmd("CLIENT")
                    .arg("KILL")
                    .arg("TYPE")
                    .arg("normal")
                    .arg("SKIPME")
                    .arg("yes")
                    .query_async(&mut probe)
                    .await
                    .expect("CLIENT KILL");
            }
            eventually("the emitter's connection is closed", WAIT, || {
                let mut probe = probe.clone();
                async move { connected_clients(&mut probe).await == 1 }
            })
            .await;
        }
        let emitted = emitter
            .emit(family_completed("idle", index))
            .await
            .unwrap_or_else(|error| panic!("emit {index} after a closed connection: {error}"));
        assert!(emitted.published(), "event {index}");
    }
    let stats = emitter.stats();
    assert_eq!((stats.emitted, stats.failed), (EVENTS, 0), "{stats:?}");
    let length: u64 = probe.xlen("idle:{image}").await.expect("XLEN");
    assert_eq!(length, EVENTS, "every event is on the stream once");

    // A restart drops the connection too; the first emit after it goes through.
    server.restart();
    let emitted = emitter
        .emit(family_completed("idle", EVENTS))
        .await
        .expect("the first emit after a restart");
    assert!(emitted.published());
    assert_eq!(emitter.stats().failed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emit_redis_did_not_answer_in_time_is_reported_unknown_and_a_retry_is_safe() {
    init_tracing();
    let mut server = RedisServer::start();
    let config = RedisConfig::new(&server.url())
        .unwrap()
        .key_prefix("frozen")
        .response_timeout(Duration::from_millis(300));
    let emitter = Emitter::builder("frozen-test", RedisTransport::new(config).unwrap())
        .timeout(Duration::from_secs(20))
        .build();
    emitter
        .emit(family_completed("frozen", 0))
        .await
        .expect("Redis answers");

    server.freeze();
    let error = emitter
        .emit(family_completed("frozen", 1))
        .await
        .expect_err("Redis is frozen");
    server.thaw();
    let shown = error.to_string();
    assert!(
        shown.contains("may have been") && shown.contains("same idempotency key"),
        "the error says the outcome is unknown and a retry is safe: {shown}"
    );
    assert!(error.is_outcome_unknown(), "{error:?}");
    let stats = emitter.stats();
    assert_eq!(
        (stats.failed, stats.unknown),
        (0, 1),
        "counted as unknown, not failed: {stats:?}"
    );

    // Redis runs the command it got once it resumes: the event was stored after all.
    let mut conn = server.connection().await;
    eventually("the frozen emit's entry is on the stream", WAIT, || {
        let mut conn = conn.clone();
        async move { conn.xlen::<_, u64>("frozen:{image}").await.expect("XLEN") == 2 }
    })
    .await;
    // Emitting it again with the same key is safe: reported a duplicate, no second entry.
    let again = emitter
        .emit(family_completed("frozen", 1))
        .await
        .expect("Redis answers again");
    assert!(again.duplicate, "{again:?}");
    let length: u64 = conn.xlen("frozen:{image}").await.expect("XLEN");
    assert_eq!(length, 2);
}

/// Handlers counting their runs per idempotency key; the first run turns Redis's out-of-memory
/// state on through `admin` (as if memory filled up right after it), once.
fn oom_handlers(admin: MultiplexedConnection, runs: Arc<Mutex<HashMap<String, u32>>>) -> Handlers {
    let armed = Arc::new(AtomicBool::new(true));
    Handlers::new()
        .on(move |event: ImageFamilyCompletedEvent| {
            let (mut admin, runs, armed) = (admin.clone(), runs.clone(), armed.clone());
            async move {
                *runs
                    .lock()
                    .unwrap()
                    .entry(event.idempotency_key.clone())
                    .or_default() += 1;
                if armed.swap(false, Ordering::SeqCst) {
                    let _: () = redis::cmd("CONFIG")
                        .arg("SET")
                        .arg("maxmemory")
                        .arg("1")
                        .query_async(&mut admin)
                        .await
                        .map_err(HandlerError::from_error)?;
                }
                Ok(())
            }
        })
        .knowing::<DomainEvent>()
}

async fn set_maxmemory(conn: &mut MultiplexedConnection, bytes: u64) {
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(bytes)
        .query_async(conn)
        .await
        .expect("CONFIG SET maxmemory");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_memory_is_waited_for_and_no_handled_event_runs_again() {
    init_tracing();
    let server = RedisServer::start_with_args(false, &["--maxmemory-policy", "noeviction"]);
    let config = RedisConfig::new(&server.url()).unwrap().key_prefix("oom");
    let emitter = Emitter::new("oom-test", RedisTransport::new(config.clone()).unwrap());
    const EVENTS: u64 = 20;
    for index in 0..EVENTS {
        emitter.emit(family_completed("oom", index)).await.unwrap();
    }
    let mut admin = server.connection().await;

    // A consumer started while Redis refuses writes waits instead of failing.
    set_maxmemory(&mut admin, 1).await;
    let runs = Arc::new(Mutex::new(HashMap::new()));
    let consumer = RedisConsumer::builder(
        config.clone(),
        "oom-group",
        oom_handlers(server.connection().await, runs.clone()),
    )
    .block(Duration::from_millis(100))
    .claim_idle(Duration::from_millis(300))
    .max_deliveries(2)
    .build()
    .unwrap();
    let handle = consumer.spawn();
    eventually(
        "the consumer tried to create its group 3 times",
        WAIT,
        || async { server.error_count("OOM").await >= 3 },
    )
    .await;
    assert!(
        !handle.is_finished(),
        "a consumer started during OOM waits for Redis to accept writes"
    );

    // Memory frees up; the first handler run fills it again, so the done records are refused
    // while the handlers succeed. The consumer keeps trying to settle; nothing runs twice.
    set_maxmemory(&mut admin, 0).await;
    eventually("every event ran", WAIT, || async {
        runs.lock().unwrap().len() as u64 == EVENTS
    })
    .await;
    let refused = server.error_count("OOM").await;
    eventually("Redis refused 10 more writes", WAIT, || async {
        server.error_count("OOM").await >= refused + 10
    })
    .await;
    set_maxmemory(&mut admin, 0).await;

    eventually("every entry is settled", WAIT, || {
        let mut conn = admin.clone();
        async move { pending(&mut conn, "oom:{image}", "oom-group").await == 0 }
    })
    .await;
    let stats = handle.shutdown().await.expect("the consumer ran");
    let runs = runs.lock().unwrap().clone();
    let twice: Vec<_> = runs.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "handled events ran again: {twice:?}");
    assert_eq!(runs.len() as u64, EVENTS);
    let dead: u64 = admin.xlen("oom:{image}:dlq:oom-group").await.expect("XLEN");
    assert_eq!(dead, 0, "nothing is dead-lettered");
    assert_eq!(
        (stats.handled, stats.failed),
        (EVENTS, 0),
        "every event handled once: {stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_resumes_within_a_second_of_redis_being_back() {
    init_tracing();
    let mut server = RedisServer::start();
    let config = RedisConfig::new(&server.url())
        .unwrap()
        .key_prefix("resume");
    let emitter = Emitter::new("resume-test", RedisTransport::new(config.clone()).unwrap());
    let (tx, mut handled) = tokio::sync::mpsc::unbounded_channel();
    let handlers = Handlers::new()
        .on(move |event: ImageFamilyCompletedEvent| {
            let tx = tx.clone();
            async move {
                tx.send(event.payload.family_index)
                    .map_err(|_| "gone".into())
            }
        })
        .knowing::<DomainEvent>();
    let handle = RedisConsumer::builder(config, "resume-group", handlers)
        .build()
        .unwrap()
        .spawn();
    emitter.emit(family_completed("resume", 0)).await.unwrap();
    assert_eq!(
        tokio::time::timeout(WAIT, handled.recv()).await.unwrap(),
        Some(0)
    );

    let mut gaps = Vec::new();
    for index in 1..=10u64 {
        // An outage of 1.5 s (the scenario, not a wait for a condition): the consumer's read
        // fails and it backs off meanwhile.
        server.stop();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        server.restart();
        let back = tokio::time::Instant::now();
        emitter
            .emit(family_completed("resume", index))
            .await
            .expect("the emitter resumes at once");
        let got = tokio::time::timeout(WAIT, handled.recv())
            .await
            .expect("handled after the restart")
            .expect("open");
        assert_eq!(got, index);
        gaps.push(back.elapsed());
    }
    gaps.sort();
    let median = (gaps[4] + gaps[5]) / 2;
    eprintln!("resume after a restart: median {median:?}, all {gaps:?}");
    assert!(
        median < Duration::from_secs(1),
        "median time from Redis back to the next event handled: {median:?} ({gaps:?})"
    );
    handle.shutdown().await.expect("the consumer ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_against_a_frozen_redis_returns_within_the_grace_period() {
    init_tracing();
    let mut server = RedisServer::start();
    let config = RedisConfig::new(&server.url()).unwrap().key_prefix("grace");
    let emitter = Emitter::new("grace-test", RedisTransport::new(config.clone()).unwrap());
    for index in 0..40 {
        emitter
            .emit(family_completed("grace", index))
            .await
            .unwrap();
    }
    // Handlers that wait until Redis is frozen, so they all finish against a frozen Redis.
    let frozen = Arc::new(tokio::sync::Notify::new());
    let started = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let handlers = Handlers::new()
        .on({
            let (frozen, started) = (frozen.clone(), started.clone());
            move |_: ImageFamilyCompletedEvent| {
                let (frozen, started) = (frozen.clone(), started.clone());
                async move {
                    started.fetch_add(1, Ordering::SeqCst);
                    frozen.notified().await;
                    Ok(())
                }
            }
        })
        .knowing::<DomainEvent>();
    let handle = RedisConsumer::builder(config, "grace-group", handlers)
        .concurrency(4)
        .shutdown_grace(Duration::from_secs(2))
        .build()
        .unwrap()
        .spawn();
    eventually("four handlers run and more entries wait", WAIT, || async {
        started.load(Ordering::SeqCst) == 4
    })
    .await;
    server.freeze();
    frozen.notify_waiters();
    let asked = tokio::time::Instant::now();
    // The grace period (2 s) plus room for a loaded machine; 17.5 s before it was bounded.
    let stats = tokio::time::timeout(Duration::from_secs(6), handle.shutdown())
        .await
        .expect("shutdown returns within the grace period although Redis does not answer")
        .expect("a frozen Redis is not a consumer failure");
    eprintln!("shutdown against a frozen Redis took {:?}", asked.elapsed());
    assert_eq!(stats.handled, 0, "nothing could be settled: {stats:?}");
    server.thaw();
}
