//! `domain-events emit`: validate a JSON payload against its schema and publish one event.
//!
//! Works with any schema folder: the event is looked up by its type string, the payload is checked
//! against the JSON Schema that `export` writes for it, and the envelope is built the way the
//! runtime's emitter builds it (same struct, same serialization), so consumers cannot tell the
//! difference.

use std::borrow::Cow;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::builder::NonEmptyStringValueParser;
use domain_events::{
    DEFAULT_EMIT_TIMEOUT, OutgoingEvent, PublishOutcome, RawEnvelope, Timestamp, Transport,
    TransportError, Uuid, is_valid_traceparent, write_key_part,
};
use domain_events_schema::model::{Catalog, Event, EventVersion, FieldType};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::payload_check::{payload_validator, problems};
use crate::redis_args::{block_on, compact_json, event_infos};
use crate::{Error, RedisArgs, SchemaArgs, TransportArgs, say};

/// How many close matches an unknown type's message lists at most.
const SUGGESTIONS: usize = 3;

/// The options of `domain-events emit` (its help text is on [`crate::Command::Emit`]).
#[derive(Debug, Clone, clap::Args)]
#[command(group = clap::ArgGroup::new("payload_input").required(true).multiple(false))]
pub struct EmitArgs {
    /// Where to publish.
    #[command(flatten)]
    pub redis: RedisArgs,

    /// Redis Streams or BullMQ.
    #[command(flatten)]
    pub transport: TransportArgs,

    /// The schema folder.
    #[command(flatten)]
    pub schema: SchemaArgs,

    /// The emitting service: the envelope's `source`
    #[arg(long, value_name = "NAME", value_parser = NonEmptyStringValueParser::new())]
    pub source: String,

    /// The event type, `<category>:<name>`; its latest version is emitted
    #[arg(long = "type", value_name = "TYPE")]
    pub event_type: String,

    /// The payload, a JSON object, on the command line (up to about 128 KiB)
    #[arg(long, value_name = "JSON", group = "payload_input")]
    pub payload: Option<String>,

    /// Read the payload from a file instead, `-` for standard input (any size)
    #[arg(long, value_name = "PATH", group = "payload_input")]
    pub payload_file: Option<PathBuf>,

    /// The eventId of the event that caused this one: the envelope's `causationId`
    #[arg(long, value_name = "UUID")]
    pub causation_id: Option<Uuid>,

    /// W3C trace context of the emitting span: `00-<32 hex>-<16 hex>-<2 hex>`
    #[arg(long, value_name = "TRACEPARENT", value_parser = parse_traceparent)]
    pub traceparent: Option<String>,
}

/// The one line `emit` prints.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Report<'a> {
    event_id: Uuid,
    #[serde(rename = "type")]
    event_type: &'a str,
    idempotency_key: &'a str,
    duplicate: bool,
    /// On a duplicate: the event that holds the key's claim, if the transport says.
    #[serde(skip_serializing_if = "Option::is_none")]
    existing_event_id: Option<Uuid>,
}

pub(crate) fn run(args: &EmitArgs, out: &mut dyn Write) -> Result<ExitCode, Error> {
    let catalog = args.schema.load()?;
    let event = find_event(&catalog, &args.event_type, args)?;
    let payload = payload_text(args)?;
    let outgoing = envelope(&catalog, event, &payload, args)?;
    let redis_streams = !args.transport.selects_bullmq()?;
    let events = event_infos(&catalog, &[&event.category]);

    let outcome = block_on(async {
        // Everything before is transport-agnostic. On Redis Streams the event goes to the
        // partition the services' producers would pick, by the count Redis records.
        let config = if redis_streams {
            args.redis.partitioned_config(&events).await?
        } else {
            args.redis.config()?
        };
        let transport = args.transport.transport(&args.redis, config)?;
        publish(transport.as_ref(), &outgoing).await
    })??;

    let (duplicate, existing_event_id) = match outcome {
        PublishOutcome::Published => (false, None),
        PublishOutcome::Duplicate { existing_event_id } => (true, existing_event_id),
    };
    let report = Report {
        event_id: outgoing.event_id,
        event_type: outgoing.event_type,
        idempotency_key: &outgoing.idempotency_key,
        duplicate,
        existing_event_id,
    };
    let line = serde_json::to_string(&report).map_err(|e| Error::Output(e.into()))?;
    say(out, format_args!("{line}"))?;
    Ok(ExitCode::SUCCESS)
}

