//! The in-memory bus: filters, claims, backpressure, typed and JSON hand-off.

use tokio::time::Instant;
use uuid::Uuid;

use super::*;
use crate::emitter::{EmitBatch, EmitError, Emitter};
use crate::envelope::{DecodeError, Envelope};
use crate::handlers::HandlerError;
use crate::test_support::{Signup, VariationCompleted, VariationStarted, within};

fn emitter(bus: &MemoryBus) -> Emitter {
    Emitter::new("tests", bus.clone())
}

#[tokio::test]
async fn an_emitted_event_reaches_a_subscriber() {
    let bus = MemoryBus::new();
    let mut sub = bus.subscribe(Filter::All);
    let emitted = emitter(&bus)
        .emit(VariationCompleted::new("var-1"))
        .await
        .expect("emitted");

    let delivered = within(sub.recv()).await.expect("delivered");
    assert_eq!(delivered.event_type, "image:variation_completed");
    assert_eq!(delivered.category, "image");
    assert_eq!(
        delivered.envelope().expect("envelope").event_id,
        emitted.event_id
    );
    assert_eq!(
        delivered.envelope().expect("envelope").idempotency_key,
        "image_complete:var-1"
    );
    let typed = delivered.decode::<VariationCompleted>().expect("decodes");
    assert_eq!(typed.payload, VariationCompleted::new("var-1"));
    assert_eq!(typed.source, "tests");
    assert!(sub.try_recv().is_none());
}

#[tokio::test]
async fn filters_select_by_type_and_category() {
    let bus = MemoryBus::new();
    let mut completed = bus.subscribe(Filter::Type("image:variation_completed"));
    let mut image = bus.subscribe(Filter::Category("image"));
    let mut funnel = bus.subscribe(Filter::Categories(vec!["funnel", "seo"]));
    let mut all = bus.subscribe(Filter::All);
    let e = emitter(&bus);
    e.emit(VariationStarted::new("v")).await.expect("emitted");
    e.emit(VariationCompleted::new("v")).await.expect("emitted");
    e.emit(Signup::new("u")).await.expect("emitted");

    let drain = |sub: &mut Subscription| {
        std::iter::from_fn(|| sub.try_recv())
            .map(|d| d.event_type)
            .collect::<Vec<_>>()
    };
    assert_eq!(drain(&mut completed), vec!["image:variation_completed"]);
    assert_eq!(
        drain(&mut image),
        vec!["image:variation_started", "image:variation_completed"]
    );
    assert_eq!(drain(&mut funnel), vec!["funnel:signup"]);
    assert_eq!(drain(&mut all).len(), 3);
}

#[tokio::test]
async fn every_subscriber_gets_every_matching_event_sharing_one_parse() {
    let bus = MemoryBus::new();
    let mut a = bus.subscribe(Filter::Category("image"));
    let mut b = bus.subscribe(Filter::Category("image"));
    emitter(&bus)
        .emit(VariationCompleted::new("v"))
        .await
        .expect("emitted");
    let (da, db) = (
        within(a.recv()).await.expect("a"),
        within(b.recv()).await.expect("b"),
    );
    let (ea, eb) = (
        da.envelope().expect("an envelope"),
        db.envelope().expect("an envelope"),
    );
    assert_eq!(ea.event_id, eb.event_id);
    assert!(
        std::ptr::eq(ea, eb),
        "the envelope is parsed once for every subscriber"
    );
    assert!(std::ptr::eq(
        da.json().expect("serializes"),
        db.json().expect("serializes")
    ));
}

#[tokio::test]
async fn a_lone_typed_subscriber_gets_the_emitted_envelope_itself() {
    let bus = MemoryBus::new();
    let mut sub = bus.subscribe_to::<VariationCompleted>();
    let payload = VariationCompleted::new("var-moved");
    let text = payload.variation_id.as_ptr();
    let emitted = emitter(&bus).emit(payload).await.expect("emitted");
    let envelope = within(sub.recv())
        .await
        .expect("an event")
        .expect("decodes");
    assert_eq!(envelope.event_id, emitted.event_id);
    assert_eq!(envelope.source, "tests");
    // Moved, not cloned nor serialized and parsed: the payload's string is the one emitted.
    assert_eq!(envelope.payload.variation_id.as_ptr(), text);
}

