//! Typed, schema-first domain events.
//!
//! Events are declared in TOML files; [`include_events!`] turns a folder of them into payload
//! structs, the `DomainEventType` enum, envelope aliases and the rules for idempotency keys and
//! correlation ids. This crate holds what that generated code runs on: the [`Envelope`], the
//! [`Emitter`](struct@Emitter) and its [`Transport`]s, the embedded [`MemoryBus`], and the consumer-side
//! [`Handlers`] registry.
//!
//! See the repository README for a walk-through and `docs/schema-language.md` for the TOML format.
#![deny(missing_docs)]

pub mod cloudevents;
mod emitter;
mod envelope;
mod envelopes;
mod formats;
mod handlers;
mod idempotency;
mod key;
/// The embedded in-memory bus; its types are also re-exported at the crate root.
pub mod memory;
pub mod metrics;
mod outgoing;
mod payload;
mod pipeline;
mod sink;
pub mod trace;
mod transport;
mod validation;

#[cfg(test)]
mod test_support;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use cloudevents::{
    CLOUDEVENTS_JSON_CONTENT_TYPE, CLOUDEVENTS_SPEC_VERSION, CloudEventError,
    DEFAULT_SCHEMA_ID_BASE, payload_schema_id,
};
/// The wire constants (schema `$id` base, Redis key prefix, BullMQ queue and prefix), each defined
/// once for the runtime, the transports and the schema library (docs/contract.md sections 3.5,
/// 4.1 and 5.1).
pub use domain_events_wire as wire;
pub use emitter::{
    DEFAULT_EMIT_TIMEOUT, EmitBatch, EmitError, Emitted, Emitter, EmitterBuilder, EmitterStats,
};
pub use envelope::{DecodeError, Envelope, RawEnvelope, category_of, is_valid_traceparent};
pub use envelopes::{EnvelopeBuilder, EnvelopeError};
pub use formats::{Date, Email, FormatError, Timestamp, Url};
pub use handlers::{DispatchError, Dispatched, HandlerError, Handlers};
pub use idempotency::{DEFAULT_DONE_TTL, IdempotencyGuard};
pub use key::{KeyPart, escape_key_value, write_key_part};
pub use memory::{
    Backpressure, DEFAULT_CAPACITY, DEFAULT_CLAIM_TTL, Delivered, Filter, MemoryBus,
    MemoryBusBuilder, MemoryConsumer, MemoryConsumerBuilder, MemoryConsumerHandle, Subscription,
    TypedSubscription,
};
pub use outgoing::{OutgoingEvent, TypedEvent};
pub use payload::{EventInfo, EventPayload, EventSet, UnknownValue};
pub use pipeline::{
    ConsumerHandle, ConsumerPanicked, ConsumerStats, Incoming, Pipeline, PipelineBuilder,
    RetryPolicy, Settle, Shutdown, Verdict,
};
pub use sink::EventSink;
pub use transport::{BoxError, BoxFuture, PublishOutcome, Transport, TransportError, TypedPublish};

pub use uuid::Uuid;
pub use validation::{Validate, ValidationError, Violation};

#[cfg(feature = "macros")]
pub use domain_events_macros::{Emitter, include_events};
