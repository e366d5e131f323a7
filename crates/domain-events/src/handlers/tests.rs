//! Unit tests of [`Handlers`]: registration, dispatch, poison rules and checks.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::test_support::{
    Signup, TestEvent, VariationCompleted, VariationStarted, raw_of, raw_with,
};

fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

fn counting<P: EventPayload>(
    count: &Arc<AtomicUsize>,
) -> impl Fn(Envelope<P>) -> std::future::Ready<Result<(), HandlerError>> + Send + Sync + 'static {
    let count = count.clone();
    move |_| {
        count.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok(()))
    }
}

#[tokio::test]
async fn a_typed_handler_gets_the_decoded_envelope() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let handlers = Handlers::new().on({
        let seen = seen.clone();
        move |event: Envelope<VariationCompleted>| {
            let seen = seen.clone();
            async move {
                seen.lock()
                    .map_err(|_| "poisoned")?
                    .push(event.payload.variation_id);
                Ok(())
            }
        }
    });
    let got = handlers
        .dispatch(&raw_of(VariationCompleted::new("var-9")))
        .await
        .expect("handled");
    assert_eq!(got, Dispatched::Handled(1));
    assert_eq!(*seen.lock().expect("lock"), vec!["var-9".to_owned()]);

    // Another type of the same category is readable but unhandled.
    let got = handlers
        .dispatch(&raw_of(VariationStarted::new("var-9")))
        .await
        .expect("readable");
    assert_eq!(got, Dispatched::NoHandler);
}

#[tokio::test]
async fn every_matching_handler_runs_typed_and_by_category() {
    let (typed, category) = (counter(), counter());
    let seen_types = Arc::new(Mutex::new(Vec::new()));
    let handlers = Handlers::new()
        .on(counting::<VariationCompleted>(&typed))
        .on(counting::<VariationCompleted>(&typed))
        .on_category::<TestEvent, _, _>("image", {
            let (category, seen_types) = (category.clone(), seen_types.clone());
            move |event: TestEvent| {
                category.fetch_add(1, Ordering::SeqCst);
                if let Ok(mut seen) = seen_types.lock() {
                    seen.push(event.event_type());
                }
                async { Ok(()) }
            }
        });
    let got = handlers
        .dispatch(&raw_of(VariationCompleted::new("v")))
        .await
        .expect("handled");
    assert_eq!(got, Dispatched::Handled(3));
    assert_eq!(typed.load(Ordering::SeqCst), 2);
    assert_eq!(category.load(Ordering::SeqCst), 1);

    let got = handlers
        .dispatch(&raw_of(VariationStarted::new("v")))
        .await
        .expect("handled");
    assert_eq!(got, Dispatched::Handled(1));
    assert_eq!(
        *seen_types.lock().expect("lock"),
        vec!["image:variation_completed", "image:variation_started"]
    );

    // A known event of another category has no handler.
    assert_eq!(
        handlers
            .dispatch(&raw_of(Signup::new("u")))
            .await
            .expect("readable"),
        Dispatched::NoHandler
    );
}

