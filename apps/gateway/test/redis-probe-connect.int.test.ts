import { CloseCode } from '@livebus/protocol';
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
import { instanceChannelName } from '../src/fleet/instances/redis-instance-channel';
import { connectAs, httpJson, startGateway, type TestClient, type TestGateway } from './helpers';

// The gateway's RedisProbe on a real standalone Redis reached by a name (a TCP proxy: ElastiCache's
// primary endpoint). Redis A freezes (SIGSTOP: its kernel still accepts connections, it answers
// nothing) and the connection to it is cut: ioredis reconnects through the name to A, and its
// ready check (an INFO, with no timeout of ioredis's) is never answered, so the connection waits
// in status 'connect'. The name then moves to B, which answers: only a new connection goes there.
// The probe counts the rounds in 'connect' as unanswered and replaces the connection after
// reconnectAfterRounds (5, one a second). The subscribers made from it before the freeze (the
// instance channel's, and the event bus's, made for a session) wait on A as well, and are replaced
// with it: a session opened on B gets its live events and the control messages sent to this
// instance. The probe alone, on a fake client: src/redis/redis-probe.test.ts; a frozen Redis on a
// connection that was ready: frozen-redis-http.int.test.ts.
let a: RedisServerHandle;
let b: RedisServerHandle;
let endpoint: TcpProxy;
let t: TestGateway;
/** A stopped A, continued in afterAll whatever happened. */
let frozen: FrozenRedis | undefined;
/** The sessions opened, closed in afterAll. */
const sessions: TestClient[] = [];

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
    await Promise.all(sessions.map((s) => s.close()));
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

/** A session of `uid`, closed in afterAll. */
async function open(uid: string) {
  const opened = await connectAs(t.url, uid);
  sessions.push(opened.client);
  return opened;
}

/** POST /publish of a notice to `uid`: accepted. */
async function publish(uid: string, message: string): Promise<void> {
  const r = await httpJson(`${t.http}/publish`, {
    method: 'POST',
    body: JSON.stringify({ user_id: uid, event: { event: 'session.notice', data: { level: 'info', message } } }),
  });
  expect(r.status).toBe(202);
}

/** The messages of the notices a session got as events, in order. */
const received = (c: TestClient) => c.events().map((e) => (e.data as { message?: unknown }).message);

/** Whether the Redis on `port` has a connection named as the gateway's (openRedis: `livebus-<instance>`). */
async function hasGatewayConnection(port: number): Promise<boolean> {
  return (await askRedis(port, 'client', 'list')).includes(`name=livebus-${INSTANCE} `);
}

describe('a standalone connection waiting in ioredis status connect (a frozen Redis accepted it, never answers its ready check)', () => {
  it('is replaced by the probe, with the subscribers made from it: once the name points at an answering Redis, /healthz says redis ok, and a session there gets its live events and control messages', async () => {
    // A session on A: the bus's subscriber is made for it (the instance channel's was at listen).
    const first = await open('probe-connect-a');
    await publish('probe-connect-a', 'on A');
    await waitFor(() => received(first.client).length === 1, 'the event published on A');

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

    // The failover: new connections through the name reach B. The ones waiting on A (the main
    // connection and both subscribers) stay there unless something replaces them.
    endpoint.retarget(b.port);
    await waitFor(async () => (await redisHealth()) === 'ok', '/healthz redis ok again, on B', 15_000);
    expect(await hasGatewayConnection(b.port)).toBe(true);

    // A session opened now: its SSUBSCRIBE goes to the bus's subscriber, which must be on B for the
    // hello to be welcomed and the event published on B to come live.
    const second = await open('probe-connect-b');
    await publish('probe-connect-b', 'on B');
    await waitFor(() => received(second.client).length === 1, 'the event published on B, at the session');
    expect(received(second.client)).toEqual(['on B']);

    // A control message to this instance (`replace`: the session reconnected elsewhere) comes over
    // the instance channel's subscriber, which must be on B: the session is closed with 4008.
    const replace = JSON.stringify({ type: 'replace', uid: 'probe-connect-b', session_id: second.welcome.session_id });
    await waitFor(
      async () => (await askRedis(b.port, 'publish', instanceChannelName(INSTANCE), replace)).trim() === '1',
      "the instance channel's subscriber on B",
      10_000,
    );
    expect((await second.client.closed).code).toBe(CloseCode.Replaced);
  }, 60_000);
});