#[tokio::test]
async fn subscribers_of_one_event_get_equal_envelopes_and_json_on_request() {
    let bus = MemoryBus::new();
    let mut typed = bus.subscribe_to::<VariationCompleted>();
    let mut untyped = bus.subscribe(Filter::All);
    let emitter =
        emitter(&bus).with_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    emitter
        .emit(VariationCompleted::new("v"))
        .await
        .expect("emitted");
    let first = within(typed.recv())
        .await
        .expect("an event")
        .expect("decodes");
    let delivered = within(untyped.recv()).await.expect("an event");
    let second = delivered.decode::<VariationCompleted>().expect("decodes");
    assert_eq!(first, second);
    assert!(
        first.traceparent.is_some(),
        "the emitter's context is stamped"
    );
    // The JSON is what the emitter serializes for every other transport.
    let json = delivered.json().expect("serializes");
    assert_eq!(json, serde_json::to_string(&first).expect("serializes"));
    let raw = delivered.envelope().expect("an envelope");
    assert_eq!(raw.decode::<VariationCompleted>().expect("decodes"), first);
}

#[tokio::test]
async fn typed_subscriptions_decode() {
    let bus = MemoryBus::new();
    let mut sub = bus.subscribe_to::<Signup>();
    let e = emitter(&bus);
    e.emit(VariationCompleted::new("v")).await.expect("emitted");
    e.emit(Signup::new("u-7")).await.expect("emitted");
    let envelope = within(sub.recv())
        .await
        .expect("an event")
        .expect("decodes");
    assert_eq!(envelope.payload.user_id, "u-7");
    assert_eq!(envelope.correlation_id, "u-7");
    assert!(sub.into_inner().try_recv().is_none());
}

#[tokio::test]
async fn a_duplicate_emission_is_reported_and_delivered_once() {
    let bus = MemoryBus::new();
    let mut sub = bus.subscribe(Filter::All);
    let e = emitter(&bus);
    let first = e.emit(VariationCompleted::new("v")).await.expect("emitted");
    let second = e
        .emit(VariationCompleted::new("v"))
        .await
        .expect("not an error");
    assert!(!first.duplicate);
    assert!(second.duplicate);
    assert_eq!(second.existing_event_id, Some(first.event_id));
    assert_ne!(second.event_id, first.event_id);

    assert_eq!(
        within(sub.recv())
            .await
            .expect("first")
            .envelope()
            .expect("envelope")
            .event_id
            .clone(),
        first.event_id
    );
    assert!(sub.try_recv().is_none(), "the duplicate was not delivered");
    assert_eq!(e.stats().emitted, 1);
    assert_eq!(e.stats().duplicates, 1);
}

#[tokio::test(start_paused = true)]
async fn claims_expire_after_their_ttl_and_are_per_category() {
    let bus = MemoryBus::builder()
        .idempotency_ttl(Duration::from_secs(10))
        .build();
    let e = emitter(&bus);
    assert!(!e.emit(Signup::new("u")).await.expect("emitted").duplicate);
    tokio::time::advance(Duration::from_secs(9)).await;
    assert!(e.emit(Signup::new("u")).await.expect("emitted").duplicate);
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(
        !e.emit(Signup::new("u")).await.expect("emitted").duplicate,
        "the claim expired"
    );

    // The same key in another category is another claim.
    let json = |t: &str, k: &str, id: Uuid| {
        format!(
            r#"{{"eventId":"{id}","type":"{t}","version":1,"occurredAt":"2026-11-26T17:04:05.123Z","source":"s","correlationId":"c","idempotencyKey":"{k}","payload":{{}}}}"#
        )
    };
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let events = [
        OutgoingEvent {
            event_type: "x:a",
            category: "x",
            event_id: a,
            idempotency_key: "k".into(),
            correlation_id: "c".into(),
            json: json("x:a", "k", a).into(),
        },
        OutgoingEvent {
            event_type: "y:a",
            category: "y",
            event_id: b,
            idempotency_key: "k".into(),
            correlation_id: "c".into(),
            json: json("y:a", "k", b).into(),
        },
    ];
    assert_eq!(
        bus.publish(&events).await.expect("published"),
        vec![PublishOutcome::Published; 2]
    );
}

