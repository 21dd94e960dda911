import { RpcErrorCode } from '@livebus/protocol';
import type { Principal } from '../src/auth/authenticator';
import { BullMqTaskQueue } from '../src/tasks/bullmq-task-queue';
import { RedisTaskStore } from '../src/tasks/redis-task-store';
import type { TaskJobData, TaskQueue } from '../src/tasks/task-queue';
import { TaskService } from '../src/tasks/task-service';
import { useFleetBackends } from './fleet-backends';

const backends = useFleetBackends();

/** What the next enqueue does: BullMQ's add, nothing and a failure, or BullMQ's add and then a failure (its answer lost). */
type EnqueueOutcome = 'ok' | 'refused' | 'lost-answer';

// A start that fails part-way, on the real task store and BullMQ queue: no worker runs, so every
// job queued stays waiting. The start's hold is 0, so a queued task counts against its user's
// limit only through its job in BullMQ, found where the store's script looks for it.
for (const backend of [backends.standalone, backends.cluster]) {
  describe(`a start that fails part-way gives its open-task slot back: ${backend.name}`, () => {
    let real: BullMqTaskQueue;
    let service: TaskService;
    const outcomes: EnqueueOutcome[] = [];
    let run = 0;

    beforeAll(() => {
      const redis = backend.connect();
      const store = new RedisTaskStore(redis);
      real = new BullMqTaskQueue({ connection: redis, redis, store, pollMs: 60_000 });
      const queue: TaskQueue = {
        sharedAcrossInstances: true,
        store,
        queueJobId: (taskId, at) => real.queueJobId(taskId, at),
        async enqueue(job: TaskJobData) {
          const outcome = outcomes.shift() ?? 'ok';
          if (outcome === 'refused') throw new Error('Connection is closed.');
          await real.enqueue(job);
          if (outcome === 'lost-answer') throw new Error('Connection is closed.');
        },
        remove: (taskId, queueJobId) => real.remove(taskId, queueJobId),
        depth: () => real.depth(),
        health: () => real.health(),
        close: () => real.close(),
      };
      service = new TaskService({
        queue,
        publish: async () => undefined,
        maxDocumentBytes: 1_000,
        maxOpenPerUser: 1,
        startHoldMs: 0,
      });
    });
    afterAll(() => real?.close());

    const user = () => {
      const uid = `u-${Date.now()}-${run++}`;
      const principal: Principal = { uid, service: false };
      const start = (jobId: string) =>
        service.startDocumentAnalysis(principal, uid, 'Some text.', `${uid}-${jobId}`).then(
          () => 'ok',
          (e: { code?: string }) => e.code,
        );
      return {
        uid,
        start,
        cancel: async (jobId: string) => (await service.cancel(principal, `doc_analysis_${uid}-${jobId}`)).success,
        status: async (jobId: string) => (await service.getStatus(principal, `doc_analysis_${uid}-${jobId}`)).status,
      };
    };

    it('a task whose job is in BullMQ counts: the next start of its user is refused', async () => {
      const u = user();
      expect(await u.start('a')).toBe('ok');
      expect(await u.start('b')).toBe(RpcErrorCode.RateLimited);
    });

    it('a start whose enqueue failed frees its slot; the task stays queued, and its start again completes it', async () => {
      const u = user();
      outcomes.push('refused');
      expect(await u.start('a')).toBe(RpcErrorCode.Unavailable);
      expect(await u.status('a')).toBe('queued');
      expect(await u.start('b')).toBe('ok');
      expect(await u.start('c')).toBe(RpcErrorCode.RateLimited);
      // Started again while b holds the only slot, it is refused like a new task: no second job.
      expect(await u.start('a')).toBe(RpcErrorCode.RateLimited);
      expect(await real.store.get(`doc_analysis_${u.uid}-a`)).toMatchObject({ status: 'queued', start_hold_until: 0 });
      // Once b is cancelled, a's start again completes it (existing): its job is queued and counts.
      expect(await u.cancel('b')).toBe(true);
      expect(await u.start('a')).toBe('ok');
      expect(await u.start('c')).toBe(RpcErrorCode.RateLimited);
    });

    it('a start whose job reached BullMQ, its answer lost, keeps its slot (no second slot for its user)', async () => {
      const u = user();
      outcomes.push('lost-answer');
      expect(await u.start('a')).toBe(RpcErrorCode.Unavailable);
      expect(await u.start('b')).toBe(RpcErrorCode.RateLimited);
    });
  });
}
