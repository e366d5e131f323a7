//! The platform catalog (`schemas/*.toml`, compiled into `domain-events-catalog`) against
//! docs/contract.md sections 2, 3 and 7: the declared events, their payload fields, the JSON Schema
//! export in `schemas/json`, and the Rust types, checked with the samples in `tests/samples/`.
//!
//! `valid.json` maps every type string to a list of payloads (the second one, where there is one,
//! sets the optional fields); `invalid.json` lists payloads that both the exported JSON Schema and
//! the Rust types must reject, each with the reason.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use domain_events::{DecodeError, Envelope, EventInfo, EventPayload, Timestamp, Uuid};
use domain_events_catalog::{DomainEvent, DomainEventType, EVENTS};
use domain_events_schema::{Catalog, ExportSettings, export};
use serde_json::{Value, json};

/// docs/contract.md section 7, row by row: type string, payload fields (as the contract writes them),
/// idempotency-key template, correlation field. Every event is version 1.
#[rustfmt::skip]
const CONTRACT: &[(&str, &str, &str, &str)] = &[
    ("funnel:visit", "anonymousId, landingPath, referrer?, utmSource?, utmMedium?, utmCampaign?, occurredAt: ts", "funnel_visit:{anonymousId}", "anonymousId"),
    ("funnel:signup", "userId, anonymousId?, method: enum email/google/apple, occurredAt: ts", "funnel_signup:{userId}", "userId"),
    ("funnel:profile_complete", "userId, completedFields: list of string, occurredAt: ts", "funnel_profile_complete:{userId}", "userId"),
    ("funnel:first_content", "userId, contentId, contentType, occurredAt: ts", "funnel_first_content:{userId}", "userId"),
    ("funnel:subscribe", "userId, subscriptionId, planId, occurredAt: ts", "funnel_subscribe:{subscriptionId}", "userId"),
    ("funnel:purchase", "userId, paymentId, amountCents: uint, currency (pattern `^[A-Z]{3}$`), occurredAt: ts", "funnel_purchase:{userId}", "userId"),
    ("funnel:repeat_purchase", "userId, paymentId, amountCents: uint, currency (as above), purchaseNumber: uint (min 2), occurredAt: ts", "funnel_repeat_purchase:{paymentId}", "userId"),
    ("image:variation_queued", "variationId, variationName, familyCount: uint, queuedAt: ts, priority?: int", "image_queued:{variationId}", "variationId"),
    ("image:variation_started", "variationId, variationName, familyCount: uint, startedAt: ts", "image_started:{variationId}", "variationId"),
    ("image:family_completed", "variationId, variationName, familyName, familyIndex: uint, publicUrl: url, generationTimeMs: uint", "image_family:{variationId}:{familyIndex}", "variationId"),
    ("image:variation_completed", "variationId, variationName, familiesCompleted: uint, totalGenerationTimeMs: uint, publicUrls: list of url", "image_complete:{variationId}", "variationId"),
    ("image:variation_partial", "variationId, variationName, familiesCompleted: uint, familiesFailed: uint (min 1), failedFamilies: list of string, publicUrls: list of url, totalGenerationTimeMs: uint", "image_partial:{variationId}", "variationId"),
    ("image:variation_failed", "variationId, variationName, error, retryable: bool, failedAt: ts", "image_failed:{variationId}", "variationId"),
    ("email:queued", "emailLogId, templateId, recipient: email, queuedAt: ts", "email_queued:{emailLogId}", "emailLogId"),
    ("email:sending", "emailLogId, attempt: uint (min 1), startedAt: ts", "email_sending:{emailLogId}:{attempt}", "emailLogId"),
    ("email:sent", "emailLogId, providerMessageId, attempt: uint (min 1), sentAt: ts", "email_sent:{emailLogId}", "emailLogId"),
    ("email:failed", "emailLogId, attempt: uint (min 1), maxAttempts: uint (min 1), willRetry: bool, nextRetryAt?: ts, error", "email_failed:{emailLogId}:{attempt}", "emailLogId"),
    ("email:bounced", "emailLogId, recipient: email, bounceType: enum hard/soft/complaint, bouncedAt: ts", "email_bounced:{emailLogId}", "emailLogId"),
    ("seo:page_queued", "contentId, slug, locale, queuedAt: ts", "seo_queued:{contentId}", "contentId"),
    ("seo:text_generated", "contentId, locale, wordCount: uint, generationTimeMs: uint", "seo_text:{contentId}:{locale}", "contentId"),
    ("seo:images_completed", "contentId, imageUrls: list of url, generationTimeMs: uint", "seo_images:{contentId}", "contentId"),
    ("seo:content_validated", "contentId, valid: bool, issues: list of string, validatedAt: ts", "seo_validated:{contentId}", "contentId"),
    ("seo:page_completed", "contentId, slug, locales: list of string (min 1 item), publicUrl: url, completedAt: ts", "seo_complete:{contentId}", "contentId"),
    ("seo:page_failed", "contentId, stage: enum text/images/validation/translation, error, failedAt: ts", "seo_failed:{contentId}:{stage}", "contentId"),
    ("analytics:hourly_aggregation_complete", "periodStart: ts, periodEnd: ts, rowsAggregated: uint, durationMs: uint", "analytics_hourly:{periodStart}", "periodStart"),
    ("analytics:daily_aggregation_complete", "date: date, rowsAggregated: uint, durationMs: uint", "analytics_daily:{date}", "date"),
    ("system:service_healthy", "serviceName, checkedAt: ts, latencyMs: uint", "system_healthy:{serviceName}:{checkedAt}", "serviceName"),
    ("system:service_unhealthy", "serviceName, checkedAt: ts, reason, consecutiveFailures: uint (min 1)", "system_unhealthy:{serviceName}:{checkedAt}", "serviceName"),
    ("system:alert_triggered", "alertId, name, severity: enum info/warning/critical, message, triggeredAt: ts", "system_alert_triggered:{alertId}", "alertId"),
    ("system:alert_resolved", "alertId, name, resolvedAt: ts, durationMs?: uint", "system_alert_resolved:{alertId}", "alertId"),
];

