//! A business row and its event in one transaction, with the relay feeding Redis Streams.
//!
//! ```bash
//! DATABASE_URL=postgres://app@127.0.0.1/app REDIS_URL=redis://127.0.0.1 \
//!     cargo run -p domain-events-outbox --example outbox
//! ```
//!
//! Needs a PostgreSQL and a Redis; prints the stream entry the relay appended.

use std::time::Duration;

use domain_events::Url;
use domain_events_catalog::ImageVariationCompletedPayload;
use domain_events_outbox::{Outbox, OutboxTable, Relay, migrate};
use domain_events_redis::{RedisConfig, RedisTransport};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let database = std::env::var("DATABASE_URL").map_err(|_| "set DATABASE_URL")?;
    let redis = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1".into());
    let pool = sqlx::PgPool::connect(&database).await?;
    migrate(&pool, &OutboxTable::default()).await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS variations (id text PRIMARY KEY, status text NOT NULL)",
    )
    .execute(&pool)
    .await?;
    let transport = RedisTransport::new(RedisConfig::new(&redis)?)?;
    let relay = Relay::builder(pool.clone(), transport).build().spawn();

    let outbox = Outbox::new("image-generator");
    let variation = format!("var-{}", domain_events::Uuid::now_v7());
    let payload = ImageVariationCompletedPayload {
        variation_id: variation.clone(),
        variation_name: "Autumn".into(),
        families_completed: 9,
        total_generation_time_ms: 81_234,
        public_urls: vec![Url::parse("https://cdn.example/a.png")?],
    };
    // The business change and its event commit together, or neither does.
    let mut tx = pool.begin().await?;
    sqlx::query("INSERT INTO variations (id, status) VALUES ($1, 'completed')")
        .bind(&variation)
        .execute(&mut *tx)
        .await?;
    let written = outbox.emit(&mut tx, payload).await?;
    tx.commit().await?;
    println!("committed {} (event {})", variation, written.event_id);

    // The relay publishes it on commit (LISTEN/NOTIFY); wait for its row to be marked.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let published: bool = sqlx::query_scalar(
            "SELECT published_at IS NOT NULL FROM public.domain_events_outbox WHERE event_id = $1",
        )
        .bind(written.event_id)
        .fetch_one(&pool)
        .await?;
        if published {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            return Err("the relay did not publish the event within 10 s".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = relay.shutdown().await;
    println!(
        "published to Redis stream domain-events:{{image}} ({} event(s) this run)",
        stats.published
    );
    Ok(())
}
