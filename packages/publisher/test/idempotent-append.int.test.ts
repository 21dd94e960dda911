import { type RedisServerHandle, startRedisServer, startTcpProxy, waitFor } from '@livebus/test-support';
import { Redis } from 'ioredis';
import {
  type BatchResult,
  type BatchTag,
  createPublisher,
  Outbox,
  RedisStreamReader,
  RedisStreamWriter,
  type UserBatch,
  userKeys,
} from '../src';
import { MAX_PUBLISHER_RECORDS } from '../src/redis/stream-scripts';

const notice = (i: number) => ({
  event: 'session.notice' as const,
  data: { level: 'info' as const, message: String(i) },
});

let server: RedisServerHandle;
let client: Redis;
beforeAll(async () => {
  server = await startRedisServer();
  client = new Redis(server.url);
});
afterAll(async () => {
  client.disconnect();
  await server.stop();
});

/** The numbers a user's stream holds, in order. */
async function streamOf(userId: string): Promise<number[]> {
  const entries = await client.xrange(userKeys(userId).stream, '-', '+');
  return entries.map(([, fields]) => Number(JSON.parse(fields[3] as string).data.message));
}

/** Messages SPUBLISHed on a user's channel while `run` runs. */
async function published(userId: string, run: () => Promise<void>): Promise<number> {
  const sub = new Redis(server.url);
  let count = 0;
  sub.on('smessage', () => count++);
  await sub.ssubscribe(userKeys(userId).channel);
  await run();
  // Its reply comes after every message sent before it, on the same connection.
  await sub.sunsubscribe();
  sub.disconnect();
  return count;
}

