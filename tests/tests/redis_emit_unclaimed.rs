//! Emitting without the producer-side idempotency claim (`RedisConfig::idempotency_claims(false)`)
//! against a real `redis-server`: plain pipelined `XADD`s of the same entries, nothing else
//! written, and consumers still running a repeated key's handler once, at concurrency 1 too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain_events::{EmitBatch, Emitter, HandlerError, Handlers};
use domain_events_catalog::{DomainEvent, ImageFamilyCompletedEvent};
use domain_events_redis::{RedisConfig, RedisConsumer, RedisTransport, StartFrom};
use domain_events_tests::redis_server::RedisServer;
use domain_events_tests::redis_worker::{eventually, family_completed, init_tracing};
use redis::AsyncCommands;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_claims_events_are_plain_xadds_and_consumers_still_run_a_key_once() {
    init_tracing();
    let server = RedisServer::start();
    let config = RedisConfig::new(&server.url())
        .unwrap()
        .key_prefix("unclaimed")
        .idempotency_claims(false);
    assert!(!config.idempotency_claims_enabled());
    assert!(
        RedisConfig::new(&server.url())
            .unwrap()
            .idempotency_claims_enabled(),
        "claims are on by default"
    );
    let emitter = Emitter::new(
        "unclaimed-test",
        RedisTransport::new(config.clone()).unwrap(),
    );
    let mut conn = server.connection().await;
    server.reset_command_stats().await;

    // Key 1 three times: every emission is published, none is a duplicate.
    let mut batch = EmitBatch::new();
    for index in [0u64, 1, 2, 1, 3] {
        batch.push(family_completed("v", index)).unwrap();
    }
    let results = emitter.emit_batch(batch).await.unwrap();
    assert!(results.iter().all(|e| e.published() && !e.duplicate));
    assert!(
        emitter
            .emit(family_completed("v", 1))
            .await
            .unwrap()
            .published()
    );
    assert_eq!(emitter.stats().emitted, 6);

    assert_eq!(server.command_calls("xadd").await, 6);
    assert_eq!(server.command_calls("evalsha").await, 0);
    assert_eq!(server.command_calls("set").await, 0);
    let keys: Vec<String> = conn.keys("unclaimed:*").await.unwrap();
    assert_eq!(
        keys,
        vec![config.keys().stream("image")],
        "only the stream is written"
    );
    let stream: redis::streams::StreamRangeReply = conn
        .xrange_all(config.keys().stream("image"))
        .await
        .unwrap();
    assert_eq!(stream.ids.len(), 6);
    for entry in &stream.ids {
        let mut fields: Vec<&str> = entry.map.keys().map(String::as_str).collect();
        fields.sort_unstable();
        assert_eq!(fields, ["event", "type"]);
    }

    // The consumer's done records still make each key run once, even at concurrency 1 where the
    // handler slot is given back while an entry is being acknowledged. The script cache is empty,
    // as after a restart, so the acknowledgement script is loaded on the way.
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut conn)
        .await
        .unwrap();
    let runs: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let counted = runs.clone();
    let handlers = Handlers::new()
        .on(move |event: ImageFamilyCompletedEvent| {
            let counted = counted.clone();
            async move {
                *counted
                    .lock()
                    .expect("lock")
                    .entry(event.idempotency_key)
                    .or_default() += 1;
                Ok::<_, HandlerError>(())
            }
        })
        .knowing::<DomainEvent>();
    let consumer = RedisConsumer::builder(config, "unclaimed-group", handlers)
        .concurrency(1)
        .start_from(StartFrom::Beginning)
        .build()
        .unwrap()
        .spawn();
    eventually("every entry is settled", Duration::from_secs(20), || {
        let stats = consumer.stats();
        async move { stats.handled + stats.duplicates == 6 }
    })
    .await;
    let stats = consumer.shutdown().await.unwrap();
    assert_eq!((stats.handled, stats.duplicates), (4, 2), "{stats:?}");
    let runs = runs.lock().expect("lock").clone();
    assert_eq!(runs.len(), 4, "{runs:?}");
    assert!(runs.values().all(|&n| n == 1), "{runs:?}");
    assert_eq!(
        conn.xpending_count::<_, _, _, _, _, redis::streams::StreamPendingCountReply>(
            "unclaimed:{image}",
            "unclaimed-group",
            "-",
            "+",
            10
        )
        .await
        .unwrap()
        .ids
        .len(),
        0,
        "every entry is acknowledged"
    );
}
