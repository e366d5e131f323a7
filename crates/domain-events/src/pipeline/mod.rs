//! The one delivery pipeline every consumer runs, whatever its transport.
//!
//! For each event a transport delivers: decode the envelope → check the group's done record of
//! its idempotency key → dispatch to the typed [`Handlers`] → retry a failed handler with backoff
//! → a [`Verdict`]. The transport's consumer is an adapter: it reads entries, hands each to
//! [`Pipeline::process`] with a [`Settle`] that knows its done records and carries out a verdict
//! (acknowledge and record done, dead-letter, fail a job, drop), and nothing of these rules.
//!
//! ```
//! use domain_events::{Handlers, Incoming, Pipeline, RawEnvelope, Settle, Verdict};
//!
//! /// A transport whose entries are never delivered again and that keeps no done records.
//! struct Forget;
//!
//! impl Settle for Forget {
//!     async fn is_done(&self, _: &RawEnvelope) -> Option<bool> {
//!         Some(false)
//!     }
//!     async fn settle(self, verdict: &Verdict) -> bool {
//!         println!("{verdict:?}");
//!         true
//!     }
//! }
//!
//! # async fn demo() {
//! let pipeline = Pipeline::builder("audit", Handlers::new()).build();
//! let verdict = pipeline.process(Incoming::bytes(b"not json"), Forget).await;
//! assert!(matches!(verdict, Verdict::Poison { .. }));
//! assert_eq!(pipeline.stats().poison, 1);
//! # }
//! # tokio::runtime::Runtime::new().unwrap().block_on(demo());
//! ```

mod handle;
mod incoming;
mod retry;
mod shutdown;
mod stats;
mod verdict;

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use tracing::Instrument;

pub use handle::{ConsumerHandle, ConsumerPanicked};
pub use incoming::Incoming;
pub use retry::RetryPolicy;
pub use shutdown::Shutdown;
pub use stats::ConsumerStats;
pub use verdict::Verdict;

use crate::envelope::RawEnvelope;
use crate::handlers::{DispatchError, Dispatched, HandlerError, Handlers};
use crate::metrics::{Outcome, PipelineMetrics};
use crate::trace;
use incoming::Event;
use stats::Counters;

/// What a transport does with an event: tell whether its group handled the key already, and
/// carry out the pipeline's [`Verdict`]. One value per delivered event; it holds whatever the
/// transport needs to settle it (an entry id, a job, a slot).
pub trait Settle: Send {
    /// Whether the group's done record of `raw`'s idempotency key exists; `None` when the
    /// transport cannot tell now (the event is then left for a later delivery:
    /// [`Verdict::Deferred`]). Not asked when the [`Incoming`] already says.
    fn is_done(&self, raw: &RawEnvelope) -> impl Future<Output = Option<bool>> + Send;

    /// Carries out `verdict`: for [`Verdict::Handled`], record the key as done and acknowledge;
    /// for [`Verdict::Duplicate`] and [`Verdict::Unhandled`], acknowledge; for
    /// [`Verdict::Poison`] and a final [`Verdict::Failed`], dead-letter (or drop, where the
    /// transport has no dead letters); otherwise leave the event to be delivered again. Returns
    /// whether the outcome took effect; `false` leaves the event to the transport (a handled event
    /// is then counted when a later delivery settles it).
    fn settle(self, verdict: &Verdict) -> impl Future<Output = bool> + Send;
}

/// The delivery rules of one consumer group, shared by every task of its consumer: cheap to
/// clone. Made by [`Pipeline::builder`]; the consumers of every transport build theirs.
#[derive(Clone)]
pub struct Pipeline {
    inner: Arc<Inner>,
}

struct Inner {
    group: String,
    handlers: Handlers,
    retry: RetryPolicy,
    counters: Counters,
    metrics: PipelineMetrics,
    shutdown: Shutdown,
}

/// Configures a [`Pipeline`].
#[derive(Debug)]
pub struct PipelineBuilder {
    group: String,
    handlers: Handlers,
    retry: RetryPolicy,
    shutdown: Shutdown,
}

impl PipelineBuilder {
    /// Sets the retry policy of failed handlers; default [`RetryPolicy::default`].
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Uses `shutdown` as the signal that stops the consumer (a retry waiting for its backoff
    /// ends at once when it is triggered); default a new one.
    pub fn shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// The pipeline.
    pub fn build(self) -> Pipeline {
        Pipeline {
            inner: Arc::new(Inner {
                metrics: PipelineMetrics::new(&self.group),
                group: self.group,
                handlers: self.handlers,
                retry: self.retry,
                counters: Counters::default(),
                shutdown: self.shutdown,
            }),
        }
    }
}

impl Pipeline {
    /// A pipeline for consumer group `group` running `handlers`.
    pub fn builder(group: impl Into<String>, handlers: Handlers) -> PipelineBuilder {
        PipelineBuilder {
            group: group.into(),
            handlers,
            retry: RetryPolicy::default(),
            shutdown: Shutdown::new(),
        }
    }