/// docs/contract.md section 7: "`recipient` is sensitive" in the email category.
const SENSITIVE: &[(&str, &str)] = &[
    ("email:queued", "recipient"),
    ("email:bounced", "recipient"),
];

// ---------------------------------------------------------------------------------------------
// Decoding through `DomainEvent`, generically.

/// What the Rust types made of one envelope.
struct Decoded {
    /// The decoded envelope, serialized again.
    envelope: Value,
    /// `Debug` of the typed payload.
    debug: String,
    /// A new envelope for the typed payload, from `Envelope::new("test", payload)`.
    fresh: Result<Value, String>,
}

fn inspect<P: EventPayload>(event: &Envelope<P>) -> Decoded {
    Decoded {
        envelope: serde_json::to_value(event).unwrap(),
        debug: format!("{:?}", event.payload),
        fresh: Envelope::new("test", event.payload.clone())
            .map(|fresh| serde_json::to_value(fresh).unwrap())
            .map_err(|e| e.to_string()),
    }
}

/// `DomainEvent` has no `Serialize`; one arm per variant hands the typed envelope to [`inspect`].
/// The match is exhaustive, so a new catalog event that is missing here does not compile.
macro_rules! inspect_any {
    ($($variant:ident),* $(,)?) => {
        fn inspect_any(event: &DomainEvent) -> Decoded {
            match event {
                $(DomainEvent::$variant(e) => inspect(e),)*
            }
        }
    };
}
inspect_any!(
    FunnelVisit,
    FunnelSignup,
    FunnelProfileComplete,
    FunnelFirstContent,
    FunnelSubscribe,
    FunnelPurchase,
    FunnelRepeatPurchase,
    ImageVariationQueued,
    ImageVariationStarted,
    ImageFamilyCompleted,
    ImageVariationCompleted,
    ImageVariationPartial,
    ImageVariationFailed,
    EmailQueued,
    EmailSending,
    EmailSent,
    EmailFailed,
    EmailBounced,
    SeoPageQueued,
    SeoTextGenerated,
    SeoImagesCompleted,
    SeoContentValidated,
    SeoPageCompleted,
    SeoPageFailed,
    AnalyticsHourlyAggregationComplete,
    AnalyticsDailyAggregationComplete,
    SystemServiceHealthy,
    SystemServiceUnhealthy,
    SystemAlertTriggered,
    SystemAlertResolved,
);

/// Decodes envelope JSON with `DomainEvent::from_json`, checking the variant matches the type.
fn decode(envelope: &Value) -> Result<Decoded, DecodeError> {
    let event = DomainEvent::from_json(&serde_json::to_vec(envelope).unwrap())?;
    assert_eq!(
        event.kind().as_str(),
        envelope["type"],
        "decoded as {event:?}"
    );
    Ok(inspect_any(&event))
}

