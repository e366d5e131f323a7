//! The metrics of the emitter and of the delivery pipeline, read as Prometheus renders them:
//! events emitted through a `MemoryBus` and consumed by a `MemoryConsumer` (and through the
//! `Pipeline` directly for the outcomes only redelivering transports have), each test with its
//! own recorder (a local one, on a current-thread runtime), the counts exact.

use std::sync::Arc;
use std::time::Duration;

use domain_events::metrics::{self as names, OTHER_TYPE, Outcome};
use domain_events::{
    BoxFuture, ConsumerStats, EmitBatch, EmitError, Emitter, Envelope, HandlerError, Handlers,
    Incoming, MemoryBus, OutgoingEvent, Pipeline, PublishOutcome, RawEnvelope, RetryPolicy, Settle,
    Timestamp, Transport, TransportError, Verdict,
};
use domain_events_catalog::{
    DomainEvent, ImageFamilyCompletedEvent, ImageVariationQueuedPayload,
    ImageVariationStartedEvent, ImageVariationStartedPayload,
};
use domain_events_prometheus::PrometheusRecorder;
use domain_events_tests::prometheus_text::{samples, value};
use domain_events_tests::redis_worker::{eventually, family_completed};

const FAMILY: &str = "image:family_completed";
const STARTED: &str = "image:variation_started";
const WAIT: Duration = Duration::from_secs(10);

/// Runs `test` on a current-thread runtime with a recorder of its own, then renders it.
fn recorded<F: Future<Output = ()>>(test: impl FnOnce() -> F) -> String {
    let recorder: PrometheusRecorder = domain_events_prometheus::builder().build_recorder();
    metrics::with_local_recorder(&recorder, || {
        domain_events_prometheus::describe();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(test());
    });
    recorder.handle().render()
}

fn started(variation: &str) -> ImageVariationStartedPayload {
    ImageVariationStartedPayload {
        variation_id: variation.into(),
        variation_name: "Autumn".into(),
        family_count: 3,
        started_at: Timestamp::now(),
    }
}

/// Never answers.
struct Stuck;

impl Transport for Stuck {
    fn name(&self) -> &'static str {
        "stuck"
    }

    fn publish<'a>(
        &'a self,
        _: &'a [OutgoingEvent],
    ) -> BoxFuture<'a, Result<Vec<PublishOutcome>, TransportError>> {
        Box::pin(std::future::pending())
    }
}

#[test]
fn the_emitter_counts_published_duplicate_failed_and_unknown_events_by_type_and_transport() {
    let mut stats = Vec::new();
    let text = recorded(|| async {
        let bus = MemoryBus::new();
        let emitter = Emitter::new("metrics-test", bus.clone());
        for index in 1..=3 {
            assert!(
                emitter
                    .emit(family_completed("v", index))
                    .await
                    .unwrap()
                    .published()
            );
        }
        // The same key again: claimed already.
        assert!(
            emitter
                .emit(family_completed("v", 1))
                .await
                .unwrap()
                .duplicate
        );
        // An empty variation id breaks the schema.
        assert!(matches!(
            emitter.emit(family_completed("", 1)).await,
            Err(EmitError::Invalid(_))
        ));
        // A batch: one new event of each type, one duplicate.
        let mut batch = EmitBatch::new();
        batch.push(family_completed("v", 4)).unwrap();
        batch.push(started("v")).unwrap();
        batch.push(family_completed("v", 2)).unwrap();
        emitter.emit_batch(batch).await.unwrap();
        // A transport that never answers: outcome unknown, under its own transport label.
        let stuck = Emitter::builder("metrics-test", Stuck)
            .timeout(Duration::from_millis(20))
            .build();
        let mut batch = EmitBatch::new();
        batch.push(family_completed("v", 5)).unwrap();
        batch.push(started("w")).unwrap();
        assert!(
            stuck
                .emit_batch(batch)
                .await
                .unwrap_err()
                .is_outcome_unknown()
        );
        stats.push(emitter.stats());
        stats.push(stuck.stats());
    });

    let memory = |t| [("type", t), ("transport", "memory")];
    let stuck = |t| [("type", t), ("transport", "stuck")];
    assert_eq!(value(&text, names::EMITTED, &memory(FAMILY)), 4.0, "{text}");
    assert_eq!(value(&text, names::EMITTED, &memory(STARTED)), 1.0);
    assert_eq!(value(&text, names::EMIT_DUPLICATES, &memory(FAMILY)), 2.0);
    assert_eq!(value(&text, names::EMIT_FAILED, &memory(FAMILY)), 1.0);
    assert_eq!(value(&text, names::EMIT_UNKNOWN, &stuck(FAMILY)), 1.0);
    assert_eq!(value(&text, names::EMIT_UNKNOWN, &stuck(STARTED)), 1.0);
    // The metrics add up to the emitters' own counters.
    let total = |name| value(&text, name, &[]) as u64;
    let (memory_stats, stuck_stats) = (stats[0], stats[1]);
    assert_eq!(total(names::EMITTED), memory_stats.emitted);
    assert_eq!(total(names::EMIT_DUPLICATES), memory_stats.duplicates);
    assert_eq!(total(names::EMIT_FAILED), memory_stats.failed);
    assert_eq!(total(names::EMIT_UNKNOWN), stuck_stats.unknown);
    assert!(
        text.contains("# HELP domain_events_emitted_total Events published by the emitter."),
        "{text}"
    );
}

