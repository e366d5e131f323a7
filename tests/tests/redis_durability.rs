//! `RedisConfig::wait_for_replicas` on one real `redis-server` and a replica of it: an emit
//! returns once the replica has the event; without the replica the emit fails with an unknown
//! outcome (the event is on the stream nonetheless) and emitting it again is safe.

use std::time::Duration;

use domain_events::{EmitError, Emitter, TransportError};
use domain_events_redis::{Error, RedisConfig, RedisTransport};
use domain_events_tests::redis_server::RedisServer;
use domain_events_tests::redis_worker::{eventually, family_completed, init_tracing};
use redis::AsyncCommands;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emit_returns_once_a_replica_has_it_and_fails_retryably_without_one() {
    init_tracing();
    let primary = RedisServer::start_with_args(false, &["--repl-diskless-sync-delay", "0"]);
    let config = RedisConfig::new(&primary.url())
        .unwrap()
        .key_prefix("durable")
        .wait_for_replicas(1, Duration::from_secs(1));
    let stream = config.keys().stream("image");

    // Unusable settings are refused when the transport is built.
    for unusable in [
        config
            .clone()
            .wait_for_replicas(0, Duration::from_millis(200)),
        config
            .clone()
            .wait_for_replicas(1, config.connection().response_timeout_value()),
    ] {
        let refused = RedisTransport::new(unusable).unwrap_err();
        assert!(matches!(refused, Error::Config(_)), "{refused:?}");
    }

    let emitter = Emitter::new("durable", RedisTransport::new(config.clone()).unwrap());
    // No replica: the write happens, WAIT counts none, the caller sees an unknown outcome.
    let error = emitter
        .emit(family_completed("durable", 1))
        .await
        .unwrap_err();
    assert!(error.is_outcome_unknown(), "{error:?}");
    let EmitError::Transport(TransportError::Unknown(source)) = &error else {
        panic!("not an unknown outcome: {error:?}");
    };
    assert!(
        source.to_string().contains("reached 0 of 1 replicas"),
        "{source}"
    );
    let mut conn = primary.connection().await;
    let stored: usize = conn.xlen(&stream).await.unwrap();
    assert_eq!(
        stored, 1,
        "the event is on the stream although the emit failed"
    );

    // A replica joins: the same event again is reported as the earlier attempt (no second
    // entry), and a new event returns only once the replica has it.
    let replica = RedisServer::start_with_args(
        false,
        &["--replicaof", "127.0.0.1", &primary.port().to_string()],
    );
    let mut replica_conn = replica.connection().await;
    eventually(
        "the primary streams to its replica",
        Duration::from_secs(30),
        || {
            let mut conn = conn.clone();
            async move {
                let info: String = redis::cmd("INFO")
                    .arg("replication")
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                info.contains("connected_slaves:1") && info.contains("state=online")
            }
        },
    )
    .await;
    let again = emitter.emit(family_completed("durable", 1)).await.unwrap();
    assert!(again.duplicate, "{again:?}");
    let fresh = emitter.emit(family_completed("durable", 2)).await.unwrap();
    assert!(fresh.published(), "{fresh:?}");
    // No waiting here: the emit returned after WAIT counted the replica.
    let replicated: usize = replica_conn.xlen(&stream).await.unwrap();
    assert_eq!(replicated, 2);
    let stored: usize = conn.xlen(&stream).await.unwrap();
    assert_eq!(stored, 2);
}
