import { fleetUserKeys } from '@livebus/publisher/redis';
import { startTcpProxy } from '@livebus/test-support';
import { Redis } from 'ioredis';
import { MemoryPresence } from '../src/fleet/presence/memory-presence';
import { PresenceRefreshError } from '../src/fleet/presence/presence';
import { presenceContract } from '../src/fleet/presence/presence.contract';
import { RedisPresence } from '../src/fleet/presence/redis-presence';
import { useFleetBackends } from './fleet-backends';
import { elapseInstances, elapseUsers } from './presence-elapse';

const backends = useFleetBackends();

presenceContract('in-memory', async (options) => {
  // Its clock runs on with the real one, and elapse() moves it on further.
  let elapsed = 0;
  const presence = new MemoryPresence({ ...options, now: () => Date.now() + elapsed });
  return Object.assign(() => presence, {
    elapse: async (ms: number) => {
      elapsed += ms;
    },
  });
});
describe('RedisPresence refresh on a Redis that answers nothing (frozen)', () => {
  it('gives each user up after its step timeout and rejects, rather than waiting for ever', async () => {
    const proxy = await startTcpProxy(Number(new URL(backends.standalone.url).port));
    const redis = new Redis(`redis://127.0.0.1:${proxy.port}`);
    try {
      const presence = new RedisPresence(redis, { instanceTtlMs: 3_000, refreshSpreadMs: 0 });
      const users = Array.from({ length: 3 }, (_, i) => `frozen-${i}`);
      for (const uid of users)
        await presence.add(uid, { sessionId: 's', instanceId: 'gw-f', route: '/', connectedAt: 1 });
      proxy.freeze();
      const refreshed = presence.refresh(
        'gw-f',
        users.map((uid) => [uid, ['s']] as const),
      );
      await expect(refreshed).rejects.toMatchObject({ name: 'PresenceRefreshError', failedUsers: 3 });
    } finally {
      proxy.thaw();
      redis.disconnect();
      await proxy.close();
    }
  });
});

