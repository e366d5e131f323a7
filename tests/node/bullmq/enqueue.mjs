// Node.js producers enqueue domain events with a stock BullMQ `Queue.add(type, envelope, opts)`,
// the way the platform's existing services do.
//
//   node enqueue.mjs <5|6> <redisUrl> <variationId> [--queue DOMAIN_EVENTS] [--prefix bull] [--telemetry on]
//
// Adds, in this order, `image:family_completed` envelopes of <variationId> with BullMQ-generated
// job ids and `{attempts: 3, backoff: {type: 'fixed', delay: 50}}`:
//   valid               families 0, 1 and 2
//   duplicate           family 0 again: a new eventId, the same idempotency key, another job id
//   poison-not-envelope data `{"hello": "world"}`
//   poison-unknown-type a well-formed envelope of type `image:from_the_future`
//   poison-bad-payload  family 3 with `familyIndex: "three"` (the schema says integer)
// and prints one JSON line per job: {id, name, kind, idempotencyKey, eventId}. With
// `--telemetry on` the Queue runs BullMQ's own telemetry (`bullmq-otel`), which puts each add's
// trace context in the job option `tm`, and a last line `{"spans": [...]}` lists the spans it
// finished (see common.mjs).

import { randomBytes } from 'node:crypto';

import {
  connectionOptions,
  fail,
  flags,
  inMemoryTelemetry,
  loadBullmq,
  print,
  queueSettings,
} from './common.mjs';

const opts = flags(process.argv.slice(2));
const [version, redisUrl, variation] = opts.positional;
if (!variation) fail('usage: node enqueue.mjs <5|6> <redisUrl> <variationId> [--queue Q] [--prefix P]');
const { queue: queueName, prefix } = queueSettings(opts);

// A UUID v7: 48 bits of Unix milliseconds, version 7, variant 10, random bits.
function uuidv7() {
  const bytes = randomBytes(16);
  const ms = BigInt(Date.now());
  for (let i = 0; i < 6; i++) bytes[i] = Number((ms >> BigInt(8 * (5 - i))) & 0xffn);
  bytes[6] = (bytes[6] & 0x0f) | 0x70;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function envelope(type, idempotencyKey, payload) {
  return {
    eventId: uuidv7(),
    type,
    version: 1,
    occurredAt: new Date().toISOString(),
    source: 'node-producer',
    correlationId: variation,
    causationId: null,
    idempotencyKey,
    payload,
  };
}

function family(index, familyIndex = index) {
  return envelope('image:family_completed', `image_family:${variation}:${index}`, {
    variationId: variation,
    variationName: `Variation ${variation}`,
    familyName: `family-${index}`,
    familyIndex,
    publicUrl: `https://cdn.example/${variation}/${index}.png`,
    generationTimeMs: 1000 + index,
  });
}

const jobs = [
  ['valid', 'image:family_completed', family(0)],
  ['valid', 'image:family_completed', family(1)],
  ['valid', 'image:family_completed', family(2)],
  ['duplicate', 'image:family_completed', family(0)],
  ['poison-not-envelope', 'image:family_completed', { hello: 'world' }],
  [
    'poison-unknown-type',
    'image:from_the_future',
    envelope('image:from_the_future', `image_future:${variation}`, { variationId: variation }),
  ],
  ['poison-bad-payload', 'image:family_completed', family(3, 'three')],
];

const otel = opts.telemetry === 'on' ? await inMemoryTelemetry() : null;
const { Queue } = await loadBullmq(version);
const queue = new Queue(queueName, {
  connection: connectionOptions(redisUrl),
  prefix,
  ...(otel ? { telemetry: otel.telemetry } : {}),
});
for (const [kind, name, data] of jobs) {
  const job = await queue.add(name, data, { attempts: 3, backoff: { type: 'fixed', delay: 50 } });
  print({ id: job.id, name, kind, idempotencyKey: data.idempotencyKey ?? null, eventId: data.eventId ?? null });
}
await queue.close();
if (otel) print({ spans: otel.spans() });
