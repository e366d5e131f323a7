//! The [`Emitter`]: turns payloads into envelopes and publishes them through a [`Transport`].

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tracing::Instrument;
use uuid::Uuid;

use crate::envelope::Envelope;
use crate::envelopes::EnvelopeBuilder;
use crate::metrics::EmitMetrics;
use crate::outgoing::{OutgoingEvent, TypedEvent};
use crate::payload::EventPayload;
use crate::transport::{PublishOutcome, Transport, TransportError, TypedPublish};
use crate::validation::ValidationError;

/// How long an emission may take, transport included, unless [`EmitterBuilder::timeout`] says
/// otherwise: 5 seconds.
pub const DEFAULT_EMIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why an emission failed.
#[derive(Debug, thiserror::Error)]
pub enum EmitError {
    /// The payload breaks a constraint of its schema; nothing was sent.
    #[error("invalid payload: {0}")]
    Invalid(#[from] ValidationError),
    /// The envelope could not be serialized to JSON; nothing was sent.
    #[error("cannot serialize the envelope: {0}")]
    Serialize(#[from] serde_json::Error),
    /// The transport did not answer within the emitter's timeout. The events may or may not have
    /// been published; emitting them again is safe, since their idempotency keys are unchanged.
    #[error(
        "the transport did not answer within {0:?}; the events may have been published, and \
         emitting them again with the same idempotency key is safe"
    )]
    Timeout(Duration),
    /// The transport failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
}

impl EmitError {
    /// Whether the events may have been published although the emission failed: the emitter's
    /// timeout expired, or the transport did not answer in time ([`TransportError::Unknown`]).
    /// Emitting them again (same payload, so the same idempotency key) is safe. Such events are
    /// counted in [`EmitterStats::unknown`], not [`EmitterStats::failed`].
    pub fn is_outcome_unknown(&self) -> bool {
        match self {
            EmitError::Timeout(_) => true,
            EmitError::Transport(error) => error.is_outcome_unknown(),
            EmitError::Invalid(_) | EmitError::Serialize(_) => false,
        }
    }
}

/// The result of one successful emission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emitted {
    /// The `eventId` of the envelope that was built. When [`duplicate`](Self::duplicate) is true,
    /// this envelope was not published.
    pub event_id: Uuid,
    /// The event's type string.
    pub event_type: &'static str,
    /// The event's idempotency key.
    pub idempotency_key: String,
    /// Whether the key was already claimed, so that the event was not published.
    pub duplicate: bool,
    /// For a duplicate, the `eventId` of the event holding the claim, when the transport knows it.
    pub existing_event_id: Option<Uuid>,
}

impl Emitted {
    /// Whether the event was published (it was not a duplicate).
    pub fn published(&self) -> bool {
        !self.duplicate
    }
}

/// A snapshot of an emitter's counters, shared by all its clones.
///
/// Every count is per event: a batch of three counts three.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EmitterStats {
    /// Events the transport published.
    pub emitted: u64,
    /// Events not published because their key was already claimed.
    pub duplicates: u64,
    /// Events whose emission failed, through [`Emitter::emit`], [`Emitter::emit_batch`] and
    /// [`Emitter::emit_or_log`] alike.
    pub failed: u64,
    /// Events whose outcome is unknown: the transport did not answer in time, so they may have
    /// been published ([`EmitError::is_outcome_unknown`]).
    pub unknown: u64,
}

#[derive(Default)]
struct Counters {
    emitted: AtomicU64,
    duplicates: AtomicU64,
    failed: AtomicU64,
    unknown: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}

struct Inner {
    transport: Arc<dyn Transport>,
    timeout: Duration,
    counters: Counters,
    metrics: EmitMetrics,
}

