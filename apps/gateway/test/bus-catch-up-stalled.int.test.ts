import { userKeys } from '@livebus/publisher';
import { openRedis, type RedisClient } from '@livebus/publisher/redis';
import { type RedisServerHandle, startRedisServer, waitFor } from '@livebus/test-support';
import type { Redis } from 'ioredis';
import { RedisEventBus } from '../src/fleet/bus/redis-event-bus';
import { recordingLogger } from '../src/testing/recording-logger';

// A user's catch-up read that Redis refuses every time (the user's stream keys damaged: of
// another type, WRONGTYPE) on a real redis-server: the bus says so once, with the user, and goes on
// delivering once the key is whole again.
const note = (m: string) => ({ event: 'session.notice' as const, data: { level: 'info' as const, message: m } });

let redis: RedisServerHandle;
let admin: RedisClient | undefined;
let bus: RedisEventBus | undefined;
beforeAll(async () => {
  redis = await startRedisServer();
});
afterEach(async () => {
  await bus?.close();
  admin?.disconnect();
});
afterAll(() => redis.stop());

it('a catch-up refused with WRONGTYPE: one warning naming the user; once the key is fixed, the user’s events flow again and the recovery is logged', async () => {
  const { logger, lines } = recordingLogger();
  // The bus's clock, moved by hand past the stall's 10 s: no wait of that length.
  let now = 0;
  bus = new RedisEventBus(openRedis(redis.url, { role: 'gateway', name: 'bus-stalled-test' }), {
    ownsClient: true,
    logger,
    clock: () => now,
  });
  admin = openRedis(redis.url, { role: 'gateway', name: 'bus-stalled-admin' });
  const uid = `stalled-${Date.now()}`;
  const got: string[] = [];
  await bus.listen(uid, (event) => got.push(event.cursor), undefined);
  const first = await bus.publish(uid, note('1'));
  await waitFor(() => got.length === 1, 'the first event');
  const epoch = first.cursor.split(':')[0];

  // The user's stream key replaced by a string, then a live frame past a hole: the catch-up
  // reads the stream, and Redis answers WRONGTYPE at every try.
  const { stream, meta, channel } = userKeys(uid);
  const redisCli = admin as Redis;
  const saved = await Promise.all([redisCli.dumpBuffer(stream), redisCli.dumpBuffer(meta)]);
  await redisCli.set(stream, 'damaged');
  await redisCli.set(meta, 'damaged');
  const ahead = { type: 'event', cursor: `${epoch}:5`, ts: 1, event: 'session.notice', data: { level: 'info' } };
  await redisCli.spublish(channel, JSON.stringify(ahead));
  await waitFor(() => (bus?.stats().catchUpFailures ?? 0) >= 3, 'three failed catch-up tries');
  now += 10_000;
  await waitFor(() => lines.some(([, event]) => event === 'bus_catch_up_stalled'), 'the stall logged');
  const [level, , fields] = lines.find(([, event]) => event === 'bus_catch_up_stalled') ?? [];
  expect(level).toBe('warn');
  expect(fields).toMatchObject({ uid, error: expect.stringMatching(/^WRONGTYPE/) });
  expect(fields?.attempts).toBeGreaterThanOrEqual(3);
  expect(bus.stats().catchUpsStalled).toBe(1);
  // More failed tries (2 s apart at most): no more lines.
  const failures = bus.stats().catchUpFailures ?? 0;
  await waitFor(() => (bus?.stats().catchUpFailures ?? 0) >= failures + 2, 'two more failed tries', 10_000);
  expect(lines.filter(([, event]) => event === 'bus_catch_up_stalled')).toHaveLength(1);

  // The key whole again: the catch-up reads, the hand-made frame is not delivered (the stream
  // never had it), and the user's next event reaches the listener.
  await redisCli.restore(stream, 0, saved[0], 'REPLACE');
  await redisCli.restore(meta, 0, saved[1], 'REPLACE');
  await waitFor(() => lines.some(([, event]) => event === 'bus_catch_up_recovered'), 'the recovery logged', 10_000);
  expect(bus.stats().catchUpsStalled).toBe(0);
  const second = await bus.publish(uid, note('2'));
  await waitFor(() => got.length === 2, 'the event after the fix');
  expect(got).toEqual([first.cursor, second.cursor]);
  expect(lines.map(([lvl, event, f]) => [lvl, event, f.uid])).toEqual([
    ['warn', 'bus_catch_up_stalled', uid],
    ['info', 'bus_catch_up_recovered', uid],
  ]);
});
