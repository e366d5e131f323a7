// The peer side of `cargo xtask bench`: what BullMQ on Node.js achieves against the same Redis,
// scenario for scenario (docs/benchmarks.md).
//
//   node peer.mjs <scenario> <redisUrl> <n> [--warmup W]
//   node peer.mjs payload            # the job data (385 bytes of JSON) and exits
//   node peer.mjs versions           # node, bullmq and ioredis versions as JSON
//
// Prints one JSON line `{"scenario", "n", "seconds", "per_sec"}` (plus `peak_rss_bytes` for
// bullmq_worker_memory), the format of the Rust side (`domain-events-bench`). Every scenario first
// runs untimed on W events (default min(500, n)) in a queue of its own (JIT, Lua script cache,
// connections), then times n events. Queues live under the key prefix `peerbench`; the xtask
// flushes Redis between runs, and each timed queue is obliterated before it is used.
//
// The job data is the payload our side sends (image:variation_completed with nine public URLs,
// bench/src/payload.rs builds the same values) and the job id is the event's idempotency key
// (BullMQ does not allow ':' in custom ids, so '-' stands in for it).

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

import { Queue, Worker } from 'bullmq';

const PREFIX = 'peerbench';
const JOB_NAME = 'image:variation_completed';
const BATCH = 1000;
const IN_FLIGHT = 64;
const DUPLICATE_KEYS = 100;
// Warm-up events use indices from here on: never a timed event's key, still five base-36 digits.
const WARM_BASE = 50_000_000;

const id36 = (i) => i.toString(36).padStart(5, '0');
const payload = (i) => ({
  variationId: `var_${id36(i)}`,
  variationName: 'warm-sunset',
  familiesCompleted: 9,
  totalGenerationTimeMs: 40000 + (i % 10000),
  publicUrls: Array.from({ length: 9 }, (_, k) => `https://cdn.io/${id36(i)}/${k}.png`),
});
const jobId = (i) => `image_complete-var_${id36(i)}`;
const job = (i, opts = {}) => ({ name: JOB_NAME, data: payload(i), opts: { jobId: jobId(i), ...opts } });
const now = () => performance.now() / 1000;
const range = (from, n) => Array.from({ length: n }, (_, k) => from + k);

function connectionOf(redisUrl) {
  const u = new URL(redisUrl);
  return {
    host: u.hostname,
    port: Number(u.port || 6379),
    username: decodeURIComponent(u.username) || undefined,
    password: decodeURIComponent(u.password) || undefined,
    db: Number(u.pathname.slice(1) || 0),
    maxRetriesPerRequest: null,
  };
}

async function withQueue(connection, name, fn) {
  const queue = new Queue(name, { connection, prefix: PREFIX });
  await queue.obliterate({ force: true });
  try {
    return await fn(queue);
  } finally {
    await queue.close();
  }
}

async function addBulk(queue, from, n, opts = {}) {
  for (let start = from; start < from + n; start += BATCH) {
    await queue.addBulk(range(start, Math.min(BATCH, from + n - start)).map((i) => job(i, opts)));
  }
}

// Times a no-op Worker at `concurrency` draining the `n` jobs already in `queue`, until BullMQ
// reported every one completed (moved to finished, i.e. acknowledged).
async function drain(connection, queue, n, concurrency) {
  const worker = new Worker(queue.name, async () => {}, { connection, prefix: PREFIX, concurrency, autorun: false });
  let done = 0;
  const finished = new Promise((resolve, reject) => {
    worker.on('completed', () => {
      if (++done === n) resolve();
    });
    worker.on('failed', (_job, err) => reject(err));
    worker.on('error', reject);
  });
  await worker.waitUntilReady();
  const t0 = now();
  worker.run();
  await finished;
  const seconds = now() - t0;
  await worker.close();
  return seconds;
}

