//! `asyncapi.json`: an AsyncAPI 3.0.0 document of a catalog, for teams whose tools read AsyncAPI
//! (catalogues, code generators, AsyncAPI Studio).
//!
//! - one server, `redis` (protocol `redis`, host from [`ExportSettings::redis_host`]);
//! - one channel per category: the category's Redis stream, address
//!   `<prefix>:{<category>}` (docs/contract.md section 4);
//! - one channel `bullmqQueue` for the BullMQ queue, address `<bullmq prefix>:<queue>`
//!   (docs/contract.md section 5);
//! - one message per event version (component key `ImageVariationCompleted`, older versions
//!   `ImageVariationCompletedV1`), whose payload is the whole envelope;
//! - a `send` and a `receive` operation per channel (`image.send`, `image.receive`,
//!   `bullmqQueue.send`, `bullmqQueue.receive`).
//!
//! The Redis bindings are empty objects, as the Redis binding (version 0.1.0) reserves them;
//! stream and BullMQ details are in descriptions and `x-` extensions. Message payloads are the
//! envelope schemas of [`json_schema::event_schema`], down-levelled from JSON Schema draft 2020-12
//! to the AsyncAPI Schema Object (draft-07 based) by [`downlevel`], because AsyncAPI parsers accept
//! only AsyncAPI and draft-07 schemas.

use serde_json::{Map, Value, json};

use crate::export::ExportSettings;
use crate::json_schema;
use crate::model::{Catalog, Category, Event, EventVersion};

/// The AsyncAPI version of the document.
pub const ASYNCAPI_VERSION: &str = "3.0.0";

/// The id of the server in `servers`.
pub const SERVER_ID: &str = "redis";

/// The id of the BullMQ channel in `channels`. It has an upper-case letter, so it never equals a
/// category channel's id (categories are lower snake_case).
pub const BULLMQ_CHANNEL_ID: &str = "bullmqQueue";

/// The Redis key of a category's stream: `<prefix>:{<category>}` (docs/contract.md section 4).
pub fn stream_key(settings: &ExportSettings, category: &str) -> String {
    format!("{}:{{{category}}}", settings.key_prefix)
}

/// The key of a message in `components.messages` and in its channels: the Rust name of the event
/// version (`ImageVariationCompleted`, `ImageVariationCompletedV1`).
pub fn message_id(event: &Event, version: &EventVersion) -> String {
    event.version_prefix(version)
}

/// The AsyncAPI document of `catalog`.
pub fn document(catalog: &Catalog, settings: &ExportSettings) -> Value {
    let mut channels = Map::new();
    let mut operations = Map::new();
    let mut messages = Map::new();

    for category in &catalog.categories {
        let refs = category_messages(category);
        channels.insert(
            category.name.clone(),
            stream_channel(settings, category, &refs),
        );
        insert_operations(
            &mut operations,
            &category.name,
            &refs,
            &stream_operations(category),
        );
        for event in &category.events {
            for version in &event.versions {
                messages.insert(
                    message_id(event, version),
                    message(catalog, settings, event, version),
                );
            }
        }
    }

    let all: Vec<String> = catalog
        .events()
        .flat_map(|e| e.versions.iter().map(move |v| message_id(e, v)))
        .collect();
    channels.insert(BULLMQ_CHANNEL_ID.into(), bullmq_channel(settings, &all));
    insert_operations(
        &mut operations,
        BULLMQ_CHANNEL_ID,
        &all,
        &bullmq_operations(settings),
    );

    let events = catalog.events().count();
    let categories = catalog.categories.len();
    json!({
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": settings.title,
            "version": settings.api_version,
            "description": format!(
                "The domain events of {title}: {events} {e} in {categories} {c}. Every message is \
                 the JSON envelope of one event version (`eventId`, `type`, `version`, \
                 `occurredAt`, `source`, `correlationId`, `causationId`, `idempotencyKey`, \
                 `traceparent`, `payload`); readers ignore fields they do not know. Events travel \
                 on one Redis stream per category, or as jobs of the BullMQ queue `{queue}`.",
                title = settings.title,
                e = if events == 1 { "event" } else { "events" },
                c = if categories == 1 { "category" } else { "categories" },
                queue = settings.bullmq_queue,
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            SERVER_ID: {
                "host": settings.redis_host,
                "protocol": "redis",
                "description": "The Redis server holding the category streams and the BullMQ queue.",
                "bindings": { "redis": {} },
            },
        },
        "channels": channels,
        "operations": operations,
        "components": { "messages": messages },
    })
}