describe('appends tagged with a publisher id and a batch number', () => {
  it('stores a batch sent twice once, and answers the retry with the cursors stored the first time', async () => {
    const writer = new RedisStreamWriter(client);
    const user = 'idem-twice';
    const tag: BatchTag = { publisherId: 'pub-a', seq: 1 };
    let first: BatchResult | undefined;
    let again: BatchResult | undefined;
    const sent = await published(user, async () => {
      first = await writer.appendBatch(user, [notice(1), notice(2)], tag);
      again = await writer.appendBatch(user, [notice(1), notice(2)], tag);
    });
    expect(first?.duplicate).toBe(false);
    expect(again?.duplicate).toBe(true);
    expect(again?.events.map((e) => e.cursor)).toEqual(first?.events.map((e) => e.cursor));
    expect(again?.events.map((e) => e.ts)).toEqual(first?.events.map((e) => e.ts));
    expect(await streamOf(user)).toEqual([1, 2]);
    // Told to live sessions once too.
    expect(sent).toBe(2);
    // The next batch is stored, after them; so is the same number from another publisher.
    const next = await writer.appendBatch(user, [notice(3)], { publisherId: 'pub-a', seq: 2 });
    const other = await writer.appendBatch(user, [notice(4)], { publisherId: 'pub-b', seq: 1 });
    expect([next.duplicate, other.duplicate]).toEqual([false, false]);
    expect(await streamOf(user)).toEqual([1, 2, 3, 4]);
  });

  it('an old copy of a batch, run after a later batch of its publisher was stored, stores nothing', async () => {
    // What a Redis Cluster failover can do: an attempt the outbox gave up on (timed out) is
    // retried and stored, the user's next batch too, and then the client delivers the
    // first attempt at last. The record holds the later batch by then, not this one.
    const writer = new RedisStreamWriter(client);
    const user = 'idem-stale';
    const fence = { key: `${userKeys(user).meta}:lease`, value: 'gw|1' };
    await client.set(fence.key, fence.value);
    await writer.appendBatch(user, [notice(1)], { publisherId: 'pub-s', seq: 9 });
    await writer.appendBatch(user, [notice(2)], { publisherId: 'pub-s', seq: 10 });
    await expect(writer.appendBatch(user, [notice(1)], { publisherId: 'pub-s', seq: 9 })).rejects.toThrow(/^STALE/);
    // The same through appendMany (one user, several events; fenced), and with fewer digits than the record's.
    const [many, fenced, shorter] = await writer
      .appendBatches('pub-s', [{ userId: user, events: [notice(1), notice(1)], seq: 9 }])
      .then(async (a) => [
        ...a,
        ...(await writer.appendBatches('pub-s', [{ userId: user, events: [notice(1)], seq: 9, fence }])),
        ...(await writer.appendBatches('pub-s', [{ userId: user, events: [notice(1)], seq: 1 }])),
      ]);
    for (const r of [many, fenced, shorter]) expect(String(r)).toMatch(/STALE/);
    // The fenced script for one user too: the record is read before the fence.
    await expect(
      writer.appendBatch(user, [notice(1)], { publisherId: 'pub-s', seq: 9 }, undefined, fence),
    ).rejects.toThrow(/^STALE/);
    expect(await streamOf(user)).toEqual([1, 2]);
    // The latest batch is still answered as a duplicate, and the next one stored.
    expect((await writer.appendBatch(user, [notice(2)], { publisherId: 'pub-s', seq: 10 })).duplicate).toBe(true);
    await writer.appendBatch(user, [notice(3)], { publisherId: 'pub-s', seq: 11 });
    expect(await streamOf(user)).toEqual([1, 2, 3]);
  });

  it('a retry carrying fewer events (some refused meanwhile) gets their cursors as first stored', async () => {
    const writer = new RedisStreamWriter(client);
    const user = 'idem-fewer';
    const tag: BatchTag = { publisherId: 'pub-c', seq: 7 };
    const first = await writer.appendBatch(user, [notice(1), notice(2), notice(3)], tag);
    const again = await writer.appendBatch(user, [notice(1), notice(3)], tag, [0, 2]);
    expect(again.duplicate).toBe(true);
    expect(again.events.map((e) => e.cursor)).toEqual([first.events[0]?.cursor, first.events[2]?.cursor]);
    expect(await streamOf(user)).toEqual([1, 2, 3]);
  });

  it(`keeps the records of at most ${MAX_PUBLISHER_RECORDS} publishers per user, dropping the oldest`, async () => {
    const writer = new RedisStreamWriter(client);
    const user = 'idem-bounded';
    for (let p = 0; p < MAX_PUBLISHER_RECORDS + 4; p++) {
      await writer.appendBatch(user, [notice(p)], { publisherId: `pub-${p}`, seq: 1 });
    }
    const fields = (await client.hkeys(userKeys(user).meta)).filter((f) => f.startsWith('p:'));
    expect(fields).toHaveLength(MAX_PUBLISHER_RECORDS);
    // The four oldest went; a retry of the newest is still recognised.
    expect(fields).not.toContain('p:pub-0');
    expect(fields).toContain(`p:pub-${MAX_PUBLISHER_RECORDS + 3}`);
    const retry = await writer.appendBatch(user, [notice(MAX_PUBLISHER_RECORDS + 3)], {
      publisherId: `pub-${MAX_PUBLISHER_RECORDS + 3}`,
      seq: 1,
    });
    expect(retry.duplicate).toBe(true);
  });

  it('an untagged append (appendMany) is stored every time, as before', async () => {
    const writer = new RedisStreamWriter(client);
    await writer.append('idem-untagged', notice(1));
    await writer.append('idem-untagged', notice(1));
    expect(await streamOf('idem-untagged')).toEqual([1, 1]);
  });
});

/** A writer whose replies are lost (after Redis applied the batch) for the first `lose` calls. */
class LosingWriter extends RedisStreamWriter {
  lose: number;
  constructor(redis: Redis, lose: number) {
    super(redis);
    this.lose = lose;
  }
  override async appendBatches(
    publisherId: string | undefined,
    batches: readonly UserBatch[],
  ): Promise<Array<BatchResult | Error>> {
    const results = await super.appendBatches(publisherId, batches);
    if (this.lose > 0) {
      this.lose--;
      throw new Error('Connection is closed.');
    }
    return results;
  }
}

