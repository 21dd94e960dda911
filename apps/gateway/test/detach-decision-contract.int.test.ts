import { detachDecisionContract } from '../src/fleet/detach/detach-decision.contract';
import { MemoryDetachDecision } from '../src/fleet/detach/memory-detach-decision';
import { RedisDetachDecision } from '../src/fleet/detach/redis-detach-decision';
import { MemoryPresence } from '../src/fleet/presence/memory-presence';
import { RedisPresence } from '../src/fleet/presence/redis-presence';
import { MemoryRegistryStore } from '../src/fleet/registry/memory-registry-store';
import { RedisRegistryStore } from '../src/fleet/registry/redis-registry-store';
import { emptyUserRegistry } from '../src/fleet/registry/registry-store';
import { useFleetBackends } from './fleet-backends';
import { elapseUsers } from './presence-elapse';

const backends = useFleetBackends();

detachDecisionContract('in-memory', async (options) => {
  const presence = new MemoryPresence(options);
  const registry = new MemoryRegistryStore();
  return { presence, registry, decision: new MemoryDetachDecision(presence, registry, options) };
});

for (const backend of [backends.standalone, backends.cluster]) {
  detachDecisionContract(backend.name, async (options) => {
    const redis = backend.connect();
    return {
      presence: new RedisPresence(redis, options),
      registry: new RedisRegistryStore(redis),
      decision: new RedisDetachDecision(redis, options),
    };
  });

  describe(`registry ghosts on ${backend.name}`, () => {
    // Long enough that no real delay matters: the test moves the expiries (elapseUsers).
    const ttl = 30_000;
    const session = (id: string, instance: string) => ({
      session_id: id,
      route: '/',
      instance_id: instance,
      registered_at: new Date().toISOString(),
    });
    const entry = (id: string, instance: string) => ({
      sessionId: id,
      instanceId: instance,
      route: '/',
      connectedAt: 1,
    });

    it("a dead instance's sessions expire within INSTANCE_TTL_MS, and with them its users' registry sessions", async () => {
      const uid = `ghost-${Date.now()}`;
      const alone = `${uid}-alone`;
      const dead = new RedisPresence(backend.connect(), { instanceTtlMs: ttl });
      const live = new RedisPresence(backend.connect(), { instanceTtlMs: ttl });
      const redis = backend.connect();
      const registry = new RedisRegistryStore(redis);
      // Registration order varies in practice: presence first for one session, registry first for another.
      await dead.add(uid, entry('dead-1', 'gw-dead'));
      await registry.registerSession(uid, session('dead-1', 'gw-dead'));
      await registry.registerSession(uid, session('live-1', 'gw-live'));
      await live.add(uid, entry('live-1', 'gw-live'));
      await registry.registerSession(alone, session('dead-2', 'gw-dead'));
      await dead.add(alone, entry('dead-2', 'gw-dead'));
      for (const key of [`registry:user:{${uid}}`, `registry:user:{${alone}}`]) {
        const left = await redis.pttl(key);
        expect([key, left > 0 && left <= ttl]).toEqual([key, true]);
      }
      // gw-dead was SIGKILLed: only gw-live beats, here once half a TTL in.
      await elapseUsers(redis, [uid, alone], ttl / 2);
      expect(await live.refresh('gw-live', [[uid, ['live-1']]])).toEqual([]);
      // Just past the TTL since gw-dead's last write.
      await elapseUsers(redis, [uid, alone], ttl / 2 + 1);
      // The user nobody else holds: the whole legacy hash expired with the presence keys, no script needed.
      expect(await redis.exists(`registry:user:{${alone}}`)).toBe(0);
      expect(await registry.getSessions(alone)).toEqual([]);
      // The shared user: the live instance's next heartbeat prunes the dead session from presence and registry.
      expect(await live.refresh('gw-live', [[uid, ['live-1']]])).toEqual([]);
      expect((await registry.getSessions(uid)).map((s) => s.session_id)).toEqual(['live-1']);
      expect((await live.sessions(uid)).map((s) => s.sessionId)).toEqual(['live-1']);
      const left = await redis.pttl(`registry:user:{${uid}}`);
      expect(left > 0 && left <= ttl).toBe(true);
    });

    it('cleaning marks the unified document offline and keeps its TTL, and deletes the legacy hash', async () => {
      const redis = backend.connect();
      const registry = new RedisRegistryStore(redis);
      const uid = `keepttl-${Date.now()}`;
      await registry.registerSession(uid, session('s', 'gw'));
      await registry.putUnified(uid, emptyUserRegistry(uid, true), 120);
      expect(await new RedisDetachDecision(redis).cleanupIfAbsent(uid)).toBe('cleaned');
      expect(await redis.exists(`registry:user:{${uid}}`)).toBe(0);
      expect((await registry.getUnified(uid))?.user_info.status).toBe('offline');
      expect(await redis.ttl(`registry:unified:{${uid}}`)).toBeGreaterThan(100); // KEEPTTL
    });

    it('the legacy hash has a backstop TTL when no presence vouches for it', async () => {
      const redis = backend.connect();
      const registry = new RedisRegistryStore(redis, 'registry:', { sessionsTtlS: 600 });
      await registry.registerSession('no-presence', session('s', 'gw'));
      const left = await redis.pttl('registry:user:{no-presence}');
      expect(left > 590_000 && left <= 600_000).toBe(true);
    });
  });
}
