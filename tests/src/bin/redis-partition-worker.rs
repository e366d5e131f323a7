//! A consumer process for the partition tests: runs a `RedisConsumer` of the six test-only
//! partitioned categories (`domain_events_tests::partitioned`) at concurrency 1, whose handlers
//! record each run in a separate Redis. Settings come from the environment: `REDIS_URL` (the Redis
//! under test, `redis+cluster://` for a cluster), `COUNTER_URL` (a plain Redis for the records),
//! `KEY_PREFIX`, `GROUP`, `CONSUMER`, `COUNTERS` (prefix of the record keys), `PARTITIONS` and
//! `LEASE_MS` (the partition lease). It prints `ready` once built and shuts down gracefully when
//! its standard input closes; tests kill it with `SIGKILL` to simulate a crash.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use domain_events::RetryPolicy;
use domain_events_redis::{RedisConfig, RedisConsumer};
use domain_events_tests::partitioned::{partitioned, step_handlers};
use tokio::io::AsyncReadExt;

#[tokio::main]
async fn main() -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .try_init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("redis-partition-worker: {error}");
            ExitCode::FAILURE
        }
    }
}

fn var(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}

fn number(name: &str) -> Result<u64, String> {
    var(name)?
        .parse()
        .map_err(|_| format!("{name} is not a number"))
}

async fn run() -> Result<(), String> {
    let partitions = u32::try_from(number("PARTITIONS")?).map_err(|e| e.to_string())?;
    let config = RedisConfig::new(&var("REDIS_URL")?)
        .map_err(|e| e.to_string())?
        .key_prefix(var("KEY_PREFIX")?);
    let config = partitioned(config, partitions).map_err(|e| e.to_string())?;
    let counter = redis::Client::open(var("COUNTER_URL")?)
        .map_err(|e| e.to_string())?
        .get_connection_manager()
        .await
        .map_err(|e| e.to_string())?;
    let handlers = step_handlers(counter, &var("COUNTERS")?);
    let consumer = RedisConsumer::builder(config, var("GROUP")?, handlers)
        .consumer_name(var("CONSUMER")?)
        .concurrency(1)
        .prefetch(16)
        .block(Duration::from_millis(200))
        .partition_lease(Duration::from_millis(number("LEASE_MS")?))
        .retry(RetryPolicy {
            max_retries: 5,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(500),
        })
        .build()
        .map_err(|e| e.to_string())?;
    let stop = consumer.shutdown_handle();
    tokio::spawn(async move {
        let mut sink = Vec::new();
        let _ = tokio::io::stdin().read_to_end(&mut sink).await;
        stop.trigger();
    });
    println!("ready");
    let _ = std::io::stdout().flush();
    let stats = consumer.run().await.map_err(|e| e.to_string())?;
    println!(
        "handled={} duplicates={} received={}",
        stats.handled, stats.duplicates, stats.received
    );
    Ok(())
}