describe('the outbox through lost replies', () => {
  it('stores each event once when the reply of an applied batch is lost, and resolves with the stored cursors', async () => {
    const writer = new LosingWriter(client, 2);
    const outbox = new Outbox(client, writer, { retryDelaysMs: [10, 10, 10] });
    const user = 'idem-outbox';
    // Two publishes in one round (one batch), then more while it is retried.
    const a = outbox.send([
      { userId: user, event: notice(1) },
      { userId: user, event: notice(2) },
    ]);
    const b = outbox.send([{ userId: user, event: notice(3) }]);
    const [stored, later] = await Promise.all([a, b]);
    const c = await outbox.send([{ userId: user, event: notice(4) }]);
    expect(await streamOf(user)).toEqual([1, 2, 3, 4]);
    const read = await new RedisStreamReader(client).readSince(user, `${stored[0]?.cursor.split(':')[0]}:0`);
    expect([...stored, ...later, ...c].map((e) => e.cursor)).toEqual(read.events.map((e) => e.cursor));
    expect(outbox.stats()).toMatchObject({ stored: 4, waiting: 0 });
    expect(outbox.stats().deduplicated).toBeGreaterThanOrEqual(2);
    outbox.close();
  });

  it('an attempt that timed out and runs late, after the retry and a later batch were stored, is not stored again', async () => {
    // The first call waits at the gate (a command held in the Redis client through a failover)
    // past the attempt timeout; it runs only once the user's next batch is stored.
    let open: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    let late: Promise<unknown> | undefined;
    class LateWriter extends RedisStreamWriter {
      override appendBatches(publisherId: string | undefined, batches: readonly UserBatch[]) {
        if (late) return super.appendBatches(publisherId, batches);
        late = gate.then(() => super.appendBatches(publisherId, batches));
        return late as Promise<Array<BatchResult | Error>>;
      }
    }
    const outbox = new Outbox(client, new LateWriter(client), { retryDelaysMs: [10], attemptTimeoutMs: 50 });
    const user = 'idem-late-attempt';
    try {
      await outbox.send([{ userId: user, event: notice(1) }]);
      await outbox.send([{ userId: user, event: notice(2) }]);
      open();
      const [result] = (await late) as Array<BatchResult | Error>;
      expect(String(result)).toMatch(/STALE/);
      expect(await streamOf(user)).toEqual([1, 2]);
    } finally {
      open();
      await outbox.close();
    }
  });

  it('two outboxes have ids of their own', () => {
    const [x, y] = [
      new Outbox(client, new RedisStreamWriter(client)),
      new Outbox(client, new RedisStreamWriter(client)),
    ];
    expect(x.id).not.toBe(y.id);
    x.close();
    y.close();
  });
});

describe('a publisher whose reply is lost after Redis applied the append', () => {
  it('stores the event once and resolves with its cursor', async () => {
    const proxy = await startTcpProxy(Number(new URL(server.url).port));
    const publisher = createPublisher({ redisUrl: `redis://127.0.0.1:${proxy.port}` }, { retryDelaysMs: [50, 100] });
    const user = 'idem-lost-reply';
    try {
      await publisher.publish(user, notice(1));
      // The next append reaches Redis; its reply never comes back: the connection is cut.
      proxy.holdReplies();
      const second = publisher.publish(user, notice(2));
      await waitFor(async () => (await streamOf(user)).length === 2, 'the append applied');
      proxy.dropAll();
      const stored = await second;
      expect(await streamOf(user)).toEqual([1, 2]);
      const [, entry] = (await client.xrange(userKeys(user).stream, '-', '+')) as Array<[string, string[]]>;
      expect(stored.cursor).toBe(JSON.parse(entry?.[1][3] as string).cursor);
      expect(publisher.stats()).toMatchObject({ stored: 2, deduplicated: 1 });
    } finally {
      await publisher.close();
      await proxy.close();
    }
  });
});