// Each scenario: (connection, name, from, n) => seconds of the timed part.
const timed = {
  bullmq_add_serial: (c, name, from, n) =>
    withQueue(c, name, async (q) => {
      const t0 = now();
      for (let i = from; i < from + n; i++) await q.add(JOB_NAME, payload(i), { jobId: jobId(i) });
      return now() - t0;
    }),
  bullmq_add_concurrent64: (c, name, from, n) =>
    withQueue(c, name, async (q) => {
      const t0 = now();
      for (let start = from; start < from + n; start += IN_FLIGHT) {
        const window = range(start, Math.min(IN_FLIGHT, from + n - start));
        await Promise.all(window.map((i) => q.add(JOB_NAME, payload(i), { jobId: jobId(i) })));
      }
      return now() - t0;
    }),
  bullmq_addbulk_1000: (c, name, from, n) =>
    withQueue(c, name, async (q) => {
      const t0 = now();
      await addBulk(q, from, n);
      return now() - t0;
    }),
  bullmq_add_duplicate: (c, name, from, n) =>
    withQueue(c, name, async (q) => {
      await addBulk(q, from, DUPLICATE_KEYS); // the 100 ids exist: every timed add is a dedup hit
      const t0 = now();
      for (let i = 0; i < n; i++) {
        const k = from + (i % DUPLICATE_KEYS);
        await q.add(JOB_NAME, payload(k), { jobId: jobId(k) });
      }
      const seconds = now() - t0;
      const waiting = await q.getJobCountByTypes('wait');
      if (waiting !== DUPLICATE_KEYS) throw new Error(`dedup did not hold: ${waiting} jobs waiting`);
      return seconds;
    }),
  bullmq_worker_c1: (c, name, from, n) =>
    withQueue(c, name, async (q) => {
      await addBulk(q, from, n, { removeOnComplete: true });
      return drain(c, q, n, 1);
    }),
  bullmq_worker_c50: (c, name, from, n) =>
    withQueue(c, name, async (q) => {
      await addBulk(q, from, n, { removeOnComplete: true });
      return drain(c, q, n, 50);
    }),
};

// VmHWM of /proc/self/status (peak resident set), else what libuv reports.
function peakRssBytes() {
  try {
    const line = readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith('VmHWM:'));
    if (line) return Number(line.replace(/\D+/g, '')) * 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS * 1024;
}

function versions() {
  const require = createRequire(import.meta.url);
  return {
    node: process.version,
    bullmq: require('bullmq/package.json').version,
    ioredis: require('ioredis/package.json').version,
  };
}

function print(line) {
  console.log(JSON.stringify(line));
}

function fail(message) {
  console.error(`peer.mjs: ${message}`);
  process.exit(2);
}

async function main(args) {
  const positional = [];
  const flags = {};
  for (let i = 0; i < args.length; i++) {
    if (args[i].startsWith('--')) flags[args[i].slice(2)] = args[++i];
    else positional.push(args[i]);
  }
  const [scenario, redisUrl, nText] = positional;
  if (scenario === 'payload') return print(payload(0));
  if (scenario === 'versions') return print(versions());
  const n = Number(nText);
  if (!redisUrl || !Number.isInteger(n) || n <= 0) {
    fail('usage: node peer.mjs <scenario> <redisUrl> <n> [--warmup W]');
  }
  const warmup = flags.warmup === undefined ? Math.min(500, n) : Number(flags.warmup);
  const connection = connectionOf(redisUrl);

  if (scenario === 'bullmq_fill') {
    // Helper of bullmq_worker_memory, run in its own process so the producer's memory is not
    // counted: n jobs in the queue `memory`.
    return withQueue(connection, 'memory', (q) => addBulk(q, 0, n, { removeOnComplete: true }));
  }
  if (scenario === 'bullmq_worker_memory') {
    // Peak RSS of this process while a Worker at concurrency 50 drains a backlog of n jobs.
    const script = fileURLToPath(import.meta.url);
    execFileSync(process.execPath, [script, 'bullmq_fill', redisUrl, String(n)], { stdio: 'inherit' });
    const queue = new Queue('memory', { connection, prefix: PREFIX });
    const seconds = await drain(connection, queue, n, 50);
    await queue.close();
    return print({ scenario, n, seconds: +seconds.toFixed(4), per_sec: Math.round(n / seconds), peak_rss_bytes: peakRssBytes() });
  }
  const run = timed[scenario];
  if (!run) fail(`unknown scenario \`${scenario}\`; known: ${[...Object.keys(timed), 'bullmq_worker_memory'].join(', ')}`);
  if (warmup > 0) await run(connection, `${scenario}-warm`, WARM_BASE, warmup);
  const seconds = await run(connection, scenario, 0, n);
  print({ scenario, n, seconds: +seconds.toFixed(4), per_sec: Math.round(n / seconds) });
}

await main(process.argv.slice(2));
