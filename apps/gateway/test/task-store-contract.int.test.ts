import { type RedisClient, taskKey } from '@livebus/publisher/redis';
import { MemoryTaskStore } from '../src/tasks/memory-task-store';
import { openTasksKey, RedisTaskStore, taskJobKeyPrefix } from '../src/tasks/redis-task-store';
import { taskStoreContract } from '../src/tasks/task-store.contract';
import { useFleetBackends } from './fleet-backends';

const backends = useFleetBackends();

// Time passing for the task store's keys, without waiting for it (a busy machine could let a
// record outlive, or not, a short real TTL): every task record and open-task set has its TTL
// shortened by ARGV[1] ms, and is deleted when that is all it had left, as Redis would have
// expired it. They all share the `{lbq}` hash tag: one slot, one node, KEYS[1] routes there.
const ELAPSE = `
local ms = tonumber(ARGV[1])
for i = 2, #ARGV do
  for _, key in ipairs(redis.call('KEYS', ARGV[i])) do
    local left = redis.call('PTTL', key)
    if left > 0 then
      if left > ms then redis.call('PEXPIRE', key, left - ms) else redis.call('DEL', key) end
    end
  end
end
`;

const elapse = (redis: RedisClient, ms: number) =>
  redis.eval(ELAPSE, 1, taskKey('route'), ms, `${taskKey('')}*`, `${openTasksKey('')}*`).then(() => undefined);

taskStoreContract('in-memory', async ({ ttlMs }) => {
  let now = 1_800_000_000_000;
  const jobs = new Set<string>();
  const store = new MemoryTaskStore({ ttlMs, now: () => now, hasJob: (id) => jobs.has(id) });
  return {
    store,
    lapse: async (ms) => {
      now += ms;
    },
    now: () => now,
    addJob: async (id) => void jobs.add(id),
    openIds: async (userId) => store.openTaskIds(userId).sort(),
  };
});
for (const backend of [backends.standalone, backends.cluster]) {
  taskStoreContract(backend.name, async ({ ttlMs }) => {
    const redis = backend.connect();
    // The clock of the starts' holds moves with the TTLs (`elapse`), not with the machine's.
    let now = Date.now();
    return {
      store: new RedisTaskStore(redis, { ttlMs, now: () => now }),
      lapse: async (ms) => {
        now += ms;
        await elapse(redis, ms);
      },
      now: () => now,
      // A stand-in for BullMQ's hash of the job, where the store looks for it (the real queue's
      // job: test/task-start-slot.int.test.ts). Expires with the test's other keys.
      addJob: async (jobId) => {
        await redis.hset(`${taskJobKeyPrefix}${jobId}`, 'name', 'document_analysis');
        await redis.pexpire(`${taskJobKeyPrefix}${jobId}`, 600_000);
      },
      openIds: async (userId) => (await redis.smembers(openTasksKey(userId))).sort(),
    };
  });
}
