//! The transactional outbox of domain-events on PostgreSQL: an event is published if and only if
//! the transaction that wrote it commits.
//!
//! A service writes its events with [`Outbox::emit`] (or [`Outbox::emit_batch`], or the
//! `emit_<event>_into` methods of `#[derive(Emitter)]` through [`Outbox::writer`]) into the
//! same transaction as its business change. A [`Relay`], in the service or as the standalone
//! `domain-events outbox relay`, publishes the committed rows to any
//! [`Transport`](domain_events::Transport): Redis Streams, BullMQ, the memory bus. Consumers
//! cannot tell an event that came through the outbox from one emitted directly: the row holds
//! the envelope exactly as the [`Emitter`](struct@domain_events::Emitter) would have sent it.
//!
//! ```no_run
//! # async fn run(payload: domain_events_catalog::ImageVariationCompletedPayload)
//! # -> Result<(), Box<dyn std::error::Error>> {
//! use domain_events_outbox::{Outbox, OutboxTable, Relay, migrate};
//! use domain_events_redis::{RedisConfig, RedisTransport};
//!
//! let pool = sqlx::PgPool::connect("postgres://app@127.0.0.1/app").await?;
//! migrate(&pool, &OutboxTable::default()).await?; // idempotent
//! let relay = Relay::builder(pool.clone(), RedisTransport::new(RedisConfig::new("redis://127.0.0.1")?)?)
//!     .build()
//!     .spawn();
//!
//! let outbox = Outbox::new("image-generator");
//! let mut tx = pool.begin().await?;
//! // ... the business change on &mut *tx ...
//! outbox.emit(&mut tx, payload).await?;
//! tx.commit().await?; // now, and only now, the relay publishes it
//!
//! relay.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! The table and its columns are described in docs/contract.md ("The PostgreSQL outbox"); how
//! relays share a table, and why no event is skipped or reordered, in [`relay`].
#![deny(missing_docs)]

mod admin;
mod error;
#[cfg(feature = "metrics")]
mod gauges;
mod intern;
mod migration;
mod publish;
pub mod relay;
mod table;
mod writer;

pub use admin::{DeadRow, DeadSelection, OutboxStatus, RelaySeen, dead_rows, retry_dead, status};
pub use error::Error;
pub use migration::{DEFAULT_MIGRATION, migrate, migration_sql};
pub use relay::{Relay, RelayBuilder, RelayHandle, RelayStats};
pub use table::{DEFAULT_SCHEMA, DEFAULT_TABLE, MAX_NAME_LEN, OutboxTable};
pub use writer::{Outbox, OutboxWriter, Written};