#[tokio::test]
async fn an_invalid_payload_is_not_delivered() {
    let bus = MemoryBus::new();
    let mut sub = bus.subscribe(Filter::All);
    let err = emitter(&bus)
        .emit(VariationCompleted::new(""))
        .await
        .expect_err("invalid");
    assert!(matches!(err, EmitError::Invalid(_)), "{err:?}");
    assert!(sub.try_recv().is_none());
}

#[tokio::test(start_paused = true)]
async fn a_full_subscriber_makes_emit_time_out_under_wait_delivering_nothing() {
    let bus = MemoryBus::builder().capacity(1).build();
    let mut slow = bus.subscribe(Filter::All);
    let mut fast = bus.subscribe(Filter::All);
    let timeout = Duration::from_millis(200);
    let e = Emitter::builder("tests", bus.clone())
        .timeout(timeout)
        .build();
    e.emit(Signup::new("u1"))
        .await
        .expect("fits in the buffers");
    assert!(within(fast.recv()).await.is_some());

    let started = Instant::now();
    let err = within(e.emit(Signup::new("u2")))
        .await
        .expect_err("slow is full");
    assert!(
        matches!(err, EmitError::Timeout(d) if d == timeout),
        "{err:?}"
    );
    assert_eq!(started.elapsed(), timeout, "emit returns at the timeout");
    assert!(
        fast.try_recv().is_none(),
        "an event goes to all its subscribers or to none"
    );

    // Once the slow subscriber caught up, the same event goes through: nothing was claimed.
    assert_eq!(
        within(slow.recv())
            .await
            .expect("u1")
            .envelope()
            .expect("envelope")
            .correlation_id
            .clone(),
        "u1"
    );
    let again = e.emit(Signup::new("u2")).await.expect("emitted");
    assert!(!again.duplicate);
    assert_eq!(
        within(slow.recv())
            .await
            .expect("u2")
            .envelope()
            .expect("envelope")
            .correlation_id
            .clone(),
        "u2"
    );
    assert_eq!(
        within(fast.recv())
            .await
            .expect("u2")
            .envelope()
            .expect("envelope")
            .correlation_id
            .clone(),
        "u2"
    );
    // The emitter cannot tell what a transport did with a call it gave up on: unknown.
    let stats = e.stats();
    assert_eq!((stats.failed, stats.unknown), (0, 1), "{stats:?}");
}

#[tokio::test]
async fn a_waiting_publish_resumes_when_the_subscriber_reads() {
    let bus = MemoryBus::builder().capacity(1).build();
    let mut sub = bus.subscribe(Filter::All);
    let e = emitter(&bus);
    e.emit(Signup::new("u1")).await.expect("emitted");
    let pending = tokio::spawn({
        let e = e.clone();
        async move { e.emit(Signup::new("u2")).await }
    });
    assert_eq!(
        within(sub.recv())
            .await
            .expect("u1")
            .envelope()
            .expect("envelope")
            .correlation_id
            .clone(),
        "u1"
    );
    assert_eq!(
        within(sub.recv())
            .await
            .expect("u2")
            .envelope()
            .expect("envelope")
            .correlation_id
            .clone(),
        "u2"
    );
    assert!(
        within(pending)
            .await
            .expect("joined")
            .expect("emitted")
            .published()
    );
}

#[tokio::test]
async fn a_full_subscriber_fails_a_single_emit_under_fail_claiming_nothing() {
    let bus = MemoryBus::builder()
        .capacity(1)
        .backpressure(Backpressure::Fail)
        .build();
    let mut sub = bus.subscribe(Filter::All);
    let e = emitter(&bus);
    e.emit(VariationCompleted::new("v1")).await.expect("fits");
    let err = e
        .emit(VariationCompleted::new("v2"))
        .await
        .expect_err("the buffer is full");
    assert!(
        matches!(
            err,
            EmitError::Transport(TransportError::Backpressure { capacity: 1 })
        ),
        "{err:?}"
    );
    assert_eq!((e.stats().emitted, e.stats().failed), (1, 1));
    assert_eq!(
        within(sub.recv()).await.expect("v1").event_type,
        VariationCompleted::TYPE
    );
    assert!(sub.try_recv().is_none(), "v2 was not delivered");
    // v2 was not claimed: emitted again once there is room, it is published.
    let emitted = e
        .emit(VariationCompleted::new("v2"))
        .await
        .expect("fits now");
    assert!(emitted.published());
    assert!(sub.try_recv().is_some());
}

