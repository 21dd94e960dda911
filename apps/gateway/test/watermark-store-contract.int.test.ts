import { MemoryLease } from '../src/fleet/lease/memory-lease';
import { RedisLease } from '../src/fleet/lease/redis-lease';
import { MemoryWatermarkStore } from '../src/listeners/memory-watermark-store';
import { RedisWatermarkStore } from '../src/listeners/redis-watermark-store';
import { watermarkStoreContract } from '../src/listeners/watermark-store.contract';
import { useFleetBackends } from './fleet-backends';

const backends = useFleetBackends();

watermarkStoreContract('in-memory', async () => {
  const lease = new MemoryLease();
  return { store: new MemoryWatermarkStore(lease), lease };
});
for (const backend of [backends.standalone, backends.cluster]) {
  watermarkStoreContract(backend.name, async () => {
    const redis = backend.connect();
    return { store: new RedisWatermarkStore(redis), lease: new RedisLease(redis) };
  });

  describe(`RedisWatermarkStore on ${backend.name}`, () => {
    it('keeps the cursor beside the mark, fenced, and reads it as absent for marks stored before it', async () => {
      const client = backend.connect();
      const uid = `lee-${Date.now()}`;
      const lease = new RedisLease(client);
      const store = new RedisWatermarkStore(client);
      const { token } = (await lease.acquire(uid, 'gw-a', 60_000))!;
      const fence = { owner: 'gw-a', token };
      // As an older version stored them: a mark and a delivered document, no cursor.
      await client.hset(`lb:{${uid}}:lw`, 'l', '10');
      await client.hset(`lb:{${uid}}:ld`, 'l p/a', '9');
      expect(await store.get(uid)).toEqual({
        marks: { l: '10' },
        docs: { l: { 'p/a': '9' } },
        overflowed: [],
        cursors: {},
      });
      await store.set(uid, 'l', '11', fence, { put: { 'p/b': '11' }, del: [] }, 'e:3');
      await store.set(uid, 'a b', '11', fence, { put: {}, del: [], overflow: true }, 'e:4');
      await store.set(uid, 'l', '12', fence, { put: {}, del: ['p/a'] });
      expect(await store.set(uid, 'l', '13', { owner: 'gw-b', token }, undefined, 'e:9')).toBe(false);
      expect(await store.get(uid)).toEqual({
        marks: { l: '12', 'a b': '11' },
        docs: { l: { 'p/b': '11' } },
        overflowed: ['a b'],
        cursors: { l: 'e:3', 'a b': 'e:4' },
      });
      await store.forget(uid, 'a b');
      expect(await store.get(uid)).toMatchObject({ overflowed: [], cursors: { l: 'e:3' } });
      await store.clear(uid);
      expect((await store.get(uid)).cursors).toEqual({});
    });
  });
}
