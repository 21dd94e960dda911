import { EventEmitter } from 'node:events';
import type { RedisClient } from '@livebus/publisher/redis';
import { createLogger } from '../../logger';
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
  readonly #jobsDone = new Promise<void>((resolve) => {
    this.finishJobs = resolve;
  });
  constructor() {
    super();
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

jest.mock('bullmq', () => ({ ...jest.requireActual('bullmq'), Worker: jest.fn(() => new FakeWorker()) }));

function worker(): BullMqTaskWorker {
  const redis = { zadd: async () => 1, zremrangebyscore: async () => 0, zrem: async () => 1 } as unknown as RedisClient;
  const store = new MemoryTaskStore();
  return new BullMqTaskWorker({
    connection: redis,
    redis,
    workerId: 'w1',
    runner: { store, publish: async () => {} },
    logger: createLogger({ level: 'error', format: 'json', instanceId: 'w' }),
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