/// The component keys of every message of a category, in file order.
fn category_messages(category: &Category) -> Vec<String> {
    category
        .events
        .iter()
        .flat_map(|e| e.versions.iter().map(move |v| message_id(e, v)))
        .collect()
}

/// `{"Name": {"$ref": "#/components/messages/Name"}, ...}`.
fn channel_messages(ids: &[String]) -> Value {
    let map: Map<String, Value> = ids
        .iter()
        .map(|id| {
            (
                id.clone(),
                json!({ "$ref": format!("#/components/messages/{id}") }),
            )
        })
        .collect();
    Value::Object(map)
}

fn stream_channel(settings: &ExportSettings, category: &Category, messages: &[String]) -> Value {
    let key = stream_key(settings, &category.name);
    let name = &category.name;
    let mut description = format!(
        "The Redis stream `{key}` of the `{name}` category. Each entry has two fields: `type` \
         (the event's type string) and `event` (the envelope JSON). A producer appends the entry \
         (trimmed with `MAXLEN ~`) and claims `{key}:idem:<idempotencyKey>` in one atomic step, so \
         a second emission of the same key adds no entry. Consumers read it through one Redis \
         consumer group per consuming service and acknowledge an entry only after their handler \
         succeeded; entries that keep failing or cannot be read go to the dead-letter stream \
         `{key}:dlq:<group>`. The braces are part of the key: they are a Redis Cluster hash tag \
         that keeps every key of the category in one slot."
    );
    if let Some(d) = &category.description {
        description = format!("{d}\n\n{description}");
    }
    json!({
        "address": key,
        "title": format!("{name} events"),
        "summary": format!("The Redis stream of the `{name}` category."),
        "description": description,
        "servers": [{ "$ref": format!("#/servers/{SERVER_ID}") }],
        // `{<category>}` in the address reads as a parameter expression; the parameter's only
        // value is the braced text itself, so substituting it gives back the real key.
        "parameters": {
            name.clone(): {
                "description": format!(
                    "Not a variable: `{{{name}}}` is the Redis Cluster hash tag inside the literal \
                     stream key `{key}`; its only value is itself."
                ),
                "enum": [format!("{{{name}}}")],
                "default": format!("{{{name}}}"),
            },
        },
        "messages": channel_messages(messages),
        "bindings": { "redis": {} },
        "x-redis-stream": {
            "key": key,
            "entryFields": {
                "type": "the event's type string",
                "event": "the envelope JSON",
            },
            "idempotencyClaimKey": format!("{key}:idem:<idempotencyKey>"),
            "consumerDoneKey": format!("{key}:done:<group>:<idempotencyKey>"),
            "deadLetterStream": format!("{key}:dlq:<group>"),
        },
    })
}

fn bullmq_channel(settings: &ExportSettings, messages: &[String]) -> Value {
    let (prefix, queue) = (&settings.bullmq_prefix, &settings.bullmq_queue);
    json!({
        "address": format!("{prefix}:{queue}"),
        "title": format!("BullMQ queue {queue}"),
        "summary": format!("The BullMQ queue `{queue}`, for Node.js consumers."),
        "description": format!(
            "A BullMQ queue, not a single Redis key: BullMQ keeps the queue `{queue}` under the \
             keys `{prefix}:{queue}:*`. When the BullMQ transport is used, every event is a job \
             whose name is the event's type string and whose data is the envelope, so a BullMQ \
             `Worker` (BullMQ 5 or 6) or a NestJS `@Processor('{queue}')` reads `job.data.type`, \
             `job.data.payload` and `job.data.idempotencyKey`. The job id is `ik-` followed by the \
             idempotency key with `%` written as `%25` and `:` as `%3A` \
             (`image_complete:var-123` becomes `ik-image_complete%3Avar-123`), so BullMQ drops a \
             duplicate emission while the completed job is kept (24 hours unless configured \
             otherwise)."
        ),
        "servers": [{ "$ref": format!("#/servers/{SERVER_ID}") }],
        "messages": channel_messages(messages),
        "bindings": { "redis": {} },
        "x-bullmq": {
            "prefix": prefix,
            "queue": queue,
            "jobName": "the event's type string",
            "jobData": "the envelope",
            "jobId": "ik- followed by the idempotency key, with % written as %25 and : as %3A",
        },
    })
}

/// The text of an operation: title, summary, description.
struct OperationText {
    send: [String; 3],
    receive: [String; 3],
}

