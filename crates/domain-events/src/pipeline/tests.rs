//! The delivery rules, one by one, with a transport that records what it is asked to do.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::envelope::Envelope;
use crate::test_support::{Signup, TestEvent, raw_of, raw_with, within};

/// A transport's side of one event: its done record, and the verdicts it was asked to carry out.
#[derive(Clone, Default)]
struct Recorder {
    done: Option<bool>,
    refuse: bool,
    done_asked: Arc<AtomicUsize>,
    settled: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    fn done(done: Option<bool>) -> Self {
        Self {
            done,
            ..Self::default()
        }
    }

    fn settled(&self) -> Vec<String> {
        self.settled.lock().expect("not poisoned").clone()
    }
}

impl Settle for Recorder {
    async fn is_done(&self, _: &RawEnvelope) -> Option<bool> {
        self.done_asked.fetch_add(1, Ordering::SeqCst);
        self.done
    }

    async fn settle(self, verdict: &Verdict) -> bool {
        let name = match verdict {
            Verdict::Handled { .. } => "handled",
            Verdict::Duplicate => "duplicate",
            Verdict::Unhandled => "unhandled",
            Verdict::Poison { .. } => "poison",
            Verdict::Failed {
                redeliver: true, ..
            } => "failed, again later",
            Verdict::Failed { .. } => "failed for good",
            Verdict::Deferred { .. } => "deferred",
        };
        self.settled.lock().expect("not poisoned").push(name.into());
        !self.refuse
    }
}

/// Handlers of `Signup` that fail their first `failures` attempts; the count of attempts.
fn failing(failures: usize) -> (Handlers, Arc<AtomicUsize>) {
    let attempts = Arc::new(AtomicUsize::new(0));
    let handlers = Handlers::new()
        .on({
            let attempts = attempts.clone();
            move |_: Envelope<Signup>| {
                let n = attempts.fetch_add(1, Ordering::SeqCst) + 1;
                async move {
                    if n <= failures {
                        Err(HandlerError::msg(format!("attempt {n} failed")))
                    } else {
                        Ok(())
                    }
                }
            }
        })
        .knowing::<TestEvent>();
    (handlers, attempts)
}

fn retrying(handlers: Handlers, max_retries: u32) -> Pipeline {
    Pipeline::builder("crm", handlers)
        .retry(RetryPolicy {
            max_retries,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
        })
        .build()
}

#[tokio::test]
async fn a_handled_event_is_settled_and_counted_once_its_outcome_is_recorded() {
    let (handlers, attempts) = failing(0);
    let pipeline = retrying(handlers, 0);
    let raw = raw_of(Signup::new("u1"));
    let recorder = Recorder::done(Some(false));
    let verdict = pipeline
        .process(Incoming::decoded(&raw), recorder.clone())
        .await;
    assert!(
        matches!(verdict, Verdict::Handled { handlers: 1 }),
        "{verdict:?}"
    );
    assert_eq!(recorder.settled(), ["handled"]);
    assert_eq!(attempts.load(Ordering::SeqCst), 1);

    // The transport could not record the outcome: not counted as handled (a later delivery is).
    let refusing = Recorder {
        refuse: true,
        ..Recorder::done(Some(false))
    };
    pipeline.process(Incoming::decoded(&raw), refusing).await;
    let stats = pipeline.stats();
    assert_eq!((stats.received, stats.handled), (2, 1));
}

#[tokio::test]
async fn bytes_are_decoded_and_what_is_not_an_envelope_is_poison() {
    let (handlers, attempts) = failing(0);
    let pipeline = retrying(handlers, 3);
    let json = serde_json::to_vec(&raw_of(Signup::new("u1"))).expect("serialized");
    let handled = pipeline
        .process(Incoming::bytes(&json), Recorder::done(Some(false)))
        .await;
    assert!(matches!(handled, Verdict::Handled { .. }), "{handled:?}");

    let recorder = Recorder::default();
    let poison = pipeline
        .process(
            Incoming::bytes(b"{\"not\":\"an envelope\"}"),
            recorder.clone(),
        )
        .await;
    let reason = poison.reason().expect("a reason").to_owned();
    assert!(
        reason.starts_with("poison event: not an event envelope"),
        "{reason}"
    );
    assert!(poison.is_dead_letter() && poison.is_final());
    let none = pipeline
        .process(
            Incoming::unreadable("entry has no `event` field"),
            recorder.clone(),
        )
        .await;
    assert_eq!(
        none.reason(),
        Some("poison event: entry has no `event` field")
    );
    assert_eq!(recorder.settled(), ["poison", "poison"]);
    assert_eq!(
        recorder.done_asked.load(Ordering::SeqCst),
        0,
        "no done check without an envelope"
    );
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
    let stats = pipeline.stats();
    assert_eq!(
        (stats.received, stats.handled, stats.poison, stats.retries),
        (3, 1, 2, 0)
    );
}

