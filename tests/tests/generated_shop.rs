//! Compiles the codegen snapshot of `tests/fixtures/good/shop.toml` (with warnings denied) and
//! checks how the generated types behave.
#![deny(warnings)]
#![allow(deprecated)] // the fixture declares a deprecated event and field on purpose

// In a test binary every item nobody calls is dead code; the lint says nothing about the generator.
#[allow(dead_code)]
#[path = "../../crates/domain-events-schema/tests/snapshots/shop.rs"]
mod shop;

use domain_events::{DecodeError, Envelope, EventPayload, EventSet, Validate};
use serde_json::json;
use shop::*;

fn order() -> ShopOrderPlacedPayload {
    ShopOrderPlacedPayload {
        order_id: "o-1".into(),
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
        discount: Some(0.1),
        currency: "EUR".into(),
        tags: None,
        attributes: None,
        placed_at: "2026-11-26T17:04:05.123Z".parse().unwrap(),
        delivery_date: None,
        receipt_url: None,
        r#type: None,
    }
}

#[test]
fn serializes_with_wire_names_and_omits_absent_options() {
    let value = serde_json::to_value(order()).unwrap();
    assert_eq!(value["orderId"], "o-1");
    assert_eq!(value["channel"], "mobile-app");
    assert_eq!(value["customer"]["customerId"], "c-1");
    assert_eq!(value["lines"][0]["unitCents"], 500);
    assert!(value.get("tags").is_none());
    assert!(value.get("type").is_none());
    let back: ShopOrderPlacedPayload = serde_json::from_value(value).unwrap();
    assert_eq!(back, order());
}

#[test]
fn reading_checks_every_constraint() {
    let mut value = serde_json::to_value(order()).unwrap();
    value["orderId"] = json!("");
    value["currency"] = json!("eur");
    value["lines"][0]["quantity"] = json!(0);
    value["discount"] = json!(1.5);
    let err = serde_json::from_value::<ShopOrderPlacedPayload>(value)
        .unwrap_err()
        .to_string();
    for expected in [
        "`orderId` must be at least 1 character long",
        "`currency` must match the pattern `^[A-Z]{3}$`",
        "`discount` must be at most 1",
        "`lines[0].quantity` must be at least 1",
    ] {
        assert!(err.contains(expected), "{expected} not in {err}");
    }

    let mut value = serde_json::to_value(order()).unwrap();
    value["lines"] = json!([]);
    let err = serde_json::from_value::<ShopOrderPlacedPayload>(value)
        .unwrap_err()
        .to_string();
    assert!(err.contains("`lines` must have at least 1 item"), "{err}");

    let mut value = serde_json::to_value(order()).unwrap();
    value["receiptUrl"] = json!("not a url");
    let err = serde_json::from_value::<ShopOrderPlacedPayload>(value)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a valid absolute URL"), "{err}");
}

#[test]
fn building_an_envelope_checks_constraints_and_reports_every_path() {
    let mut bad = order();
    bad.order_id.clear();
    bad.lines[0].quantity = 0;
    bad.tags = Some(vec!["x".repeat(21)]);
    let err = Envelope::new("shop", bad).unwrap_err();
    let paths: Vec<_> = err.violations.iter().map(|v| v.path.as_str()).collect();
    assert_eq!(paths, ["orderId", "lines[0].quantity", "tags[0]"]);
    assert!(order().validate().is_ok());
}

#[test]
fn unknown_fields_are_ignored_when_reading() {
    let mut value = serde_json::to_value(order()).unwrap();
    value["addedLater"] = json!({"anything": true});
    assert_eq!(
        serde_json::from_value::<ShopOrderPlacedPayload>(value).unwrap(),
        order()
    );
}

#[test]
fn sensitive_fields_are_redacted_in_debug() {
    let text = format!("{:?}", order());
    assert!(!text.contains("ana@example.com"), "{text}");
    assert!(text.contains("[redacted]"), "{text}");
    assert!(text.contains("sku-1"), "{text}");
}

