import type { AppEvent, TaskProgressUpdate } from '@livebus/protocol';
import { waitFor } from '@livebus/test-support';
import { MemoryTaskStore } from './memory-task-store';
import { failAbandonedTask, runTask } from './task-runner';

const job = {
  task_id: 't1',
  user_id: 'u',
  kind: 'document_analysis' as const,
  content: 'One sentence here. Another one there.',
};

/** The record of `job`'s task, queued. */
const queued = () => ({
  task_id: 't1',
  user_id: 'u',
  status: 'queued' as const,
  progress: 0,
  created_at: 'now',
  updated_at: 'now',
});

describe('runTask with two attempts at one job (a lost job lock)', () => {
  it('the later attempt holds the task: the earlier one reports nothing more and ends nothing', async () => {
    const store = new MemoryTaskStore();
    await store.create({ ...queued(), attempts: 0 });
    const events: { attempt: number; data: TaskProgressUpdate }[] = [];
    // Each attempt waits after its second stage until released: the first is overtaken there,
    // and goes on while the second is still running.
    const gates = new Map<number, () => void>();
    const held = (attempt: number) => new Promise<void>((resolve) => gates.set(attempt, resolve));
    const publisher = (attempt: number) => async (_uid: string, e: AppEvent) => {
      const data = e.data as TaskProgressUpdate;
      events.push({ attempt, data });
      if (data.progress === 15 && data.message === 'splitting sentences and words') await held(attempt);
    };
    const reached = async (attempt: number) => {
      while (!gates.has(attempt)) await new Promise((r) => setTimeout(r, 1));
    };
    const first = runTask({ store, publish: publisher(1) }, job, { attempt: 1, last: false });
    await reached(1);
    const second = runTask({ store, publish: publisher(2) }, job, { attempt: 2, last: false });
    await reached(2);
    gates.get(1)?.();
    expect(await first).toBe('skipped');
    gates.get(2)?.();
    expect(await second).toBe('completed');
    const firstAfterSecond = events.slice(events.findIndex((e) => e.attempt === 2)).filter((e) => e.attempt === 1);
    expect(firstAfterSecond).toEqual([]);
    expect(events.filter((e) => e.data.status === 'completed')).toHaveLength(1);
    const record = await store.get('t1');
    expect(record).toMatchObject({ status: 'completed', attempts: 2 });
    expect(record).not.toHaveProperty('run');
  });

  it('an attempt told it lost its job stops at its next checkpoint without a word', async () => {
    const store = new MemoryTaskStore();
    await store.create(queued());
    const lost = new AbortController();
    const events: TaskProgressUpdate[] = [];
    const publish = async (_uid: string, e: AppEvent) => {
      events.push(e.data as TaskProgressUpdate);
      if (events.length === 2) lost.abort();
    };
    expect(await runTask({ store, publish }, job, { attempt: 1, last: true, lost: lost.signal })).toBe('skipped');
    expect(events.map((e) => e.message)).toEqual(['started', 'normalising text']);
    // Left running for the attempt that takes the job over.
    expect(await store.get('t1')).toMatchObject({ status: 'running', attempts: 1 });
  });
  it("an overtaken attempt whose step lands after the later attempt's end tells that end again after it", async () => {
    const store = new MemoryTaskStore();
    await store.create(queued());
    const events: TaskProgressUpdate[] = [];
    let thaw!: () => void;
    const frozen = new Promise<void>((resolve) => (thaw = resolve));
    let freezing = false;
    const lost = new AbortController();
    // The first attempt freezes (a GC pause, a partition) between a step's store write and its publish.
    const first = runTask(
      {
        store,
        publish: async (_uid, e) => {
          const data = e.data as TaskProgressUpdate;
          if (!freezing && data.progress === 15) {
            freezing = true;
            await frozen;
          }
          events.push(data);
        },
      },
      job,
      { attempt: 1, last: false, lost: lost.signal },
    );
    await waitFor(() => freezing, 'the first attempt frozen before its publish');
    // Its job lock lapses meanwhile: the queue starts the job again.
    lost.abort();
    const publish = async (_uid: string, e: AppEvent) => void events.push(e.data as TaskProgressUpdate);
    expect(await runTask({ store, publish }, job, { attempt: 2, last: false })).toBe('completed');
    thaw();
    expect(await first).toBe('skipped');
    // Before the fix its `running` (15 %) landed after `completed` and stayed last.
    expect(events.at(-1)).toMatchObject({ status: 'completed', progress: 100 });
    expect(await store.get('t1')).toMatchObject({ status: 'completed', attempts: 2 });
  });
});

