//! [`Verdict`]: what the [`Pipeline`](super::Pipeline) decided about one delivered event.

use crate::handlers::HandlerError;

/// What became of one delivered event; the transport's [`Settle`](super::Settle) carries it out.
#[derive(Debug)]
#[non_exhaustive]
pub enum Verdict {
    /// Every matching handler ran and succeeded: record the key as done, acknowledge.
    Handled {
        /// How many handlers ran.
        handlers: usize,
    },
    /// The group handled this idempotency key already; no handler ran: acknowledge.
    Duplicate,
    /// No handler is registered for the event: acknowledge.
    Unhandled,
    /// The event can never be handled (not an envelope, unknown type or version, a payload that
    /// does not match its schema): dead-letter it with `reason`, never retry.
    Poison {
        /// Why, without any value of the payload (it may hold sensitive fields).
        reason: String,
    },
    /// The handlers kept failing through the retries of this delivery, or the event was
    /// delivered more often than allowed.
    Failed {
        /// The last handler error.
        error: HandlerError,
        /// What happened, for a dead letter and the logs.
        reason: String,
        /// Attempts in this delivery.
        attempts: u32,
        /// Whether the transport delivers the event again (leave it pending); `false`: give up,
        /// dead-letter it.
        redeliver: bool,
    },
    /// Nothing was decided (the done record could not be checked, or a shutdown came while a
    /// retry waited): leave the event to a later delivery, without counting it as an attempt.
    Deferred {
        /// Why.
        reason: String,
    },
}

impl Verdict {
    /// Whether the event is finished with for this group: recorded as handled, skipped, or
    /// given up (poison, or failed for good). `false`: the transport delivers it again.
    pub fn is_final(&self) -> bool {
        match self {
            Verdict::Handled { .. }
            | Verdict::Duplicate
            | Verdict::Unhandled
            | Verdict::Poison { .. } => true,
            Verdict::Failed { redeliver, .. } => !redeliver,
            Verdict::Deferred { .. } => false,
        }
    }

    /// Whether the event goes to the dead letters: poison, or failed for good.
    pub fn is_dead_letter(&self) -> bool {
        matches!(
            self,
            Verdict::Poison { .. }
                | Verdict::Failed {
                    redeliver: false,
                    ..
                }
        )
    }

    /// The reason of a dead letter or deferral, if any.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Verdict::Poison { reason }
            | Verdict::Failed { reason, .. }
            | Verdict::Deferred { reason } => Some(reason),
            _ => None,
        }
    }
}
