import { type RedisServerHandle, startRedisServer } from '@livebus/test-support';
import { Redis } from 'ioredis';
import { MemoryRegistryStore } from '../src/fleet/registry/memory-registry-store';
import { RedisRegistryStore } from '../src/fleet/registry/redis-registry-store';
import { registryStoreContract } from '../src/fleet/registry/registry-store.contract';
import { useFleetBackends } from './fleet-backends';

let server: RedisServerHandle;
const clients: Redis[] = [];
beforeAll(async () => {
  server = await startRedisServer();
});
afterAll(async () => {
  for (const c of clients) c.disconnect();
  await server.stop();
});

registryStoreContract('in-memory', async () => new MemoryRegistryStore());
registryStoreContract('Redis', async () => {
  const redis = new Redis(server.url);
  clients.push(redis);
  return new RedisRegistryStore(redis);
});
const backends = useFleetBackends();
registryStoreContract('Redis Cluster', async () => new RedisRegistryStore(backends.cluster.connect()));

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
