//! Tracing spans: every emission and every handled event is a [`tracing`] span, and with the
//! `opentelemetry` cargo feature those spans join OpenTelemetry traces through the envelope's W3C
//! `traceparent`.
//!
//! The spans are opened in two places only, as the [metrics](crate::metrics) are recorded: the
//! one path from a payload to an envelope ([`EnvelopeBuilder`](crate::EnvelopeBuilder), which the
//! [`Emitter`](struct@crate::Emitter) and the PostgreSQL outbox share) and the one delivery
//! [`Pipeline`](crate::Pipeline) every transport's consumer runs.
//!
//! | span | opened by | fields |
//! |---|---|---|
//! | [`EMIT_SPAN`] | each event of [`Emitter::emit`](crate::Emitter::emit) and of the outbox's `emit` | `source`, `event_type`, `event_id`, `idempotency_key`, `correlation_id` |
//! | [`EMIT_BATCH_SPAN`] | [`Emitter::emit_batch`](crate::Emitter::emit_batch) and the outbox's `emit_batch` | `source`, `events` |
//! | [`HANDLE_SPAN`] | [`Pipeline::process`](crate::Pipeline::process), for every delivered event | `group`, `event_type`, `event_id`, `idempotency_key`, `correlation_id`, `delivery` |
//!
//! All are at level `INFO`, with `otel.kind` `producer` or `consumer`.
//!
//! # OpenTelemetry (cargo feature `opentelemetry`)
//!
//! With a [`tracing-opentelemetry`](https://docs.rs/tracing-opentelemetry) layer installed:
//!
//! - an envelope built without a `traceparent` of its own
//!   ([`EnvelopeBuilder::with_traceparent`](crate::EnvelopeBuilder::with_traceparent),
//!   [`Emitter::with_traceparent`](crate::Emitter::with_traceparent)) gets the one of the current
//!   span: the emit span, a child of the caller's span. A given one is left as it is;
//! - the handle span's parent is the event's `traceparent`, so a handler continues the trace of
//!   the event it handles. When the envelope has none, a transport may carry one beside it
//!   ([`Incoming::trace_context`](crate::Incoming::trace_context)): the BullMQ consumer reads
//!   the job's `tm` option, where BullMQ's own telemetry (`bullmq-otel`) puts it.
//!
//! Without the feature the spans are the same and no `traceparent` is filled in or followed.

#[cfg(feature = "opentelemetry")]
#[path = "otel.rs"]
mod context;
#[cfg(not(feature = "opentelemetry"))]
#[path = "off.rs"]
mod context;

use tracing::Span;
use tracing::field::{Empty, display};

use crate::envelope::Envelope;
use crate::pipeline::Incoming;

pub(crate) use context::{continue_trace, current_traceparent};

/// The name of the span of one emitted event.
pub const EMIT_SPAN: &str = "domain_events.emit";
/// The name of the span of one emitted batch.
pub const EMIT_BATCH_SPAN: &str = "domain_events.emit_batch";
/// The name of the span of one delivered event in a consumer group.
pub const HANDLE_SPAN: &str = "domain_events.handle";

/// Whether this build fills in and follows `traceparent`s (the `opentelemetry` cargo feature).
/// A transport that carries the trace context beside the envelope reads it only then.
pub const fn propagates_trace_context() -> bool {
    cfg!(feature = "opentelemetry")
}

/// The span of one event of `event_type` emitted by `source`; its ids are recorded by
/// [`record_event`] once the envelope exists.
pub(crate) fn emit_span(source: &str, event_type: &'static str) -> Span {
    tracing::info_span!(
        "domain_events.emit",
        otel.kind = "producer",
        source,
        event_type,
        event_id = Empty,
        idempotency_key = Empty,
        correlation_id = Empty,
    )
}

/// The span of one batch of `events` events emitted by `source`.
pub(crate) fn emit_batch_span(source: &str, events: usize) -> Span {
    tracing::info_span!(
        "domain_events.emit_batch",
        otel.kind = "producer",
        source,
        events
    )
}

/// Records the ids of `envelope` on `span` (an [`emit_span`]).
pub(crate) fn record_event<P>(span: &Span, envelope: &Envelope<P>) {
    span.record("event_id", display(envelope.event_id));
    span.record("idempotency_key", envelope.idempotency_key.as_str());
    span.record("correlation_id", envelope.correlation_id.as_str());
}

/// The span of `incoming` in consumer group `group`, continuing the trace of its
/// `traceparent` (with the `opentelemetry` feature).
pub(crate) fn handle_span(group: &str, incoming: &Incoming<'_>) -> Span {
    let (event_type, event_id, key) = incoming.ids();
    let span = tracing::info_span!(
        "domain_events.handle",
        otel.kind = "consumer",
        group,
        event_type,
        event_id = event_id.map(display),
        idempotency_key = key,
        correlation_id = incoming.correlation_id(),
        delivery = incoming.deliveries().0,
    );
    continue_trace(&span, incoming.traceparent());
    span
}
