//! What the Redis tests and their worker processes share: the events they emit and a handler that
//! counts its runs per eventId in Redis, so a test can check both bounds of at-least-once
//! delivery from the outside, also across a `SIGKILL`.

use std::time::Duration;

use domain_events::{HandlerError, Handlers, RetryPolicy, Url};
use domain_events_catalog::{DomainEvent, ImageFamilyCompletedEvent, ImageFamilyCompletedPayload};
use domain_events_redis::{RedisConfig, RedisConsumer, RedisConsumerBuilder};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;

use crate::worker_process::{env_number, env_var};

/// An `image:family_completed` payload; its idempotency key is
/// `image_family:<variation>:<index>`, so each `(variation, index)` is one event.
pub fn family_completed(variation: &str, index: u64) -> ImageFamilyCompletedPayload {
    ImageFamilyCompletedPayload {
        variation_id: variation.to_owned(),
        variation_name: format!("Variation {variation}"),
        family_name: format!("family-{index}"),
        family_index: index,
        public_url: Url::parse(format!("https://cdn.example/{variation}/{index}.png"))
            .expect("a valid URL"),
        generation_time_ms: 1000 + index,
    }
}

/// The counter key of one event: `<counters>:handled:<eventId>`.
pub fn counter_key(counters: &str, event_id: &str) -> String {
    format!("{counters}:handled:{event_id}")
}

/// Handlers for `image:family_completed` that first `INCR` the event's counter in Redis (the side
/// effect), then wait `delay` (so a killed worker has handlers in flight), then succeed. Knows the
/// whole catalog, so unknown types are poison.
pub fn counting_handlers(redis: ConnectionManager, counters: String, delay: Duration) -> Handlers {
    Handlers::new()
        .on(move |event: ImageFamilyCompletedEvent| {
            let mut redis = redis.clone();
            let key = counter_key(&counters, &event.event_id.to_string());
            async move {
                redis
                    .incr::<_, _, i64>(&key, 1)
                    .await
                    .map_err(HandlerError::from_error)?;
                tokio::time::sleep(delay).await;
                Ok(())
            }
        })
        .knowing::<DomainEvent>()
}

/// The settings of a `redis-consumer-worker` process, read from its environment.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// `REDIS_URL`.
    pub url: String,
    /// `KEY_PREFIX`: the streams' key prefix.
    pub prefix: String,
    /// `GROUP`.
    pub group: String,
    /// `CONSUMER`: the consumer name.
    pub consumer: String,
    /// `COUNTERS`: the prefix of the counter keys.
    pub counters: String,
    /// `CONCURRENCY`.
    pub concurrency: usize,
    /// `PREFETCH`: entries read ahead of the free handler slots.
    pub prefetch: usize,
    /// `DELAY_MS`: how long each handler waits after counting.
    pub delay: Duration,
    /// `CLAIM_IDLE_MS`.
    pub claim_idle: Duration,
}

impl WorkerSettings {
    /// The environment variables that carry these settings, for `Command::envs`.
    pub fn to_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("REDIS_URL", self.url.clone()),
            ("KEY_PREFIX", self.prefix.clone()),
            ("GROUP", self.group.clone()),
            ("CONSUMER", self.consumer.clone()),
            ("COUNTERS", self.counters.clone()),
            ("CONCURRENCY", self.concurrency.to_string()),
            ("PREFETCH", self.prefetch.to_string()),
            ("DELAY_MS", self.delay.as_millis().to_string()),
            ("CLAIM_IDLE_MS", self.claim_idle.as_millis().to_string()),
        ]
    }

    /// Reads the settings from the environment; `Err` names a missing or invalid variable.
    pub fn from_env() -> Result<Self, String> {
        Ok(Self {
            url: env_var("REDIS_URL")?,
            prefix: env_var("KEY_PREFIX")?,
            group: env_var("GROUP")?,
            consumer: env_var("CONSUMER")?,
            counters: env_var("COUNTERS")?,
            concurrency: usize::try_from(env_number("CONCURRENCY")?)
                .map_err(|_| "CONCURRENCY too large".to_owned())?,
            prefetch: usize::try_from(env_number("PREFETCH")?)
                .map_err(|_| "PREFETCH too large".to_owned())?,
            delay: Duration::from_millis(env_number("DELAY_MS")?),
            claim_idle: Duration::from_millis(env_number("CLAIM_IDLE_MS")?),
        })
    }
}

/// Logs of the code under test, shown for failing tests (`RUST_LOG` filters; default `warn`).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// A consumer of `group`, named `<group>-1`, whose effect on the group is exact, for tests that
/// set up a group's state: one handler at a time, nothing read ahead, no in-process retry, an
/// entry dead-lettered after its first failed delivery, and a shutdown that leaves a handler
/// still running after 100 ms (its entry stays pending).
pub fn exact_consumer(
    config: RedisConfig,
    group: &str,
    handlers: Handlers,
) -> RedisConsumerBuilder {
    RedisConsumer::builder(config, group, handlers)
        .consumer_name(format!("{group}-1"))
        .concurrency(1)
        .prefetch(0)
        .block(Duration::from_millis(50))
        .retry(RetryPolicy::never())
        .max_deliveries(1)
        .shutdown_grace(Duration::from_millis(100))
}

/// Polls `check` every 20 ms until it returns true; panics naming `what` after `timeout` (a bound
/// against hanging, not a performance assertion).
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting until {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
