//! The [`MemoryConsumer`]: runs [`Handlers`] on the events of a [`MemoryBus`](crate::MemoryBus),
//! with consumer-side idempotency, retries and a graceful shutdown.
//!
//! [`RetryPolicy`] and [`ConsumerStats`] are transport-agnostic, for other consumers to reuse.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::handlers::{DispatchError, Dispatched, Handlers};
use crate::idempotency::IdempotencyGuard;
use crate::memory::{Delivered, Subscription};

/// How often and how patiently a failed handler is retried: exponential backoff from
/// `initial_backoff`, doubling per retry, capped at `max_backoff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt; 0 means no retry. Default 3.
    pub max_retries: u32,
    /// The wait before the first retry. Default 100 ms.
    pub initial_backoff: Duration,
    /// The longest wait between two attempts. Default 10 s.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retry.
    pub fn never() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }

    /// The wait before retry number `retry` (1 for the first retry): `initial_backoff ×
    /// 2^(retry−1)`, at most `max_backoff`.
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 1u32
            .checked_shl(retry.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// A snapshot of a consumer's counters. Every count is per event, except `retries`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsumerStats {
    /// Events received from the transport.
    pub received: u64,
    /// Events whose handlers all succeeded (their key is now recorded as done).
    pub handled: u64,
    /// Events skipped because the group already handled their idempotency key.
    pub duplicates: u64,
    /// Events no handler is registered for.
    pub unhandled: u64,
    /// Retries of failed handlers (one event can count several).
    pub retries: u64,
    /// Events given up after their handlers kept failing, or abandoned at shutdown while waiting
    /// for a retry.
    pub failed: u64,
    /// Poison events: unknown type or version, or a payload that does not match its schema.
    pub poison: u64,
}

/// The live counters behind [`ConsumerStats`], shared by every transport's consumer: bumped as
/// events go through, read with [`ConsumerCounters::snapshot`].
#[derive(Debug, Default)]
pub struct ConsumerCounters {
    /// See [`ConsumerStats::received`].
    pub received: AtomicU64,
    /// See [`ConsumerStats::handled`].
    pub handled: AtomicU64,
    /// See [`ConsumerStats::duplicates`].
    pub duplicates: AtomicU64,
    /// See [`ConsumerStats::unhandled`].
    pub unhandled: AtomicU64,
    /// See [`ConsumerStats::retries`].
    pub retries: AtomicU64,
    /// See [`ConsumerStats::failed`].
    pub failed: AtomicU64,
    /// See [`ConsumerStats::poison`].
    pub poison: AtomicU64,
}

impl ConsumerCounters {
    /// Adds one to `counter`.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts now.
    pub fn snapshot(&self) -> ConsumerStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ConsumerStats {
            received: get(&self.received),
            handled: get(&self.handled),
            duplicates: get(&self.duplicates),
            unhandled: get(&self.unhandled),
            retries: get(&self.retries),
            failed: get(&self.failed),
            poison: get(&self.poison),
        }
    }
}

/// Tells a running consumer to stop. Cheap to clone; triggering is idempotent.
///
/// The consumer finishes the handler run in progress, starts no new event and no new retry, and
/// returns. Events still buffered in its subscription are not handled.
#[derive(Clone)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A shutdown signal that is not triggered yet; for consumers of other transports.
    pub fn new() -> Self {
        Self {
            tx: Arc::new(watch::Sender::new(false)),
        }
    }

    /// Asks the consumer to stop.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Whether [`trigger`](Self::trigger) was called.
    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Completes once [`trigger`](Self::trigger) was called (at once if it already was).
    pub async fn triggered(&self) {
        let mut stop = self.subscribe();
        stopped(&mut stop).await;
    }

    fn subscribe(&self) -> watch::Receiver<bool> {
        self.tx.subscribe()
    }
}

impl fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shutdown")
            .field("triggered", &self.is_triggered())
            .finish()
    }
}

