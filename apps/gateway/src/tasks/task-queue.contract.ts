import type { TaskProgressUpdate } from '@livebus/protocol';
import { waitFor } from '@livebus/test-support';
import type { TaskJobData, TaskQueue } from './task-queue';
import type { TaskRecord } from './task-store';

/** A queue under test, with what its jobs published. */
export interface TaskQueueFixture {
  queue: TaskQueue;
  /** The `task.progress_update` payloads the queue's runs published, in order. */
  events: TaskProgressUpdate[];
  /** Stops the workers started for the test, then closes the queue. */
  close(): Promise<void>;
}

/**
 * The contract every {@link TaskQueue} passes: run by test/task-queue-contract.int.test.ts
 * against the in-process queue and BullMQ (standalone Redis and Redis Cluster). `make`
 * gives a fresh, empty queue; with `running: false` nothing takes its jobs (the memory
 * queue runs none at once, BullMQ has no worker), with `running: true` one worker runs
 * them with the shared task runner.
 */
export function taskQueueContract(
  name: string,
  make: (options: { running: boolean }) => Promise<TaskQueueFixture>,
): void {
  describe(`TaskQueue contract: ${name}`, () => {
    let n = 0;
    let fixture: TaskQueueFixture | undefined;
    const open = async (options: { running: boolean }) => {
      fixture = await make(options);
      return fixture;
    };
    afterEach(async () => {
      await fixture?.close();
      fixture = undefined;
    });
    const taskId = () => `doc_analysis_${Date.now()}-${n++}`;
    const job = (id: string): TaskJobData => ({
      task_id: id,
      user_id: 'u1',
      kind: 'document_analysis',
      content: 'Queues hand work over. Workers run it.',
    });
    const queued = (id: string): TaskRecord => ({
      task_id: id,
      user_id: 'u1',
      status: 'queued',
      progress: 0,
      created_at: '2026-01-01T00:00:00.000Z',
      updated_at: '2026-01-01T00:00:00.000Z',
    });

    it('names a run of a task the same job id every time; other tasks and other runs differently', async () => {
      const { queue } = await open({ running: false });
      const a = taskId();
      const b = taskId();
      const run = '2026-01-01T00:00:00.000Z';
      expect(queue.queueJobId(a, run)).toBe(queue.queueJobId(a, run));
      expect(queue.queueJobId(a, run)).not.toBe(queue.queueJobId(b, run));
      expect(queue.queueJobId(a, run)).not.toBe(queue.queueJobId(a, '2026-01-02T00:00:00.000Z'));
      expect(typeof queue.queueJobId(a, run)).toBe('string');
    });

    it('counts each task queued once however often it is enqueued', async () => {
      const { queue } = await open({ running: false });
      expect(await queue.depth()).toEqual({ waiting: 0, active: 0, delayed: 0 });
      const ids = [taskId(), taskId(), taskId()];
      for (const id of ids) {
        await queue.store.create(queued(id));
        await queue.enqueue(job(id));
        await queue.enqueue(job(id));
      }
      expect(await queue.depth()).toEqual({ waiting: 3, active: 0, delayed: 0 });
    });

    it('queues two runs of a task (started again after its record expired) as two jobs, each once', async () => {
      const { queue } = await open({ running: false });
      const id = taskId();
      await queue.store.create(queued(id));
      for (const run of ['2026-01-01T00:00:00.000Z', '2026-01-02T00:00:00.000Z']) {
        const queueJobId = queue.queueJobId(id, run);
        await queue.enqueue({ ...job(id), queue_job_id: queueJobId });
        await queue.enqueue({ ...job(id), queue_job_id: queueJobId });
      }
      expect(await queue.depth()).toEqual({ waiting: 2, active: 0, delayed: 0 });
      await queue.remove(id, queue.queueJobId(id, '2026-01-01T00:00:00.000Z'));
      expect(await queue.depth()).toEqual({ waiting: 1, active: 0, delayed: 0 });
    });

    it("says whether a run's job is in the queue: from its enqueue until it is removed", async () => {
      const { queue } = await open({ running: false });
      const id = taskId();
      const queueJobId = queue.queueJobId(id, '2026-01-01T00:00:00.000Z');
      await queue.store.create(queued(id));
      expect(await queue.hasJob?.(queueJobId)).toBe(false);
      await queue.enqueue({ ...job(id), queue_job_id: queueJobId });
      expect(await queue.hasJob?.(queueJobId)).toBe(true);
      expect(await queue.hasJob?.(queue.queueJobId(id, '2026-01-02T00:00:00.000Z'))).toBe(false);
      await queue.remove(id, queueJobId);
      expect(await queue.hasJob?.(queueJobId)).toBe(false);
    });

    it('drops a job that has not started; removing an unknown one changes nothing', async () => {
      const { queue } = await open({ running: false });
      const [a, b] = [taskId(), taskId()];
      for (const id of [a, b]) {
        await queue.store.create(queued(id));
        await queue.enqueue(job(id));
      }
      await queue.remove(a);
      expect(await queue.depth()).toEqual({ waiting: 1, active: 0, delayed: 0 });
      await queue.remove(`${a}-never-queued`);
      expect(await queue.depth()).toEqual({ waiting: 1, active: 0, delayed: 0 });
    });

    it('runs a queued job once, to completion: its events in order, the store completed after one attempt', async () => {
      const { queue, events } = await open({ running: true });
      const id = taskId();
      await queue.store.create(queued(id));
      await queue.enqueue(job(id));
      await waitFor(() => events.find((e) => e.task_id === id && e.status === 'completed'), 'completed', 15_000);
      const mine = events.filter((e) => e.task_id === id);
      expect(mine[0]?.status).toBe('running');
      expect(mine.filter((e) => e.status === 'completed')).toHaveLength(1);
      expect(mine.at(-1)?.status).toBe('completed');
      const progress = mine.map((e) => e.progress);
      expect(progress).toEqual([...progress].sort((x, y) => x - y));
      expect(await queue.store.get(id)).toMatchObject({ status: 'completed', progress: 100, attempts: 1 });
      const idle = async () => {
        const depth = await queue.depth();
        return depth.active === 0 ? depth : undefined;
      };
      expect(await waitFor(idle, 'the job out of active')).toEqual({ waiting: 0, active: 0, delayed: 0 });
      expect(await waitFor(() => queue.health().workers || undefined, 'a live worker')).toBeGreaterThanOrEqual(1);
    });

    it('does not run a job removed before a worker took it', async () => {
      const { queue } = await open({ running: false });
      const id = taskId();
      await queue.store.create(queued(id));
      await queue.enqueue(job(id));
      await queue.remove(id);
      expect(await queue.depth()).toEqual({ waiting: 0, active: 0, delayed: 0 });
      expect((await queue.store.get(id))?.status).toBe('queued');
    });
  });
}
