//! [`Incoming`]: an event as a transport delivered it, the input of the [`Pipeline`](super::Pipeline).

use std::borrow::Cow;

use uuid::Uuid;

use crate::envelope::RawEnvelope;

/// One delivery of an event: its envelope (bytes to decode, or decoded already), which delivery
/// it is, and what the transport may know of its done record already.
#[derive(Debug)]
pub struct Incoming<'a> {
    event: Result<Cow<'a, RawEnvelope>, String>,
    known_done: Option<bool>,
    delivery: u64,
    max_deliveries: Option<u64>,
    /// The trace context the transport carried beside the envelope.
    trace_context: Option<String>,
}

/// The envelope of an [`Incoming`], or why there is none.
pub(crate) enum Event<'e> {
    Decoded(&'e RawEnvelope),
    Unreadable(&'e str),
}

impl<'a> Incoming<'a> {
    fn new(event: Result<Cow<'a, RawEnvelope>, String>) -> Self {
        Self {
            event,
            known_done: None,
            delivery: 1,
            max_deliveries: None,
            trace_context: None,
        }
    }

    /// The envelope's JSON bytes, decoded here (with the payload left unparsed); bytes that are
    /// not an envelope make a poison event.
    pub fn bytes(bytes: &[u8]) -> Self {
        Self::new(
            RawEnvelope::from_slice(bytes)
                .map(Cow::Owned)
                .map_err(|error| error.to_string()),
        )
    }

    /// An envelope the transport decoded already.
    pub fn decoded(raw: &'a RawEnvelope) -> Self {
        Self::new(Ok(Cow::Borrowed(raw)))
    }

    /// An entry that holds no envelope at all (e.g. a stream entry without its `event` field):
    /// a poison event, for `reason`.
    pub fn unreadable(reason: impl Into<String>) -> Self {
        Self::new(Err(reason.into()))
    }

    /// This is delivery number `delivery` (1 for the first) of the event, and the transport
    /// delivers an event at most `max_deliveries` times (`None`: it never delivers an event
    /// again, as the in-memory bus). Default: delivery 1, `None`.
    ///
    /// A delivery past the maximum is failed without running a handler; a failure in the last
    /// delivery is final ([`Verdict::Failed`](super::Verdict::Failed) with `redeliver: false`).
    pub fn delivery(mut self, delivery: u64, max_deliveries: Option<u64>) -> Self {
        self.delivery = delivery.max(1);
        self.max_deliveries = max_deliveries;
        self
    }

    /// The transport checked the done record already (e.g. for a whole batch at once): whether
    /// the group handled this key. [`Settle::is_done`](super::Settle::is_done) is not asked then.
    pub fn known_done(mut self, done: Option<bool>) -> Self {
        self.known_done = done;
        self
    }

    /// The W3C `traceparent` the transport carried beside the envelope (BullMQ's `tm` job
    /// option, where BullMQ's own telemetry puts it): with the `opentelemetry` feature, the
    /// handle span continues it when the envelope has no `traceparent` of its own
    /// ([`trace`](crate::trace)). An invalid one is ignored.
    pub fn trace_context(mut self, traceparent: Option<String>) -> Self {
        self.trace_context = traceparent;
        self
    }

    /// The `traceparent` the handle span continues: the envelope's, else the one the transport
    /// carried.
    pub(crate) fn traceparent(&self) -> Option<&str> {
        let own = match &self.event {
            Ok(raw) => raw.traceparent.as_deref(),
            Err(_) => None,
        };
        own.or(self.trace_context.as_deref())
    }

    /// The event's correlation id for spans (empty where unreadable).
    pub(crate) fn correlation_id(&self) -> &str {
        match &self.event {
            Ok(raw) => raw.correlation_id.as_str(),
            Err(_) => "",
        }
    }

    pub(crate) fn event(&self) -> Event<'_> {
        match &self.event {
            Ok(raw) => Event::Decoded(raw),
            Err(reason) => Event::Unreadable(reason),
        }
    }

    pub(crate) fn done(&self) -> Option<bool> {
        self.known_done
    }

    pub(crate) fn deliveries(&self) -> (u64, Option<u64>) {
        (self.delivery, self.max_deliveries)
    }

    /// The event's type, id and idempotency key for logs (empty where unreadable).
    pub(crate) fn ids(&self) -> (&str, Option<Uuid>, &str) {
        match &self.event {
            Ok(raw) => (
                raw.event_type.as_str(),
                Some(raw.event_id),
                raw.idempotency_key.as_str(),
            ),
            Err(_) => ("", None, ""),
        }
    }
}