#[tokio::test]
async fn unknown_types_are_poison_only_when_a_set_is_known() {
    let count = counter();
    let raw = raw_with("image:from_the_future", 1, "{}");

    let loose = Handlers::new().on(counting::<VariationCompleted>(&count));
    assert_eq!(
        loose.dispatch(&raw).await.expect("not poison"),
        Dispatched::NoHandler
    );

    let strict = Handlers::new()
        .on(counting::<VariationCompleted>(&count))
        .knowing::<TestEvent>();
    let err = strict.dispatch(&raw).await.expect_err("poison");
    assert!(
        matches!(&err, DispatchError::Poison(DecodeError::UnknownType(t)) if t == "image:from_the_future"),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    assert_eq!(count.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn unknown_versions_are_poison() {
    let count = counter();
    let v2 = raw_with(
        "image:variation_completed",
        2,
        r#"{"variationId":"v","familiesCompleted":1}"#,
    );
    for handlers in [
        Handlers::new().on(counting::<VariationCompleted>(&count)),
        Handlers::new().knowing::<TestEvent>(),
    ] {
        let err = handlers.dispatch(&v2).await.expect_err("poison");
        assert!(
            matches!(
                err,
                DispatchError::Poison(DecodeError::UnknownVersion { version: 2, .. })
            ),
            "{err:?}"
        );
    }
    assert_eq!(count.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn an_invalid_payload_is_poison_and_runs_no_handler() {
    let count = counter();
    let handlers = Handlers::new()
        .on_category::<TestEvent, _, _>("image", {
            let count = count.clone();
            move |_| {
                count.fetch_add(1, Ordering::SeqCst);
                async { Ok(()) }
            }
        })
        .on(counting::<VariationCompleted>(&count));
    let raw = raw_with("image:variation_completed", 1, r#"{"variationId":"v"}"#);
    let err = handlers.dispatch(&raw).await.expect_err("poison");
    assert!(
        matches!(
            err,
            DispatchError::Poison(DecodeError::InvalidPayload { .. })
        ),
        "{err:?}"
    );
    assert_eq!(count.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_failing_handler_is_retryable_and_does_not_stop_the_others() {
    let count = counter();
    let handlers = Handlers::new()
        .on(|_: Envelope<Signup>| async { Err(HandlerError::msg("database down")) })
        .on(|_: Envelope<Signup>| async { Err::<(), _>(HandlerError::msg("second failure")) })
        .on(counting::<Signup>(&count));
    let err = handlers
        .dispatch(&raw_of(Signup::new("u")))
        .await
        .expect_err("failed");
    assert!(err.is_retryable());
    assert_eq!(err.to_string(), "handler failed: database down");
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_panicking_handler_is_a_failure() {
    async fn explode(_: Envelope<Signup>) -> Result<(), HandlerError> {
        panic!("boom")
    }
    let sync_panic = Handlers::new().on(
        |_: Envelope<Signup>| -> std::future::Ready<Result<(), HandlerError>> {
            panic!("sync boom")
        },
    );
    let err = sync_panic
        .dispatch(&raw_of(Signup::new("u")))
        .await
        .expect_err("failed");
    assert_eq!(
        err.to_string(),
        "handler failed: handler panicked: sync boom"
    );

    let async_panic = Handlers::new().on(explode);
    let err = async_panic
        .dispatch(&raw_of(Signup::new("u")))
        .await
        .expect_err("failed");
    assert_eq!(err.to_string(), "handler failed: handler panicked: boom");
}

#[test]
fn handles_and_categories() {
    let handlers = Handlers::new()
        .on(|_: Envelope<Signup>| async { Ok(()) })
        .on_category::<TestEvent, _, _>("image", |_| async { Ok(()) })
        .on(|_: Envelope<VariationCompleted>| async { Ok(()) });
    assert_eq!(handlers.categories(), vec!["funnel", "image"]);
    assert!(handlers.handles("funnel:signup"));
    assert!(handlers.handles("image:variation_started"));
    assert!(!handlers.handles("image:unknown"));
    assert!(!handlers.handles("seo:page_queued"));
    let debug = format!("{handlers:?}");
    assert!(
        debug.contains("funnel:signup v1") && debug.contains("category image"),
        "{debug}"
    );
    assert!(Handlers::new().categories().is_empty());
}

// Checks registered with `Handlers::checking`.

#[tokio::test]
async fn an_event_a_check_refuses_is_poison_and_runs_no_handler() {
    let runs = Arc::new(AtomicUsize::new(0));
    let handlers = Handlers::new()
        .on_raw(["funnel"], {
            let runs = runs.clone();
            move |_: Arc<RawEnvelope>| {
                runs.fetch_add(1, Ordering::SeqCst);
                async { Ok(()) }
            }
        })
        .checking(|raw| {
            if raw.idempotency_key.ends_with("u2") {
                Err(DecodeError::UnknownType(raw.event_type.clone()))
            } else {
                Ok(())
            }
        });
    let accepted = handlers.dispatch(&raw_of(Signup::new("u1"))).await;
    assert!(
        matches!(accepted, Ok(Dispatched::Handled(1))),
        "{accepted:?}"
    );
    let refused = handlers.dispatch(&raw_of(Signup::new("u2"))).await;
    assert!(
        matches!(
            refused,
            Err(DispatchError::Poison(DecodeError::UnknownType(_)))
        ),
        "{refused:?}"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(format!("{handlers:?}").contains("checks: 1"));
}
