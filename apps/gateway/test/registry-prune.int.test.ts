import { type RedisServerHandle, startRedisServer, waitFor } from '@livebus/test-support';
import { Redis } from 'ioredis';
import { composePorts } from '../src/compose';
import { MemoryPresence } from '../src/fleet/presence/memory-presence';
import type { Presence } from '../src/fleet/presence/presence';
import { RedisPresence } from '../src/fleet/presence/redis-presence';
import { MemoryRegistryStore } from '../src/fleet/registry/memory-registry-store';
import { RedisRegistryStore } from '../src/fleet/registry/redis-registry-store';
import type { RegistryStore } from '../src/fleet/registry/registry-store';
import { connectAs, startGateway, type TestClient, type TestGateway } from './helpers';
import { elapseUsers } from './presence-elapse';

// REGISTRY_MAX_SESSIONS_PER_USER counts the entries of tabs that closed without unregistering
// until they are pruned. They must be pruned DETACH_DELAY_MS after the close whatever that is
// (0 included) and while the user keeps another tab open, on the embedded default as on Redis,
// or a user who keeps one tab open and opens others fills the bound and is refused.

let redis: RedisServerHandle;
let admin: Redis;
beforeAll(async () => {
  redis = await startRedisServer();
  admin = new Redis(redis.url);
});
afterAll(async () => {
  admin.disconnect();
  await redis.stop();
});

const backends: Array<[string, boolean]> = [
  ['the embedded default', false],
  ['Redis', true],
];
let n = 0;

describe.each(backends)('registered sessions of closed tabs, on %s', (_name, onRedis) => {
  let t: TestGateway | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it.each([0, 300])(
    'with DETACH_DELAY_MS=%i are pruned while the user keeps a tab, and never fill the bound',
    async (detachDelayMs) => {
      const config = {
        detachDelayMs,
        maxSessionsPerUser: 2,
        registryMaxSessionsPerUser: 2,
        // A heartbeat a second (a third of it): the Redis presence prunes at every operation on the user.
        instanceTtlMs: 3_000,
        logLevel: 'warn' as const,
        ...(onRedis ? { redisUrl: redis.url } : {}),
      };
      t = await startGateway(config, onRedis ? composePorts : {});
      const uid = `prune-${onRedis ? 'redis' : 'memory'}-${detachDelayMs}-${n++}`;
      const register = (client: TestClient, sessionId: string) =>
        client.call('REGISTRY.register_user', [uid, sessionId, '/']);
      const keep = await connectAs(t.url, uid);
      const registered = async () => {
        const answer = await keep.client.call('REGISTRY.get_sessions', [uid]);
        if (answer.type !== 'rpc_result') throw new Error(`get_sessions answered ${JSON.stringify(answer)}`);
        return (answer.result as { sessions: Array<{ session_id: string }> }).sessions.map((s) => s.session_id);
      };
      expect((await register(keep.client, keep.welcome.session_id)).type).toBe('rpc_result');
      const answers: string[] = [];
      for (let i = 0; i < 3; i++) {
        const tab = await connectAs(t.url, uid);
        const answer = await register(tab.client, tab.welcome.session_id);
        answers.push(answer.type === 'rpc_error' ? answer.error.code : answer.type);
        await tab.client.close();
        await waitFor(
          async () => !(await registered()).includes(tab.welcome.session_id),
          `the entry of closed tab ${i} pruned`,
          10_000,
        );
      }
      expect(answers).toEqual(['rpc_result', 'rpc_result', 'rpc_result']);
      expect(await registered()).toEqual([keep.welcome.session_id]);
      await keep.client.close();
    },
  );
});

/** A presence and registry kept together, with a leave grace, and time passing for them. */
interface Pair {
  presence: Presence;
  registry: RegistryStore;
  elapse(uid: string, ms: number): Promise<void>;
}
// Within the presence entries' TTL (30 s): only the left sessions' grace runs out.
const GRACE = 10_000;
const pairs: Array<[string, () => Pair]> = [
  [
    'the embedded default',
    () => {
      let elapsed = 0;
      const now = () => Date.now() + elapsed;
      const registry = new MemoryRegistryStore(now);
      const presence = new MemoryPresence({ now, registry, leaveGraceMs: GRACE });
      return {
        presence,
        registry,
        elapse: async (_uid, ms) => {
          elapsed += ms;
        },
      };
    },
  ],
  [
    'Redis',
    () => ({
      presence: new RedisPresence(admin, { leaveGraceMs: GRACE }),
      registry: new RedisRegistryStore(admin),
      elapse: (uid, ms) => elapseUsers(admin, [uid], ms),
    }),
  ],
];

describe.each(pairs)('the registry with its presence, on %s', (_name, make) => {
  const entry = (id: string) => ({ sessionId: id, instanceId: 'gw', route: '/', connectedAt: 1 });
  const session = (id: string) => ({
    session_id: id,
    route: '/',
    instance_id: 'gw',
    registered_at: new Date().toISOString(),
  });

  it("keeps a left session's entry through its leave grace, then a registration counts without it", async () => {
    const { presence, registry, elapse } = make();
    const uid = `grace-${n++}`;
    for (const id of ['keep', 'left', 'back']) {
      await presence.add(uid, entry(id));
      expect(await registry.registerSession(uid, session(id), 3)).toBe(true);
    }
    await presence.remove(uid, 'left', 'gw');
    await presence.remove(uid, 'back', 'gw');
    // In the grace: kept, for the session to resume with its id; the bound is reached.
    expect(await registry.registerSession(uid, session('new'), 3)).toBe(false);
    await presence.add(uid, entry('back'));
    await elapse(uid, GRACE + 1);
    // Past it, with no presence operation since: the registration prunes first, and passes.
    expect(await registry.registerSession(uid, session('new'), 3)).toBe(true);
    expect((await registry.getSessions(uid)).map((s) => s.session_id).sort()).toEqual(['back', 'keep', 'new']);
  });
});
