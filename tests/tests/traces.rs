//! Traces (the `opentelemetry` feature of domain-events) with the SDK's in-memory span exporter:
//! the emit span and its fields, the envelope's `traceparent` filled from it (or left as given),
//! and the handle span continuing the event's trace, on the in-memory bus and on Redis Streams.
//! Both consumers run the one delivery pipeline, which opens the handle span. The PostgreSQL
//! outbox builds its envelopes on the emitter's path, so its writes get the same span and
//! `traceparent`. The BullMQ directions, with Node.js on the other side, are in
//! tests/bullmq_interop.rs.

use std::time::Duration;

use domain_events::trace::{EMIT_BATCH_SPAN, EMIT_SPAN, HANDLE_SPAN};
use domain_events::{EmitBatch, Emitter, Handlers, MemoryBus, Uuid};
use domain_events_catalog::{DomainEvent, ImageFamilyCompletedEvent};
use domain_events_outbox::{Outbox, OutboxTable, migrate};
use domain_events_redis::{RedisConfig, RedisConsumer, RedisTransport};
use domain_events_tests::otel::{Traces, attribute, ids_of, traceparent_of};
use domain_events_tests::postgres_server::PostgresServer;
use domain_events_tests::redis_server::RedisServer;
use domain_events_tests::redis_worker::family_completed;
use opentelemetry::trace::SpanId;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::sync::mpsc;
use tracing::Instrument;

const WAIT: Duration = Duration::from_secs(30);

/// A `traceparent` from another service.
const GIVEN: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// Handlers that send the envelope of every family-completed event they get to a channel.
fn reporting() -> (Handlers, mpsc::UnboundedReceiver<ImageFamilyCompletedEvent>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let handlers = Handlers::new()
        .on(move |event: ImageFamilyCompletedEvent| {
            let tx = tx.clone();
            async move { tx.send(event).map_err(|_| "receiver gone".into()) }
        })
        .knowing::<DomainEvent>();
    (handlers, rx)
}

/// Emits two events through `emitter`, one inside a caller's span and one with a given
/// `traceparent`, and checks the spans of both ends; `received` gets what the consumer of group
/// `group` handled.
async fn check_traces(
    traces: &Traces,
    emitter: &Emitter,
    group: &str,
    variation: &str,
    received: &mut mpsc::UnboundedReceiver<ImageFamilyCompletedEvent>,
) {
    // 1. No traceparent given: the envelope gets the emit span's, a child of the caller's span.
    let payload = family_completed(variation, 0);
    let key = format!("image_family:{variation}:0");
    let emitted = emitter
        .emit(payload)
        .instrument(tracing::info_span!("caller", variation))
        .await
        .expect("emitted");
    let event = tokio::time::timeout(WAIT, received.recv())
        .await
        .expect("handled in time")
        .expect("a handled event");
    assert_eq!(event.event_id, emitted.event_id);

    let caller = traces
        .wait_for("caller", "variation", variation, WAIT)
        .await;
    let emit = traces
        .wait_for(EMIT_SPAN, "event_id", &emitted.event_id.to_string(), WAIT)
        .await;
    assert_eq!(
        attribute(&emit, "event_type").as_deref(),
        Some("image:family_completed")
    );
    assert_eq!(attribute(&emit, "idempotency_key"), Some(key.clone()));
    assert_eq!(
        attribute(&emit, "correlation_id").as_deref(),
        Some(variation)
    );
    assert_eq!(attribute(&emit, "source").as_deref(), Some("traces-test"));
    assert_eq!(emit.span_context.trace_id(), caller.span_context.trace_id());
    assert_eq!(emit.parent_span_id, caller.span_context.span_id());
    assert_eq!(
        event.traceparent.as_deref(),
        Some(traceparent_of(&emit).as_str()),
        "the envelope carries the emit span's traceparent"
    );

    let handle = traces
        .wait_for(HANDLE_SPAN, "event_id", &emitted.event_id.to_string(), WAIT)
        .await;
    assert_eq!(attribute(&handle, "group").as_deref(), Some(group));
    assert_eq!(
        attribute(&handle, "event_type").as_deref(),
        Some("image:family_completed")
    );
    assert_eq!(attribute(&handle, "idempotency_key"), Some(key));
    assert_eq!(
        attribute(&handle, "correlation_id").as_deref(),
        Some(variation)
    );
    assert_eq!(handle.span_context.trace_id(), emit.span_context.trace_id());
    assert_eq!(handle.parent_span_id, emit.span_context.span_id());

    // 2. A traceparent given: it stays in the envelope, and the handler continues its trace.
    let emitted = emitter
        .with_traceparent(GIVEN)
        .emit(family_completed(variation, 1))
        .instrument(tracing::info_span!("caller", variation = "other"))
        .await
        .expect("emitted");
    let event = tokio::time::timeout(WAIT, received.recv())
        .await
        .expect("handled in time")
        .expect("a handled event");
    assert_eq!(event.event_id, emitted.event_id);
    assert_eq!(event.traceparent.as_deref(), Some(GIVEN), "left as given");
    let handle = traces
        .wait_for(HANDLE_SPAN, "event_id", &emitted.event_id.to_string(), WAIT)
        .await;
    let (trace_id, parent_id) = ids_of(GIVEN);
    assert_eq!(handle.span_context.trace_id(), trace_id);
    assert_eq!(handle.parent_span_id, parent_id);
    assert_ne!(handle.parent_span_id, SpanId::INVALID);
}