#[test]
fn keys_and_correlation_follow_the_templates_of_each_version() {
    let v2 = order();
    assert_eq!(v2.idempotency_key(), "order_placed:o-1:mobile-app");
    assert_eq!(v2.correlation_id(), "o-1");
    let v1 = ShopOrderPlacedV1Payload {
        order_id: "o-1".into(),
        total_cents: 5,
    };
    assert_eq!(v1.idempotency_key(), "order_placed:o-1");
    assert_eq!(<ShopOrderPlacedPayload as EventPayload>::VERSION, 2);
    assert_eq!(ShopOrderPlacedV1Payload::VERSION, 1);
    assert_eq!(ShopOrderPlacedPayload::TYPE, "shop:order_placed");
    assert_eq!(
        <ShopOrderPlacedPayload as EventPayload>::KEY_TEMPLATE,
        "order_placed:{orderId}:{channel}"
    );
}

#[test]
fn event_types_convert_both_ways() {
    assert_eq!(DomainEventType::ALL.len(), 2);
    let t: DomainEventType = "shop:order_placed".parse().unwrap();
    assert_eq!(t, DomainEventType::ShopOrderPlaced);
    assert_eq!(t.to_string(), "shop:order_placed");
    assert_eq!(t.version(), 2);
    assert_eq!(t.category(), "shop");
    assert_eq!(serde_json::to_string(&t).unwrap(), "\"shop:order_placed\"");
    assert_eq!(
        serde_json::from_str::<DomainEventType>("\"shop:order_cancelled\"").unwrap(),
        DomainEventType::ShopOrderCancelled
    );
    let err = "shop:nope".parse::<DomainEventType>().unwrap_err();
    // Like every parse error of a value, it says what was expected, not the text given.
    assert_eq!(
        err.to_string(),
        "a text of 9 characters is not a type string of this catalog"
    );
    assert!(serde_json::from_str::<DomainEventType>("\"shop:nope\"").is_err());
}

#[test]
fn enums_keep_their_wire_values() {
    assert_eq!(ShopOrderPlacedChannel::V2fa.as_str(), "2fa");
    assert_eq!(
        "mobile-app".parse::<ShopOrderPlacedChannel>().unwrap(),
        ShopOrderPlacedChannel::MobileApp
    );
    let err = "fax"
        .parse::<ShopOrderPlacedChannel>()
        .unwrap_err()
        .to_string();
    assert!(err.contains("`web`, `mobile-app`, `2fa`"), "{err}");
    assert_eq!(Tier::ALL, &[Tier::Bronze, Tier::Silver, Tier::Gold]);
}

#[test]
fn domain_events_decode_by_type_and_version() {
    let v2 = Envelope::new("shop", order()).unwrap();
    let bytes = serde_json::to_vec(&v2).unwrap();
    match DomainEvent::from_json(&bytes).unwrap() {
        DomainEvent::ShopOrderPlaced(e) => assert_eq!(e, v2),
        other => panic!("decoded as {other:?}"),
    }

    let v1 = Envelope::new(
        "shop",
        ShopOrderPlacedV1Payload {
            order_id: "o-1".into(),
            total_cents: 5,
        },
    )
    .unwrap();
    let decoded = DomainEvent::from_json(&serde_json::to_vec(&v1).unwrap()).unwrap();
    assert!(matches!(decoded, DomainEvent::ShopOrderPlacedV1(_)));
    assert_eq!(decoded.kind(), DomainEventType::ShopOrderPlaced);
    assert_eq!(decoded.version(), 1);

    let mut v3 = serde_json::to_value(&v1).unwrap();
    v3["version"] = json!(3);
    let err = DomainEvent::from_json(&serde_json::to_vec(&v3).unwrap()).unwrap_err();
    assert!(
        matches!(err, DecodeError::UnknownVersion { version: 3, .. }),
        "{err}"
    );

    v3["type"] = json!("shop:refunded");
    let err = DomainEvent::from_json(&serde_json::to_vec(&v3).unwrap()).unwrap_err();
    assert!(
        matches!(err, DecodeError::UnknownType(ref t) if t == "shop:refunded"),
        "{err}"
    );

    let mut broken = serde_json::to_value(&v2).unwrap();
    broken["payload"]["currency"] = json!("euro");
    let err = DomainEvent::from_json(&serde_json::to_vec(&broken).unwrap()).unwrap_err();
    assert!(matches!(err, DecodeError::InvalidPayload { .. }), "{err}");
}

