// Shared by the BullMQ interop scripts: which BullMQ to load, how to reach Redis, the queue.
//
// Every script takes `<version> <redisUrl>` first: `5` loads the npm alias `bullmq5` (latest
// BullMQ 5), `6` loads `bullmq6` (latest BullMQ 6); both are pinned in ../package-lock.json.
// Options: `--queue NAME` (default DOMAIN_EVENTS), `--prefix PREFIX` (default bull), and for
// worker.mjs and enqueue.mjs `--telemetry on`: BullMQ telemetry with `bullmq-otel` (BullMQ 5 or 6),
// see `inMemoryTelemetry`.

export async function loadBullmq(version) {
  switch (version) {
    case '5':
      return import('bullmq5');
    case '6':
      return import('bullmq6');
    default:
      throw new Error(`unknown BullMQ major version \`${version}\`: use 5 or 6`);
  }
}

// What BullMQ connects with: for `redis+cluster://host:port,host:port` an ioredis `Cluster` over
// those seed nodes (BullMQ needs a hash tag in the prefix or queue name there, e.g. `{bull}`),
// otherwise ioredis options from the redis:// URL.
export async function connection(redisUrl) {
  if (!redisUrl.startsWith('redis+cluster://')) return connectionOptions(redisUrl);
  const { Cluster } = await import('ioredis');
  const seeds = redisUrl
    .slice('redis+cluster://'.length)
    .split(',')
    .map((seed) => {
      const url = new URL(`redis://${seed}`);
      return { host: url.hostname, port: Number(url.port || 6379) };
    });
  return new Cluster(seeds, { redisOptions: { maxRetriesPerRequest: null } });
}

// ioredis options from a redis:// URL (plain options work with the ioredis of both versions).
export function connectionOptions(redisUrl) {
  const url = new URL(redisUrl);
  const options = {
    host: url.hostname,
    port: Number(url.port || 6379),
    maxRetriesPerRequest: null,
  };
  if (url.username) options.username = decodeURIComponent(url.username);
  if (url.password) options.password = decodeURIComponent(url.password);
  const db = url.pathname.replace(/^\//, '');
  if (db) options.db = Number(db);
  return options;
}

// `--name value` flags after the positional arguments.
export function flags(args) {
  const out = { positional: [] };
  for (let i = 0; i < args.length; i++) {
    if (args[i].startsWith('--')) {
      out[args[i].slice(2)] = args[i + 1];
      i++;
    } else {
      out.positional.push(args[i]);
    }
  }
  return out;
}

export function queueSettings(opts) {
  return { queue: opts.queue ?? 'DOMAIN_EVENTS', prefix: opts.prefix ?? 'bull' };
}

export function print(value) {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

export function fail(message) {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

// `--telemetry`: BullMQ's own telemetry (`bullmq-otel`) on the global OpenTelemetry API, with the
// W3C Trace Context propagator and an in-memory span exporter. Returns the `telemetry` option for
// a Queue or Worker and `spans()`, the finished spans as
// {name, kind, traceId, spanId, parentSpanId, attributes} (parentSpanId null for a root span).
export async function inMemoryTelemetry() {
  const { propagation, trace } = await import('@opentelemetry/api');
  const { W3CTraceContextPropagator } = await import('@opentelemetry/core');
  const { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } = await import(
    '@opentelemetry/sdk-trace-base'
  );
  const { BullMQOtel } = await import('bullmq-otel');
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  trace.setGlobalTracerProvider(provider);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  return {
    telemetry: new BullMQOtel({ tracerName: 'domain-events-tests' }),
    spans: () =>
      exporter.getFinishedSpans().map((span) => ({
        name: span.name,
        kind: span.kind,
        traceId: span.spanContext().traceId,
        spanId: span.spanContext().spanId,
        parentSpanId: span.parentSpanContext?.spanId ?? null,
        attributes: span.attributes,
      })),
  };
}