    /// The consumer group.
    pub fn group(&self) -> &str {
        &self.inner.group
    }

    /// The handlers.
    pub fn handlers(&self) -> &Handlers {
        &self.inner.handlers
    }

    /// The retry policy.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.inner.retry
    }

    /// The counters so far.
    pub fn stats(&self) -> ConsumerStats {
        self.inner.counters.snapshot()
    }

    /// The signal that stops the consumer.
    pub fn shutdown_handle(&self) -> Shutdown {
        self.inner.shutdown.clone()
    }

    /// Counts and logs an event the transport refused before it reached the pipeline (an entry
    /// over the size limit, dead-lettered inside Redis): received, and poison.
    pub fn refused(&self, reason: &str) {
        let c = &self.inner.counters;
        Counters::bump(&c.received);
        Counters::bump(&c.poison);
        let handlers = &self.inner.handlers;
        self.inner
            .metrics
            .outcome(handlers, "", Outcome::Poison, true);
        tracing::error!(group = %self.inner.group, reason, "entry refused by the transport");
    }

    /// Runs one delivered event through the pipeline and has `settle` carry out the verdict,
    /// which it returns. Counts the event in [`stats`](Self::stats) and logs its outcome (with the
    /// fields of the caller's span, e.g. a stream and entry id).
    ///
    /// All of it runs in a [`HANDLE_SPAN`](crate::trace::HANDLE_SPAN) span carrying the event's
    /// type, id, idempotency key and correlation id, which with the `opentelemetry` feature
    /// continues the trace of the event's `traceparent` ([`trace`](crate::trace)).
    pub async fn process<S: Settle>(&self, incoming: Incoming<'_>, settle: S) -> Verdict {
        let span = trace::handle_span(&self.inner.group, &incoming);
        async {
            let c = &self.inner.counters;
            Counters::bump(&c.received);
            let verdict = self.decide(&incoming, &settle).await;
            let settled = settle.settle(&verdict).await;
            self.count(&incoming, &verdict, settled);
            verdict
        }
        .instrument(span)
        .await
    }

    async fn decide<S: Settle>(&self, incoming: &Incoming<'_>, settle: &S) -> Verdict {
        let raw = match incoming.event() {
            Event::Decoded(raw) => raw,
            Event::Unreadable(reason) => {
                return Verdict::Poison {
                    reason: format!("poison event: {reason}"),
                };
            }
        };
        let done = match incoming.done() {
            Some(done) => Some(done),
            None => settle.is_done(raw).await,
        };
        match done {
            Some(true) => return Verdict::Duplicate,
            Some(false) => {}
            None => {
                return Verdict::Deferred {
                    reason: "the done record could not be checked".to_owned(),
                };
            }
        }
        // Checked after the done record: an event whose handlers succeeded but whose outcome
        // was not recorded is acknowledged above, however often it was delivered.
        let (delivery, max) = incoming.deliveries();
        if let Some(max) = max.filter(|max| delivery > *max) {
            let reason = format!("delivered {delivery} times, more than the maximum of {max}");
            return Verdict::Failed {
                error: HandlerError::msg(reason.clone()),
                reason,
                attempts: 0,
                redeliver: false,
            };
        }
        self.dispatch(raw, delivery, max).await
    }

    /// Dispatches `raw`, retrying failed handlers per the retry policy.
    async fn dispatch(&self, raw: &RawEnvelope, delivery: u64, max: Option<u64>) -> Verdict {
        let inner = &*self.inner;
        let mut retry = 0u32;
        let event_type = raw.event_type.as_str();
        loop {
            let started = inner.metrics.start();
            let error = match inner.handlers.dispatch(raw).await {
                Ok(Dispatched::Handled(handlers)) => {
                    inner
                        .metrics
                        .handlers_ran(&inner.handlers, event_type, started);
                    return Verdict::Handled { handlers };
                }
                Ok(Dispatched::NoHandler) => return Verdict::Unhandled,
                Err(error @ DispatchError::Poison(_)) => {
                    return Verdict::Poison {
                        reason: error.to_string(),
                    };
                }
                Err(DispatchError::Failed(error)) => {
                    inner
                        .metrics
                        .handlers_ran(&inner.handlers, event_type, started);
                    error
                }
            };
            let exhausted = retry >= inner.retry.max_retries;
            if !exhausted && !inner.shutdown.is_triggered() {
                retry += 1;
                Counters::bump(&inner.counters.retries);
                inner.metrics.retry(&inner.handlers, event_type);
                let delay = inner.retry.backoff(retry);
                tracing::warn!(group = %inner.group, event_type = %raw.event_type, event_id = %raw.event_id,
                    retry, ?delay, error = %error, "handler failed, retrying");
                if !inner.shutdown.sleep(delay).await {
                    continue;
                }
            }
            let attempts = if exhausted { retry + 1 } else { retry };
            // The transport delivers the event again unless this was its last delivery.
            let redelivered = max.is_some_and(|max| delivery < max);
            if !exhausted && max.is_some() {
                return Verdict::Deferred {
                    reason: format!(
                        "shutting down: retry abandoned after {} ({error})",
                        attempts_text(attempts)
                    ),
                };
            }
            let reason = match max {
                Some(max) => format!(
                    "handler failed {delivery} times (delivery {delivery} of at most {max}, \
                     {attempts} attempts in the last): {error}"
                ),
                None if exhausted => {
                    format!("handler failed, {}: {error}", attempts_text(attempts))
                }
                None => format!(
                    "shutting down: retry abandoned after {}, the event is not delivered \
                     again: {error}",
                    attempts_text(attempts)
                ),
            };
            return Verdict::Failed {
                error,
                reason,
                attempts,
                redeliver: redelivered,
            };
        }
    }

