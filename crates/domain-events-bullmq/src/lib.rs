//! BullMQ for [`domain_events`]: a [`Transport`](domain_events::Transport) that feeds the
//! platform's Node.js BullMQ consumers, and a consumer runtime that handles what Node.js services
//! enqueue, with the same typed [`Handlers`](domain_events::Handlers) as for Redis Streams.
//!
//! The layout is the binding one of docs/contract.md section 5: one job per event in the queue
//! `DOMAIN_EVENTS` under key prefix `bull` (both configurable), whose **name** is the type string
//! and whose **data** is the envelope, so a stock BullMQ `Worker` (Node.js, BullMQ 5 and 6) or a
//! NestJS `@Processor('DOMAIN_EVENTS')` reads `job.data.type`, `job.data.payload` and
//! `job.data.idempotencyKey`. The **job id** is [`job_id`] of the idempotency key
//! (`image_complete:var-123` → `ik-image_complete%3Avar-123`), so BullMQ's own duplicate-id rule
//! drops a second emission of a key for as long as its job is kept: 24 hours by default
//! ([`BullmqConfig::remove_on_complete`]).
//!
//! How to reach Redis is the Redis Streams crate's
//! [`ConnectionConfig`](domain_events_redis::ConnectionConfig) (URL forms, TLS, timeouts and their
//! defaults, the reachability probe), embedded in [`BullmqConfig`]; what goes wrong talking to
//! Redis is that crate's error, wrapped in [`Error::Redis`].
//!
//! Jobs are read and written by BullMQ's maintained Rust port (crate `bullmq-official`, lib
//! `bullmq`), which embeds and runs BullMQ's own Lua scripts; this crate writes nothing of BullMQ's
//! Redis layout itself but one thing the port cannot: the telemetry option `tm` of a job it just
//! added, where BullMQ's own telemetry carries the trace context
//! ([`BullmqTransport`#trace-context](BullmqTransport#trace-context)).
//!
//! - [`BullmqTransport`] adds events as jobs and tells a duplicate emission apart from a new one.
//! - [`BullmqConsumer`] runs handlers on the jobs of the queue on the port's `Worker`: done
//!   records per consuming service (the Redis Streams layout, so both transports share them),
//!   poison jobs failed at once with a reason and no retry, failing handlers retried by BullMQ per
//!   the job's `attempts` and `backoff`, graceful shutdown. Its handlers continue the trace of
//!   the envelope's `traceparent`, or of the job's `tm` (a Node.js producer with BullMQ
//!   telemetry), with the `opentelemetry` feature of `domain-events` ([`domain_events::trace`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use domain_events::{Emitter, HandlerError, Handlers};
//! use domain_events_bullmq::{BullmqConfig, BullmqConsumer, BullmqTransport};
//! use domain_events_catalog::{DomainEvent, ImageVariationCompletedEvent, ImageVariationCompletedPayload};
//!
//! let config = BullmqConfig::new("redis://127.0.0.1:6379")?; // queue DOMAIN_EVENTS, prefix bull
//! let emitter = Emitter::new("image-generator", BullmqTransport::new(config.clone())?);
//! emitter
//!     .emit(ImageVariationCompletedPayload {
//!         variation_id: "var-123".into(),
//!         variation_name: "Autumn".into(),
//!         families_completed: 9,
//!         total_generation_time_ms: 81_234,
//!         public_urls: vec!["https://cdn.example/a.png".parse()?],
//!     })
//!     .await?; // job `ik-image_complete%3Avar-123`, name `image:variation_completed`
//!
//! let handlers = Handlers::new()
//!     .on(|event: ImageVariationCompletedEvent| async move {
//!         println!("{} finished", event.payload.variation_id);
//!         Ok::<_, HandlerError>(())
//!     })
//!     .knowing::<DomainEvent>();
//! let consumer = BullmqConsumer::builder(config, "notifications", handlers).build()?.spawn();
//! // ...
//! consumer.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! # Compatibility with BullMQ 5 and 6
//!
//! The port (1.4.x) embeds the Lua scripts of a BullMQ 6 revision. A job it adds is an ordinary
//! BullMQ job hash (`name`, `data`, `opts`, `timestamp`, `delay`, `priority`) that BullMQ 5 and 6
//! workers read alike. One difference matters: BullMQ 6 scripts push new jobs to `wait` even while
//! the queue is paused, where BullMQ 5 pushed them to a `paused` list; a BullMQ 5 resume renames
//! `paused` over `wait`. See [`BullmqConfig::v5_pause_guard`] for how the transport avoids losing
//! jobs to that.
//!
//! # Redis Cluster
//!
//! BullMQ's scripts touch several keys of a queue at once, so on Redis Cluster the prefix must be a
//! hash tag (`{bull}`), for the Rust side and for every Node.js producer and consumer of the queue.
//!
//! # Secrets
//!
//! The connection URL's password never appears in `Debug` output, logs or errors; messages from the
//! Redis and BullMQ clients are scrubbed ([`BullmqConfig::scrub`]). Event payloads are never
//! logged.
#![deny(missing_docs)]

mod config;
mod consumer;
mod error;
mod job_id;
mod telemetry;
mod transport;

pub use config::{
    Backoff, BullmqConfig, DEFAULT_ATTEMPTS, DEFAULT_BACKOFF, DEFAULT_BULLMQ_PREFIX, DEFAULT_QUEUE,
    DEFAULT_RETENTION, Retention,
};
pub use consumer::{
    BullmqConsumer, BullmqConsumerBuilder, BullmqConsumerHandle, DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_CONCURRENCY, DEFAULT_DRAIN_DELAY, DEFAULT_LOCK_DURATION,
};
pub use error::Error;
pub use job_id::{JOB_ID_PREFIX, idempotency_key_of, job_id};
pub use transport::BullmqTransport;