/// Publishes events of one service through a [`Transport`].
///
/// Cloning is cheap (an `Arc` inside); clones share the transport and the counters.
/// [`with_causation`](Self::with_causation) and [`with_traceparent`](Self::with_traceparent) return
/// clones that stamp those fields on what they emit.
///
/// ```
/// # use domain_events::{Emitter, MemoryBus};
/// # use std::time::Duration;
/// let bus = MemoryBus::new();
/// let emitter = Emitter::builder("image-generator", bus.clone())
///     .timeout(Duration::from_secs(2))
///     .build();
/// assert_eq!(emitter.source(), "image-generator");
/// ```
#[derive(Clone)]
pub struct Emitter {
    inner: Arc<Inner>,
    envelopes: EnvelopeBuilder,
}

/// Configures an [`Emitter`]; made by [`Emitter::builder`].
pub struct EmitterBuilder {
    source: String,
    transport: Arc<dyn Transport>,
    timeout: Duration,
}

impl EmitterBuilder {
    /// How long one emission (one transport call) may take before it fails with
    /// [`EmitError::Timeout`]; default [`DEFAULT_EMIT_TIMEOUT`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The emitter.
    pub fn build(self) -> Emitter {
        Emitter {
            inner: Arc::new(Inner {
                metrics: EmitMetrics::new(self.transport.name()),
                transport: self.transport,
                timeout: self.timeout,
                counters: Counters::default(),
            }),
            envelopes: EnvelopeBuilder::new(self.source),
        }
    }
}

