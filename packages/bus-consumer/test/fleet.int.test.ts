import type { EventFrame } from '@livebus/protocol';
import { createPublisher, type Publisher } from '@livebus/publisher';
import { type Balancer, type RedisServerHandle, startBalancer, startRedisServer, waitFor } from '@livebus/test-support';
import { BusConsumer } from '../src/index';
import { type GatewayProcess, startGatewayProcess } from './gateway-process';

// Real gateway processes on one redis-server behind a round-robin balancer (the ALB), the
// real client, and a publisher in this process publishing at a steady rate.

type Instance = GatewayProcess;

let redis: RedisServerHandle;
let balancer: Balancer;
let publisher: Publisher;
const running = new Set<Instance>();

/** A gateway process on this file's Redis; on `port` (a restart in place), retried while it is taken. */
async function startInstance(id: string, port?: number): Promise<Instance> {
  const instance = await startGatewayProcess(id, { REDIS_URL: redis.url, LOG_LEVEL: 'error' }, port);
  running.add(instance);
  return instance;
}

async function stopInstance(instance: Instance, signal: 'SIGTERM' | 'SIGKILL'): Promise<number | null> {
  const code = await instance.stop(signal);
  running.delete(instance);
  return code;
}

beforeAll(async () => {
  redis = await startRedisServer();
  balancer = await startBalancer([]);
  publisher = createPublisher({ redisUrl: redis.url });
});
afterAll(async () => {
  await Promise.all([...running].map((i) => i.stop('SIGKILL')));
  await publisher.close();
  await balancer.close();
  await redis.stop();
});

/** A client through the balancer that records every event it handles and every gap. */
function follow(userId: string) {
  const client = new BusConsumer({
    url: `ws://127.0.0.1:${balancer.port}/ws`,
    userId,
    minReconnectDelayMs: 20,
    maxReconnectDelayMs: 200,
    pingIntervalMs: 500,
    pingTimeoutMs: 1_500,
  });
  const seen: number[] = [];
  const gaps: unknown[] = [];
  const servedBy = new Set<string>();
  client.onClient('error', () => {});
  client.onClient('gap', (gap) => gaps.push(gap));
  client.onClient('open', (welcome) => servedBy.add(welcome.instance_id));
  client.onAny((frame: EventFrame) => seen.push(Number((frame.data as { message: string }).message)));
  return { client, seen, gaps, servedBy };
}

/** Publishes 1..n every `everyMs` through Redis, from this process (a backend). */
async function publishSteadily(userId: string, n: number, everyMs: number, during: (i: number) => Promise<void>) {
  for (let i = 1; i <= n; i++) {
    await publisher.publish(userId, { event: 'session.notice', data: { level: 'info', message: String(i) } });
    await during(i);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

describe('a fleet of gateway processes behind a balancer', () => {
  it('SIGKILL of the serving instance under a steady publish rate: 0 lost, 0 duplicated, in order, no gap', async () => {
    const a = await startInstance('gw-k1');
    const b = await startInstance('gw-k2');
    balancer.setBackends([a.port, b.port]);
    const f = follow('killed-under');
    await f.client.connect();
    const first = f.client.session?.instance_id;
    const victim = first === a.id ? a : b;
    await publishSteadily('killed-under', 150, 10, async (i) => {
      if (i === 50) await stopInstance(victim, 'SIGKILL');
    });
    await waitFor(() => f.seen.length >= 150, 'every event', 10_000);
    expect(f.seen).toEqual(range(150));
    expect(f.gaps).toEqual([]);
    expect(f.client.counters.reconnects).toBeGreaterThanOrEqual(1);
    expect([...f.servedBy].sort()).toEqual([a.id, b.id].sort());
    f.client.close();
    for (const i of running) await stopInstance(i, 'SIGTERM');
  }, 60_000);

  it('a rolling restart of every instance (SIGTERM, start anew) loses nothing and never says gap', async () => {
    let a = await startInstance('gw-r1');
    let b = await startInstance('gw-r2');
    balancer.setBackends([a.port, b.port]);
    const followers = [follow('roller-1'), follow('roller-2'), follow('roller-3')];
    await Promise.all(followers.map((f) => f.client.connect()));
    const users = ['roller-1', 'roller-2', 'roller-3'];
    let step = 0;
    const steps = [
      async () => {
        expect(await stopInstance(a, 'SIGTERM')).toBe(0);
        a = await startInstance('gw-r1b', a.port);
      },
      async () => {
        expect(await stopInstance(b, 'SIGTERM')).toBe(0);
        b = await startInstance('gw-r2b', b.port);
      },
    ];
    for (let i = 1; i <= 120; i++) {
      await publisher.publishMany(
        users.map((u) => ({
          userId: u,
          event: { event: 'session.notice', data: { level: 'info', message: String(i) } },
        })),
      );
      if (i % 40 === 0 && step < steps.length) await (steps[step++] as () => Promise<void>)();
      await new Promise((r) => setTimeout(r, 10));
    }
    for (const f of followers) {
      await waitFor(() => f.seen.length >= 120, 'every event', 10_000);
      expect(f.seen).toEqual(range(120));
      expect(f.gaps).toEqual([]);
      f.client.close();
    }
    for (const i of running) await stopInstance(i, 'SIGTERM');
  }, 90_000);
});