    /// Counts (in the stats and the metrics) and logs what became of an event.
    fn count(&self, incoming: &Incoming<'_>, verdict: &Verdict, settled: bool) {
        let inner = &*self.inner;
        let (event_type, _, _) = incoming.ids();
        let outcome = match verdict {
            Verdict::Handled { .. } if settled => Outcome::Handled,
            Verdict::Handled { .. } | Verdict::Deferred { .. } => Outcome::Deferred,
            Verdict::Duplicate => Outcome::Duplicate,
            Verdict::Unhandled => Outcome::Unhandled,
            Verdict::Poison { .. } => Outcome::Poison,
            Verdict::Failed {
                redeliver: true, ..
            } => Outcome::Redelivered,
            Verdict::Failed { .. } => Outcome::Failed,
        };
        let dead_lettered = settled && verdict.is_dead_letter();
        inner
            .metrics
            .outcome(&inner.handlers, event_type, outcome, dead_lettered);
        self.log(incoming, verdict, settled);
    }

    /// Counts in the stats and logs what became of an event.
    fn log(&self, incoming: &Incoming<'_>, verdict: &Verdict, settled: bool) {
        let inner = &*self.inner;
        let c = &inner.counters;
        let (event_type, event_id, key) = incoming.ids();
        let event_id = event_id.map(tracing::field::display);
        let group = inner.group.as_str();
        match verdict {
            Verdict::Handled { handlers } => {
                if settled {
                    Counters::bump(&c.handled);
                    tracing::debug!(group, event_type, event_id, handlers, "event handled");
                } else {
                    tracing::warn!(
                        group,
                        event_type,
                        event_id,
                        idempotency_key = key,
                        "handlers succeeded but the outcome could not be recorded; the event is delivered again"
                    );
                }
            }
            Verdict::Duplicate => {
                Counters::bump(&c.duplicates);
                tracing::debug!(
                    group,
                    event_type,
                    event_id,
                    idempotency_key = key,
                    "event already handled by the group, skipped"
                );
            }
            Verdict::Unhandled => {
                Counters::bump(&c.unhandled);
                tracing::trace!(group, event_type, "no handler for the event");
            }
            Verdict::Poison { reason } => {
                Counters::bump(&c.poison);
                tracing::error!(
                    group,
                    event_type,
                    event_id,
                    idempotency_key = key,
                    reason,
                    "poison event, not retried"
                );
            }
            Verdict::Failed {
                reason,
                redeliver: true,
                ..
            } => {
                Counters::bump(&c.retries);
                tracing::warn!(
                    group,
                    event_type,
                    event_id,
                    idempotency_key = key,
                    reason,
                    "handler failed; the transport delivers the event again"
                );
            }
            Verdict::Failed { reason, .. } => {
                Counters::bump(&c.failed);
                tracing::error!(
                    group,
                    event_type,
                    event_id,
                    idempotency_key = key,
                    reason,
                    "event failed, giving up"
                );
            }
            Verdict::Deferred { reason } => {
                tracing::info!(
                    group,
                    event_type,
                    event_id,
                    idempotency_key = key,
                    reason,
                    "event left for a later delivery"
                );
            }
        }
    }
}

/// "1 attempt", "3 attempts".
fn attempts_text(attempts: u32) -> String {
    match attempts {
        1 => "1 attempt".to_owned(),
        n => format!("{n} attempts"),
    }
}

impl fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("group", &self.inner.group)
            .field("handlers", &self.inner.handlers)
            .field("retry", &self.inner.retry)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