fn stream_operations(category: &Category) -> OperationText {
    let name = &category.name;
    OperationText {
        send: [
            format!("Emit {name} events"),
            format!("Append a `{name}` event to the category's stream."),
            "The emitter fills the envelope, validates the payload against its schema and \
             appends the entry together with its idempotency claim in one atomic step."
                .to_owned(),
        ],
        receive: [
            format!("Consume {name} events"),
            format!("Read `{name}` events with a consumer group."),
            "One consumer group per consuming service, one consumer name per process. An entry is \
             acknowledged after its handler succeeded, together with the group's done record for \
             the idempotency key; redelivered duplicates are acknowledged without running the \
             handler again."
                .to_owned(),
        ],
    }
}

fn bullmq_operations(settings: &ExportSettings) -> OperationText {
    let queue = &settings.bullmq_queue;
    OperationText {
        send: [
            format!("Add jobs to {queue}"),
            format!("Add an event as a job to the BullMQ queue `{queue}`."),
            "The job's name is the type string, its data the envelope and its id derived from \
             the idempotency key."
                .to_owned(),
        ],
        receive: [
            format!("Process jobs of {queue}"),
            format!("Process events with a BullMQ worker of the queue `{queue}`."),
            "Switch on `job.data.type`; use `job.data.idempotencyKey` to drop duplicates."
                .to_owned(),
        ],
    }
}

fn insert_operations(
    operations: &mut Map<String, Value>,
    channel: &str,
    messages: &[String],
    text: &OperationText,
) {
    let refs: Vec<Value> = messages
        .iter()
        .map(|id| json!({ "$ref": format!("#/channels/{channel}/messages/{id}") }))
        .collect();
    for (action, [title, summary, description]) in
        [("send", &text.send), ("receive", &text.receive)]
    {
        operations.insert(
            format!("{channel}.{action}"),
            json!({
                "action": action,
                "channel": { "$ref": format!("#/channels/{channel}") },
                "title": title,
                "summary": summary,
                "description": description,
                "messages": refs,
            }),
        );
    }
}

fn message(
    catalog: &Catalog,
    settings: &ExportSettings,
    event: &Event,
    version: &EventVersion,
) -> Value {
    let mut description = version
        .description
        .clone()
        .unwrap_or_else(|| format!("The `{}` event.", event.type_string));
    if event.deprecated {
        description.push_str("\n\nDeprecated: do not emit this event in new code.");
    }
    if !version.latest {
        description.push_str(&format!(
            "\n\nAn older version ({}); emitters produce version {}.",
            version.version,
            event.latest().version
        ));
    }
    let summary = description.lines().next().unwrap_or_default().to_owned();
    let sensitive: Vec<&str> = version
        .fields
        .iter()
        .filter(|f| f.sensitive)
        .map(|f| f.name.as_str())
        .collect();
    json!({
        "name": event.type_string,
        "title": format!("{} (version {})", event.type_string, version.version),
        "summary": summary,
        "description": description,
        "contentType": "application/json",
        "correlationId": {
            "description": format!(
                "The envelope's `correlationId`: the value of the payload field `{}`.",
                version.correlation
            ),
            "location": "$message.payload#/correlationId",
        },
        "payload": downlevel(&json_schema::event_schema(catalog, settings, event, version)),
        "x-domain-events": {
            "type": event.type_string,
            "version": version.version,
            "latest": version.latest,
            "deprecated": event.deprecated,
            "idempotencyKey": version.key.source,
            "correlationField": version.correlation,
            "sensitiveFields": sensitive,
            "eventSchema": json_schema::event_id(settings, event, version),
            "payloadSchema": json_schema::payload_id(settings, event, version),
        },
    })
}

/// Keywords whose value is a schema.
const SCHEMA_KEYWORDS: &[&str] = &[
    "items",
    "additionalItems",
    "additionalProperties",
    "contains",
    "propertyNames",
    "not",
    "if",
    "then",
    "else",
];

/// Keywords whose value is a list of schemas.
const SCHEMA_LIST_KEYWORDS: &[&str] = &["allOf", "anyOf", "oneOf"];

/// Keywords whose value maps names to schemas.
const SCHEMA_MAP_KEYWORDS: &[&str] = &["properties", "patternProperties", "definitions"];

/// 2020-12 keywords draft-07 has no counterpart for; they are dropped (none of them is produced
/// by [`json_schema`] today, so dropping loses nothing).
const DROPPED_KEYWORDS: &[&str] = &[
    "$schema",
    "$id",
    "$anchor",
    "$dynamicAnchor",
    "$dynamicRef",
    "$vocabulary",
    "$comment",
    "unevaluatedProperties",
    "unevaluatedItems",
    "minContains",
    "maxContains",
    "contentSchema",
];

