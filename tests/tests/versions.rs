//! Versions side by side, with the generated types of the codegen snapshot
//! (`tests/fixtures/good/shop.toml`: `shop:order_placed` version 2, with version 1 still declared):
//! emitters produce the latest version, consumers handle each version or upcast the older one,
//! and a version nobody declares is poison.
#![deny(warnings)]
#![allow(deprecated)] // the fixture declares a deprecated event and field on purpose

// In a test binary every item nobody calls is dead code; the lint says nothing about the generator.
#[allow(dead_code)]
#[path = "../../crates/domain-events-schema/tests/snapshots/shop.rs"]
mod shop;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain_events::{
    DecodeError, DispatchError, Dispatched, Emitter, Envelope, EventPayload, Filter, Handlers,
    MemoryBus, OutgoingEvent, RawEnvelope, RetryPolicy, Transport,
};
use serde_json::json;
use shop::*;

/// Emits the events of the shop catalog; `emit_shop_order_placed` takes the latest payload.
#[derive(domain_events::Emitter)]
#[emitter(catalog = shop, events("shop:order_placed"))]
struct ShopEvents {
    emitter: Emitter,
}

fn order_v2(id: &str) -> ShopOrderPlacedPayload {
    ShopOrderPlacedPayload {
        order_id: id.into(),
        channel: ShopOrderPlacedChannel::MobileApp,
        customer: Customer {
            customer_id: "c-1".into(),
            email: "ana@example.com".parse().unwrap(),
            loyalty: None,
        },
        lines: vec![OrderLine {
            sku: "sku-1".into(),
            quantity: 2,
            unit_cents: 500,
        }],
        total_cents: 1000,
        discount: None,
        currency: "EUR".into(),
        tags: None,
        attributes: None,
        placed_at: "2026-11-26T17:04:05.123Z".parse().unwrap(),
        delivery_date: None,
        receipt_url: None,
        r#type: None,
    }
}

fn order_v1(id: &str) -> ShopOrderPlacedV1Payload {
    ShopOrderPlacedV1Payload {
        order_id: id.into(),
        total_cents: 700,
    }
}

/// Version 1 had no channel, customer, lines or currency: the upcast fills in what a consumer of
/// version 2 expects.
fn upcast(old: ShopOrderPlacedV1Event) -> ShopOrderPlacedPayload {
    ShopOrderPlacedPayload {
        order_id: old.payload.order_id,
        channel: ShopOrderPlacedChannel::Web,
        customer: Customer {
            customer_id: "unknown".into(),
            email: "unknown@example.com".parse().unwrap(),
            loyalty: None,
        },
        lines: vec![OrderLine {
            sku: "legacy".into(),
            quantity: 1,
            unit_cents: old.payload.total_cents,
        }],
        total_cents: old.payload.total_cents,
        discount: None,
        currency: "EUR".into(),
        tags: None,
        attributes: None,
        placed_at: old.occurred_at,
        delivery_date: None,
        receipt_url: None,
        r#type: None,
    }
}

/// One event of each version, as a bus delivers them: v1 from a producer still built from the old
/// schemas (the generic `emit` takes any declared version), v2 from the generated emitter.
async fn emitted() -> (RawEnvelope, RawEnvelope) {
    let bus = MemoryBus::new();
    let mut subscription = bus.subscribe(Filter::Type("shop:order_placed"));
    let old_producer = Emitter::new("shop-v1", bus.clone());
    let producer = ShopEvents {
        emitter: Emitter::new("shop", bus.clone()),
    };
    old_producer.emit(order_v1("o-1")).await.unwrap();
    producer
        .emit_shop_order_placed(order_v2("o-2"))
        .await
        .unwrap();
    let v1 = subscription.try_recv().expect("the v1 event");
    let v2 = subscription.try_recv().expect("the v2 event");
    (
        v1.envelope().expect("an envelope").clone(),
        v2.envelope().expect("an envelope").clone(),
    )
}

/// (version, order id, channel, event id) of every v2 event a handler saw.
type Seen = Arc<Mutex<Vec<(u32, String, String, domain_events::Uuid)>>>;

fn v2_handler(
    seen: &Seen,
) -> impl Fn(ShopOrderPlacedEvent) -> std::future::Ready<Result<(), domain_events::HandlerError>>
+ Send
+ Sync
+ 'static {
    let seen = seen.clone();
    move |event| {
        seen.lock().unwrap().push((
            event.version,
            event.payload.order_id.clone(),
            event.payload.channel.as_str().to_owned(),
            event.event_id,
        ));
        std::future::ready(Ok(()))
    }
}

#[tokio::test]
async fn the_emitter_emits_the_latest_version() {
    assert_eq!(DomainEventType::ShopOrderPlaced.version(), 2);
    assert_eq!(<ShopOrderPlacedPayload as EventPayload>::VERSION, 2);
    let (v1, v2) = emitted().await;
    assert_eq!((v2.version, v2.source.as_str()), (2, "shop"));
    assert_eq!(v2.idempotency_key, "order_placed:o-2:mobile-app");
    // Each version keeps its own key template.
    assert_eq!(
        (v1.version, v1.idempotency_key.as_str()),
        (1, "order_placed:o-1")
    );
}

