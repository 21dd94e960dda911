import { parseCursor } from '@livebus/protocol';
import {
  type FrozenRedis,
  freezeRedis,
  type RedisServerHandle,
  startRedisServer,
  startTcpProxy,
  type TcpProxy,
  waitFor,
} from '@livebus/test-support';
import { Redis } from 'ioredis';
import { createPublisher, type OutboxEvent, RedisStreamReader } from '../src';

const notice = (i: number) => ({
  event: 'session.notice' as const,
  data: { level: 'info' as const, message: String(i) },
});

// A Redis that keeps its connections and never answers (a frozen node, a blackholed failover
// address): the proxy stops forwarding both ways, as SIGSTOP would, without touching the server.
let server: RedisServerHandle;
let proxy: TcpProxy;
beforeAll(async () => {
  server = await startRedisServer();
});
beforeEach(async () => {
  proxy = await startTcpProxy(server.port);
});
afterEach(() => proxy.close());
afterAll(() => server.stop());

describe('a publisher whose Redis stops answering', () => {
  it('rejects a publish redis_unavailable (ETIMEDOUT) after its attempts with the outbox off, says Redis is down, and closes', async () => {
    const events: OutboxEvent[] = [];
    const p = createPublisher(
      { redisUrl: `redis://127.0.0.1:${proxy.port}` },
      { attemptTimeoutMs: 1_000, retryDelaysMs: [20], outboxMaxEvents: 0, onOutboxEvent: (e) => events.push(e) },
    );
    await p.publish('fr-1', notice(0));
    proxy.freeze();
    // Sent and never answered: Redis (when it thaws) may still run it.
    await expect(p.publish('fr-1', notice(1))).rejects.toMatchObject({
      code: 'redis_unavailable',
      attempts: 2,
      maybeStored: true,
      message: expect.stringMatching(/\(the event may be stored\)$/),
    });
    expect(p.stats()).toMatchObject({ redis: 'down', lastRedisFailure: { code: 'ETIMEDOUT' } });
    expect(events.map((e) => e.kind)).toContain('unreachable');
    // QUIT is never answered: close() gives up on it and ends the connection.
    await expect(p.close()).resolves.toBeUndefined();
  }, 20_000);

  it('close() settles while a publish waits for the frozen Redis', async () => {
    const p = createPublisher({ redisUrl: `redis://127.0.0.1:${proxy.port}` }, { attemptTimeoutMs: 1_000 });
    await p.publish('fr-2', notice(0));
    proxy.freeze();
    const stuck = p.publish('fr-2', notice(1));
    stuck.catch(() => {});
    await new Promise((r) => setImmediate(r)); // sent: in flight, never answered
    await expect(p.close()).resolves.toBeUndefined();
    // In flight when close() was called: its attempt failed, and close() does not retry.
    await expect(stuck).rejects.toMatchObject({ code: 'redis_unavailable', attempts: 1 });
  }, 20_000);

  it('close() settles with attemptTimeoutMs 0 too (attempts wait for ever): the call out is given up', async () => {
    const p = createPublisher({ redisUrl: `redis://127.0.0.1:${proxy.port}` }, { attemptTimeoutMs: 0 });
    await p.publish('fr-4', notice(0));
    proxy.freeze();
    const stuck = p.publish('fr-4', notice(1));
    stuck.catch(() => {});
    await new Promise((r) => setImmediate(r)); // sent: in flight, never answered
    await expect(p.close()).resolves.toBeUndefined();
    await expect(stuck).rejects.toMatchObject({ code: 'redis_unavailable', attempts: 1, maybeStored: true });
  }, 30_000);
});

describe('close() with a publish in flight', () => {
  it('lets Redis answer it: the publish resolves with the cursor the stream holds; one never sent rejects closed', async () => {
    const p = createPublisher({ redisUrl: server.url });
    await p.publish('fr-3', notice(0));
    const inFlight = p.publish('fr-3', notice(1));
    // The round is written to the socket; the next publish waits for the next round.
    await new Promise((r) => setImmediate(r));
    const neverSent = p.publish('fr-3', notice(2));
    neverSent.catch(() => {});
    await p.close();
    const stored = await inFlight;
    await expect(neverSent).rejects.toMatchObject({ code: 'closed' });
    const admin = new Redis(server.url);
    try {
      const head = await new RedisStreamReader(admin).readSince('fr-3', '0:0');
      const all = await new RedisStreamReader(admin).readSince('fr-3', `${parseCursor(head.cursor)?.epoch}:0`);
      expect(all.events.map((e) => [e.cursor, (e.data as { message: string }).message])).toEqual([
        [expect.any(String), '0'],
        [stored.cursor, '1'],
      ]);
    } finally {
      admin.disconnect();
    }
    expect(p.stats()).toMatchObject({ waiting: 0, stored: 2, dropped: 1 });
  });
});

describe('a publisher whose Redis freezes (SIGSTOP) while the name it dials moves to a new primary', () => {
  // A frozen process still accepts TCP (the kernel does): a connection made to it is open
  // ('connect') and its ready check (INFO) is never answered, with no timeout of ioredis's.
  let a: RedisServerHandle;
  let b: RedisServerHandle;
  let endpoint: TcpProxy;
  beforeAll(async () => {
    [a, b] = await Promise.all([startRedisServer(), startRedisServer()]);
    endpoint = await startTcpProxy(a.port);
  });
  afterAll(async () => {
    await endpoint.close();
    await Promise.all([a.stop(), b.stop()]);
  });

  it('drops a new connection whose ready check is never answered, and stores the event once the name points at B', async () => {
    const p = createPublisher(
      { redisUrl: `redis://127.0.0.1:${endpoint.port}` },
      { attemptTimeoutMs: 500, retryDelaysMs: [100] },
    );
    let frozen: FrozenRedis | undefined;
    try {
      await p.publish('fz-1', notice(0));
      frozen = await freezeRedis(a.port);
      const second = p.publish('fz-1', notice(1));
      const outcome = { value: 'pending' as unknown };
      second.then(
        (stored) => (outcome.value = stored),
        (error) => (outcome.value = error),
      );
      // Three attempts failed: the first timed out on the old connection (dropped for a new one),
      // the second met it closing, the third timed out on the new one, made to the frozen A and
      // never past its ready check (about 1.1 s in).
      await waitFor(() => p.stats().retried >= 3, 'three attempts failed', 10_000);
      endpoint.retarget(b.port);
      await waitFor(() => outcome.value !== 'pending', 'the second publish to settle', 20_000);
      expect(outcome.value).toMatchObject({ cursor: expect.any(String) });
    } finally {
      frozen?.thaw();
      await p.close();
    }
  }, 40_000);
});
