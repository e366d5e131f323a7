//! CloudEvents 1.0 against a real CloudEvents SDK: the npm `cloudevents` package (pinned in
//! tests/node/package.json), driven by tests/node/cloudevents-roundtrip.mjs.
//!
//! - Rust -> SDK: our structured-mode events pass the SDK's strict validation (`new CloudEvent`),
//!   and the SDK sees every attribute and extension with the value and type we meant.
//! - SDK -> Rust: what the SDK writes (`toJSON`, `HTTP.structured`) and reads back from both HTTP
//!   modes converts into an envelope equal to the original; an event the SDK built on its own
//!   decodes as the catalog's payload type.
//!
//! Needs Node.js and `npm ci` in tests/node; without them this test fails, it never skips.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use domain_events::{Envelope, EventPayload, RawEnvelope, Uuid, payload_schema_id};
use domain_events_catalog::{
    FunnelSignupMethod, FunnelSignupPayload, ImageVariationCompletedPayload,
    ImageVariationStartedPayload,
};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn node_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("node")
}

/// Runs the round-trip script with `input` on stdin; its JSON output.
fn sdk(input: &Value) -> Value {
    let dir = node_dir();
    assert!(
        dir.join("node_modules/cloudevents/package.json").is_file(),
        "the npm package `cloudevents` is not installed in {}: run `npm ci` there (Node.js 20 or later)",
        dir.display()
    );
    let mut child = Command::new("node")
        .arg("cloudevents-roundtrip.mjs")
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `node` (Node.js 20 or later is needed): {e}"));
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(&serde_json::to_vec(input).unwrap())
        .unwrap();
    drop(stdin);
    let output = child.wait_with_output().expect("node runs");
    assert!(
        output.status.success(),
        "the CloudEvents SDK script failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "the script's output is not JSON ({e}):\n{}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

fn completed() -> Envelope<ImageVariationCompletedPayload> {
    let payload = ImageVariationCompletedPayload {
        variation_id: "var-123".into(),
        variation_name: "Autumn «été» 🍂".into(),
        families_completed: 9,
        total_generation_time_ms: 81234,
        public_urls: vec![
            "https://cdn.example/a.png".parse().unwrap(),
            "https://cdn.example/b%20c.png?size=2".parse().unwrap(),
        ],
    };
    Envelope::new("image-generator", payload)
        .unwrap()
        .caused_by(Uuid::now_v7())
        .with_traceparent(TRACEPARENT)
}

fn signup() -> Envelope<FunnelSignupPayload> {
    let payload = FunnelSignupPayload {
        user_id: "user-42".into(),
        anonymous_id: None,
        method: FunnelSignupMethod::Google,
        occurred_at: "2026-11-26T17:04:05.123Z".parse().unwrap(),
    };
    Envelope::new("crm", payload).unwrap()
}

fn dataschema<P: EventPayload>(event: &Envelope<P>) -> String {
    payload_schema_id(
        domain_events::DEFAULT_SCHEMA_ID_BASE,
        &event.event_type,
        event.version,
    )
    .unwrap()
}

/// `value`, read as a CloudEvent and decoded as `P`.
fn envelope_of<P: EventPayload>(value: &Value, what: &str) -> Envelope<P> {
    let raw = RawEnvelope::from_cloudevent(value)
        .unwrap_or_else(|e| panic!("{what}: not readable as an envelope: {e}\n{value:#}"));
    raw.decode()
        .unwrap_or_else(|e| panic!("{what}: does not decode: {e}\n{value:#}"))
}

/// Everything the SDK returned for one of our events converts back to the original envelope.
fn assert_round_trip<P: EventPayload + PartialEq + DeserializeOwned>(
    original: &Envelope<P>,
    ours: &Value,
    result: &Value,
) {
    // The SDK writes exactly what we wrote, member for member.
    assert_eq!(&result["toJSON"], ours);
    assert_eq!(&result["structured"], ours);
    assert_eq!(&result["fromStructured"], ours);
    assert_eq!(
        result["contentType"],
        "application/cloudevents+json; charset=utf-8"
    );
    for what in ["toJSON", "structured", "fromStructured", "fromBinary"] {
        assert_eq!(
            &envelope_of::<P>(&result[what], what),
            original,
            "{what} does not convert back to the original envelope"
        );
    }
}

#[test]
fn our_cloudevents_round_trip_through_the_sdk() {
    let completed = completed();
    let signup = signup();
    let ours = [
        completed
            .to_cloudevent(Some(&dataschema(&completed)))
            .unwrap(),
        signup.to_cloudevent(Some(&dataschema(&signup))).unwrap(),
        // Without the optional attributes.
        signup.to_cloudevent(None).unwrap(),
    ];
    let mut no_source = ours[1].clone();
    no_source["source"] = json!("");
    let mut bad_extension = ours[1].clone();
    bad_extension["idempotency_key"] = json!("x");
    let output = sdk(&json!({ "events": ours, "invalid": [no_source, bad_extension] }));
    assert_eq!(output["sdkVersion"], "10.0.0");

    // The SDK validates: events that break the specification are rejected.
    for rejected in output["invalid"].as_array().unwrap() {
        assert_eq!(rejected["rejected"], true, "{rejected}");
    }

    let results = output["events"].as_array().unwrap();
    assert_eq!(results.len(), 3);

    // What the SDK sees of our first event, attribute by attribute.
    let seen = &results[0]["seen"];
    let expected = json!({
        "specversion": "1.0",
        "id": completed.event_id.to_string(),
        "source": "image-generator",
        "type": "image:variation_completed",
        "time": completed.occurred_at.as_str(),
        "subject": "var-123",
        "datacontenttype": "application/json",
        "dataschema": "https://schemas.domain-events.dev/image/variation_completed.v1.payload.schema.json",
        "idempotencykey": "image_complete:var-123",
        "correlationid": "var-123",
        "causationid": completed.causation_id.unwrap().to_string(),
        "schemaversion": 1,
        "schemaversionType": "number",
        "traceparent": TRACEPARENT,
        "data": serde_json::to_value(&completed.payload).unwrap(),
    });
    assert_eq!(seen, &expected);
    assert!(results[2]["seen"].get("dataschema").is_none());
    assert!(results[2]["seen"].get("causationid").is_none());

    assert_round_trip(&completed, &ours[0], &results[0]);
    assert_round_trip(&signup, &ours[1], &results[1]);
    assert_round_trip(&signup, &ours[2], &results[2]);
}

#[test]
fn an_event_the_sdk_builds_decodes_as_the_catalog_payload() {
    let output = sdk(&json!({ "events": [] }));
    let produced = &output["produced"];
    let event = envelope_of::<ImageVariationStartedPayload>(produced, "produced");
    assert_eq!(event.event_type, "image:variation_started");
    assert_eq!(
        (event.version, event.source.as_str()),
        (1, "node-image-worker")
    );
    assert_eq!(event.correlation_id, "var-node");
    assert_eq!(event.idempotency_key, "image_started:var-node");
    assert_eq!(event.causation_id, None);
    assert_eq!(event.payload.variation_name, "Made in Node");
    assert_eq!(event.payload.family_count, 3);
    // The payload agrees with the envelope, as the emitter would have made it.
    assert_eq!(event.payload.idempotency_key(), event.idempotency_key);
    assert_eq!(event.payload.correlation_id(), event.correlation_id);
    // And converts back to the same CloudEvent.
    assert_eq!(&event.to_cloudevent(None).unwrap(), produced);
}

#[test]
fn dataschema_is_the_exported_payload_schema_id() {
    assert_eq!(
        domain_events::DEFAULT_SCHEMA_ID_BASE,
        domain_events_schema::DEFAULT_SCHEMA_ID_BASE
    );
    let event = completed();
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../schemas/json/image/variation_completed.payload.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(schema["$id"], dataschema(&event));
}