/// An event published as JSON, as another process would: routed as `event_type`, with the
/// `eventId` of `json` when it has one.
fn outgoing(event_type: &'static str, key: &str, json: String) -> OutgoingEvent {
    let event_id = serde_json::from_str::<serde_json::Value>(&json)
        .ok()
        .and_then(|json| json["eventId"].as_str().and_then(|id| id.parse().ok()))
        .unwrap_or_else(domain_events::Uuid::now_v7);
    OutgoingEvent {
        event_type,
        category: "image",
        event_id,
        idempotency_key: key.into(),
        correlation_id: "metrics".into(),
        json: Arc::from(json),
    }
}

/// The JSON of an `image:family_completed` envelope, edited by `edit`.
fn family_json_with(edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let envelope = Envelope::new("other-service", family_completed("x", 1)).unwrap();
    let mut json = serde_json::to_value(&envelope).unwrap();
    edit(&mut json);
    json.to_string()
}

#[test]
fn a_memory_consumer_counts_every_outcome_retry_dead_letter_and_handler_run_by_group_and_type() {
    let mut stats = ConsumerStats::default();
    let text = recorded(|| async {
        let bus = MemoryBus::new();
        let handlers = Handlers::new()
            .on(|_: ImageFamilyCompletedEvent| async { Ok::<(), HandlerError>(()) })
            .on(|_: ImageVariationStartedEvent| async {
                Err::<(), _>(HandlerError::msg("always fails"))
            })
            .knowing::<DomainEvent>();
        let retry = RetryPolicy {
            max_retries: 2,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(1),
        };
        let consumer = bus
            .consumer("billing", handlers)
            .retry(retry)
            .build()
            .spawn();
        // The group handled this key already.
        bus.guard("billing").record("image_family:v:9");

        let emitter = Emitter::new("metrics-test", bus.clone());
        for index in [1, 2, 3, 9] {
            emitter.emit(family_completed("v", index)).await.unwrap();
        }
        emitter.emit(started("v")).await.unwrap();
        // A type of the catalog nobody handles.
        emitter
            .emit(ImageVariationQueuedPayload {
                variation_id: "v".into(),
                variation_name: "Autumn".into(),
                family_count: 3,
                queued_at: Timestamp::now(),
                priority: None,
            })
            .await
            .unwrap();
        // Poison: a payload breaking its schema, a type nobody knows, bytes that are no envelope.
        let broken = family_json_with(|json| json["payload"]["variationId"] = "".into());
        let unknown = family_json_with(|json| json["type"] = "image:no_such_event".into());
        let published = bus
            .publish(&[
                outgoing(FAMILY, "p1", broken),
                outgoing("image:no_such_event", "p2", unknown),
                outgoing(FAMILY, "p3", "not json".into()),
            ])
            .await
            .unwrap();
        assert_eq!(published.len(), 3);

        eventually("the consumer has seen all 9 events", WAIT, || async {
            consumer.stats().received == 9
        })
        .await;
        stats = consumer.shutdown().await.unwrap();
    });

    let consumed = |t, outcome: Outcome| {
        value(
            &text,
            names::CONSUMED,
            &[
                ("group", "billing"),
                ("type", t),
                ("outcome", outcome.as_str()),
            ],
        )
    };
    let of = |name, t| value(&text, name, &[("group", "billing"), ("type", t)]);
    assert_eq!(consumed(FAMILY, Outcome::Handled), 3.0, "{text}");
    assert_eq!(consumed(FAMILY, Outcome::Duplicate), 1.0);
    assert_eq!(consumed(FAMILY, Outcome::Poison), 1.0, "{text}");
    assert_eq!(consumed(STARTED, Outcome::Failed), 1.0);
    // Types the handlers do not know, and an entry without an envelope, share one label.
    assert_eq!(consumed(OTHER_TYPE, Outcome::Unhandled), 1.0);
    assert_eq!(consumed(OTHER_TYPE, Outcome::Poison), 2.0);
    assert!(
        samples(&text)
            .iter()
            .all(|s| !s.labels.get("type").is_some_and(|t| t.contains("no_such"))),
        "a type nobody knows is never a label: {text}"
    );
    assert_eq!(of(names::RETRIES, STARTED), 2.0);
    assert_eq!(of(names::DEAD_LETTERED, STARTED), 1.0);
    assert_eq!(of(names::DEAD_LETTERED, FAMILY), 1.0);
    assert_eq!(of(names::DEAD_LETTERED, OTHER_TYPE), 2.0);
    // One histogram sample per handler attempt: 3 handled, 1 + 2 retries failing.
    let runs = format!("{}_count", names::HANDLER_DURATION);
    assert_eq!(of(&runs, FAMILY), 3.0);
    assert_eq!(of(&runs, STARTED), 3.0);
    assert!(
        text.contains("# TYPE domain_events_handler_duration_seconds histogram"),
        "{text}"
    );
    // The metrics add up to the consumer's own counters.
    let outcome = |o: Outcome| value(&text, names::CONSUMED, &[("outcome", o.as_str())]) as u64;
    assert_eq!(outcome(Outcome::Handled), stats.handled);
    assert_eq!(outcome(Outcome::Duplicate), stats.duplicates);
    assert_eq!(outcome(Outcome::Unhandled), stats.unhandled);
    assert_eq!(outcome(Outcome::Poison), stats.poison);
    assert_eq!(outcome(Outcome::Failed), stats.failed);
    assert_eq!(value(&text, names::RETRIES, &[]) as u64, stats.retries);
    assert_eq!(value(&text, names::CONSUMED, &[]) as u64, stats.received);
}

