// A stock BullMQ Worker (Node.js) consuming the domain events queue, as the platform's existing
// services do.
//
//   node worker.mjs <5|6> <redisUrl|redis+cluster://seeds> <count> [--queue DOMAIN_EVENTS] [--prefix bull]
//                   [--timeout-ms 20000] [--telemetry on]
//
// Validates every job's `data.payload` against the exported payload JSON Schema of its type and
// version (schemas/json/index.json -> `<category>/<name>.payload.schema.json`) and the whole
// envelope against its event schema, with ajv (draft 2020-12) and ajv-formats. Prints
// `{"ready":true}` once connected, then one JSON line per job:
//   {name, id, type, version, idempotencyKey, eventId, payload, payloadValid, envelopeValid,
//    errors, attemptsMade, opts, traceparent}
// and exits 0 after <count> jobs completed (1 on a timeout, printing what it got to stderr).
// With `--telemetry on` the Worker runs BullMQ's own telemetry (`bullmq-otel`), and a last line
// `{"spans": [...]}` lists the spans it finished (see common.mjs).

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

import {
  connection,
  fail,
  flags,
  inMemoryTelemetry,
  loadBullmq,
  print,
  queueSettings,
} from './common.mjs';

const opts = flags(process.argv.slice(2));
const [version, redisUrl, countArg] = opts.positional;
const count = Number(countArg);
if (!redisUrl || !Number.isInteger(count) || count < 1) {
  fail('usage: node worker.mjs <5|6> <redisUrl> <count> [--queue Q] [--prefix P] [--timeout-ms N]');
}
const { queue, prefix } = queueSettings(opts);
const timeoutMs = Number(opts['timeout-ms'] ?? 20000);

const exportDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../schemas/json');
const index = JSON.parse(readFileSync(path.join(exportDir, 'index.json'), 'utf8'));
const newAjv = () => {
  const ajv = new Ajv2020({ allErrors: true, strict: false });
  addFormats(ajv);
  return ajv;
};
const payloadAjv = newAjv();
const eventAjv = newAjv();
const validators = new Map();
for (const entry of index.events) {
  const load = (file) => JSON.parse(readFileSync(path.join(exportDir, file), 'utf8'));
  validators.set(`${entry.type}@${entry.version}`, {
    payloadSchema: entry.payloadSchema,
    payload: payloadAjv.compile(load(entry.payloadSchema)),
    event: eventAjv.compile(load(entry.eventSchema)),
  });
}

const otel = opts.telemetry === 'on' ? await inMemoryTelemetry() : null;
const { Worker } = await loadBullmq(version);
const received = [];
let completed = 0;
let finishing = false;

const worker = new Worker(
  queue,
  async (job) => {
    const data = job.data ?? {};
    const validator = validators.get(`${data.type}@${data.version}`);
    const record = {
      name: job.name,
      id: job.id,
      type: data.type,
      version: data.version,
      idempotencyKey: data.idempotencyKey,
      eventId: data.eventId,
      payload: data.payload,
      payloadSchema: validator?.payloadSchema ?? null,
      payloadValid: validator ? validator.payload(data.payload) : false,
      envelopeValid: validator ? validator.event(data) : false,
      errors: validator
        ? [...(validator.payload.errors ?? []), ...(validator.event.errors ?? [])]
        : [`no exported schema for ${data.type} v${data.version}`],
      attemptsMade: job.attemptsMade,
      opts: {
        attempts: job.opts.attempts,
        backoff: job.opts.backoff,
        removeOnComplete: job.opts.removeOnComplete,
        removeOnFail: job.opts.removeOnFail,
        jobId: job.opts.jobId,
      },
      traceparent: data.traceparent ?? null,
    };
    received.push(record);
    print(record);
    return { seen: true };
  },
  {
    connection: await connection(redisUrl),
    prefix,
    concurrency: 1,
    ...(otel ? { telemetry: otel.telemetry } : {}),
  },
);

async function finish(code) {
  if (finishing) return;
  finishing = true;
  clearTimeout(timer);
  await worker.close();
  if (otel) print({ spans: otel.spans() });
  process.exit(code);
}

worker.on('completed', () => {
  completed += 1;
  if (completed >= count) void finish(0);
});
worker.on('error', (error) => process.stderr.write(`worker error: ${error}\n`));

const timer = setTimeout(() => {
  process.stderr.write(
    `timeout after ${timeoutMs} ms: ${completed} of ${count} jobs completed; received ${JSON.stringify(received.map((r) => r.id))}\n`,
  );
  void finish(1);
}, timeoutMs);

await worker.waitUntilReady();
print({ ready: true, bullmq: version });