/// The event whose type string is `event_type`, or an error naming close matches.
fn find_event<'a>(
    catalog: &'a Catalog,
    event_type: &str,
    args: &EmitArgs,
) -> Result<&'a Event, Error> {
    if let Some(event) = catalog.events().find(|e| e.type_string == event_type) {
        return Ok(event);
    }
    let wanted = event_type.to_lowercase();
    // Compare with the whole type and with its name alone, so that a missing or wrong category
    // (`variation_completed`, `img:variation_completed`) still finds the event.
    let wanted_name = wanted.rsplit(':').next().unwrap_or(&wanted);
    let mut scored: Vec<(f64, &str)> = catalog
        .events()
        .map(|e| {
            let whole = strsim::normalized_damerau_levenshtein(&wanted, &e.type_string);
            let name = strsim::normalized_damerau_levenshtein(wanted_name, &e.name);
            (whole.max(name), e.type_string.as_str())
        })
        .filter(|(score, _)| *score >= 0.6)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    // Only those about as close as the best: a near-exact typo names one type, not its cousins.
    let best = scored.first().map_or(0.0, |(score, _)| *score);
    scored.retain(|(score, _)| *score >= best - 0.15);
    Err(Error::UnknownEventType {
        event_type: event_type.to_owned(),
        dir: args.schema.schemas.clone(),
        suggestions: scored
            .into_iter()
            .take(SUGGESTIONS)
            .map(|(_, t)| t.to_owned())
            .collect(),
        declared: catalog.events().count(),
    })
}

/// The payload's text: `--payload`, or what `--payload-file` names (`-`: standard input).
fn payload_text(args: &EmitArgs) -> Result<Cow<'_, str>, Error> {
    match (&args.payload, &args.payload_file) {
        (Some(inline), _) => Ok(Cow::Borrowed(inline)),
        (None, Some(path)) if path == Path::new("-") => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|source| Error::PayloadFile {
                    from: "standard input".into(),
                    source,
                })?;
            Ok(Cow::Owned(text))
        }
        (None, Some(path)) => std::fs::read_to_string(path)
            .map(Cow::Owned)
            .map_err(|source| Error::PayloadFile {
                from: format!("`{}`", path.display()),
                source,
            }),
        // clap requires one of the two; an empty payload is reported as not JSON.
        (None, None) => Ok(Cow::Borrowed("")),
    }
}

