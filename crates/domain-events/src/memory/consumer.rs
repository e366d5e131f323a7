//! [`MemoryConsumer`]: the [`Pipeline`] on the events of a [`MemoryBus`](super::MemoryBus).

use std::fmt;

use crate::envelope::RawEnvelope;
use crate::handlers::Handlers;
use crate::idempotency::IdempotencyGuard;
use crate::memory::{Delivered, Subscription};
use crate::pipeline::{
    ConsumerHandle, ConsumerPanicked, ConsumerStats, Incoming, Pipeline, RetryPolicy, Settle,
    Shutdown, Verdict,
};

/// Configures a [`MemoryConsumer`]; made by [`MemoryConsumer::builder`] or
/// [`MemoryBus::consumer`](super::MemoryBus::consumer). It subscribes when made, so events
/// published from then on reach the consumer.
pub struct MemoryConsumerBuilder {
    group: String,
    subscription: Subscription,
    handlers: Handlers,
    guard: IdempotencyGuard,
    retry: RetryPolicy,
}

impl MemoryConsumerBuilder {
    /// Sets the retry policy of failed handlers; default [`RetryPolicy::default`].
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Uses `guard` for the done records instead of the bus's guard of the group, e.g. to share
    /// them with consumers on other buses.
    pub fn guard(mut self, guard: IdempotencyGuard) -> Self {
        self.guard = guard;
        self
    }

    /// The consumer.
    pub fn build(self) -> MemoryConsumer {
        MemoryConsumer {
            pipeline: Pipeline::builder(self.group, self.handlers)
                .retry(self.retry)
                .build(),
            subscription: self.subscription,
            guard: self.guard,
        }
    }
}

impl fmt::Debug for MemoryConsumerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryConsumerBuilder")
            .field("group", &self.group)
            .field("filter", self.subscription.filter())
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// A consumer group member on a [`MemoryBus`](super::MemoryBus).
///
/// Each event of its subscription goes through the [`Pipeline`], in order: a key the group
/// handled already (its [`IdempotencyGuard`]) is skipped; the handlers run; a failure is retried
/// per the [`RetryPolicy`], then given up (the bus delivers an event once: logged, counted in
/// [`ConsumerStats::failed`], and its key is not recorded, so a later duplicate is tried again); a
/// poison event is logged and counted, never retried. The bus has no dead letters.
///
/// [`run`](Self::run) processes events until the bus closes or [`Shutdown`] is triggered;
/// [`spawn`](Self::spawn) runs it on a task.
pub struct MemoryConsumer {
    pipeline: Pipeline,
    subscription: Subscription,
    guard: IdempotencyGuard,
}

/// How the in-memory bus carries out a verdict: record a handled key in the group's guard.
struct Guarded<'a>(&'a IdempotencyGuard, &'a str);

impl Settle for Guarded<'_> {
    async fn is_done(&self, raw: &RawEnvelope) -> Option<bool> {
        Some(self.0.seen(&raw.idempotency_key))
    }

    async fn settle(self, verdict: &Verdict) -> bool {
        if let Verdict::Handled { .. } = verdict {
            self.0.record(self.1);
        }
        true
    }
}

impl MemoryConsumer {
    /// A consumer of group `group` on `bus` running `handlers`: it subscribes now to the
    /// categories the handlers need, and uses the group's [`guard`](super::MemoryBus::guard)
    /// to skip keys it already handled.
    pub fn builder(
        bus: &super::MemoryBus,
        group: &str,
        handlers: Handlers,
    ) -> MemoryConsumerBuilder {
        MemoryConsumerBuilder {
            group: group.to_owned(),
            subscription: bus.subscribe(super::Filter::Categories(handlers.categories())),
            guard: bus.guard(group),
            handlers,
            retry: RetryPolicy::default(),
        }
    }

    /// The consumer group.
    pub fn group(&self) -> &str {
        self.pipeline.group()
    }

    /// The counters so far.
    pub fn stats(&self) -> ConsumerStats {
        self.pipeline.stats()
    }

    /// A handle that stops [`run`](Self::run) when triggered.
    pub fn shutdown_handle(&self) -> Shutdown {
        self.pipeline.shutdown_handle()
    }

    /// Processes events until the bus is closed (and the buffer drained) or the [`Shutdown`] is
    /// triggered, then returns the final counters. An event being handled when the shutdown comes
    /// is finished first.
    pub async fn run(mut self) -> ConsumerStats {
        let stop = self.pipeline.shutdown_handle();
        let group = self.pipeline.group().to_owned();
        tracing::debug!(group, filter = ?self.subscription.filter(), "consumer started");
        loop {
            let delivered = tokio::select! {
                biased;
                () = stop.triggered() => break,
                delivered = self.subscription.recv() => delivered,
            };
            let Some(delivered) = delivered else {
                tracing::debug!(group, "subscription closed");
                break;
            };
            self.process(&delivered).await;
        }
        let stats = self.pipeline.stats();
        tracing::debug!(group, ?stats, "consumer stopped");
        stats
    }

    /// Runs the consumer on a new Tokio task (call it inside a runtime).
    pub fn spawn(self) -> MemoryConsumerHandle {
        let pipeline = self.pipeline.clone();
        ConsumerHandle::spawn(async move { Ok(self.run().await) }, &pipeline)
    }

    async fn process(&self, delivered: &Delivered) {
        let (incoming, key) = match delivered.envelope() {
            Ok(raw) => (Incoming::decoded(raw), raw.idempotency_key.as_str()),
            Err(error) => (Incoming::unreadable(error.to_string()), ""),
        };
        self.pipeline
            .process(incoming, Guarded(&self.guard, key))
            .await;
    }
}

/// A [`MemoryConsumer`] running on its task; its `join` and `shutdown` end with the final
/// counters, or [`ConsumerPanicked`].
pub type MemoryConsumerHandle = ConsumerHandle<ConsumerPanicked>;

impl fmt::Debug for MemoryConsumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryConsumer")
            .field("pipeline", &self.pipeline)
            .field("filter", self.subscription.filter())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[path = "consumer_tests.rs"]
mod tests;