#[tokio::test]
async fn a_full_subscriber_fails_the_whole_batch_under_fail() {
    let bus = MemoryBus::builder()
        .capacity(2)
        .backpressure(Backpressure::Fail)
        .build();
    let mut images = bus.subscribe(Filter::Category("image"));
    let mut funnel = bus.subscribe(Filter::Category("funnel"));
    let e = emitter(&bus);
    let mut batch = EmitBatch::new();
    batch.push(Signup::new("u1")).expect("valid");
    batch.push(VariationCompleted::new("v1")).expect("valid");
    batch.push(VariationCompleted::new("v2")).expect("valid");
    batch.push(VariationCompleted::new("v3")).expect("valid");
    let err = e
        .emit_batch(batch)
        .await
        .expect_err("images has room for 2 of 3");
    assert!(
        matches!(
            err,
            EmitError::Transport(TransportError::Backpressure { capacity: 2 })
        ),
        "{err:?}"
    );
    assert!(
        funnel.try_recv().is_none(),
        "nothing of the batch was delivered"
    );
    assert!(images.try_recv().is_none());
    assert_eq!(e.stats().failed, 4);

    // Nothing was claimed either.
    let mut batch = EmitBatch::new();
    batch.push(Signup::new("u1")).expect("valid");
    batch.push(VariationCompleted::new("v1")).expect("valid");
    let emitted = e.emit_batch(batch).await.expect("fits");
    assert!(emitted.iter().all(|e| e.published()));
    assert_eq!(funnel.try_recv().expect("u1").event_type, "funnel:signup");
}

#[tokio::test]
async fn a_batch_is_delivered_in_order_and_duplicates_within_it_are_reported() {
    for backpressure in [Backpressure::Wait, Backpressure::Fail] {
        let bus = MemoryBus::builder().backpressure(backpressure).build();
        let mut sub = bus.subscribe(Filter::All);
        let mut batch = EmitBatch::new();
        batch.push(Signup::new("u1")).expect("valid");
        batch.push(VariationCompleted::new("v1")).expect("valid");
        batch.push(Signup::new("u1")).expect("valid");
        let emitted = emitter(&bus).emit_batch(batch).await.expect("emitted");
        assert_eq!(
            emitted.iter().map(|e| e.duplicate).collect::<Vec<_>>(),
            vec![false, false, true]
        );
        assert_eq!(emitted[2].existing_event_id, Some(emitted[0].event_id));
        let got: Vec<_> = std::iter::from_fn(|| sub.try_recv())
            .map(|d| d.envelope().expect("envelope").event_id)
            .collect();
        assert_eq!(
            got,
            vec![emitted[0].event_id, emitted[1].event_id],
            "{backpressure:?}"
        );
    }
}

#[tokio::test]
async fn dropped_subscriptions_are_pruned() {
    let bus = MemoryBus::builder().capacity(1).build();
    let keep = bus.subscribe(Filter::All);
    let gone = bus.subscribe(Filter::All);
    assert_eq!(bus.subscriber_count(), 2);
    drop(gone);
    assert_eq!(bus.subscriber_count(), 1);
    drop(keep);
    // With no subscriber left, publishing never waits for a buffer.
    let e = emitter(&bus);
    e.emit(Signup::new("u1")).await.expect("emitted");
    e.emit(Signup::new("u2")).await.expect("emitted");
    assert_eq!(bus.subscriber_count(), 0);
}

#[tokio::test]
async fn a_closed_bus_ends_subscriptions_and_refuses_events() {
    let bus = MemoryBus::new();
    let mut sub = bus.subscribe(Filter::All);
    let e = emitter(&bus);
    e.emit(Signup::new("u1")).await.expect("emitted");
    bus.close();
    assert!(bus.is_closed());
    assert!(
        within(sub.recv()).await.is_some(),
        "buffered events are still received"
    );
    assert!(within(sub.recv()).await.is_none());
    let err = e.emit(Signup::new("u2")).await.expect_err("closed");
    assert!(
        matches!(err, EmitError::Transport(TransportError::Unavailable(_))),
        "{err:?}"
    );
    assert!(within(bus.subscribe(Filter::All).recv()).await.is_none());
}

