import type { AppEvent, TaskProgressUpdate } from '@livebus/protocol';
import { type RedisClusterHandle, startRedisCluster, waitFor } from '@livebus/test-support';
import { Cluster } from 'ioredis';
import { createLogger } from '../src/logger';
import { BullMqTaskQueue } from '../src/tasks/bullmq-task-queue';
import { MemoryTaskStore } from '../src/tasks/memory-task-store';
import { RedisTaskStore } from '../src/tasks/redis-task-store';
import type { TaskRecord, TaskStore } from '../src/tasks/task-store';
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

describe.each([
  ['memory', () => new MemoryTaskStore()],
  ['Redis Cluster', () => new RedisTaskStore(connect())],
])('TaskStore contract: %s', (_name, make: () => TaskStore) => {
  it('creates once, changes only from the named statuses, keeps progress rising, deletes on null', async () => {
    const store = make();
    const id = `t-${Math.random().toString(36).slice(2)}`;
    expect((await store.create(record(id))).created).toBe(true);
    const again = await store.create({ ...record(id), user_id: 'someone-else' });
    expect(again).toMatchObject({ created: false, record: { user_id: 'u1' } });

    expect((await store.transition(id, ['running'], { status: 'completed' })).ok).toBe(false);
    const run = await store.transition(id, ['queued'], { status: 'running', progress: 40, attempts: 1 });
    expect(run).toMatchObject({ ok: true, record: { status: 'running', progress: 40, attempts: 1 } });
    const lower = await store.transition(id, ['running'], { progress: 10, message: null, result: [] as never });
    expect(lower.record?.progress).toBe(40);
    expect(lower.record).not.toHaveProperty('message');
    // An empty array survives the round trip (no Lua JSON decoding of values).
    expect(lower.record?.result).toEqual([]);
    expect(await store.get(id)).toEqual(lower.record);
    expect(await store.transition('missing', ['queued'], { status: 'running' })).toEqual({
      ok: false,
      record: undefined,
    });
    expect(await store.get('missing')).toBeUndefined();
  });

  it('fences attempts: a claim needs a higher attempt, a step the claiming run', async () => {
    const store = make();
    const id = `t-${Math.random().toString(36).slice(2)}`;
    await store.create({ ...record(id), attempts: 0 });
    const claim = (attempt: number, run: string) =>
      store.transition(id, ['queued', 'running'], { status: 'running', attempts: attempt, run }, { claimAs: attempt });
    expect((await claim(1, 'first')).ok).toBe(true);
    expect((await store.transition(id, ['running'], { progress: 5 }, { run: 'first' })).ok).toBe(true);
    expect((await claim(2, 'second')).ok).toBe(true);
    // The first run lost the task: its steps change nothing; it cannot take it back either.
    expect(await store.transition(id, ['running'], { progress: 40 }, { run: 'first' })).toMatchObject({
      ok: false,
      record: { progress: 5, attempts: 2, run: 'second' },
    });
    expect((await claim(1, 'first')).ok).toBe(false);
    expect((await claim(2, 'again')).ok).toBe(false);
    const end = await store.transition(id, ['running'], { status: 'completed', run: null }, { run: 'second' });
    expect(end).toMatchObject({ ok: true, record: { status: 'completed' } });
    expect(end.record).not.toHaveProperty('run');
  });
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