#[test]
fn domain_events_clone_compare_and_debug_as_derived_ones_would() {
    let v2 = Envelope::new("shop", order()).unwrap();
    let placed = DomainEvent::ShopOrderPlaced(v2.clone());
    let v1 = DomainEvent::ShopOrderPlacedV1(
        Envelope::new(
            "shop",
            ShopOrderPlacedV1Payload {
                order_id: "o-1".into(),
                total_cents: 5,
            },
        )
        .unwrap(),
    );

    // Each variant clones into itself, with the same envelope.
    assert!(matches!(placed.clone(), DomainEvent::ShopOrderPlaced(ref e) if *e == v2));
    assert!(matches!(v1.clone(), DomainEvent::ShopOrderPlacedV1(_)));
    assert_eq!(placed.clone(), placed);
    assert_eq!(v1.clone(), v1);
    // Another variant, or the same variant with another envelope, is not equal.
    assert_ne!(placed, v1);
    assert_ne!(v1, placed);
    let mut other = v2.clone();
    other.payload.total_cents += 1;
    assert_ne!(placed, DomainEvent::ShopOrderPlaced(other));

    // Debug is the variant name around the envelope's own (redacting) Debug.
    assert_eq!(format!("{placed:?}"), format!("ShopOrderPlaced({v2:?})"));
    assert_eq!(
        format!("{placed:#?}"),
        format!("ShopOrderPlaced(\n{}\n)", indent(&format!("{v2:#?}")))
    );
    assert!(!format!("{placed:?}").contains("ana@example.com"));
    assert!(format!("{v1:?}").starts_with("ShopOrderPlacedV1(Envelope"));
}

/// `{:#?}` of a tuple variant indents its field by four spaces and ends it with a comma.
fn indent(text: &str) -> String {
    let lines: Vec<String> = text.lines().map(|line| format!("    {line}")).collect();
    format!("{},", lines.join("\n"))
}

#[test]
fn the_event_table_lists_every_version() {
    let infos: Vec<_> = DomainEvent::EVENTS
        .iter()
        .map(|e| (e.event_type, e.version, e.latest))
        .collect();
    assert_eq!(
        infos,
        [
            ("shop:order_placed", 1, false),
            ("shop:order_placed", 2, true),
            ("shop:order_cancelled", 1, true)
        ]
    );
    assert!(EVENTS[2].deprecated);
}

#[test]
fn schemars_sees_the_exported_schema() {
    let generated = schemars::schema_for!(ShopOrderPlacedPayload);
    let value = serde_json::to_value(&generated).unwrap();
    assert_eq!(value["properties"]["currency"]["pattern"], "^[A-Z]{3}$");
    assert_eq!(value["properties"]["lines"]["minItems"], 1);
    assert_eq!(
        value["properties"]["customer"]["properties"]["email"]["format"],
        "email"
    );
    assert_eq!(
        value["required"],
        json!([
            "orderId",
            "channel",
            "customer",
            "lines",
            "totalCents",
            "currency",
            "placedAt"
        ])
    );
}

/// `#[derive(Emitter)]` works with a catalog that is a module of the same crate: the generated
/// `__emitter_events!` is reached through the module, and the methods exist.
#[derive(domain_events::Emitter)]
#[emitter(catalog = shop, events("shop:order_placed", "shop:order_cancelled"))]
struct ShopEvents {
    #[allow(dead_code)]
    emitter: domain_events::Emitter,
}

#[test]
fn the_emitter_derive_reaches_a_catalog_module_of_the_same_crate() {
    let _placed = ShopEvents::emit_shop_order_placed;
    let _cancelled = ShopEvents::emit_shop_order_cancelled_or_log;
}