#[tokio::test]
async fn unknown_types_and_invalid_payloads_are_poison_and_never_retried() {
    let (handlers, attempts) = failing(0);
    let pipeline = retrying(handlers, 3);
    for raw in [
        raw_with("funnel:from_the_future", 1, "{}"),
        raw_with("funnel:signup", 1, r#"{"userId": 42}"#),
    ] {
        let verdict = pipeline
            .process(Incoming::decoded(&raw), Recorder::done(Some(false)))
            .await;
        assert!(matches!(verdict, Verdict::Poison { .. }), "{verdict:?}");
    }
    assert_eq!(attempts.load(Ordering::SeqCst), 0);
    let stats = pipeline.stats();
    assert_eq!((stats.poison, stats.retries, stats.failed), (2, 0, 0));
}

#[tokio::test]
async fn a_key_the_group_handled_runs_no_handler() {
    let (handlers, attempts) = failing(0);
    let pipeline = retrying(handlers, 0);
    let raw = raw_of(Signup::new("u1"));
    let recorder = Recorder::done(Some(true));
    let verdict = pipeline
        .process(Incoming::decoded(&raw), recorder.clone())
        .await;
    assert!(matches!(verdict, Verdict::Duplicate));
    // A done state the transport knew already is not asked again.
    let asked_before = Recorder::done(None);
    let known = pipeline
        .process(
            Incoming::decoded(&raw).known_done(Some(true)),
            asked_before.clone(),
        )
        .await;
    assert!(matches!(known, Verdict::Duplicate));
    assert_eq!(asked_before.done_asked.load(Ordering::SeqCst), 0);
    assert_eq!(attempts.load(Ordering::SeqCst), 0);
    assert_eq!(pipeline.stats().duplicates, 2);
}

#[tokio::test]
async fn an_unanswered_done_check_defers_the_event_without_running_it() {
    let (handlers, attempts) = failing(0);
    let pipeline = retrying(handlers, 0);
    let raw = raw_of(Signup::new("u1"));
    let recorder = Recorder::done(None);
    let verdict = pipeline
        .process(Incoming::decoded(&raw), recorder.clone())
        .await;
    assert!(matches!(verdict, Verdict::Deferred { .. }) && !verdict.is_final());
    assert_eq!(recorder.settled(), ["deferred"]);
    assert_eq!(attempts.load(Ordering::SeqCst), 0);
    let stats = pipeline.stats();
    assert_eq!(
        (stats.received, stats.handled, stats.failed, stats.retries),
        (1, 0, 0, 0)
    );
}

#[tokio::test]
async fn an_event_without_a_handler_is_unhandled() {
    let pipeline = retrying(Handlers::new().knowing::<TestEvent>(), 0);
    let raw = raw_of(Signup::new("u1"));
    let verdict = pipeline
        .process(Incoming::decoded(&raw), Recorder::done(Some(false)))
        .await;
    assert!(matches!(verdict, Verdict::Unhandled) && verdict.is_final());
    assert_eq!(pipeline.stats().unhandled, 1);
}

#[tokio::test(start_paused = true)]
async fn a_failing_handler_is_retried_with_backoff_within_the_delivery() {
    let (handlers, attempts) = failing(2);
    let pipeline = retrying(handlers, 5);
    let raw = raw_of(Signup::new("u1"));
    let started = tokio::time::Instant::now();
    let verdict = pipeline
        .process(Incoming::decoded(&raw), Recorder::done(Some(false)))
        .await;
    assert!(matches!(verdict, Verdict::Handled { .. }), "{verdict:?}");
    assert_eq!(
        started.elapsed(),
        Duration::from_millis(300),
        "100 ms, then 200 ms"
    );
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    let stats = pipeline.stats();
    assert_eq!((stats.handled, stats.retries, stats.failed), (1, 2, 0));
}

#[tokio::test(start_paused = true)]
async fn without_redelivery_exhausted_retries_are_final() {
    let (handlers, attempts) = failing(usize::MAX);
    let pipeline = retrying(handlers, 2);
    let raw = raw_of(Signup::new("u1"));
    let recorder = Recorder::done(Some(false));
    let verdict = pipeline
        .process(Incoming::decoded(&raw), recorder.clone())
        .await;
    let Verdict::Failed {
        attempts: tried,
        redeliver,
        reason,
        error,
    } = &verdict
    else {
        panic!("{verdict:?}");
    };
    assert_eq!((*tried, *redeliver), (3, false));
    assert_eq!(reason, "handler failed, 3 attempts: attempt 3 failed");
    assert_eq!(error.to_string(), "attempt 3 failed");
    assert_eq!(recorder.settled(), ["failed for good"]);
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    let stats = pipeline.stats();
    assert_eq!((stats.failed, stats.retries), (1, 2));
}

#[tokio::test(start_paused = true)]
async fn with_redelivery_only_the_last_delivery_gives_up() {
    let (handlers, attempts) = failing(usize::MAX);
    let pipeline = retrying(handlers, 1);
    let raw = raw_of(Signup::new("u1"));
    let mut verdicts = Vec::new();
    for delivery in 1..=3 {
        let verdict = pipeline
            .process(
                Incoming::decoded(&raw).delivery(delivery, Some(3)),
                Recorder::done(Some(false)),
            )
            .await;
        verdicts.push((verdict.is_final(), verdict.reason().map(str::to_owned)));
    }
    let finals: Vec<bool> = verdicts.iter().map(|(is_final, _)| *is_final).collect();
    assert_eq!(
        finals,
        [false, false, true],
        "delivered again twice, then given up"
    );
    assert_eq!(
        verdicts[2].1.as_deref(),
        Some(
            "handler failed 3 times (delivery 3 of at most 3, 2 attempts in the last): attempt 6 failed"
        )
    );
    assert_eq!(attempts.load(Ordering::SeqCst), 6);
    let stats = pipeline.stats();
    // 3 retries in the consumer, 2 redeliveries; every attempt after the first is a retry.
    assert_eq!((stats.received, stats.retries, stats.failed), (3, 5, 1));
}

#[tokio::test]
async fn a_delivery_past_the_maximum_fails_without_running_a_handler() {
    let (handlers, attempts) = failing(0);
    let pipeline = retrying(handlers, 3);
    let raw = raw_of(Signup::new("u1"));
    let verdict = pipeline
        .process(
            Incoming::decoded(&raw).delivery(4, Some(3)),
            Recorder::done(Some(false)),
        )
        .await;
    assert!(verdict.is_dead_letter());
    assert_eq!(
        verdict.reason(),
        Some("delivered 4 times, more than the maximum of 3")
    );
    assert_eq!(attempts.load(Ordering::SeqCst), 0);
    // A handled event whose outcome was never recorded is still recognised, however often it
    // was delivered.
    let done = pipeline
        .process(
            Incoming::decoded(&raw).delivery(9, Some(3)),
            Recorder::done(Some(true)),
        )
        .await;
    assert!(matches!(done, Verdict::Duplicate));
    assert_eq!(pipeline.stats().failed, 1);
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_during_a_backoff_defers_or_gives_up_by_what_the_transport_can_do() {
    for (max, final_verdict, counted_failed) in [(Some(5), false, 0), (None, true, 1)] {
        let (handlers, attempts) = failing(usize::MAX);
        let pipeline = Pipeline::builder("crm", handlers)
            .retry(RetryPolicy {
                max_retries: 5,
                initial_backoff: Duration::from_secs(3600),
                max_backoff: Duration::from_secs(3600),
            })
            .build();
        let raw = raw_of(Signup::new("u1"));
        let stop = pipeline.shutdown_handle();
        let task = tokio::spawn({
            let pipeline = pipeline.clone();
            async move {
                pipeline
                    .process(
                        Incoming::decoded(&raw).delivery(1, max),
                        Recorder::done(Some(false)),
                    )
                    .await
            }
        });
        while attempts.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        let started = tokio::time::Instant::now();
        stop.trigger();
        let verdict = within(task).await.expect("joined");
        assert!(
            started.elapsed() < Duration::from_secs(3600),
            "did not wait out the backoff"
        );
        assert_eq!(verdict.is_final(), final_verdict, "{max:?}: {verdict:?}");
        assert_eq!(attempts.load(Ordering::SeqCst), 1);
        assert_eq!(pipeline.stats().failed, counted_failed);
    }
}

#[tokio::test]
async fn a_panicking_handler_is_a_failed_attempt() {
    let handlers = Handlers::new().on(|_: Envelope<Signup>| async {
        if true {
            panic!("boom");
        }
        Ok(())
    });
    let pipeline = retrying(handlers, 0);
    let raw = raw_of(Signup::new("u1"));
    let verdict = pipeline
        .process(Incoming::decoded(&raw), Recorder::done(Some(false)))
        .await;
    assert_eq!(
        verdict.reason(),
        Some("handler failed, 1 attempt: handler panicked: boom")
    );
    assert_eq!(pipeline.stats().failed, 1);
}

#[tokio::test]
async fn a_panicking_consumer_task_is_reported_as_such() {
    let pipeline = Pipeline::builder("crm", Handlers::new()).build();
    let handle: ConsumerHandle = ConsumerHandle::spawn(
        async {
            if true {
                panic!("consumer bug");
            }
            Ok(ConsumerStats::default())
        },
        &pipeline,
    );
    let error = within(handle.join())
        .await
        .expect_err("a panic is no success");
    assert_eq!(error.message, "consumer bug");
    assert_eq!(error.group, "crm");
    assert!(error.to_string().contains("panicked"), "{error}");
}

#[test]
fn refused_entries_count_as_received_poison() {
    let pipeline = Pipeline::builder("crm", Handlers::new()).build();
    pipeline.refused("entry of 2000000 bytes is larger than the limit");
    let stats = pipeline.stats();
    assert_eq!((stats.received, stats.poison), (1, 1));
}
