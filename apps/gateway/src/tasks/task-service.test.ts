import { type AppEvent, RpcErrorCode, type TaskProgressUpdate } from '@livebus/protocol';
import { waitFor } from '@livebus/test-support';
import type { Principal } from '../auth/authenticator';
import { createLogger } from '../logger';
import { MemoryTaskQueue } from './memory-task-queue';
import { MemoryTaskStore } from './memory-task-store';
import type { QueueDepth, TaskJobData, TaskQueue } from './task-queue';
import { START_HOLD_MS, TaskService } from './task-service';

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

/**
 * The in-process queue and runner, with a bus that holds the first `queued` event until the test
 * lets it through (a start slow to publish; `firstQueued` 'fails': its publish fails, 'hangs': never
 * ends), recording every event the user gets, on a clock the test moves.
 */
function liveFixture(
  options: {
    cancelWaitMs?: number;
    startWaitMs?: number;
    maxOpenPerUser?: number;
    /** Jobs the queue runs at once (0: they stay queued). */
    concurrency?: number;
    firstQueued?: 'held' | 'fails' | 'hangs';
    /** The start's write giving its hold back fails (as a gateway that never gives it back). */
    keepHold?: boolean;
  } = {},
) {
  const { firstQueued = 'held', keepHold = false, maxOpenPerUser = 10, concurrency, ...waits } = options;
  let now = Date.now();
  let queue: MemoryTaskQueue | undefined;
  const store = new MemoryTaskStore({ now: () => now, hasJob: (id) => queue?.hasJob(id) ?? false });
  const transition = store.transition.bind(store);
  store.transition = async (taskId, from, patch, guard) => {
    if (keepHold && patch.start_hold_until === 0) throw new Error('Connection is closed.');
    return transition(taskId, from, patch, guard);
  };
  let reads = 0;
  const get = store.get.bind(store);
  store.get = (taskId) => {
    reads += 1;
    return get(taskId);
  };
  const events: TaskProgressUpdate[] = [];
  let release = () => {};
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  let holding = false;
  const publish = async (_uid: string, event: AppEvent) => {
    const data = event.data as TaskProgressUpdate;
    if (data.status === 'queued' && !holding) {
      holding = true;
      if (firstQueued === 'fails') throw new Error('Connection is closed.');
      await (firstQueued === 'hangs' ? new Promise<void>(() => {}) : held);
    }
    events.push(data);
  };
  const logger = createLogger({ level: 'error', format: 'json', instanceId: 'test' });
  queue = new MemoryTaskQueue(store, {
    runner: { store, publish },
    logger,
    ...(concurrency === undefined ? {} : { concurrency }),
  });
  const service = new TaskService({
    queue,
    publish,
    maxDocumentBytes: 1_000,
    maxOpenPerUser,
    now: () => new Date(now),
    ...waits,
  });
  const alice: Principal = { uid: 'alice', service: false };
  const start = () => service.startDocumentAnalysis(alice, 'alice', 'One sentence. Another one.', 'j');
  const settled = <T>(p: Promise<T>) => {
    const state = { done: false };
    p.then(
      () => (state.done = true),
      () => (state.done = true),
    );
    return state;
  };
  return {
    store,
    events,
    start,
    cancel: () => service.cancel(alice, 'doc_analysis_j'),
    settled,
    holding: () => holding,
    /** Reads of the task store (a start waiting for another polls it). */
    reads: () => reads,
    release: () => release(),
    lapse: (ms: number) => {
      now += ms;
    },
    close: () => queue.close(),
  };
}

