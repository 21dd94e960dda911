import { type AppEvent, parseCursor } from '@livebus/protocol';
import { openRedis, type RedisClient, slotOf } from '@livebus/publisher/redis';
import {
  type RedisClusterHandle,
  type RedisServerHandle,
  startRedisCluster,
  startRedisServer,
} from '@livebus/test-support';
import { RedisEventBus } from '../src/fleet/bus/redis-event-bus';
import { RedisLease } from '../src/fleet/lease/redis-lease';
import { RedisCompanyFanOut } from '../src/listeners/company/company-fanout';
import { RedisCompanyFollowers } from '../src/listeners/company/company-followers';
import { companyPrefixes } from '../src/listeners/company/company-keys';

// The company fan-out and followers on a standalone Redis and on a 3-master Cluster: each
// change lands once in every follower's stream (read back as any event is) and in the
// company's journal, in one script call per slot batch.
const change = (path: string): AppEvent => ({
  event: 'listener.change',
  data: { source: 'company', listener: 'jobs', path, change: 'added', initial: false, data: { n: 1 } },
});

describe.each(['standalone', 'cluster'] as const)('company fan-out on Redis %s', (kind) => {
  let server: RedisServerHandle | undefined;
  let cluster: RedisClusterHandle | undefined;
  let redis: RedisClient;
  beforeAll(async () => {
    if (kind === 'cluster') cluster = await startRedisCluster();
    else server = await startRedisServer();
    redis = openRedis((cluster ?? server)?.url as string, { cluster: kind === 'cluster', role: 'gateway' });
  }, 60_000);
  afterAll(async () => {
    redis?.disconnect();
    await Promise.all([server?.stop(), cluster?.stop()]);
  });

  it('appends each change once to every follower and the journal, one call per slot batch', async () => {
    const fanOut = new RedisCompanyFanOut(redis);
    const bus = new RedisEventBus(redis);
    const uids = Array.from({ length: 30 }, (_, i) => `fan-${kind}-${i}`);
    const cursor = await fanOut.append(
      'acme',
      uids,
      [change('companies/acme/jobs/a'), change('companies/acme/jobs/b')],
      { journal: true },
    );
    const slots = new Set(uids.map((u) => slotOf(`lb:{${u}}:s`))).size;
    expect(fanOut.calls()).toBe(kind === 'standalone' ? 1 : slots + 1);
    for (const uid of uids) {
      const epoch = parseCursor(await bus.head(uid))?.epoch as string;
      const read = await bus.readSince(uid, `${epoch}:0`);
      expect(read.events.map((e) => (e.data as { path: string }).path)).toEqual([
        'companies/acme/jobs/a',
        'companies/acme/jobs/b',
      ]);
    }
    // The journal: the cursor returned is the last change's; a read after the first has the second.
    const at = parseCursor(cursor as string);
    expect(at?.offset).toBe(2);
    const journal = await fanOut.readJournal('acme', `${at?.epoch}:1`);
    expect(journal.events.map((e) => (e.data as { path: string }).path)).toEqual(['companies/acme/jobs/b']);
    // Initial state to joiners only (no journal).
    expect(
      await fanOut.append('acme', [uids[0] as string], [change('companies/acme/jobs/c')], { journal: false }),
    ).toBeUndefined();
    await bus.close();
  });

  it('fenced by the company lease: appends while it holds, refuses (code fenced) and appends nothing once it moved', async () => {
    const fanOut = new RedisCompanyFanOut(redis);
    const bus = new RedisEventBus(redis);
    const lease = new RedisLease(redis, { prefixes: companyPrefixes });
    const uids = Array.from({ length: 30 }, (_, i) => `fenced-${kind}-${i}`);
    const first = await lease.acquire('hooli', 'gw-1', 60_000);
    const fence = { owner: 'gw-1', token: first?.token as number };
    const calls = fanOut.calls();
    const cursor = await fanOut.append('hooli', uids, [change('companies/hooli/jobs/a')], { journal: true, fence });
    expect(parseCursor(cursor as string)?.offset).toBe(1);
    // On a Cluster the fence is checked on its own before the followers' slots, and again with the journal.
    const slots = new Set(uids.map((u) => slotOf(`lb:{${u}}:s`))).size;
    expect(fanOut.calls() - calls).toBe(kind === 'standalone' ? 1 : slots + 2);
    // Another instance takes the company over: the first holder's appends are refused.
    expect(await lease.takeOver('hooli', fence, 'gw-2', 60_000)).toBeDefined();
    for (const journal of [true, false]) {
      await expect(
        fanOut.append('hooli', uids, [change('companies/hooli/jobs/b')], { journal, fence }),
      ).rejects.toMatchObject({ name: 'PublishError', code: 'fenced' });
    }
    for (const uid of uids) {
      const epoch = parseCursor(await bus.head(uid))?.epoch as string;
      const read = await bus.readSince(uid, `${epoch}:0`);
      expect(read.events.map((e) => (e.data as { path: string }).path)).toEqual(['companies/hooli/jobs/a']);
    }
    const journal = await fanOut.readJournal('hooli', `${parseCursor(cursor as string)?.epoch}:1`);
    expect(journal).toMatchObject({ status: 'resumed', events: [] });
    await bus.close();
  });

  it('keeps followers per instance, once per user, and who got the initial state', async () => {
    const followers = new RedisCompanyFollowers(redis);
    await followers.add('globex', 'gw-1', ['u1', 'u2'], 60_000);
    await followers.add('globex', 'gw-2', ['u1'], 60_000);
    await followers.initialized('globex', ['u1'], 60_000);
    expect(await followers.list('globex')).toEqual([
      { uid: 'u1', initialized: true },
      { uid: 'u2', initialized: false },
    ]);
    await followers.remove('globex', 'gw-1', 'u1');
    await followers.remove('globex', 'gw-2', 'u1');
    expect(await followers.list('globex')).toEqual([{ uid: 'u2', initialized: false }]);
    // u1 left: coming back, it gets the initial state again.
    await followers.add('globex', 'gw-1', ['u1'], 60_000);
    expect(await followers.list('globex')).toContainEqual({ uid: 'u1', initialized: false });
  });

  it('refreshes existing follower entries only, never re-creating a removed one', async () => {
    const followers = new RedisCompanyFollowers(redis);
    await followers.add('initech', 'gw-1', ['u1', 'u2'], 60_000);
    await followers.remove('initech', 'gw-1', 'u1');
    expect(await followers.refresh('initech', 'gw-1', ['u1', 'u2'], 60_000)).toEqual(['u1']);
    expect(await followers.list('initech')).toEqual([{ uid: 'u2', initialized: false }]);
    expect(await followers.refresh('initech', 'gw-2', ['u2'], 60_000)).toEqual(['u2']);
    expect(await followers.list('initech')).toEqual([{ uid: 'u2', initialized: false }]);
  });
});
