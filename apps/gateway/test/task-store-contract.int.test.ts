import { sleep } from '@livebus/test-support';
import { MemoryTaskStore } from '../src/tasks/memory-task-store';
import { RedisTaskStore } from '../src/tasks/redis-task-store';
import { taskStoreContract } from '../src/tasks/task-store.contract';
import { useFleetBackends } from './fleet-backends';

const backends = useFleetBackends();

taskStoreContract('in-memory', async ({ ttlMs }) => {
  let now = 1_800_000_000_000;
  const store = new MemoryTaskStore({ ttlMs, now: () => now });
  return {
    store,
    lapse: async (ms) => {
      now += ms;
    },
  };
});
for (const backend of [backends.standalone, backends.cluster]) {
  taskStoreContract(backend.name, async ({ ttlMs }) => ({
    store: new RedisTaskStore(backend.connect(), { ttlMs }),
    lapse: sleep,
  }));
}