for (const backend of [backends.standalone, backends.cluster]) {
  presenceContract(backend.name, async (options) => {
    const admin = backend.connect();
    return Object.assign(() => new RedisPresence(backend.connect(), options), {
      elapse: async (ms: number, of: { users?: string[]; instances?: string[] }) => {
        await elapseUsers(admin, of.users ?? [], ms);
        await elapseInstances(admin, of.instances ?? [], ms);
      },
    });
  });

  describe(`RedisPresence refresh on ${backend.name}`, () => {
    it('refreshes every other user when one user fails (its node away), then rejects saying how many failed', async () => {
      const redis = backend.connect();
      const presence = new RedisPresence(redis, { instanceTtlMs: 30_000, refreshSpreadMs: 0 });
      // Two slices of REFRESH_SLICE (64) users and one more; the first user's step fails.
      const users = Array.from({ length: 65 }, (_, i) => `slice-${i}`);
      for (const uid of users)
        await presence.add(uid, { sessionId: 's', instanceId: 'gw-r', route: '/', connectedAt: 1 });
      await redis.del('lb:{slice-0}:pz');
      await redis.set('lb:{slice-0}:pz', 'not a sorted set');
      const before = Number(await redis.zscore('lb:{slice-64}:pz', 's'));
      await new Promise((r) => setTimeout(r, 5));
      const refreshed = presence.refresh(
        'gw-r',
        users.map((uid) => [uid, ['s']] as const),
      );
      await expect(refreshed).rejects.toBeInstanceOf(PresenceRefreshError);
      await expect(refreshed).rejects.toMatchObject({ failedUsers: 1, lost: [] });
      // The last slice's user was refreshed all the same.
      expect(Number(await redis.zscore('lb:{slice-64}:pz', 's'))).toBeGreaterThan(before);
    });
  });

  describe(`RedisPresence and the session's registry entry on ${backend.name}`, () => {
    const entry = (instanceId: string) => ({ sessionId: 's', instanceId, route: '/', connectedAt: 1 });
    const registered = (route: string) => JSON.stringify({ session_id: 's', route, registered_at: 'x' });

    it('answers the session id registry entry with every add (a hello reads what to write back)', async () => {
      const redis = backend.connect();
      const presence = new RedisPresence(redis, { instanceTtlMs: 30_000 });
      expect(await presence.add('rg-1', entry('gw'))).toMatchObject({ refused: false, registration: undefined });
      await redis.hset('registry:user:{rg-1}', 's', registered('/a'));
      expect(await presence.add('rg-1', entry('gw'))).toMatchObject({ refused: false, registration: registered('/a') });
    });

    it('a re-announce writes the entry back when the id has none, keeps one registered anew, and a refused one writes nothing', async () => {
      const redis = backend.connect();
      const presence = new RedisPresence(redis, { instanceTtlMs: 30_000 });
      const again = (uid: string, instanceId: string) =>
        presence.add(uid, entry(instanceId), { reannounce: true, registration: registered('/old') });
      // Pruned with the presence entry: written back.
      await again('rg-2', 'gw');
      expect(await redis.hget('registry:user:{rg-2}', 's')).toBe(registered('/old'));
      // Registered anew meanwhile (another route): kept.
      await redis.hset('registry:user:{rg-3}', 's', registered('/new'));
      await again('rg-3', 'gw');
      expect(await redis.hget('registry:user:{rg-3}', 's')).toBe(registered('/new'));
      // Held by another instance now (the tab reconnected there): nothing written.
      await presence.add('rg-4', entry('gw-other'));
      expect(await again('rg-4', 'gw')).toMatchObject({ refused: true, heldElsewhere: true });
      expect(await redis.hget('registry:user:{rg-4}', 's')).toBeNull();
      // A plain add (a hello) never writes it, whatever it is given.
      await presence.add('rg-5', entry('gw'), { registration: registered('/old') });
      expect(await redis.hget('registry:user:{rg-5}', 's')).toBeNull();
    });
  });

  describe(`RedisPresence keys on ${backend.name}`, () => {
    it('keeps a user under lb:{uid}:p and lb:{uid}:pz, every key with a TTL', async () => {
      const redis = backend.connect();
      const presence = new RedisPresence(redis, { instanceTtlMs: 5_000 });
      await presence.add('k1', { sessionId: 's', instanceId: 'gw', route: '/', connectedAt: 1 });
      await presence.announce({ id: 'gw-k1', sessions: 1, users: 1, startedAt: 1, version: 'v' }, 5_000);
      expect(await redis.hkeys('lb:{k1}:p')).toEqual(['s']);
      expect(await redis.zrange('lb:{k1}:pz', 0, -1)).toEqual(['s']);
      for (const key of ['lb:{k1}:p', 'lb:{k1}:pz', 'lb:instance:{gw-k1}']) {
        const ttl = await redis.pttl(key);
        expect([key, ttl > 0 && ttl <= 5_000]).toEqual([key, true]);
      }
      // Shared by all instances: it expires with its latest member (other tests announce for 30 s).
      const listTtl = await redis.pttl('lb:instances');
      expect(listTtl > 0 && listTtl <= 30_000).toBe(true);
      await presence.remove('k1', 's', 'gw');
      expect(await redis.exists('lb:{k1}:p', 'lb:{k1}:pz')).toBe(0); // no empty keys left behind
    });

    it('tells the instance a session moved from, on its control channel, unless the ids would not reach it intact', async () => {
      const redis = backend.connect();
      const presence = new RedisPresence(redis, { instanceTtlMs: 30_000 });
      const entry = (sessionId: string, instanceId: string) => ({ sessionId, instanceId, route: '/', connectedAt: 1 });
      await presence.add('mover', entry('tab', 'gw-from'));
      expect(await presence.add('mover', entry('tab', 'gw-to'))).toMatchObject({ refused: false, holderTold: true });
      // A lone surrogate would reach the old instance as U+FFFD (UTF-8, cjson): the hello tells it itself.
      await presence.add('mover', entry('tab\ud800', 'gw-from'));
      const moved = await presence.add('mover', entry('tab\ud800', 'gw-to'));
      expect(moved).toMatchObject({ refused: false, replaced: { instanceId: 'gw-from' } });
      expect(moved).not.toHaveProperty('holderTold');
    });

    it('refreshes thousands of users in one heartbeat, spread in slices, and reports the ones it no longer holds', async () => {
      const redis = backend.connect();
      const presence = new RedisPresence(redis, { instanceTtlMs: 30_000, refreshSpreadMs: 200 });
      const users = Array.from({ length: 2_000 }, (_, i) => `bulk-${backend.name.length}-${i}`);
      await Promise.all(
        users.map((u) => presence.add(u, { sessionId: 's', instanceId: 'gw-bulk', route: '/', connectedAt: 1 })),
      );
      const gone = `bulk-${backend.name.length}-gone`;
      // Shorten the last user's expiry, so the refresh is seen however slow the host.
      const lastKey = fleetUserKeys(users[1_999] as string).presence;
      await redis.pexpire(lastKey, 5_000);
      const held = [...users.slice(0, 1_000), gone, ...users.slice(1_000)].map((u) => [u, ['s']] as const);
      expect(await presence.refresh('gw-bulk', held)).toEqual([gone]);
      // The last slice ran too: its entry's expiry moved on.
      expect(await redis.pttl(lastKey)).toBeGreaterThan(20_000);
    });
  });
}

describe('fleetUserKeys', () => {
  it('puts every key of a user in the same hash slot', async () => {
    const k = fleetUserKeys('alice');
    expect(k).toEqual({
      presence: 'lb:{alice}:p',
      presenceExpiry: 'lb:{alice}:pz',
      lease: 'lb:{alice}:l',
      leaseFence: 'lb:{alice}:lf',
      listenerMarks: 'lb:{alice}:lw',
      listenerDocs: 'lb:{alice}:ld',
      workflowWatches: 'lb:{alice}:wf',
      detachClaim: 'lb:{alice}:dc',
      registrySessions: 'registry:user:{alice}',
      registryUnified: 'registry:unified:{alice}',
    });
    expect(() => fleetUserKeys('')).toThrow(expect.objectContaining({ name: 'UserKeyError' }));
  });

  it('is refused by nothing in a cluster: one slot per user, also for odd ids', async () => {
    const redis = backends.cluster.connect() as unknown as Redis;
    for (const uid of ['alice', 'a}b', 'x{y', 'ünï']) {
      const slots = await Promise.all(Object.values(fleetUserKeys(uid)).map((key) => redis.cluster('KEYSLOT', key)));
      expect(new Set(slots).size).toBe(1);
    }
  });
});
