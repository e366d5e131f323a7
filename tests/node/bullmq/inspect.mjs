// Reads jobs back with a stock BullMQ `Queue`, as a Node.js dashboard or service would.
//
//   node inspect.mjs <5|6> <redisUrl> <jobId>... [--queue DOMAIN_EVENTS] [--prefix bull]
//
// Prints one JSON line per id: {id, exists, name, state, attemptsMade, failedReason, returnvalue,
// finishedOn}.

import { connectionOptions, fail, flags, loadBullmq, print, queueSettings } from './common.mjs';

const opts = flags(process.argv.slice(2));
const [version, redisUrl, ...ids] = opts.positional;
if (!redisUrl || ids.length === 0) fail('usage: node inspect.mjs <5|6> <redisUrl> <jobId>...');
const { queue: queueName, prefix } = queueSettings(opts);

const { Queue } = await loadBullmq(version);
const queue = new Queue(queueName, { connection: connectionOptions(redisUrl), prefix });
for (const id of ids) {
  const job = await queue.getJob(id);
  if (!job) {
    print({ id, exists: false });
    continue;
  }
  print({
    id,
    exists: true,
    name: job.name,
    state: await job.getState(),
    attemptsMade: job.attemptsMade,
    failedReason: job.failedReason ?? null,
    returnvalue: job.returnvalue ?? null,
    finishedOn: job.finishedOn ?? null,
  });
}
await queue.close();