fn outgoing(json: &str, event_id: Uuid) -> OutgoingEvent {
    OutgoingEvent {
        event_type: VariationCompleted::TYPE,
        category: VariationCompleted::CATEGORY,
        event_id,
        // A key of its own, so that no publish is a duplicate.
        idempotency_key: event_id.to_string(),
        correlation_id: "c".into(),
        json: Arc::from(json),
    }
}

#[tokio::test]
async fn json_that_is_not_the_published_envelope_reaches_subscribers_as_a_decode_error() {
    let bus = MemoryBus::new();
    let mut sub = bus.subscribe(Filter::All);
    let mut typed = bus.subscribe_to::<VariationCompleted>();
    let handlers =
        Handlers::new().on(|_: Envelope<VariationCompleted>| async { Ok::<_, HandlerError>(()) });
    let consumer = bus.consumer("g", handlers).build().spawn();
    // Another event's envelope, published under a new eventId.
    let other = Envelope::new("tests", VariationCompleted::new("v")).expect("valid");
    let other_json = serde_json::to_string(&other).expect("serializes");
    for event in [
        outgoing("not json", Uuid::now_v7()),
        outgoing(&other_json, Uuid::now_v7()),
    ] {
        bus.publish(std::slice::from_ref(&event))
            .await
            .expect("published: the bus does not parse what it publishes");
        let delivered = within(sub.recv()).await.expect("delivered");
        assert_eq!(delivered.event_id, event.event_id);
        let error = delivered.envelope().expect_err("not the envelope");
        assert!(matches!(error, DecodeError::NotAnEnvelope(_)), "{error:?}");
        let error = delivered
            .decode::<VariationCompleted>()
            .expect_err("not the envelope");
        assert!(matches!(error, DecodeError::NotAnEnvelope(_)), "{error:?}");
        let error = within(typed.recv())
            .await
            .expect("delivered")
            .expect_err("not the envelope");
        assert!(matches!(error, DecodeError::NotAnEnvelope(_)), "{error:?}");
    }
    // The same envelope under its own eventId is the event published.
    bus.publish(&[outgoing(&other_json, other.event_id)])
        .await
        .expect("published");
    let delivered = within(sub.recv()).await.expect("delivered");
    assert_eq!(
        delivered.decode::<VariationCompleted>().expect("decodes"),
        other
    );
    assert_eq!(
        within(typed.recv())
            .await
            .expect("delivered")
            .expect("decodes"),
        other
    );
    bus.close();
    let stats = within(consumer.join()).await.expect("no panic");
    assert_eq!(
        (stats.received, stats.poison, stats.handled),
        (3, 2, 1),
        "{stats:?}"
    );
}

#[tokio::test]
async fn decode_names_another_type_or_version() {
    let bus = MemoryBus::new();
    let mut sub = bus.subscribe(Filter::All);
    let emitted = emitter(&bus)
        .emit(VariationCompleted::new("v"))
        .await
        .expect("emitted");
    let delivered = within(sub.recv()).await.expect("delivered");
    let error = delivered.decode::<Signup>().expect_err("another type");
    assert!(matches!(error, DecodeError::WrongType { .. }), "{error:?}");
    // Once parsed untyped, decode shares that parse and still checks the type.
    assert_eq!(
        delivered.envelope().expect("an envelope").event_id,
        emitted.event_id
    );
    let error = delivered.decode::<Signup>().expect_err("another type");
    assert!(matches!(error, DecodeError::WrongType { .. }), "{error:?}");
    assert_eq!(
        delivered
            .decode::<VariationCompleted>()
            .expect("decodes")
            .payload,
        VariationCompleted::new("v")
    );
    let json = delivered
        .json()
        .expect("serializes")
        .replace("\"version\":1", "\"version\":2");
    bus.publish(&[outgoing(&json, emitted.event_id)])
        .await
        .expect("published");
    let delivered = within(sub.recv()).await.expect("delivered");
    let error = delivered
        .decode::<VariationCompleted>()
        .expect_err("another version");
    assert!(
        matches!(error, DecodeError::UnknownVersion { version: 2, .. }),
        "{error:?}"
    );
}

#[test]
fn capacity_is_at_least_one() {
    assert_eq!(MemoryBus::builder().capacity(0).build().capacity(), 1);
    assert_eq!(MemoryBus::new().capacity(), DEFAULT_CAPACITY);
    assert_eq!(MemoryBus::new().backpressure(), Backpressure::Wait);
}