impl fmt::Debug for EmitterBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmitterBuilder")
            .field("source", &self.source)
            .field("transport", &self.transport.name())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Emitter {
    /// Starts configuring an emitter for service `source`, publishing through `transport`.
    pub fn builder(source: impl Into<String>, transport: impl Transport) -> EmitterBuilder {
        EmitterBuilder {
            source: source.into(),
            transport: Arc::new(transport),
            timeout: DEFAULT_EMIT_TIMEOUT,
        }
    }

    /// An emitter for service `source` with the default settings.
    pub fn new(source: impl Into<String>, transport: impl Transport) -> Emitter {
        Self::builder(source, transport).build()
    }

    /// The service name written into every envelope's `source`.
    pub fn source(&self) -> &str {
        self.envelopes.source()
    }

    /// What builds this emitter's envelopes (its source, causation and traceparent): the same
    /// envelopes go to the PostgreSQL outbox with it.
    pub fn envelopes(&self) -> &EnvelopeBuilder {
        &self.envelopes
    }

    /// The name of the transport.
    pub fn transport_name(&self) -> &'static str {
        self.inner.transport.name()
    }

    /// The timeout of one emission.
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// The counters, shared by every clone of this emitter.
    pub fn stats(&self) -> EmitterStats {
        let c = &self.inner.counters;
        EmitterStats {
            emitted: c.emitted.load(Ordering::Relaxed),
            duplicates: c.duplicates.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            unknown: c.unknown.load(Ordering::Relaxed),
        }
    }

    /// A clone that stamps `causationId` = `event_id` on what it emits: use it to emit events
    /// caused by the event `event_id`.
    pub fn with_causation(&self, event_id: Uuid) -> Emitter {
        let mut emitter = self.clone();
        emitter.envelopes = self.envelopes.with_causation(event_id);
        emitter
    }

    /// A clone that stamps the W3C `traceparent` on what it emits. A value that is not a valid
    /// version-00 traceparent ([`is_valid_traceparent`](crate::is_valid_traceparent)) is ignored: the clone stamps none, as
    /// [`Envelope::with_traceparent`] does.
    pub fn with_traceparent(&self, traceparent: &str) -> Emitter {
        let mut emitter = self.clone();
        emitter.envelopes = self.envelopes.with_traceparent(traceparent);
        emitter
    }

    /// Validates `payload`, wraps it in an envelope and publishes it, within the emitter's
    /// timeout. The transport gets the envelope typed ([`Transport::publish_typed_one`]): the
    /// in-memory bus hands it to subscribers as it is, a transport that publishes JSON has it
    /// serialized once.
    ///
    /// A payload that breaks its schema fails with [`EmitError::Invalid`] and nothing is sent. An
    /// event whose idempotency key is already claimed is not published and is reported with
    /// [`Emitted::duplicate`] set; that is not an error.
    ///
    /// The emission is a [`EMIT_SPAN`](crate::trace::EMIT_SPAN) span carrying the event's type,
    /// id, idempotency key and correlation id; with the `opentelemetry` feature, an envelope
    /// without a `traceparent` of the emitter's gets the span's ([`trace`](crate::trace)).
    pub async fn emit<P: EventPayload>(&self, payload: P) -> Result<Emitted, EmitError> {
        let (span, event) = self.envelopes.spanned(payload);
        let event = match event {
            Ok(event) => event,
            Err(e) => return Err(self.failed(&[P::TYPE], e.into())),
        };
        self.publish_one(event).instrument(span).await
    }

    /// Publishes the event `emit` built.
    async fn publish_one(&self, event: TypedEvent) -> Result<Emitted, EmitError> {
        let (event_id, event_type) = (event.event_id(), event.event_type());
        // The one copy of the key, for `Emitted`; a declined event gives its own to the JSON.
        let key = event.idempotency_key().to_owned();
        let types = &[event_type];
        let outcome = match self.inner.transport.publish_typed_one(event) {
            TypedPublish::Now(answer) => answer.map_err(|e| self.failed(types, e.into()))?,
            TypedPublish::Later(answer) => self.within_timeout(types, answer).await?,
            TypedPublish::Declined(event) => {
                let event = event
                    .into_outgoing()
                    .map_err(|e| self.failed(types, e.into()))?;
                let publish = self.inner.transport.publish(std::slice::from_ref(&event));
                let outcomes = self.within_timeout(types, publish).await?;
                self.one_each(types, outcomes)?.remove(0)
            }
        };
        Ok(self.record(event_id, event_type, key, outcome))
    }

    /// Fire-and-forget [`emit`](Self::emit): never fails. A failure is logged with
    /// `tracing::warn!` (event type, idempotency key and error, never the payload), counted in
    /// [`EmitterStats::failed`], and returns `None`.
    pub async fn emit_or_log<P: EventPayload>(&self, payload: P) -> Option<Emitted> {
        let key = payload.idempotency_key();
        match self.emit(payload).await {
            Ok(emitted) => Some(emitted),
            Err(error) if error.is_outcome_unknown() => {
                tracing::warn!(
                    event_type = P::TYPE,
                    idempotency_key = %key,
                    source = %self.envelopes.source(),
                    error = %error,
                    "event outcome unknown: it may have been emitted"
                );
                None
            }
            Err(error) => {
                tracing::warn!(
                    event_type = P::TYPE,
                    idempotency_key = %key,
                    source = %self.envelopes.source(),
                    error = %error,
                    "event not emitted"
                );
                None
            }
        }
    }

    /// Publishes every event of `batch` in one transport call, within the emitter's timeout.
    /// Returns one [`Emitted`] per event, in the order they were pushed. An empty batch does not
    /// call the transport.
    ///
    /// The emission is a [`EMIT_BATCH_SPAN`](crate::trace::EMIT_BATCH_SPAN) span; with the
    /// `opentelemetry` feature, envelopes without a `traceparent` of the emitter's get the span's.
    pub async fn emit_batch(&self, batch: EmitBatch) -> Result<Vec<Emitted>, EmitError> {
        if batch.items.is_empty() {
            return Ok(Vec::new());
        }
        let span = self.envelopes.batch_span(batch.len());
        self.publish_batch(batch).instrument(span).await
    }

    /// Publishes the events of `emit_batch`, in its span.
    async fn publish_batch(&self, batch: EmitBatch) -> Result<Vec<Emitted>, EmitError> {
        let events: Vec<TypedEvent> = batch
            .items
            .into_iter()
            .map(|item| item.finish(&self.envelopes))
            .collect();
        // Kept apart from the ids: the failure paths count the events by type.
        let types: Vec<&'static str> = events.iter().map(TypedEvent::event_type).collect();
        let ids: Vec<(Uuid, String)> = events
            .iter()
            .map(|e| (e.event_id(), e.idempotency_key().to_owned()))
            .collect();
        let types = types.as_slice();
        let outcomes = match self.inner.transport.publish_typed(events) {
            TypedPublish::Now(answer) => answer.map_err(|e| self.failed(types, e.into()))?,
            TypedPublish::Later(answer) => self.within_timeout(types, answer).await?,
            TypedPublish::Declined(events) => {
                let events = events
                    .into_iter()
                    .map(TypedEvent::into_outgoing)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| self.failed(types, e.into()))?;
                let publish = self.inner.transport.publish(&events);
                self.within_timeout(types, publish).await?
            }
        };
        let outcomes = self.one_each(types, outcomes)?;
        Ok(ids
            .into_iter()
            .zip(types)
            .zip(outcomes)
            .map(|(((id, key), event_type), outcome)| self.record(id, event_type, key, outcome))
            .collect())
    }

    /// Awaits the transport's answer for the events of `types` within the timeout; on a timeout
    /// or an error, counts them as failed (or of unknown outcome).
    async fn within_timeout<T>(
        &self,
        types: &[&'static str],
        answer: impl Future<Output = Result<T, TransportError>>,
    ) -> Result<T, EmitError> {
        let timeout = self.inner.timeout;
        match tokio::time::timeout(timeout, answer).await {
            Err(_elapsed) => Err(self.failed(types, EmitError::Timeout(timeout))),
            Ok(Err(e)) => Err(self.failed(types, e.into())),
            Ok(Ok(answer)) => Ok(answer),
        }
    }

    /// `outcomes`, unless the transport did not answer one per event of `types`: then every
    /// event failed.
    fn one_each(
        &self,
        types: &[&'static str],
        outcomes: Vec<PublishOutcome>,
    ) -> Result<Vec<PublishOutcome>, EmitError> {
        let count = types.len();
        if outcomes.len() == count {
            return Ok(outcomes);
        }
        let message = format!(
            "transport `{}` returned {} outcomes for {count} events",
            self.inner.transport.name(),
            outcomes.len(),
        );
        Err(self.failed(types, TransportError::other(message).into()))
    }

    /// Counts and logs the outcome of one published event.
    fn record(
        &self,
        event_id: Uuid,
        event_type: &'static str,
        idempotency_key: String,
        outcome: PublishOutcome,
    ) -> Emitted {
        let existing_event_id = match outcome {
            PublishOutcome::Published => {
                Counters::add(&self.inner.counters.emitted, 1);
                self.inner.metrics.published(event_type);
                tracing::debug!(
                    event_type = event_type,
                    event_id = %event_id,
                    idempotency_key = %idempotency_key,
                    "event emitted"
                );
                None
            }
            PublishOutcome::Duplicate { existing_event_id } => {
                Counters::add(&self.inner.counters.duplicates, 1);
                self.inner.metrics.duplicate(event_type);
                tracing::debug!(
                    event_type = event_type,
                    idempotency_key = %idempotency_key,
                    existing_event_id = ?existing_event_id,
                    "duplicate event not published"
                );
                existing_event_id
            }
        };
        Emitted {
            event_id,
            event_type,
            idempotency_key,
            duplicate: outcome.is_duplicate(),
            existing_event_id,
        }
    }

    /// Counts the events of `types` as failed (or of unknown outcome, see
    /// [`EmitError::is_outcome_unknown`]) and hands `error` back.
    fn failed(&self, types: &[&'static str], error: EmitError) -> EmitError {
        let counters = &self.inner.counters;
        let unknown = error.is_outcome_unknown();
        if unknown {
            Counters::add(&counters.unknown, types.len());
        } else {
            Counters::add(&counters.failed, types.len());
        }
        self.inner.metrics.failed(types, unknown);
        error
    }
}

impl fmt::Debug for Emitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emitter")
            .field("source", &self.envelopes.source())
            .field("transport", &self.inner.transport.name())
            .field("timeout", &self.inner.timeout)
            .field("causation_id", &self.envelopes.causation_id())
            .field("traceparent", &self.envelopes.traceparent())
            .finish()
    }
}