describe("TaskService: no event precedes a task's `queued`", () => {
  it('a second start of a task whose first start is still publishing `queued` waits for it: `queued` comes first', async () => {
    const f = liveFixture();
    const first = f.start();
    await waitFor(f.holding, 'the first start publishing `queued`');
    const second = f.start();
    const answered = f.settled(second);
    // Now it waits, reading the task; before the fix it queued the job at once and a worker ran it to the end.
    await waitFor(
      async () => (answered.done ? (await f.store.get('doc_analysis_j'))?.status === 'completed' : f.reads() > 0),
      'the second start waiting, or the run',
    );
    f.release();
    await first;
    expect(await second).toMatchObject({ existing: true, status: 'queued' });
    await waitFor(() => f.events.some((e) => e.status === 'completed'), 'the completed event');
    expect(f.events[0]?.status).toBe('queued');
    expect(f.events.at(-1)?.status).toBe('completed');
    expect(f.events.filter((e) => e.status === 'queued')).toHaveLength(1);
    await f.close();
  });

  it('a cancel while the start still publishes `queued` is answered after it: `queued`, then `cancelled`', async () => {
    const f = liveFixture();
    const started = f.start();
    await waitFor(f.holding, 'the start publishing `queued`');
    const cancel = f.cancel();
    const answered = f.settled(cancel);
    // Before the fix the cancel published `cancelled` at once.
    await waitFor(
      async () => answered.done || (await f.store.get('doc_analysis_j'))?.cancel_requested,
      'the cancel asked for',
    );
    f.release();
    await started;
    expect(await cancel).toEqual({ success: true, task_id: 'doc_analysis_j', status: 'cancelled' });
    await waitFor(() => f.events.some((e) => e.status === 'cancelled'), 'the cancelled event');
    expect(f.events.map((e) => e.status)).toEqual(['queued', 'cancelled']);
    await f.close();
  });
  it('a cancel whose wait ends with the start still under way answers unavailable; its request still ends the task', async () => {
    // The start may have died (its hold then passes in 60 s): a success here could be honoured by nobody.
    const f = liveFixture({ cancelWaitMs: 100 });
    const started = f.start();
    await waitFor(f.holding, 'the start publishing `queued`');
    expect(await code(f.cancel())).toBe(RpcErrorCode.Unavailable);
    f.release();
    await started;
    // The start lived: the worker's claim honours the request.
    await waitFor(() => f.events.some((e) => e.status === 'cancelled'), 'the cancelled event');
    expect((await f.store.get('doc_analysis_j'))?.attempts).toBe(1);
    // The cancel retried, as its answer said: the request was honoured (before the fix: success false).
    expect(await f.cancel()).toEqual({ success: true, task_id: 'doc_analysis_j', status: 'cancelled' });
    expect(f.events.map((e) => e.status)).toEqual(['queued', 'cancelled']);
    await f.close();
  });
});

describe('TaskService: a start whose hold was not given back', () => {
  // A gateway of the version before the hold was given back (a rolling deploy), or whose write failed.
  it('holds nobody up once its job is queued: a second start and a cancel go ahead', async () => {
    const f = liveFixture({ concurrency: 0, keepHold: true, startWaitMs: 200, cancelWaitMs: 200 });
    const first = f.start();
    await waitFor(f.holding, 'the start publishing `queued`');
    f.release();
    await first;
    expect((await f.store.get('doc_analysis_j'))?.start_hold_until).toBeGreaterThan(Date.now());
    // Before the fix both waited for the hold, then answered unavailable.
    expect(await f.start()).toMatchObject({ existing: true, status: 'queued' });
    expect(await f.cancel()).toEqual({ success: true, task_id: 'doc_analysis_j', status: 'cancelled' });
    expect(f.events.map((e) => e.status)).toEqual(['queued', 'cancelled']);
    await f.close();
  });
});

describe("TaskService: a start of a task whose creator's `queued` never went out", () => {
  for (const maxOpenPerUser of [10, 0]) {
    for (const firstQueued of ['fails', 'hangs'] as const) {
      it(`tells \`queued\` first (its creator's publish ${firstQueued}, maxOpenPerUser ${maxOpenPerUser})`, async () => {
        const f = liveFixture({ firstQueued, maxOpenPerUser });
        const first = f.start();
        await waitFor(f.holding, 'the first start publishing `queued`');
        if (firstQueued === 'fails') expect(await code(first)).toBe(RpcErrorCode.Unavailable);
        // The creator's hold passes (given back as it failed; else it runs out).
        f.lapse(START_HOLD_MS + 1);
        expect(await f.start()).toMatchObject({ existing: true, status: 'queued' });
        await waitFor(() => f.events.some((e) => e.status === 'completed'), 'the completed event');
        // Before the fix the worker's `running` was the first event.
        expect(f.events[0]?.status).toBe('queued');
        expect(f.events.filter((e) => e.status === 'queued')).toHaveLength(1);
        expect(f.events.at(-1)?.status).toBe('completed');
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
