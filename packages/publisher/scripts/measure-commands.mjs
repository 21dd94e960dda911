// Counts the Redis commands (and their server time) one publish costs: resets
// INFO commandstats, publishes events one at a time and then in batches, and
// prints per event what ran inside the append script (EVALSHA and the calls it made).
// Usage: node scripts/measure-commands.mjs redis://127.0.0.1:6379 (after `pnpm build`).
import { Redis } from 'ioredis';
import { createPublisher } from '../dist/index.js';

const url = process.argv[2] ?? 'redis://127.0.0.1:6379';
const redis = new Redis(url);
const publisher = createPublisher({ redis });
const note = (i) => ({ event: 'session.notice', data: { level: 'info', message: String(i) } });

async function commandstats() {
  const text = await redis.info('commandstats');
  const out = {};
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
    out[m[1]] = { calls: Number(m[2]), usec: Number(m[3]) };
  }
  return out;
}

async function measure(name, events, run) {
  await publisher.publish(`warm-${name}`, note(0));
  await redis.config('RESETSTAT');
  await run();
  // INFO commandstats counts a command once it ran: the reading itself is not in it.
  const all = await commandstats();
  delete all.config;
  const perEvent = {};
  let calls = 0;
  for (const [cmd, s] of Object.entries(all)) {
    perEvent[cmd] = Math.round((s.calls / events) * 100) / 100;
    if (cmd !== 'evalsha' && cmd !== 'eval') calls += s.calls;
  }
  const info = all.info ?? { calls: 0, usec: 0 };
  const script = (all.evalsha?.usec ?? 0) / events;
  console.log(
    JSON.stringify({
      scenario: name,
      events,
      callsInsideScriptPerEvent: Math.round((calls / events) * 100) / 100,
      perEvent,
      scriptUsecPerEvent: Math.round(script * 10) / 10,
      infoUsecPerEvent: Math.round((info.usec / events) * 10) / 10,
    }),
  );
}

const N = 2_000;
await measure('one event per publish', N, async () => {
  for (let i = 0; i < N; i++) await publisher.publish('measure-one', note(i));
});
await measure('publishMany, 10 events of one user', N, async () => {
  for (let i = 0; i < N; i += 10) {
    await publisher.publishMany(Array.from({ length: 10 }, (_, k) => ({ userId: 'measure-ten', event: note(i + k) })));
  }
});
await publisher.close();
redis.disconnect();
