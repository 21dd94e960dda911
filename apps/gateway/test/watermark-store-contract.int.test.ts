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
}
