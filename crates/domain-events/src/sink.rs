//! [`EventSink`]: where the typed methods of `#[derive(Emitter)]` can send an event besides the
//! struct's own [`Emitter`](struct@crate::Emitter): the emitter itself, or the PostgreSQL outbox
//! inside the caller's transaction (`domain-events-outbox`).

use std::future::Future;

use crate::emitter::{EmitError, Emitted, Emitter};
use crate::payload::EventPayload;

/// Takes typed events: validates, builds the envelope with its own source and context, and sends
/// or stores it.
///
/// `#[derive(Emitter)]` generates, next to each `emit_<category>_<name>`, an
/// `emit_<category>_<name>_into(&mut sink, payload)` that takes any sink, so the typed methods of
/// a service work with an outbox transaction too.
pub trait EventSink {
    /// What one accepted event gives back.
    type Output;
    /// Why an event was not accepted.
    type Error;

    /// Validates `payload`, builds its envelope and sends or stores it.
    fn emit<P: EventPayload>(
        &mut self,
        payload: P,
    ) -> impl Future<Output = Result<Self::Output, Self::Error>> + Send;
}

/// An emitter is a sink: it publishes through its transport.
impl EventSink for Emitter {
    type Output = Emitted;
    type Error = EmitError;

    fn emit<P: EventPayload>(
        &mut self,
        payload: P,
    ) -> impl Future<Output = Result<Emitted, EmitError>> + Send {
        Emitter::emit(self, payload)
    }
}
