//! A consumer process for the Redis fault tests: runs a `RedisConsumer` whose handler counts its
//! runs per eventId in Redis (see `domain_events_tests::redis_worker`). Settings come from the
//! environment (`WorkerSettings`); it prints `ready` once built, and shuts down gracefully when its
//! standard input closes, printing its counters and its peak resident memory
//! (`peak_rss_kb=<VmHWM>`). Tests kill it with `SIGKILL` to simulate a crash.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use domain_events::RetryPolicy;
use domain_events_redis::{RedisConfig, RedisConsumer};
use domain_events_tests::redis_worker::{WorkerSettings, counting_handlers};
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
