import type { AppEvent, TaskProgressUpdate } from '@livebus/protocol';
import { type RedisClusterHandle, startRedisCluster, waitFor } from '@livebus/test-support';
import { Cluster } from 'ioredis';
import { createLogger } from '../src/logger';
import { BullMqTaskQueue } from '../src/tasks/bullmq-task-queue';
import { RedisTaskStore } from '../src/tasks/redis-task-store';
import type { TaskRecord } from '../src/tasks/task-store';
import { BullMqTaskWorker } from '../src/tasks/worker/bullmq-task-worker';
import { LogCapture } from './helpers';

let cluster: RedisClusterHandle;
const clients: Cluster[] = [];
const connect = (options: { maxRetriesPerRequest?: null } = {}) => {
  const c = new Cluster([...cluster.nodes], { redisOptions: options, ...options });
  clients.push(c);
  return c;
};

beforeAll(async () => {
  cluster = await startRedisCluster();
}, 60_000);
afterAll(async () => {
  for (const c of clients) c.disconnect();
  await cluster?.stop();
});

const record = (taskId: string): TaskRecord => ({
  task_id: taskId,
  user_id: 'u1',
  status: 'queued',
  progress: 0,
  message: 'queued',
  created_at: '2026-11-22T12:00:00.000Z',
  updated_at: '2026-11-22T12:00:00.000Z',
});

describe('BullMQ on a Redis Cluster (every key under the {lbq} hash tag)', () => {
  it('runs a task end to end', async () => {
    const redis = connect();
    const store = new RedisTaskStore(redis);
    const queue = new BullMqTaskQueue({ connection: connect(), redis, store, pollMs: 100 });
    const logs = new LogCapture();
    const events: TaskProgressUpdate[] = [];
    const worker = new BullMqTaskWorker({
      connection: connect({ maxRetriesPerRequest: null }),
      redis,
      workerId: 'w-cluster',
      runner: {
        store,
        publish: async (_uid: string, event: AppEvent) => void events.push(event.data as TaskProgressUpdate),
      },
      logger: createLogger({ level: 'debug', format: 'json', instanceId: 'w-cluster', transport: logs }),
      heartbeatMs: 100,
    });
    try {
      const taskId = 'doc_analysis_cluster-1';
      await store.create(record(taskId));
      await queue.enqueue({
        task_id: taskId,
        user_id: 'u1',
        kind: 'document_analysis',
        content: 'Clusters shard keys. Hash tags keep keys together.',
      });
      const done = await waitFor(() => events.find((e) => e.status === 'completed'), 'completed', 15_000);
      expect(done.result).toMatchObject({ sentences: 2 });
      expect(await waitFor(() => queue.health().workers, 'a worker heartbeat')).toBe(1);
      // The completed event is published from inside the job: BullMQ moves it out of active just after.
      const idle = async () => {
        const depth = await queue.depth();
        return depth.active === 0 ? depth : undefined;
      };
      expect(await waitFor(idle, 'the job out of active')).toEqual({ waiting: 0, active: 0, delayed: 0 });
      expect(logs.entries.filter((e) => e.event === 'task_worker_error')).toEqual([]);
    } finally {
      await worker.close(1_000);
      await queue.close();
    }
  });
});
