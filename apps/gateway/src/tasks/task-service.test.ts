import { type AppEvent, RpcErrorCode, type TaskProgressUpdate } from '@livebus/protocol';
import { waitFor } from '@livebus/test-support';
import type { Principal } from '../auth/authenticator';
import { createLogger } from '../logger';
import { MemoryTaskQueue } from './memory-task-queue';
import { MemoryTaskStore } from './memory-task-store';
import type { QueueDepth, TaskJobData, TaskQueue } from './task-queue';
import { TaskService } from './task-service';
import type { TaskPatch } from './task-store';

/** What the fake queue's next enqueues do: add the job, fail before it, or add it and fail (the answer lost). */
type EnqueueOutcome = 'ok' | 'refused' | 'lost-answer';

const cut = () => new Error('Connection is closed.');

/**
 * A queue whose jobs only sit in a set, over an in-memory store that sees that set (as the Redis
 * store sees BullMQ's job keys), on a clock the test moves.
 */
function fixture(options: {
  maxOpenPerUser: number;
  startHoldMs?: number;
  publish?: (userId: string, event: AppEvent) => Promise<unknown>;
}) {
  let now = 1_800_000_000_000;
  const jobs = new Set<string>();
  const store = new MemoryTaskStore({ now: () => now, hasJob: (id: string) => jobs.has(id) });
  const outcomes: EnqueueOutcome[] = [];
  let storeDown = false;
  const transition = store.transition.bind(store);
  // Redis cut: every later write of the task store fails too (the slot's release among them).
  store.transition = async (...args) => {
    if (storeDown) throw cut();
    return transition(...args);
  };
  const queue: TaskQueue = {
    sharedAcrossInstances: true,
    store,
    queueJobId: (taskId, run) => `q-${taskId}@${run}`,
    async enqueue(job: TaskJobData) {
      const outcome = outcomes.shift() ?? 'ok';
      if (outcome === 'refused') throw cut();
      jobs.add(job.queue_job_id ?? job.task_id);
      if (outcome === 'lost-answer') throw cut();
    },
    async remove(_taskId, queueJobId) {
      if (queueJobId) jobs.delete(queueJobId);
    },
    depth: async (): Promise<QueueDepth> => ({ waiting: jobs.size, active: 0, delayed: 0 }),
    health: () => ({ workers: 1 }),
    close: async () => {},
  };
  const service = new TaskService({
    queue,
    publish: options.publish ?? (async () => undefined),
    maxDocumentBytes: 1_000,
    maxOpenPerUser: options.maxOpenPerUser,
    ...(options.startHoldMs !== undefined ? { startHoldMs: options.startHoldMs } : {}),
    now: () => new Date(now),
  });
  const alice: Principal = { uid: 'alice', service: false };
  const start = (jobId: string) => service.startDocumentAnalysis(alice, 'alice', 'Some text.', jobId);
  return {
    store,
    jobs,
    start,
    cancel: (jobId: string) => service.cancel(alice, `doc_analysis_${jobId}`),
    nextEnqueue: (...o: EnqueueOutcome[]) => outcomes.push(...o),
    cutStore: (down: boolean) => {
      storeDown = down;
    },
    lapse: (ms: number) => {
      now += ms;
    },
  };
}

const code = (promise: Promise<unknown>) =>
  promise.then(
    () => 'ok',
    (e: { code?: string }) => e.code,
  );

