// Pauses or resumes the queue with a stock BullMQ `Queue` (`queue.pause()` / `queue.resume()`).
//
//   node pause.mjs <5|6> <redisUrl> pause|resume [--queue DOMAIN_EVENTS] [--prefix bull]
//
// BullMQ 5 pauses by renaming the `wait` list to `paused` (and back at resume); BullMQ 6 only sets
// the `paused` flag in the queue's meta hash.

import { connectionOptions, fail, flags, loadBullmq, print, queueSettings } from './common.mjs';

const opts = flags(process.argv.slice(2));
const [version, redisUrl, action] = opts.positional;
if (action !== 'pause' && action !== 'resume') {
  fail('usage: node pause.mjs <5|6> <redisUrl> pause|resume');
}
const { queue: queueName, prefix } = queueSettings(opts);

const { Queue } = await loadBullmq(version);
const queue = new Queue(queueName, { connection: connectionOptions(redisUrl), prefix });
if (action === 'pause') await queue.pause();
else await queue.resume();
print({ [action === 'pause' ? 'paused' : 'resumed']: true, bullmq: version });
await queue.close();