/// Waits until `stop` says true. Never completes if every sender is gone without triggering (the
/// consumer itself holds one, so that does not happen while it runs).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|triggered| *triggered).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// A consumer group member on a [`MemoryBus`](crate::MemoryBus); made by
/// [`MemoryBus::consumer`](crate::MemoryBus::consumer).
///
/// For each event of its subscription, in order:
/// 1. an event whose idempotency key the group already handled (its [`IdempotencyGuard`]) is
///    skipped, so a duplicate never runs a handler twice;
/// 2. [`Handlers::dispatch`] runs the handlers; on success the key is recorded as done;
/// 3. a handler failure is retried per the [`RetryPolicy`] with exponential backoff, then given up
///    (logged with `tracing::error!`, counted in [`ConsumerStats::failed`]; the key is not
///    recorded, so a later duplicate is tried again);
/// 4. a poison event is logged and counted, never retried.
///
/// [`run`](Self::run) processes events until the bus closes or [`Shutdown`] is triggered;
/// [`spawn`](Self::spawn) runs it on a task.
pub struct MemoryConsumer {
    group: String,
    subscription: Subscription,
    handlers: Handlers,
    guard: IdempotencyGuard,
    retry: RetryPolicy,
    counters: Arc<ConsumerCounters>,
    shutdown: Shutdown,
}

impl MemoryConsumer {
    pub(crate) fn new(
        group: &str,
        subscription: Subscription,
        handlers: Handlers,
        guard: IdempotencyGuard,
    ) -> Self {
        Self {
            group: group.to_owned(),
            subscription,
            handlers,
            guard,
            retry: RetryPolicy::default(),
            counters: Arc::default(),
            shutdown: Shutdown::new(),
        }
    }

    /// Sets the retry policy; default [`RetryPolicy::default`].
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Uses `guard` for the done records instead of the bus's guard of the group, e.g. to share
    /// them with consumers on other buses.
    pub fn with_guard(mut self, guard: IdempotencyGuard) -> Self {
        self.guard = guard;
        self
    }

    /// The consumer group.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The counters so far.
    pub fn stats(&self) -> ConsumerStats {
        self.counters.snapshot()
    }