/// The envelope an emitter would send for `payload` (fixed id and time), as JSON.
fn wrap(event_type: &str, payload: &Value) -> Value {
    let info = info(event_type);
    json!({
        "eventId": "0193a6c4-7b7e-7c1e-9d0a-5f2b8e4a1c33",
        "type": event_type,
        "version": info.version,
        "occurredAt": "2026-11-26T17:04:05.123Z",
        "source": "test",
        "correlationId": correlation(event_type, payload),
        "causationId": null,
        "idempotencyKey": idempotency_key(event_type, payload),
        "payload": payload,
    })
}

/// A payload value as written: strings as they are, numbers and booleans as JSON text. Lenient on
/// purpose: a missing field renders as `<missing>`.
fn as_written(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "<missing>".to_owned(),
        other => other.to_string(),
    }
}

/// The envelope's `correlationId`: the correlation field's value as written.
fn correlation(event_type: &str, payload: &Value) -> String {
    as_written(&payload[info(event_type).correlation_field])
}

/// The envelope's `idempotencyKey` as docs/contract.md section 6 defines it: each `{field}` replaced
/// by the value's canonical text (a timestamp, known by `format: date-time` in the exported
/// payload schema, in UTC with milliseconds; a UUID lower-case), `%` written `%25` and `:` `%3A`.
fn idempotency_key(event_type: &str, payload: &Value) -> String {
    let schema = export_file(&schema_path(event_type, "payload"));
    fill(info(event_type).key_template, payload, |field, value| {
        let text = as_written(value);
        let text = match schema["properties"][field]["format"].as_str() {
            Some("date-time") => Timestamp::from_datetime(
                Timestamp::parse(text.as_str())
                    .expect("a valid timestamp")
                    .to_datetime(),
            )
            .into_string(),
            Some("uuid") => text.to_lowercase(),
            _ => text,
        };
        text.replace('%', "%25").replace(':', "%3A")
    })
}

/// A key template (`image_family:{variationId}:{familyIndex}`) filled from payload JSON, each
/// reference replaced by `value(field, json)`.
fn fill(template: &str, payload: &Value, value: impl Fn(&str, &Value) -> String) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            out.push_str(&tail[..1]);
            rest = &tail[2..];
        } else {
            let end = tail.find('}').expect("unclosed `{` in key template");
            let field = &tail[1..end];
            out.push_str(&value(field, &payload[field]));
            rest = &tail[end + 1..];
        }
    }
    out.push_str(rest);
    out
}

// ---------------------------------------------------------------------------------------------
// Samples, schemas and the export.

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `(type, payload)` for every valid sample, in file order per type.
fn valid_samples() -> Vec<(String, Value)> {
    let Value::Object(by_type) = read_json(&workspace().join("tests/samples/valid.json")) else {
        panic!("valid.json must be an object keyed by type string");
    };
    let mut samples = Vec::new();
    for (event_type, list) in by_type {
        let Value::Array(list) = list else {
            panic!("valid.json: `{event_type}` must map to a list of payloads")
        };
        samples.extend(
            list.into_iter()
                .map(|payload| (event_type.clone(), payload)),
        );
    }
    samples
}

/// `(type, payload, why)` for every invalid sample.
fn invalid_samples() -> Vec<(String, Value, String)> {
    let Value::Array(list) = read_json(&workspace().join("tests/samples/invalid.json")) else {
        panic!("invalid.json must be a list");
    };
    list.into_iter()
        .map(|case| {
            let text = |key: &str| {
                case[key]
                    .as_str()
                    .unwrap_or_else(|| panic!("invalid.json: `{key}` missing in {case}"))
                    .to_owned()
            };
            (text("type"), case["payload"].clone(), text("why"))
        })
        .collect()
}

fn info(event_type: &str) -> &'static EventInfo {
    EVENTS
        .iter()
        .find(|e| e.event_type == event_type && e.latest)
        .unwrap_or_else(|| panic!("`{event_type}` is not a catalog event"))
}

/// The export rendered in memory from `schemas/*.toml`, as the xtask writes it.
fn rendered() -> &'static BTreeMap<String, String> {
    static RENDERED: OnceLock<BTreeMap<String, String>> = OnceLock::new();
    RENDERED.get_or_init(|| {
        let catalog = Catalog::load(&workspace().join("schemas")).unwrap_or_else(|e| panic!("{e}"));
        export::render(&catalog, &ExportSettings::new())
    })
}

