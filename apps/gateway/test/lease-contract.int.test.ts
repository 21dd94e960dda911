import { leaseContract } from '../src/fleet/lease/lease.contract';
import { MemoryLease } from '../src/fleet/lease/memory-lease';
import { RedisLease } from '../src/fleet/lease/redis-lease';
import { useFleetBackends } from './fleet-backends';

const backends = useFleetBackends();

leaseContract('in-memory', async () => {
  const lease = new MemoryLease();
  return () => lease;
});
for (const backend of [backends.standalone, backends.cluster]) {
  leaseContract(backend.name, async () => () => new RedisLease(backend.connect()));

  describe(`RedisLease keys on ${backend.name}`, () => {
    it('stores owner|token under lb:{key}:l and the counter under lb:{key}:lf, both with a TTL', async () => {
      const redis = backend.connect();
      const lease = new RedisLease(redis, { fenceTtlMs: 60_000 });
      const got = await lease.acquire('k1', 'gw-a', 5_000);
      expect(await redis.get('lb:{k1}:l')).toBe(`gw-a|${got!.token}`);
      expect(await redis.get('lb:{k1}:lf')).toBe(String(got!.token));
      const leaseTtl = await redis.pttl('lb:{k1}:l');
      const fenceTtl = await redis.pttl('lb:{k1}:lf');
      expect(leaseTtl > 0 && leaseTtl <= 5_000).toBe(true);
      expect(fenceTtl > 5_000 && fenceTtl <= 60_000).toBe(true);
      await lease.release('k1', 'gw-a', got!.token);
    });

    it('keeps tokens increasing after the counter itself expired', async () => {
      const redis = backend.connect();
      const lease = new RedisLease(redis, { fenceTtlMs: 1 });
      const first = await lease.acquire('k2', 'gw-a', 1);
      await new Promise((r) => setTimeout(r, 20));
      expect(await redis.exists('lb:{k2}:lf')).toBe(0);
      const second = await lease.acquire('k2', 'gw-b', 5_000);
      expect(second!.token).toBeGreaterThan(first!.token);
    });
  });
}
