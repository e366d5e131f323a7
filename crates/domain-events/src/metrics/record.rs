//! Recording through the `metrics` facade (the `metrics` feature), for the emitter and the
//! delivery pipeline.

use std::sync::Arc;
use std::time::Instant;

use metrics::{Counter, Histogram, counter, histogram};

use super::cache::ByType;
use super::{
    CONSUMED, DEAD_LETTERED, EMIT_DUPLICATES, EMIT_FAILED, EMIT_UNKNOWN, EMITTED, HANDLER_DURATION,
    OTHER_TYPE, Outcome, RETRIES,
};
use crate::handlers::Handlers;

/// The emitter's counters, by event type; the transport's name is the other label.
pub(crate) struct EmitMetrics {
    transport: &'static str,
    by_type: ByType<EmitHandles>,
}

struct EmitHandles {
    emitted: Counter,
    duplicates: Counter,
    failed: Counter,
    unknown: Counter,
}

impl EmitMetrics {
    pub(crate) fn new(transport: &'static str) -> Self {
        Self {
            transport,
            by_type: ByType::default(),
        }
    }

    fn handles(&self, event_type: &'static str) -> Arc<EmitHandles> {
        let transport = self.transport;
        self.by_type.get_or_insert(event_type, || {
            let labels = [("type", event_type), ("transport", transport)];
            EmitHandles {
                emitted: counter!(EMITTED, &labels),
                duplicates: counter!(EMIT_DUPLICATES, &labels),
                failed: counter!(EMIT_FAILED, &labels),
                unknown: counter!(EMIT_UNKNOWN, &labels),
            }
        })
    }

    /// One event of `event_type` published.
    pub(crate) fn published(&self, event_type: &'static str) {
        self.handles(event_type).emitted.increment(1);
    }

    /// One event of `event_type` found claimed already.
    pub(crate) fn duplicate(&self, event_type: &'static str) {
        self.handles(event_type).duplicates.increment(1);
    }

    /// Events of `types` failed, or their outcome is `unknown`.
    pub(crate) fn failed(&self, types: &[&'static str], unknown: bool) {
        for event_type in types {
            let handles = self.handles(event_type);
            if unknown {
                handles.unknown.increment(1);
            } else {
                handles.failed.increment(1);
            }
        }
    }
}

/// A consumer group's counters and handler durations, by event type.
pub(crate) struct PipelineMetrics {
    group: String,
    by_type: ByType<ConsumeHandles>,
}

struct ConsumeHandles {
    outcomes: [Counter; Outcome::ALL.len()],
    retries: Counter,
    dead_lettered: Counter,
    duration: Histogram,
}

/// When a handler attempt started.
pub(crate) struct Started(Instant);

impl PipelineMetrics {
    pub(crate) fn new(group: &str) -> Self {
        Self {
            group: group.to_owned(),
            by_type: ByType::default(),
        }
    }

    /// The handles of `event_type`: its own if the handlers know it, else those of
    /// [`OTHER_TYPE`], so that what a producer writes cannot grow the label set.
    fn handles(&self, handlers: &Handlers, event_type: &str) -> Arc<ConsumeHandles> {
        if let Some(handles) = self.by_type.get(event_type) {
            return handles;
        }
        let label = if handlers.handles(event_type) {
            event_type
        } else {
            OTHER_TYPE
        };
        self.by_type
            .get_or_insert(label, || ConsumeHandles::new(&self.group, label))
    }

    /// One delivery of an event of `event_type` ended with `outcome`; `dead_lettered` when the
    /// group gave it up.
    pub(crate) fn outcome(
        &self,
        handlers: &Handlers,
        event_type: &str,
        outcome: Outcome,
        dead_lettered: bool,
    ) {
        let handles = self.handles(handlers, event_type);
        handles.outcomes[outcome as usize].increment(1);
        if outcome == Outcome::Redelivered {
            handles.retries.increment(1);
        }
        if dead_lettered {
            handles.dead_lettered.increment(1);
        }
    }

    /// A failed handler of `event_type` is retried in the consumer.
    pub(crate) fn retry(&self, handlers: &Handlers, event_type: &str) {
        self.handles(handlers, event_type).retries.increment(1);
    }

    /// A handler attempt starts now.
    pub(crate) fn start(&self) -> Started {
        Started(Instant::now())
    }

    /// The handlers of `event_type` ran, from `started` until now.
    pub(crate) fn handlers_ran(&self, handlers: &Handlers, event_type: &str, started: Started) {
        let seconds = started.0.elapsed().as_secs_f64();
        self.handles(handlers, event_type).duration.record(seconds);
    }
}

impl ConsumeHandles {
    fn new(group: &str, event_type: &str) -> Self {
        let labels = [("group", group.to_owned()), ("type", event_type.to_owned())];
        let outcomes = Outcome::ALL.map(|outcome| {
            let labels = [
                ("group", group.to_owned()),
                ("type", event_type.to_owned()),
                ("outcome", outcome.as_str().to_owned()),
            ];
            counter!(CONSUMED, &labels)
        });
        Self {
            outcomes,
            retries: counter!(RETRIES, &labels),
            dead_lettered: counter!(DEAD_LETTERED, &labels),
            duration: histogram!(HANDLER_DURATION, &labels),
        }
    }
}