describe('TaskService: a start that fails part-way and the open-task slot', () => {
  it('a start whose enqueue failed gives its slot back at once; the task stays queued and a retry completes it', async () => {
    const f = fixture({ maxOpenPerUser: 1 });
    f.nextEnqueue('refused');
    expect(await code(f.start('a'))).toBe(RpcErrorCode.Unavailable);
    expect((await f.store.get('doc_analysis_a'))?.status).toBe('queued');
    // The slot is free: another task starts.
    expect(await code(f.start('b'))).toBe('ok');
    expect(await code(f.start('c'))).toBe(RpcErrorCode.RateLimited);
    // The failed one, started again while b holds the only slot, is refused like a new task.
    expect(await code(f.start('a'))).toBe(RpcErrorCode.RateLimited);
    expect(f.jobs.size).toBe(1);
    // Once b ended, it completes (existing) and counts again.
    await f.store.transition('doc_analysis_b', ['queued'], { status: 'completed' });
    const again = await f.start('a');
    expect(again).toMatchObject({ existing: true, status: 'queued' });
    expect(f.jobs.size).toBe(2);
    expect(await code(f.start('d'))).toBe(RpcErrorCode.RateLimited);
  });

  it('a start again whose enqueue fails again gives the slot it took back', async () => {
    const f = fixture({ maxOpenPerUser: 1 });
    f.nextEnqueue('refused', 'refused');
    expect(await code(f.start('a'))).toBe(RpcErrorCode.Unavailable);
    expect(await code(f.start('a'))).toBe(RpcErrorCode.Unavailable);
    expect(await code(f.start('b'))).toBe('ok');
    expect(await code(f.start('a'))).toBe(RpcErrorCode.RateLimited);
  });

  it('a start whose enqueue reached the queue but whose answer was lost keeps its slot (its job runs)', async () => {
    const f = fixture({ maxOpenPerUser: 1 });
    f.nextEnqueue('lost-answer');
    expect(await code(f.start('a'))).toBe(RpcErrorCode.Unavailable);
    expect(f.jobs.size).toBe(1);
    expect(await code(f.start('b'))).toBe(RpcErrorCode.RateLimited);
    f.lapse(10 * 60_000);
    expect(await code(f.start('b'))).toBe(RpcErrorCode.RateLimited);
    // Once it ends, the slot is free as for any task.
    await f.store.transition('doc_analysis_a', ['queued'], { status: 'completed' });
    expect(await code(f.start('b'))).toBe('ok');
  });

  it('with the task store cut too (the release fails), the slot comes back once the start hold has passed', async () => {
    const f = fixture({ maxOpenPerUser: 1, startHoldMs: 60_000 });
    f.nextEnqueue('refused');
    f.cutStore(true);
    expect(await code(f.start('a'))).toBe(RpcErrorCode.Unavailable);
    f.cutStore(false);
    // Within the hold the start might still be under way: it counts.
    f.lapse(59_000);
    expect(await code(f.start('b'))).toBe(RpcErrorCode.RateLimited);
    f.lapse(1_000);
    expect(await code(f.start('b'))).toBe('ok');
    expect(await code(f.start('c'))).toBe(RpcErrorCode.RateLimited);
  });

  it('a start that succeeded keeps its slot past the start hold (its job waits in the queue)', async () => {
    const f = fixture({ maxOpenPerUser: 1, startHoldMs: 60_000 });
    expect(await code(f.start('a'))).toBe('ok');
    f.lapse(10 * 60_000);
    expect(await code(f.start('b'))).toBe(RpcErrorCode.RateLimited);
  });
});

/** What the bus does with a `queued` event: lets it through, holds it until the test releases it, fails, or never ends. */
type QueuedPublish = 'pass' | 'held' | 'fails' | 'hangs';

/**
 * The in-process queue and runner, with a bus that does with each `queued` event what `queued` says
 * in turn (then 'pass'), recording every event the user gets in the order they land.
 */
function liveFixture(options: { maxOpenPerUser?: number; queued?: QueuedPublish[] } = {}) {
  const plan = [...(options.queued ?? [])];
  let queue: MemoryTaskQueue | undefined;
  const store = new MemoryTaskStore({ hasJob: (id) => queue?.hasJob(id) ?? false });
  const events: TaskProgressUpdate[] = [];
  let release = () => {};
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  let holding = false;
  const publish = async (_uid: string, event: AppEvent) => {
    const data = event.data as TaskProgressUpdate;
    const what = data.status === 'queued' ? (plan.shift() ?? 'pass') : 'pass';
    if (what === 'fails') throw new Error('Connection is closed.');
    if (what === 'hangs') await new Promise<void>(() => {});
    if (what === 'held') {
      holding = true;
      await held;
    }
    events.push(data);
  };
  const logger = createLogger({ level: 'error', format: 'json', instanceId: 'test' });
  queue = new MemoryTaskQueue(store, { runner: { store, publish }, logger });
  const service = new TaskService({
    queue,
    publish,
    maxDocumentBytes: 1_000,
    maxOpenPerUser: options.maxOpenPerUser ?? 10,
  });
  const alice: Principal = { uid: 'alice', service: false };
  return {
    store,
    events,
    statuses: () => events.map((e) => e.status),
    start: () => service.startDocumentAnalysis(alice, 'alice', 'One sentence. Another one.', 'j'),
    cancel: () => service.cancel(alice, 'doc_analysis_j'),
    holding: () => holding,
    release: () => release(),
    close: () => queue.close(),
  };
}

