import { parseCursor } from '@livebus/protocol';
import { type RedisServerHandle, startRedisServer } from '@livebus/test-support';
import { Redis } from 'ioredis';
import { Outbox, PublishError, RedisStreamReader, RedisStreamWriter } from '../src';
import { fleetUserKeys } from '../src/redis';

const notice = (i: number) => ({
  event: 'session.notice' as const,
  data: { level: 'info' as const, message: String(i) },
});

let server: RedisServerHandle;
let redis: Redis;
beforeAll(async () => {
  server = await startRedisServer();
  redis = new Redis(server.url);
});
afterAll(async () => {
  redis.disconnect();
  await server.stop();
});

async function messages(userId: string): Promise<number[]> {
  const reader = new RedisStreamReader(redis);
  const epoch = parseCursor(await reader.head(userId))?.epoch;
  return (await reader.readSince(userId, `${epoch}:0`)).events.map((e) =>
    Number((e.data as { message: string }).message),
  );
}

describe('fenced appends', () => {
  it('stores an event only while the lease holds the fence, refuses it with `fenced` otherwise, and keeps order', async () => {
    const user = 'fenced-1';
    const key = fleetUserKeys(user).lease;
    const outbox = new Outbox(redis, new RedisStreamWriter(redis));
    try {
      await redis.set(key, 'gw-a|7', 'PX', 60_000);
      const fence = { key, value: 'gw-a|7' };
      await outbox.send([{ userId: user, event: notice(0) }]);
      await outbox.send([{ userId: user, event: notice(1), fence }]);
      // Another holder now (a new token): the old holder's append is refused, nothing stored.
      await redis.set(key, 'gw-b|8', 'PX', 60_000);
      const refused = outbox.send([{ userId: user, event: notice(2), fence }]);
      await expect(refused).rejects.toBeInstanceOf(PublishError);
      await expect(refused).rejects.toMatchObject({ code: 'fenced' });
      // Expired lease: refused too.
      await redis.del(key);
      await expect(outbox.send([{ userId: user, event: notice(3), fence }])).rejects.toMatchObject({ code: 'fenced' });
      // Mixed in one call: unfenced and fenced runs in order, each run judged on its own.
      await redis.set(key, 'gw-b|8', 'PX', 60_000);
      const stored = await outbox.send([
        { userId: user, event: notice(4) },
        { userId: user, event: notice(5), fence: { key, value: 'gw-b|8' } },
        { userId: user, event: notice(6) },
      ]);
      expect(stored.map((s) => (s.data as { message: string }).message)).toEqual(['4', '5', '6']);
      expect(await messages(user)).toEqual([0, 1, 4, 5, 6]);
      expect(outbox.stats()).toMatchObject({ waiting: 0, stored: 5 });
    } finally {
      outbox.close();
    }
  });

  it('a stored batch sent again after its lease moved is answered with its cursors, not refused', async () => {
    // A reply lost after Redis stored the batch (a master dying, a connection cut), and the
    // lease taken over before the retry: the events were stored while the lease held, and the
    // writer is told so, on both scripts (one user, and appendMany).
    const user = 'fenced-retry';
    const key = fleetUserKeys(user).lease;
    const writer = new RedisStreamWriter(redis);
    await redis.set(key, 'gw-a|7', 'PX', 60_000);
    const fence = { key, value: 'gw-a|7' };
    const first = await writer.appendBatch(user, [notice(1)], { publisherId: 'pub-f', seq: 1 }, undefined, fence);
    await redis.set(key, 'gw-b|8', 'PX', 60_000);
    const again = await writer.appendBatch(user, [notice(1)], { publisherId: 'pub-f', seq: 1 }, undefined, fence);
    expect(again).toEqual({ ...first, duplicate: true });
    await redis.set(key, 'gw-a|7', 'PX', 60_000);
    const [many] = await writer.appendBatches('pub-f', [
      { userId: user, events: [notice(2), notice(3)], seq: 2, fence },
    ]);
    await redis.set(key, 'gw-b|8', 'PX', 60_000);
    const [manyAgain] = await writer.appendBatches('pub-f', [
      { userId: user, events: [notice(2), notice(3)], seq: 2, fence },
    ]);
    expect(manyAgain).toEqual({ ...(many as object), duplicate: true });
    // A new batch under the old fence is refused, as before.
    await expect(
      writer.appendBatch(user, [notice(4)], { publisherId: 'pub-f', seq: 3 }, undefined, fence),
    ).rejects.toThrow(/^FENCED/);
    expect(await messages(user)).toEqual([1, 2, 3]);
  });
});
