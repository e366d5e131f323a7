//! The in-memory consumer on a real bus: ordering, duplicates, retries, poison, shutdown.

use std::sync::atomic::AtomicUsize;

use tokio::sync::{Notify, mpsc};
use uuid::Uuid;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::*;
use crate::emitter::Emitter;
use crate::envelope::Envelope;
use crate::handlers::HandlerError;
use crate::memory::MemoryBus;
use crate::outgoing::OutgoingEvent;
use crate::test_support::{Signup, TestEvent, VariationCompleted, within};
use crate::transport::Transport;

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

#[tokio::test]
async fn a_consumer_handles_emitted_events_and_stops_when_the_bus_closes() {
    let bus = MemoryBus::new();
    let (handlers, mut handled) = reporting();
    let consumer = bus.consumer("crm", handlers).build();
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
    let stats = within(handle.join()).await.expect("no panic");
    assert_eq!(
        (stats.received, stats.handled, stats.retries, stats.failed),
        (2, 2, 0, 0)
    );
}

#[tokio::test]
async fn a_duplicate_key_never_runs_a_handler_twice() {
    // No producer-side claim survives, as after its TTL expired.
    let bus = MemoryBus::builder().idempotency_ttl(Duration::ZERO).build();
    let (handlers, mut handled) = reporting();
    let handle = bus.consumer("crm", handlers).build().spawn();
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
    let stats = within(handle.shutdown()).await.expect("no panic");
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
        .guard(guard.clone())
        .build()
        .spawn();
    let c2 = two
        .consumer("crm", handlers_two)
        .guard(guard.clone())
        .build()
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
    let stats_two = within(c2.join()).await.expect("no panic");
    assert_eq!(
        (stats_two.received, stats_two.handled, stats_two.duplicates),
        (1, 0, 1)
    );
    assert_eq!(within(c1.shutdown()).await.expect("no panic").handled, 1);
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
    let handle = bus.consumer("crm", handlers).retry(policy).build().spawn();
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
    let stats = within(handle.shutdown()).await.expect("no panic");
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
    let consumer = bus.consumer("crm", handlers).retry(policy).build();
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
    let consumer = bus.consumer("crm", handlers).build();
    let id = Uuid::now_v7();
    let json = format!(
        r#"{{"eventId":"{id}","type":"funnel:from_the_future","version":1,"occurredAt":"2026-11-26T17:04:05.123Z","source":"s","correlationId":"c","idempotencyKey":"k","payload":{{}}}}"#
    );
    let event = OutgoingEvent {
        event_type: "funnel:from_the_future",
        category: "funnel",
        event_id: id,
        idempotency_key: "k".into(),
        correlation_id: "c".into(),
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
    let handle = bus.consumer("crm", handlers).build().spawn();
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
    let stats = within(shutdown).await.expect("joined").expect("no panic");
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
    let consumer = bus.consumer("crm", handlers).retry(policy).build();
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
