import { parseCursor } from '@livebus/protocol';
import {
  type RedisClusterHandle,
  type RedisServerHandle,
  startRedisCluster,
  startRedisServer,
} from '@livebus/test-support';
import { Cluster, Redis } from 'ioredis';
import {
  createPublisher,
  InvalidEventError,
  PublishError,
  RedisStreamReader,
  readStoredFramePosition,
  userKeys,
} from '../src';
import { endSlotRefreshes } from '../src/redis';

const progress = (percent: number) => ({
  event: 'task.progress_update' as const,
  data: { task_id: 't1', status: 'running' as const, progress: percent },
});

let server: RedisServerHandle;
let admin: Redis;
beforeAll(async () => {
  server = await startRedisServer();
  admin = new Redis(server.url);
});
afterAll(async () => {
  admin.disconnect();
  await server.stop();
});

describe('createPublisher (standalone Redis)', () => {
  it('publish and publishMany return the stored events with consecutive cursors', async () => {
    const p = createPublisher({ redisUrl: server.url });
    const a = await p.publish('pub-u1', progress(10));
    const b = await p.publish('pub-u1', 'task.progress_update', { task_id: 't1', status: 'running', progress: 20 });
    expect(a).toMatchObject({ type: 'event', event: 'task.progress_update', data: { progress: 10 } });
    expect(parseCursor(b.cursor)).toEqual({ epoch: parseCursor(a.cursor)?.epoch, offset: 2 });
    const many = await p.publishMany([
      { userId: 'pub-u1', event: progress(30) },
      { userId: 'pub-u2', event: progress(1) },
      { userId: 'pub-u1', event: progress(40) },
    ]);
    expect(many.map((e) => parseCursor(e.cursor)?.offset)).toEqual([3, 1, 4]);
    const read = await new RedisStreamReader(admin).readSince('pub-u1', a.cursor);
    expect(read).toEqual({ status: 'resumed', events: [b, many[0], many[2]], cursor: many[2]?.cursor });
    await expect(p.publish('pub-u1', { event: 'nope', data: {} } as never)).rejects.toBeInstanceOf(InvalidEventError);
    await p.close();
  });

  it('stores and SPUBLISHes frames whose cursor readStoredFramePosition reads from the prefix', async () => {
    const p = createPublisher({ redis: admin });
    const sub = admin.duplicate();
    const heard: string[] = [];
    sub.on('smessage', (_channel: string, message: string) => heard.push(message));
    await sub.ssubscribe(userKeys('pub-prefix').channel);
    const stored = [
      await p.publish('pub-prefix', progress(1)),
      await p.publish('pub-prefix', { event: 'session.notice', data: { level: 'info', message: '"cursor":"x:1"' } }),
    ];
    const kept = (await admin.xrange(userKeys('pub-prefix').stream, '-', '+')).map(([, f]) => f[3] as string);
    for (let t = 0; heard.length < 2 && t < 100; t++) await new Promise((r) => setTimeout(r, 10));
    for (const texts of [kept, heard]) {
      expect(texts.map((text) => readStoredFramePosition(text))).toEqual(stored.map((e) => parseCursor(e.cursor)));
      expect(texts.map((text) => JSON.parse(text))).toEqual(stored);
    }
    sub.disconnect();
    await p.close();
  });

  it('sets the stream to expire after the retention age and the epoch later, and keeps the byte count exact', async () => {
    const p = createPublisher({ redis: admin }, { retentionMs: 10_000, retentionBytes: 4_096, epochTtlMs: 120_000 });
    const big = (i: number) => ({
      event: 'session.notice' as const,
      data: { level: 'info' as const, message: `${i}${'x'.repeat(1_500)}` },
    });
    const stored = [];
    for (let i = 0; i < 5; i++) stored.push(await p.publish('pub-ttl', big(i)));
    const k = userKeys('pub-ttl');
    const streamTtl = await admin.pttl(k.stream);
    expect(streamTtl).toBeGreaterThan(60_000);
    expect(streamTtl).toBeLessThanOrEqual(70_000);
    expect(await admin.pttl(k.meta)).toBeGreaterThan(110_000);
    // 4 KB hold two of these; 'b' is the exact sum of what is left.
    const left = (await admin.xrange(k.stream, '-', '+')).map(([, f]) => f[3] as string);
    expect(left).toHaveLength(2);
    expect(Number(await admin.hget(k.meta, 'b'))).toBe(left.reduce((n, d) => n + Buffer.byteLength(d), 0));
    expect(left.map((d) => JSON.parse(d).cursor)).toEqual([stored[3]?.cursor, stored[4]?.cursor]);
    await p.close();
  });

  it('reloads the Lua library after FUNCTION FLUSH', async () => {
    const p = createPublisher({ redis: admin });
    await p.publish('pub-flush', progress(1));
    await admin.call('FUNCTION', 'FLUSH');
    const after = await p.publish('pub-flush', progress(2));
    expect(parseCursor(after.cursor)?.offset).toBe(2);
    await p.close();
  });

  // The two cases that kill Redis kill their own, so that the file's shared server and `admin`
  // stay up and unchanged for every other case, whatever the order.
  it('retries through a restart of Redis within the retry window, then succeeds', async () => {
    const own = await startRedisServer();
    const events: string[] = [];
    const p = createPublisher({ redisUrl: own.url }, { onOutboxEvent: (e) => events.push(e.kind) });
    await p.publish('pub-restart', progress(1));
    await own.kill();
    const publishing = p.publish('pub-restart', progress(2));
    setTimeout(() => void own.restart(), 1_500);
    const stored = await publishing;
    // The restarted server is empty: a new epoch, offset 1.
    expect(parseCursor(stored.cursor)?.offset).toBe(1);
    // It was stored after Redis was found away (once per cause) and came back, not before the restart.
    const seen = events.filter((k) => k === 'unreachable' || k === 'reachable');
    expect([seen[0], seen.at(-1), seen.filter((k) => k === 'reachable').length]).toEqual([
      'unreachable',
      'reachable',
      1,
    ]);
    expect(p.stats()).toMatchObject({ stored: 2, queued: 0, dropped: 0, redis: 'up' });
    await p.close();
    await own.stop();
  }, 20_000);

  it('without an outbox, rejects with PublishError redis_unavailable once every retry failed (1 s, 2 s, 4 s)', async () => {
    const own = await startRedisServer();
    const p = createPublisher({ redisUrl: own.url }, { outboxMaxEvents: 0 });
    await own.kill();
    const started = Date.now();
    try {
      const error = await p.publish('pub-down', progress(1)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(PublishError);
      expect(error).toMatchObject({ name: 'PublishError', code: 'redis_unavailable', attempts: 4 });
      expect((error as PublishError).cause).toBeInstanceOf(Error);
      // The 1 s + 2 s + 4 s between the attempts is a figure here.
      process.stdout.write(
        `publisher give-up figures: ${JSON.stringify({ attempts: 4, tookMs: Date.now() - started })}\n`,
      );
    } finally {
      await p.close();
      await own.stop();
    }
  }, 20_000);

  it('never reopens a client of your own that you closed: its later publishes reject, nothing is stored after it', async () => {
    const own = new Redis(server.url);
    const p = createPublisher({ redis: own }, { retryDelaysMs: [20] });
    let readies = 0;
    try {
      const first = await p.publish('pub-own-quit', progress(1));
      await own.quit();
      own.on('ready', () => readies++);
      const error = await p.publish('pub-own-quit', progress(2)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PublishError);
      expect(error).toMatchObject({
        code: 'redis_unavailable',
        message: expect.stringContaining('the Redis client given to createPublisher is closed'),
      });
      await p.close();
      // Left as the owner left it: ended, never connected again (a process holding it would not exit).
      expect([own.status, readies]).toEqual(['end', 0]);
      const read = await new RedisStreamReader(admin).readSince('pub-own-quit', first.cursor.replace(/:1$/, ':0'));
      expect(read.events).toEqual([first]);
    } finally {
      own.disconnect();
    }
  });

  it('retryDelaysMs shrinks the window', async () => {
    const p = createPublisher({ redisUrl: 'redis://127.0.0.1:1' }, { retryDelaysMs: [50], outboxMaxEvents: 0 });
    await expect(p.publish('pub-none', progress(1))).rejects.toMatchObject({ code: 'redis_unavailable', attempts: 2 });
    await p.close();
  });
});

describe('createPublisher (Redis Cluster)', () => {
  let cluster: RedisClusterHandle;
  beforeAll(async () => {
    cluster = await startRedisCluster();
  }, 60_000);
  afterAll(() => cluster.stop());

  it('publishes to users in different slots, the keys of each in one slot', async () => {
    const p = createPublisher({ redisUrl: cluster.url, cluster: true });
    const users = Array.from({ length: 12 }, (_, i) => `cluster-user-${i}`);
    const out = await p.publishMany(users.map((userId) => ({ userId, event: progress(5) })));
    expect(out.map((e) => parseCursor(e.cursor)?.offset)).toEqual(users.map(() => 1));
    const seed = new Cluster(cluster.nodes);
    try {
      const slots = new Set<string>();
      for (const u of users) {
        const node = (await seed.cluster('KEYSLOT', userKeys(u).stream)) as number;
        slots.add(String(node));
        expect(await seed.xlen(userKeys(u).stream)).toBe(1);
      }
      expect(slots.size).toBeGreaterThan(1);
      const reader = new RedisStreamReader(seed);
      const read = await reader.readSince(users[0] as string, `${parseCursor(out[0]?.cursor ?? '')?.epoch}:0`);
      expect(read).toMatchObject({ status: 'resumed', events: [out[0]] });
    } finally {
      seed.disconnect();
      endSlotRefreshes(seed);
      await p.close();
    }
  });
});

describe('createPublisher on a node of a Redis Cluster without cluster: true', () => {
  let cluster: RedisClusterHandle;
  beforeAll(async () => {
    cluster = await startRedisCluster();
  }, 60_000);
  afterAll(() => cluster.stop());

  it("stores the users whose keys that node holds and refuses the others' events at once, naming the setting", async () => {
    const p = createPublisher({ redisUrl: cluster.url });
    const users = Array.from({ length: 12 }, (_, i) => `plain-user-${i}`);
    try {
      const settled = await Promise.all(
        users.map((userId) =>
          p.publish(userId, progress(5)).then(
            () => 'stored',
            (error: PublishError) => `${error.code}: ${error.message}`,
          ),
        ),
      );
      const seed = Number(new URL(cluster.url).port);
      for (const [i, u] of users.entries()) {
        const here = (await cluster.masterOf(userKeys(u).stream)).port === seed;
        if (here) expect(settled[i]).toBe('stored');
        else expect(settled[i]).toMatch(/^redis_error: .*is a node of a Redis Cluster.*cluster: true/);
      }
      // The twelve users span the three masters: some stored, some refused.
      const stored = settled.filter((s) => s === 'stored').length;
      expect([stored > 0, stored < users.length]).toEqual([true, true]);
    } finally {
      await p.close();
    }
  });
});

describe('createPublisher (a Redis Cluster that requires a password)', () => {
  let cluster: RedisClusterHandle;
  beforeAll(async () => {
    cluster = await startRedisCluster({ password: 'cluster-secret/1' });
  }, 60_000);
  afterAll(() => cluster.stop());

  it('authenticates with every node the slot map names, not only the seed of its URL', async () => {
    expect(cluster.url).toMatch(/^redis:\/\/:cluster-secret%2F1@127\.0\.0\.1:\d+$/);
    const p = createPublisher({ redisUrl: cluster.url, cluster: true });
    const users = Array.from({ length: 12 }, (_, i) => `auth-user-${i}`);
    try {
      const out = await p.publishMany(users.map((userId) => ({ userId, event: progress(5) })));
      expect(out.map((e) => parseCursor(e.cursor)?.offset)).toEqual(users.map(() => 1));
      // On every master: the twelve users' slots span the three.
      const masters = new Set<number>();
      for (const u of users) masters.add((await cluster.masterOf(userKeys(u).stream)).port);
      expect(masters.size).toBe(3);
    } finally {
      await p.close();
    }
  });
});
