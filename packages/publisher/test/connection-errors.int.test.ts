import { type RedisServerHandle, startRedisServer, waitFor } from '@livebus/test-support';
import { Redis } from 'ioredis';
import {
  createPublisher,
  type OutboxEvent,
  PublishError,
  type PublisherConnection,
  type PublisherOptions,
} from '../src';

const notice = (i: number) => ({
  event: 'session.notice' as const,
  data: { level: 'info' as const, message: String(i) },
});

let server: RedisServerHandle;
beforeAll(async () => {
  server = await startRedisServer();
});
afterAll(() => server.stop());

describe('createPublisher refuses a connection that would go elsewhere', () => {
  it.each([
    ['unset (process.env.REDIS_URL! with the variable missing)', undefined],
    ['empty', ''],
    ['blank', '  '],
  ])('throws at once, naming redisUrl and REDIS_URL, when redisUrl is %s', (_, redisUrl) => {
    const make = () => createPublisher({ redisUrl } as PublisherConnection);
    expect(make).toThrow(TypeError);
    expect(make).toThrow(/`redisUrl` is missing or empty \(is REDIS_URL set\?\)/);
  });

  it('throws for a string that is not a redis:// or rediss:// URL, without quoting it', () => {
    for (const redisUrl of ['undefined', 'localhost:6379', 'http://user:hunter2@example.com']) {
      let thrown: unknown;
      try {
        createPublisher({ redisUrl });
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(TypeError);
      expect((thrown as Error).message).toContain('`redisUrl` must be a redis:// or rediss:// URL');
      expect((thrown as Error).message).not.toContain('hunter2');
    }
  });
});

describe('createPublisher options', () => {
  it.each([-1, Number.NaN, Number.POSITIVE_INFINITY])('refuses attemptTimeoutMs %p at once', (attemptTimeoutMs) => {
    const make = () => createPublisher({ redisUrl: 'redis://127.0.0.1:1' }, { attemptTimeoutMs });
    expect(make).toThrow(TypeError);
    expect(make).toThrow(/attemptTimeoutMs must be a number >= 0/);
  });

  it.each([-1, Number.NaN, Number.POSITIVE_INFINITY])('refuses outboxMaxBytes %p at once', (outboxMaxBytes) => {
    const make = () => createPublisher({ redisUrl: 'redis://127.0.0.1:1' }, { outboxMaxBytes });
    expect(make).toThrow(TypeError);
    expect(make).toThrow(/outboxMaxBytes must be a number >= 0/);
  });

  it.each<[PublisherOptions, RegExp]>([
    [
      { outboxMaxEvents: Number.NaN },
      /^createPublisher: outboxMaxEvents must be a whole number >= 0 \(0: no outbox\), got NaN$/,
    ],
    [{ retryDelaysMs: [] }, /^createPublisher: retryDelaysMs must hold at least one delay while the outbox is on/],
    [{ retentionMs: 1.5 }, /^createPublisher: retentionMs must be a whole number >= 0, got 1.5$/],
  ])('refuses %p at once, naming the option as createPublisher calls it', (options, message) => {
    expect(() => createPublisher({ redisUrl: 'redis://127.0.0.1:1' }, options)).toThrow(message);
  });
});

describe('publishMany and flush given a wrong argument', () => {
  it.each([undefined, null, 'alice'])(
    'publishMany(%p) rejects with a TypeError rather than throwing, as publish does',
    async (items) => {
      const p = createPublisher({ redisUrl: 'redis://127.0.0.1:1' });
      try {
        let result: Promise<unknown> | undefined;
        expect(() => {
          result = p.publishMany(items as never);
        }).not.toThrow();
        await expect(result).rejects.toThrow(TypeError);
        await expect(result).rejects.toThrow(/^publishMany: items must be an array of \{ userId, event \}/);
        expect(p.stats()).toMatchObject({ waiting: 0, dropped: 0 });
      } finally {
        await p.close();
      }
    },
  );

  it.each([undefined, Number.NaN, -1, '100'])(
    'flush(%p) rejects with a TypeError naming timeoutMs',
    async (timeoutMs) => {
      const p = createPublisher({ redisUrl: 'redis://127.0.0.1:1' });
      try {
        await expect(p.flush(timeoutMs as never)).rejects.toThrow(/^flush: timeoutMs must be a number >= 0/);
        await expect(p.flush(0)).resolves.toBe(true);
      } finally {
        await p.close();
      }
    },
  );
});

describe('while Redis cannot be reached, the publisher says why', () => {
  it('stats() and onOutboxEvent carry "cannot reach Redis at HOST:PORT (ECONNREFUSED)" once per change, then reachable', async () => {
    const down = await startRedisServer();
    await down.kill();
    const events: OutboxEvent[] = [];
    const p = createPublisher(
      { redisUrl: `redis://127.0.0.1:${down.port}` },
      { retryDelaysMs: [20, 20, 20], onOutboxEvent: (e) => events.push(e) },
    );
    try {
      expect(p.stats()).toMatchObject({ redis: 'unknown', lastRedisFailure: undefined });
      const sent = p.publish('ce-refused', notice(1));
      // Queued: four attempts failed (the first and three retries), each on a refused connection.
      await waitFor(() => events.some((e) => e.kind === 'queued'), 'the event to be queued');
      const stats = p.stats();
      expect(stats).toMatchObject({ waiting: 1, redis: 'down' });
      expect(stats.lastRedisFailure).toMatchObject({
        code: 'ECONNREFUSED',
        message: `cannot reach Redis at 127.0.0.1:${down.port} (ECONNREFUSED)`,
      });
      // One `unreachable` for the whole outage, however many attempts failed.
      const unreachable = events.filter((e) => e.kind === 'unreachable');
      expect(unreachable).toEqual([
        { kind: 'unreachable', failure: stats.lastRedisFailure, waiting: expect.any(Number) },
      ]);

      await down.restart();
      await expect(sent).resolves.toMatchObject({ event: 'session.notice' });
      await waitFor(() => events.some((e) => e.kind === 'reachable'), 'reachable');
      expect(events.map((e) => e.kind).filter((k) => k === 'unreachable' || k === 'reachable')).toEqual([
        'unreachable',
        'reachable',
      ]);
      // Up again; the last failure stays for the record.
      expect(p.stats()).toMatchObject({ redis: 'up', lastRedisFailure: { code: 'ECONNREFUSED' } });
    } finally {
      await p.close();
      await down.stop();
    }
  }, 20_000);

  it('names an unknown host with the URL as given', async () => {
    const events: OutboxEvent[] = [];
    const p = createPublisher(
      { redisUrl: 'redis://no-such-host.invalid:6390' },
      { retryDelaysMs: [20], outboxMaxEvents: 0, onOutboxEvent: (e) => events.push(e) },
    );
    try {
      const error = await p.publish('ce-host', notice(1)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PublishError);
      const code = p.stats().lastRedisFailure?.code;
      expect(code).toMatch(/^(ENOTFOUND|EAI_AGAIN)$/);
      expect(error).toMatchObject({
        code: 'redis_unavailable',
        message: `cannot reach Redis at no-such-host.invalid:6390 (${code}) after 2 attempt(s)`,
      });
      expect(events.filter((e) => e.kind === 'unreachable')).toHaveLength(1);
    } finally {
      await p.close();
    }
  });

  it('with the outbox off, the redis_unavailable error says where and why, not ioredis internals', async () => {
    const down = await startRedisServer();
    await down.kill();
    const p = createPublisher(
      { redisUrl: `redis://:hunter2@localhost:${down.port}` },
      { retryDelaysMs: [20], outboxMaxEvents: 0 },
    );
    try {
      const error = (await p.publish('ce-off', notice(1)).catch((e: unknown) => e)) as PublishError;
      expect(error).toMatchObject({
        name: 'PublishError',
        code: 'redis_unavailable',
        attempts: 2,
        message: `cannot reach Redis at localhost:${down.port} (ECONNREFUSED) after 2 attempt(s)`,
      });
    } finally {
      await p.close();
      await down.stop();
    }
  });

  it('a wrong password from the start is refused at once (redis_error, WRONGPASS), outbox on or off: no publish waits for it', async () => {
    const admin = new Redis(server.url);
    await admin.config('SET', 'requirepass', 'right-one');
    const events: OutboxEvent[] = [];
    const off = createPublisher(
      { redisUrl: `redis://:wrong-one@127.0.0.1:${server.port}` },
      { retryDelaysMs: [20], outboxMaxEvents: 0 },
    );
    const on = createPublisher(
      { redisUrl: `redis://:wrong-one@127.0.0.1:${server.port}` },
      { retryDelaysMs: [20], onOutboxEvent: (e) => events.push(e) },
    );
    try {
      for (const p of [off, on]) {
        await expect(p.publish('ce-auth', notice(1))).rejects.toMatchObject({ code: 'redis_error' });
        await waitFor(() => p.stats().lastRedisFailure, 'the failure');
        expect(p.stats()).toMatchObject({
          redis: 'down',
          lastRedisFailure: {
            code: 'WRONGPASS',
            message: `cannot reach Redis at 127.0.0.1:${server.port} (WRONGPASS)`,
          },
        });
        expect(JSON.stringify(p.stats())).not.toContain('wrong-one');
      }
      expect(events.filter((e) => e.kind === 'queued')).toEqual([]);
    } finally {
      await off.close();
      await on.close();
      await admin.config('SET', 'requirepass', '');
      admin.disconnect();
    }
  });

  it('a password Redis stops taking once events were stored (a rotation) is an outage: the outbox holds the event until it takes it again', async () => {
    const admin = new Redis(server.url);
    await admin.config('SET', 'requirepass', 'one');
    const events: OutboxEvent[] = [];
    const p = createPublisher(
      { redisUrl: `redis://:one@127.0.0.1:${server.port}` },
      { retryDelaysMs: [20], onOutboxEvent: (e) => events.push(e) },
    );
    try {
      await p.publish('ce-rotate', notice(1));
      // The server moves to the next password first; the publisher's connection is dropped and
      // authenticates again with the one it has.
      await admin.config('SET', 'requirepass', 'two');
      await admin.client('KILL', 'TYPE', 'normal');
      const sent = p.publish('ce-rotate', notice(2));
      await waitFor(() => events.some((e) => e.kind === 'queued'), 'the event to be queued');
      // The connection cut first, then the password refused: both an outage, the event held.
      await waitFor(
        () => events.some((e) => e.kind === 'unreachable' && e.failure.code === 'WRONGPASS'),
        'the password refused',
      );
      // The rotation rolled back (or the publisher's side caught up): the held event is stored.
      await admin.config('SET', 'requirepass', 'one');
      await expect(sent).resolves.toMatchObject({ event: 'session.notice' });
      expect(p.stats()).toMatchObject({ redis: 'up', stored: 2, dropped: 0 });
    } finally {
      await p.close();
      await admin.config('SET', 'requirepass', '');
      admin.disconnect();
    }
  });
});
