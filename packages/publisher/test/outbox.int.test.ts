import { parseCursor } from '@livebus/protocol';
import { type RedisServerHandle, startRedisServer, waitFor } from '@livebus/test-support';
import { Redis } from 'ioredis';
import { createPublisher, type OutboxEvent, PublishError, RedisStreamReader } from '../src';

const notice = (i: number) => ({
  event: 'session.notice' as const,
  data: { level: 'info' as const, message: String(i) },
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Persisted (append-only file, fsync always): a restart keeps every acknowledged write, so the
// stream after an outage shows exactly what was stored before and during it, losses included.
let server: RedisServerHandle;
beforeAll(async () => {
  server = await startRedisServer({ persist: true });
});
afterAll(() => server.stop());

/** Every event of a user's stream, as the numbers published. */
async function streamOf(userId: string): Promise<number[]> {
  const admin = new Redis(server.url);
  try {
    const read = await new RedisStreamReader(admin).readSince(userId, '0:0');
    // A cursor of another epoch reads as a gap: read the current epoch from its start.
    const all = await new RedisStreamReader(admin).readSince(userId, `${parseCursor(read.cursor)?.epoch}:0`);
    return all.events.map((e) => Number((e.data as { message: string }).message));
  } finally {
    admin.disconnect();
  }
}

describe('the outbox', () => {
  it('holds what a steady publisher sends through an outage longer than its retries, then stores it all, once, in order', async () => {
    const events: OutboxEvent[] = [];
    const p = createPublisher(
      { redisUrl: server.url },
      { retryDelaysMs: [100, 200, 400], onOutboxEvent: (e) => events.push(e) },
    );
    await p.publish('ob-steady', notice(0));
    const sent: Array<Promise<unknown>> = [];
    let i = 1;
    const publishEvery20Ms = () =>
      setInterval(() => {
        sent.push(p.publish('ob-steady', notice(i++)));
      }, 20);
    let steady = publishEvery20Ms();
    await waitFor(() => i > 10, 'ten events published before the outage');
    // Killed with nothing in flight: a reply lost with the connection would make the retry
    // store the event twice (at least once), which this test is not about.
    clearInterval(steady);
    await Promise.all(sent);
    await server.kill();
    const firstOfOutage = i;
    steady = publishEvery20Ms();
    // Down for 2 s: four times the retry window of 0.7 s.
    await sleep(2_000);
    const lastOfOutage = i - 1;
    await server.restart();
    await waitFor(() => i > lastOfOutage + 10, 'ten events published after the restart');
    clearInterval(steady);
    const results = await Promise.allSettled(sent);
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    const stats = p.stats();
    expect(stats).toMatchObject({ waiting: 0, dropped: 0 });
    expect(stats.queued).toBeGreaterThan(0);
    expect(events.some((e) => e.kind === 'queued')).toBe(true);
    expect(events.some((e) => e.kind === 'drained')).toBe(true);
    // The server kept its data: it holds every event published, before, during and after the outage, once and in order.
    expect(lastOfOutage - firstOfOutage).toBeGreaterThan(20);
    expect(await streamOf('ob-steady')).toEqual(Array.from({ length: i }, (_, k) => k));
    await p.close();
  }, 20_000);

  it('refuses at once with outbox_full past its capacity, counts it, and keeps what it holds', async () => {
    const events: OutboxEvent[] = [];
    const p = createPublisher(
      { redisUrl: server.url },
      { retryDelaysMs: [50], outboxMaxEvents: 5, onOutboxEvent: (e) => events.push(e) },
    );
    await p.publish('ob-full', notice(0));
    await server.kill();
    try {
      const held = [1, 2, 3, 4, 5].map((n) => p.publish('ob-full', notice(n)));
      // Refused at once: it settles while the five held are still waiting for Redis.
      const refused = await p.publish('ob-full', notice(6)).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(PublishError);
      expect(refused).toMatchObject({ name: 'PublishError', code: 'outbox_full' });
      expect(p.stats()).toMatchObject({ waiting: 5, dropped: 1, maxEvents: 5 });
      expect(events).toContainEqual({ kind: 'dropped', reason: 'outbox_full', events: 1, waiting: 5 });
      await server.restart();
      await expect(Promise.all(held)).resolves.toHaveLength(5);
      expect(await streamOf('ob-full')).toEqual([0, 1, 2, 3, 4, 5]);
    } finally {
      await p.close();
    }
  }, 20_000);

  it('publishMany across users keeps each user in order through a kill, and close() rejects what still waits', async () => {
    const p = createPublisher({ redisUrl: server.url }, { retryDelaysMs: [100] });
    await server.kill();
    const batches = [1, 2, 3].map((n) =>
      p.publishMany([
        { userId: 'ob-a', event: notice(n) },
        { userId: 'ob-b', event: notice(n) },
      ]),
    );
    await waitFor(() => p.stats().waiting === 6, 'the six events waiting');
    await server.restart();
    await Promise.all(batches);
    expect(await streamOf('ob-a')).toEqual([1, 2, 3]);
    expect(await streamOf('ob-b')).toEqual([1, 2, 3]);
    expect(await p.flush(1_000)).toBe(true);

    await p.close();

    // Waiting for its next attempt, not in flight: tried once (it may be stored, as far as the
    // publisher can tell), so `redis_unavailable`; an event behind it never sent: `closed`.
    const q = createPublisher({ redisUrl: server.url }, { retryDelaysMs: [60_000] });
    await q.publish('ob-a', notice(4));
    await server.kill();
    const tried = q.publish('ob-a', notice(5));
    await waitFor(() => q.stats().retried === 1, 'the first attempt to fail');
    const behind = q.publish('ob-a', notice(6));
    const outcomes = Promise.allSettled([tried, behind]);
    await q.close();
    expect(await outcomes).toMatchObject([
      { status: 'rejected', reason: { code: 'redis_unavailable' } },
      { status: 'rejected', reason: { code: 'closed' } },
    ]);
    // Both let go by the close: counted as dropped, the one tried once as well.
    expect(q.stats()).toMatchObject({ waiting: 0, dropped: 2 });
    await server.restart();
  }, 20_000);

  it('sends the publish() calls of one tick in one round: one script call for both users, every event stored in order', async () => {
    const admin = new Redis(server.url);
    const p = createPublisher({ redisUrl: server.url });
    try {
      await p.publish('ob-tick-a', notice(0)); // connected, script loaded
      await admin.config('RESETSTAT');
      const calls = [1, 2, 3, 4, 5].flatMap((i) => [
        p.publish('ob-tick-a', notice(i)),
        p.publish('ob-tick-b', notice(i)),
      ]);
      await Promise.all(calls);
      const stats = await admin.info('commandstats');
      const scriptCalls = [...stats.matchAll(/cmdstat_(?:evalsha|eval):calls=(\d+)/g)].reduce(
        (n, m) => n + Number(m[1]),
        0,
      );
      expect(scriptCalls).toBe(1);
      expect(await streamOf('ob-tick-a')).toEqual([0, 1, 2, 3, 4, 5]);
      expect(await streamOf('ob-tick-b')).toEqual([1, 2, 3, 4, 5]);
    } finally {
      await p.close();
      admin.disconnect();
    }
  });
});
