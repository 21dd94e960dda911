import {
  type RedisClusterHandle,
  type RedisServerHandle,
  startRedisCluster,
  startRedisServer,
} from '@livebus/test-support';
import { type Cluster, Redis } from 'ioredis';
import {
  type BatchResult,
  createPublisher,
  Outbox,
  PublishError,
  RedisStreamWriter,
  type UserBatch,
  userKeys,
} from '../src';
import { closeRedis, fleetUserKeys, openRedis, type RedisClient } from '../src/redis';
import { RedisScript } from '../src/redis/redis-script';
import { MAX_EVENT_BYTES_PER_CALL, MAX_USERS_PER_CALL, streamScripts } from '../src/redis/stream-scripts';

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
async function streamOf(redis: Redis | Cluster | RedisClient, userId: string): Promise<number[]> {
  const entries = await redis.xrange(userKeys(userId).stream, '-', '+');
  return entries.map(([, fields]) => Number(JSON.parse(fields[3] as string).data.message));
}

/** Script calls (EVALSHA and EVAL) and calls of `command` Redis ran since the last RESETSTAT. */
async function calls(command: string): Promise<{ scripts: number; command: number }> {
  const stats = await client.info('commandstats');
  const count = (name: string) => Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
  return { scripts: count('evalsha') + count('eval'), command: count(command) };
}

/** Calls of each of `commands` Redis ran since the last RESETSTAT. */
async function commandCalls(...commands: string[]): Promise<Record<string, number>> {
  const stats = await client.info('commandstats');
  return Object.fromEntries(
    commands.map((c) => [c, Number(new RegExp(`cmdstat_${c}:calls=(\\d+)`).exec(stats)?.[1] ?? 0)]),
  );
}

const batchOf = (userId: string, seq: number, ...numbers: number[]): UserBatch => ({
  userId,
  seq,
  events: numbers.map(notice),
});

function stored(result: BatchResult | Error | undefined): BatchResult {
  if (!result || result instanceof Error) throw new Error(`expected a stored batch, got ${String(result)}`);
  return result;
}

