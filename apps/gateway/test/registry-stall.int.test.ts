import { type RedisServerHandle, startRedisServer, waitFor } from '@livebus/test-support';
import { Redis } from 'ioredis';
import { composePorts } from '../src/compose';
import { RedisRegistryStore } from '../src/fleet/registry/redis-registry-store';
import { connectAs, httpJson, registryWith, startGateway, type TestGateway } from './helpers';

// A gateway whose heartbeat came late (a stalled event loop, Redis out of reach for longer than
// INSTANCE_TTL_MS) finds its sessions' presence entries expired and writes them again. The
// registry entries an app registered for those sessions expired with them (they expire with the
// presence that vouches for them): the gateway writes them back in the same step, as it last saw
// them (read with the hello's presence write, then as registered or unregistered through it). Presence entries are expired here as a late heartbeat leaves
// them: their expiry moved into the past, the next script on the user's keys prunes them.

let redis: RedisServerHandle;
let admin: Redis;
let t: TestGateway;
let other: TestGateway;
let registry: RedisRegistryStore;

beforeAll(async () => {
  redis = await startRedisServer();
  admin = new Redis(redis.url);
  registry = new RedisRegistryStore(admin);
  t = await startGateway({ instanceId: 'gw-stall', redisUrl: redis.url, instanceTtlMs: 1_500 }, composePorts);
  other = await startGateway({ instanceId: 'gw-stall-b', redisUrl: redis.url, instanceTtlMs: 1_500 }, composePorts);
});
afterAll(async () => {
  await other?.close();
  await t?.close();
  admin?.disconnect();
  await redis?.stop();
});

/** As a heartbeat too late leaves the user's entries: expired, to be pruned by the next script on them. */
async function expirePresence(uid: string): Promise<void> {
  const key = `lb:{${uid}}:pz`;
  for (const sessionId of await admin.zrange(key, 0, -1)) await admin.zadd(key, 'XX', 1, sessionId);
}

/** The session's presence entry is live again (written anew by a beat). */
const presentAgain = (uid: string, sessionId: string) =>
  waitFor(
    async () => Number(await admin.zscore(`lb:{${uid}}:pz`, sessionId)) > Date.now(),
    `${sessionId}'s presence entry written again`,
  );