/// The committed export folder, when there is one.
fn committed_dir() -> Option<PathBuf> {
    let dir = workspace().join("schemas/json");
    dir.join("index.json").is_file().then_some(dir)
}

/// Every file under `dir` of a kind the export writes (`export::is_export_kind`), by path
/// relative to `dir` with `/` separators.
fn committed_files(dir: &Path) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(next) = dirs.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let rel = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                if export::is_export_kind(&rel) {
                    files.insert(rel, std::fs::read_to_string(&path).unwrap());
                }
            }
        }
    }
    files
}

/// The export the tests read: the committed folder when present (its freshness is checked by
/// `committed_export_matches_the_schemas`), else the in-memory render.
fn export_file(rel: &str) -> Value {
    match committed_dir() {
        Some(dir) => read_json(&dir.join(rel)),
        None => serde_json::from_str(
            rendered()
                .get(rel)
                .unwrap_or_else(|| panic!("the export has no `{rel}`")),
        )
        .unwrap(),
    }
}

fn schema_path(event_type: &str, kind: &str) -> String {
    let (category, name) = event_type.split_once(':').unwrap();
    format!("{category}/{name}.{kind}.schema.json")
}

fn validator(event_type: &str, kind: &str) -> jsonschema::Validator {
    let rel = schema_path(event_type, kind);
    jsonschema::options()
        .should_validate_formats(true)
        .build(&export_file(&rel))
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn schema_errors(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| format!("{} at `{}`", e, e.instance_path()))
        .collect()
}

