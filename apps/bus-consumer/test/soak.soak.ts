import { readFileSync } from 'node:fs';
import type { EventFrame } from '@livebus/protocol';
import { createPublisher } from '@livebus/publisher';
import { startBalancer, startRedisServer, waitFor } from '@livebus/test-support';
import { BusConsumer } from '../src/index';
import { type GatewayProcess, getJson, startGatewayProcess } from './gateway-process';

// The soak (`pnpm soak`, not in the default test command): two gateway processes
// behind a balancer on one Redis, loopback only. Steady users receive an event
// every SOAK_EVERY_MS while flapping users connect and leave every 1-3 s; a third
// of the way in Redis is killed for SOAK_REDIS_DOWN_MS, two thirds in one gateway
// is SIGKILLed and started again. It prints what was published, delivered, lost
// and duplicated, the max RSS of each process and /healthz p99, and fails on any loss.
const SECONDS = Number(process.env.SOAK_SECONDS ?? 180);
const STEADY = Number(process.env.SOAK_STEADY_USERS ?? 100);
const FLAPPING = Number(process.env.SOAK_FLAPPING_USERS ?? 200);
const EVERY_MS = Number(process.env.SOAK_EVERY_MS ?? 250);
const REDIS_DOWN_MS = Number(process.env.SOAK_REDIS_DOWN_MS ?? 5_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rssMb = (pid: number | undefined) => {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;
  } catch {
    return 0;
  }
};
const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
};

it(`soak: ${SECONDS} s, ${STEADY} steady and ${FLAPPING} flapping users, a Redis restart and an instance kill`, async () => {
  const redis = await startRedisServer();
  const balancer = await startBalancer([]);
  const env = { REDIS_URL: redis.url, LOG_LEVEL: 'warn' };
  const gateways: GatewayProcess[] = [
    await startGatewayProcess('soak-a', env),
    await startGatewayProcess('soak-b', env),
  ];
  balancer.setBackends(gateways.map((g) => g.port));
  const publisher = createPublisher({ redisUrl: redis.url });
  const url = `ws://127.0.0.1:${balancer.port}/ws`;
  const maxRss: Record<string, number> = {};
  const sampleRss = () => {
    for (const g of gateways) maxRss[g.id] = Math.max(maxRss[g.id] ?? 0, rssMb(g.child.pid));
    maxRss.soak = Math.max(maxRss.soak ?? 0, process.memoryUsage().rss / 1024 / 1024);
  };

  const steady = Array.from({ length: STEADY }, (_, i) => {
    const client = new BusConsumer({
      url,
      userId: `soak-steady-${i}`,
      minReconnectDelayMs: 50,
      maxReconnectDelayMs: 1_000,
    });
    const seen: number[] = [];
    client.onClient('error', () => {});
    client.onAny((frame: EventFrame) => seen.push(Number((frame.data as { message: string }).message)));
    return { userId: `soak-steady-${i}`, client, seen };
  });
  for (let i = 0; i < steady.length; i += 50) await Promise.all(steady.slice(i, i + 50).map((s) => s.client.connect()));

  const until = Date.now() + SECONDS * 1_000;
  const healthMs: number[] = [];
  let healthFailures = 0;
  let flapCycles = 0;
  let published = 0;
  let publishFailures = 0;
  const timeline: string[] = [];
  const started = Date.now();
  const mark = (what: string) => timeline.push(`${Math.round((Date.now() - started) / 1000)} s: ${what}`);

  const health = (async () => {
    while (Date.now() < until) {
      for (const g of [...gateways]) {
        const h = await getJson(`${g.http}/healthz`).catch(() => undefined);
        if (h?.status === 200) healthMs.push(h.ms);
        else if (!g.child.killed) healthFailures++;
      }
      sampleRss();
      await sleep(250);
    }
  })();
  const flapping = Promise.all(
    Array.from({ length: FLAPPING }, async (_, i) => {
      await sleep(Math.random() * 2_000);
      while (Date.now() < until) {
        const client = new BusConsumer({ url, userId: `soak-flap-${i}` });
        client.onClient('error', () => {});
        await client.connect().then(
          () => flapCycles++,
          () => {},
        );
        await sleep(1_000 + Math.random() * 2_000);
        client.close();
      }
    }),
  );
  const publishing = (async () => {
    for (let round = 1; Date.now() < until; round++) {
      const batch = publisher.publishMany(
        steady.map((s) => ({
          userId: s.userId,
          event: { event: 'session.notice', data: { level: 'info', message: String(round) } },
        })),
      );
      batch.catch(() => {
        publishFailures++;
      });
      published = round;
      await sleep(EVERY_MS);
    }
  })();
  const faults = (async () => {
    await sleep((SECONDS * 1_000) / 3);
    mark('redis killed');
    await redis.kill();
    await sleep(REDIS_DOWN_MS);
    await redis.restart();
    mark('redis back');
    await sleep((SECONDS * 1_000) / 3 - REDIS_DOWN_MS);
    const victim = gateways[0] as GatewayProcess;
    mark(`${victim.id} SIGKILLed`);
    await victim.stop('SIGKILL');
    gateways.shift();
    await sleep(1_000);
    gateways.unshift(await startGatewayProcess('soak-a2', env, victim.port));
    mark('soak-a2 started in its place');
  })();
  await Promise.all([health, flapping, publishing, faults]);
  mark('publishing stopped');
  await publisher.flush(30_000);
  await Promise.all(steady.map((s) => waitFor(() => s.seen.length >= published, 'delivery', 30_000).catch(() => {})));

  let lost = 0;
  let duplicated = 0;
  for (const s of steady) {
    const unique = new Set(s.seen);
    duplicated += s.seen.length - unique.size;
    for (let k = 1; k <= published; k++) if (!unique.has(k)) lost++;
  }
  const figures = {
    seconds: SECONDS,
    steadyUsers: STEADY,
    flappingUsers: FLAPPING,
    flapCycles,
    eventsPublished: published * STEADY,
    eventsDelivered: steady.reduce((n, s) => n + new Set(s.seen).size, 0),
    lost,
    duplicated,
    publishFailures,
    outbox: publisher.stats(),
    maxRssMb: Object.fromEntries(Object.entries(maxRss).map(([k, v]) => [k, Math.round(v)])),
    healthz: { samples: healthMs.length, p99Ms: Math.round(percentile(healthMs, 99)), failures: healthFailures },
    timeline,
  };
  process.stdout.write(`\nSOAK FIGURES\n${JSON.stringify(figures, null, 2)}\n`);
  for (const s of steady) s.client.close();
  await publisher.close();
  await Promise.all(gateways.map((g) => g.stop('SIGTERM')));
  await balancer.close();
  await redis.stop();
  expect({ lost, duplicated, publishFailures }).toEqual({ lost: 0, duplicated: 0, publishFailures: 0 });
}, 600_000);
