//! An emitting process for the Redis race tests: waits at a barrier in Redis until `PARTIES`
//! processes arrived, then emits `COUNT` `image:family_completed` events of variation `VARIATION`
//! (indexes `0..COUNT`, so the same idempotency keys in every process) in batches of `BATCH`,
//! and prints `published=<n> duplicates=<m>`.
//!
//! Environment: `REDIS_URL`, `KEY_PREFIX`, `VARIATION`, `COUNT`, `BATCH`, `BARRIER_KEY`, `PARTIES`.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use domain_events::{EmitBatch, Emitter};
use domain_events_redis::{RedisConfig, RedisTransport};
use domain_events_tests::redis_worker::family_completed;
use domain_events_tests::worker_process::{env_number, env_var};
use redis::AsyncCommands;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok((published, duplicates)) => {
            println!("published={published} duplicates={duplicates}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("redis-emitter-worker: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(usize, usize), String> {
    let url = env_var("REDIS_URL")?;
    let variation = env_var("VARIATION")?;
    let (count, batch_size, parties) = (
        env_number("COUNT")?,
        env_number("BATCH")?.max(1),
        env_number("PARTIES")?,
    );
    let barrier = env_var("BARRIER_KEY")?;
    let config = RedisConfig::new(&url)
        .map_err(|e| e.to_string())?
        .key_prefix(env_var("KEY_PREFIX")?);
    let emitter = Emitter::new(
        "race-test",
        RedisTransport::new(config).map_err(|e| e.to_string())?,
    );

    let mut redis = redis::Client::open(url.as_str())
        .map_err(|e| e.to_string())?
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| e.to_string())?;
    let _: i64 = redis.incr(&barrier, 1).await.map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let arrived: u64 = redis.get(&barrier).await.map_err(|e| e.to_string())?;
        if arrived >= parties {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "only {arrived} of {parties} processes reached the barrier"
            ));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }

    let (mut published, mut duplicates) = (0, 0);
    let mut index = 0;
    while index < count {
        let mut batch = EmitBatch::new();
        for i in index..(index + batch_size).min(count) {
            batch
                .push(family_completed(&variation, i))
                .map_err(|e| e.to_string())?;
        }
        index += batch_size;
        for emitted in emitter.emit_batch(batch).await.map_err(|e| e.to_string())? {
            if emitted.duplicate {
                duplicates += 1;
            } else {
                published += 1;
            }
        }
    }
    Ok((published, duplicates))
}
