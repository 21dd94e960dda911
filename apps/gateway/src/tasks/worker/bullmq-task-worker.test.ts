import { EventEmitter } from 'node:events';
import type { RedisClient } from '@livebus/publisher/redis';
import { createLogger } from '../../logger';
import { recordingLogger } from '../../testing/recording-logger';
import { MemoryTaskStore } from '../memory-task-store';
import { BullMqTaskWorker } from './bullmq-task-worker';

/**
 * BullMQ 6.7's Worker as far as closing goes: `pause()` and a graceful `close()` wait for the
 * running jobs; a forced `close(true)` does not; once a close has started, any later call
 * returns it (a `close(true)` after `close()` still waits for the jobs).
 */
class FakeWorker extends EventEmitter {
  static last: FakeWorker;
  readonly closes: boolean[] = [];
  #closing: Promise<void> | undefined;
  finishJobs!: () => void;
  /** The pause fails (its connection erred) instead of waiting for the jobs. */
  pauseFails = false;
  /** The job processor the worker was given, for a test to run jobs through. */
  processor: ((job: unknown, token?: string) => Promise<unknown>) | undefined;
  readonly #jobsDone = new Promise<void>((resolve) => {
    this.finishJobs = resolve;
  });
  constructor(processor?: (job: unknown, token?: string) => Promise<unknown>) {
    super();
    this.processor = processor;
    FakeWorker.last = this;
  }
  pause(): Promise<void> {
    return this.pauseFails ? Promise.reject(new Error('Connection is closed.')) : this.#jobsDone;
  }
  cancelAllJobs(): void {}
  close(force = false): Promise<void> {
    this.closes.push(force);
    this.#closing ??= force ? Promise.resolve() : this.#jobsDone;
    return this.#closing;
  }
}

jest.mock('bullmq', () => ({
  ...jest.requireActual('bullmq'),
  Worker: jest.fn(
    (_name: string, processor: (job: unknown, token?: string) => Promise<unknown>) => new FakeWorker(processor),
  ),
}));

/** A worker on a fake Redis (its registration's sorted set only) and BullMQ, over `store`. */
function worker(
  store = new MemoryTaskStore(),
  logger = createLogger({ level: 'error', format: 'json', instanceId: 'w' }),
): BullMqTaskWorker {
  const redis = { zadd: async () => 1, zremrangebyscore: async () => 0, zrem: async () => 1 } as unknown as RedisClient;
  return new BullMqTaskWorker({
    connection: redis,
    redis,
    workerId: 'w1',
    runner: { store, publish: async () => {} },
    logger,
  });
}

describe('BullMqTaskWorker.close(graceMs)', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('forces BullMQ to close once the grace is spent, though a job never ends', async () => {
    const w = worker();
    let closed = false;
    void w.close(2_000).then(() => {
      closed = true;
    });
    await jest.advanceTimersByTimeAsync(2_000);
    expect(closed).toBe(true);
    expect(FakeWorker.last.closes).toEqual([true]);
  });

  it('forces the close at the end of the grace when pause() fails (the jobs may still run)', async () => {
    const w = worker();
    FakeWorker.last.pauseFails = true;
    let closed = false;
    void w.close(2_000).then(() => {
      closed = true;
    });
    await jest.advanceTimersByTimeAsync(1_000);
    expect(FakeWorker.last.closes).toEqual([]);
    await jest.advanceTimersByTimeAsync(1_000);
    expect(closed).toBe(true);
    expect(FakeWorker.last.closes).toEqual([true]);
  });

  it('closes BullMQ gracefully when the jobs end within the grace', async () => {
    const w = worker();
    let closed = false;
    void w.close(2_000).then(() => {
      closed = true;
    });
    await jest.advanceTimersByTimeAsync(500);
    FakeWorker.last.finishJobs();
    await jest.advanceTimersByTimeAsync(0);
    expect(closed).toBe(true);
    expect(FakeWorker.last.closes).toEqual([false]);
  });
});

describe("BullMqTaskWorker: a given-up job's retried end", () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('stops with close(): no try after it', async () => {
    const store = new MemoryTaskStore();
    await store.create({
      task_id: 'doc_analysis_x',
      user_id: 'u1',
      status: 'running',
      progress: 0,
      created_at: '2026-01-01T00:00:00.000Z',
      updated_at: '2026-01-01T00:00:00.000Z',
    });
    let tries = 0;
    store.transition = async () => {
      tries += 1;
      throw new Error('Connection is closed.');
    };
    const w = worker(store);
    const data = { task_id: 'doc_analysis_x', user_id: 'u1', kind: 'document_analysis', content: 'a' };
    FakeWorker.last.emit('failed', { id: 'j1', data, opts: { attempts: 3 }, attemptsMade: 3 }, new Error('stalled'));
    await jest.advanceTimersByTimeAsync(1_500);
    expect(tries).toBe(2);
    FakeWorker.last.finishJobs();
    await w.close(1_000);
    // Before the fix it went on trying for about 2 minutes.
    await jest.advanceTimersByTimeAsync(200_000);
    expect(tries).toBe(2);
  });
});

describe('BullMqTaskWorker: a lost job lock', () => {
  it("stops the attempt that lost it, once; BullMQ's repeats of that loss do not stop a later attempt started here", async () => {
    const { logger, events } = recordingLogger();
    // Each attempt waits in its first read of the task until the test lets it go on.
    const reads: Array<() => void> = [];
    const store = new MemoryTaskStore();
    const get = store.get.bind(store);
    store.get = (id) => new Promise((resolve) => reads.push(() => resolve(get(id))));
    const w = worker(store, logger);
    const data = {
      task_id: 'doc_analysis_x',
      user_id: 'u1',
      kind: 'document_analysis',
      content: 'a',
      queue_job_id: 'j1',
    };
    const job = (attempt: number) => ({
      id: 'j1',
      data,
      opts: { attempts: 3 },
      attemptsStarted: attempt,
      attemptsMade: attempt - 1,
    });
    const bull = FakeWorker.last;
    const first = bull.processor?.(job(1), 'token-1');
    bull.emit('lockRenewalFailed', ['j1']);
    // The job is started again (the stalled check), here, while the first attempt still waits.
    const second = bull.processor?.(job(2), 'token-2');
    // BullMQ goes on renewing the lost attempt's lock, and failing.
    bull.emit('lockRenewalFailed', ['j1']);
    bull.emit('lockRenewalFailed', ['j1']);
    expect(events('task_lock_lost').map(([, , f]) => f.job_id)).toEqual(['j1']);
    for (const go of reads.splice(0)) go();
    await Promise.allSettled([first, second]);
    await w.close(1_000);
  });
});