describe('appendBatches on a standalone Redis: many users in one script call', () => {
  it('stores every user in one call, and a retried round is stored once per user, answered with the first cursors', async () => {
    const writer = new RedisStreamWriter(client);
    const users = ['am-a', 'am-b', 'am-c'];
    await writer.appendBatches('pub-0', [batchOf('am-warm', 1, 0)]); // the script loaded (EVAL after NOSCRIPT)
    await client.config('RESETSTAT');
    const first = await writer.appendBatches('pub-1', [
      batchOf('am-a', 1, 1, 2),
      batchOf('am-b', 1, 1),
      batchOf('am-c', 1, 1, 2, 3),
    ]);
    expect((await calls('xadd')).scripts).toBe(1);
    expect(first.map((r) => stored(r).duplicate)).toEqual([false, false, false]);
    // The reply was lost: the same round again (the batch of am-c carrying one event fewer, as
    // after a refusal), plus a new batch of a fourth user.
    const again = await writer.appendBatches('pub-1', [
      batchOf('am-a', 1, 1, 2),
      batchOf('am-b', 1, 1),
      { ...batchOf('am-c', 1, 1, 3), positions: [0, 2] },
      batchOf('am-d', 1, 1),
    ]);
    expect(again.map((r) => stored(r).duplicate)).toEqual([true, true, true, false]);
    expect(stored(again[0]).events.map((e) => e.cursor)).toEqual(stored(first[0]).events.map((e) => e.cursor));
    expect(stored(again[2]).events.map((e) => e.cursor)).toEqual([
      stored(first[2]).events[0]?.cursor,
      stored(first[2]).events[2]?.cursor,
    ]);
    expect(stored(again[1]).events[0]?.ts).toBe(stored(first[1]).events[0]?.ts);
    expect(await Promise.all([...users, 'am-d'].map((u) => streamOf(client, u)))).toEqual([
      [1, 2],
      [1],
      [1, 2, 3],
      [1],
    ]);
    // The next batch of each user is stored after them; the cursors follow each user's own offsets.
    const next = await writer.appendBatches('pub-1', [batchOf('am-a', 2, 3), batchOf('am-b', 2, 2)]);
    expect(next.map((r) => stored(r).events[0]?.cursor.split(':')[1])).toEqual(['3', '2']);
  });

  it('refuses the one user whose fence no longer holds and stores the others of the call', async () => {
    const writer = new RedisStreamWriter(client);
    const lease = (u: string) => fleetUserKeys(u).lease;
    await client.set(lease('amf-held'), 'gw-a|1', 'PX', 60_000);
    await client.set(lease('amf-taken'), 'gw-b|2', 'PX', 60_000);
    await client.config('RESETSTAT');
    const results = await writer.appendBatches('pub-f', [
      batchOf('amf-plain', 1, 1),
      { ...batchOf('amf-held', 1, 1), fence: { key: lease('amf-held'), value: 'gw-a|1' } },
      { ...batchOf('amf-taken', 1, 1), fence: { key: lease('amf-taken'), value: 'gw-a|1' } },
      { ...batchOf('amf-gone', 1, 1), fence: { key: lease('amf-gone'), value: 'gw-a|1' } },
      batchOf('amf-after', 1, 1),
    ]);
    expect((await calls('xadd')).scripts).toBe(1);
    expect(results.map((r) => (r instanceof Error ? r.message.split(' ')[0] : 'stored'))).toEqual([
      'stored',
      'stored',
      'FENCED',
      'FENCED',
      'stored',
    ]);
    expect(
      await Promise.all(
        ['amf-plain', 'amf-held', 'amf-taken', 'amf-gone', 'amf-after'].map((u) => streamOf(client, u)),
      ),
    ).toEqual([[1], [1], [], [], [1]]);
  });

  it('a user whose append fails in Redis (a key of the wrong type) gets that error; the others of the call are stored', async () => {
    const writer = new RedisStreamWriter(client);
    await writer.appendBatches('pub-w', [batchOf('amw-broken', 1, 0)]);
    await client.set(userKeys('amw-broken').stream, 'not a stream');
    const results = await writer.appendBatches('pub-w', [
      batchOf('amw-a', 1, 1),
      batchOf('amw-broken', 2, 1),
      batchOf('amw-c', 1, 1),
    ]);
    expect(results[1]).toBeInstanceOf(Error);
    expect((results[1] as Error).message).toMatch(/^WRONGTYPE/);
    expect([results[0], results[2]].map((r) => stored(r).duplicate)).toEqual([false, false]);
    expect(await streamOf(client, 'amw-a')).toEqual([1]);
    expect(await streamOf(client, 'amw-c')).toEqual([1]);
    // Through the outbox it is a refusal (`redis_error`), not a retry.
    const outbox = new Outbox(client, writer);
    try {
      await expect(outbox.send([{ userId: 'amw-broken', event: notice(2) }])).rejects.toMatchObject({
        code: 'redis_error',
      });
    } finally {
      outbox.close();
    }
  });

  it('a lease key of the wrong type fails only its user: the users before and after it in the call are stored', async () => {
    const writer = new RedisStreamWriter(client);
    const lease = (u: string) => fleetUserKeys(u).lease;
    await client.set(lease('aml-a'), 'gw-a|1', 'PX', 60_000);
    await client.hset(lease('aml-bad'), 'not', 'a string');
    await client.set(lease('aml-c'), 'gw-a|1', 'PX', 60_000);
    await client.config('RESETSTAT');
    const results = await writer.appendBatches(
      'pub-l',
      ['aml-a', 'aml-bad', 'aml-c'].map((u) => ({ ...batchOf(u, 1, 1), fence: { key: lease(u), value: 'gw-a|1' } })),
    );
    expect((await calls('xadd')).scripts).toBe(1);
    expect(results[1]).toBeInstanceOf(Error);
    expect((results[1] as Error).message).toMatch(/^WRONGTYPE/);
    expect([results[0], results[2]].map((r) => stored(r).events[0]?.cursor.endsWith(':1'))).toEqual([true, true]);
    expect(await Promise.all(['aml-a', 'aml-bad', 'aml-c'].map((u) => streamOf(client, u)))).toEqual([[1], [], [1]]);
  });

  it('a Lua error in one user (a meta whose offset is not a number) answers that user its text; the next users read right', async () => {
    const writer = new RedisStreamWriter(client);
    await writer.appendBatches('pub-n', [batchOf('amn-broken', 1, 0), batchOf('amn-c', 1, 0)]);
    await client.hset(userKeys('amn-broken').meta, 'o', 'not a number');
    const results = await writer.appendBatches('pub-n', [
      batchOf('amn-a', 1, 1),
      batchOf('amn-broken', 2, 1),
      batchOf('amn-c', 2, 1, 2),
    ]);
    expect(results[1]).toBeInstanceOf(Error);
    expect((results[1] as Error).message).toMatch(/arithmetic/);
    expect(stored(results[0]).events.map((e) => e.cursor.split(':')[1])).toEqual(['1']);
    expect(stored(results[2]).events.map((e) => e.cursor.split(':')[1])).toEqual(['2', '3']);
    expect(await streamOf(client, 'amn-c')).toEqual([0, 1, 2]);
  });

  it('a user whose result lacks its values (nil in Lua) is an error for that user; the values of the next users stay in place', async () => {
    // The script as shipped always answers four values per user; this variant answers none for
    // one user, as a bug would, to check that the reply keeps every user's values at their place.
    const call =
      'return append_events(stream, meta, candidate, channel, r, publisher, seq, events, from, to, true, u, lease, fence)';
    expect(streamScripts.appendMany.source).toContain(call);
    const variant = new RedisScript(
      streamScripts.appendMany.source.replace(call, `if string.find(stream, 'amv%-empty') then return end\n  ${call}`),
    );
    const original = streamScripts.appendMany;
    (streamScripts as { appendMany: RedisScript }).appendMany = variant;
    try {
      const writer = new RedisStreamWriter(client);
      const results = await writer.appendBatches('pub-v', [
        batchOf('amv-a', 1, 1),
        batchOf('amv-empty', 1, 1),
        batchOf('amv-c', 1, 1, 2),
      ]);
      expect(results[1]).toBeInstanceOf(Error);
      expect((results[1] as Error).message).toMatch(/unreadable result for user "amv-empty"/);
      expect(stored(results[0]).events.map((e) => e.cursor.split(':')[1])).toEqual(['1']);
      expect(stored(results[2]).events.map((e) => e.cursor.split(':')[1])).toEqual(['1', '2']);
      expect(stored(results[2]).events[0]?.cursor.split(':')[0]).toBe(
        (await client.hget(userKeys('amv-c').meta, 'e')) ?? '',
      );
    } finally {
      (streamScripts as { appendMany: RedisScript }).appendMany = original;
    }
  });

  it('counts the bytes of event JSON (UTF-8), not its UTF-16 length, to split a round into calls', async () => {
    const writer = new RedisStreamWriter(client);
    await writer.appendBatches('pub-u', [batchOf('amu-warm', 1, 0)]);
    // Per user 3 events of 9 000 '€' (3 bytes each, 1 UTF-16 unit): 27 000 units, about 81 000
    // bytes. Three users are 81 000 units (one call by length) but 243 000 bytes: no two fit.
    const euro = (i: number) => ({
      event: 'session.notice' as const,
      data: { level: 'info' as const, message: `${i}${'€'.repeat(9_000)}` },
    });
    const users = ['amu-a', 'amu-b', 'amu-c'];
    const batches = users.map((userId) => ({ userId, seq: 1, events: [euro(1), euro(2), euro(3)] }));
    const perUser = batches[0]?.events.reduce((n, e) => n + Buffer.byteLength(JSON.stringify(e)), 0) ?? 0;
    expect(perUser * 2).toBeGreaterThan(MAX_EVENT_BYTES_PER_CALL);
    expect(batches[0]?.events.reduce((n, e) => n + JSON.stringify(e).length, 0) ?? 0).toBeLessThan(
      MAX_EVENT_BYTES_PER_CALL / 3,
    );
    await client.config('RESETSTAT');
    const results = await writer.appendBatches('pub-u', batches);
    expect((await calls('xadd')).scripts).toBe(3);
    expect(results.map((r) => stored(r).events.length)).toEqual([3, 3, 3]);
    const [[, fields] = ['', []]] = await client.xrange(userKeys('amu-b').stream, '-', '+');
    expect(JSON.parse(fields[3] as string).data.message).toBe(`1${'€'.repeat(9_000)}`);
  });

  it('rejects a call that names a user twice, before touching Redis', async () => {
    const writer = new RedisStreamWriter(client);
    await expect(
      writer.appendBatches('pub-d', [batchOf('amd-a', 1, 1), batchOf('amd-b', 1, 1), batchOf('amd-a', 2, 2)]),
    ).rejects.toThrow(/user "amd-a" has two batches \(at 0 and 2\)/);
    expect(await Promise.all(['amd-a', 'amd-b'].map((u) => streamOf(client, u)))).toEqual([[], []]);
  });

  it('through the outbox: the fenced user is refused with `fenced`, the others of the round resolve', async () => {
    const outbox = new Outbox(client, new RedisStreamWriter(client));
    const lease = fleetUserKeys('amo-taken').lease;
    await client.set(lease, 'gw-b|9', 'PX', 60_000);
    try {
      const [a, b, c] = await Promise.allSettled([
        outbox.send([{ userId: 'amo-a', event: notice(1) }]),
        outbox.send([{ userId: 'amo-taken', event: notice(1), fence: { key: lease, value: 'gw-a|8' } }]),
        outbox.send([{ userId: 'amo-c', event: notice(1) }]),
      ]);
      expect([a.status, b.status, c.status]).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect((b as PromiseRejectedResult).reason).toBeInstanceOf(PublishError);
      expect((b as PromiseRejectedResult).reason).toMatchObject({ code: 'fenced' });
      expect(outbox.stats()).toMatchObject({ waiting: 0, stored: 2 });
    } finally {
      outbox.close();
    }
  });

  it('splits a round of more users than one call carries into several calls', async () => {
    const publisher = createPublisher({ redisUrl: server.url });
    try {
      await publisher.publish('ams-0', notice(0)); // connected, script loaded
      await client.config('RESETSTAT');
      const n = MAX_USERS_PER_CALL + 10;
      const results = await publisher.publishMany(
        Array.from({ length: n }, (_, i) => ({ userId: `ams-${i}`, event: notice(i) })),
      );
      expect(results).toHaveLength(n);
      expect((await calls('xadd')).scripts).toBe(2);
      expect(await streamOf(client, `ams-${n - 1}`)).toEqual([n - 1]);
    } finally {
      await publisher.close();
    }
  });
});