/// Turns a JSON Schema draft 2020-12 into a schema that draft-07 (and so the AsyncAPI Schema
/// Object) reads the same way: `$schema`, `$id` and keywords draft-07 lacks are dropped, `$defs`
/// becomes `definitions` (and `$ref`s to it follow), `prefixItems`/`items` become
/// `items`/`additionalItems`, `dependentRequired`/`dependentSchemas` become `dependencies`.
/// `const`, `type` lists and `deprecated` (an AsyncAPI Schema Object keyword) are kept.
/// Property names are never mistaken for keywords.
pub fn downlevel(schema: &Value) -> Value {
    let Value::Object(map) = schema else {
        return schema.clone(); // `true` / `false` schemas
    };
    let mut out = Map::new();
    for (key, value) in map {
        let key = key.as_str();
        match key {
            _ if DROPPED_KEYWORDS.contains(&key) => {}
            "$defs" | "definitions" => {
                let target = out
                    .entry("definitions")
                    .or_insert_with(|| Value::Object(Map::new()));
                if let (Value::Object(target), Value::Object(defs)) = (target, value) {
                    for (name, def) in defs {
                        target.insert(name.clone(), downlevel(def));
                    }
                }
            }
            "$ref" => {
                let reference = value
                    .as_str()
                    .map(|r| Value::String(r.replacen("#/$defs/", "#/definitions/", 1)))
                    .unwrap_or_else(|| value.clone());
                out.insert(key.into(), reference);
            }
            "prefixItems" => {
                out.insert("items".into(), schema_list(value));
                if let Some(rest) = map.get("items") {
                    out.insert("additionalItems".into(), downlevel(rest));
                }
            }
            "items" if map.contains_key("prefixItems") => {} // handled with `prefixItems`
            "dependentRequired" | "dependentSchemas" => {
                let target = out
                    .entry("dependencies")
                    .or_insert_with(|| Value::Object(Map::new()));
                if let (Value::Object(target), Value::Object(deps)) = (target, value) {
                    for (name, dep) in deps {
                        let dep = if key == "dependentSchemas" {
                            downlevel(dep)
                        } else {
                            dep.clone()
                        };
                        target.insert(name.clone(), dep);
                    }
                }
            }
            _ if SCHEMA_KEYWORDS.contains(&key) => {
                out.insert(key.into(), downlevel(value));
            }
            _ if SCHEMA_LIST_KEYWORDS.contains(&key) => {
                out.insert(key.into(), schema_list(value));
            }
            _ if SCHEMA_MAP_KEYWORDS.contains(&key) => {
                let map = match value {
                    Value::Object(m) => m.iter().map(|(k, v)| (k.clone(), downlevel(v))).collect(),
                    _ => Map::new(),
                };
                out.insert(key.into(), Value::Object(map));
            }
            _ => {
                out.insert(key.into(), value.clone());
            }
        }
    }
    Value::Object(out)
}

fn schema_list(value: &Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(downlevel).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downlevel_drops_and_renames_2020_12_keywords() {
        let schema = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://example.com/x.json",
            "type": "object",
            "$defs": { "Line": { "type": "string", "$comment": "x" } },
            "properties": {
                // property names that look like keywords stay
                "$id": { "type": "string" },
                "prefixItems": { "type": "integer", "minimum": 0 },
                "line": { "$ref": "#/$defs/Line" },
                "pair": { "prefixItems": [{ "type": "string" }, { "const": 1 }], "items": false },
                "kind": { "type": ["string", "null"], "deprecated": true },
            },
            "dependentRequired": { "a": ["b"] },
            "unevaluatedProperties": false,
        });
        assert_eq!(
            downlevel(&schema),
            json!({
                "type": "object",
                "definitions": { "Line": { "type": "string" } },
                "properties": {
                    "$id": { "type": "string" },
                    "prefixItems": { "type": "integer", "minimum": 0 },
                    "line": { "$ref": "#/definitions/Line" },
                    "pair": { "items": [{ "type": "string" }, { "const": 1 }], "additionalItems": false },
                    "kind": { "type": ["string", "null"], "deprecated": true },
                },
                "dependencies": { "a": ["b"] },
            })
        );
    }

    #[test]
    fn stream_keys_carry_the_hash_tag() {
        assert_eq!(
            stream_key(&ExportSettings::new(), "image"),
            "domain-events:{image}"
        );
        let settings = ExportSettings::new().with_key_prefix("events");
        assert_eq!(stream_key(&settings, "seo"), "events:{seo}");
    }
}