/// A transport that delivers events again: it answers the done record as told, and takes every
/// verdict.
struct Redelivering(Option<bool>);

impl Settle for Redelivering {
    async fn is_done(&self, _: &RawEnvelope) -> Option<bool> {
        self.0
    }

    async fn settle(self, _: &Verdict) -> bool {
        true
    }
}

#[test]
fn a_redelivering_transport_has_redelivered_deferred_and_refused_events_counted() {
    let mut stats = ConsumerStats::default();
    let text = recorded(|| async {
        let handlers = Handlers::new().on(|_: ImageVariationStartedEvent| async {
            Err::<(), _>(HandlerError::msg("always fails"))
        });
        let pipeline = Pipeline::builder("audit", handlers)
            .retry(RetryPolicy::never())
            .build();
        let envelope = serde_json::to_vec(&Envelope::new("svc", started("v")).unwrap()).unwrap();
        // Delivery 1 of at most 2 fails: delivered again. Delivery 2 fails for good.
        for delivery in 1..=2 {
            pipeline
                .process(
                    Incoming::bytes(&envelope).delivery(delivery, Some(2)),
                    Redelivering(Some(false)),
                )
                .await;
        }
        // The done record cannot be read: left for later.
        pipeline
            .process(Incoming::bytes(&envelope), Redelivering(None))
            .await;
        // An entry the transport refused (too large).
        pipeline.refused("entry over the size limit");
        stats = pipeline.stats();
    });

    let consumed = |t, outcome: Outcome| {
        value(
            &text,
            names::CONSUMED,
            &[
                ("group", "audit"),
                ("type", t),
                ("outcome", outcome.as_str()),
            ],
        )
    };
    assert_eq!(consumed(STARTED, Outcome::Redelivered), 1.0, "{text}");
    assert_eq!(consumed(STARTED, Outcome::Failed), 1.0);
    assert_eq!(consumed(STARTED, Outcome::Deferred), 1.0);
    assert_eq!(consumed(OTHER_TYPE, Outcome::Poison), 1.0);
    let of = |name, t| value(&text, name, &[("group", "audit"), ("type", t)]);
    assert_eq!(of(names::RETRIES, STARTED), 1.0);
    assert_eq!(of(names::DEAD_LETTERED, STARTED), 1.0);
    assert_eq!(of(names::DEAD_LETTERED, OTHER_TYPE), 1.0);
    assert_eq!(value(&text, names::RETRIES, &[]) as u64, stats.retries);
    assert_eq!(value(&text, names::CONSUMED, &[]) as u64, stats.received);
}