#[tokio::test]
async fn memory_bus_handlers_continue_the_trace_of_the_emit() {
    let traces = Traces::install();
    let bus = MemoryBus::new();
    let (handlers, mut received) = reporting();
    let consumer = bus.consumer("traced", handlers).build().spawn();
    let emitter = Emitter::new("traces-test", bus.clone());

    check_traces(&traces, &emitter, "traced", "mem", &mut received).await;
    consumer.shutdown().await.expect("consumer stopped");
}

#[tokio::test]
async fn redis_stream_handlers_continue_the_trace_of_the_emit() {
    let traces = Traces::install();
    let server = RedisServer::start();
    let config = RedisConfig::new(&server.url())
        .unwrap()
        .key_prefix("traces");
    let emitter = Emitter::new("traces-test", RedisTransport::new(config.clone()).unwrap());
    let (handlers, mut received) = reporting();
    let consumer = RedisConsumer::builder(config, "traced", handlers)
        .block(Duration::from_millis(100))
        .build()
        .unwrap()
        .spawn();

    check_traces(&traces, &emitter, "traced", "redis", &mut received).await;
    consumer.shutdown().await.expect("consumer stopped");
}

/// The `traceparent` of the envelope of `event_id` in the default outbox table.
async fn outbox_traceparent(pool: &PgPool, event_id: Uuid) -> Option<String> {
    sqlx::query_scalar(
        "SELECT envelope::jsonb->>'traceparent' FROM public.domain_events_outbox WHERE event_id = $1",
    )
    .bind(event_id)
    .fetch_one(pool)
    .await
    .expect("the outbox row")
}

#[tokio::test]
async fn outbox_writes_get_the_traceparent_of_their_emit_span() {
    let traces = Traces::install();
    let pg = PostgresServer::start();
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(&pg.url())
        .await
        .expect("PostgreSQL");
    migrate(&pool, &OutboxTable::default())
        .await
        .expect("migrated");
    let outbox = Outbox::new("traces-test");

    let mut tx = pool.begin().await.expect("transaction");
    let written = outbox
        .emit(&mut tx, family_completed("outbox", 0))
        .instrument(tracing::info_span!("caller", variation = "outbox"))
        .await
        .expect("written");
    let mut batch = EmitBatch::new();
    let batched = batch.push(family_completed("outbox", 1)).expect("valid");
    outbox
        .emit_batch(&mut tx, batch)
        .instrument(tracing::info_span!("caller", variation = "outbox-batch"))
        .await
        .expect("written");
    let given = outbox
        .with_traceparent(GIVEN)
        .emit(&mut tx, family_completed("outbox", 2))
        .await
        .expect("written");
    tx.commit().await.expect("committed");

    let caller = traces.wait_for("caller", "variation", "outbox", WAIT).await;
    let emit = traces
        .wait_for(EMIT_SPAN, "event_id", &written.event_id.to_string(), WAIT)
        .await;
    assert_eq!(
        attribute(&emit, "idempotency_key").as_deref(),
        Some("image_family:outbox:0")
    );
    assert_eq!(
        attribute(&emit, "correlation_id").as_deref(),
        Some("outbox")
    );
    assert_eq!(emit.parent_span_id, caller.span_context.span_id());
    assert_eq!(
        outbox_traceparent(&pool, written.event_id).await,
        Some(traceparent_of(&emit))
    );

    let caller = traces
        .wait_for("caller", "variation", "outbox-batch", WAIT)
        .await;
    let batch = traces.wait_for(EMIT_BATCH_SPAN, "events", "1", WAIT).await;
    assert_eq!(batch.parent_span_id, caller.span_context.span_id());
    assert_eq!(
        outbox_traceparent(&pool, batched).await,
        Some(traceparent_of(&batch))
    );

    assert_eq!(
        outbox_traceparent(&pool, given.event_id).await.as_deref(),
        Some(GIVEN)
    );
}