describe("the meta's oldest entry ('f', 'g') and expiry renewal ('x')", () => {
  const meta = (u: string) => client.hgetall(userKeys(u).meta);

  it('is set by the first append, and an append within every bound reads no entry and sets no expiry', async () => {
    const writer = new RedisStreamWriter(client);
    const [first] = await writer.appendBatches('pub-m', [batchOf('amm-1', 1, 1)]);
    const ts = String(stored(first).events[0]?.ts);
    expect(await meta('amm-1')).toMatchObject({ f: ts, g: '1', x: ts });
    await client.config('RESETSTAT');
    await writer.appendBatches('pub-m', [batchOf('amm-1', 2, 2)]);
    expect(await commandCalls('evalsha', 'xrange', 'xlen', 'pexpire', 'xadd', 'hset')).toEqual({
      evalsha: 1,
      xrange: 0,
      xlen: 0,
      pexpire: 0,
      xadd: 1,
      hset: 1,
    });
    expect(await meta('amm-1')).toMatchObject({ f: ts, g: '1', x: ts });
    expect(await streamOf(client, 'amm-1')).toEqual([1, 2]);
  });

  it('sets the expiries again once the last setting is half the expiry margin old', async () => {
    const writer = new RedisStreamWriter(client);
    const k = userKeys('amm-renew');
    await writer.appendBatches('pub-m', [batchOf('amm-renew', 1, 1)]);
    // As if set 31 s ago (the margin is 60 s), with the keys' time to live gone down as much.
    const x = Number((await meta('amm-renew')).x);
    await client.hset(k.meta, 'x', String(x - 31_000));
    const streamTtl = await client.pttl(k.stream);
    await client.pexpire(k.stream, streamTtl - 31_000);
    await client.config('RESETSTAT');
    await writer.appendBatches('pub-m', [batchOf('amm-renew', 2, 2)]);
    expect((await commandCalls('pexpire')).pexpire).toBe(2);
    expect(Number((await meta('amm-renew')).x)).toBeGreaterThanOrEqual(x);
    expect(await client.pttl(k.stream)).toBeGreaterThan(streamTtl - 31_000);
    expect(await client.pttl(k.meta)).toBeGreaterThan(0);
  });

  it('an oldest offset below the real one (as after an offset skip) only makes it count the stream, never trim more', async () => {
    const writer = new RedisStreamWriter(client, { retentionEvents: 3 });
    const user = 'amm-bound';
    await writer.appendBatches('pub-m', [batchOf(user, 1, 1, 2)]);
    await client.hset(userKeys(user).meta, 'g', '-5000');
    await client.config('RESETSTAT');
    await writer.appendBatches('pub-m', [batchOf(user, 2, 3)]);
    expect(await commandCalls('xlen', 'xrange')).toEqual({ xlen: 1, xrange: 0 });
    expect(await streamOf(client, user)).toEqual([1, 2, 3]);
    await writer.appendBatches('pub-m', [batchOf(user, 3, 4)]);
    expect(await streamOf(client, user)).toEqual([2, 3, 4]);
    expect((await meta(user)).g).toBe('2');
  });

  it('a trim that leaves nothing (a byte bound below one event) deletes the stream; the offsets go on', async () => {
    // The least byte bound (1 KiB), and events larger than it.
    const writer = new RedisStreamWriter(client, { retentionBytes: 1_024 });
    const user = 'amm-nothing';
    const large = (seq: number): UserBatch => ({
      userId: user,
      seq,
      events: [{ event: 'session.notice', data: { level: 'info', message: 'x'.repeat(2_000) } }],
    });
    await writer.appendBatches('pub-m', [large(1)]);
    expect(await client.exists(userKeys(user).stream)).toBe(0);
    const [second] = await writer.appendBatches('pub-m', [large(2)]);
    expect(stored(second).events[0]?.cursor.endsWith(':2')).toBe(true);
    expect(await client.exists(userKeys(user).stream)).toBe(0);
    expect((await meta(user)).b).toBe('0');
  });

  it('follows the count trim to the oldest entry kept', async () => {
    const writer = new RedisStreamWriter(client, { retentionEvents: 2 });
    await writer.appendBatches('pub-m', [batchOf('amm-count', 1, 1, 2)]);
    await writer.appendBatches('pub-m', [batchOf('amm-count', 2, 3)]);
    const entries = await client.xrange(userKeys('amm-count').stream, '-', '+');
    expect(await streamOf(client, 'amm-count')).toEqual([2, 3]);
    expect((await meta('amm-count')).f).toBe(entries[0]?.[1][1]);
  });

  it('an old meta without it (written before it existed) still has its old entries trimmed by age, and gains it', async () => {
    const writer = new RedisStreamWriter(client);
    const user = 'amm-old';
    const k = userKeys(user);
    // What an older publisher left: an entry 10 minutes old, a meta of e, o, b, w only.
    const [seconds] = await client.time();
    const old = Number(seconds) * 1000 - 600_000;
    const frame = `{"type":"event","cursor":"old1:1","ts":${old},"event":"session.notice","data":{"level":"info","message":"0"}}`;
    await client.xadd(k.stream, '1-0', 't', String(old), 'd', frame);
    await client.hset(k.meta, 'e', 'old1', 'o', 1, 'b', frame.length, 'w', 'x');
    const [result] = await writer.appendBatches('pub-m', [batchOf(user, 1, 1)]);
    const event = stored(result).events[0];
    expect(event?.cursor).toBe('old1:2');
    expect(await streamOf(client, user)).toEqual([1]);
    const m = await meta(user);
    expect(m.f).toBe(String(event?.ts));
    const [[, fields] = ['', []]] = await client.xrange(k.stream, '-', '+');
    expect(Number(m.b)).toBe((fields[3] as string).length);
  });

  it('a stream that expired while its meta lived: the epoch and offsets go on, bytes and oldest time start over', async () => {
    const writer = new RedisStreamWriter(client);
    const user = 'amm-expired';
    const k = userKeys(user);
    const [a] = await writer.appendBatches('pub-m', [batchOf(user, 1, 1, 2)]);
    await client.del(k.stream); // as its expiry would
    const [b] = await writer.appendBatches('pub-m', [batchOf(user, 2, 3)]);
    const event = stored(b).events[0];
    expect(event?.cursor).toBe(`${stored(a).events[0]?.cursor.split(':')[0]}:3`);
    expect(await streamOf(client, user)).toEqual([3]);
    const m = await meta(user);
    expect(m.f).toBe(String(event?.ts));
    const [[, fields] = ['', []]] = await client.xrange(k.stream, '-', '+');
    expect(Number(m.b)).toBe((fields[3] as string).length);
    expect(await client.pttl(k.stream)).toBeGreaterThan(0);
  });

  it('a missing meta starts a new epoch for that user only, in a call with others', async () => {
    const writer = new RedisStreamWriter(client);
    const [a1, b1] = await writer.appendBatches('pub-m', [batchOf('amm-e1', 1, 1), batchOf('amm-e2', 1, 1)]);
    await client.del(userKeys('amm-e1').meta);
    const [a2, b2] = await writer.appendBatches('pub-m', [batchOf('amm-e1', 2, 2), batchOf('amm-e2', 2, 2)]);
    const epoch = (r: BatchResult | Error | undefined) => stored(r).events[0]?.cursor.split(':')[0];
    expect(epoch(a2)).not.toBe(epoch(a1));
    expect(stored(a2).events[0]?.cursor.endsWith(':1')).toBe(true);
    expect(epoch(b2)).toBe(epoch(b1));
    expect(await streamOf(client, 'amm-e1')).toEqual([2]);
    expect(await streamOf(client, 'amm-e2')).toEqual([1, 2]);
  });

  it('users whose streams start in one call get epochs of their own, each a valid cursor epoch', async () => {
    const writer = new RedisStreamWriter(client);
    const ids = Array.from({ length: 12 }, (_, i) => `amm-ne${i}`);
    const results = await writer.appendBatches(
      'pub-ne',
      ids.map((id) => batchOf(id, 1, 1)),
    );
    const epochs = results.map((r) => stored(r).events[0]?.cursor.split(':')[0] ?? '');
    expect(new Set(epochs).size).toBe(ids.length);
    for (const e of epochs) expect(e).toMatch(/^[0-9A-Za-z_-]{1,32}$/);
    // A second call keeps each user's epoch; a user started again later gets another one.
    const again = await writer.appendBatches('pub-ne', [batchOf('amm-ne0', 2, 2), batchOf('amm-ne1', 2, 2)]);
    expect(again.map((r) => stored(r).events[0]?.cursor)).toEqual([`${epochs[0]}:2`, `${epochs[1]}:2`]);
    await client.del(userKeys('amm-ne0').meta);
    const [restarted] = await writer.appendBatches('pub-ne', [batchOf('amm-ne0', 3, 3)]);
    expect(stored(restarted).events[0]?.cursor).not.toBe(`${epochs[0]}:1`);
    expect(stored(restarted).events[0]?.cursor.split(':')[0]).not.toBe(epochs[0]);
  });

  it('several events, a fenced user and an untagged one in one call keep their counts and order', async () => {
    const writer = new RedisStreamWriter(client);
    const fenceKey = `lb:{amm-mix-f}:lease`;
    await client.set(fenceKey, 'owner-1');
    const [many, fenced, untagged] = await writer.appendBatches('pub-mix', [
      batchOf('amm-mix-a', 1, 1, 2, 3),
      { ...batchOf('amm-mix-f', 1, 4, 5), fence: { key: fenceKey, value: 'owner-1' } },
      { userId: 'amm-mix-u', events: [notice(6)] },
    ]);
    expect(stored(many).events.map((e) => e.cursor.split(':')[1])).toEqual(['1', '2', '3']);
    expect(stored(fenced).events.map((e) => e.cursor.split(':')[1])).toEqual(['1', '2']);
    expect(stored(untagged).events.map((e) => e.cursor.split(':')[1])).toEqual(['1']);
    expect(await streamOf(client, 'amm-mix-a')).toEqual([1, 2, 3]);
    expect(await streamOf(client, 'amm-mix-f')).toEqual([4, 5]);
    expect(await streamOf(client, 'amm-mix-u')).toEqual([6]);
    // Sent again (a lost reply): the tagged batches are not stored twice.
    const [manyAgain] = await writer.appendBatches('pub-mix', [batchOf('amm-mix-a', 1, 1, 2, 3)]);
    expect((manyAgain as BatchResult).duplicate).toBe(true);
    expect(await streamOf(client, 'amm-mix-a')).toEqual([1, 2, 3]);
  });
});

