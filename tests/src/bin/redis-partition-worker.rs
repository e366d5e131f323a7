//! A consumer process for the partition tests: runs a `RedisConsumer` of the six test-only
//! partitioned categories (`domain_events_tests::partitioned`) at concurrency 1, whose handlers
//! record each run in a separate Redis. Settings come from the environment: `REDIS_URL` (the Redis
//! under test, `redis+cluster://` for a cluster), `COUNTER_URL` (a plain Redis for the records),
//! `KEY_PREFIX`, `GROUP`, `CONSUMER`, `COUNTERS` (prefix of the record keys), `PARTITIONS` and
//! `LEASE_MS` (the partition lease). It prints `ready` once built and shuts down gracefully when
//! its standard input closes; tests kill it with `SIGKILL` to simulate a crash.

use std::process::ExitCode;
use std::time::Duration;

use domain_events::RetryPolicy;
use domain_events_redis::{RedisConfig, RedisConsumer};
use domain_events_tests::partitioned::{partitioned, step_handlers};
use domain_events_tests::worker_process::{env_number, env_var, init_worker_tracing, serve};

#[tokio::main]
async fn main() -> ExitCode {
    init_worker_tracing();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("redis-partition-worker: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let partitions = u32::try_from(env_number("PARTITIONS")?).map_err(|e| e.to_string())?;
    let config = RedisConfig::new(&env_var("REDIS_URL")?)
        .map_err(|e| e.to_string())?
        .key_prefix(env_var("KEY_PREFIX")?);
    let config = partitioned(config, partitions).map_err(|e| e.to_string())?;
    let counter = redis::Client::open(env_var("COUNTER_URL")?)
        .map_err(|e| e.to_string())?
        .get_connection_manager()
        .await
        .map_err(|e| e.to_string())?;
    let handlers = step_handlers(counter, &env_var("COUNTERS")?);
    let consumer = RedisConsumer::builder(config, env_var("GROUP")?, handlers)
        .consumer_name(env_var("CONSUMER")?)
        .concurrency(1)
        .prefetch(16)
        .block(Duration::from_millis(200))
        .partition_lease(Duration::from_millis(env_number("LEASE_MS")?))
        .retry(RetryPolicy {
            max_retries: 5,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(500),
        })
        .build()
        .map_err(|e| e.to_string())?;
    serve(consumer).await?;
    Ok(())
}
