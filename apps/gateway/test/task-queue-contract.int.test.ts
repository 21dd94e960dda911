import type { AppEvent, TaskProgressUpdate } from '@livebus/protocol';
import { createLogger } from '../src/logger';
import { BullMqTaskQueue } from '../src/tasks/bullmq-task-queue';
import { MemoryTaskQueue } from '../src/tasks/memory-task-queue';
import { MemoryTaskStore } from '../src/tasks/memory-task-store';
import { RedisTaskStore } from '../src/tasks/redis-task-store';
import { taskQueueContract } from '../src/tasks/task-queue.contract';
import { BullMqTaskWorker } from '../src/tasks/worker/bullmq-task-worker';
import { useFleetBackends } from './fleet-backends';

const backends = useFleetBackends();
const logger = createLogger({ level: 'error', format: 'json', instanceId: 'contract' });
const recorder = () => {
  const events: TaskProgressUpdate[] = [];
  const publish = async (_uid: string, event: AppEvent) => void events.push(event.data as TaskProgressUpdate);
  return { events, publish };
};

taskQueueContract('in-process', async ({ running }) => {
  const store = new MemoryTaskStore();
  const { events, publish } = recorder();
  // No worker: a concurrency of 0 starts nothing, as a BullMQ queue without workers.
  const queue = new MemoryTaskQueue(store, {
    runner: { store, publish, analysis: { stageDelayMs: 1 } },
    logger,
    concurrency: running ? 1 : 0,
  });
  return { queue, events, close: () => queue.close() };
});

for (const backend of [backends.standalone, backends.cluster]) {
  taskQueueContract(`BullMQ on ${backend.name}`, async ({ running }) => {
    // The queue's keys are fixed ({lbq}:livebus-tasks:*): each test starts from an empty Redis.
    await backend.flush();
    const redis = backend.connect();
    const store = new RedisTaskStore(redis);
    const queue = new BullMqTaskQueue({ connection: backend.connect(), redis, store, pollMs: 50 });
    const { events, publish } = recorder();
    const worker = running
      ? new BullMqTaskWorker({
          connection: backend.connect({ blocking: true }),
          redis,
          workerId: 'w-contract',
          runner: { store, publish, analysis: { stageDelayMs: 1 } },
          logger,
          heartbeatMs: 50,
        })
      : undefined;
    return {
      queue,
      events,
      close: async () => {
        await worker?.close(1_000);
        await queue.close();
      },
    };
  });
}