describe('runTask when the final event cannot be published', () => {
  /** A publish that refuses the events whose status is `refuse` (`times` of them), as an outbox full or closed does. */
  const publisher = (events: TaskProgressUpdate[], refuse: string, times: number) => {
    let left = times;
    return async (_uid: string, e: AppEvent) => {
      const data = e.data as TaskProgressUpdate;
      if (data.status === refuse && left-- > 0) throw new Error('outbox_full');
      events.push(data);
    };
  };

  it('the attempt throws (the queue runs the job again) and the next attempt announces the end it finds', async () => {
    const store = new MemoryTaskStore();
    await store.create(queued());
    const events: TaskProgressUpdate[] = [];
    const publish = publisher(events, 'completed', 1);
    await expect(runTask({ store, publish }, job, { attempt: 1, last: false })).rejects.toThrow('outbox_full');
    expect(await store.get('t1')).toMatchObject({ status: 'completed', attempts: 1 });
    expect(await runTask({ store, publish }, job, { attempt: 2, last: true })).toBe('skipped');
    expect(events.filter((e) => e.status !== 'running')).toMatchObject([{ status: 'completed', progress: 100 }]);
    // Ended once: the second attempt changed nothing.
    expect(await store.get('t1')).toMatchObject({ status: 'completed', attempts: 1 });
  });

  it('on the last attempt it throws too (not ended again as failed)', async () => {
    const store = new MemoryTaskStore();
    await store.create(queued());
    const events: TaskProgressUpdate[] = [];
    const publish = publisher(events, 'completed', 1);
    await expect(runTask({ store, publish }, job, { attempt: 1, last: true })).rejects.toThrow('outbox_full');
    expect(await store.get('t1')).toMatchObject({ status: 'completed' });
    expect(events.filter((e) => e.status === 'completed')).toEqual([]);
  });

  it('the last attempt whose announcement of an earlier end fails throws (the queue gives the job up and tells)', async () => {
    const store = new MemoryTaskStore();
    await store.create(queued());
    const events: TaskProgressUpdate[] = [];
    const publish = publisher(events, 'completed', 2);
    await expect(runTask({ store, publish }, job, { attempt: 2, last: false })).rejects.toThrow('outbox_full');
    // Before the fix it answered `skipped`: BullMQ completed the job, its given-up handler never
    // ran, and the task's last event stayed `running`.
    await expect(runTask({ store, publish }, job, { attempt: 3, last: true })).rejects.toThrow('outbox_full');
    expect(events.at(-1)).toMatchObject({ status: 'running' });
    expect(await store.get('t1')).toMatchObject({ status: 'completed', attempts: 2 });
  });

  it("a job of an earlier run of the task (its record expired and started again) leaves the new run's record alone", async () => {
    const store = new MemoryTaskStore();
    await store.create({ ...queued(), queue_job_id: 'run-2' });
    const events: TaskProgressUpdate[] = [];
    const deps = { store, publish: publisher(events, '', 0) };
    expect(await runTask(deps, { ...job, queue_job_id: 'run-1' }, { attempt: 1, last: false })).toBe('skipped');
    expect(await store.get('t1')).toMatchObject({ status: 'queued', queue_job_id: 'run-2' });
    expect(events).toEqual([]);
  });

  it('a task cancelled while queued is not announced again by an attempt that picks it up', async () => {
    const store = new MemoryTaskStore();
    await store.create(queued());
    await store.transition('t1', ['queued'], { status: 'cancelled', message: 'cancelled before it started' });
    const events: TaskProgressUpdate[] = [];
    expect(await runTask({ store, publish: publisher(events, '', 0) }, job, { attempt: 1, last: false })).toBe(
      'skipped',
    );
    expect(events).toEqual([]);
  });

  it('failAbandonedTask announces the end of a task an attempt ended without announcing it', async () => {
    const store = new MemoryTaskStore();
    await store.create(queued());
    const events: TaskProgressUpdate[] = [];
    const publish = publisher(events, 'completed', 1);
    await expect(runTask({ store, publish }, job, { attempt: 1, last: true })).rejects.toThrow('outbox_full');
    expect(await failAbandonedTask({ store, publish }, 't1', 'the job was given up')).toBe(false);
    expect(events.filter((e) => e.status !== 'running')).toMatchObject([{ status: 'completed' }]);
    expect(await store.get('t1')).toMatchObject({ status: 'completed' });
  });

  it('failAbandonedTask retries a failed announcement of the end it wrote (the task never ran: attempts 0)', async () => {
    const store = new MemoryTaskStore();
    await store.create(queued());
    const events: TaskProgressUpdate[] = [];
    const errors: unknown[] = [];
    const publish = publisher(events, 'failed', 1);
    const retry = { delaysMs: [1, 1], onError: (e: unknown) => errors.push(e) };
    expect(await failAbandonedTask({ store, publish }, 't1', 'the job was given up', retry)).toBe(true);
    expect(events).toMatchObject([{ status: 'failed', error_code: 'attempts_exhausted' }]);
    expect(errors).toHaveLength(1);
  });

  it('failAbandonedTask stops retrying once its signal aborts (its worker closing), with the last error', async () => {
    jest.useFakeTimers();
    try {
      const store = new MemoryTaskStore();
      await store.create(queued());
      const events: TaskProgressUpdate[] = [];
      const closing = new AbortController();
      const errors: unknown[] = [];
      const retry = { delaysMs: [60_000, 60_000], signal: closing.signal, onError: (e: unknown) => errors.push(e) };
      const ending = failAbandonedTask({ store, publish: publisher(events, 'failed', 3) }, 't1', 'given up', retry);
      const outcome = ending.then(
        () => 'ended',
        (e: Error) => e.message,
      );
      await jest.advanceTimersByTimeAsync(0);
      expect(errors).toHaveLength(1);
      // In its first wait: the abort ends it there (before the fix it went on for the 2 minutes).
      closing.abort();
      await jest.advanceTimersByTimeAsync(0);
      expect(await Promise.race([outcome, Promise.resolve('still waiting')])).toMatch('outbox_full');
      expect(errors).toHaveLength(1);
    } finally {
      jest.useRealTimers();
    }
  });

  it('failAbandonedTask gives up once its retries are spent, with the last error', async () => {
    const store = new MemoryTaskStore();
    await store.create(queued());
    const events: TaskProgressUpdate[] = [];
    const publish = publisher(events, 'failed', 3);
    const retry = { delaysMs: [1, 1] };
    await expect(failAbandonedTask({ store, publish }, 't1', 'the job was given up', retry)).rejects.toThrow(
      'outbox_full',
    );
    expect(events).toEqual([]);
  });
});