describe("TaskService: a task's last event carries its current state", () => {
  it('a start again after a failed start, racing a cancel: `cancelled` is the last event', async () => {
    // No limit: the retry takes no hold, so the cancel dequeues while its `queued` is on the way.
    const f = liveFixture({ maxOpenPerUser: 0, queued: ['fails', 'held'] });
    expect(await code(f.start())).toBe(RpcErrorCode.Unavailable);
    const again = f.start();
    await waitFor(f.holding, 'the start again publishing `queued`');
    expect(await f.cancel()).toEqual({ success: true, task_id: 'doc_analysis_j', status: 'cancelled' });
    f.release();
    expect(await again).toMatchObject({ existing: true, status: 'cancelled' });
    // Before the fix `queued` came last: the user saw the task queued for good.
    expect(f.statuses().at(-1)).toBe('cancelled');
    expect((await f.store.get('doc_analysis_j'))?.status).toBe('cancelled');
    await f.close();
  });

  for (const maxOpenPerUser of [10, 0]) {
    it(`the creator slow to publish \`queued\` while a second start queues the job and it runs: its end is last (limit ${maxOpenPerUser})`, async () => {
      const f = liveFixture({ maxOpenPerUser, queued: ['held'] });
      const first = f.start();
      await waitFor(f.holding, 'the creator publishing `queued`');
      // Before the fix it waited for the creator (up to 3 s), then answered unavailable.
      expect(await f.start()).toMatchObject({ existing: true });
      await waitFor(() => f.statuses().includes('completed'), 'the job run to its end');
      f.release();
      expect(await first).toMatchObject({ status: 'completed' });
      expect(f.statuses().at(-1)).toBe('completed');
      await f.close();
    });
  }

  it('two starts again after a failed start, one slow to publish `queued`: the end is last', async () => {
    // No limit: neither retry takes a hold, so neither waited before the fix.
    const f = liveFixture({ maxOpenPerUser: 0, queued: ['fails', 'held'] });
    expect(await code(f.start())).toBe(RpcErrorCode.Unavailable);
    const slow = f.start();
    await waitFor(f.holding, 'a start again publishing `queued`');
    expect(await f.start()).toMatchObject({ existing: true });
    await waitFor(() => f.statuses().includes('completed'), 'the job run to its end');
    f.release();
    expect(await slow).toMatchObject({ existing: true, status: 'completed' });
    // Before the fix the slow `queued` came after `completed`.
    expect(f.statuses().at(-1)).toBe('completed');
    await f.close();
  });

  it('a worker that ends the task while the start tells its state again: the end is last', async () => {
    // The worker (played here) writes, then publishes, each step just before a publish of the start lands.
    const events: string[] = [];
    const worker = async (patch: TaskPatch) => {
      const { record } = await f.store.transition('doc_analysis_a', ['queued', 'running'], patch);
      events.push(record?.status ?? 'gone');
    };
    const publish = async (_uid: string, event: AppEvent) => {
      const { status } = event.data as TaskProgressUpdate;
      if (status === 'queued') await worker({ status: 'running' });
      // The start read `running` and tells it; the worker's end is written after that read.
      if (status === 'running') await worker({ status: 'completed' });
      events.push(status);
    };
    const f = fixture({ maxOpenPerUser: 1, publish });
    expect(await f.start('a')).toMatchObject({ status: 'completed' });
    // A start that told what it read only once left its `running` last.
    expect(events).toEqual(['running', 'queued', 'completed', 'running', 'completed']);
  });

  it('two cancels of a queued task at once both answer success', async () => {
    const published: string[] = [];
    const f = fixture({
      maxOpenPerUser: 1,
      publish: async (_uid, e) => published.push((e.data as TaskProgressUpdate).status),
    });
    // No worker here: the task stays queued.
    await f.start('a');
    const answers = await Promise.all([f.cancel('a'), f.cancel('a')]);
    // Before the fix the second, its transition not ok, answered success: false.
    const cancelled = { success: true, task_id: 'doc_analysis_a', status: 'cancelled' };
    expect(answers).toEqual([cancelled, cancelled]);
    expect(published.at(-1)).toBe('cancelled');
  });
  it('a start whose telling of the end failed is retried: the retry tells the end again, last', async () => {
    // The worker (played here) runs the task to its end while the creator's `queued` is on the way.
    const events: string[] = [];
    let refuseEnd = 1;
    const worker = async (patch: TaskPatch) => {
      const { record } = await f.store.transition('doc_analysis_a', ['queued', 'running'], patch);
      events.push(record?.status ?? 'gone');
    };
    const publish = async (_uid: string, event: AppEvent) => {
      const { status } = event.data as TaskProgressUpdate;
      if (status === 'queued') {
        await worker({ status: 'running' });
        await worker({ status: 'completed' });
      }
      // The start's `completed`, told after its stale `queued`, cannot be published (the bus away).
      if (status === 'completed' && refuseEnd-- > 0) throw cut();
      events.push(status);
    };
    const f = fixture({ maxOpenPerUser: 0, publish });
    expect(await code(f.start('a'))).toBe(RpcErrorCode.Unavailable);
    expect(events.at(-1)).toBe('queued');
    // Before the fix the retry found the task ended and published nothing: `queued` stayed last.
    expect(await f.start('a')).toMatchObject({ existing: true, status: 'completed' });
    expect(events).toEqual(['running', 'completed', 'queued', 'completed']);
  });
});

