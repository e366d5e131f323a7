//! Faults against real `redis-server` processes: a consumer process killed with `SIGKILL` in the
//! middle of a run, Redis restarted (append-only file on) during a run, and Redis stopped while
//! emitting.

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain_events::{EmitBatch, EmitError, Emitter, Handlers};
use domain_events_catalog::{DomainEvent, ImageFamilyCompletedEvent};
use domain_events_redis::{RedisConfig, RedisConsumer, RedisTransport};
use domain_events_tests::redis_server::{RedisServer, pending};
use domain_events_tests::redis_worker::{
    WorkerSettings, counter_key, eventually, family_completed, init_tracing,
};
use domain_events_tests::worker_process::spawn_ready;
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;

const WAIT: Duration = Duration::from_secs(60);

/// A worker process; killed when dropped.
struct Worker(Child);

impl Worker {
    fn spawn(settings: &WorkerSettings) -> Self {
        Worker(spawn_ready(
            Command::new(env!("CARGO_BIN_EXE_redis-consumer-worker")).envs(settings.to_env()),
        ))
    }

    fn sigkill(&mut self) {
        self.0.kill().expect("SIGKILL");
        self.0.wait().expect("reaped");
    }

    /// Closes its standard input (a graceful shutdown) and waits for it to exit.
    fn stop(mut self) {
        drop(self.0.stdin.take());
        let status = self.0.wait().expect("exited");
        assert!(status.success(), "worker exited with {status}");
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_killed_with_sigkill_loses_nothing_and_reruns_only_what_it_had_in_flight() {
    init_tracing();
    let server = RedisServer::start();
    let config = RedisConfig::new(&server.url()).unwrap().key_prefix("kill");
    let emitter = Emitter::new("kill-test", RedisTransport::new(config.clone()).unwrap());
    const EVENTS: u64 = 300;
    const CONCURRENCY: usize = 4;
    const PREFETCH: usize = 8;
    for start in (0..EVENTS).step_by(50) {
        let mut batch = EmitBatch::new();
        for index in start..start + 50 {
            batch.push(family_completed("kill", index)).unwrap();
        }
        emitter.emit_batch(batch).await.unwrap();
    }
    let settings = |consumer: &str| WorkerSettings {
        url: server.url(),
        prefix: "kill".into(),
        group: "kill-group".into(),
        consumer: consumer.into(),
        counters: "kill-test".into(),
        concurrency: CONCURRENCY,
        prefetch: PREFETCH,
        delay: Duration::from_millis(20),
        // Long enough that a living worker's entry in flight is not claimed by the other even on a
        // loaded machine (a claim of it would run it twice without any kill); the survivor takes
        // the killed worker's entries once they are this idle.
        claim_idle: Duration::from_millis(2000),
    };
    let mut conn = server.connection().await;
    let handled_so_far = |conn: &MultiplexedConnection| {
        let mut conn = conn.clone();
        async move {
            conn.keys::<_, Vec<String>>("kill-test:handled:*")
                .await
                .unwrap()
                .len()
        }
    };

    let mut a = Worker::spawn(&settings("worker-a"));
    let b = Worker::spawn(&settings("worker-b"));
    eventually("a third of the events are handled", WAIT, || async {
        handled_so_far(&conn).await >= 100
    })
    .await;
    a.sigkill();
    // What the killed worker had taken and not settled: in flight (the only events that may run
    // twice) or read ahead.
    let left: Vec<(String, String, u64, u64)> = conn
        .xpending_consumer_count("kill:{image}", "kill-group", "-", "+", 1000, "worker-a")
        .await
        .map(|reply: redis::streams::StreamPendingCountReply| {
            reply
                .ids
                .into_iter()
                .map(|p| {
                    (
                        p.id,
                        p.consumer,
                        p.last_delivered_ms as u64,
                        p.times_delivered as u64,
                    )
                })
                .collect()
        })
        .unwrap();
    assert!(
        left.len() <= CONCURRENCY + PREFETCH,
        "the killed worker held {} entries, more than its concurrency and read-ahead",
        left.len()
    );
    let left_ids: HashSet<String> = left.into_iter().map(|(id, ..)| id).collect();

    // The survivor claims them after the idle time and finishes the run.
    let entries: redis::streams::StreamRangeReply = conn.xrange_all("kill:{image}").await.unwrap();
    assert_eq!(entries.ids.len() as u64, EVENTS);
    let event_of_entry: HashMap<String, String> = entries
        .ids
        .iter()
        .map(|entry| {
            let event: String = entry.get("event").unwrap();
            let event: serde_json::Value = serde_json::from_str(&event).unwrap();
            (
                entry.id.clone(),
                event["eventId"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    eventually(
        "every event is handled and the group has nothing pending",
        WAIT,
        || {
            let mut conn = conn.clone();
            async move {
                conn.keys::<_, Vec<String>>("kill-test:handled:*")
                    .await
                    .unwrap()
                    .len() as u64
                    == EVENTS
                    && pending(&mut conn, "kill:{image}", "kill-group").await == 0
            }
        },
    )
    .await;
    b.stop();

    let mut twice = Vec::new();
    for (entry_id, event_id) in &event_of_entry {
        let runs: u64 = conn.get(counter_key("kill-test", event_id)).await.unwrap();
        assert!(runs >= 1, "event {event_id} was never handled");
        assert!(runs <= 2, "event {event_id} ran {runs} times");
        if runs == 2 {
            twice.push(entry_id.clone());
        }
    }
    assert!(
        twice.len() <= CONCURRENCY,
        "{} events ran twice, more than the killed worker's concurrency",
        twice.len()
    );
    for entry_id in &twice {
        assert!(
            left_ids.contains(entry_id),
            "entry {entry_id} ran twice but was not held by the killed worker"
        );
    }
    eprintln!(
        "killed worker held {} entries; {} events ran twice",
        left_ids.len(),
        twice.len()
    );
    let dead: u64 = conn.xlen("kill:{image}:dlq:kill-group").await.unwrap();
    assert_eq!(dead, 0, "nothing was dead-lettered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_during_a_run_with_appendonly_loses_nothing() {
    init_tracing();
    let server = Arc::new(Mutex::new(RedisServer::start_with(true)));
    let url = server.lock().unwrap().url();
    let config = RedisConfig::new(&url)
        .unwrap()
        .key_prefix("restart")
        .response_timeout(Duration::from_millis(500));
    const EVENTS: u64 = 300;

    let handled = Arc::new(Mutex::new(HashMap::<String, u32>::new()));
    let handlers = Handlers::new()
        .on({
            let handled = handled.clone();
            move |event: ImageFamilyCompletedEvent| {
                *handled
                    .lock()
                    .unwrap()
                    .entry(event.idempotency_key)
                    .or_default() += 1;
                async { Ok(()) }
            }
        })
        .knowing::<DomainEvent>();
    let consumer = RedisConsumer::builder(config.clone(), "restart-group", handlers)
        .concurrency(8)
        .block(Duration::from_millis(100))
        .claim_idle(Duration::from_secs(1))
        .build()
        .unwrap()
        .spawn();

    // Emit in batches, retrying a failed batch until it goes through (keys make that safe).
    let emitter = Emitter::builder("restart-test", RedisTransport::new(config.clone()).unwrap())
        .timeout(Duration::from_secs(1))
        .build();
    let mut failed_batches = 0;
    let mut outage = None;
    for start in (0..EVENTS).step_by(10) {
        if start == 150 {
            // Redis goes away for a second while the emitter and the consumer carry on.
            let server = server.clone();
            let (stopped, is_stopped) = tokio::sync::oneshot::channel();
            outage = Some(tokio::task::spawn_blocking(move || {
                server.lock().unwrap().stop();
                let _ = stopped.send(());
                // An outage of one second: the scenario, not a wait for a condition.
                std::thread::sleep(Duration::from_secs(1));
                server.lock().unwrap().restart();
            }));
            // The next batches go out while Redis is away: wait until the stop is done rather
            // than a fixed time.
            tokio::time::timeout(WAIT, is_stopped)
                .await
                .expect("Redis stopped in time")
                .expect("the outage task reports the stop");
        }
        loop {
            let mut batch = EmitBatch::new();
            for index in start..start + 10 {
                batch.push(family_completed("restart", index)).unwrap();
            }
            match emitter.emit_batch(batch).await {
                Ok(_) => break,
                Err(error) => {
                    failed_batches += 1;
                    assert!(failed_batches < 200, "Redis never came back: {error}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        if start == 140 {
            // Let the consumer be busy when Redis goes away.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    outage.expect("the outage happened").await.unwrap();
    assert!(failed_batches > 0, "emissions failed while Redis was away");
    let all_keys: HashSet<String> = (0..EVENTS)
        .map(|index| format!("image_family:restart:{index}"))
        .collect();
    eventually(
        "every emitted event is handled after the restart",
        WAIT,
        || async {
            handled
                .lock()
                .unwrap()
                .keys()
                .cloned()
                .collect::<HashSet<_>>()
                == all_keys
        },
    )
    .await;
    let mut conn = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let len: u64 = conn.xlen("restart:{image}").await.unwrap();
    assert_eq!(
        len, EVENTS,
        "the claims survived the restart: retried emissions were duplicates"
    );
    eventually("the group has nothing pending", WAIT, || {
        let mut conn = conn.clone();
        async move { pending(&mut conn, "restart:{image}", "restart-group").await == 0 }
    })
    .await;
    let stats = consumer.shutdown().await.unwrap();
    eprintln!("{failed_batches} emissions failed while Redis restarted; consumer stats {stats:?}");
    assert!(stats.handled >= EVENTS, "{stats:?}");
    let dead: u64 = conn
        .xlen("restart:{image}:dlq:restart-group")
        .await
        .unwrap();
    assert_eq!(dead, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_while_emitting_gives_an_error_within_the_timeout_and_the_caller_goes_on() {
    init_tracing();
    let mut server = RedisServer::start();
    let config = RedisConfig::new(&server.url())
        .unwrap()
        .key_prefix("stopped");
    let emitter = Emitter::builder("stopped-test", RedisTransport::new(config.clone()).unwrap())
        .timeout(Duration::from_secs(1))
        .build();
    assert!(
        emitter
            .emit(family_completed("stopped", 0))
            .await
            .unwrap()
            .published()
    );

    server.stop();
    let outcome = tokio::time::timeout(
        Duration::from_secs(15),
        emitter.emit(family_completed("stopped", 1)),
    )
    .await
    .expect("the emitter answers instead of hanging");
    match outcome {
        Err(EmitError::Timeout(_) | EmitError::Transport(_)) => {}
        other => panic!("expected a timeout or a transport error, got {other:?}"),
    }
    let logged = tokio::time::timeout(
        Duration::from_secs(15),
        emitter.emit_or_log(family_completed("stopped", 2)),
    )
    .await
    .expect("emit_or_log answers instead of hanging");
    assert!(
        logged.is_none(),
        "the error is logged and the caller goes on"
    );
    let mut batch = EmitBatch::new();
    batch.push(family_completed("stopped", 3)).unwrap();
    assert!(
        tokio::time::timeout(Duration::from_secs(15), emitter.emit_batch(batch))
            .await
            .unwrap()
            .is_err()
    );
    assert_eq!(emitter.stats().failed, 3);

    // When Redis is back, the same emitter works again.
    server.restart();
    // Tried again until a deadline, not a count of tries: a loaded machine makes each try slower.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut published = false;
    while tokio::time::Instant::now() < deadline {
        if let Ok(emitted) = emitter.emit(family_completed("stopped", 1)).await {
            published = emitted.published();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(published, "the emitter reconnected");
}
