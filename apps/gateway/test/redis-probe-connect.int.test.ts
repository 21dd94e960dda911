import {
  askRedis,
  type FrozenRedis,
  freezeRedis,
  type RedisServerHandle,
  startRedisServer,
  startTcpProxy,
  type TcpProxy,
  waitFor,
} from '@livebus/test-support';
import { composePorts } from '../src/compose';
import { startGateway, type TestGateway } from './helpers';

// The gateway's RedisProbe on a real standalone Redis reached by a name (a TCP proxy: ElastiCache's
// primary endpoint). Redis A freezes (SIGSTOP: its kernel still accepts connections, it answers
// nothing) and the connection to it is cut: ioredis reconnects through the name to A, and its
// ready check (an INFO, with no timeout of ioredis's) is never answered, so the connection waits
// in status 'connect'. The name then moves to B, which answers: only a new connection goes there.
// The probe counts the rounds in 'connect' as unanswered and replaces the connection after
// reconnectAfterRounds (5, one a second). The probe alone, on a fake client:
// src/redis/redis-probe.test.ts; a frozen Redis on a connection that was ready:
// frozen-redis-http.int.test.ts.
let a: RedisServerHandle;
let b: RedisServerHandle;
let endpoint: TcpProxy;
let t: TestGateway;
/** A stopped A, continued in afterAll whatever happened. */
let frozen: FrozenRedis | undefined;

const INSTANCE = 'gw-probe-connect';

beforeAll(async () => {
  [a, b] = await Promise.all([startRedisServer(), startRedisServer()]);
  endpoint = await startTcpProxy(a.port);
  t = await startGateway({ instanceId: INSTANCE, redisUrl: `redis://127.0.0.1:${endpoint.port}` }, composePorts);
});

afterAll(async () => {
  // Continued first: a stopped Redis must not outlive the test.
  frozen?.thaw();
  try {
    await t?.close();
  } finally {
    await endpoint?.close();
    await Promise.all([a?.stop(), b?.stop()]);
  }
}, 20_000);

/** What /healthz says of Redis: `ok` only while the connection is ready and its PINGs are answered. */
async function redisHealth(): Promise<unknown> {
  const res = await fetch(`${t.http}/healthz`, { signal: AbortSignal.timeout(5_000) });
  return ((await res.json()) as { redis?: unknown }).redis;
}

/** Whether the Redis on `port` has a connection named as the gateway's (openRedis: `livebus-<instance>`). */
async function hasGatewayConnection(port: number): Promise<boolean> {
  return (await askRedis(port, 'client', 'list')).includes(`name=livebus-${INSTANCE} `);
}

describe('a standalone connection waiting in ioredis status connect (a frozen Redis accepted it, never answers its ready check)', () => {
  it('is replaced by the probe: once the name points at an answering Redis, the gateway is on it and /healthz says redis ok', async () => {
    const before = endpoint.connections;
    expect(before).toBeGreaterThan(0);
    expect(await redisHealth()).toBe('ok');
    expect(await hasGatewayConnection(a.port)).toBe(true);

    frozen = await freezeRedis(a.port);
    // The network cut: every connection through the name reconnects, to the frozen A. The TCP
    // handshakes succeed (A's kernel answers them), so each is open again through the proxy.
    endpoint.dropAll();
    await waitFor(() => endpoint.connections >= before, 'the reconnections to the frozen A', 10_000);
    await waitFor(async () => (await redisHealth()) === 'down', '/healthz redis down', 10_000);

    // The failover: new connections through the name reach B. The one waiting on A stays there
    // unless something replaces it.
    endpoint.retarget(b.port);
    await waitFor(async () => (await redisHealth()) === 'ok', '/healthz redis ok again, on B', 15_000);
    expect(await hasGatewayConnection(b.port)).toBe(true);
  }, 30_000);
});