describe('appendBatches on a cluster-enabled server through a plain client (a single-shard cluster, a proxy)', () => {
  let node: RedisServerHandle;
  let plain: Redis;
  beforeAll(async () => {
    node = await startRedisServer({ clusterEnabled: true });
    plain = new Redis(node.url);
  });
  afterAll(async () => {
    plain?.disconnect();
    await node?.stop();
  });

  const crossslotErrors = async () =>
    Number(/errorstat_CROSSSLOT:count=(\d+)/.exec(await plain.info('errorstats'))?.[1] ?? 0);

  it('re-sends the users of a call answered CROSSSLOT one call per user, and makes one call per user from then on', async () => {
    const writer = new RedisStreamWriter(plain);
    const lease = fleetUserKeys('amx-fenced').lease;
    await plain.set(lease, 'gw-a|1', 'PX', 60_000);
    await plain.config('RESETSTAT');
    const first = await writer.appendBatches('pub-x', [
      batchOf('amx-a', 1, 1),
      batchOf('amx-b', 1, 1, 2),
      { ...batchOf('amx-fenced', 1, 1), fence: { key: lease, value: 'gw-a|1' } },
    ]);
    expect(first.map((r) => stored(r).events.length)).toEqual([1, 2, 1]);
    expect(await crossslotErrors()).toBe(1);
    await plain.config('RESETSTAT');
    const second = await writer.appendBatches('pub-x', [
      batchOf('amx-a', 2, 2),
      batchOf('amx-b', 2, 3),
      batchOf('amx-c', 1, 1),
    ]);
    expect(second.map((r) => stored(r).duplicate)).toEqual([false, false, false]);
    expect(await crossslotErrors()).toBe(0);
    const stats = await plain.info('commandstats');
    expect(Number(/cmdstat_evalsha:calls=(\d+)/.exec(stats)?.[1] ?? 0)).toBe(3);
    expect(await Promise.all(['amx-a', 'amx-b', 'amx-fenced', 'amx-c'].map((u) => streamOf(plain, u)))).toEqual([
      [1, 2],
      [1, 2, 3],
      [1],
      [1],
    ]);
  });

  it('a publisher without `cluster` on such a server stores every user of a round', async () => {
    const publisher = createPublisher({ redisUrl: node.url });
    try {
      const results = await publisher.publishMany(
        Array.from({ length: 5 }, (_, i) => ({ userId: `amx-p${i}`, event: notice(i) })),
      );
      expect(results).toHaveLength(5);
      for (let i = 0; i < 5; i++) expect(await streamOf(plain, `amx-p${i}`)).toEqual([i]);
    } finally {
      await publisher.close();
    }
  });
});