describe('registry entries of sessions whose presence expired during a stall', () => {
  it('are written again, as registered, with the presence entries', async () => {
    const { client, welcome } = await connectAs(t.url, 'stall-1');
    const sid = welcome.session_id;
    await client.call('REGISTRY.register_user', ['stall-1', sid, '/inbox']);
    const [registered] = await registry.getSessions('stall-1');
    expect(registered).toMatchObject({ session_id: sid, route: '/inbox', instance_id: 'gw-stall' });

    await expirePresence('stall-1');
    await presentAgain('stall-1', sid);
    await waitFor(async () => (await registry.getSessions('stall-1')).length > 0, 'the registry entry written again');
    expect(await registry.getSessions('stall-1')).toEqual([registered]);
    await client.close();
  });

  it('are written again for a session that registered on an earlier connection of the same session id', async () => {
    const first = await connectAs(t.url, 'stall-3');
    const sid = first.welcome.session_id;
    await first.client.call('REGISTRY.register_user', ['stall-3', sid, '/kept']);
    const [registered] = await registry.getSessions('stall-3');
    // The tab reconnects (same session id; its new socket takes the old one's place) and does
    // not register again: its entry stands.
    const again = await connectAs(t.url, 'stall-3', { session_id: sid });
    await first.client.closed;
    expect(await registry.getSessions('stall-3')).toEqual([registered]);

    await expirePresence('stall-3');
    await presentAgain('stall-3', sid);
    await waitFor(async () => (await registry.getSessions('stall-3')).length > 0, 'the registry entry written again');
    expect(await registry.getSessions('stall-3')).toEqual([registered]);
    await again.client.close();
  });

  it('are written back as last changed through another gateway (registered anew there, or taken back)', async () => {
    const here = await connectAs(t.url, 'stall-4');
    const sid = here.welcome.session_id;
    await here.client.call('REGISTRY.register_user', ['stall-4', sid, '/here']);
    // Another tab of the user, on the other gateway, registers this session anew.
    const there = await connectAs(other.url, 'stall-4');
    await there.client.call('REGISTRY.register_user', ['stall-4', sid, '/there']);
    const [anew] = await registry.getSessions('stall-4').then((all) => all.filter((e) => e.session_id === sid));
    expect(anew).toMatchObject({ route: '/there', instance_id: 'gw-stall-b' });
    // The session's gateway is told: /debug shows the entry it would write back.
    const keptRoute = async () => {
      const debug = await httpJson(`${t.http}/debug`);
      type Described = { uid: string; sessions: { session_id: string; registered_route: string | null }[] };
      const users = debug.body.users as Described[];
      return users.find((u) => u.uid === 'stall-4')?.sessions.find((x) => x.session_id === sid)?.registered_route;
    };
    await waitFor(async () => (await keptRoute()) === '/there', 'the holder told of the new entry');

    await expirePresence('stall-4');
    await presentAgain('stall-4', sid);
    await waitFor(
      async () => (await registry.getSessions('stall-4')).some((e) => e.session_id === sid),
      'the entry written back',
    );
    expect((await registry.getSessions('stall-4')).filter((e) => e.session_id === sid)).toEqual([anew]);

    // Taken back through the other gateway: the holder forgets it, and a stall brings nothing back.
    await there.client.call('REGISTRY.unregister_session', ['stall-4', sid]);
    await waitFor(async () => (await keptRoute()) === null, 'the holder told of the removal');
    await expirePresence('stall-4');
    await presentAgain('stall-4', sid);
    expect((await registry.getSessions('stall-4')).filter((e) => e.session_id === sid)).toEqual([]);

    // Registered through the other gateway, then at once taken back through this one: however the
    // other's message and this one's removal interleave, what this gateway keeps is what Redis has.
    await there.client.call('REGISTRY.register_user', ['stall-4', sid, '/there-again']);
    await here.client.call('REGISTRY.unregister_session', ['stall-4', sid]);
    await waitFor(async () => (await keptRoute()) === null, 'nothing kept');
    await expirePresence('stall-4');
    await presentAgain('stall-4', sid);
    expect((await registry.getSessions('stall-4')).filter((e) => e.session_id === sid)).toEqual([]);
    await Promise.all([here.client.close(), there.client.close()]);
  });

  it('are not written again once the app unregistered them, nor for sessions never registered', async () => {
    const one = await connectAs(t.url, 'stall-2');
    const two = await connectAs(t.url, 'stall-2');
    const [sidOne, sidTwo] = [one.welcome.session_id, two.welcome.session_id];
    await one.client.call('REGISTRY.register_user', ['stall-2', sidOne, '/a']);
    await one.client.call('REGISTRY.unregister_session', ['stall-2', sidOne]);
    // The second session registers itself under its own id: that one comes back, only that one.
    await two.client.call('REGISTRY.register_user', ['stall-2', sidTwo, '/b']);

    await expirePresence('stall-2');
    await presentAgain('stall-2', sidOne);
    await presentAgain('stall-2', sidTwo);
    await waitFor(async () => (await registry.getSessions('stall-2')).length > 0, 'the registry entry written again');
    expect((await registry.getSessions('stall-2')).map((s) => [s.session_id, s.route])).toEqual([[sidTwo, '/b']]);
    await Promise.all([one.client.close(), two.client.close()]);
  });
});

describe('a registry change made while the session is being admitted', () => {
  it('is read again once the session opens, when made through the same gateway', async () => {
    // Memory ports: the presence write reads no registry entry, so the session keeps one only if
    // it reads the entry again. The hello is held after its presence write, before it opens.
    const { deps } = registryWith({});
    const presence = deps.presence as NonNullable<typeof deps.presence>;
    const add = presence.add.bind(presence);
    let written = false;
    let open!: () => void;
    const held = new Promise<void>((resolve) => {
      open = resolve;
    });
    presence.add = async (...args) => {
      const added = await add(...args);
      written = true;
      await held;
      return added;
    };
    const gw = await startGateway({ instanceId: 'gw-admitting' }, deps);
    try {
      const connecting = connectAs(gw.url, 'adm-1', { session_id: 'adm-s1' });
      await waitFor(() => written, 'the presence write done');
      const call = await httpJson(`${gw.http}/rpc`, {
        method: 'POST',
        token: 'adm-1',
        body: JSON.stringify({ method: 'REGISTRY.register_user', args: ['adm-1', 'adm-s1', '/inbox'] }),
      });
      expect(call.status).toBe(200);
      open();
      const { client } = await connecting;
      const route = async () => {
        type Described = { uid: string; sessions: { session_id: string; registered_route: string | null }[] };
        const users = (await httpJson(`${gw.http}/debug`)).body.users as Described[];
        return users.find((u) => u.uid === 'adm-1')?.sessions[0]?.registered_route;
      };
      await waitFor(async () => (await route()) === '/inbox', 'the entry read again once open');
      await client.close();
    } finally {
      open();
      await gw.close();
    }
  });
});
