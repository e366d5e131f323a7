//! The gauges of the outbox relay (`domain-events-outbox`, feature `metrics`) as the Prometheus
//! recorder renders them, against a real PostgreSQL and Redis: the backlog and the age of the
//! oldest pending row follow the table while Redis is down, and fall to 0 once it is back.
//! Its own test binary: the recorder is global to the process.

use std::time::Duration;

use domain_events::metrics::{OUTBOX_BACKLOG, OUTBOX_OLDEST_AGE};
use domain_events_outbox::{Outbox, OutboxTable, Relay, migrate};
use domain_events_redis::{RedisConfig, RedisTransport};
use domain_events_tests::postgres_server::PostgresServer;
use domain_events_tests::prometheus_text::only;
use domain_events_tests::redis_server::RedisServer;
use domain_events_tests::redis_worker::{eventually, family_completed, init_tracing};
use sqlx::postgres::PgPoolOptions;

/// A bound against hanging, not a performance assertion.
const WAIT: Duration = Duration::from_secs(60);
const TABLE: (&str, &str) = ("table", "public.domain_events_outbox");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_records_the_backlog_and_the_age_of_the_oldest_pending_row() {
    init_tracing();
    let recorder = domain_events_prometheus::install_recorder().unwrap();
    let gauge = |name: &str| only(&recorder.render(), name, &[TABLE]);
    let pg = PostgresServer::start();
    let mut redis = RedisServer::start();
    let pool = PgPoolOptions::new()
        .max_connections(5)
        .connect(&pg.url())
        .await
        .unwrap();
    migrate(&pool, &OutboxTable::default()).await.unwrap();
    let transport = RedisTransport::new(RedisConfig::new(&redis.url()).unwrap()).unwrap();
    let relay = Relay::builder(pool.clone(), transport)
        .metrics_interval(Duration::from_millis(50))
        .poll_interval(Duration::from_millis(100))
        .backoff(Duration::from_millis(50), Duration::from_millis(200))
        .build()
        .spawn();

    // Nothing pending: both gauges are recorded, at 0.
    eventually("the gauges recorded", WAIT, || async {
        recorder.render().contains(OUTBOX_BACKLOG)
    })
    .await;
    assert_eq!(gauge(OUTBOX_BACKLOG), 0.0);
    assert_eq!(gauge(OUTBOX_OLDEST_AGE), 0.0);

    // Redis down: three committed events stay pending, and the oldest grows older.
    redis.stop();
    let outbox = Outbox::new("svc");
    let mut tx = pool.begin().await.unwrap();
    for i in 0..3 {
        outbox
            .emit(&mut tx, family_completed("metrics", i))
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    eventually("a backlog of 3", WAIT, || async {
        gauge(OUTBOX_BACKLOG) == 3.0
    })
    .await;
    let first = gauge(OUTBOX_OLDEST_AGE);
    eventually("the oldest pending row ages", WAIT, || async {
        gauge(OUTBOX_OLDEST_AGE) > first.max(0.0)
    })
    .await;
    assert_eq!(relay.stats().published, 0);

    // Redis back: the relay publishes them, and both gauges fall to 0.
    redis.restart();
    eventually("the backlog relayed", WAIT, || async {
        gauge(OUTBOX_BACKLOG) == 0.0 && gauge(OUTBOX_OLDEST_AGE) == 0.0
    })
    .await;
    let stats = relay.shutdown().await;
    assert_eq!(stats.published, 3, "{stats:?}");
}
