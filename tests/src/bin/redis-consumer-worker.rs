//! A consumer process for the Redis fault tests: runs a `RedisConsumer` whose handler counts its
//! runs per eventId in Redis (see `domain_events_tests::redis_worker`). Settings come from the
//! environment (`WorkerSettings`); it prints `ready` once built, and shuts down gracefully when its
//! standard input closes, printing its counters and its peak resident memory
//! (`peak_rss_kb=<VmHWM>`). Tests kill it with `SIGKILL` to simulate a crash.

use std::process::ExitCode;
use std::time::Duration;

use domain_events::RetryPolicy;
use domain_events_redis::{RedisConfig, RedisConsumer};
use domain_events_tests::redis_worker::{WorkerSettings, counting_handlers};
use domain_events_tests::worker_process::{init_worker_tracing, serve};

#[tokio::main]
async fn main() -> ExitCode {
    init_worker_tracing();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("redis-consumer-worker: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let settings = WorkerSettings::from_env()?;
    let config = RedisConfig::new(&settings.url)
        .map_err(|e| e.to_string())?
        .key_prefix(&settings.prefix);
    let counter = redis::Client::open(settings.url.as_str())
        .map_err(|e| e.to_string())?
        .get_connection_manager()
        .await
        .map_err(|e| e.to_string())?;
    let handlers = counting_handlers(counter, settings.counters.clone(), settings.delay);
    let consumer = RedisConsumer::builder(config, &settings.group, handlers)
        .consumer_name(&settings.consumer)
        .concurrency(settings.concurrency)
        .prefetch(settings.prefetch)
        .claim_idle(settings.claim_idle)
        .block(Duration::from_millis(200))
        .retry(RetryPolicy {
            max_retries: 2,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(500),
        })
        .build()
        .map_err(|e| e.to_string())?;
    serve(consumer).await?;
    println!("peak_rss_kb={}", peak_rss_kb().unwrap_or(0));
    Ok(())
}

/// The process's peak resident memory in KiB (`VmHWM` of `/proc/self/status`), where there is one.
fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}