#[tokio::test]
async fn a_consumer_with_a_handler_per_version_sees_both() {
    let (v1, v2) = emitted().await;
    let old = Arc::new(Mutex::new(Vec::new()));
    let new: Seen = Arc::default();
    let handlers = Handlers::new()
        .on({
            let old = old.clone();
            move |event: ShopOrderPlacedV1Event| {
                old.lock()
                    .unwrap()
                    .push((event.version, event.payload.total_cents));
                async { Ok(()) }
            }
        })
        .on(v2_handler(&new))
        .knowing::<DomainEvent>();
    assert_eq!(
        handlers.dispatch(&v1).await.unwrap(),
        Dispatched::Handled(1)
    );
    assert_eq!(
        handlers.dispatch(&v2).await.unwrap(),
        Dispatched::Handled(1)
    );
    assert_eq!(*old.lock().unwrap(), [(1, 700)]);
    assert_eq!(
        *new.lock().unwrap(),
        [(2, "o-2".to_owned(), "mobile-app".to_owned(), v2.event_id)]
    );

    // The generated event set decodes every declared version.
    let versions: Vec<u32> = [&v1, &v2]
        .into_iter()
        .map(|raw| {
            <DomainEvent as domain_events::EventSet>::decode(raw)
                .unwrap()
                .version()
        })
        .collect();
    assert_eq!(versions, [1, 2]);
}

#[tokio::test]
async fn with_an_upcast_the_v2_handler_sees_v1_events() {
    let (v1, v2) = emitted().await;
    let seen: Seen = Arc::default();
    let handlers = Handlers::new()
        .on(v2_handler(&seen))
        .upcast(upcast)
        .knowing::<DomainEvent>();
    assert_eq!(
        handlers.dispatch(&v1).await.unwrap(),
        Dispatched::Handled(1)
    );
    assert_eq!(
        handlers.dispatch(&v2).await.unwrap(),
        Dispatched::Handled(1)
    );
    assert_eq!(
        *seen.lock().unwrap(),
        [
            // The v1 event, upcast: version 2, the original event id.
            (2, "o-1".to_owned(), "web".to_owned(), v1.event_id),
            (2, "o-2".to_owned(), "mobile-app".to_owned(), v2.event_id),
        ]
    );
}

#[tokio::test]
async fn an_upcast_result_is_checked_against_the_newer_schema() {
    let (v1, _) = emitted().await;
    let handlers = Handlers::new()
        .on(|_: ShopOrderPlacedEvent| async { Ok(()) })
        .upcast(|old: ShopOrderPlacedV1Event| ShopOrderPlacedPayload {
            currency: "euro".into(), // breaks the pattern ^[A-Z]{3}$
            ..upcast(old)
        });
    let err = handlers.dispatch(&v1).await.unwrap_err();
    assert!(
        matches!(
            &err,
            DispatchError::Poison(DecodeError::InvalidPayload { version: 2, .. })
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("currency"), "{err}");
}

#[tokio::test]
async fn an_unknown_version_is_poison() {
    let (_, v2) = emitted().await;
    let mut v3 = serde_json::to_value(&v2).unwrap();
    v3["version"] = json!(3);
    let v3 = RawEnvelope::from_slice(&serde_json::to_vec(&v3).unwrap()).unwrap();
    let seen: Seen = Arc::default();
    for handlers in [
        Handlers::new().knowing::<DomainEvent>(),
        Handlers::new().on(v2_handler(&seen)).upcast(upcast),
    ] {
        let err = handlers.dispatch(&v3).await.unwrap_err();
        assert!(
            matches!(
                err,
                DispatchError::Poison(DecodeError::UnknownVersion { version: 3, .. })
            ),
            "{err:?}"
        );
        assert!(!err.is_retryable());
    }
    assert!(seen.lock().unwrap().is_empty());

    // A consumer that handles only version 2, without an upcast, meets version 1 as poison too.
    let (v1, _) = emitted().await;
    let err = Handlers::new()
        .on(v2_handler(&seen))
        .dispatch(&v1)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            DispatchError::Poison(DecodeError::UnknownVersion { version: 1, .. })
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_memory_consumer_handles_both_versions_through_the_upcast() {
    let bus = MemoryBus::new();
    let seen: Seen = Arc::default();
    let handlers = Handlers::new()
        .on(v2_handler(&seen))
        .upcast(upcast)
        .knowing::<DomainEvent>();
    let consumer = bus
        .consumer("orders", handlers)
        .retry(RetryPolicy::never())
        .build()
        .spawn();
    Emitter::new("shop-v1", bus.clone())
        .emit(order_v1("o-1"))
        .await
        .unwrap();
    ShopEvents {
        emitter: Emitter::new("shop", bus.clone()),
    }
    .emit_shop_order_placed(order_v2("o-2"))
    .await
    .unwrap();
    // A version 3 event from a producer ahead of this consumer.
    let mut v3 = serde_json::to_value(Envelope::new("shop", order_v2("o-3")).unwrap()).unwrap();
    v3["version"] = json!(3);
    let event_id = v3["eventId"].as_str().unwrap().parse().unwrap();
    let outgoing = OutgoingEvent {
        event_type: "shop:order_placed",
        category: "shop",
        event_id,
        idempotency_key: v3["idempotencyKey"].as_str().unwrap().into(),
        correlation_id: v3["correlationId"].as_str().unwrap().into(),
        json: serde_json::to_string(&v3).unwrap().into(),
    };
    bus.publish(&[outgoing]).await.unwrap();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while consumer.stats().received < 3 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stats = consumer.shutdown().await.unwrap();
    assert_eq!(
        (stats.received, stats.handled, stats.poison),
        (3, 2, 1),
        "{stats:?}"
    );
    let orders: Vec<String> = seen.lock().unwrap().iter().map(|s| s.1.clone()).collect();
    assert_eq!(orders, ["o-1", "o-2"]);
}