/// `image:variation_completed` → `ImageVariationCompleted`.
fn rust_name(event_type: &str) -> String {
    event_type
        .split([':', '_'])
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// One payload field of a CONTRACT row, and the JSON Schema the contract implies for it.
fn contract_field(text: &str, previous: &BTreeMap<String, Value>) -> (String, bool, Value) {
    let (head, constraint) = match text.split_once(" (") {
        Some((head, rest)) => (head, Some(rest.strip_suffix(')').unwrap())),
        None => (text, None),
    };
    let (name, ty) = head.split_once(": ").unwrap_or((head, "string"));
    let (name, optional) = match name.strip_suffix('?') {
        Some(name) => (name, true),
        None => (name, false),
    };
    fn scalar(ty: &str, name: &str) -> Value {
        match ty {
            // "ids are non-empty strings (minLength 1)"
            "string" if name.ends_with("Id") => json!({"type": "string", "minLength": 1}),
            "string" => json!({"type": "string"}),
            "ts" => json!({"type": "string", "format": "date-time"}),
            "date" => json!({"type": "string", "format": "date"}),
            "url" => json!({"type": "string", "format": "uri"}),
            "email" => json!({"type": "string", "format": "email"}),
            "uint" => json!({"type": "integer", "minimum": 0}),
            "int" => json!({"type": "integer"}),
            "bool" => json!({"type": "boolean"}),
            _ => match ty.strip_prefix("enum ") {
                Some(values) => {
                    json!({"type": "string", "enum": values.split('/').collect::<Vec<_>>()})
                }
                None => panic!("contract type `{ty}` of `{name}` not understood"),
            },
        }
    }
    let mut schema = match ty.strip_prefix("list of ") {
        Some(item) => json!({"type": "array", "items": scalar(item, "")}),
        None => scalar(ty, name),
    };
    match constraint {
        None => {}
        Some("as above") => schema = previous[name].clone(),
        Some("min 1 item") => schema["minItems"] = json!(1),
        Some(c) if c.starts_with("min ") => {
            schema["minimum"] = json!(c[4..].parse::<u64>().unwrap())
        }
        Some(c) if c.starts_with("pattern `") => schema["pattern"] = json!(c[9..c.len() - 1]),
        Some(c) => panic!("contract constraint `{c}` not understood"),
    }
    (name.to_owned(), optional, schema)
}

/// Removes what the contract does not state (descriptions, deprecation) from a property schema.
fn without_docs(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "description" | "deprecated"))
                .map(|(k, v)| (k.clone(), without_docs(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn assert_no_failures(failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{} failure(s):\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Tests.

#[test]
fn the_catalog_declares_exactly_the_contract_events() {
    let declared: Vec<_> = EVENTS
        .iter()
        .map(|e| {
            (
                e.event_type,
                e.category,
                e.name,
                e.version,
                e.latest,
                e.key_template,
                e.correlation_field,
                e.deprecated,
            )
        })
        .collect();
    let expected: Vec<_> = CONTRACT
        .iter()
        .map(|&(event_type, _, key, correlation)| {
            let (category, name) = event_type.split_once(':').unwrap();
            (event_type, category, name, 1, true, key, correlation, false)
        })
        .collect();
    let sorted = |mut v: Vec<_>| {
        v.sort();
        v
    };
    assert_eq!(sorted(declared), sorted(expected));

    assert_eq!(DomainEventType::ALL.len(), CONTRACT.len());
    for &(event_type, ..) in CONTRACT {
        let kind: DomainEventType = event_type.parse().unwrap();
        assert_eq!(kind.as_str(), event_type);
        assert_eq!(kind.version(), 1);
        assert_eq!(
            format!("{kind:?}"),
            rust_name(event_type),
            "DomainEventType variant of `{event_type}`"
        );
        assert_eq!(
            (kind.category(), kind.name()),
            event_type.split_once(':').unwrap()
        );
        assert_eq!(kind.info(), info(event_type));
    }
}

#[test]
fn payload_schemas_declare_the_contract_fields() {
    let mut failures = Vec::new();
    let mut previous = BTreeMap::new();
    for &(event_type, fields, ..) in CONTRACT {
        let rel = schema_path(event_type, "payload");
        let schema = export_file(&rel);
        let mut expected_properties = BTreeMap::new();
        let mut expected_required = BTreeSet::new();
        for text in fields.split(", ") {
            let (name, optional, field_schema) = contract_field(text, &previous);
            previous.insert(name.clone(), field_schema.clone());
            if !optional {
                expected_required.insert(name.clone());
            }
            expected_properties.insert(name, field_schema);
        }
        let properties: BTreeMap<String, Value> = schema["properties"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), without_docs(v)))
            .collect();
        if properties != expected_properties {
            failures.push(format!(
                "{rel}: properties\n  are      {properties:?}\n  expected {expected_properties:?}"
            ));
        }
        let required: BTreeSet<String> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        if required != expected_required {
            failures.push(format!(
                "{rel}: required is {required:?}, expected {expected_required:?}"
            ));
        }
        // docs/contract.md section 3: `$schema`, `$id`, `title`, `description`; open content model.
        if schema["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
            failures.push(format!("{rel}: $schema is {}", schema["$schema"]));
        }
        if !schema["$id"]
            .as_str()
            .is_some_and(|id| id.ends_with(".payload.schema.json"))
        {
            failures.push(format!("{rel}: $id is {}", schema["$id"]));
        }
        if schema["title"] != format!("{}Payload", rust_name(event_type)) {
            failures.push(format!("{rel}: title is {}", schema["title"]));
        }
        if schema["description"] != info(event_type).description || schema["description"] == "" {
            failures.push(format!("{rel}: description is {}", schema["description"]));
        }
        if schema["type"] != "object"
            || schema
                .get("additionalProperties")
                .is_some_and(|a| a == false)
        {
            failures.push(format!("{rel}: not an open object schema"));
        }
    }
    assert_no_failures(failures);
}

#[test]
fn samples_cover_every_event_and_every_optional_field() {
    let valid = valid_samples();
    let mut failures = Vec::new();
    for &(event_type, ..) in CONTRACT {
        let schema = export_file(&schema_path(event_type, "payload"));
        let all: BTreeSet<&str> = schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let samples: Vec<_> = valid
            .iter()
            .filter(|(t, _)| t == event_type)
            .map(|(_, p)| p)
            .collect();
        if samples.is_empty() {
            failures.push(format!("no valid sample of `{event_type}`"));
        }
        if !samples
            .iter()
            .any(|p| all.iter().all(|field| p.get(*field).is_some()))
        {
            failures.push(format!(
                "no valid sample of `{event_type}` sets every field, optional ones included"
            ));
        }
    }
    let invalid = invalid_samples();
    let sample_types = valid
        .iter()
        .map(|(t, _)| t)
        .chain(invalid.iter().map(|(t, ..)| t));
    for event_type in sample_types {
        if !CONTRACT.iter().any(|c| c.0 == event_type) {
            failures.push(format!("sample of unknown type `{event_type}`"));
        }
    }
    if invalid.len() < 15 {
        failures.push(format!("only {} invalid samples", invalid.len()));
    }
    assert_no_failures(failures);
}

#[test]
fn valid_samples_pass_the_schema_and_round_trip_through_the_rust_types() {
    let mut failures = Vec::new();
    for (i, (event_type, payload)) in valid_samples().iter().enumerate() {
        let label = format!("valid.json `{event_type}` sample {i}");
        let errors = schema_errors(&validator(event_type, "payload"), payload);
        if !errors.is_empty() {
            failures.push(format!("{label}: payload schema rejects it: {errors:?}"));
        }
        let envelope = wrap(event_type, payload);
        let errors = schema_errors(&validator(event_type, "event"), &envelope);
        if !errors.is_empty() {
            failures.push(format!(
                "{label}: event schema rejects its envelope: {errors:?}"
            ));
        }
        match decode(&envelope) {
            Ok(decoded) if decoded.envelope == envelope => {}
            Ok(decoded) => failures.push(format!(
                "{label}: re-serialized as\n  {}\nexpected\n  {envelope}",
                decoded.envelope
            )),
            Err(e) => failures.push(format!("{label}: DomainEvent::from_json fails: {e}")),
        }
    }
    assert_no_failures(failures);
}

#[test]
fn invalid_samples_are_rejected_by_the_schema_and_the_rust_types() {
    let mut failures = Vec::new();
    for (event_type, payload, why) in invalid_samples() {
        let label = format!("invalid.json `{event_type}` ({why})");
        if schema_errors(&validator(&event_type, "payload"), &payload).is_empty() {
            failures.push(format!("{label}: the payload schema accepts {payload}"));
        }
        let envelope = wrap(&event_type, &payload);
        if schema_errors(&validator(&event_type, "event"), &envelope).is_empty() {
            failures.push(format!("{label}: the event schema accepts the envelope"));
        }
        match decode(&envelope) {
            Err(DecodeError::InvalidPayload { .. }) => {}
            Err(other) => failures.push(format!("{label}: rejected for the wrong reason: {other}")),
            Ok(decoded) => failures.push(format!(
                "{label}: the Rust types accept it as {}",
                decoded.envelope["payload"]
            )),
        }
    }
    assert_no_failures(failures);
}

#[test]
fn unknown_fields_are_tolerated_by_the_schema_and_the_rust_types() {
    // docs/contract.md section 2: open content model for envelope and payload.
    let mut failures = Vec::new();
    for (event_type, payload) in valid_samples() {
        let mut extended = payload.clone();
        extended["addedLater"] = json!({"anything": [1, "two"]});
        let mut envelope = wrap(&event_type, &extended);
        envelope["addedToTheEnvelope"] = json!(true);
        if !schema_errors(&validator(&event_type, "payload"), &extended).is_empty()
            || !schema_errors(&validator(&event_type, "event"), &envelope).is_empty()
        {
            failures.push(format!("`{event_type}`: the schema rejects unknown fields"));
        }
        match decode(&envelope) {
            Ok(decoded) if decoded.envelope == wrap(&event_type, &payload) => {}
            Ok(decoded) => failures.push(format!(
                "`{event_type}`: unknown fields kept or other fields changed: {}",
                decoded.envelope
            )),
            Err(e) => failures.push(format!("`{event_type}`: unknown fields rejected: {e}")),
        }
    }
    assert_no_failures(failures);
}

#[test]
fn envelopes_built_from_valid_samples_match_the_contract_and_the_event_schema() {
    let now_ms = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as i128
    };
    let mut failures = Vec::new();
    let mut event_ids = Vec::new();
    for (i, (event_type, payload)) in valid_samples().iter().enumerate() {
        let label = format!("valid.json `{event_type}` sample {i}");
        let info = info(event_type);
        let before = now_ms();
        let decoded = decode(&wrap(event_type, payload)).unwrap_or_else(|e| panic!("{label}: {e}"));
        let fresh = decoded
            .fresh
            .unwrap_or_else(|e| panic!("{label}: Envelope::new fails: {e}"));
        let after = now_ms();

        let errors = schema_errors(&validator(event_type, "event"), &fresh);
        if !errors.is_empty() {
            failures.push(format!("{label}: event schema rejects {fresh}: {errors:?}"));
        }

        let event_id = fresh["eventId"].as_str().unwrap_or_default();
        match Uuid::parse_str(event_id) {
            Ok(id) if id.get_version_num() == 7 && id.hyphenated().to_string() == event_id => {
                event_ids.push(id)
            }
            _ => failures.push(format!(
                "{label}: eventId `{event_id}` is not a lower-case hyphenated UUID v7"
            )),
        }

        // RFC 3339 UTC with milliseconds: `2026-11-26T17:04:05.123Z`, at the time of building.
        let occurred_at = fresh["occurredAt"].as_str().unwrap_or_default();
        let shape_ok = occurred_at.len() == 24
            && occurred_at.ends_with('Z')
            && occurred_at.as_bytes()[10] == b'T'
            && occurred_at.as_bytes()[19] == b'.'
            && occurred_at[20..23].bytes().all(|b| b.is_ascii_digit());
        match occurred_at.parse::<Timestamp>() {
            Ok(at) if shape_ok => {
                let at = at.to_datetime().unix_timestamp_nanos() / 1_000_000;
                if !(before..=after).contains(&at) {
                    failures.push(format!(
                        "{label}: occurredAt `{occurred_at}` is not the time of building"
                    ));
                }
            }
            _ => failures.push(format!(
                "{label}: occurredAt `{occurred_at}` is not RFC 3339 UTC with milliseconds"
            )),
        }

        let expected = json!({
            "type": event_type,
            "version": info.version,
            "source": "test",
            "correlationId": correlation(event_type, payload),
            "causationId": null,
            "idempotencyKey": idempotency_key(event_type, payload),
            "payload": payload,
        });
        let mut rest = fresh.clone();
        for generated in ["eventId", "occurredAt"] {
            rest.as_object_mut().unwrap().remove(generated);
        }
        if rest != expected {
            failures.push(format!(
                "{label}: Envelope::new gives\n  {rest}\nexpected\n  {expected}"
            ));
        }
    }
    // "new for every emission (time-ordered)"
    if !event_ids.windows(2).all(|w| w[0] < w[1]) {
        failures.push(format!(
            "eventIds are not unique and increasing: {event_ids:?}"
        ));
    }
    assert_no_failures(failures);
}

#[test]
fn sensitive_fields_are_listed_and_redacted() {
    let index = export_file("index.json");
    let mut failures = Vec::new();
    for entry in index["events"].as_array().unwrap() {
        let event_type = entry["type"].as_str().unwrap();
        let expected: Vec<&str> = SENSITIVE
            .iter()
            .filter(|(t, _)| *t == event_type)
            .map(|(_, f)| *f)
            .collect();
        if entry["sensitiveFields"] != json!(expected) {
            failures.push(format!(
                "index.json `{event_type}`: sensitiveFields is {}, expected {expected:?}",
                entry["sensitiveFields"]
            ));
        }
    }
    for (event_type, payload) in valid_samples() {
        let decoded = decode(&wrap(&event_type, &payload)).unwrap();
        for &(_, field) in SENSITIVE.iter().filter(|(t, _)| *t == event_type) {
            let secret = payload[field].as_str().unwrap();
            if decoded.debug.contains(secret) || !decoded.debug.contains("[redacted]") {
                failures.push(format!(
                    "`{event_type}`: Debug shows `{field}`: {}",
                    decoded.debug
                ));
            }
        }
    }
    assert_no_failures(failures);
}

#[test]
fn index_lists_every_event_with_existing_schema_files() {
    let index = export_file("index.json");
    let entries = index["events"]
        .as_array()
        .expect("index.json: `events` is a list");
    assert_eq!(entries.len(), EVENTS.len());
    assert_eq!(entries.len(), 30);
    let mut failures = Vec::new();
    for (entry, info) in entries.iter().zip(EVENTS) {
        let expected = json!({
            "type": info.event_type,
            "category": info.category,
            "name": info.name,
            "version": info.version,
            "latest": info.latest,
            "deprecated": info.deprecated,
            "idempotencyKey": info.key_template,
            "correlationField": info.correlation_field,
            "payloadSchema": schema_path(info.event_type, "payload"),
            "eventSchema": schema_path(info.event_type, "event"),
        });
        // Only the fields the contract names (and `latest`, `deprecated`); the index may say more.
        let stated: serde_json::Map<String, Value> = expected
            .as_object()
            .unwrap()
            .keys()
            .filter_map(|key| Some((key.clone(), entry.get(key)?.clone())))
            .collect();
        let stated = Value::Object(stated);
        if stated != expected {
            failures.push(format!(
                "index.json entry\n  {stated}\nexpected (from EVENTS)\n  {expected}"
            ));
        }
        for kind in ["payloadSchema", "eventSchema"] {
            let rel = entry[kind].as_str().unwrap_or_default();
            let exists = match committed_dir() {
                Some(dir) => dir.join(rel).is_file(),
                None => rendered().contains_key(rel),
            };
            if !exists {
                failures.push(format!(
                    "index.json `{}`: {kind} `{rel}` does not exist",
                    info.event_type
                ));
            }
        }
        // docs/contract.md section 3: the event schema states `type` and `version` as `const`s and
        // holds the payload schema.
        let event_schema = export_file(&schema_path(info.event_type, "event"));
        let payload_schema = export_file(&schema_path(info.event_type, "payload"));
        let properties = &event_schema["properties"];
        if properties["type"]["const"] != info.event_type
            || properties["version"]["const"] != info.version
        {
            failures.push(format!("{}: type/version are not consts", info.event_type));
        }
        if properties["payload"]["properties"] != payload_schema["properties"]
            || properties["payload"]["required"] != payload_schema["required"]
        {
            failures.push(format!(
                "{}: the event schema's payload differs from the payload schema",
                info.event_type
            ));
        }
        if event_schema["title"] != format!("{}Event", rust_name(info.event_type)) {
            failures.push(format!(
                "{}: event schema title is {}",
                info.event_type, event_schema["title"]
            ));
        }
    }
    assert_no_failures(failures);
}

#[test]
fn committed_export_matches_the_schemas() {
    let Some(dir) = committed_dir() else {
        eprintln!("schemas/json has no index.json yet: nothing to compare");
        return;
    };
    let committed = committed_files(&dir);
    let rendered = rendered();
    let mut failures = Vec::new();
    for (rel, text) in rendered {
        match committed.get(rel) {
            None => failures.push(format!("schemas/json/{rel} is missing")),
            Some(existing) if existing != text => {
                failures.push(format!("schemas/json/{rel} differs from the render"))
            }
            Some(_) => {}
        }
    }
    for rel in committed.keys().filter(|rel| !rendered.contains_key(*rel)) {
        failures.push(format!(
            "schemas/json/{rel} is stale: the schemas no longer produce it"
        ));
    }
    if !failures.is_empty() {
        failures.push("run `cargo xtask schema export` to update schemas/json".into());
    }
    assert_no_failures(failures);
}

// ---------------------------------------------------------------------------------------------
// Idempotency keys are unambiguous (README "Idempotency keys").

fn seo_text(content_id: &str, locale: &str) -> domain_events_catalog::SeoTextGeneratedPayload {
    domain_events_catalog::SeoTextGeneratedPayload {
        content_id: content_id.into(),
        locale: locale.into(),
        word_count: 800,
        generation_time_ms: 1200,
    }
}

#[test]
fn payloads_that_differ_only_in_where_a_colon_falls_get_different_keys() {
    let a = seo_text("post:42", "en").idempotency_key();
    let b = seo_text("post", "42:en").idempotency_key();
    assert_ne!(a, b, "two different payloads share one idempotency key");
    assert_eq!(a, "seo_text:post%3A42:en");
    assert_eq!(b, "seo_text:post:42%3Aen");
    // Values without `%` or `:` keep the keys they had.
    assert_eq!(
        seo_text("post-42", "en").idempotency_key(),
        "seo_text:post-42:en"
    );
    let completed = domain_events_catalog::ImageVariationCompletedPayload {
        variation_id: "var-123".into(),
        variation_name: "hero".into(),
        families_completed: 3,
        total_generation_time_ms: 9000,
        public_urls: Vec::new(),
    };
    assert_eq!(completed.idempotency_key(), "image_complete:var-123");
}

#[test]
fn one_instant_written_three_ways_gets_one_key() {
    let hourly =
        |period_start: &str| domain_events_catalog::AnalyticsHourlyAggregationCompletePayload {
            period_start: Timestamp::parse(period_start).unwrap(),
            period_end: Timestamp::parse("2026-11-26T17:00:00Z").unwrap(),
            rows_aggregated: 10,
            duration_ms: 5,
        };
    let keys: BTreeSet<String> = [
        "2026-11-26T16:00:00Z",
        "2026-11-26T17:00:00+01:00",
        "2026-11-26T16:00:00.000Z",
    ]
    .into_iter()
    .map(|at| hourly(at).idempotency_key())
    .collect();
    assert_eq!(
        keys,
        BTreeSet::from(["analytics_hourly:2026-11-26T16%3A00%3A00.000Z".to_owned()])
    );
    // The payload and the correlation id keep the text as written.
    let payload = hourly("2026-11-26T17:00:00+01:00");
    assert_eq!(payload.period_start.as_str(), "2026-11-26T17:00:00+01:00");
    assert_eq!(payload.correlation_id(), "2026-11-26T17:00:00+01:00");
}