describe("TaskService: a start of a task whose creator's `queued` never went out", () => {
  for (const maxOpenPerUser of [10, 0]) {
    for (const first of ['fails', 'hangs'] as const) {
      it(`tells \`queued\` first (its creator's publish ${first}, maxOpenPerUser ${maxOpenPerUser})`, async () => {
        const f = liveFixture({ queued: [first], maxOpenPerUser });
        const started = f.start();
        if (first === 'fails') expect(await code(started)).toBe(RpcErrorCode.Unavailable);
        expect(await f.start()).toMatchObject({ existing: true });
        await waitFor(() => f.statuses().includes('completed'), 'the completed event');
        expect(f.statuses()[0]).toBe('queued');
        expect(f.statuses().filter((s) => s === 'queued')).toHaveLength(1);
        expect(f.statuses().at(-1)).toBe('completed');
        await f.close();
      });
    }
  }
});

describe('TaskService: a cancel whose event could not be published', () => {
  it('a cancel again publishes the `cancelled` event again and drops the job', async () => {
    const published: string[] = [];
    let failNext = false;
    const publish = async (_uid: string, event: AppEvent) => {
      const { status } = event.data as TaskProgressUpdate;
      if (status === 'cancelled' && failNext) {
        failNext = false;
        throw cut();
      }
      published.push(status);
    };
    const f = fixture({ maxOpenPerUser: 1, publish });
    await f.start('a');
    failNext = true;
    expect(await code(f.cancel('a'))).toBe(RpcErrorCode.Unavailable);
    // The task is cancelled in the store, but its user was never told.
    expect((await f.store.get('doc_analysis_a'))?.status).toBe('cancelled');
    expect(published).toEqual(['queued']);
    expect(await f.cancel('a')).toEqual({ success: true, task_id: 'doc_analysis_a', status: 'cancelled' });
    expect(published).toEqual(['queued', 'cancelled']);
    expect(f.jobs.size).toBe(0);
  });
});