/// Validates the payload and builds the event to publish: the envelope JSON and its routing.
fn envelope(
    catalog: &Catalog,
    event: &Event,
    payload_text: &str,
    args: &EmitArgs,
) -> Result<OutgoingEvent, Error> {
    let version = event.latest();
    let payload: Value = serde_json::from_str(payload_text).map_err(Error::PayloadNotJson)?;

    let validator = payload_validator(catalog, event, version)?;
    let mut problems = problems(&validator, &payload);
    // The schema requires every field a key or the correlation id uses, and allows only values
    // with a text form there; these cannot fail for a valid payload.
    let key = version
        .key
        .render(&payload, |name, value| key_value(version, name, value));
    let correlation_id = version.correlation_id(&payload);
    if problems.is_empty() && key.is_none() {
        problems.push(format!(
            "the idempotency key `{}` cannot be filled from the payload",
            version.key.source
        ));
    }
    if problems.is_empty() && correlation_id.is_none() {
        problems.push(format!(
            "the correlation field `{}` has no text value",
            version.correlation
        ));
    }
    let (Some(idempotency_key), Some(correlation_id), true) =
        (key, correlation_id, problems.is_empty())
    else {
        return Err(Error::InvalidPayload {
            event_type: event.type_string.clone(),
            version: version.version,
            problems,
        });
    };

    // The payload goes into the envelope as written (key order, number text), on one line.
    let payload =
        RawValue::from_string(compact_json(payload_text)).map_err(|e| Error::Output(e.into()))?;
    let envelope = RawEnvelope {
        event_id: Uuid::now_v7(),
        event_type: event.type_string.clone(),
        version: version.version,
        occurred_at: Timestamp::now(),
        source: args.source.clone(),
        correlation_id,
        causation_id: args.causation_id,
        idempotency_key,
        traceparent: args.traceparent.clone(),
        payload,
    };
    let json = serde_json::to_string(&envelope).map_err(|e| Error::Output(e.into()))?;
    Ok(OutgoingEvent {
        // `OutgoingEvent` names the type and category as `&'static str`, as generated payloads
        // have them; changing that would touch every transport and the emitter's hot path. This
        // process emits one event and exits, so leaking these two short strings costs nothing.
        event_type: Box::leak(event.type_string.clone().into_boxed_str()),
        category: Box::leak(event.category.clone().into_boxed_str()),
        event_id: envelope.event_id,
        idempotency_key: envelope.idempotency_key,
        correlation_id: envelope.correlation_id,
        json: Arc::from(json),
    })
}

/// The text a key template's `{name}` holds for `value`, as generated code writes it: the value
/// read into the runtime's type for the field's schema type, written canonically and escaped by
/// [`write_key_part`]. `None` when the value does not have that type.
fn key_value(version: &EventVersion, name: &str, value: &Value) -> Option<String> {
    let mut out = String::new();
    match (&version.field(name)?.ty, value) {
        (FieldType::Timestamp, Value::String(text)) => {
            write_key_part(&Timestamp::parse(text.as_str()).ok()?, &mut out)
        }
        (FieldType::Uuid, Value::String(text)) => {
            write_key_part(&Uuid::parse_str(text).ok()?, &mut out)
        }
        (FieldType::Int, Value::Number(n)) => write_key_part(&n.as_i64()?, &mut out),
        (FieldType::UInt, Value::Number(n)) => write_key_part(&n.as_u64()?, &mut out),
        (FieldType::Bool, Value::Bool(flag)) => write_key_part(flag, &mut out),
        // Strings, dates, URLs, emails and enum values: the text as given.
        (
            FieldType::String
            | FieldType::Date
            | FieldType::Url
            | FieldType::Email
            | FieldType::Named(_),
            Value::String(text),
        ) => write_key_part(text.as_str(), &mut out),
        _ => return None,
    }
    Some(out)
}

/// Publishes one event within the emitter's default timeout.
async fn publish(
    transport: &dyn Transport,
    event: &OutgoingEvent,
) -> Result<PublishOutcome, Error> {
    let failed = |source| Error::Publish {
        event_type: event.event_type.to_owned(),
        source,
    };
    let published = tokio::time::timeout(
        DEFAULT_EMIT_TIMEOUT,
        transport.publish(std::slice::from_ref(event)),
    )
    .await
    .map_err(|_| {
        failed(TransportError::unavailable(format!(
            "no answer from {} within {DEFAULT_EMIT_TIMEOUT:?}; the event may or may not have been appended",
            transport.name()
        )))
    })?
    .map_err(failed)?;
    match published.as_slice() {
        [outcome] => Ok(*outcome),
        other => Err(failed(TransportError::other(format!(
            "transport `{}` returned {} outcomes for 1 event",
            transport.name(),
            other.len()
        )))),
    }
}

/// Accepts a valid version-00 `traceparent` only (the runtime would silently drop another).
fn parse_traceparent(value: &str) -> Result<String, String> {
    if is_valid_traceparent(value) {
        Ok(value.to_owned())
    } else {
        Err("expected `00-<32 lowercase hex>-<16 lowercase hex>-<2 lowercase hex>`, ids not all zero".into())
    }
}