describe('appendBatches on a Redis Cluster', () => {
  let cluster: RedisClusterHandle;
  let redis: RedisClient;
  beforeAll(async () => {
    cluster = await startRedisCluster();
    redis = openRedis(cluster.url, { cluster: true, role: 'gateway' });
  }, 60_000);
  afterAll(async () => {
    if (redis) await closeRedis(redis);
    await cluster?.stop();
  });

  it('stores users of different slots in a round (one call per user, no CROSSSLOT), fenced ones judged each', async () => {
    const writer = new RedisStreamWriter(redis);
    const users = Array.from({ length: 20 }, (_, i) => `amc-${i}`);
    const lease = fleetUserKeys('amc-3').lease;
    await redis.set(lease, 'gw-b|1', 'PX', 60_000);
    const results = await writer.appendBatches(
      'pub-c',
      users.map((u, i) => ({
        ...batchOf(u, 1, i),
        ...(i === 3 ? { fence: { key: lease, value: 'gw-a|1' } } : {}),
      })),
    );
    expect(results.filter((r) => r instanceof Error).map((r) => (r as Error).message.split(' ')[0])).toEqual([
      'FENCED',
    ]);
    expect(results[3]).toBeInstanceOf(Error);
    const again = await writer.appendBatches(
      'pub-c',
      users.map((u, i) => batchOf(u, 1, i)).filter((_, i) => i !== 3),
    );
    expect(again.every((r) => !(r instanceof Error) && r.duplicate)).toBe(true);
    for (const [i, u] of users.entries()) expect(await streamOf(redis, u)).toEqual(i === 3 ? [] : [i]);
  }, 30_000);
});
