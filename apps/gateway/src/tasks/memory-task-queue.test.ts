import type { AppEvent, TaskProgressUpdate } from '@livebus/protocol';
import { waitFor } from '@livebus/test-support';
import { createLogger } from '../logger';
import { MemoryTaskQueue } from './memory-task-queue';
import { MemoryTaskStore } from './memory-task-store';
import type { TaskRecord } from './task-store';

const logger = createLogger({ level: 'error', format: 'json', instanceId: 'test' });
const queued = (taskId: string): TaskRecord => ({
  task_id: taskId,
  user_id: 'u',
  status: 'queued',
  progress: 0,
  created_at: 'now',
  updated_at: 'now',
});
const job = (taskId: string) => ({
  task_id: taskId,
  user_id: 'u',
  kind: 'document_analysis' as const,
  content: 'One sentence here. Another one there.',
});

/** A queue of two attempts, 10 ms apart, recording each job's outcome in `outcomes`. */
const twoAttempts = (
  store: MemoryTaskStore,
  publish: (uid: string, e: AppEvent) => Promise<void>,
  outcomes: string[],
) =>
  new MemoryTaskQueue(store, {
    runner: { store, publish },
    logger,
    attempts: 2,
    backoffMs: 10,
    observe: (o) => outcomes.push(o),
  });

describe('MemoryTaskQueue', () => {
  it('retries a transient failure with backoff and completes; gives up with attempts_exhausted', async () => {
    const store = new MemoryTaskStore();
    const events: TaskProgressUpdate[] = [];
    let failures = 0;
    const outcomes: string[] = [];
    const publish = async (_uid: string, e: AppEvent) => {
      const data = e.data as TaskProgressUpdate;
      // The first attempt of `flaky` loses its bus once; `doomed` never reaches it while running.
      if (data.status === 'running' && data.progress > 0 && data.task_id === 'flaky' && failures++ === 0) {
        throw new Error('bus away');
      }
      if (data.status === 'running' && data.task_id === 'doomed') throw new Error('bus away');
      events.push(data);
    };
    const queue = twoAttempts(store, publish, outcomes);
    for (const id of ['flaky', 'doomed']) {
      await store.create(queued(id));
      await queue.enqueue(job(id));
    }
    await waitFor(() => events.find((e) => e.task_id === 'flaky' && e.status === 'completed'), 'flaky completed');
    const doomed = await waitFor(() => events.find((e) => e.task_id === 'doomed' && e.status === 'failed'), 'failed');
    expect(doomed).toMatchObject({ error_code: 'attempts_exhausted', error: expect.stringContaining('bus away') });
    expect((await store.get('flaky'))?.attempts).toBe(2);
    expect(outcomes.sort()).toEqual(['completed', 'failed', 'retried', 'retried']);
    await queue.close();
  });

  it('gives a job up once its attempts are spent (no run past them), and tells the end its last attempt could not', async () => {
    const store = new MemoryTaskStore();
    const events: TaskProgressUpdate[] = [];
    const outcomes: string[] = [];
    let refuse = 2;
    const publish = async (_uid: string, e: AppEvent) => {
      const data = e.data as TaskProgressUpdate;
      // The end's event cannot be published by either attempt (the bus away meanwhile).
      if (data.status === 'completed' && refuse-- > 0) throw new Error('outbox_full');
      events.push(data);
    };
    const queue = twoAttempts(store, publish, outcomes);
    await store.create(queued('t'));
    await queue.enqueue(job('t'));
    await waitFor(() => events.find((e) => e.status === 'completed'), 'the end told by the given-up handler');
    // Before the fix a third attempt ran (and with a bus that stays away, attempts went on for ever).
    expect(outcomes).toEqual(['retried']);
    expect(await queue.depth()).toEqual({ waiting: 0, active: 0, delayed: 0 });
    expect(await store.get('t')).toMatchObject({ status: 'completed', attempts: 1 });
    await queue.close();
  });

  it('runs at most `concurrency` jobs at once and ignores a job already queued', async () => {
    const store = new MemoryTaskStore();
    let running = 0;
    let peak = 0;
    const queue = new MemoryTaskQueue(store, {
      runner: {
        store,
        publish: async (_uid, e) => {
          const s = (e.data as TaskProgressUpdate).status;
          if (s === 'running' && (e.data as TaskProgressUpdate).progress === 0) peak = Math.max(peak, ++running);
          if (s === 'completed') running--;
        },
        analysis: { stageDelayMs: 5 },
      },
      logger,
      concurrency: 2,
    });
    for (const id of ['a', 'b', 'c', 'd']) {
      await store.create(queued(id));
      await queue.enqueue(job(id));
      await queue.enqueue(job(id));
    }
    expect(await queue.depth()).toEqual({ waiting: 2, active: 2, delayed: 0 });
    await waitFor(async () => (await store.get('d'))?.status === 'completed', 'all done');
    expect(peak).toBe(2);
    expect((await store.get('a'))?.attempts).toBe(1);
    await queue.close();
  });
});
