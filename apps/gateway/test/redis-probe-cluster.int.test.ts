import {
  askRedis,
  type FrozenRedis,
  freezeRedis,
  type RedisClusterHandle,
  startRedisCluster,
  waitFor,
} from '@livebus/test-support';
import { composePorts } from '../src/compose';
import { startGateway, type TestGateway } from './helpers';

// The gateway's RedisProbe (watchRedis) on a real 3-master Redis Cluster (REDIS_CLUSTER): one
// frozen master (SIGSTOP: its connections stay open and it answers nothing) is redis down on
// /healthz and readiness 503 (READINESS_REQUIRES_REDIS) on every probe round while it stays frozen, and ready again once
// it answers (SIGCONT). The standalone case is frozen-redis-http.int.test.ts; the probe alone,
// on a fake client, src/redis/redis-probe.test.ts.
//
// Probe rounds are counted, not timed: each round PINGs every master, and nothing else in the
// gateway sends PING, so the PINGs a master has answered (INFO commandstats) count the rounds.
let cluster: RedisClusterHandle;
let t: TestGateway;
/** A node stopped and not continued yet: continued in afterAll whatever happened. */
let frozen: FrozenRedis | undefined;

/** The PINGs the node on `port` has answered since it started. */
async function pingsAnswered(port: number): Promise<number> {
  return Number(/cmdstat_ping:calls=(\d+)/.exec(await askRedis(port, 'info', 'commandstats'))?.[1] ?? 0);
}

beforeAll(async () => {
  cluster = await startRedisCluster();
  t = await startGateway(
    {
      instanceId: 'gw-probe-cluster',
      redisUrl: cluster.url,
      redisCluster: true,
      readinessRequiresRedis: true,
      logLevel: 'warn',
    },
    composePorts,
  );
}, 60_000);

afterAll(async () => {
  // Continued first: a stopped node must not outlive the test, nor hold the gateway's QUIT.
  frozen?.thaw();
  try {
    await t?.close();
  } finally {
    await cluster?.stop();
  }
}, 30_000);

const get = (path: string) => fetch(`${t.http}${path}`, { signal: AbortSignal.timeout(20_000) });
const readiness = async () => {
  const r = await get('/health/readiness');
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
};
const healthz = async () => {
  const r = await get('/healthz');
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
};

/**
 * Every readiness status seen while `rounds` more probe rounds reach each of `ports` (counted
 * in the PINGs they answer).
 */
async function readinessOver(rounds: number, ports: number[]): Promise<Set<number>> {
  const from = await Promise.all(ports.map(pingsAnswered));
  const seen = new Set<number>();
  let answered: number[] = [];
  try {
    await waitFor(
      async () => {
        seen.add((await readiness()).status);
        answered = (await Promise.all(ports.map(pingsAnswered))).map((n, i) => n - (from[i] as number));
        return answered.every((n) => n >= rounds);
      },
      `${rounds} probe rounds on ${ports.join(', ')}`,
      30_000,
      50,
    );
  } catch (error) {
    throw new Error(
      `${String(error)} (PINGs answered: ${answered.join(', ')}; readiness seen: ${[...seen].join(', ')})`,
    );
  }
  seen.add((await readiness()).status);
  return seen;
}

it('one frozen master of three: readiness 503 and /healthz redis down on every round while frozen; ready again once it answers', async () => {
  const masters = (await cluster.topology()).filter((n) => n.role === 'master' && n.slots.length > 0);
  expect(masters).toHaveLength(3);
  const ports = masters.map((n) => n.port);
  await waitFor(async () => (await readiness()).status === 200, 'ready before the freeze', 20_000);
  expect(await readiness()).toEqual({ status: 200, body: { status: 'ready', draining: false, redis: 'ok' } });
  expect(await healthz()).toMatchObject({ status: 200, body: { status: 'ok', redis: 'ok' } });
  // Every master answering: ready on every round.
  expect(await readinessOver(3, ports)).toEqual(new Set([200]));

  // Not the seed the gateway was given (cluster.url): a master it knows from the slot map only.
  const victim = masters.find((n) => n.port !== cluster.nodes[0]?.port) as (typeof masters)[number];
  const live = ports.filter((p) => p !== victim.port);
  frozen = await freezeRedis(victim.port);
  try {
    await waitFor(async () => (await readiness()).status === 503, 'readiness 503 while a master is frozen', 20_000);
    expect((await readiness()).body).toEqual({ status: 'not_ready', draining: false, redis: 'down' });
    // Liveness does not fail on a dependency: /healthz answers 200 and says redis down.
    expect(await healthz()).toMatchObject({ status: 200, body: { status: 'ok', redis: 'down' } });
    // Not ready while it stays frozen: the two other masters answer each round's PING (each
    // round reaches every master), and readiness says 503 all along.
    expect(await readinessOver(3, live)).toEqual(new Set([503]));
    expect(await healthz()).toMatchObject({ status: 200, body: { redis: 'down' } });
  } finally {
    frozen.thaw();
  }
  await waitFor(async () => (await readiness()).status === 200, 'ready again once the master answers', 30_000);
  expect((await readiness()).body).toEqual({ status: 'ready', draining: false, redis: 'ok' });
  expect(await healthz()).toMatchObject({ status: 200, body: { status: 'ok', redis: 'ok' } });
  // And stays ready: every master, the one that was frozen too, answers the rounds after.
  expect(await readinessOver(2, ports)).toEqual(new Set([200]));
}, 120_000);