    /// A handle that stops [`run`](Self::run) when triggered.
    pub fn shutdown_handle(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// Processes events until the bus is closed (and the buffer drained) or the [`Shutdown`] is
    /// triggered, then returns the final counters. An event being handled when the shutdown comes
    /// is finished first.
    pub async fn run(mut self) -> ConsumerStats {
        let mut stop = self.shutdown.subscribe();
        tracing::debug!(group = %self.group, filter = ?self.subscription.filter(), "consumer started");
        loop {
            let delivered = tokio::select! {
                biased;
                () = stopped(&mut stop) => break,
                delivered = self.subscription.recv() => delivered,
            };
            let Some(delivered) = delivered else {
                tracing::debug!(group = %self.group, "subscription closed");
                break;
            };
            self.process(&delivered, &mut stop).await;
        }
        let stats = self.counters.snapshot();
        tracing::debug!(group = %self.group, ?stats, "consumer stopped");
        stats
    }

    /// Runs the consumer on a new Tokio task (call it inside a runtime).
    pub fn spawn(self) -> ConsumerHandle {
        let shutdown = self.shutdown.clone();
        let counters = self.counters.clone();
        ConsumerHandle::spawn(self.run(), shutdown, counters)
    }

    async fn process(&self, delivered: &Delivered, stop: &mut watch::Receiver<bool>) {
        let c = &self.counters;
        ConsumerCounters::bump(&c.received);
        let raw = match delivered.envelope() {
            Ok(raw) => raw,
            Err(error) => {
                ConsumerCounters::bump(&c.poison);
                tracing::error!(group = %self.group, event_type = delivered.event_type, event_id = %delivered.event_id,
                    error = %error, "poison event dropped: not an envelope");
                return;
            }
        };
        let key = raw.idempotency_key.as_str();
        if self.guard.seen(key) {
            ConsumerCounters::bump(&c.duplicates);
            tracing::debug!(group = %self.group, event_type = %raw.event_type, event_id = %raw.event_id,
                idempotency_key = %key, "event already handled by the group, skipped");
            return;
        }
        let mut retry = 0;
        loop {
            match self.handlers.dispatch(raw).await {
                Ok(Dispatched::Handled(handlers)) => {
                    self.guard.record(key);
                    ConsumerCounters::bump(&c.handled);
                    tracing::debug!(group = %self.group, event_type = %raw.event_type, event_id = %raw.event_id,
                        handlers, "event handled");
                    return;
                }
                Ok(Dispatched::NoHandler) => {
                    ConsumerCounters::bump(&c.unhandled);
                    tracing::trace!(group = %self.group, event_type = %raw.event_type, "no handler for the event");
                    return;
                }
                Err(DispatchError::Poison(error)) => {
                    ConsumerCounters::bump(&c.poison);
                    tracing::error!(group = %self.group, event_type = %raw.event_type, event_id = %raw.event_id,
                        idempotency_key = %key, error = %error, "poison event dropped");
                    return;
                }
                Err(DispatchError::Failed(error)) => {
                    if retry >= self.retry.max_retries {
                        ConsumerCounters::bump(&c.failed);
                        tracing::error!(group = %self.group, event_type = %raw.event_type, event_id = %raw.event_id,
                            idempotency_key = %key, attempts = retry + 1, error = %error, "event failed, giving up");
                        return;
                    }
                    retry += 1;
                    ConsumerCounters::bump(&c.retries);
                    let delay = self.retry.backoff(retry);
                    tracing::warn!(group = %self.group, event_type = %raw.event_type, event_id = %raw.event_id,
                        idempotency_key = %key, retry, ?delay, error = %error, "handler failed, retrying");
                    tokio::select! {
                        biased;
                        () = stopped(stop) => {
                            ConsumerCounters::bump(&c.failed);
                            tracing::warn!(group = %self.group, event_type = %raw.event_type, event_id = %raw.event_id,
                                idempotency_key = %key, "shutting down, retry abandoned");
                            return;
                        }
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }
}

impl fmt::Debug for MemoryConsumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryConsumer")
            .field("group", &self.group)
            .field("filter", self.subscription.filter())
            .field("handlers", &self.handlers)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// What a consumer's task ends with: its final counters, or for consumers whose setup can fail
/// (Redis, BullMQ) a `Result` of them.
pub trait ConsumerOutcome: Send + 'static {
    /// The outcome of a task that ended abnormally (it panicked or was cancelled): the counters
    /// so far.
    fn interrupted(stats: ConsumerStats) -> Self;
}

impl ConsumerOutcome for ConsumerStats {
    fn interrupted(stats: ConsumerStats) -> Self {
        stats
    }
}

impl<E: Send + 'static> ConsumerOutcome for Result<ConsumerStats, E> {
    fn interrupted(stats: ConsumerStats) -> Self {
        Ok(stats)
    }
}

/// A consumer running on its own Tokio task; made by [`MemoryConsumer::spawn`] (and the `spawn` of
/// the Redis and BullMQ consumers). `T` is what the consumer ends with ([`ConsumerOutcome`]).
///
/// Dropping the handle leaves the consumer running.
pub struct ConsumerHandle<T = ConsumerStats> {
    shutdown: Shutdown,
    counters: Arc<ConsumerCounters>,
    task: JoinHandle<T>,
}

impl<T: ConsumerOutcome> ConsumerHandle<T> {
    /// Runs `consumer` on a new task; `shutdown` stops it and `counters` are the ones it counts
    /// in. For consumer runtimes of other transports.
    pub fn spawn(
        consumer: impl Future<Output = T> + Send + 'static,
        shutdown: Shutdown,
        counters: Arc<ConsumerCounters>,
    ) -> Self {
        Self {
            shutdown,
            counters,
            task: tokio::spawn(consumer),
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> ConsumerStats {
        self.counters.snapshot()
    }

    /// A handle that stops the consumer when triggered.
    pub fn shutdown_handle(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// Whether the consumer has stopped.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops the consumer gracefully (it finishes and settles what is in flight) and returns what
    /// it ended with.
    pub async fn shutdown(self) -> T {
        self.shutdown.trigger();
        self.join().await
    }

    /// Waits until the consumer stops (by itself, or by a [`Shutdown`]) and returns what it
    /// ended with.
    pub async fn join(self) -> T {
        match self.task.await {
            Ok(outcome) => outcome,
            Err(error) => {
                tracing::error!(error = %error, "consumer task ended abnormally");
                T::interrupted(self.counters.snapshot())
            }
        }
    }
}

impl<T> fmt::Debug for ConsumerHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsumerHandle")
            .field("stats", &self.counters.snapshot())
            .field("finished", &self.task.is_finished())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use tokio::sync::{Notify, mpsc};
    use uuid::Uuid;

    use super::*;
    use crate::emitter::Emitter;
    use crate::envelope::Envelope;
    use crate::handlers::HandlerError;
    use crate::memory::MemoryBus;
    use crate::test_support::{Signup, TestEvent, VariationCompleted, within};
    use crate::transport::{OutgoingEvent, Transport};

    /// Handlers that report each handled signup's user id.
    fn reporting() -> (Handlers, mpsc::UnboundedReceiver<String>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let handlers = Handlers::new().on(move |event: Envelope<Signup>| {
            let tx = tx.clone();
            async move {
                tx.send(event.payload.user_id)
                    .map_err(HandlerError::from_error)
            }
        });
        (handlers, rx)
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = RetryPolicy {
            max_retries: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
        };
        let waits: Vec<_> = (1..=6)
            .map(|retry| policy.backoff(retry).as_millis())
            .collect();
        assert_eq!(waits, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(policy.backoff(u32::MAX), Duration::from_secs(1));
        assert_eq!(RetryPolicy::never().max_retries, 0);
    }

    #[tokio::test]
    async fn a_consumer_handles_emitted_events_and_stops_when_the_bus_closes() {
        let bus = MemoryBus::new();
        let (handlers, mut handled) = reporting();
        let consumer = bus.consumer("crm", handlers);
        assert_eq!(consumer.group(), "crm");
        let handle = consumer.spawn();
        let emitter = Emitter::new("tests", bus.clone());
        emitter.emit(Signup::new("u1")).await.expect("emitted");
        emitter
            .emit(VariationCompleted::new("v1"))
            .await
            .expect("emitted, not subscribed");
        emitter.emit(Signup::new("u2")).await.expect("emitted");
        assert_eq!(within(handled.recv()).await.as_deref(), Some("u1"));
        assert_eq!(within(handled.recv()).await.as_deref(), Some("u2"));

        bus.close();
        let stats = within(handle.join()).await;
        assert_eq!(
            stats,
            ConsumerStats {
                received: 2,
                handled: 2,
                ..ConsumerStats::default()
            }
        );
    }

    #[tokio::test]
    async fn a_duplicate_key_never_runs_a_handler_twice() {
        // No producer-side claim survives, as after its TTL expired.
        let bus = MemoryBus::builder().idempotency_ttl(Duration::ZERO).build();
        let (handlers, mut handled) = reporting();
        let handle = bus.consumer("crm", handlers).spawn();
        let emitter = Emitter::new("tests", bus.clone());
        let first = emitter.emit(Signup::new("u1")).await.expect("emitted");
        let second = emitter.emit(Signup::new("u1")).await.expect("emitted");
        assert!(
            first.published() && second.published(),
            "both reached the bus"
        );
        emitter.emit(Signup::new("u2")).await.expect("emitted");

        assert_eq!(within(handled.recv()).await.as_deref(), Some("u1"));
        assert_eq!(within(handled.recv()).await.as_deref(), Some("u2"));
        let stats = within(handle.shutdown()).await;
        assert_eq!(stats.received, 3);
        assert_eq!(stats.handled, 2);
        assert_eq!(stats.duplicates, 1);
        assert!(bus.guard("crm").seen("funnel_signup:u1"));
    }

    #[tokio::test]
    async fn a_guard_shared_across_buses_skips_keys_handled_on_the_other() {
        let guard = IdempotencyGuard::new("crm");
        let (one, two) = (MemoryBus::new(), MemoryBus::new());
        let (handlers_one, mut handled_one) = reporting();
        let (handlers_two, _handled_two) = reporting();
        let c1 = one
            .consumer("crm", handlers_one)
            .with_guard(guard.clone())
            .spawn();
        let c2 = two
            .consumer("crm", handlers_two)
            .with_guard(guard.clone())
            .spawn();

        Emitter::new("a", one.clone())
            .emit(Signup::new("u1"))
            .await
            .expect("emitted");
        assert_eq!(within(handled_one.recv()).await.as_deref(), Some("u1"));
        Emitter::new("b", two.clone())
            .emit(Signup::new("u1"))
            .await
            .expect("emitted on the other bus");
        two.close();
        let stats_two = within(c2.join()).await;
        assert_eq!(
            (stats_two.received, stats_two.handled, stats_two.duplicates),
            (1, 0, 1)
        );
        assert_eq!(within(c1.shutdown()).await.handled, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_handler_is_retried_with_backoff_until_it_succeeds() {
        let bus = MemoryBus::new();
        let attempts = Arc::new(AtomicUsize::new(0));
        let (done_tx, mut done) = mpsc::unbounded_channel();
        let handlers = Handlers::new().on({
            let attempts = attempts.clone();
            move |_: Envelope<Signup>| {
                let n = attempts.fetch_add(1, Ordering::SeqCst) + 1;
                let done_tx = done_tx.clone();
                async move {
                    if n < 3 {
                        return Err(HandlerError::msg(format!("attempt {n} failed")));
                    }
                    done_tx
                        .send(tokio::time::Instant::now())
                        .map_err(HandlerError::from_error)
                }
            }
        });
        let policy = RetryPolicy {
            max_retries: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
        };
        let handle = bus.consumer("crm", handlers).with_retry(policy).spawn();
        let started = tokio::time::Instant::now();
        Emitter::new("tests", bus.clone())
            .emit(Signup::new("u1"))
            .await
            .expect("emitted");

        let succeeded_at = within(done.recv()).await.expect("succeeded");
        assert_eq!(
            succeeded_at - started,
            Duration::from_millis(300),
            "100 ms then 200 ms of backoff"
        );
        let stats = within(handle.shutdown()).await;
        assert_eq!((stats.handled, stats.retries, stats.failed), (1, 2, 0));
        assert_eq!(attempts.load(Ordering::SeqCst), 3);
        assert!(
            bus.guard("crm").seen("funnel_signup:u1"),
            "recorded only after success"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_event_whose_handler_keeps_failing_is_given_up_and_not_recorded() {
        let bus = MemoryBus::builder().idempotency_ttl(Duration::ZERO).build();
        let attempts = Arc::new(AtomicUsize::new(0));
        let handlers = Handlers::new().on({
            let attempts = attempts.clone();
            move |_: Envelope<Signup>| {
                attempts.fetch_add(1, Ordering::SeqCst);
                async { Err(HandlerError::msg("always")) }
            }
        });
        let policy = RetryPolicy {
            max_retries: 2,
            ..RetryPolicy::default()
        };
        let consumer = bus.consumer("crm", handlers).with_retry(policy);
        let emitter = Emitter::new("tests", bus.clone());
        emitter.emit(Signup::new("u1")).await.expect("emitted");
        emitter
            .emit(Signup::new("u1"))
            .await
            .expect("emitted again");
        bus.close();
        let stats = within(consumer.run()).await;
        assert_eq!(
            (
                stats.received,
                stats.failed,
                stats.retries,
                stats.duplicates
            ),
            (2, 2, 4, 0)
        );
        assert_eq!(
            attempts.load(Ordering::SeqCst),
            6,
            "3 attempts for each, the key was never recorded"
        );
    }

    #[tokio::test]
    async fn poison_events_are_counted_and_not_retried() {
        let bus = MemoryBus::new();
        let attempts = Arc::new(AtomicUsize::new(0));
        let handlers = Handlers::new()
            .on({
                let attempts = attempts.clone();
                move |_: Envelope<Signup>| {
                    attempts.fetch_add(1, Ordering::SeqCst);
                    async { Ok(()) }
                }
            })
            .knowing::<TestEvent>();
        let consumer = bus.consumer("crm", handlers);
        let id = Uuid::now_v7();
        let json = format!(
            r#"{{"eventId":"{id}","type":"funnel:from_the_future","version":1,"occurredAt":"2026-11-26T17:04:05.123Z","source":"s","correlationId":"c","idempotencyKey":"k","payload":{{}}}}"#
        );
        let event = OutgoingEvent {
            event_type: "funnel:from_the_future",
            category: "funnel",
            event_id: id,
            idempotency_key: "k".into(),
            json: json.into(),
        };
        bus.publish(&[event]).await.expect("published");
        bus.close();
        let stats = within(consumer.run()).await;
        assert_eq!(
            (stats.received, stats.poison, stats.retries, stats.handled),
            (1, 1, 0, 0)
        );
        assert_eq!(attempts.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn shutdown_finishes_the_event_in_flight_and_starts_no_other() {
        let bus = MemoryBus::new();
        let release = Arc::new(Notify::new());
        let (started_tx, mut started) = mpsc::unbounded_channel();
        let finished = Arc::new(AtomicUsize::new(0));
        let handlers = Handlers::new().on({
            let (release, finished) = (release.clone(), finished.clone());
            move |event: Envelope<Signup>| {
                let (release, finished, started_tx) =
                    (release.clone(), finished.clone(), started_tx.clone());
                async move {
                    started_tx
                        .send(event.payload.user_id)
                        .map_err(HandlerError::from_error)?;
                    release.notified().await;
                    finished.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }
            }
        });
        let handle = bus.consumer("crm", handlers).spawn();
        let emitter = Emitter::new("tests", bus.clone());
        emitter.emit(Signup::new("u1")).await.expect("emitted");
        assert_eq!(within(started.recv()).await.as_deref(), Some("u1"));
        emitter
            .emit(Signup::new("u2"))
            .await
            .expect("emitted, buffered");

        let shutdown = tokio::spawn(handle.shutdown());
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!shutdown.is_finished(), "waits for the handler in flight");
        release.notify_one();
        let stats = within(shutdown).await.expect("joined");
        assert_eq!(finished.load(Ordering::SeqCst), 1);
        assert_eq!((stats.received, stats.handled), (1, 1));
        assert!(started.try_recv().is_err(), "u2 was not started");
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_abandons_a_pending_retry() {
        let bus = MemoryBus::new();
        let (failed_tx, mut failed) = mpsc::unbounded_channel();
        let handlers = Handlers::new().on(move |_: Envelope<Signup>| {
            let failed_tx = failed_tx.clone();
            async move {
                let _ = failed_tx.send(());
                Err(HandlerError::msg("down"))
            }
        });
        let policy = RetryPolicy {
            max_retries: 5,
            initial_backoff: Duration::from_secs(3600),
            max_backoff: Duration::from_secs(3600),
        };
        let consumer = bus.consumer("crm", handlers).with_retry(policy);
        let stop = consumer.shutdown_handle();
        let task = tokio::spawn(consumer.run());
        Emitter::new("tests", bus.clone())
            .emit(Signup::new("u1"))
            .await
            .expect("emitted");
        within(failed.recv()).await.expect("first attempt");
        let started = tokio::time::Instant::now();
        stop.trigger();
        assert!(stop.is_triggered());
        let stats = within(task).await.expect("joined");
        assert!(
            started.elapsed() < Duration::from_secs(3600),
            "did not wait for the backoff"
        );
        assert_eq!((stats.failed, stats.retries, stats.handled), (1, 1, 0));
    }
}
