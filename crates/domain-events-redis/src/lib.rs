//! Redis Streams for [`domain_events`]: a [`Transport`](domain_events::Transport) for the
//! [`Emitter`](struct@domain_events::Emitter) and a consumer runtime on consumer groups.
//!
//! The Redis layout is the binding one of docs/contract.md section 4 (see [`Keys`]): one stream per
//! category, `<prefix>:{<category>}`, with entries of two fields, `type` (the type string) and
//! `event` (the envelope JSON); every key of a category carries the category as a hash tag. A
//! category may be split into partitions ([`RedisConfig::partitions`]), each with its own stream
//! and hash tag `{<category>#<p>}`; an event goes to the partition of its correlation id
//! ([`partition_of`]), and the consumers of a group share the partitions by leases, one consumer
//! per partition at a time.
//!
//! - [`RedisTransport`] appends events, taking each event's producer-side idempotency claim in the
//!   same atomic step, so a second emission of a key inside the claim TTL (24 h by default) adds
//!   nothing and is reported as [`PublishOutcome::Duplicate`](domain_events::PublishOutcome),
//!   even when the two race from different processes. A batch is one round trip. Producers that
//!   do not need the claim switch it off ([`RedisConfig::idempotency_claims`]) and append with
//!   plain pipelined `XADD`s.
//! - [`RedisConsumer`] runs typed [`Handlers`](domain_events::Handlers) on a consumer group:
//!   bounded concurrency, acknowledgement only after success together with the group's done
//!   record, retries with backoff, claiming of entries a dead consumer left pending, a
//!   dead-letter stream per group, graceful shutdown and reconnection.
//! - [`DeadLetters`] lists, replays, deletes and purges dead letters.
//! - [`Inspector`] reads the [`Status`] of every stream, consumer group and dead-letter stream:
//!   lengths, lag, pending entries, consumers; and looks one event up by event id or idempotency
//!   key ([`Inspector::find_event`], [`Inspector::find_key`]): its entries, its producer claim and
//!   the groups' done records. With the `metrics` feature, `metrics::Collector` sets Prometheus
//!   gauges from the status periodically.
//! - [`ConnectionConfig`] says how to reach Redis (URL forms, TLS, timeouts, the reachability
//!   probe) for this crate and for `domain-events-bullmq`; [`RedisConfig`] owns one, and [`Error`]
//!   classifies what the Redis client reports for both crates.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use domain_events::{Emitter, HandlerError, Handlers};
//! use domain_events_catalog::{DomainEvent, ImageVariationCompletedEvent, ImageVariationCompletedPayload};
//! use domain_events_redis::{RedisConfig, RedisConsumer, RedisTransport};
//!
//! let config = RedisConfig::new("rediss://app:secret@redis.internal:6380")?;
//! let emitter = Emitter::new("image-generator", RedisTransport::new(config.clone())?);
//! let emitted = emitter
//!     .emit(ImageVariationCompletedPayload {
//!         variation_id: "var-123".into(),
//!         variation_name: "Autumn".into(),
//!         families_completed: 9,
//!         total_generation_time_ms: 81_234,
//!         public_urls: vec!["https://cdn.example/a.png".parse()?],
//!     })
//!     .await?;
//! assert!(emitted.published() || emitted.duplicate);
//!
//! let handlers = Handlers::new()
//!     .on(|event: ImageVariationCompletedEvent| async move {
//!         println!("{} finished", event.payload.variation_id);
//!         Ok::<_, HandlerError>(())
//!     })
//!     .knowing::<DomainEvent>();
//! let consumer = RedisConsumer::builder(config, "notifications", handlers).build()?.spawn();
//! // ...
//! consumer.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! # Lua scripts
//!
//! Each multi-key step is one script, sent with `EVALSHA` (loaded again after `NOSCRIPT`):
//!
//! | script | keys | does | answers |
//! |---|---|---|---|
//! | emit | stream, then one claim per event (one call per batch and category, at most 256 events) | per event: `SET claim eventId NX PX ttl`; if taken: nothing; else `XADD stream * type .. event ..` (claim released if the append fails); then `XTRIM stream MAXLEN ~ n` (one event: `XADD stream MAXLEN ~ n ...`) | two items per event: `1, entryId`, `0, eventId holding the claim` or `2, error` |
//! | ack | stream, then one done record per entry (one call per stream for the entries whose handlers finished together, at most 256) | per entry: `SET done eventId PX ttl`, `XACK stream group id` | per entry: entries acknowledged |
//! | dead letter | stream, dead-letter stream | if the entry is still pending in the group: `XADD dlq MAXLEN ~ n * stream .. entryId .. group .. reason .. deliveries .. event ..`, `XACK` | dead letter id, or nil |
//! | replay | dead-letter stream, stream | if the dead letter exists: `XADD stream ... type .. event ..`, `XDEL dlq id` | new entry id, or nil |
//! | partition count | `<prefix>:{c}:partitions`, the unpartitioned stream | the recorded count; if none: 1 when the count asked is 1 or the unpartitioned stream exists, else `SET` the count asked (a process of one partition sends a plain `GET` instead) | the recorded count |
//! | lease | `<prefix>:{c#p}:owner:<group>` | if free or the consumer's own: `SET .. PX ttl` | 1 if held now, else 0 |
//! | release | the same | `DEL` if the consumer's own | 1 if it was |
//! | members | `<prefix>:{c}:members:<group>` | `ZADD` (or `ZREM`) the consumer scored `TIME + ttl`, drop expired members | live members |
//!
//! # Secrets
//!
//! The connection URL's password never appears in `Debug` output, logs or errors: URLs are shown
//! through [`redact_url`] and the Redis client's messages are scrubbed
//! ([`RedisConfig::scrub`]). Event payloads are never logged.
#![deny(missing_docs)]

mod acker;
mod coalesce;
mod config;
mod connection;
mod connection_config;
mod consumer;
mod dlq;
mod durability;
mod entry;
mod error;
mod keys;
mod lookup;
#[cfg(feature = "metrics")]
pub mod metrics;
mod partitions;
mod redact;
mod scripts;
mod split_pipeline;
mod status;
mod transport;

pub use config::{
    DEFAULT_CLAIM_TTL, DEFAULT_DONE_TTL, DEFAULT_KEY_PREFIX, DEFAULT_STREAM_MAX_LEN,
    MAX_PARTITIONS, RedisConfig,
};
pub use connection_config::{
    ConnectionConfig, DEFAULT_CONNECT_TIMEOUT, DEFAULT_RESPONSE_TIMEOUT, reconnect_backoff,
};
pub use consumer::{
    DEFAULT_BLOCK, DEFAULT_CLAIM_IDLE, DEFAULT_CONCURRENCY, DEFAULT_MAX_BATCH_BYTES,
    DEFAULT_MAX_DELIVERIES, DEFAULT_MAX_ENTRY_BYTES, DEFAULT_PARTITION_LEASE, DEFAULT_PREFETCH,
    DEFAULT_SHUTDOWN_GRACE, RedisConsumer, RedisConsumerBuilder, RedisConsumerHandle, StartFrom,
};
pub use dlq::{DeadLetter, DeadLetters};
pub use durability::ReplicaWait;
pub use error::Error;
pub use keys::{Keys, partition_of};
pub use lookup::{EventLookup, FoundEntry, GroupRecord, KeyRecord, SEARCH_LIMIT};
pub use redact::redact_url;
pub use status::{
    ConsumerStatus, DeadLetterStatus, EntryStamp, GroupStatus, Inspector, PendingEntry, Status,
    StreamStatus,
};
pub use transport::RedisTransport;