/// An envelope waiting in a batch for the emitter's source and context.
trait Pending: Send {
    fn event_type(&self) -> &'static str;
    /// The complete event.
    fn finish(self: Box<Self>, envelopes: &EnvelopeBuilder) -> TypedEvent;
}

impl<P: EventPayload> Pending for Envelope<P> {
    fn event_type(&self) -> &'static str {
        P::TYPE
    }

    fn finish(mut self: Box<Self>, envelopes: &EnvelopeBuilder) -> TypedEvent {
        envelopes.stamp(&mut self);
        TypedEvent::new(*self)
    }
}

/// Events of any types, validated as they are pushed and published together by
/// [`Emitter::emit_batch`] in one transport call.
///
/// Each payload is validated and given its `eventId` and `occurredAt` when pushed; it is serialized
/// once, when the batch is emitted, with the emitter's source and context.
///
/// ```
/// # use domain_events::EmitBatch;
/// let batch = EmitBatch::new();
/// assert!(batch.is_empty());
/// // batch.push(payload)?; for each payload, then emitter.emit_batch(batch).await?
/// ```
#[derive(Default)]
pub struct EmitBatch {
    items: Vec<Box<dyn Pending>>,
}

impl EmitBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Validates `payload` and adds it to the batch, returning its `eventId`. An invalid payload is
    /// not added.
    pub fn push<P: EventPayload>(&mut self, payload: P) -> Result<Uuid, ValidationError> {
        // The source is filled in by the emitter.
        let envelope = Envelope::new(String::new(), payload)?;
        let event_id = envelope.event_id;
        self.items.push(Box::new(envelope));
        Ok(event_id)
    }

    /// The number of events in the batch.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the batch holds no event.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The events of the batch in push order, stamped with the source and context of
    /// `envelopes` and serialized, as a transport that publishes JSON gets them from
    /// [`Emitter::emit_batch`] (the PostgreSQL outbox writes them so).
    pub fn into_outgoing(
        self,
        envelopes: &EnvelopeBuilder,
    ) -> Result<Vec<OutgoingEvent>, serde_json::Error> {
        self.items
            .into_iter()
            .map(|item| item.finish(envelopes).into_outgoing())
            .collect()
    }
}

