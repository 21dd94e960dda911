// What publishing costs per event: CPU of this (the publishing) process and of Redis, for the
// @livebus/publisher (publish() calls made concurrently, and publishMany) side by side with plain
// ioredis PUBLISH and XADD+PUBLISH pipelines, against a private redis-server. Prints, per mode:
// publisher CPU µs/event (process.cpuUsage), Redis CPU µs/event (INFO cpu delta), and what
// INFO commandstats says per command (calls and server µs per event).
//
//   node bench/publisher-cost.mjs [--events 20000] [--users 1000] [--concurrency 200] [--batch 10]
//     [--only <part of a mode's name>] [--publisher <path of another build's index.js, to compare>]
// Figures move with the machine's load: compare builds in runs made one right after the other.
import { parseArgs } from 'node:util';
import Redis from 'ioredis';
import { startRedis } from './lib/common.mjs';

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '20000' },
    users: { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: '200' },
    batch: { type: 'string', default: '10' },
    only: { type: 'string', default: '' },
    publisher: { type: 'string', default: '@livebus/publisher' },
  },
});
const { createPublisher } = await import(values.publisher);
const n = Number(values.events);
const users = Number(values.users);
const concurrency = Number(values.concurrency);
const batch = Number(values.batch);

const eventOf = (i) => ({
  event: 'task.progress_update',
  data: { task_id: `t${i}`, status: 'running', progress: i % 100, message: `step ${i} of the task` },
});

const redis = await startRedis();
const admin = new Redis(redis.url);
const client = new Redis(redis.url);
const publisher = createPublisher({ redisUrl: redis.url });

async function redisCpuSeconds() {
  const info = await admin.info('cpu');
  const field = (name) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return field('used_cpu_sys') + field('used_cpu_user');
}

async function commandStats() {
  const info = await admin.info('commandstats');
  const out = {};
  for (const m of info.matchAll(/cmdstat_([\w|-]+):calls=(\d+),usec=(\d+)/g)) {
    out[m[1]] = { calls: Number(m[2]), usec: Number(m[3]) };
  }
  return out;
}

/** Runs `send(i)` for i in 0..count-1, `width` at a time (waves of that many); returns the events sent. */
async function waves(count, width, send) {
  const events = count === n / batch ? n : count;
  for (let i = 0; i < count; i += width) {
    const wave = [];
    for (let j = i; j < Math.min(count, i + width); j++) wave.push(send(j));
    await Promise.all(wave);
  }
  return events;
}

const modes = {
  'publisher publish(), one at a time': () =>
    waves(Math.min(n, 5000), 1, (i) => publisher.publish(`u${i % users}`, eventOf(i))),
  'publisher publish()': () => waves(n, concurrency, (i) => publisher.publish(`u${i % users}`, eventOf(i))),
  [`publisher publishMany(${batch}, one user)`]: () =>
    waves(n / batch, Math.max(1, Math.floor(concurrency / batch)), (b) =>
      publisher.publishMany(
        Array.from({ length: batch }, (_, k) => ({ userId: `u${b % users}`, event: eventOf(b * batch + k) })),
      ),
    ),
  'ioredis PUBLISH, one at a time': () =>
    waves(Math.min(n, 5000), 1, (i) =>
      client.publish(`u${i % users}`, JSON.stringify({ type: 'event', ...eventOf(i) })),
    ),
  'ioredis PUBLISH': () =>
    waves(n, concurrency, (i) => client.publish(`u${i % users}`, JSON.stringify({ type: 'event', ...eventOf(i) }))),
  'ioredis XADD+PUBLISH pipeline': () =>
    waves(n, concurrency, (i) => {
      const text = JSON.stringify({ type: 'event', ...eventOf(i) });
      return client
        .pipeline()
        .xadd(`s:u${i % users}`, 'MAXLEN', '~', '100', '*', 'd', text)
        .publish(`u${i % users}`, text)
        .exec();
    }),
};

async function measure(name, run) {
  await admin.flushall();
  await run(); // warm up: JIT, scripts loaded, streams exist
  await admin.config('RESETSTAT');
  const redis0 = await redisCpuSeconds();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const n = await run();
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const redisCpu = (await redisCpuSeconds()) - redis0;
  const stats = await commandStats();
  const perEvent = (us) => (us / n).toFixed(1);
  const commands = Object.entries(stats)
    // The script's own INFO replication counts here too (this bench's 2 INFO calls are noise).
    .filter(([c]) => !c.startsWith('config'))
    .sort((a, b) => b[1].usec - a[1].usec)
    .map(([c, s]) => `${c} ${(s.calls / n).toFixed(2)} calls ${perEvent(s.usec)} µs`)
    .join('; ');
  console.log(
    `${name.padEnd(36)} ${((n / ms) * 1000).toFixed(0).padStart(7)} ev/s  publisher ${perEvent(cpu.user + cpu.system).padStart(5)} µs/ev  redis ${perEvent(redisCpu * 1e6).padStart(5)} µs/ev  [${commands}]`,
  );
}

console.log(`${n} events, ${users} users, ${concurrency} in flight (publishMany: ${batch} events of one user each)`);
try {
  for (const [name, run] of Object.entries(modes)) {
    if (values.only && !name.includes(values.only)) continue;
    await measure(name, run);
  }
} finally {
  await publisher.close();
  client.disconnect();
  admin.disconnect();
  redis.stop();
}
