// Round trip of domain-events CloudEvents through the CloudEvents JavaScript SDK (npm
// `cloudevents`, pinned in package.json), for tests/tests/cloudevents_interop.rs.
//
// stdin:  {"events": [<structured-mode JSON CloudEvent>, ...], "invalid": [<CloudEvent>, ...]}
// stdout: {"sdkVersion", "events": [{"seen", "toJSON", "structured", "contentType",
//          "fromStructured", "fromBinary"}, ...], "invalid": [{"rejected", "message"}, ...],
//          "produced": <a CloudEvent the SDK built itself, as structured-mode JSON>}
//
// Every event of `events` goes through `new CloudEvent(json)`, which validates it against the
// CloudEvents 1.0 JSON Schema and the attribute naming rules (strict mode) and throws otherwise: an
// event the SDK rejects ends the script with exit status 1. Each is then written by the SDK in
// structured mode (`toJSON`, `HTTP.structured`) and read back from both HTTP modes
// (`HTTP.toEvent`). `invalid` holds events that must be rejected, to show that validation is on.

import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

import { CloudEvent, HTTP } from "cloudevents";

const require = createRequire(import.meta.url);
const sdkVersion = require("cloudevents/package.json").version;

const input = JSON.parse(readFileSync(0, "utf8"));

const ATTRIBUTES = [
  "specversion", "id", "source", "type", "time", "subject", "datacontenttype", "dataschema",
  "idempotencykey", "correlationid", "causationid", "schemaversion", "traceparent",
];

const events = input.events.map((json) => {
  const event = new CloudEvent(json); // strict: validates, throws on an invalid event
  const seen = {};
  for (const name of ATTRIBUTES) {
    if (event[name] !== undefined) {
      seen[name] = event[name];
    }
  }
  seen.schemaversionType = typeof event.schemaversion;
  seen.data = event.data;
  const structured = HTTP.structured(event);
  const binary = HTTP.binary(event);
  return {
    seen,
    toJSON: event.toJSON(),
    structured: JSON.parse(structured.body),
    contentType: structured.headers["content-type"],
    fromStructured: HTTP.toEvent(structured).toJSON(),
    fromBinary: HTTP.toEvent(binary).toJSON(),
  };
});

const invalid = (input.invalid ?? []).map((json) => {
  try {
    new CloudEvent(json);
    return { rejected: false, message: "" };
  } catch (error) {
    return { rejected: true, message: String(error.message ?? error) };
  }
});

// An event as a Node.js service would produce it with the SDK alone.
const produced = new CloudEvent({
  id: randomUUID(),
  source: "node-image-worker",
  type: "image:variation_started",
  time: "2026-11-26T17:04:05.123Z",
  subject: "var-node",
  datacontenttype: "application/json",
  idempotencykey: "image_started:var-node",
  correlationid: "var-node",
  schemaversion: 1,
  data: {
    variationId: "var-node",
    variationName: "Made in Node",
    familyCount: 3,
    startedAt: "2026-11-26T17:04:05.123Z",
  },
});

process.stdout.write(
  JSON.stringify({
    sdkVersion,
    events,
    invalid,
    produced: JSON.parse(HTTP.structured(produced).body),
  }),
);