impl fmt::Debug for EmitBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.items.iter().map(|item| item.event_type()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::envelope::RawEnvelope;
    use crate::outgoing::OutgoingEvent;
    use crate::test_support::{Signup, VariationCompleted, within};
    use crate::transport::BoxFuture;

    /// Records what it is asked to publish and answers with a scripted result.
    #[derive(Default)]
    struct Recorder {
        calls: Mutex<Vec<Vec<OutgoingEvent>>>,
        answer: Mutex<Option<Result<Vec<PublishOutcome>, TransportError>>>,
    }

    impl Recorder {
        fn answering(answer: Result<Vec<PublishOutcome>, TransportError>) -> Arc<Self> {
            Arc::new(Recorder {
                calls: Mutex::default(),
                answer: Mutex::new(Some(answer)),
            })
        }

        fn calls(&self) -> Vec<Vec<OutgoingEvent>> {
            self.calls.lock().expect("lock").clone()
        }
    }

    impl Transport for Recorder {
        fn name(&self) -> &'static str {
            "recorder"
        }

        fn publish<'a>(
            &'a self,
            events: &'a [OutgoingEvent],
        ) -> BoxFuture<'a, Result<Vec<PublishOutcome>, TransportError>> {
            self.calls.lock().expect("lock").push(events.to_vec());
            let answer = self.answer.lock().expect("lock").take();
            Box::pin(async move {
                answer.unwrap_or_else(|| Ok(vec![PublishOutcome::Published; events.len()]))
            })
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

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[tokio::test]
    async fn emit_serializes_the_envelope_once_with_source_and_context() {
        let recorder = Arc::new(Recorder::default());
        let emitter = Emitter::new("image-generator", recorder.clone());
        let cause = Uuid::now_v7();
        let emitted = emitter
            .with_causation(cause)
            .with_traceparent(TP)
            .emit(VariationCompleted::new("var-123"))
            .await
            .expect("emitted");

        assert_eq!(emitted.idempotency_key, "image_complete:var-123");
        assert_eq!(emitted.event_type, "image:variation_completed");
        assert!(emitted.published());
        let calls = recorder.calls();
        assert_eq!(calls.len(), 1);
        let event = &calls[0][0];
        assert_eq!(
            (event.event_type, event.category),
            ("image:variation_completed", "image")
        );
        assert_eq!(event.event_id, emitted.event_id);
        let raw = RawEnvelope::from_slice(event.json.as_bytes()).expect("envelope JSON");
        assert_eq!(raw.event_id, emitted.event_id);
        assert_eq!(raw.source, "image-generator");
        assert_eq!(raw.causation_id, Some(cause));
        assert_eq!(raw.traceparent.as_deref(), Some(TP));
        assert_eq!(raw.correlation_id, "var-123");
        assert_eq!(raw.idempotency_key, "image_complete:var-123");
        assert_eq!(
            emitter.stats(),
            EmitterStats {
                emitted: 1,
                duplicates: 0,
                failed: 0,
                unknown: 0
            }
        );
    }

    #[tokio::test]
    async fn context_clones_leave_the_original_untouched_and_bad_traceparents_are_ignored() {
        let recorder = Arc::new(Recorder::default());
        let emitter = Emitter::new("svc", recorder.clone());
        emitter
            .with_traceparent("not-a-traceparent")
            .emit(Signup::new("u1"))
            .await
            .expect("emitted");
        emitter.emit(Signup::new("u2")).await.expect("emitted");
        for call in recorder.calls() {
            let raw = RawEnvelope::from_slice(call[0].json.as_bytes()).expect("envelope JSON");
            assert_eq!(raw.traceparent, None);
            assert_eq!(raw.causation_id, None);
        }
        // Clones share counters.
        assert_eq!(emitter.with_causation(Uuid::now_v7()).stats().emitted, 2);
    }

    #[tokio::test]
    async fn invalid_payloads_are_not_sent() {
        let recorder = Arc::new(Recorder::default());
        let emitter = Emitter::new("svc", recorder.clone());
        let err = emitter
            .emit(VariationCompleted::new(""))
            .await
            .expect_err("invalid");
        match err {
            EmitError::Invalid(e) => assert_eq!(e.violations[0].path, "variationId"),
            other => panic!("expected Invalid, got {other:?}"),
        }
        assert!(recorder.calls().is_empty());
        assert_eq!(emitter.stats().failed, 1);
    }

    #[tokio::test]
    async fn duplicates_are_reported_not_failed() {
        let existing = Uuid::now_v7();
        let recorder = Recorder::answering(Ok(vec![PublishOutcome::Duplicate {
            existing_event_id: Some(existing),
        }]));
        let emitter = Emitter::new("svc", recorder);
        let emitted = emitter.emit(Signup::new("u1")).await.expect("not an error");
        assert!(emitted.duplicate);
        assert_eq!(emitted.existing_event_id, Some(existing));
        assert_eq!(
            emitter.stats(),
            EmitterStats {
                emitted: 0,
                duplicates: 1,
                failed: 0,
                unknown: 0
            }
        );
    }

    #[tokio::test]
    async fn transport_errors_and_wrong_outcome_counts_fail_the_emission() {
        let emitter = Emitter::new(
            "svc",
            Recorder::answering(Err(TransportError::Rejected("no".into()))),
        );
        let err = emitter.emit(Signup::new("u1")).await.expect_err("rejected");
        assert!(
            matches!(err, EmitError::Transport(TransportError::Rejected(_))),
            "{err:?}"
        );

        let emitter = Emitter::new("svc", Recorder::answering(Ok(vec![])));
        let err = emitter
            .emit(Signup::new("u1"))
            .await
            .expect_err("no outcome");
        assert!(err.to_string().contains("0 outcomes for 1 events"), "{err}");
        assert_eq!(emitter.stats().failed, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stuck_transport_times_out() {
        let emitter = Emitter::builder("svc", Stuck)
            .timeout(Duration::from_millis(250))
            .build();
        let started = tokio::time::Instant::now();
        let err = within(emitter.emit(Signup::new("u1")))
            .await
            .expect_err("timeout");
        assert!(
            matches!(err, EmitError::Timeout(d) if d == Duration::from_millis(250)),
            "{err:?}"
        );
        assert_eq!(started.elapsed(), Duration::from_millis(250));
        assert!(err.is_outcome_unknown());
        let stats = emitter.stats();
        assert_eq!((stats.failed, stats.unknown), (0, 1), "{stats:?}");
    }

    #[tokio::test]
    async fn emit_or_log_swallows_and_counts_failures() {
        let recorder = Arc::new(Recorder::default());
        let emitter = Emitter::new("svc", recorder.clone());
        assert!(emitter.emit_or_log(Signup::new("")).await.is_none());
        let ok = emitter
            .emit_or_log(Signup::new("u1"))
            .await
            .expect("emitted");
        assert!(ok.published());

        let failing = Emitter::new(
            "svc",
            Recorder::answering(Err(TransportError::unavailable("refused"))),
        );
        assert!(failing.emit_or_log(Signup::new("u1")).await.is_none());

        assert_eq!(
            emitter.stats(),
            EmitterStats {
                emitted: 1,
                duplicates: 0,
                failed: 1,
                unknown: 0
            }
        );
        assert_eq!(
            failing.stats(),
            EmitterStats {
                emitted: 0,
                duplicates: 0,
                failed: 1,
                unknown: 0
            }
        );
        assert_eq!(recorder.calls().len(), 1);
    }

    #[tokio::test]
    async fn a_batch_is_one_transport_call_in_push_order() {
        let recorder = Recorder::answering(Ok(vec![
            PublishOutcome::Published,
            PublishOutcome::Duplicate {
                existing_event_id: None,
            },
        ]));
        let emitter = Emitter::new("svc", recorder.clone()).with_causation(Uuid::nil());
        let mut batch = EmitBatch::new();
        let first = batch.push(Signup::new("u1")).expect("valid");
        let second = batch.push(VariationCompleted::new("v1")).expect("valid");
        assert!(batch.push(VariationCompleted::new("")).is_err());
        assert_eq!(batch.len(), 2);
        assert_eq!(
            format!("{batch:?}"),
            r#"["funnel:signup", "image:variation_completed"]"#
        );

        let emitted = emitter.emit_batch(batch).await.expect("emitted");
        assert_eq!(
            emitted.iter().map(|e| e.event_id).collect::<Vec<_>>(),
            vec![first, second]
        );
        assert_eq!(
            emitted.iter().map(|e| e.duplicate).collect::<Vec<_>>(),
            vec![false, true]
        );
        let calls = recorder.calls();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].len(), 2);
        for event in &calls[0] {
            let raw = RawEnvelope::from_slice(event.json.as_bytes()).expect("envelope JSON");
            assert_eq!(raw.source, "svc");
            assert_eq!(raw.causation_id, Some(Uuid::nil()));
            assert_eq!(raw.event_id, event.event_id);
        }
        assert_eq!(
            emitter.stats(),
            EmitterStats {
                emitted: 1,
                duplicates: 1,
                failed: 0,
                unknown: 0
            }
        );

        assert!(
            emitter
                .emit_batch(EmitBatch::new())
                .await
                .expect("empty")
                .is_empty()
        );
        assert_eq!(
            recorder.calls().len(),
            1,
            "an empty batch does not call the transport"
        );
    }

    #[tokio::test]
    async fn a_failed_batch_counts_each_event() {
        let emitter = Emitter::new(
            "svc",
            Recorder::answering(Err(TransportError::unavailable("down"))),
        );
        let mut batch = EmitBatch::new();
        batch.push(Signup::new("u1")).expect("valid");
        batch.push(Signup::new("u2")).expect("valid");
        assert!(matches!(
            emitter.emit_batch(batch).await,
            Err(EmitError::Transport(TransportError::Unavailable(_)))
        ));
        assert_eq!(emitter.stats().failed, 2);
    }

    /// A transport that takes events typed and never wants JSON.
    #[derive(Default)]
    struct TypedOnly {
        typed: Mutex<Vec<(&'static str, String)>>,
    }

    impl Transport for TypedOnly {
        fn name(&self) -> &'static str {
            "typed-only"
        }

        fn publish<'a>(
            &'a self,
            _: &'a [OutgoingEvent],
        ) -> BoxFuture<'a, Result<Vec<PublishOutcome>, TransportError>> {
            Box::pin(async { Err(TransportError::other("asked for JSON")) })
        }

        fn publish_typed_one(
            &self,
            event: TypedEvent,
        ) -> TypedPublish<'_, PublishOutcome, TypedEvent> {
            self.typed
                .lock()
                .expect("not poisoned")
                .push((event.event_type(), event.idempotency_key().to_owned()));
            TypedPublish::Now(Ok(PublishOutcome::Published))
        }

        fn publish_typed(
            &self,
            events: Vec<TypedEvent>,
        ) -> TypedPublish<'_, Vec<PublishOutcome>, Vec<TypedEvent>> {
            let n = events.len();
            for event in events {
                let _ = self.publish_typed_one(event);
            }
            TypedPublish::Later(Box::pin(
                async move { Ok(vec![PublishOutcome::Published; n]) },
            ))
        }
    }

    #[tokio::test]
    async fn any_transport_can_take_events_typed_through_the_seam() {
        let transport = Arc::new(TypedOnly::default());
        // Behind an `Arc` and a `dyn`, as services share transports.
        let shared: Arc<dyn Transport> = transport.clone();
        let emitter = Emitter::new("tests", shared);
        let emitted = within(emitter.emit(Signup::new("u1")))
            .await
            .expect("emitted");
        assert!(emitted.published());
        let mut batch = EmitBatch::new();
        batch.push(Signup::new("u2")).expect("valid");
        batch.push(VariationCompleted::new("v1")).expect("valid");
        assert_eq!(
            within(emitter.emit_batch(batch))
                .await
                .expect("emitted")
                .len(),
            2
        );
        let typed = transport.typed.lock().expect("not poisoned").clone();
        assert_eq!(
            typed,
            [
                ("funnel:signup", "funnel_signup:u1".to_owned()),
                ("funnel:signup", "funnel_signup:u2".to_owned()),
                ("image:variation_completed", "image_complete:v1".to_owned()),
            ]
        );
        assert_eq!(emitter.stats().emitted, 3);
    }

    #[tokio::test]
    async fn a_shared_memory_bus_gets_events_typed_like_an_owned_one() {
        let bus = crate::memory::MemoryBus::new();
        let mut subscription = bus.subscribe(crate::memory::Filter::All);
        let shared: Arc<dyn Transport> = Arc::new(bus.clone());
        Emitter::new("tests", shared)
            .emit(Signup::new("u1"))
            .await
            .expect("emitted");
        Emitter::new("tests", bus.clone())
            .emit(Signup::new("u2"))
            .await
            .expect("emitted");
        for _ in 0..2 {
            let delivered = within(subscription.recv()).await.expect("delivered");
            assert!(
                format!("{delivered:?}").contains("typed: true"),
                "{delivered:?}"
            );
        }
    }
}
