// Measures Redis memory per retained event: 1000 typical task.progress_update
// events for one user, then MEMORY USAGE of the stream and meta keys.
// Usage: node scripts/measure-memory.mjs redis://127.0.0.1:6379 (after `pnpm build`).
import { Redis } from 'ioredis';
import { createPublisher, userKeys } from '../dist/index.js';

const url = process.argv[2] ?? 'redis://127.0.0.1:6379';
const redis = new Redis(url);
const publisher = createPublisher({ redis });
const user = `measure-${Date.now()}`;
for (let i = 0; i < 1_000; i++) {
  await publisher.publish(user, 'task.progress_update', {
    task_id: `task-${String(i % 10).padStart(8, '0')}`,
    status: 'running',
    progress: i % 100,
    message: 'Processing page 12 of 40',
  });
}
const k = userKeys(user);
const stream = Number(await redis.memory('USAGE', k.stream, 'SAMPLES', '0'));
const meta = Number(await redis.memory('USAGE', k.meta, 'SAMPLES', '0'));
const json = Number(await redis.hget(k.meta, 'b'));
console.log(
  JSON.stringify({
    events: 1_000,
    streamBytes: stream,
    metaBytes: meta,
    jsonBytes: json,
    perEvent: Math.round(stream / 1_000),
    jsonPerEvent: Math.round(json / 1_000),
  }),
);
await redis.del(k.stream, k.meta);
await publisher.close();
redis.disconnect();
