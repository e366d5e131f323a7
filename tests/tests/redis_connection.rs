//! The one connection configuration of the Redis and BullMQ crates (`ConnectionConfig`) against a
//! real `redis-server`: the reachability probe and its errors, and Unix socket URLs, for both.

use domain_events::Emitter;
use domain_events_bullmq::{BullmqConfig, BullmqTransport};
use domain_events_redis::{ConnectionConfig, Error, RedisConfig, RedisTransport};
use domain_events_tests::redis_server::RedisServer;
use domain_events_tests::redis_worker::{family_completed, init_tracing};
use domain_events_tests::secrets::{PASSWORD, WRONG, assert_clean, encode};
use redis::AsyncCommands;

/// The connection settings of both crates' configurations for `url`.
fn both(url: &str) -> [ConnectionConfig; 2] {
    [
        RedisConfig::new(url).unwrap().connection().clone(),
        BullmqConfig::new(url).unwrap().connection().clone(),
    ]
}

/// The probe's error for `connection`, checked to be a transient [`Error::Unavailable`] without
/// the password.
async fn probe_error(connection: &ConnectionConfig) -> Error {
    let error = connection.probe().await.expect_err("the probe fails");
    assert_clean(&format!("{error} {error:?}"), connection.redacted_url());
    assert!(matches!(error, Error::Unavailable { .. }), "{error:?}");
    assert!(error.is_transient(), "{error:?}");
    error
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_reaches_redis_or_says_why_not_for_both_crates() {
    init_tracing();
    let server = RedisServer::start_with_args(false, &["--requirepass", PASSWORD]);
    let port = server.port();
    for connection in both(&format!("redis://:{}@127.0.0.1:{port}/0", encode(PASSWORD))) {
        connection.probe().await.expect("reaches Redis");
    }

    // A wrong password: Redis's own reason, the same for either crate's configuration.
    let [redis, bullmq] = both(&format!("redis://:{}@127.0.0.1:{port}/0", encode(WRONG)));
    let (redis, bullmq) = (probe_error(&redis).await, probe_error(&bullmq).await);
    assert_eq!(redis.to_string(), bullmq.to_string());
    assert!(
        redis.to_string().contains("authentication failed"),
        "Redis's reason: {redis}"
    );

    // Nobody listening: refused at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let url = format!("redis://:{}@127.0.0.1:{closed}", encode(PASSWORD));
    let error = probe_error(&ConnectionConfig::new(&url).unwrap()).await;
    assert!(
        error.to_string().contains(&format!("127.0.0.1:{closed}")),
        "names where it tried: {error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unix_socket_url_reaches_redis_for_streams_and_bullmq() {
    init_tracing();
    let dir = tempfile::tempdir().expect("a folder for the socket");
    let socket = dir.path().join("redis.sock");
    let socket_arg = socket.display().to_string();
    let server = RedisServer::start_with_args(
        false,
        &["--unixsocket", &socket_arg, "--requirepass", PASSWORD],
    );
    let url = format!(
        "redis+unix://{}?db=0&pass={}",
        socket.display(),
        encode(PASSWORD)
    );
    let redis = RedisConfig::new(&url).unwrap().key_prefix("unix");
    assert_clean(&format!("{redis:?}"), "a socket URL's Debug");
    redis
        .connection()
        .probe()
        .await
        .expect("the probe over the socket");
    let emitter = Emitter::new("unix-test", RedisTransport::new(redis).unwrap());
    let emitted = emitter
        .emit(family_completed("unix", 0))
        .await
        .expect("emitted over the socket");
    assert!(emitted.published(), "{emitted:?}");

    let bullmq = BullmqConfig::new(&url).unwrap().queue("unix");
    let emitter = Emitter::new("unix-test", BullmqTransport::new(bullmq.clone()).unwrap());
    let emitted = emitter
        .emit(family_completed("unix", 0))
        .await
        .expect("a job added over the socket");
    assert!(emitted.published(), "{emitted:?}");

    // Both arrived, as seen over TCP.
    let client = redis::Client::open(format!(
        "redis://:{}@127.0.0.1:{}",
        encode(PASSWORD),
        server.port()
    ))
    .expect("a valid URL");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connected over TCP");
    let length: u64 = conn.xlen("unix:{image}").await.expect("XLEN");
    assert_eq!(length, 1);
    let waiting: u64 = conn
        .llen(format!("{}:wait", bullmq.queue_key()))
        .await
        .expect("LLEN");
    assert_eq!(waiting, 1);
}
