import type { RedisClient } from '@livebus/publisher/redis';
import { type RedisServerHandle, startRedisServer } from '@livebus/test-support';
import { Redis } from 'ioredis';
import { MemoryPresence } from '../src/fleet/presence/memory-presence';
import { RedisPresence } from '../src/fleet/presence/redis-presence';
import { MemoryRegistryStore } from '../src/fleet/registry/memory-registry-store';
import { RedisRegistryStore } from '../src/fleet/registry/redis-registry-store';
import { registryStoreContract } from '../src/fleet/registry/registry-store.contract';
import { useFleetBackends } from './fleet-backends';
import { elapseUsers } from './presence-elapse';

let server: RedisServerHandle;
const clients: Redis[] = [];
beforeAll(async () => {
  server = await startRedisServer();
});
afterAll(async () => {
  for (const c of clients) c.disconnect();
  await server.stop();
});

const standalone = () => {
  const redis = new Redis(server.url);
  clients.push(redis);
  return redis;
};
/** The Redis store and presence on one connection; time passes by moving the user's expiries. */
const redisWithPresence = async (redis: RedisClient, leaveGraceMs: number) => ({
  store: new RedisRegistryStore(redis),
  presence: new RedisPresence(redis, { leaveGraceMs }),
  elapse: (userId: string, ms: number) => elapseUsers(redis, [userId], ms),
});

registryStoreContract(
  'in-memory',
  async () => new MemoryRegistryStore(),
  async (leaveGraceMs) => {
    // Its clock runs on with the real one, and elapse() moves it on further.
    let elapsed = 0;
    const now = () => Date.now() + elapsed;
    const store = new MemoryRegistryStore(now);
    const presence = new MemoryPresence({ now, registry: store, leaveGraceMs });
    return {
      store,
      presence,
      elapse: async (_userId, ms) => {
        elapsed += ms;
      },
    };
  },
);
registryStoreContract(
  'Redis',
  async () => new RedisRegistryStore(standalone()),
  (grace) => redisWithPresence(standalone(), grace),
);
const backends = useFleetBackends();
registryStoreContract(
  'Redis Cluster',
  async () => new RedisRegistryStore(backends.cluster.connect()),
  (grace) => redisWithPresence(backends.cluster.connect(), grace),
);

describe('RedisRegistryStore keys', () => {
  it('keeps the legacy registry under registry:user:{uid} and the unified one under registry:unified:{uid}, both with a TTL', async () => {
    const redis = new Redis(server.url);
    clients.push(redis);
    const store = new RedisRegistryStore(redis);
    await store.registerSession('k1', { session_id: 's', route: '/', registered_at: '2026-01-01T00:00:00.000Z' });
    await store.putUnified(
      'k1',
      { user_info: { user_id: 'k1', status: 'online' }, companies: { current_company_id: null }, services: {} },
      120,
    );
    expect(await redis.hkeys('registry:user:{k1}')).toEqual(['s']);
    expect(await redis.ttl('registry:user:{k1}')).toBeGreaterThan(86_000); // backstop: no presence vouches for it
    const ttl = await redis.ttl('registry:unified:{k1}');
    expect(ttl).toBeGreaterThan(100);
    expect(ttl).toBeLessThanOrEqual(120);
  });
});
