//! The metrics of a service on Redis, as Prometheus scrapes them over HTTP: the exporter
//! installed with `domain_events_prometheus::install`, a `RedisConsumer` counting through the one
//! pipeline, and the `Collector`'s gauges of lag, pending entries and dead letters read from a
//! real `redis-server`; then Redis stops and the collector reports it.

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use domain_events::metrics::{self as names, Outcome};
use domain_events::{Emitter, HandlerError, Handlers};
use domain_events_catalog::ImageFamilyCompletedEvent;
use domain_events_redis::metrics::Collector;
use domain_events_redis::{RedisConfig, RedisTransport};
use domain_events_tests::prometheus_text::{http_get, only, value};
use domain_events_tests::redis_server::RedisServer;
use domain_events_tests::redis_worker::{
    eventually, exact_consumer, family_completed, init_tracing,
};

const WAIT: Duration = Duration::from_secs(30);
const STREAM: &str = "metrics:{image}";
const FAMILY: &str = "image:family_completed";

/// A loopback address with a port free a moment ago.
fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

async fn scrape(addr: SocketAddr) -> String {
    tokio::task::spawn_blocking(move || http_get(addr, "/metrics"))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_over_http_with_the_redis_consumer_counts_and_the_stream_gauges() {
    init_tracing();
    let addr = free_addr();
    domain_events_prometheus::install(addr).unwrap();
    let mut server = RedisServer::start();
    let config = RedisConfig::new(&server.url())
        .unwrap()
        .key_prefix("metrics");

    let emitter = Emitter::new("metrics-test", RedisTransport::new(config.clone()).unwrap());
    for index in 1..=5 {
        emitter.emit(family_completed("v", index)).await.unwrap();
    }

    // Group `lagging` read two entries and acknowledged none: 2 pending, 3 not delivered yet.
    let mut conn = server.connection().await;
    let _: () = redis::cmd("XGROUP")
        .arg(&["CREATE", STREAM, "lagging", "0"][..])
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg(
            &[
                "GROUP",
                "lagging",
                "lagging-1",
                "COUNT",
                "2",
                "STREAMS",
                STREAM,
                ">",
            ][..],
        )
        .query_async(&mut conn)
        .await
        .unwrap();

    // Group `failing` gives every event up after one delivery: 5 dead letters.
    let handlers = Handlers::new()
        .on(|_: ImageFamilyCompletedEvent| async { Err::<(), _>(HandlerError::msg("refused")) });
    let consumer = exact_consumer(config.clone(), "failing", handlers)
        .build()
        .unwrap()
        .spawn();
    eventually("group failing gives up all 5", WAIT, || async {
        consumer.stats().failed == 5
    })
    .await;
    consumer.shutdown().await.unwrap();

    let collector = Collector::new(config.clone()).unwrap();
    collector.collect().await.unwrap();

    let text = scrape(addr).await;
    let group = |name| [("stream", STREAM), ("category", "image"), ("group", name)];
    assert_eq!(
        value(
            &text,
            names::EMITTED,
            &[("type", FAMILY), ("transport", "redis")]
        ),
        5.0,
        "{text}"
    );
    let failed = [("group", "failing"), ("type", FAMILY)];
    assert_eq!(
        value(
            &text,
            names::CONSUMED,
            &[failed[0], failed[1], ("outcome", Outcome::Failed.as_str())]
        ),
        5.0
    );
    assert_eq!(value(&text, names::DEAD_LETTERED, &failed), 5.0);
    assert_eq!(
        value(
            &text,
            &format!("{}_count", names::HANDLER_DURATION),
            &failed
        ),
        5.0
    );
    assert_eq!(only(&text, names::CONSUMER_LAG, &group("lagging")), 3.0);
    assert_eq!(only(&text, names::CONSUMER_PENDING, &group("lagging")), 2.0);
    assert_eq!(only(&text, names::CONSUMERS, &group("lagging")), 1.0);
    assert_eq!(only(&text, names::CONSUMER_LAG, &group("failing")), 0.0);
    assert_eq!(only(&text, names::CONSUMER_PENDING, &group("failing")), 0.0);
    assert_eq!(
        only(&text, names::CONSUMER_OLDEST_PENDING, &group("failing")),
        0.0,
        "nothing pending"
    );
    assert!(only(&text, names::CONSUMER_OLDEST_PENDING, &group("lagging")) >= 0.0);
    let stream = [("category", "image"), ("stream", STREAM)];
    assert_eq!(only(&text, names::STREAM_LENGTH, &stream), 5.0);
    assert_eq!(only(&text, names::STREAM_ENTRIES_ADDED, &stream), 5.0);
    assert_eq!(
        only(
            &text,
            names::DEAD_LETTERS,
            &[("category", "image"), ("group", "failing")]
        ),
        5.0
    );
    assert_eq!(only(&text, names::COLLECTOR_UP, &[]), 1.0);
    assert!(
        text.contains("# TYPE domain_events_consumer_lag gauge"),
        "{text}"
    );

    // Running on its own: the gauges follow Redis, and a Redis that is gone shows.
    let running = collector.interval(Duration::from_millis(50)).spawn();
    let _: () = redis::cmd("XACK")
        .arg(STREAM)
        .arg("lagging")
        .arg(first_pending(&mut conn).await)
        .query_async(&mut conn)
        .await
        .unwrap();
    eventually(
        "the collector sees one entry acknowledged",
        WAIT,
        || async {
            only(
                &scrape(addr).await,
                names::CONSUMER_PENDING,
                &group("lagging"),
            ) == 1.0
        },
    )
    .await;
    server.kill();
    eventually("the collector reports Redis down", WAIT, || async {
        let text = scrape(addr).await;
        only(&text, names::COLLECTOR_UP, &[]) == 0.0
            && value(&text, names::COLLECTOR_ERRORS, &[]) >= 1.0
    })
    .await;
    running.stop().await;
}

/// The id of the oldest entry pending in group `lagging`.
async fn first_pending(conn: &mut redis::aio::MultiplexedConnection) -> String {
    let reply: redis::streams::StreamPendingReply = redis::cmd("XPENDING")
        .arg(STREAM)
        .arg("lagging")
        .query_async(conn)
        .await
        .unwrap();
    match reply {
        redis::streams::StreamPendingReply::Data(data) => data.start_id,
        other => panic!("nothing pending: {other:?}"),
    }
}
